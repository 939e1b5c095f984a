"""From a Videos API request to one pipeline call: size, frames, steps, guidance, seed.

Size: the model draws at the native size nearest in aspect ratio (of the preset's tier) and the
clip is scaled to the size asked for when it is encoded. A size whose aspect ratio is more than
ASPECT_TOLERANCE away from every native size is refused (400), since scaling would distort it.
Seconds: frames at the model's frame rate, rounded to the VAE's rule (frame_step * k + 1).
Presets: `sora-2` (and any name without "pro") is the fast preset, `sora-2-pro` the quality one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vitascope.models.base import ModelError
from vitascope.models.open_weights.specs import OpenModel

ASPECT_TOLERANCE = 1.5  # the farthest a requested aspect ratio may be from a native one (as a factor)


@dataclass(frozen=True)
class Plan:
    width: int  # what the pipeline draws
    height: int
    num_frames: int
    fps: float
    steps: int
    guidance: float
    negative_prompt: str
    preset: str
    seed: int


def preset_for(requested_model: str | None) -> str:
    """Sora's model names pick a preset: `*-pro*` is quality, everything else fast."""
    return "quality" if requested_model and "pro" in requested_model.split("-") else "fast"


def nearest_size(spec: OpenModel, width: int, height: int, tier: str | None = None) -> tuple[int, int]:
    """The native (width, height) closest in aspect ratio to the request, from one tier or all."""
    if width <= 0 or height <= 0:
        raise ModelError(f"size must be positive. Got {width}x{height}.", param="size")
    tiers = [tier] if tier in spec.sizes else list(spec.sizes)
    sizes = [s for t in tiers for s in spec.sizes[t]]
    want = math.log(width / height)
    best = min(sizes, key=lambda s: abs(math.log(s[0] / s[1]) - want))
    if abs(math.log(best[0] / best[1]) - want) > math.log(ASPECT_TOLERANCE):
        natives = ", ".join(f"{w}x{h}" for w, h in sizes)
        raise ModelError(
            f"Model '{spec.name}' cannot make size {width}x{height}: its sizes are {natives}, and none is within "
            f"{ASPECT_TOLERANCE:g}x of that aspect ratio.",
            param="size",
        )
    return best


def check_size(spec: OpenModel, width: int, height: int) -> None:
    nearest_size(spec, width, height)


def frames_for(spec: OpenModel, seconds: float) -> int:
    """Frames for `seconds` at the model's rate, on the VAE's grid: frame_step * k + 1, k >= 1."""
    if seconds <= 0:
        raise ModelError(f"seconds must be positive. Got {seconds:g}.", param="seconds")
    k = max(1, round(seconds * spec.fps / spec.frame_step))
    return spec.frame_step * k + 1


def plan(spec: OpenModel, *, width: int, height: int, seconds: float, seed: int, requested_model: str | None = None) -> Plan:
    preset_name = preset_for(requested_model)
    preset = spec.presets.get(preset_name) or next(iter(spec.presets.values()))
    w, h = nearest_size(spec, width, height, preset.tier)
    return Plan(
        width=w,
        height=h,
        num_frames=frames_for(spec, seconds),
        fps=spec.fps,
        steps=preset.steps,
        guidance=preset.guidance,
        negative_prompt=spec.negative_prompt,
        preset=preset_name,
        seed=seed,
    )
