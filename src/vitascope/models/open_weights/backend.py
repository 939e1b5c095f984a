"""Diffusers models as Vitascope backends: weights found on disk, one pipeline per kind of job.

Weights are looked for in `<models_dir>/<name>` (a `save_pretrained` directory, or one made by
`huggingface-cli download <repo> --local-dir ...`) and then in the Hugging Face cache. The
pipeline loads on the first job and stays loaded; image-to-video, video-to-video and video
conditioning reuse its components (`from_pipe`), so a model is in memory once.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vitascope import media
from vitascope.models.base import Capabilities, GenerationRequest, GenerationResult, ModelError, Progress
from vitascope.models.open_weights import mapping
from vitascope.models.open_weights.speed import CFGBatcher, Speed, apply, torch_dtype
from vitascope.models.open_weights.specs import OpenModel

log = logging.getLogger(__name__)

SILENT_RATE = 48_000
WAN_TEXT_LEN = 512  # the text length Wan's pipelines use when they encode the prompt themselves
EXTEND_CONTEXT_S = 0.35  # seconds of the source a video-conditioned extension sees


def locate(spec: OpenModel, models_dir: Path) -> tuple[Path | None, str]:
    """The directory holding `spec`'s weights, or None and where they were looked for."""
    local = Path(models_dir) / spec.dirname()
    if (local / "model_index.json").is_file():
        return local, str(local)
    try:
        from huggingface_hub import snapshot_download

        # the cache directory as the environment says now (huggingface_hub reads it once, at import)
        cached = Path(snapshot_download(spec.repo_id, local_files_only=True, cache_dir=os.environ.get("HF_HUB_CACHE")))
        if (cached / "model_index.json").is_file():
            return cached, str(cached)
    except Exception:  # not in the cache, or huggingface_hub absent
        pass
    return None, (
        f"weights not found in {local} nor in the Hugging Face cache ({spec.repo_id}); download them with "
        f"`huggingface-cli download {spec.repo_id} --local-dir {local}` (see docs/models/open-weights.md)"
    )


def capabilities(spec: OpenModel) -> Capabilities:
    return spec.capabilities


@dataclass
class _Job:
    req: GenerationRequest
    plan: mapping.Plan
    progress: Progress


