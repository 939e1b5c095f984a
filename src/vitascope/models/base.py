"""The model interface: one request type, one result type, capabilities, and the registry.

Every backend (the embedded world model, each diffusers model) registers through `Registry.add`,
the same extension point a third-party backend uses. The API checks a request against the
backend's `Capabilities` before a job is queued, so a job never fails for asking the impossible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


class ModelError(Exception):
    """A request a model cannot serve; `param` names the field at fault."""

    def __init__(self, message: str, param: str | None = None, code: str = "invalid_value"):
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


class Cancelled(Exception):
    """Raised from a progress callback when the job was cancelled."""


@dataclass(frozen=True)
class Capabilities:
    text_to_video: bool = True
    image_to_video: bool = False
    remix: bool = False  # video-to-video with a strength: remix and edit
    extension: bool = False
    audio: bool = False  # generates sound; without it a clip has a silent track
    characters: bool = False
    sizes: tuple[str, ...] = ()  # "WxH" sizes it makes; empty: any even size up to max_side
    max_side: int = 1920
    seconds: tuple[int, ...] = (4, 8, 12)
    max_seconds: int = 60


@dataclass
class GenerationRequest:
    prompt: str
    seconds: float
    width: int
    height: int
    seed: int
    image: np.ndarray | None = None  # (H, W, 3) uint8: the first frame
    video: np.ndarray | None = None  # (T, H, W, 3) uint8: a clip to continue or transform
    video_fps: float | None = None
    audio: np.ndarray | None = None  # mono float32 of `video`
    audio_rate: int | None = None
    strength: float = 0.6  # remix/edit: how much of the source is re-noised
    mode: str = "create"  # create | remix | edit | extend
    characters: list[str] = field(default_factory=list)
    preset: str | None = None  # the model name the request used (sora-2, sora-2-pro): picks a preset


@dataclass
class GenerationResult:
    frames: np.ndarray  # (T, H, W, 3) uint8 at the model's native size
    fps: float
    audio: np.ndarray  # mono float32
    sample_rate: int
    info: dict = field(default_factory=dict)


Progress = Callable[[float], None]


class Backend(Protocol):
    name: str
    description: str
    capabilities: Capabilities

    def available(self) -> tuple[bool, str]:
        """Whether the weights are present, and if not, where they were looked for and how to get them."""
        ...

    def generate(self, req: GenerationRequest, progress: Progress) -> GenerationResult: ...


@dataclass
class Entry:
    name: str
    factory: Callable[[], Backend]
    description: str
    capabilities: Capabilities
    available: Callable[[], tuple[bool, str]]
    check: Callable[[int, int, float], None] | None = None  # (width, height, seconds): raises ModelError


class Registry:
    """Models by name, built lazily and kept; aliases map Sora's names onto Vitascope's."""

    def __init__(self):
        self._entries: dict[str, Entry] = {}
        self._aliases: dict[str, str] = {}
        self._loaded: dict[str, Backend] = {}

    def add(self, entry: Entry) -> None:
        self._entries[entry.name] = entry

    def alias(self, alias: str, target: str) -> None:
        self._aliases[alias] = target

    def resolve(self, name: str) -> str:
        name = self._aliases.get(name, name)
        if name not in self._entries:
            known = ", ".join(sorted([*self._entries, *self._aliases]))
            raise ModelError(f"Unknown model '{name}'. Available models: {known}.", param="model", code="model_not_found")
        return name

    def entry(self, name: str) -> Entry:
        return self._entries[self.resolve(name)]

    def get(self, name: str) -> Backend:
        name = self.resolve(name)
        if name not in self._loaded:
            self._loaded[name] = self._entries[name].factory()
        return self._loaded[name]

    def names(self) -> list[str]:
        return list(self._entries)

    def aliases(self) -> dict[str, str]:
        return dict(self._aliases)


def check_request(caps: Capabilities, *, model: str, mode: str, width: int, height: int, seconds: float, has_image: bool, characters: list[str]) -> None:
    """Refuse what the model cannot do, naming the parameter, before anything is queued."""
    if mode == "create" and not caps.text_to_video and not has_image:
        raise ModelError(f"Model '{model}' cannot generate from text alone; give it a first frame as input_reference.", param="input_reference")
    if has_image and not caps.image_to_video:
        raise ModelError(f"Model '{model}' does not support input_reference (image-to-video).", param="input_reference")
    if mode in ("remix", "edit") and not caps.remix:
        raise ModelError(f"Model '{model}' does not support {mode}.", param="model")
    if mode == "extend" and not caps.extension:
        raise ModelError(f"Model '{model}' does not support extensions.", param="model")
    if characters and not caps.characters:
        raise ModelError(f"Model '{model}' cannot place characters in a scene; omit 'characters' or use a model that supports them.", param="characters")
    size = f"{width}x{height}"
    if caps.sizes and size not in caps.sizes:
        raise ModelError(f"Model '{model}' cannot make size {size}. Supported sizes: {', '.join(caps.sizes)}.", param="size")
    if max(width, height) > caps.max_side:
        raise ModelError(f"size {size} is larger than model '{model}' makes (longest side {caps.max_side}).", param="size")
    if seconds > caps.max_seconds:
        raise ModelError(f"Model '{model}' makes clips of at most {caps.max_seconds} seconds; {seconds:g} were asked for.", param="seconds")
