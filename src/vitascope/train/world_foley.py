"""Training WorldFoley (models/world_foley.py): the simulator's layouts in, its sound out.

A layout and its band envelopes cost the simulator about a millisecond (no frames are drawn), so
each step is a batch of new scenes. The layouts are shaken a little (`jitter`, frame heights per
frame) if asked, and sometimes smoothed, as the planner's are (it trembles;
`WorldModel.plan_smooth` averages). Shaken layouts taught a first run (jitter 0.004) to leave the
planner's weak contacts silent, which the network draws as bounces all the same: sync 52.9%
against 69.8% without (36 validation clips, session 17), so the default is 0. The loss is the
L1 distance of the envelope features, with the steps of a contact's sound weighted up.
Resumable like the planner's training: run_dir/ckpt.pt every `save_every` steps, a line per
`log_every` steps in log.jsonl.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from vitascope.models.world_foley import Foley_configs, WorldFoley, batch_inputs
from vitascope.world import amp_to_feature, envelopes, layout, sample_scene
from vitascope.world.layout import PLACE

from .world import ASPECT_P, ASPECTS, resume, small_loop, small_run

__all__ = ["FoleyTrainConfig", "export_weights", "make_batch", "train"]


@dataclass
class FoleyTrainConfig:
    model: str = "foley-s"
    steps: int = 20_000
    batch: int = 32
    lr: float = 2e-3
    warmup: int = 100
    ema: float = 0.995
    frames: int = 48
    fps: float = 12.0
    seed: int = 0
    save_every: int = 200
    log_every: int = 10
    schedule: str = "cosine"  # or "constant"
    min_lr: float = 0.05
    jitter: float = 0.0  # frame heights: noise on each frame's object heights
    smooth_share: float = 0.5  # share of layouts averaged over 3 frames after the jitter
    onset_weight: float = 4.0  # loss weight of envelope steps louder than the weather alone

    def __post_init__(self):
        if self.model not in Foley_configs:
            raise ValueError(f"model must be one of {', '.join(Foley_configs)}. Got {self.model!r}.")
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule must be 'constant' or 'cosine'. Got {self.schedule!r}.")
        if self.jitter < 0:
            raise ValueError(f"jitter must be >= 0. Got {self.jitter}.")
        if not 0 <= self.smooth_share <= 1:
            raise ValueError(f"smooth_share must be in [0, 1]. Got {self.smooth_share}.")


def make_batch(cfg: FoleyTrainConfig, step: int):
    """(tracks, cues, weather) inputs and the envelope features (B, T * steps, N_BANDS) they
    should give, and each step's loss weight."""
    rng = np.random.default_rng([cfg.seed, step, 29])
    feats, weathers, targets, weights = [], [], [], []
    steps = Foley_configs[cfg.model].steps_per_frame
    for _ in range(cfg.batch):
        h, w = ASPECTS[rng.choice(len(ASPECTS), p=ASPECT_P)]
        scene = sample_scene(int(rng.integers(2**62)), aspect=w / h)
        start = 0.0 if rng.random() < 0.5 else float(rng.uniform(0, 16))
        feat = layout.features(scene, start, cfg.frames, cfg.fps)
        if cfg.jitter:
            present = feat[..., 0] > 0
            feat[..., PLACE + 2] += np.where(present, rng.normal(0, cfg.jitter / layout._Y_SPREAD, present.shape), 0).astype(np.float32)
        if rng.random() < cfg.smooth_share:
            feat[..., PLACE:] = ndimage.uniform_filter1d(feat[..., PLACE:], 3, axis=0, mode="nearest")
        amp = envelopes(scene, start, cfg.frames * steps)
        quiet = envelopes(replace(scene, objects=()), start, cfg.frames * steps)  # the weather alone
        feats.append(feat)
        weathers.append(scene.weather)
        targets.append(amp_to_feature(amp))
        weights.append(np.where((amp - quiet).max(1, keepdims=True) > 0.01, cfg.onset_weight, 1.0).astype(np.float32))
    return (*batch_inputs(feats, weathers, cfg.fps), torch.from_numpy(np.stack(targets)), torch.from_numpy(np.stack(weights)))


def loss_fn(net: WorldFoley, tracks, cues, weather, target, weight) -> torch.Tensor:
    pred = net(tracks, cues, weather)
    return (weight * (pred - target).abs()).sum() / (weight.sum() * target.shape[-1])


def train(run_dir: str | Path, cfg: FoleyTrainConfig, *, max_seconds: float | None = None, on_step: Callable[[int, dict], None] | None = None) -> dict:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    net, ema, opt = small_run(lambda: WorldFoley(Foley_configs[cfg.model]), cfg.lr)
    ckpt = run_dir / "ckpt.pt"
    step = resume(ckpt, net, ema, opt) or 0

    def step_loss(step: int):
        *inputs, target, weight = make_batch(cfg, step)
        return loss_fn(net, *inputs, target, weight), {}

    return small_loop(run_dir, cfg, net, ema, opt, step, step_loss, max_seconds=max_seconds, on_step=on_step)


def export_weights(run_dir: str | Path, out: str | Path) -> Path:
    """A run's EMA weights as safetensors (float32: the network is 74 k parameters)."""
    from vitascope.train.world import export_weights as export

    return export(run_dir, out, dtype=torch.float32)