class DiffusersModel:
    """One open-weight model; `generate` runs a job, `generate_batch` several alike ones at once."""

    def __init__(self, spec: OpenModel, models_dir: Path, speed: Speed | None = None, device: str = "auto"):
        self.spec = spec
        self.name = spec.name
        self.description = spec.description
        self.capabilities = spec.capabilities
        self.models_dir = Path(models_dir)
        self.speed = speed or Speed()
        self.device = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device))
        self._pipes: dict[str, object] = {}
        self._lock = threading.Lock()
        self._batchers: list[CFGBatcher] = []
        self.applied: dict = {}
        self._located = False

    def available(self) -> tuple[bool, str]:
        path, where = locate(self.spec, self.models_dir)
        return path is not None, where

    # --- loading ------------------------------------------------------------------------------
    def _load(self):
        if "base" in self._pipes:
            return self._pipes["base"]
        from diffusers import DiffusionPipeline

        path, where = locate(self.spec, self.models_dir)
        if path is None:
            raise ModelError(f"Model '{self.name}' is not available: {where}.", param="model", code="model_not_available")
        self.spec, self._located = self.spec.with_overrides(path), True
        pipe = DiffusionPipeline.from_pretrained(str(path), dtype=torch_dtype(self.speed.dtype, self.device))
        self._prepare(pipe)
        log.info("loaded %s from %s: %s", self.name, path, self.applied)
        return pipe

    @classmethod
    def from_pipeline(cls, spec: OpenModel, pipe, speed: Speed | None = None, device: str = "auto") -> "DiffusersModel":
        """A backend around a pipeline already in memory (the benchmark's random full-size models)."""
        m = cls(spec, Path("/nonexistent"), speed, device)
        m._prepare(pipe)
        m.available = lambda: (True, "in memory")  # type: ignore[method-assign]
        m._located = True  # its spec is the one given; no directory to read overrides from
        return m

    def _prepare(self, pipe) -> None:
        pipe.set_progress_bar_config(disable=True)
        self.applied = apply(pipe, self.speed, self.device)
        if self.speed.cfg_batch and self.spec.family == "wan":  # LTX pipelines batch the two passes already
            for name in ("transformer", "transformer_2"):
                if getattr(pipe, name, None) is not None:
                    self._batchers.append(CFGBatcher(getattr(pipe, name)).install())
        self._pipes["base"] = pipe

    def pipeline(self, job: str):
        """The pipeline for `job` (t2v, i2v, v2v, cond), sharing the loaded components."""
        base = self._load()
        cls_name = self.spec.pipelines[job]
        if job == "t2v" or type(base).__name__ == cls_name:
            return base
        if job not in self._pipes:
            import diffusers

            cls = getattr(diffusers, cls_name)
            accepted = inspect.signature(cls.__init__).parameters
            extra = {k: base.config[k] for k in ("boundary_ratio", "expand_timesteps") if k in accepted and k in base.config}
            pipe = cls.from_pipe(base, **extra)
            pipe.set_progress_bar_config(disable=True)
            _match_vae_scale(pipe, base)
            self._pipes[job] = pipe
        return self._pipes[job]

    # --- requests -----------------------------------------------------------------------------
    def plan(self, req: GenerationRequest) -> mapping.Plan:
        if not self._located:  # the directory's overrides, read once rather than on every batching check
            path, _ = locate(self.spec, self.models_dir)
            if path is not None:
                self.spec = self.spec.with_overrides(path)
                self._located = True
        return mapping.plan(self.spec, width=req.width, height=req.height, seconds=req.seconds, seed=req.seed, requested_model=req.preset)

    def batch_key(self, req: GenerationRequest) -> tuple | None:
        """Jobs with equal keys can share one denoising run: text-to-video at the same settings."""
        if req.mode != "create" or req.image is not None:
            return None
        p = self.plan(req)
        return (self.name, p.width, p.height, p.num_frames, p.steps, p.guidance)

    def generate(self, req: GenerationRequest, progress: Progress) -> GenerationResult:
        return self.generate_batch([req], [progress])[0]

    def generate_batch(self, reqs: list[GenerationRequest], progresses: list[Progress]) -> list[GenerationResult]:
        jobs = [_Job(r, self.plan(r), p) for r, p in zip(reqs, progresses)]
        with self._lock:  # one denoising run at a time on this model's device
            try:
                return self._run(jobs)
            except torch.cuda.OutOfMemoryError as e:
                torch.cuda.empty_cache()
                p = jobs[0].plan
                raise ModelError(
                    f"GPU out of memory making {len(jobs)} clip(s) of {p.width}x{p.height}, {p.num_frames} frames with "
                    f"'{self.name}' ({str(e).splitlines()[0]}). Ask for fewer seconds or a smaller size, or set "
                    "VITASCOPE_GPU_OFFLOAD=group.",
                    code="gpu_out_of_memory",
                ) from None
            finally:
                for b in self._batchers:
                    b.set_embeddings(None, None)

    def _run(self, jobs: list[_Job]) -> list[GenerationResult]:
        first = jobs[0]
        req, plan = first.req, first.plan
        if len(jobs) > 1 and any(self.batch_key(j.req) != self.batch_key(req) for j in jobs):
            raise ValueError("generate_batch needs jobs of one batch key")
        steps = plan.steps

        def on_step(pipe, i, t, kw):
            for j in jobs:
                j.progress((i + 1) / steps)
            return {}

        kw = dict(
            negative_prompt=[j.plan.negative_prompt for j in jobs],
            height=plan.height,
            width=plan.width,
            num_inference_steps=steps,
            guidance_scale=plan.guidance,
            generator=[torch.Generator(self.device).manual_seed(j.req.seed) for j in jobs],
            output_type="np",
            callback_on_step_end=on_step,
        )
        prompts = [j.req.prompt for j in jobs]
        fam = self.spec.family
        if fam in ("ltx", "ltx2"):
            kw["frame_rate"] = plan.fps
        if "guidance_2" in self.spec.extra and getattr(self._load(), "transformer_2", None) is not None:
            kw["guidance_scale_2"] = self.spec.extra["guidance_2"]
        keep_from, prefix = 0, None  # extension: frames of the output that repeat the source, and the source
        if req.mode == "extend":
            src = self._source(req, plan)
            prefix = src
            if fam == "wan":  # image-to-video from the last frame
                pipe = self.pipeline("i2v")
                kw["image"] = _pil(src[-1])
                kw["num_frames"] = mapping.frames_for(self.spec, req.seconds)
                keep_from = 1
            else:
                ctx = _context_frames(src, self.spec)
                kw["num_frames"] = mapping.frames_for(self.spec, req.seconds + len(ctx) / plan.fps)
                pipe = self.pipeline("cond")
                kw["conditions"] = [self._condition(ctx)]
                keep_from = len(ctx)
        elif req.mode in ("remix", "edit"):
            src = self._source(req, plan)
            n = mapping.frames_for(self.spec, len(src) / plan.fps)
            src = _pad_frames(src, n)
            if fam == "wan":
                pipe = self.pipeline("v2v")
                kw["video"] = [_pil(f) for f in src]
                kw["strength"] = float(req.strength)
            else:
                pipe = self.pipeline("cond")
                kw["num_frames"] = n
                kw["latents"] = self._encode(pipe, src, plan)
                kw["denoise_strength"] = float(req.strength)
        elif req.image is not None:
            pipe = self.pipeline("i2v")
            kw["image"] = _pil(media.fit(req.image, plan.height, plan.width))
            kw["num_frames"] = plan.num_frames
        else:
            pipe = self.pipeline("t2v")
            kw["num_frames"] = plan.num_frames
        if fam == "wan" and self._batchers:
            pe, ne = pipe.encode_prompt(
                prompts, kw.pop("negative_prompt"), do_classifier_free_guidance=plan.guidance > 1.0, max_sequence_length=WAN_TEXT_LEN, device=self.device
            )
            tdtype = pipe.transformer.dtype
            pe, ne = pe.to(tdtype), (ne.to(tdtype) if ne is not None else None)
            for b in self._batchers:
                b.set_embeddings(pe, ne)
            kw.update(prompt_embeds=pe, negative_prompt_embeds=ne)
        else:
            kw["prompt"] = prompts
        out = pipe(**kw)
        frames = np.asarray(out.frames)  # (B, T, H, W, 3) in [0, 1]
        audio = getattr(out, "audio", None)
        results = []
        for b, j in enumerate(jobs):
            clip = (np.clip(frames[b], 0, 1) * 255).round().astype(np.uint8)
            if req.mode == "extend":
                clip = np.concatenate([prefix, clip[keep_from:]])
            info = {"model": self.name, "native_size": [plan.width, plan.height], "frames": int(len(clip)), "steps": steps, "preset": plan.preset, "batch": len(jobs)}
            if audio is not None and self.capabilities.audio:
                a = audio[b].float().cpu().numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio[b], np.float32)
                wave = a.mean(axis=0) if a.ndim == 2 else a
                rate = int(pipe.vocoder.config.output_sampling_rate)
                if req.mode == "extend":
                    wave = wave[int(round(keep_from / plan.fps * rate)) :]  # the sound of the new frames
                info["audio"] = "generated"
            else:
                rate = SILENT_RATE
                wave = np.zeros(int(round((len(clip) - (len(prefix) if prefix is not None else 0)) / plan.fps * rate)), np.float32)
                info["audio"] = "none: this model makes silent video"
            if req.mode == "extend":  # the source keeps its own sound
                wave = np.concatenate([_source_sound(req, len(prefix) / plan.fps, rate), wave])
            results.append(GenerationResult(frames=clip, fps=plan.fps, audio=wave.astype(np.float32), sample_rate=rate, info=info))
        return results

    # --- helpers ------------------------------------------------------------------------------
    def _source(self, req: GenerationRequest, plan: mapping.Plan) -> np.ndarray:
        if req.video is None:
            raise ModelError(f"{req.mode} needs a source video.", param="video")
        frames = media.retime(req.video, req.video_fps or plan.fps, plan.fps)
        return media.fit(frames, plan.height, plan.width)

    def _condition(self, frames: np.ndarray):
        if self.spec.family == "ltx":
            from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

            return LTXVideoCondition(video=[_pil(f) for f in frames], frame_index=0, strength=1.0)
        from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition

        return LTX2VideoCondition(frames=[_pil(f) for f in frames], index=0, strength=1.0)

    def _encode(self, pipe, frames: np.ndarray, plan: mapping.Plan) -> torch.Tensor:
        """LTX latents of a clip, normalised as the pipeline's own conditioning does."""
        from diffusers.pipelines.ltx.pipeline_ltx_condition import retrieve_latents

        vae = pipe.vae
        video = pipe.video_processor.preprocess_video([_pil(f) for f in frames], plan.height, plan.width)  # (1, 3, T, H, W)
        video = video.to(self.device, dtype=vae.dtype)
        lat = retrieve_latents(vae.encode(video), sample_mode="argmax")
        return pipe._normalize_latents(lat, vae.latents_mean, vae.latents_std).float()


