"""`vitascope eval`: prompt adherence and audio-video sync of a world model, from pixels and sound.

Held-out scenes (seeds never drawn in training, which draws from 2**62 at random) are phrased
with held-out words (`split="heldout"`: crimson, sphere, pyramid, dusk, ...). The model makes
each clip through the real platform path (MP4 encode, decode); `world.measure` reads it; the
readings are scored against the scene the prompt came from. The same scoring on the simulator's
own clips gives the ceiling of the measurement itself, printed beside the model's numbers.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vitascope import media
from vitascope.world import caption, sample_scene, simulate
from vitascope.world.measure import Reading, measure
from vitascope.world.scene import Scene

ATTRIBUTES = ("sky", "ground", "count", "colour", "shape", "size", "motion", "camera", "weather")
EVAL_SEED_BASE = 7_000_000_000  # far from anything a short run could draw, and fixed
VALIDATION_SEED_BASE = 7_100_000_000  # other held-out scenes: for choosing checkpoints and settings, so eval stays unseen
SIZES = ((1280, 720), (720, 1280), (960, 960))


@dataclass
class Score:
    right: dict[str, float] = field(default_factory=lambda: {a: 0.0 for a in ATTRIBUTES})
    total: dict[str, float] = field(default_factory=lambda: {a: 0.0 for a in ATTRIBUTES})
    sync_hits: float = 0.0
    sync_total: int = 0

    def add(self, attr: str, ok: bool) -> None:
        self.right[attr] += float(ok)
        self.total[attr] += 1

    def accuracy(self, attr: str) -> float:
        return self.right[attr] / self.total[attr] if self.total[attr] else float("nan")

    @property
    def overall(self) -> float:
        return sum(self.right.values()) / max(sum(self.total.values()), 1)

    @property
    def sync(self) -> float:
        return self.sync_hits / self.sync_total if self.sync_total else float("nan")


def _expected_motion(o) -> str:
    return "still" if o.motion == "spinning" and o.shape == "ball" else o.motion  # a spinning disc looks still


def score_reading(scene: Scene, r: Reading, score: Score) -> None:
    score.add("sky", r.sky == scene.sky)
    score.add("ground", r.ground == scene.ground)
    score.add("camera", r.camera == scene.camera)
    score.add("weather", r.weather == scene.weather)
    score.add("count", r.count == len(scene.objects))
    # associate each object of the scene with a distinct track, the way that agrees most
    tracks = r.tracks + [None] * len(scene.objects)

    def agreement(perm) -> int:
        total = 0
        for o, j in zip(scene.objects, perm):
            t = tracks[j]
            if t is not None:
                total += 4 * (t.colour == o.colour) + (t.shape == o.shape) + (t.size == o.size) + (t.motion == _expected_motion(o))
        return total

    best = max(itertools.permutations(range(len(tracks)), len(scene.objects)), key=agreement)
    for o, j in zip(scene.objects, best):
        t = tracks[j]
        found = t is not None and t.colour == o.colour
        score.add("colour", found)
        score.add("shape", found and t.shape == o.shape)
        score.add("size", found and t.size == o.size)
        score.add("motion", found and t.motion == _expected_motion(o))
    if r.sync is not None:
        score.sync_hits += r.sync * len(r.contacts)
        score.sync_total += len(r.contacts)


def eval_cases(n: int, seed_base: int = EVAL_SEED_BASE, split: str = "heldout") -> list[tuple[int, Scene, str, tuple[int, int]]]:
    """(seed, scene, prompt, size) of n held-out scenes. split="train" phrases the same scenes in
    training words: the difference it makes measures what held-out words cost, apart from drawing."""
    if split not in ("heldout", "train", "dev"):
        raise ValueError(f"split must be 'heldout', 'train' or 'dev'. Got {split!r}.")
    out = []
    for i in range(n):
        w, h = SIZES[i % len(SIZES)]
        seed = seed_base + i
        scene = sample_scene(seed, aspect=w / h)
        out.append((seed, scene, caption(scene, np.random.default_rng(seed), split=split), (w, h)))
    return out


Generate = Callable[[str, int, int, int, float], tuple[np.ndarray, float, np.ndarray, int]]


def backend_calls(backend) -> tuple[Generate, Callable]:
    """(generate, extend) for `evaluate` and `evaluate_extension`, through a backend's generate."""
    from vitascope.models.base import GenerationRequest

    def run(req):
        r = backend.generate(req, lambda f: None)
        return r.frames, r.fps, r.audio, r.sample_rate

    def generate(prompt, seed, w, h, seconds):
        return run(GenerationRequest(prompt=prompt, seconds=seconds, width=w, height=h, seed=seed))

    def extend(prompt, seed, frames, fps, audio, rate, seconds):
        h, w = frames.shape[1:3]
        return run(GenerationRequest(prompt=prompt, seconds=seconds, width=w, height=h, seed=seed, mode="extend", video=frames, video_fps=fps, audio=audio, audio_rate=rate))

    return generate, extend


