"""The default registry: built-in backends registered the way a plugin would register its own."""

from __future__ import annotations

from vitascope.models.base import Entry, Registry
from vitascope.models.world import CAPABILITIES, WEIGHTS_DIR, WorldModel
from vitascope.settings import Settings

SORA_ALIASES = ("sora-2", "sora-2-pro", "sora-2-2025-10-06", "sora-2-pro-2025-10-06", "sora-2-2025-12-08")
WORLD_WEIGHTS = WEIGHTS_DIR / "world-s.safetensors"


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


def default_registry(settings: Settings) -> Registry:
    reg = Registry()
    register_world(reg, settings)
    for alias in SORA_ALIASES:
        reg.alias(alias, settings.default_model)
    return reg