def _match_vae_scale(pipe, base) -> None:
    """Wan's video-to-video pipeline derives the VAE's spatial factor from its layer count (8),
    which is wrong for Wan 2.2's 16x VAE; take the base pipeline's factor and processor instead."""
    for attr in ("vae_scale_factor_spatial", "vae_scale_factor_temporal", "video_processor"):
        if hasattr(base, attr) and hasattr(pipe, attr):
            setattr(pipe, attr, getattr(base, attr))


def _source_sound(req: GenerationRequest, seconds: float, rate: int) -> np.ndarray:
    """The source clip's sound at `rate`, exactly `seconds` long (silence where it had none)."""
    n = int(round(seconds * rate))
    if req.audio is None or not req.audio_rate or not len(req.audio):
        return np.zeros(n, np.float32)
    src = req.audio.astype(np.float32)
    if req.audio_rate != rate:  # linear resampling is enough for a carried-over track
        t = np.arange(int(round(len(src) / req.audio_rate * rate))) / rate
        src = np.interp(t, np.arange(len(src)) / req.audio_rate, src).astype(np.float32)
    out = np.zeros(n, np.float32)
    out[: min(n, len(src))] = src[:n]
    return out


def _pil(frame: np.ndarray):
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(frame))


def _pad_frames(frames: np.ndarray, n: int) -> np.ndarray:
    if len(frames) >= n:
        return frames[:n]
    return np.concatenate([frames, np.repeat(frames[-1:], n - len(frames), axis=0)])


def _context_frames(src: np.ndarray, spec: OpenModel) -> np.ndarray:
    """The last frames of a clip that a video-conditioned extension continues from: frame_step * k + 1."""
    k = max(1, round(EXTEND_CONTEXT_S * spec.fps / spec.frame_step))
    n = min(spec.frame_step * k + 1, len(src))
    if (n - 1) % spec.frame_step:
        n = 1
    return src[-n:]
