"""Layouts: where the objects of a clip are, frame by frame, and what they are.

A layout is the plan of a clip's objects, the way layout-guided video diffusion plans boxes
before drawing (LLM-grounded video diffusion, GLIGEN's grounding boxes): for each frame and each
of up to SLOTS objects, whether it is there, its colour, its shape, where its centre is and how
big it is. The planner (models/world_plan.py) generates layouts from a prompt; the world model
draws a clip that follows one. The simulator gives the true layout of every training clip.

Two forms:
- `features`: (T, SLOTS, FEATURES) numbers of about unit spread, what the planner generates;
- `maps`: (LAYOUT_CHANNELS, T, H, W) pictures of a layout, what the world network reads beside
  the noisy clip: each object's silhouette (its shape at its place, size and turn), carrying its
  colour and a label of its shape, as a segmentation map conditions an image model (ControlNet,
  GLIGEN). The network draws the clip: sky, ground, weather, the objects' look, and the sound.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from .measure import OBJECT_IDS, nearest_palette
from .render import draw_object, with_aspect
from .scene import COLOURS, SHAPES, Scene, object_state

SLOTS = 3
# present, colour label (one of the palette's, +1 for it and -1 for the rest: a generated layout
# names a colour of the world rather than a blend), shape label, cos and sin of the horizontal
# phase, height, size, cos and sin of the turn (times the shape's symmetry)
_COLOUR, _SHAPE = 1, 1 + len(COLOURS)
PLACE = _SHAPE + len(SHAPES)  # where the place features (phase, height, size, turn) begin
FEATURES = PLACE + 6
LAYOUT_CHANNELS = 1 + 3 + len(SHAPES)  # silhouette, colour inside it, shape labels inside it
SYMMETRY = {"ball": 0, "box": 4, "triangle": 1}  # a turn of 2 pi / k looks the same; a ball looks the same at any turn
_Y_MID, _Y_SPREAD = 0.6, 0.25  # object centres lie at y in about 0.1..0.95 frame heights
_LOG_SCALE_MID, _LOG_SCALE_SPREAD = math.log(0.14), 0.5  # extents of 0.05..0.4 frame heights


def _period(aspect: float, scale: float) -> float:
    return aspect + scale  # objects wrap around the frame with room to leave it (scene.object_state)


def features(scene: Scene, start: float, n_frames: int, fps: float, aspect: float | None = None) -> np.ndarray:
    """The true layout of a scene's frames from `start`: (n_frames, SLOTS, FEATURES), float32.
    Slots past the scene's objects are absent (present = -1, the rest 0)."""
    if len(scene.objects) > SLOTS:
        raise ValueError(f"a layout holds at most {SLOTS} objects. Got {len(scene.objects)}.")
    if aspect is not None and abs(aspect - scene.aspect) > 1e-6:
        scene = with_aspect(scene, aspect)  # the scene seen through another aspect, as render() sees it
    aspect = scene.aspect
    out = np.zeros((n_frames, SLOTS, FEATURES), np.float32)
    out[:, :, 0] = -1
    for j, obj in enumerate(scene.objects):
        for i in range(n_frames):
            st = object_state(obj, start + i / fps, aspect)
            out[i, j] = _row(obj.colour, obj.shape, st.x, st.y, st.scale, st.angle, aspect)
    return out


def identity(row: np.ndarray) -> tuple[str, str]:
    """The colour and shape one slot's features (FEATURES,) name (generated ones included)."""
    return list(COLOURS)[int(np.argmax(row[_COLOUR:_SHAPE]))], SHAPES[int(np.argmax(row[_SHAPE:PLACE]))]


def objects(feat: np.ndarray, aspect: float) -> list[list[dict]]:
    """A layout's objects per frame, read back from features (generated ones included): for each
    frame, a list of {x, y, scale (frame heights), rgb (0-255), shape, angle} of the slots present."""
    frames = []
    for row in np.asarray(feat, np.float32):
        objs = []
        for f in row:
            if f[0] <= 0:
                continue
            cos_x, sin_x, y, log_scale, cos_turn, sin_turn = (float(v) for v in f[PLACE:])
            scale = math.exp(log_scale * _LOG_SCALE_SPREAD + _LOG_SCALE_MID)
            phase = math.atan2(sin_x, cos_x) % (2 * math.pi)
            colour, shape = identity(f)
            k = SYMMETRY[shape]
            objs.append(
                {
                    "x": phase / (2 * math.pi) * _period(aspect, scale) - scale / 2,
                    "y": y * _Y_SPREAD + _Y_MID,
                    "scale": scale,
                    "rgb": tuple(COLOURS[colour]),
                    "shape": shape,
                    "angle": math.atan2(sin_turn, cos_turn) / k if k else 0.0,
                }
            )
        frames.append(objs)
    return frames


