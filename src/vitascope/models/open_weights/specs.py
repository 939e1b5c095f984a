"""The open-weight video models Vitascope serves through diffusers, described as data.

A spec says where a model's weights come from, which diffusers pipeline does each job, what it
can make (native sizes, frame rate, frame count rule, audio), and the presets that Sora's names
map to: `sora-2` is the fast preset, `sora-2-pro` the quality one. A model directory may carry a
`vitascope.json` beside `model_index.json` that overrides sizes, fps and presets (a fine-tune at
another resolution; the tiny test models).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from vitascope.models.base import Capabilities

WAN_NEGATIVE = (
    "bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images, static, overall gray, "
    "worst quality, low quality, JPEG compression residue, ugly, incomplete, extra fingers, poorly drawn hands, poorly "
    "drawn faces, deformed, disfigured, misshapen limbs, fused fingers, still picture, messy background, three legs, many "
    "people in the background, walking backwards"
)
LTX_NEGATIVE = "worst quality, inconsistent motion, blurry, jittery, distorted"


@dataclass(frozen=True)
class Preset:
    steps: int
    guidance: float
    tier: str  # which of the model's sizes: "480p", "720p", ...


@dataclass(frozen=True)
class OpenModel:
    name: str
    repo_id: str  # the diffusers-format weights on the Hugging Face hub
    family: str  # wan | ltx | ltx2: how requests become pipeline calls
    pipelines: dict[str, str]  # job -> diffusers pipeline class: t2v, i2v, v2v, cond
    fps: float
    frame_step: int  # frames = frame_step * k + 1 (the VAE's temporal compression)
    max_frames: int  # the longest clip the model was trained on
    sizes: dict[str, tuple[tuple[int, int], ...]]  # tier -> native (width, height) sizes
    size_multiple: int
    presets: dict[str, Preset]
    capabilities: Capabilities
    negative_prompt: str = ""
    gpu_gb: float = 0.0  # bf16 weights, all on the GPU (transformer + text encoder + VAE)
    min_gpu_gb: float = 0.0  # with offloading
    description: str = ""
    extra: dict = field(default_factory=dict)  # per-family call arguments

    def dirname(self) -> str:
        return self.name

    def with_overrides(self, model_dir: Path) -> "OpenModel":
        """The spec as a model directory's `vitascope.json` amends it."""
        f = model_dir / "vitascope.json"
        if not f.is_file():
            return self
        o = json.loads(f.read_text())
        kw = {}
        if "sizes" in o:
            kw["sizes"] = {tier: tuple(tuple(s) for s in sizes) for tier, sizes in o["sizes"].items()}
        if "presets" in o:
            kw["presets"] = {k: Preset(**v) for k, v in o["presets"].items()}
        for k in ("fps", "max_frames", "size_multiple", "frame_step"):
            if k in o:
                kw[k] = o[k]
        return replace(self, **kw)


def _caps(*, i2v: bool, remix: bool, extend: bool, audio: bool, t2v: bool = True) -> Capabilities:
    # sizes stay open: any size near one of the model's aspect ratios is made at the nearest
    # native size and scaled (see mapping.check_size)
    return Capabilities(text_to_video=t2v, image_to_video=i2v, remix=remix, extension=extend, audio=audio, characters=False, max_side=1920, max_seconds=20)


WAN_480 = ((832, 480), (480, 832), (624, 624))
WAN_720 = ((1280, 720), (720, 1280), (960, 960))

