"""Training the layout planner (models/world_plan.py) with flow matching on true layouts.

A layout costs the simulator about a millisecond (no frames are drawn), so the planner sees
hundreds of thousands of scenes and captions in a CPU session. Resumable like the world model's
training: run_dir/ckpt.pt every `save_every` steps, a line per `log_every` steps in log.jsonl.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from vitascope.models import text
from vitascope.models.world_plan import Planner_configs, WorldPlanner, scene_labels, to_plan, widen
from vitascope.world import caption, layout, sample_scene
from vitascope.world.captions import describe

from .world import ASPECT_P, ASPECTS, export_weights, resume, small_loop, small_run

__all__ = ["PlanTrainConfig", "export_weights", "loss_fn", "make_batch", "train"]


@dataclass
class PlanTrainConfig:
    model: str = "plan-s"
    steps: int = 100_000
    batch: int = 64
    lr: float = 5e-4
    warmup: int = 200
    ema: float = 0.999
    frames: int = 48
    fps: float = 12.0
    seed: int = 0
    save_every: int = 200
    log_every: int = 10
    caption_dropout: float = 0.1
    extend_share: float = 0.3  # share of layouts whose first 1-24 frames are given (a window continuing the last, an image)
    schedule: str = "cosine"  # or "constant"
    min_lr: float = 0.1
    # held-out synonyms lie near their training words in the frozen encoder's space, not on them:
    # Gaussian noise of this many spreads per standardised dimension on training tokens, and this
    # share of caption tokens hidden, make the planner read a word's neighbourhood, not its token
    text_noise: float = 0.5
    token_drop: float = 0.1
    # share of captions in the one fixed phrasing `describe` gives (what the prompt parser
    # rewrites a prompt into, models/world_parse.py), the rest phrased freely in training words
    canonical: float = 0.0
    init_from: str | None = None  # planner weights (safetensors) a new run starts from; layers they lack start as new
    # share of layouts planned from their slot labels alone (the caption emptied, the labels kept),
    # for a planner with labels: the prompt parser's labels say all a layout needs, and a planner
    # that must also read them without words learns to follow them (session 11)
    label_only: float = 0.0
    # a layout without known frames starts where its scene starts, as a text-to-video clip does
    # (else half start later: a planner that cannot tell them apart planned "rising" objects at the
    # top, where a scene's rising object is after a few seconds, session 13); layouts with known
    # frames start anywhere, as extensions do
    fresh_start: bool = False
    # loss weight of the place features (horizontal phase, height, size, turn) against the rest
    # (present, colour, shape), which stay the same through a track
    place_weight: float = 1.0

    def __post_init__(self):
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule must be 'constant' or 'cosine'. Got {self.schedule!r}.")
        if self.model not in Planner_configs:
            raise ValueError(f"model must be one of {', '.join(Planner_configs)}. Got {self.model!r}.")
        if not 0 <= self.canonical <= 1:
            raise ValueError(f"canonical must be in [0, 1]. Got {self.canonical}.")
        if not 0 <= self.label_only <= 1:
            raise ValueError(f"label_only must be in [0, 1]. Got {self.label_only}.")
        if self.label_only and not Planner_configs[self.model].labels:
            raise ValueError(f"label_only needs a planner that reads labels (plan-s-labels, plan-tiny-labels). Got {self.model!r}.")
        if not 0 <= self.extend_share <= 1:
            raise ValueError(f"extend_share must be in [0, 1]. Got {self.extend_share}.")
        if self.frames % Planner_configs[self.model].chunk:
            raise ValueError(f"frames must be a multiple of {Planner_configs[self.model].chunk}. Got {self.frames}.")


def make_batch(cfg: PlanTrainConfig, step: int):
    """Layouts (B, T, SLOTS, FEATURES), aspects (B,), known-frame masks (B, T), captions and the
    scenes' slot labels (B, SLOTS, LABELS; zero where the caption is dropped; a `label_only` share
    keeps its labels with an empty caption)."""
    rng = np.random.default_rng([cfg.seed, step, 17])
    feats, aspects, ctx, caps, labels = [], [], [], [], []
    for _ in range(cfg.batch):
        h, w = ASPECTS[rng.choice(len(ASPECTS), p=ASPECT_P)]
        seed = int(rng.integers(2**62))
        scene = sample_scene(seed, aspect=w / h)
        start = 0.0 if rng.random() < 0.5 else float(rng.uniform(0, 16))
        m = np.zeros(cfg.frames, np.float32)
        if rng.random() < cfg.extend_share:
            m[: int(rng.choice([1, 4, 8, 12, 24]))] = 1  # 1: image-to-video
        elif cfg.fresh_start:
            start = 0.0
        feats.append(layout.features(scene, start, cfg.frames, cfg.fps))
        aspects.append(w / h)
        ctx.append(m)
        labels.append(scene_labels(scene))
        if rng.random() < cfg.caption_dropout:
            caps.append("")
            labels[-1] = torch.zeros_like(labels[-1])
        elif cfg.label_only and rng.random() < cfg.label_only:
            caps.append("")
        elif rng.random() < cfg.canonical:
            caps.append(describe(scene))
        else:
            caps.append(caption(scene, np.random.default_rng(seed + 7919), split="train"))
    return torch.from_numpy(np.stack(feats)), torch.tensor(aspects, dtype=torch.float32), torch.from_numpy(np.stack(ctx)), caps, torch.stack(labels)


def perturb_text(net, tokens: torch.Tensor, mask: torch.Tensor, noise: float, drop: float, gen: torch.Generator):
    """Training captions' token features with noise on the planner's standardised scale and some
    tokens hidden (never all of a caption's: its first, the encoder's [CLS], stays)."""
    tokens = tokens + noise * net.text_std * torch.randn(tokens.shape, generator=gen)
    hide = torch.rand(mask.shape, generator=gen) < drop
    hide[:, 0] = False
    return tokens, mask & ~hide


def loss_fn(net: WorldPlanner, x: torch.Tensor, aspect, ctx_mask, tokens, token_mask, gen: torch.Generator, labels=None, place_weight: float = 1.0) -> torch.Tensor:
    if net.cfg.displacement:  # true layouts as this planner plans them (see sample)
        x = to_plan(x)
    B = x.shape[0]
    t = torch.sigmoid(torch.randn(B, generator=gen) * 1.0)  # logit-normal times
    noise = torch.randn(x.shape, generator=gen)
    xt = t.view(B, 1, 1, 1) * x + (1 - t.view(B, 1, 1, 1)) * noise
    v = net(xt, t, tokens, token_mask, aspect, x, ctx_mask, labels)
    free = (1 - ctx_mask)[:, :, None, None]
    weight = torch.ones(x.shape[-1])
    weight[layout.PLACE :] = place_weight
    weight = weight * x.shape[-1] / weight.sum()  # the same mean weight, so the loss keeps its scale
    return (free * weight * (v - (x - noise)) ** 2).sum() / (free.sum() * x.shape[2] * x.shape[3]).clamp(min=1)


def train(run_dir: str | Path, cfg: PlanTrainConfig, *, max_seconds: float | None = None, on_step: Callable[[int, dict], None] | None = None) -> dict:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    net, ema, opt = small_run(lambda: WorldPlanner(Planner_configs[cfg.model]), cfg.lr)
    ckpt = run_dir / "ckpt.pt"
    step = resume(ckpt, net, ema, opt)
    if step is None:
        step = 0
        if cfg.init_from:  # a trained planner's weights (and text statistics); new layers start as they are
            from safetensors.torch import load_file

            missing, unexpected = ema.load_state_dict(widen({k: v.float() for k, v in load_file(cfg.init_from).items()}, ema.cfg), strict=False)
            if unexpected:
                raise ValueError(f"init_from holds weights this planner lacks: {', '.join(unexpected)}")
        else:  # the encoder's token statistics, from training captions
            ema.fit_text_scale(*text.encode(make_batch(replace(cfg, batch=512, caption_dropout=0.0, seed=cfg.seed + 1_000_003), 0)[3]))
        net.load_state_dict(ema.state_dict())

    def step_loss(step: int):
        x, aspect, ctx_mask, caps, labels = make_batch(cfg, step)
        tokens, token_mask = text.encode(caps)
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        tokens, token_mask = perturb_text(net, tokens, token_mask, cfg.text_noise, cfg.token_drop, gen)
        return loss_fn(net, x, aspect, ctx_mask, tokens, token_mask, gen, labels if net.cfg.labels else None, cfg.place_weight), {}

    return small_loop(run_dir, cfg, net, ema, opt, step, step_loss, max_seconds=max_seconds, on_step=on_step)

