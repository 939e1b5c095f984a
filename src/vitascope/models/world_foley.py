"""WorldFoley: the sound of a clip, heard from its layout.

A layout (world/layout.py) says where every object is in every frame, so it also says when one
touches the ground, how hard, and how big it is: all a contact's sound needs. The world network
draws its sound with its frames, but from its coarse video features it finds few of their
contacts (session 16: 10-19% of the contacts in its frames had a sound onset within a frame).
WorldFoley hears the layout that the planner made and the network drew to, as video-to-audio
("Foley") models hear a clip, and writes the band envelopes (world/sound.py) of its sound: a
percussive onset for each contact, lower and louder for big objects, and the weather's steady
rain or soft wind.

It is a small 1D convolutional network over frames, trained on the simulator's layouts and sound
(`vitascope train-foley`; a layout and its sound cost the simulator about a millisecond). Per
slot it reads the object's presence, fall and extent, with shared weights; the slots are
summed, and the layout's contact cues (`layout.cues`: when an object that came down stops), the
weather and the frame's own features go through two more convolutions to the envelopes of the
frame's ENV_RATE / fps steps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vitascope.world import layout
from vitascope.world.layout import PLACE
from vitascope.world.scene import WEATHERS
from vitascope.world.sound import ENV_RATE, N_BANDS, SAMPLE_RATE, analyze, feature_to_amp, onsets, vocode

from .world_net import load_module

TRACK_INPUTS = 4  # per slot and frame: present, fall since the last frame, fall to the next, log extent


@dataclass
class FoleyConfig:
    slot_channels: int = 32
    channels: int = 96
    kernel: int = 5  # frames each of the two later convolutions sees
    fps: float = 12.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FoleyConfig":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    @property
    def steps_per_frame(self) -> int:
        return int(round(ENV_RATE / self.fps))


Foley_configs = {"foley-s": FoleyConfig(), "foley-tiny": FoleyConfig(slot_channels=8, channels=16)}


def track_inputs(feat: np.ndarray) -> np.ndarray:
    """What WorldFoley reads of each slot of a layout (T, SLOTS, FEATURES): (T, SLOTS,
    TRACK_INPUTS) float32, zero for absent objects. Not the height itself: a planned bounce that
    stops short of the ground is drawn, and heard, as a bounce (a first run that read the height
    left 31% of the planner's contacts silent)."""
    feat = np.asarray(feat, np.float32)
    present = (feat[..., 0] > 0).astype(np.float32)
    y = feat[..., PLACE + 2] * layout._Y_SPREAD + layout._Y_MID  # centre height, down the frame
    fall = np.zeros_like(y)
    fall[1:] = (y[1:] - y[:-1]) * present[1:] * present[:-1]
    nxt = np.zeros_like(y)
    nxt[:-1] = fall[1:]
    size = feat[..., PLACE + 3]  # log extent, standardised
    return (np.stack([present, 10 * fall, 10 * nxt, size], -1) * present[..., None]).astype(np.float32)


def weather_vector(weather: str) -> np.ndarray:
    """One-hot of the weather."""
    if weather not in WEATHERS:
        raise ValueError(f"weather must be one of {', '.join(WEATHERS)}. Got {weather!r}.")
    v = np.zeros(len(WEATHERS), np.float32)
    v[WEATHERS.index(weather)] = 1
    return v


class WorldFoley(nn.Module):
    def __init__(self, cfg: FoleyConfig):
        super().__init__()
        self.cfg = cfg
        c, s, k = cfg.channels, cfg.slot_channels, cfg.kernel
        self.slot_in = nn.Conv1d(TRACK_INPUTS, s, 3, padding=1)
        self.slot_mid = nn.Conv1d(s, s, 3, padding=1)
        self.mix = nn.Conv1d(s + layout.CUE_CHANNELS + len(WEATHERS), c, k, padding=k // 2)
        self.mid = nn.Conv1d(c, c, k, padding=k // 2)
        self.out = nn.Conv1d(c, cfg.steps_per_frame * N_BANDS, 1)

    def forward(self, tracks: torch.Tensor, cues: torch.Tensor, weather: torch.Tensor) -> torch.Tensor:
        """tracks (B, T, SLOTS, TRACK_INPUTS), cues (B, CUE_CHANNELS, T) per frame, weather (B,
        len(WEATHERS)) -> envelope features (B, T * steps_per_frame, N_BANDS) on amp_to_feature's
        scale (-1 silence .. 1 full)."""
        B, T, S, _ = tracks.shape
        x = tracks.permute(0, 2, 3, 1).reshape(B * S, TRACK_INPUTS, T)
        x = F.gelu(self.slot_mid(F.gelu(self.slot_in(x))))
        x = x.view(B, S, -1, T).sum(1)
        x = torch.cat([x, cues, weather[:, :, None].expand(B, weather.shape[1], T)], 1)
        x = F.gelu(self.mix(x))
        x = x + F.gelu(self.mid(x))
        y = self.out(x)  # (B, steps * bands, T)
        return y.view(B, self.cfg.steps_per_frame, N_BANDS, T).permute(0, 3, 1, 2).reshape(B, T * self.cfg.steps_per_frame, N_BANDS)


def batch_inputs(feats: list[np.ndarray], weathers: list[str], fps: float = 12.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """WorldFoley's inputs for layouts of equal length: tracks, per-frame cues, weather."""
    tracks = torch.from_numpy(np.stack([track_inputs(f) for f in feats]))
    cues = torch.from_numpy(np.stack([layout.cues(f, 1, fps) for f in feats]))
    weather = torch.from_numpy(np.stack([weather_vector(w) for w in weathers]))
    return tracks, cues, weather


DELAYS = (-1, 0, 1, 2)  # whole frames a slot's sound may move to meet what was drawn
AIM = 0.25  # frames after the middle of a drawn lowest point where its onset is aimed


@torch.no_grad()
def hear(net: WorldFoley, feat: np.ndarray, weather: str, drawn: np.ndarray | None = None, sharp: bool = True) -> np.ndarray:
    """The band envelopes (T * ENV_RATE / fps, N_BANDS) of a layout's sound, as amplitudes
    (world/sound.py's FLOOR..1, for `vocode`). drawn: (T, SLOTS) heights the layout's objects
    were drawn at (`layout.heights`, NaN where not seen or not to be heard): each slot's sound is
    then moved by the whole frames (`delays`) that bring its onsets nearest the contacts drawn.
    sharp: each attack taken in one step (`sharpen`), as the world's percussion strikes."""
    feats = net(*batch_inputs([feat], [weather], net.cfg.fps))[0].numpy()
    env = feature_to_amp(feats).astype(np.float32)
    if sharp:
        env = sharpen(env)
    if drawn is None:
        return env
    moves = delays(feat, drawn, env, net.cfg.fps)
    if not moves.any():
        return env
    return hear(net, delayed(feat, moves), weather, sharp=sharp)


def sharpen(env: np.ndarray, bands: int = 12) -> np.ndarray:
    """Envelopes whose every rise is taken in one step: where the energy of the low bands (those
    `sound.onsets` listens to) rises over several steps in a row, the steps before the last hold
    the level the rise began from. WorldFoley, trained by an L1 loss on contacts whose time it
    knows only to within its inputs' jitter, spreads an attack over two or three steps (1/48 s
    each): in silence that still reads as a strike, over rain's steady noise it does not (an
    onset within a frame of 40% of contacts heard in rain, against 84% for the simulator's own
    sound; 91% sharpened, `tools/foley_report.py`). Peaks, decays and levels stay as heard."""
    env = np.array(env, np.float32, copy=True)
    e = env[:, :bands].sum(1)
    k = 1
    while k < len(e):
        if e[k] > e[k - 1]:
            j = k
            while j + 1 < len(e) and e[j + 1] > e[j]:
                j += 1
            env[k:j] = env[k - 1]  # empty where the rise is one step already
            k = j + 1
        else:
            k += 1
    return env


def delays(feat: np.ndarray, drawn: np.ndarray, env: np.ndarray, fps: float = 12.0) -> np.ndarray:
    """(SLOTS,) whole frames (of DELAYS) by which to delay each slot's sound so that it strikes
    where its object was drawn touching the ground. The network draws an object a frame or two
    off its planned track, and a bounce it draws lowest over two frames touches the ground between
    them, where the plan says one frame: the onsets heard from the plan (env, this layout's sound)
    of each slot's planned contacts are moved, all alike, to lie nearest AIM frames after the
    drawn contacts (`layout.drawn_contacts`); a slot with no contact planned or drawn stays."""
    feat, drawn = np.asarray(feat, np.float32), np.asarray(drawn, np.float32)
    heard = np.array(onsets(env)) * fps  # frames
    planned = layout.contact_frames(feat, fps)
    out = np.zeros(feat.shape[1], int)
    for j in range(feat.shape[1]):
        seen = np.array(layout.drawn_contacts(drawn[:, j]))
        mine = [f for f, slot, _ in planned if slot == j]
        if not len(seen) or not mine or not len(heard):
            continue
        # the onsets of this slot's contacts: the nearest to each, within a frame and a half
        own = np.array(sorted({float(heard[np.argmin(np.abs(heard - f))]) for f in mine if np.min(np.abs(heard - f)) <= 1.5}))
        if not len(own):
            continue
        cost = {d: sum(min(2.0, float(np.min(np.abs(own + d - (c + AIM))))) for c in seen) for d in DELAYS}
        out[j] = min(DELAYS, key=lambda d: (round(cost[d], 6), abs(d)))
    return out


def delayed(feat: np.ndarray, moves: np.ndarray) -> np.ndarray:
    """A layout whose slot j runs moves[j] frames later (earlier where negative), its first (last)
    frame held at the edge."""
    feat = np.asarray(feat, np.float32)
    out = feat.copy()
    for j, d in enumerate(int(m) for m in moves):
        if d > 0:
            out[d:, j], out[:d, j] = feat[:-d, j], feat[0, j]
        elif d < 0:
            out[:d, j], out[d:, j] = feat[-d:, j], feat[-1, j]
    return out


FILL_CLEAR = 1.5  # frames: a drawn contact with no onset this near gets one of its own (onsets closer than 0.12 s merge)
SEEN_CLEAR = 2.2  # how many times the step before a strike's heard energy must be for `strike_seen` to count it
ATTACK = 8  # envelope steps of an onset's sound copied to a drawn contact (2 frames: the strike and its ring)


def fill(env: np.ndarray, feat: np.ndarray, drawn: np.ndarray, fps: float = 12.0) -> np.ndarray:
    """Envelopes (as `hear` returns them) with an onset at every contact the frames show: where
    an object was drawn touching the ground (`layout.drawn_contacts` of `drawn`, (T, SLOTS)
    heights, NaN where not seen) and no onset of the sound, vocoded and heard back, lies within
    FILL_CLEAR frames, the sound of one of this clip's own strikes is laid there too (the strike
    heard nearest one of the slot's planned contacts, or the nearest strike in time if it has
    none), aimed AIM frames after the contact as `delays` aims. The network draws a bounce the
    plan does not hold now and then, or draws it a few frames off where the plan holds it; what
    is seen is then heard. A clip with no strike at all to copy is returned as it is."""
    env = np.array(env, np.float32, copy=True)
    drawn = np.asarray(drawn, np.float32)
    heard, attacks = _strikes(env, fps)
    if not heard:
        return env
    planned = layout.contact_frames(feat, fps)
    now = list(heard)
    for j in range(drawn.shape[1]):
        mine = [f for f, slot, _ in planned if slot == j]
        own = sorted({min(heard, key=lambda h: abs(h - f)) for f in mine if min(abs(h - f) for h in heard) <= 3.0})
        for c in layout.drawn_contacts(drawn[:, j]):
            target = c + AIM
            if min(abs(h - target) for h in now) <= FILL_CLEAR:
                continue
            source = min(own or heard, key=lambda h: abs(h - target))
            if _lay(env, attacks[source], target, fps):
                now.append(target)
    return env


def _strikes(env: np.ndarray, fps: float, clear: float = 0.0) -> tuple[list[float], dict[float, np.ndarray]]:
    """The strikes that sound in envelopes once vocoded (frames), and each one's attack: the step
    before it, then ATTACK steps. clear: only strikes whose low-band energy, heard back, jumps to
    at least this many times the step before (`sound.onsets` hears a jump of 1.8x; one that
    barely makes it can be lost in the MP4's sound)."""
    E = ENV_RATE / fps  # envelope steps per frame
    back = analyze(vocode(env, int(round(len(env) / ENV_RATE * SAMPLE_RATE))))
    energy = back[:, :12].sum(1)
    steps = [int(round(h * ENV_RATE)) for h in onsets(back)]
    heard = [k / E for k in steps if energy[k] >= clear * energy[k - 1]]
    return heard, {h: env[max(int(round(h * E)) - 1, 0) : int(round(h * E)) + ATTACK].copy() for h in heard}


def _lay(env: np.ndarray, seg: np.ndarray, target: float, fps: float, cut: bool = False, duck: bool = False) -> bool:
    """Lay an attack (`_strikes`) into env in place, its strike at target (frames); False where it
    does not fit. cut: one that runs past the end is cut there rather than left out. duck: the
    step before the strike falls to the attack's own where it is louder, so that the strike
    rises from it as it rose where it was heard (over rain, or the ring of an earlier strike, it
    would not rise enough to be heard)."""
    at = int(round(target * ENV_RATE / fps)) - 1
    if at < 0 or at + len(seg) > len(env) and not (cut and at + 1 < len(env)):
        return False
    seg = seg[: len(env) - at]
    pre = np.minimum(env[at], seg[0]) if duck else None
    env[at : at + len(seg)] = np.maximum(env[at : at + len(seg)], seg)
    if duck:
        env[at] = pre
    return True


def strike_seen(env: np.ndarray, seen: list[tuple[float, str]], feat: np.ndarray, net: WorldFoley, weather: str, fps: float = 12.0) -> np.ndarray:
    """Envelopes with an onset at every contact (frame, size) that an object is seen making in the
    finished frames (`measure.seen_contacts`) where no onset of the sound, vocoded and heard back,
    lies within FILL_CLEAR frames, aimed AIM frames after it, as `fill` aims one (one at the last
    frames cut at the end). `fill` follows the planned objects only, near where they were planned;
    the frames also show contacts of objects drawn away from their plan, or bouncing where the
    plan (feat) has no contact at all. The strike laid is the clip's own nearest in time; in a
    clip whose plan has no contact, whose sound then has no strike, it is a strike WorldFoley
    (net) hears of an object of that size bouncing in the clip's weather (`reference_attack`)."""
    env = np.array(env, np.float32, copy=True)
    heard, attacks = _strikes(env, fps, clear=SEEN_CLEAR)  # a strike heard only just is laid again
    own = bool(layout.contact_frames(feat, fps)) and bool(heard)
    now = list(heard)
    reference: dict[str, np.ndarray | None] = {}
    for c, size in sorted(seen):
        target = c + AIM
        if now and min(abs(h - target) for h in now) <= FILL_CLEAR:
            continue
        if not own and size not in reference:
            reference[size] = reference_attack(net, weather, size, fps)
        seg = attacks[min(heard, key=lambda h: abs(h - target))] if own else reference[size]
        if seg is not None and _lay(env, seg, target, fps, cut=True, duck=True):
            now.append(target)
    return env


def reference_attack(net: WorldFoley, weather: str, size: str, fps: float = 12.0) -> np.ndarray | None:
    """The attack (`_strikes`) WorldFoley hears of one object of a size ("small", "big") bouncing
    in a weather: its second contact's, the first after a whole flight. None where none sounds."""
    from vitascope.world.scene import Scene, WorldObject

    period = 1.2  # seconds: contacts at 0, 1.2, 2.4 s
    ball = WorldObject("red", "ball", size, "bouncing", period=period, height=0.2, phase=0.0)
    feat = layout.features(Scene(weather=weather, objects=(ball,)), 0.0, int(round(2 * fps)), fps)
    heard, attacks = _strikes(hear(net, feat, weather), fps)
    near = [h for h in heard if abs(h - period * fps) <= 1.5]
    return attacks[min(near, key=lambda h: abs(h - period * fps))] if near else None


def load(path) -> WorldFoley:
    return load_module(path, lambda cfg: WorldFoley(FoleyConfig.from_dict(cfg)))


__all__ = ["AIM", "DELAYS", "FoleyConfig", "Foley_configs", "TRACK_INPUTS", "WorldFoley", "batch_inputs", "delayed", "delays", "fill", "hear", "load", "reference_attack", "sharpen", "strike_seen", "track_inputs", "weather_vector"]