OPEN_MODELS: tuple[OpenModel, ...] = (
    OpenModel(
        name="wan2.1-t2v-1.3b",
        repo_id="Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
        family="wan",
        pipelines={"t2v": "WanPipeline", "v2v": "WanVideoToVideoPipeline"},
        fps=16,
        frame_step=4,
        max_frames=81,
        sizes={"480p": WAN_480},
        size_multiple=16,
        presets={"fast": Preset(30, 5.0, "480p"), "quality": Preset(50, 6.0, "480p")},
        capabilities=_caps(i2v=False, remix=True, extend=False, audio=False),
        negative_prompt=WAN_NEGATIVE,
        gpu_gb=17.0,
        min_gpu_gb=8.0,
        description="Wan 2.1 text-to-video, 1.3B: 480p, 16 fps, silent.",
    ),
    OpenModel(
        name="wan2.1-t2v-14b",
        repo_id="Wan-AI/Wan2.1-T2V-14B-Diffusers",
        family="wan",
        pipelines={"t2v": "WanPipeline", "v2v": "WanVideoToVideoPipeline"},
        fps=16,
        frame_step=4,
        max_frames=81,
        sizes={"480p": WAN_480, "720p": WAN_720},
        size_multiple=16,
        presets={"fast": Preset(30, 5.0, "480p"), "quality": Preset(50, 5.0, "720p")},
        capabilities=_caps(i2v=False, remix=True, extend=False, audio=False),
        negative_prompt=WAN_NEGATIVE,
        gpu_gb=40.0,
        min_gpu_gb=16.0,
        description="Wan 2.1 text-to-video, 14B: 480p and 720p, 16 fps, silent.",
    ),
    OpenModel(
        name="wan2.1-i2v-14b-480p",
        repo_id="Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",
        family="wan",
        pipelines={"i2v": "WanImageToVideoPipeline"},
        fps=16,
        frame_step=4,
        max_frames=81,
        sizes={"480p": WAN_480},
        size_multiple=16,
        presets={"fast": Preset(30, 5.0, "480p"), "quality": Preset(50, 5.0, "480p")},
        capabilities=_caps(t2v=False, i2v=True, remix=False, extend=True, audio=False),
        negative_prompt=WAN_NEGATIVE,
        gpu_gb=42.0,
        min_gpu_gb=16.0,
        description="Wan 2.1 image-to-video, 14B (CLIP image encoder): 480p, 16 fps, silent; extends from the last frame.",
    ),
    OpenModel(
        name="wan2.2-ti2v-5b",
        repo_id="Wan-AI/Wan2.2-TI2V-5B-Diffusers",
        family="wan",
        pipelines={"t2v": "WanPipeline", "i2v": "WanImageToVideoPipeline", "v2v": "WanVideoToVideoPipeline"},
        fps=24,
        frame_step=4,
        max_frames=121,
        sizes={"720p": ((1280, 704), (704, 1280), (960, 960))},
        size_multiple=32,
        presets={"fast": Preset(30, 5.0, "720p"), "quality": Preset(50, 5.0, "720p")},
        capabilities=_caps(i2v=True, remix=True, extend=True, audio=False),
        negative_prompt=WAN_NEGATIVE,
        gpu_gb=24.0,
        min_gpu_gb=10.0,
        description="Wan 2.2 text- and image-to-video, 5B: 720p, 24 fps, silent; extends from the last frame.",
    ),
    OpenModel(
        name="wan2.2-t2v-a14b",
        repo_id="Wan-AI/Wan2.2-T2V-A14B-Diffusers",
        family="wan",
        pipelines={"t2v": "WanPipeline"},
        fps=16,
        frame_step=4,
        max_frames=81,
        sizes={"480p": WAN_480, "720p": WAN_720},
        size_multiple=16,
        presets={"fast": Preset(30, 4.0, "480p"), "quality": Preset(40, 4.0, "720p")},
        capabilities=_caps(i2v=False, remix=False, extend=False, audio=False),
        negative_prompt=WAN_NEGATIVE,
        gpu_gb=70.0,
        min_gpu_gb=24.0,
        description="Wan 2.2 text-to-video, two 14B experts (high and low noise): 480p and 720p, 16 fps, silent.",
        extra={"guidance_2": 3.0},
    ),
    OpenModel(
        name="ltx-video",
        repo_id="Lightricks/LTX-Video",
        family="ltx",
        pipelines={"t2v": "LTXPipeline", "i2v": "LTXImageToVideoPipeline", "cond": "LTXConditionPipeline"},
        fps=24,
        frame_step=8,
        max_frames=257,
        sizes={"480p": ((768, 512), (512, 768), (640, 640)), "720p": ((1216, 704), (704, 1216), (960, 960))},
        size_multiple=32,
        presets={"fast": Preset(30, 3.0, "480p"), "quality": Preset(50, 3.0, "720p")},
        capabilities=_caps(i2v=True, remix=True, extend=True, audio=False),
        negative_prompt=LTX_NEGATIVE,
        gpu_gb=18.0,
        min_gpu_gb=8.0,
        description="LTX-Video (2B): fast text- and image-to-video, 24 fps, silent; video conditioning for extend and remix.",
    ),
    OpenModel(
        name="ltx-2",
        repo_id="Lightricks/LTX-2",
        family="ltx2",
        pipelines={"t2v": "LTX2Pipeline", "i2v": "LTX2ImageToVideoPipeline", "cond": "LTX2ConditionPipeline"},
        fps=24,
        frame_step=8,
        max_frames=257,
        sizes={"480p": ((768, 512), (512, 768), (640, 640)), "720p": ((1280, 704), (704, 1280), (960, 960))},
        size_multiple=32,
        presets={"fast": Preset(30, 3.0, "480p"), "quality": Preset(40, 4.0, "720p")},
        capabilities=_caps(i2v=True, remix=False, extend=True, audio=True),
        negative_prompt=LTX_NEGATIVE,
        gpu_gb=60.0,
        min_gpu_gb=24.0,
        description="LTX-2 (19B): video with synchronized audio, 24 fps.",
    ),
)

BY_NAME = {m.name: m for m in OPEN_MODELS}
