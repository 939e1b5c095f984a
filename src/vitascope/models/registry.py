"""The default registry: built-in backends registered the way a plugin would register its own."""

from __future__ import annotations

from vitascope.models.base import Entry, Registry
from vitascope.models.world import CAPABILITIES, WEIGHTS_DIR, WorldModel
from vitascope.settings import Settings

SORA_ALIASES = ("sora-2", "sora-2-pro", "sora-2-2025-10-06", "sora-2-pro-2025-10-06", "sora-2-2025-12-08")
WORLD_WEIGHTS = WEIGHTS_DIR / "world-sl.safetensors"  # world-s-layout-settings: its planner, prompt parsers and Foley model lie beside it


def _world_available() -> tuple[bool, str]:
    if WORLD_WEIGHTS.is_file():
        return True, str(WORLD_WEIGHTS)
    return False, f"weights not found at {WORLD_WEIGHTS}; train them with `vitascope train` and export to that path"


def register_world(reg: Registry, settings: Settings) -> None:
    reg.add(
        Entry(
            name="vitascope-world",
            factory=lambda: WorldModel.from_file("vitascope-world", WORLD_WEIGHTS, description="Embedded world model"),
            description="Vitascope's embedded text-to-video-with-audio model of the procedural world (CPU).",
            capabilities=CAPABILITIES,
            available=_world_available,
        )
    )
    if settings.test_models:
        reg.add(
            Entry(
                name="vitascope-world-tiny",
                factory=lambda: WorldModel.random("vitascope-world-tiny", "world-tiny", steps=4, guidance=1.0),
                description="The world model's architecture at a tiny size with random weights: for tests only.",
                capabilities=CAPABILITIES,
                available=lambda: (True, "random weights"),
            )
        )


def register_open_models(reg: Registry, settings: Settings) -> None:
    """Wan and LTX through diffusers. Listing them needs neither diffusers nor their weights; a
    request for one whose weights are absent is a 400 that says where they were looked for."""
    from vitascope.models.open_weights import mapping
    from vitascope.models.open_weights.backend import DiffusersModel, locate
    from vitascope.models.open_weights.specs import OPEN_MODELS
    from vitascope.models.open_weights.speed import Speed

    speed = Speed(
        dtype=settings.gpu_dtype,
        attention=settings.gpu_attention,
        cfg_batch=settings.gpu_cfg_batch,
        compile=settings.gpu_compile,
        vae_tiling=settings.gpu_vae_tiling,
        fp8=settings.gpu_fp8,
        step_cache=settings.gpu_step_cache,
        offload=settings.gpu_offload,
        max_batch=settings.max_batch,
    )
    models_dir = settings.open_models_dir
    for spec in OPEN_MODELS:

        def available(spec=spec) -> tuple[bool, str]:
            path, where = locate(spec, models_dir)
            return path is not None, where

        def check(width: int, height: int, seconds: float, spec=spec) -> None:
            path, _ = locate(spec, models_dir)
            s = spec.with_overrides(path) if path else spec
            mapping.check_size(s, width, height)
            mapping.frames_for(s, seconds)

        reg.add(
            Entry(
                name=spec.name,
                factory=lambda spec=spec: DiffusersModel(spec, models_dir, speed, settings.device),
                description=spec.description,
                capabilities=spec.capabilities,
                available=available,
                check=check,
            )
        )


def default_registry(settings: Settings) -> Registry:
    reg = Registry()
    register_world(reg, settings)
    register_open_models(reg, settings)
    for alias in SORA_ALIASES:
        reg.alias(alias, settings.default_model)
    return reg
