"""Training FrameAE, the world model's frame autoencoder, on frames the simulator draws on the fly.

Resumable like the flow model's training: run_dir/ckpt.pt (weights, EMA, optimizer, step) every
`save_every` steps and log.jsonl. Loss: L1 + MSE on pixels, object pixels weighted up (they are
few and they are what the evaluation reads), with noise added to the latents before decoding so
the decoder learns to draw clean shapes from the imperfect latents a flow sampler ends on.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from safetensors import safe_open

from vitascope.models.world_ae import FrameAE, FrameAE_configs, load
from vitascope.models.world_net import SIGMA_DATA
from vitascope.train.world import ASPECT_P, ASPECTS
from vitascope.world import simulate


@dataclass
class AEConfig:
    model: str = "ae-s"
    steps: int = 100_000
    clips: int = 4  # clips simulated per step
    frames: int = 8  # frames drawn from each
    lr: float = 1e-3
    warmup: int = 100
    ema: float = 0.999
    scale: int = 1  # divides the frame size (tiny runs)
    seed: int = 0
    object_weight: float = 8.0
    detail_weight: float = 4.0  # extra weight on pixels unlike their neighbours: stars, tufts, rain, edges
    latent_noise: float = 0.2  # noise added to latents before decoding: up to this share of their spread
    latent_l2: float = 1e-4
    save_every: int = 100
    log_every: int = 10
    threads: int = 0
    precision: str = "fp32"  # or "bf16": autocast, about twice as fast where the CPU has native bfloat16
    init_from: str = ""  # start from these exported weights (safetensors) when the run has no checkpoint
    decoder_only: bool = False  # train the decoder alone: latents and their scale stay as they were, so
    # latent flow models trained on this autoencoder stay valid

    def __post_init__(self):
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16'. Got {self.precision!r}.")
        if self.model not in FrameAE_configs:
            raise ValueError(f"model must be one of {sorted(FrameAE_configs)}. Got {self.model!r}.")
        if self.clips < 1 or self.frames < 1:
            raise ValueError(f"clips and frames must be at least 1. Got clips={self.clips}, frames={self.frames}.")
        if self.init_from and not Path(self.init_from).is_file():
            raise ValueError(f"init_from: no such file {self.init_from!r}.")


def frame_batch(cfg: AEConfig, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3, H, W) frames in [-1, 1] and (N, 1, H, W) object masks; seeds follow (seed, step)."""
    rng = np.random.default_rng([cfg.seed, step, 1])
    h, w = ASPECTS[rng.choice(len(ASPECTS), p=ASPECT_P)]
    h, w = h // cfg.scale, w // cfg.scale
    frames, masks = [], []
    for _ in range(cfg.clips):
        s = simulate(int(rng.integers(2**62)), height=h, width=w, seconds=4.0, fps=12.0, start=float(rng.uniform(0, 16)))
        pick = rng.choice(len(s.frames), size=min(cfg.frames, len(s.frames)), replace=False)
        frames.append(s.frames[pick])
        masks.append(s.masks[pick])
    x = torch.from_numpy(np.concatenate(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1
    m = torch.from_numpy(np.concatenate(masks))[:, None].float()
    return x, m


def ae_loss(ae: FrameAE, x: torch.Tensor, m: torch.Tensor, cfg: AEConfig, gen: torch.Generator | None = None):
    z = ae.encoder(F.pixel_unshuffle(x, 2)).float()
    spread = z.detach().std().clamp(min=1e-3)
    level = torch.rand(z.shape[0], 1, 1, 1, generator=gen) * cfg.latent_noise * spread
    y = F.pixel_shuffle(ae.decoder(z + level * torch.randn(z.shape, generator=gen)), 2).float()
    rim = F.max_pool2d(m, 3, stride=1, padding=1)  # object pixels and their edge
    # small things (stars, ground tufts, raindrops) are few pixels but carry the camera and the
    # weather: a plain pixel loss let the decoder drop them
    detail = ((x - F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)).abs().amax(1, keepdim=True) > 0.1).float()
    wgt = 1 + cfg.object_weight * rim + cfg.detail_weight * detail
    err = wgt * ((y - x).abs() + (y - x) ** 2)
    return err.mean() / wgt.mean() + cfg.latent_l2 * (z**2).mean(), ((y - x) ** 2).mean().item(), (((y - x) ** 2) * m).sum().item() / max(m.sum().item(), 1)


def _lr(cfg: AEConfig, step: int, start: int = 0) -> float:
    return cfg.lr * min(1.0, (step - start + 1) / cfg.warmup)


def train(cfg: AEConfig, run_dir: str | Path, max_seconds: float | None = None, on_log: Callable[[dict], None] | None = None) -> FrameAE:
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    step = start = 0
    if cfg.init_from:
        ae = load(cfg.init_from).train()
        ema = load(cfg.init_from)
        with safe_open(cfg.init_from, "pt") as f:
            step = start = int((f.metadata() or {}).get("step", 0))  # steps go on from the source's
    else:
        ae = FrameAE(FrameAE_configs[cfg.model])
        ema = FrameAE(FrameAE_configs[cfg.model])
        ema.load_state_dict(ae.state_dict())
    if cfg.decoder_only:
        ae.encoder.requires_grad_(False)
    trainable = [p for p in ae.parameters() if p.requires_grad]
    ema_trained = [e for e, p in zip(ema.parameters(), ae.parameters()) if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=0.0)
    ckpt = run / "ckpt.pt"
    if ckpt.exists():
        state = torch.load(ckpt, map_location="cpu")
        ae.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        step, start = state["step"], state.get("start", 0)
    (run / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    t0 = time.time()
    acc: list[tuple[float, float, float]] = []
    while step < cfg.steps and (max_seconds is None or time.time() - t0 < max_seconds):
        x, m = frame_batch(cfg, step)
        for g in opt.param_groups:
            g["lr"] = _lr(cfg, step, start)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
            loss, mse, obj = ae_loss(ae, x, m, cfg, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = float(torch.nn.utils.clip_grad_norm_(trainable, 1.0))
        if not math.isfinite(loss.item()) or not math.isfinite(gnorm):  # before the step: the weights stay as they were
            raise FloatingPointError(f"non-finite AE loss or gradient at step {step + 1} (precision {cfg.precision}); the weights are kept as of the last checkpoint")
        opt.step()
        decay = min(cfg.ema, (1 + step) / (10 + step))  # early on the EMA follows the weights closely
        with torch.no_grad():
            torch._foreach_lerp_(ema_trained, trainable, 1 - decay)
        step += 1
        acc.append((loss.item(), mse, obj))
        if step % cfg.log_every == 0:
            a = np.mean(acc, axis=0)
            rec = {"step": step, "loss": float(a[0]), "mse": float(a[1]), "object_mse": float(a[2]), "seconds": round(time.time() - t0, 1)}
            acc = []
            with open(run / "log.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
            if on_log:
                on_log(rec)
        if step % cfg.save_every == 0 or step == cfg.steps:
            _save(run, ae, ema, opt, step, start)
    _save(run, ae, ema, opt, step, start)
    return ema


def _save(run: Path, ae, ema, opt, step: int, start: int) -> None:
    tmp = run / "ckpt.pt.tmp"
    torch.save({"model": ae.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(), "step": step, "start": start}, tmp)
    tmp.replace(run / "ckpt.pt")


@torch.no_grad()
def calibrate(ae: FrameAE, cfg: AEConfig, batches: int = 8) -> float:
    """Sets ae.scale so that latents of simulated frames spread as pixels do (SIGMA_DATA, which
    the flow network's input scaling assumes); returns their spread before."""
    ae.scale.fill_(1.0)
    zs = [ae.encode_frames(frame_batch(cfg, 10**9 + i)[0]) for i in range(batches)]
    spread = float(torch.cat([z.flatten() for z in zs]).std())
    ae.scale.fill_(SIGMA_DATA / spread)
    return spread