def maps(feat: np.ndarray, height: int, width: int, supersample: int = 1) -> np.ndarray:
    """Pictures of a layout for the world network: (LAYOUT_CHANNELS, T, height, width), float32.
    Channel 0 is 1 inside each object's silhouette (drawn as render draws the object, wrapping
    around the frame; a later slot covers an earlier one), channels 1-3 its colour in [-1, 1]
    there, channels 4-6 its shape label (1 for its shape) there; all 0 outside objects.
    supersample k > 1 draws the silhouettes at k times the size and averages them down: a pixel
    at a silhouette's edge holds the share of it the silhouette covers (and that share of the
    colour and label), so an object that moves by less than a pixel moves in the maps too."""
    aspect = width / height
    T, k = len(feat), int(supersample)
    if k < 1:
        raise ValueError(f"supersample must be a whole number of at least 1. Got {supersample}.")
    out = np.zeros((LAYOUT_CHANNELS, T, height, width), np.float32)
    owner = np.zeros((height * k, width * k), np.uint8)
    for i, objs in enumerate(objects(feat, aspect)):
        owner[:] = 0
        for j, o in enumerate(objs):
            draw_object(owner, None, o["shape"], o["x"], o["y"], o["scale"], o["angle"], j + 1, height * k, aspect)
        for j, o in enumerate(objs):
            inside = (owner == j + 1).astype(np.float32)
            if k > 1:
                inside = inside.reshape(height, k, width, k).mean((1, 3))
            rgb = np.array(o["rgb"], np.float32) / 127.5 - 1
            out[0, i] += inside
            for c in range(3):
                out[1 + c, i] += inside * rgb[c]
            out[4 + SHAPES.index(o["shape"]), i] += inside
    return out


CUE_CHANNELS = 2  # contacts of small objects, of big ones
BIG = 0.15  # extent (frame heights) above which an object is big, as world/measure.py reads it
_DESCENT = 0.01  # frame heights per frame: an object coming down at least this fast...
_HALT = 0.005  # ...whose next frame comes down less than this has touched the ground


def settle(feat: np.ndarray, tremble: float, start: int = 0) -> np.ndarray:
    """A layout whose heights move only where they move by more than `tremble` (frame heights):
    each slot's height from frame `start` on goes through a play (backlash) operator, which holds
    it still until it has moved `tremble` away and then follows it, `tremble` behind. A planned
    object at rest trembles by a few thousandths of the frame; drawn, that shows as an object
    wobbling on the ground, a low point of its track every few frames that looks like a contact
    and has no sound. Bounces, falls and rises turn where they turned, their extremes within
    `tremble` of the plan's. Frames before `start` (carried over) stay as they are, the first one
    after them is held from the last of them. Returns a copy."""
    out = np.array(feat, np.float32, copy=True)
    if tremble <= 0 or len(out) <= start:
        return out
    y = out[:, :, PLACE + 2] * _Y_SPREAD  # heights, frame heights (offset dropped: it cancels)
    held = y[max(start - 1, 0)].copy()
    for i in range(start, len(out)):
        held = np.clip(held, y[i] - tremble, y[i] + tremble)
        y[i] = held
    out[:, :, PLACE + 2] = y / _Y_SPREAD
    return out


_REST_RISE = 0.01  # frame heights: an object that rises no more than this after a contact is at rest


def rest(feat: np.ndarray, start: int = 0) -> np.ndarray:
    """A layout whose objects stay where they last landed: after a slot's last contact
    (`contact_frames`), if it does not rise again by more than _REST_RISE (it lies at rest), its
    height from frame `start` on is never lower than at that contact. The planner lets an object
    at rest sink slowly (0.03-0.08 frame heights over the rest of a window); drawn at 64 pixels,
    that slow sink shows as one-pixel drops every dozen frames, each a landing that makes no
    sound. For a camera that holds its framing (a zoom moves the ground down the frame). Frames
    before `start` stay as they are. Returns a copy."""
    out = np.array(feat, np.float32, copy=True)
    y = out[:, :, PLACE + 2]  # scaled heights, down the frame (monotonic in frame heights)
    last: dict[int, int] = {}
    for i, j, _ in contact_frames(out):
        last[j] = max(i, last.get(j, -1))
    for j, c in last.items():
        after = y[c + 1 :, j]
        if len(after) and after.min() * _Y_SPREAD < y[c, j] * _Y_SPREAD - _REST_RISE:
            continue  # it bounces up again: not at rest
        lo = max(c + 1, start)
        y[lo:, j] = np.minimum(y[lo:, j], y[c, j])
    return out


def extents(feat: np.ndarray) -> np.ndarray:
    """(T, SLOTS) extents of a layout's objects across, frame heights."""
    return np.exp(np.asarray(feat, np.float32)[..., PLACE + 3] * _LOG_SCALE_SPREAD + _LOG_SCALE_MID)


def contact_frames(feat: np.ndarray, fps: float = 12.0) -> list[tuple[int, int, float]]:
    """A layout's ground contacts, read off its tracks (generated ones included): (frame, slot,
    impact strength in [0, 1]) where an object that was coming down stops coming down (a bounce,
    a landing). Strength follows the simulator's loudness, the square root of the impact speed
    over 2 frame heights a second."""
    feat = np.asarray(feat, np.float32)
    out = []
    for j in range(feat.shape[1]):
        present = feat[:, j, 0] > 0
        y = feat[:, j, PLACE + 2] * _Y_SPREAD + _Y_MID  # centre height, down the frame
        for i in range(1, len(feat) - 1):
            if not (present[i - 1] and present[i] and present[i + 1]):
                continue
            down = y[i] - y[i - 1]
            if down >= _DESCENT and y[i + 1] - y[i] < _HALT:
                out.append((i, j, min(down * fps / 2.0, 1.0) ** 0.5))
    return out


