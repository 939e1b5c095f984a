"""FrameAE: a per-frame convolutional autoencoder that gives the world model a compact latent space.

Each frame (3, H, W) in [-1, 1] becomes a latent (C, H/8, W/8); the decoder draws the frame back.
Frames are coded one by one, so latent frame i is frame i: context frames (image-to-video,
extension) and re-noised sources (remix) keep their places in time, and a latent flow model over
(C, T, H/8, W/8) serves every mode the pixel model did. The decoder is trained on latents with
noise added, so that the imprecise latents a sampler ends on still decode to flat, sharp shapes
(the pixel model's output path, 96 numbers per patch from 64 channels, blurred objects; see
docs/models/world.md).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class FrameAEConfig:
    latent: int = 16  # latent channels per cell of 8x8 pixels
    channels: tuple[int, ...] = (32, 64, 128)  # at 1/2, 1/4 and 1/8 of the frame size
    blocks: int = 1  # residual blocks per level

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FrameAEConfig":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


FrameAE_configs = {
    "ae-tiny": FrameAEConfig(latent=4, channels=(8, 8, 16)),
    "ae-s": FrameAEConfig(),
}

DOWN = 8  # pixels per latent cell, each way


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, c // 4) if c >= 8 else 1, c)


class Res2d(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.n1, self.c1 = _norm(c), nn.Conv2d(c, c, 3, padding=1)
        self.n2, self.c2 = _norm(c), nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return x + self.c2(F.silu(self.n2(self.c1(F.silu(self.n1(x))))))


class FrameAE(nn.Module):
    def __init__(self, cfg: FrameAEConfig):
        super().__init__()
        self.cfg = cfg
        c1, c2, c3 = cfg.channels
        # encoder: 2x2 pixels to depth (sharp edges survive the first step), then two strided convs
        enc = [nn.Conv2d(12, c1, 3, padding=1)] + [Res2d(c1) for _ in range(cfg.blocks)]
        enc += [nn.Conv2d(c1, c2, 4, stride=2, padding=1)] + [Res2d(c2) for _ in range(cfg.blocks)]
        enc += [nn.Conv2d(c2, c3, 4, stride=2, padding=1)] + [Res2d(c3) for _ in range(cfg.blocks + 1)]
        enc += [_norm(c3), nn.SiLU(), nn.Conv2d(c3, cfg.latent, 1)]
        self.encoder = nn.Sequential(*enc)
        dec = [nn.Conv2d(cfg.latent, c3, 3, padding=1)] + [Res2d(c3) for _ in range(cfg.blocks + 1)]
        dec += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c3, c2, 3, padding=1)] + [Res2d(c2) for _ in range(cfg.blocks)]
        dec += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c2, c1, 3, padding=1)] + [Res2d(c1) for _ in range(cfg.blocks)]
        dec += [_norm(c1), nn.SiLU(), nn.Conv2d(c1, 12, 3, padding=1)]
        self.decoder = nn.Sequential(*dec)
        # latents are scaled to about unit spread (measured on simulated frames after training and
        # stored with the weights), so the flow model sees data like the pixel model's
        self.register_buffer("scale", torch.ones(()))

    def encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] -> (N, C, H/8, W/8), unit-spread latents."""
        N, _, H, W = x.shape
        if H % DOWN or W % DOWN:
            raise ValueError(f"frames must have H and W divisible by {DOWN}. Got {H}x{W}.")
        return self.encoder(F.pixel_unshuffle(x, 2)) * self.scale

    def decode_frames(self, z: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) -> (N, 3, 8h, 8w), pixels in about [-1, 1]."""
        return F.pixel_shuffle(self.decoder(z / self.scale), 2)

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, C, T, H/8, W/8)."""
        B, _, T, H, W = video.shape
        z = self.encode_frames(video.transpose(1, 2).reshape(B * T, 3, H, W))
        return z.view(B, T, *z.shape[1:]).transpose(1, 2)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, C, T, h, w) -> (B, 3, T, 8h, 8w)."""
        B, C, T, h, w = z.shape
        x = self.decode_frames(z.transpose(1, 2).reshape(B * T, C, h, w))
        return x.view(B, T, *x.shape[1:]).transpose(1, 2)


def save(ae: FrameAE, path: str | Path, step: int) -> None:
    """The autoencoder as float16 safetensors, with its config, scale and training step."""
    from safetensors.torch import save_file

    state = {k: v.detach().half().contiguous() for k, v in ae.state_dict().items() if k != "scale"}
    state["scale"] = ae.scale.detach().float().reshape(1)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata={"config": json.dumps(ae.cfg.to_dict()), "step": str(step)})


def load(ref: str | Path, weights_dir: Path | None = None) -> FrameAE:
    """An autoencoder from a safetensors file (a path, or a name in weights_dir), or, for a name
    in FrameAE_configs, the untrained one of that size with seed 0 (tiny test models)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    if str(ref) in FrameAE_configs:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            return FrameAE(FrameAE_configs[str(ref)]).eval()
    path = Path(ref)
    if not path.is_absolute() and not path.exists() and weights_dir is not None:
        path = weights_dir / path
    if not path.exists():
        raise FileNotFoundError(f"autoencoder weights not found: {path}")
    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    ae = FrameAE(FrameAEConfig.from_dict(json.loads(meta["config"])))
    state = {k: v.float() for k, v in load_file(str(path)).items()}
    state["scale"] = state["scale"].reshape(())
    ae.load_state_dict(state)
    return ae.eval()
