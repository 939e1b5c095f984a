"""Training the prompt parser (models/world_parse.py): classify training captions into the
scene they were written from.

Captions cost no rendering, so a step is one batch through the frozen encoder and the parser.
Held-out synonyms lie near their training words in the encoder's space, not on them: noise on
the standardised token features and hidden tokens (as the planner's training adds) make the
parser answer for a word's neighbourhood; a phrase parser's n-grams get the same noise. Resumable: run_dir/ckpt.pt, log.jsonl.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vitascope.models import text
from vitascope.models.world_parse import GROUP_ATTRS, SETTINGS, Parser_configs, WorldParser, targets
from vitascope.world import caption, sample_scene

from .world import ASPECT_P, ASPECTS, resume, small_loop, small_run
from .world_plan import perturb_text

__all__ = ["ParseTrainConfig", "accuracy", "loss_fn", "make_batch", "train"]


@dataclass
class ParseTrainConfig:
    model: str = "parse-s"
    steps: int = 100_000
    batch: int = 128
    lr: float = 5e-4
    warmup: int = 100
    ema: float = 0.998
    seed: int = 0
    save_every: int = 200
    log_every: int = 10
    schedule: str = "cosine"
    min_lr: float = 0.1
    text_noise: float = 0.5  # spreads per standardised dimension
    token_drop: float = 0.1

    def __post_init__(self):
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule must be 'constant' or 'cosine'. Got {self.schedule!r}.")
        if self.model not in Parser_configs:
            raise ValueError(f"model must be one of {', '.join(Parser_configs)}. Got {self.model!r}.")


def make_batch(cfg: ParseTrainConfig, step: int, split: str = "train") -> tuple[list[str], dict[str, torch.Tensor]]:
    """Captions and their targets (settings (B,), group attributes (B, groups))."""
    rng = np.random.default_rng([cfg.seed, step, 29])
    caps, tgt = [], {k: [] for k in (*SETTINGS, *GROUP_ATTRS)}
    for _ in range(cfg.batch):
        h, w = ASPECTS[rng.choice(len(ASPECTS), p=ASPECT_P)]
        seed = int(rng.integers(2**62))
        scene = sample_scene(seed, aspect=w / h)
        caps.append(caption(scene, np.random.default_rng(seed + 7919), split=split))
        for k, v in targets(scene, Parser_configs[cfg.model].groups).items():
            tgt[k].append(v[0] if k in SETTINGS else v)
    return caps, {k: torch.tensor(v) for k, v in tgt.items()}


def loss_fn(logits: dict[str, torch.Tensor], tgt: dict[str, torch.Tensor]) -> torch.Tensor:
    return sum(F.cross_entropy(logits[k].reshape(-1, logits[k].shape[-1]), tgt[k].reshape(-1), ignore_index=-100) for k in tgt)


def accuracy(logits: dict[str, torch.Tensor], tgt: dict[str, torch.Tensor]) -> dict[str, float]:
    """Share right per attribute (object attributes over present objects) and of whole prompts."""
    out, whole = {}, torch.ones(tgt["sky"].shape[0], dtype=torch.bool)
    for k, t in tgt.items():
        pred = logits[k].argmax(-1)
        valid = t != -100
        ok = (pred == t) | ~valid
        out[k] = float(ok[valid].float().mean()) if valid.any() else 1.0
        whole &= ok.reshape(ok.shape[0], -1).all(1)
    out["prompt"] = float(whole.float().mean())
    return out


def train(run_dir: str | Path, cfg: ParseTrainConfig, *, max_seconds: float | None = None, on_step: Callable[[int, dict], None] | None = None) -> dict:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    net, ema, opt = small_run(lambda: WorldParser(Parser_configs[cfg.model]), cfg.lr)
    if net.cfg.ngram:
        text.remember_phrases(2_000_000)  # every phrase of a few hundred thousand captions (about 2 GB)
    ckpt = run_dir / "ckpt.pt"
    step = resume(ckpt, net, ema, opt)
    if step is None:  # the encoder's token (and n-gram) statistics, from training captions
        step = 0
        enc = ema.inputs(make_batch(replace(cfg, batch=512, seed=cfg.seed + 1_000_003), 0)[0])
        ema.fit_text_scale(enc["tokens"], enc["mask"])
        if ema.cfg.ngram:
            ema.fit_gram_scale(enc["grams"], enc["gram_mask"])
        if ema.cfg.prototypes:
            ema.fit_prototypes()
        net.load_state_dict(ema.state_dict())

    def step_loss(step: int):
        caps, tgt = make_batch(cfg, step)
        enc = net.inputs(caps)
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        enc["tokens"], enc["mask"] = perturb_text(net, enc["tokens"], enc["mask"], cfg.text_noise, cfg.token_drop, gen)
        if net.cfg.ngram:  # the same noise on the n-grams' own features, and some n-grams hidden
            enc["grams"] = enc["grams"] + cfg.text_noise * net.gram_std * torch.randn(enc["grams"].shape, generator=gen)
            enc["gram_mask"] = enc["gram_mask"] & ~(torch.rand(enc["gram_mask"].shape, generator=gen) < cfg.token_drop)
        logits = net(**enc)
        return loss_fn(logits, tgt), {"train_prompt_acc": accuracy(logits, tgt)["prompt"]}

    return small_loop(run_dir, cfg, net, ema, opt, step, step_loss, max_seconds=max_seconds, on_step=on_step)