# what world-spec.md says each motion's track shows in 4 s, as a planned track is checked for it
SPEC_SLIDE = 1 / 3  # sliding: along the ground by at least a third of the frame width
SPEC_RISE = 1 / 3  # rising: up by at least a third of the frame height
SPEC_AREA = 2.0  # growing, shrinking: the area changes at least this much
SPEC_TURN = math.pi  # spinning: at least half a turn (of the shape's turn features: a box's quarter turn looks the same)
SPEC_CONTACTS = 2  # bouncing: touches the ground at least twice
_FALL_FROM = 0.45  # falling: starts with its centre in the upper part of the frame (frame heights)...
_FALL_BY = 0.15  # ...and comes down at least this far
_STILL = 0.1, 0.05, 1.3  # still: moves less than this across, this up or down, and grows or shrinks less than this


def track(feat: np.ndarray, slot: int, aspect: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One slot's planned track, (T,) each: centre across (frame heights, unwrapped: a slide that
    leaves one side and comes back at the other keeps counting), centre down, extent, and turn
    (of the turn features, unwrapped)."""
    f = np.asarray(feat, np.float32)[:, slot]
    s = extents(f)
    phase = np.unwrap(np.arctan2(f[:, PLACE + 1], f[:, PLACE]))
    x = phase / (2 * math.pi) * _period(aspect, float(np.median(s)))
    y = f[:, PLACE + 2] * _Y_SPREAD + _Y_MID
    turn = np.unwrap(np.arctan2(f[:, PLACE + 5], f[:, PLACE + 4]))
    return x, y, s, turn


def shows(feat: np.ndarray, slot: int, motion: str, shape: str, aspect: float, fps: float = 12.0) -> bool:
    """Does a slot's planned track show `motion` (a motion of the world, or bouncing_left /
    bouncing_right) as world-spec.md describes it, over the layout's duration? A plan's own check,
    on its numbers, before anything is drawn; thresholds scale with the duration (4 s in the spec)."""
    x, y, s, turn = track(feat, slot, aspect)
    T = len(x)
    k = max(2, T // 8)  # each end averaged over a few frames...
    part = (T - k) / fps / 4.0  # ...k frames apart less than the ends: the share of the spec's 4 seconds between them
    dx = float(x[-k:].mean() - x[:k].mean())
    dy = float(y[-k:].mean() - y[:k].mean())  # down the frame
    area = float((s[-k:].mean() / s[:k].mean()) ** 2)
    side = SPEC_SLIDE * aspect * part
    if motion in ("slide_left", "slide_right"):
        return (dx < -side if motion == "slide_left" else dx > side) and abs(dy) < _FALL_BY
    if motion == "rising":
        return -dy > SPEC_RISE * min(part, 1.0)
    if motion == "falling":
        return float(y[:k].mean()) < _FALL_FROM and dy > _FALL_BY
    if motion == "growing":
        return area > SPEC_AREA ** min(part, 1.0)
    if motion == "shrinking":
        return area < SPEC_AREA ** -min(part, 1.0)
    if motion.startswith("bouncing"):
        contacts = sum(1 for _, j, _ in contact_frames(feat, fps) if j == slot)
        way = {"bouncing_left": -1, "bouncing_right": 1}.get(motion, 0)
        return contacts >= SPEC_CONTACTS * part and (way == 0 or way * dx > side / 2)
    if motion == "spinning" and SYMMETRY[shape]:
        return abs(float(turn[-1] - turn[0])) > SPEC_TURN * part and abs(dx) < side / 2
    far, high, grow = _STILL  # still, and a spinning ball (it looks still)
    return abs(dx) < far and abs(dy) < high and 1 / grow < area < grow


def crowded(feat: np.ndarray, aspect: float) -> int:
    """Frames in which two objects of one colour overlap (their squares of side `extent` about
    their centres meet), where they are seen as one blob, summed over such pairs. Tells apart
    plans that show the same motions."""
    feat = np.asarray(feat, np.float32)
    slots = [j for j in range(feat.shape[1]) if (feat[:, j, 0] > 0).all()]
    tracks = {j: track(feat, j, aspect) for j in slots}
    out = 0
    for a in slots:
        for b in slots:
            if b <= a or identity(feat[0, a])[0] != identity(feat[0, b])[0]:
                continue
            (xa, ya, sa, _), (xb, yb, sb, _) = tracks[a], tracks[b]
            reach = (sa + sb) / 2
            dx = np.abs((xa - xb + aspect / 2) % aspect - aspect / 2)  # across the wrap
            out += int(((dx < reach) & (np.abs(ya - yb) < reach)).sum())
    return out


APART_MARGIN = 1.15  # objects of one colour closer than this times their mean extent (across and down) are seen touching
APART_SHIFTS = 24  # places across tried for each object, 1 / APART_SHIFTS of its period apart


def _centres(feat: np.ndarray, slot: int, aspect: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One slot's centre across as drawn (frame heights from the left edge, wrapped as the world
    wraps it: -extent / 2 .. aspect + extent / 2), centre down and extent, (T,) each."""
    f = np.asarray(feat, np.float32)[:, slot]
    s = extents(f)
    phase = np.arctan2(f[:, PLACE + 1], f[:, PLACE]) % (2 * math.pi)
    return phase / (2 * math.pi) * _period(aspect, s) - s / 2, f[:, PLACE + 2] * _Y_SPREAD + _Y_MID, s


def _hidden(c, aspect: float) -> int:
    """Frames in which an object (its `_centres`) is more than half out of the frame."""
    x, _, s = c
    return int(((x < s / 2) | (x > aspect - s / 2)).sum())


