"""Vitascope World v1: the procedural world the embedded model is trained on (shared/world-spec.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .captions import caption
from .render import Clip, render
from .scene import Scene, WorldObject, sample_scene
from .sound import ENV_RATE, N_BANDS, SAMPLE_RATE, amp_to_feature, envelopes, feature_to_amp, vocode

__all__ = [
    "ENV_RATE",
    "N_BANDS",
    "SAMPLE_RATE",
    "Sample",
    "Scene",
    "WorldObject",
    "amp_to_feature",
    "caption",
    "envelopes",
    "feature_to_amp",
    "render",
    "sample_scene",
    "simulate",
    "vocode",
]


@dataclass
class Sample:
    scene: Scene
    caption: str
    frames: np.ndarray  # (T, H, W, 3) uint8
    masks: np.ndarray  # (T, H, W) bool
    audio_env: np.ndarray  # (T * ENV_RATE / fps, N_BANDS) band amplitudes
    fps: float

    def waveform(self) -> np.ndarray:
        n = int(round(len(self.frames) / self.fps * SAMPLE_RATE))
        return vocode(self.audio_env, n)


def simulate(
    seed: int,
    *,
    height: int = 64,
    width: int = 112,
    seconds: float = 4.0,
    fps: float = 12.0,
    start: float = 0.0,
    split: str = "train",
    scene: Scene | None = None,
) -> Sample:
    """One clip of the world: a scene drawn from `seed` (or given), its frames, sound and caption."""
    scene = scene if scene is not None else sample_scene(seed, aspect=width / height)
    n_frames = int(round(seconds * fps))
    clip: Clip = render(scene, height, width, fps, n_frames, start=start)
    env = envelopes(scene, start, int(round(seconds * ENV_RATE)))
    text = caption(scene, np.random.default_rng(seed + 7919), split=split)
    return Sample(scene=scene, caption=text, frames=clip.frames, masks=clip.masks, audio_env=env, fps=fps)