def evaluate(
    generate: Generate | None,
    n: int = 30,
    seconds: float = 4.0,
    eval_size: tuple[int, int] | None = None,
    progress=None,
    seed_base: int = EVAL_SEED_BASE,
    split: str = "heldout",
    keep: Path | None = None,
) -> Score:
    """Score n held-out prompts. generate(prompt, seed, width, height, seconds) -> (frames, fps, audio, rate);
    None scores the simulator's own clips (the measurement's ceiling). seed_base=VALIDATION_SEED_BASE
    scores other held-out scenes, for choosing checkpoints without looking at the eval set;
    split="train" asks for the same scenes in training words (see eval_cases); keep: a folder
    where each measured clip is kept as <seed>.mp4, for looking into a score."""
    score = Score()
    with tempfile.TemporaryDirectory() as tmp:
        for k, (seed, scene, prompt, (w, h)) in enumerate(eval_cases(n, seed_base, split)):
            ew, eh = eval_size or (w // 4 // 2 * 2, h // 4 // 2 * 2)  # measured at a quarter of the size asked for
            if generate is None:
                s = simulate(seed, height=eh, width=ew, seconds=seconds, scene=scene)
                frames, fps, audio, rate = s.frames, s.fps, s.waveform(), 16000
            else:
                frames, fps, audio, rate = generate(prompt, seed, w, h, seconds)
            _score_clip(Path(tmp), scene, frames, fps, audio, rate, (ew, eh), score)
            if keep is not None:
                keep.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(Path(tmp) / "clip.mp4", keep / f"{seed}.mp4")
            if progress:
                progress(k + 1, n)
    return score


def _score_clip(tmp: Path, scene: Scene, frames, fps, audio, rate, size: tuple[int, int], score: Score) -> None:
    path = tmp / "clip.mp4"  # through the platform's own encoder and back
    media.encode_mp4(path, frames, fps, audio, rate, size=size, out_fps=int(round(fps)))
    d = media.decode(path)
    score_reading(scene, measure(d.frames, d.fps, d.audio, d.sample_rate or rate), score)


def evaluate_extension(generate: Generate | None, extend: Callable | None, n: int = 12, total: float = 20.0, window: float = 4.0, progress=None) -> tuple[Score, Score]:
    """Consistency of long clips built from extensions: a `window`-second clip from the prompt,
    extended `window` seconds at a time to `total`; the first and the last `window` seconds are
    scored against the prompt's scene. extend(prompt, seed, frames, fps, audio, rate, seconds)
    -> the longer clip. None for both scores the simulator's own long clips (the ceiling)."""
    first, last = Score(), Score()
    with tempfile.TemporaryDirectory() as tmp:
        for k, (seed, scene, prompt, (w, h)) in enumerate(eval_cases(n)):
            ew, eh = w // 4 // 2 * 2, h // 4 // 2 * 2
            if generate is None:
                s = simulate(seed, height=eh, width=ew, seconds=total, scene=scene)
                frames, fps, audio, rate = s.frames, s.fps, s.waveform(), 16000
            else:
                frames, fps, audio, rate = generate(prompt, seed, w, h, window)
                while len(frames) / fps < total - 1e-6:
                    frames, fps, audio, rate = extend(prompt, seed + len(frames), frames, fps, audio, rate, min(window, total - len(frames) / fps))
            nf, na = int(round(window * fps)), int(round(window * rate))
            _score_clip(Path(tmp), scene, frames[:nf], fps, audio[:na], rate, (ew, eh), first)
            _score_clip(Path(tmp), scene, frames[-nf:], fps, audio[len(audio) - int(round(len(frames[-nf:]) / fps * rate)) :], rate, (ew, eh), last)
            if progress:
                progress(k + 1, n)
    return first, last


def table(rows: dict[str, Score]) -> str:
    names = list(rows)
    lines = ["| attribute | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for a in ATTRIBUTES:
        lines.append(f"| {a} | " + " | ".join(f"{100 * rows[n].accuracy(a):.1f}%" for n in names) + " |")
    lines.append("| **all attributes** | " + " | ".join(f"**{100 * rows[n].overall:.1f}%**" for n in names) + " |")
    lines.append("| sync (contacts with an onset within a frame) | " + " | ".join(f"{100 * rows[n].sync:.1f}%" for n in names) + " |")
    return "\n".join(lines)