def _touching(a, b) -> np.ndarray:
    """Frames in which two objects' squares of side APART_MARGIN times their extent meet."""
    (xa, ya, sa), (xb, yb, sb) = a, b
    reach = APART_MARGIN * (sa + sb) / 2
    return (np.abs(xa - xb) < reach) & (np.abs(ya - yb) < reach)


def _shifted(feat: np.ndarray, slot: int, turn) -> np.ndarray:
    """A layout with one slot's horizontal phase turned by `turn` radians (one for every frame, or
    (T,), one a frame): its track moved across, all else as it was. Returns a copy."""
    out = np.array(feat, np.float32, copy=True)
    cos_p, sin_p = out[:, slot, PLACE].copy(), out[:, slot, PLACE + 1].copy()
    c, s = np.cos(turn), np.sin(turn)
    out[:, slot, PLACE] = c * cos_p - s * sin_p
    out[:, slot, PLACE + 1] = s * cos_p + c * sin_p
    return out


def apart(feat: np.ndarray, aspect: float) -> np.ndarray:
    """A layout whose objects of one colour are moved across, each track as a whole, so that they
    touch in as few frames as can be: two red balls planned on top of each other are drawn, and
    read, as one red blob. The world keeps the starting places of objects apart for the same
    reason (scene._spread: "so that they can be counted"); a planned layout overlaps objects of
    one colour in 17 of 72 validation prompts (model card, session 27). Each object in slot order
    takes, of APART_SHIFTS places across its period, the one where it touches the objects of its
    colour placed before it in fewest frames, without more frames out of the frame than planned
    (then touching objects of other colours in fewest, then moving least); an object that touches
    none stays where it was planned. Its motion is unchanged: every frame's horizontal phase turns
    by the same amount (for an object that grows or shrinks, whose period does, by the same share
    of it). For a whole window only: carried-over frames cannot move. Returns a copy."""
    out = np.array(feat, np.float32, copy=True)
    slots = [j for j in range(out.shape[1]) if (out[:, j, 0] > 0).all()]
    colour = {j: identity(out[0, j])[0] for j in slots}
    placed: list[int] = []
    for j in slots:
        same = [i for i in placed if colour[i] == colour[j]]
        placed.append(j)
        if not same:
            continue
        def cost(feat_j: np.ndarray) -> tuple[int, int, int]:
            c = _centres(feat_j, j, aspect)
            hidden = _hidden(c, aspect)
            mine = sum(int(_touching(c, _centres(feat_j, i, aspect)).sum()) for i in same)
            others = sum(int(_touching(c, _centres(feat_j, i, aspect)).sum()) for i in placed[:-1] if i not in same)
            return mine, hidden, others
        here = cost(out)
        if here[0] == 0:
            continue
        best, best_key = out, (here[0], here[2], 0)
        for k in range(1, APART_SHIFTS):
            turn = 2 * math.pi * k / APART_SHIFTS
            trial = _shifted(out, j, turn)
            mine, hidden, others = cost(trial)
            key = (mine, others, min(k, APART_SHIFTS - k))
            if hidden <= here[1] and key < best_key:
                best, best_key = trial, key
        out = best
    return out


APART_RAMP = 12  # frames over which a continuing window eases an object to its new place across (1 s)
APART_REACH = 8  # places across tried each way in a continuing window, 1 / APART_SHIFTS of a period apart
_STAY = 0.12  # frame widths: an object that moves less than twice this across a window moves at most this much more


def _eased(feat: np.ndarray, slot: int, turn: float, start: int, ramp: int) -> np.ndarray:
    """`_shifted`, eased in: frames before `start` stay, the next `ramp` frames turn by a growing
    share of `turn` (smoothstep), the rest by all of it."""
    u = np.clip((np.arange(len(feat)) - start + 1) / ramp, 0.0, 1.0)
    return _shifted(feat, slot, turn * u * u * (3 - 2 * u))


def apart_after(feat: np.ndarray, aspect: float, start: int, ramp: int = APART_RAMP) -> np.ndarray:
    """`apart` for a window that continues frames already drawn (an extension, a clip's later
    window): objects of one colour touching in the new frames (from `start`) are eased apart
    across, an object at a time (the one of either colour-mate whose move helps most), each move
    starting from where the object was at the seam so nothing jumps. Each is moved by at most
    APART_REACH / APART_SHIFTS of its period, with no more new frames out of the frame than
    planned, and so that its motion across reads as planned: a slide keeps its way and at least
    its length, anything else moves at most `_STAY` frame widths more. Returns a copy."""
    out = np.array(feat, np.float32, copy=True)
    slots = [j for j in range(out.shape[1]) if (out[:, j, 0] > 0).all()]
    colour = {j: identity(out[0, j])[0] for j in slots}
    pairs = [(a, b) for a in slots for b in slots if a < b and colour[a] == colour[b]]
    if not pairs or start >= len(out):
        return out

    def across(f: np.ndarray, j: int) -> float:
        x = track(f[start:], j, aspect)[0]
        k = max(2, len(x) // 8)
        return float(x[-k:].mean() - x[:k].mean())

    def cost(f: np.ndarray) -> tuple[int, int]:
        c = {j: tuple(v[start:] for v in _centres(f, j, aspect)) for j in slots}
        mine = sum(int(_touching(c[a], c[b]).sum()) for a, b in pairs)
        others = sum(int(_touching(c[a], c[b]).sum()) for a in slots for b in slots if a < b and colour[a] != colour[b])
        return mine, others

    def hidden(f: np.ndarray, j: int) -> int:
        return _hidden(tuple(v[start:] for v in _centres(f, j, aspect)), aspect)

    planned = {j: (across(out, j), hidden(out, j)) for j in slots}
    movable = sorted({j for p in pairs for j in p})
    for _ in range(len(movable)):
        here = cost(out)
        if here[0] == 0:
            break
        best, best_key = None, (here[0], here[1], 0)
        for j in movable:
            dx0, hid0 = planned[j]
            slide = abs(dx0) >= 2 * _STAY * aspect
            for k in [k for r in range(1, APART_REACH + 1) for k in (r, -r)]:
                trial = _eased(out, j, 2 * math.pi * k / APART_SHIFTS, start, ramp)
                dx = across(trial, j)
                if (dx * dx0 <= 0 or abs(dx) < abs(dx0)) if slide else abs(dx - dx0) > _STAY * aspect:
                    continue
                if hidden(trial, j) > hid0:
                    continue
                key = (*cost(trial), abs(k))
                if key < best_key:
                    best, best_key = trial, key
        if best is None:
            break
        out = best
    return out


def mirror(feat: np.ndarray, slot: int, aspect: float, start: int = 0) -> np.ndarray:
    """A layout with one slot's track mirrored left for right about the frame's middle (its
    motion across reversed, all else as it was), or, from frame `start` > 0 on, about where it is
    in the frame before: frames carried over stay, and the new ones go on across from there the
    other way ("slides left" continued by a plan that turns back right goes on left, with no jump).
    Returns a copy."""
    out = np.array(feat, np.float32, copy=True)
    f = out[start:, slot]
    if start:  # phase -> 2 a - phase, a the phase of the last frame carried over
        a = math.atan2(float(out[start - 1, slot, PLACE + 1]), float(out[start - 1, slot, PLACE]))
        c = 2 * a
    else:  # centre across = phase / 2 pi * period - ...: x -> aspect - x is phase -> c - phase
        s = float(np.median(extents(out[:, slot])))
        c = 2 * math.pi * (1 - s / _period(aspect, s))
    cos_p, sin_p = f[:, PLACE].copy(), f[:, PLACE + 1].copy()
    f[:, PLACE] = math.cos(c) * cos_p + math.sin(c) * sin_p
    f[:, PLACE + 1] = math.sin(c) * cos_p - math.cos(c) * sin_p
    out[start:, slot] = f
    return out


def steady_turn(feat: np.ndarray, slot: int, start: int = 0) -> np.ndarray:
    """A layout with one slot turning at a steady rate from frame `start` on: its turn (of the
    turn features, unwrapped) goes to the straight line that fits it best, through its frame
    `start - 1` where frames are carried over. A planned spin turns the right way on average
    but jitters back and forth from frame to frame (0.3-0.8 rad a frame about a mean of 0.1-0.3);
    drawn, the object wobbles. In the world a spin is steady (scene.py: `spin` turns a second).
    `WorldModel(steady_spins=True)`; off by default: on 72 validation prompts it changed no
    attribute score, and a steadily turning triangle's outline, rising and falling, is read as
    bouncing as often as a wobbling one's (model card, session 23). Returns a copy."""
    out = np.array(feat, np.float32, copy=True)
    if len(out) - start < 2:
        return out
    f = out[:, slot]
    turn = np.unwrap(np.arctan2(f[:, PLACE + 5], f[:, PLACE + 4]))
    i = np.arange(len(out), dtype=np.float64)
    new = i[start:]
    if start > 0:  # through the last known frame: the slope of the best line through that point
        x0, y0 = i[start - 1], turn[start - 1]
        rate = float(((new - x0) * (turn[start:] - y0)).sum() / max(((new - x0) ** 2).sum(), 1e-9))
        line = y0 + rate * (new - x0)
    else:
        rate, icpt = np.polyfit(new, turn, 1)
        line = icpt + rate * new
    f[start:, PLACE + 4] = np.cos(line)
    f[start:, PLACE + 5] = np.sin(line)
    out[:, slot] = f
    return out


def cues(feat: np.ndarray, env_per_frame: int, fps: float = 12.0) -> np.ndarray:
    """Sound cues of a layout for the world network's audio: (CUE_CHANNELS, T * env_per_frame),
    float32, the strength of each contact at its frame's first envelope step, in the channel of
    the object's size (big objects sound lower and louder), 0 elsewhere. The network hears when
    and how hard what it draws touches the ground instead of finding it in its own frames."""
    feat = np.asarray(feat, np.float32)
    out = np.zeros((CUE_CHANNELS, len(feat) * env_per_frame), np.float32)
    for i, j, strength in contact_frames(feat, fps):
        c = int(extents(feat[i, j]) > BIG)
        out[c, i * env_per_frame] = max(out[c, i * env_per_frame], strength)
    return out


# --- reading a layout back from pixels ---------------------------------------------------------
# Extensions and image-to-video start from frames, not from a plan: the planner continues the
# layout of the frames carried over, so it is read from them, by analysis by synthesis: each
# object-coloured blob is matched against the silhouettes draw_object paints (every shape, over
# grids of size and turn, then positions and sizes near the best), and the blobs are linked
# into tracks frame to frame.
_SCALES = np.geomspace(0.045, 0.44, 17)  # extents tried, frame heights (shrunken small .. grown big)
_TURNS = {"ball": 1, "box": 9, "triangle": 24}  # turns tried over each shape's period of symmetry
_MIN_AREA = 6  # pixels: smaller blobs are noise
_NEAR = 40  # colour distance (0-255 RGB) within which a pixel is of a palette colour (measure.py: 70; the haze a generated object trails is not the object)
_ONE = 0.8  # a blob one silhouette matches this well (IoU) is one object
_SPLIT = 0.9  # one that several match this well together is several
_SEEN = 0.5  # share of the frames a track must be seen in
_LINK = 0.25  # frame heights an object may move between frames of one track


def _silhouettes(shape: str, cx, cy, s, a, px, py) -> np.ndarray:
    """(candidates, pixels) inside tests of draw_shape's silhouettes at pixel centres (px, py)."""
    dx, dy = px[None] - cx[:, None], py[None] - cy[:, None]
    c, si = np.cos(a)[:, None], np.sin(a)[:, None]
    u, v = c * dx + si * dy, -si * dx + c * dy
    h = s[:, None] / 2
    if shape == "ball":
        return dx * dx + dy * dy <= h * h
    if shape == "box":
        return (np.abs(u) <= h) & (np.abs(v) <= h)
    return (v <= h) & (np.abs(u) <= (v + h) / 2)


def _centre(shape: str, mx, my, s, a):
    """A silhouette's centre from the centroid (mx, my) of its pixels: a triangle's lies s / 6 below
    its centre along its axis."""
    if shape != "triangle":
        return mx + 0 * s, my + 0 * s
    return mx + np.sin(a) * s / 6, my - np.cos(a) * s / 6


def _fit(obs: np.ndarray, valid: np.ndarray, px, py, mx: float, my: float, wide: bool, H: int) -> dict:
    """The best silhouette of each shape for one blob: {shape: (IoU, cx, cy, scale, turn)}.
    obs/valid: (pixels,) the blob and the pixels that count (in frame, not another object);
    (mx, my): its centroid; wide: it touches a side edge (its centroid may be far off)."""
    o = obs[valid].astype(np.float32)
    pxv, pyv = px[valid], py[valid]
    out = {}
    for shape in SHAPES:
        period = 2 * math.pi / SYMMETRY[shape] if SYMMETRY[shape] else 2 * math.pi
        turns = np.arange(_TURNS[shape]) * period / _TURNS[shape]
        s, a = (g.ravel() for g in np.meshgrid(_SCALES, turns, indexing="ij"))
        best = None
        for stage in range(2):
            if stage == 1:  # around the best: positions a pixel or two off (far off at an edge), sizes and turns between the grid's
                _, cx0, cy0, s0, a0 = best
                step = period / _TURNS[shape]
                reach = int(math.ceil(s0 * H / 2)) + 1 if wide else 2
                ox, oy, ks, ka = np.meshgrid(np.arange(-reach, reach + 1) / H, np.arange(-2, 3) / H, [0.94, 1.0, 1.06], [-step / 3, 0, step / 3] if SYMMETRY[shape] else [0.0], indexing="ij")
                cx, cy, s, a = cx0 + ox.ravel(), cy0 + oy.ravel(), s0 * ks.ravel(), a0 + ka.ravel()
            else:
                cx, cy = _centre(shape, mx, my, s, a)
            inside = _silhouettes(shape, cx, cy, s, a, pxv, pyv).astype(np.float32)
            inter = inside @ o
            iou = inter / (inside.sum(1) + o.sum() - inter + 1e-6)
            k = int(np.argmax(iou))
            if best is None or iou[k] >= best[0]:
                best = (float(iou[k]), float(cx[k]), float(cy[k]), float(s[k]), float(a[k]) % period)
        out[shape] = best
    return out


def _detections(idx: np.ndarray, dist: np.ndarray, H: int, W: int) -> list[dict]:
    """Object-coloured blobs of one frame, each with its best silhouettes."""
    is_obj = np.isin(idx, list(OBJECT_IDS)) & (dist < _NEAR)
    found = []
    for pid, name in OBJECT_IDS.items():
        lab, n = ndimage.label((idx == pid) & (dist < _NEAR))
        for k, sl in enumerate(ndimage.find_objects(lab), start=1):
            if sl is None:
                continue
            blob = lab == k
            area = int(blob[sl].sum())
            if area < _MIN_AREA:
                continue
            ys, xs = np.nonzero(blob)
            side = max(sl[0].stop - sl[0].start, sl[1].stop - sl[1].start)
            half = int(side * 1.1) + 3
            cyp, cxp = int(ys.mean()), int(xs.mean())
            rows = np.arange(cyp - half, cyp + half + 1)
            cols = np.arange(cxp - half, cxp + half + 1)
            R, C = np.meshgrid(rows, cols, indexing="ij")
            inframe = (R >= 0) & (R < H) & (C >= 0) & (C < W)
            Rc, Cc = np.clip(R, 0, H - 1), np.clip(C, 0, W - 1)
            obs = blob[Rc, Cc] & inframe
            valid = inframe & (obs | ~is_obj[Rc, Cc])  # another object's pixels may hide this one: they do not count
            px, py = (C.ravel() + 0.5) / H, (R.ravel() + 0.5) / H
            wide = sl[1].start == 0 or sl[1].stop == W
            fits = [_fit(obs.ravel(), valid.ravel(), px, py, (xs.mean() + 0.5) / H, (ys.mean() + 0.5) / H, wide, H)]
            if max(fits[0].values())[0] < _ONE and area >= 2 * _MIN_AREA:  # perhaps objects of one colour that touch
                fits = _split(obs, valid, px, py, wide, H) or fits
            found += [{"colour": name, "area": int(area / len(fits)), "fits": f} for f in fits]
    return found


def _split(obs: np.ndarray, valid: np.ndarray, px, py, wide: bool, H: int) -> list[dict] | None:
    """A blob as 2-3 objects of one colour that overlap: its pixels split between the peaks of
    their distance from the blob's edge (nearest peak first, then each object's fitted
    silhouette), each part fitted with the other parts' pixels not counting. None where that
    explains the blob no better than one object."""
    depth = ndimage.distance_transform_edt(obs)
    peaks, n = ndimage.label((depth == ndimage.maximum_filter(depth, size=5)) & (depth >= 2) & obs)
    if n < 2:
        return None
    top = np.argsort(ndimage.maximum(depth, peaks, np.arange(1, n + 1)))[::-1][:SLOTS] + 1
    centres = np.array(ndimage.center_of_mass(obs, peaks, top))  # (k, 2) rows, cols in the crop
    rr, cc = np.nonzero(obs)
    near = np.argmin((rr[:, None] - centres[None, :, 0]) ** 2 + (cc[:, None] - centres[None, :, 1]) ** 2, axis=1)
    owner = np.full(obs.shape, -1)
    owner[rr, cc] = near
    o, ok = obs.ravel(), valid.ravel()
    parts = [(owner == k).ravel() for k in range(len(top))]
    for _ in range(2):
        fits, masks = [], []
        for part in parts:
            if part.sum() < _MIN_AREA:
                continue
            fit = _fit(part, ok & (part | ~o), px, py, float(px[part].mean()), float(py[part].mean()), wide, H)
            shape, (_, cx, cy, sc, a) = max(fit.items(), key=lambda kv: kv[1][0])
            fits.append(fit)
            masks.append(_silhouettes(shape, np.array([cx]), np.array([cy]), np.array([sc]), np.array([a]), px, py)[0])
        if len(fits) < 2:
            return None
        parts = list(np.array(masks) & o)  # next: the blob's pixels each fitted object covers
    union = np.any(masks, axis=0)
    iou = (union & o & ok).sum() / max(((union | o) & ok).sum(), 1)
    return fits if iou > _SPLIT else None


def _phase(cx: float, s: float, aspect: float) -> float:
    return 2 * math.pi * (cx + s / 2) / _period(aspect, s)


def _row(colour: str, shape: str, cx: float, cy: float, s: float, angle: float, aspect: float) -> np.ndarray:
    """One slot's features: present, colour, shape, horizontal phase, height, size and turn."""
    hot_c = np.full(len(COLOURS), -1, np.float32)
    hot_c[list(COLOURS).index(colour)] = 1
    hot_s = np.full(len(SHAPES), -1, np.float32)
    hot_s[SHAPES.index(shape)] = 1
    phase, turn = _phase(cx, s, aspect), SYMMETRY[shape] * angle
    return np.array([1, *hot_c, *hot_s, math.cos(phase), math.sin(phase), (cy - _Y_MID) / _Y_SPREAD, (math.log(s) - _LOG_SCALE_MID) / _LOG_SCALE_SPREAD, math.cos(turn), math.sin(turn)], np.float32)


def read(frames: np.ndarray, slots: int = SLOTS) -> np.ndarray:
    """The layout of frames (T, H, W, 3) uint8, read from their pixels: (T, slots, FEATURES), the
    `slots` objects seen longest first, absent slots as `features` leaves them. A frame where a
    track's object is not seen takes its place from the frames around it."""
    T, H, W, _ = frames.shape
    aspect = W / H
    idx, dist = nearest_palette(frames)
    tracks: list[dict] = []  # {colour, frames: {f: detection}}
    last = lambda tr: tr["frames"][max(tr["frames"])]["at"]  # noqa: E731 - where a track was last seen
    for f in range(T):
        dets = _detections(idx[f], dist[f], H, W)
        # an object leaving one side shows its other copy on the other: one object, kept once
        dets.sort(key=lambda d: -d["area"])
        kept = []
        for d in dets:
            _, cx, cy, s, _ = max(d["fits"].values())
            d["at"] = (_phase(cx, s, aspect), cy)
            if not any(k["colour"] == d["colour"] and _apart(k["at"], d["at"], aspect) < 0.05 for k in kept):
                kept.append(d)
        taken: set[int] = set()
        for d in kept:
            live = [tr for tr in tracks if tr["colour"] == d["colour"] and max(tr["frames"]) >= f - 3 and id(tr) not in taken]
            near = min(live, key=lambda tr: _apart(last(tr), d["at"], aspect), default=None)
            if near is None or _apart(last(near), d["at"], aspect) > _LINK:
                near = {"colour": d["colour"], "frames": {}}
                tracks.append(near)
            taken.add(id(near))
            near["frames"][f] = d
    tracks = [tr for tr in tracks if len(tr["frames"]) >= max(1, int(T * _SEEN))]
    tracks.sort(key=lambda tr: (-len(tr["frames"]), -sum(d["area"] for d in tr["frames"].values())))
    out = np.zeros((T, slots, FEATURES), np.float32)
    out[:, :, 0] = -1
    for j, tr in enumerate(tracks[:slots]):
        shape = max(SHAPES, key=lambda sh: sum(d["fits"][sh][0] for d in tr["frames"].values()))
        seen = sorted(tr["frames"])
        fit = np.array([tr["frames"][f]["fits"][shape][1:] for f in seen])  # cx, cy, s, turn
        xs = np.unwrap([_phase(cx, s, aspect) for cx, _, s, _ in fit])  # along the wrap, continuous
        for f in range(T):
            k = int(np.argmin([abs(f - g) for g in seen]))
            phase = float(np.interp(f, seen, xs))
            cy = float(np.interp(f, seen, fit[:, 1]))
            s = float(np.exp(np.interp(f, seen, np.log(fit[:, 2]))))
            cx = phase / (2 * math.pi) * _period(aspect, s) - s / 2
            out[f, j] = _row(tr["colour"], shape, cx, cy, s, float(fit[k, 3]), aspect)
    return out


_FOLLOW_NEAR = 70  # colour distance within which a pixel is the object's (measure.py's)
_FOLLOW_REACH = 0.25  # frame heights from its planned centre within which an object is looked for


def heights(frames: np.ndarray, feat: np.ndarray) -> np.ndarray:
    """How high each object of a layout was drawn: (T, SLOTS) centre heights (frame heights, down
    the frame) of the blob of the slot's colour nearest its planned place in frames (T, H, W, 3)
    uint8, NaN where none is within _FOLLOW_REACH. Much cheaper than `read`: the layout says what
    to look for and where, so only heights are measured, no silhouettes fitted."""
    T, H, W, _ = frames.shape
    feat = np.asarray(feat, np.float32)
    if len(feat) != T:
        raise ValueError(f"frames and layout must have as many frames. Got {T} and {len(feat)}.")
    aspect = W / H
    idx, dist = nearest_palette(frames)
    ids = {n: i for i, n in OBJECT_IDS.items()}
    min_area = max(3, int(0.125 * (0.1 * H) ** 2))
    out = np.full((T, feat.shape[1]), np.nan, np.float32)
    for f, objs in enumerate(objects(feat, aspect)):
        slots = [j for j in range(feat.shape[1]) if feat[f, j, 0] > 0]
        blobs: dict[str, list[tuple[float, float]]] = {}
        for j, o in zip(slots, objs):
            colour, _ = identity(feat[f, j])
            if colour not in blobs:
                lab, n = ndimage.label((idx[f] == ids[colour]) & (dist[f] < _FOLLOW_NEAR))
                blobs[colour] = []
                if n:
                    ones = np.ones_like(lab)
                    areas = ndimage.sum(ones, lab, np.arange(1, n + 1))
                    centres = ndimage.center_of_mass(ones, lab, np.arange(1, n + 1))
                    blobs[colour] = [((c[1] + 0.5) / H, (c[0] + 0.5) / H) for c, a in zip(centres, areas) if a >= min_area]
            cx, cy = o["x"] + o["scale"] / 2, o["y"]
            best, near = None, _FOLLOW_REACH
            for x, y in blobs[colour]:
                dx = abs(x - cx) % aspect
                d = math.hypot(min(dx, aspect - dx), y - cy)
                if d < near:
                    best, near = y, d
            if best is not None:
                out[f, j] = best
    return out


def drawn_contacts(y: np.ndarray, descent: float = 0.015, rise: float = 0.008, flat: float = 0.003) -> list[float]:
    """When one drawn track (T,) of heights (NaN: unseen) touches the ground: the times (frames,
    sub-frame) of its lowest points, each the middle of the frames it stays lowest in (within
    `flat` frame heights), where it came down at least `descent` over the 3 frames before and
    goes up at least `rise` over the 3 after (a bounce, or a landing that rebounds)."""
    y = np.asarray(y, np.float32)
    T, out, i = len(y), [], 1
    while i < T - 1:
        if np.isnan(y[i]):
            i += 1
            continue
        j = i
        while j + 1 < T and not np.isnan(y[j + 1]) and abs(y[j + 1] - y[i]) <= flat:
            j += 1
        before, after = y[max(0, i - 3) : i], y[j + 1 : j + 4]
        if np.isfinite(before).any() and np.isfinite(after).any():
            top = float(np.nanmax(y[i : j + 1]))
            if top >= np.nanmax(before) and top >= np.nanmax(after) and top - np.nanmin(before) >= descent and top - np.nanmin(after) >= rise:
                out.append((i + j) / 2)
        i = j + 1
    return out


def _apart(p: tuple[float, float], q: tuple[float, float], aspect: float) -> float:
    """Distance (frame heights, about) between two (phase, height) places, across the wrap."""
    d = abs(p[0] - q[0]) % (2 * math.pi)
    d = min(d, 2 * math.pi - d) / (2 * math.pi) * aspect
    return float(math.hypot(d, p[1] - q[1]))


__all__ = ["BIG", "CUE_CHANNELS", "FEATURES", "LAYOUT_CHANNELS", "PLACE", "SLOTS", "SYMMETRY", "contact_frames", "cues", "drawn_contacts", "extents", "features", "heights", "identity", "maps", "objects", "read", "settle"]
