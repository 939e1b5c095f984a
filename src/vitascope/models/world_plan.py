"""WorldPlanner: a flow-matching transformer that plans a clip's layout from its prompt.

The layout (world/layout.py) is where each of up to SLOTS objects is, frame by frame, with its
colour, shape and size: a few numbers per object per frame instead of 64x112 pixels. Planning it
first and drawing the clip to it second (a layout-guided WorldNet) splits what a small model
must learn in one go, as layout-guided video diffusion does (LLM-grounded video diffusion, Lian et
al. 2023; GLIGEN's grounding boxes): the planner learns what the words ask for and how things
move, from hundreds of thousands of layouts a CPU makes in minutes; the world network learns to
draw what the layout places.

Tokens are (slot, chunk of CHUNK frames) pairs: 3 x 12 for a 4-second window, each with an
embedding of its slot and of its time, so that the chunks of one object's track know each other
(without the slot's embedding a first run planned objects that came and went between frames).
Known frames (a window that continues the last one) enter as extra channels with a mask, as in
WorldNet.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from vitascope.world.layout import FEATURES, PLACE, SLOTS
from vitascope.world.scene import CAMERAS, COLOURS, SHAPES, SIZES, Scene

from . import text
from .world_parse import MOTION_CLASSES, motion_class
from .world_net import load_module, timestep_embedding

CHUNK = 4  # frames per token
# per slot, what the prompt parser reads of its object (models/world_parse.py): present, colour,
# shape, size, motion (with a bouncing object's direction), and the scene's camera, which moves
# every object in the frame; one-hot, all zero for an absent slot's object part and for no labels
LABELS = 1 + len(COLOURS) + len(SHAPES) + len(SIZES) + len(MOTION_CLASSES) + len(CAMERAS)


_LABEL_VALUES = {"colour": tuple(COLOURS), "shape": SHAPES, "size": tuple(SIZES), "motion": MOTION_CLASSES}


def label_column(kind: str, value: str) -> int:
    """The column of LABELS that says an object's `kind` (colour, shape, size, motion) is `value`."""
    at = 1  # after present
    for k, values in _LABEL_VALUES.items():
        if k == kind:
            return at + values.index(value)
        at += len(values)
    raise ValueError(f"kind must be one of {', '.join(_LABEL_VALUES)}. Got {kind!r}.")


def scene_labels(scene: Scene, slots: int = SLOTS) -> torch.Tensor:
    """(slots, LABELS): the labels of a scene's objects, slot by slot in its objects' order."""
    out = torch.zeros(slots, LABELS)
    cam = LABELS - len(CAMERAS) + CAMERAS.index(scene.camera)
    out[:, cam] = 1
    for j, o in enumerate(scene.objects[:slots]):
        out[j, [0] + [label_column(k, v) for k, v in (("colour", o.colour), ("shape", o.shape), ("size", o.size), ("motion", motion_class(o)))]] = 1
    return out


def label_reading(labels: torch.Tensor) -> list[tuple[str, str] | None]:
    """Per slot of labels (SLOTS, LABELS): the (motion class, shape) they name, None where absent."""
    def named(row: torch.Tensor, kind: str) -> str:
        values = _LABEL_VALUES[kind]
        at = label_column(kind, values[0])
        return values[int(row[at : at + len(values)].argmax())]

    return [(named(row, "motion"), named(row, "shape")) if row[0] > 0 else None for row in labels]


@dataclass(frozen=True)
class PlannerConfig:
    dim: int = 192
    layers: int = 6
    heads: int = 6
    text_dim: int = 384
    text_layers: int = 1
    slots: int = SLOTS
    features: int = FEATURES
    chunk: int = CHUNK
    # width of per-slot labels (LABELS) the planner also reads, 0: none. Text alone left a planner
    # that moved a "sliding right" and a "sliding left" object the same way, whichever way its
    # noise started (session 10): a label on the slot's own tokens says it where it acts
    labels: int = 0
    # plan each object's horizontal place as where it is at the window's first frame plus how far
    # it has moved since (see `to_plan`), not as its phase frame by frame: the mean track of a
    # "sliding left" object at an unknown place is then a line going left, where in phases it is
    # zero for either direction, so that a planner of phases never learned left from right even
    # with labels (session 13: half its slides went either way whatever they said). features is
    # then FEATURES + 1
    displacement: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "PlannerConfig":
        return cls(**d)


Planner_configs = {
    "plan-tiny": PlannerConfig(dim=32, layers=1, heads=2),
    "plan-s": PlannerConfig(),
    "plan-tiny-labels": PlannerConfig(dim=32, layers=1, heads=2, labels=LABELS),
    "plan-s-labels": PlannerConfig(labels=LABELS),
    "plan-tiny-moves": PlannerConfig(dim=32, layers=1, heads=2, labels=LABELS, displacement=True, features=FEATURES + 1),
    "plan-s-moves": PlannerConfig(labels=LABELS, displacement=True, features=FEATURES + 1),
}

_MOVE_SCALE = 2.0  # radians of phase per unit of the displacement feature (a slide moves about 2.5 in 4 s)


def to_plan(feat: torch.Tensor) -> torch.Tensor:
    """Layout features (..., T, SLOTS, FEATURES) as a displacement planner plans them
    (..., T, SLOTS, FEATURES + 1): the phase channels hold the phase of the first frame in every
    frame, and a last channel how far the phase has turned since, unwrapped (0 where absent)."""
    cos, sin = feat[..., PLACE], feat[..., PLACE + 1]
    phase = torch.atan2(sin, cos)
    step = torch.diff(phase, dim=-2)
    step = torch.remainder(step + math.pi, 2 * math.pi) - math.pi  # the short way round
    moved = torch.cat([torch.zeros_like(phase[..., :1, :]), torch.cumsum(step, dim=-2)], dim=-2)
    out = torch.cat([feat, moved[..., None] / _MOVE_SCALE], dim=-1)
    out[..., PLACE] = cos[..., :1, :].expand_as(cos)
    out[..., PLACE + 1] = sin[..., :1, :].expand_as(sin)
    return out


def from_plan(z: torch.Tensor) -> torch.Tensor:
    """The inverse of `to_plan` (for generated plans too: the first frame's phase is read from the
    mean of the phase channels over the window, and the phase channels of the result are unit)."""
    start = torch.atan2(z[..., PLACE + 1].mean(-2, keepdim=True), z[..., PLACE].mean(-2, keepdim=True))
    phase = start + z[..., -1] * _MOVE_SCALE
    out = z[..., :-1].clone()
    out[..., PLACE] = torch.cos(phase)
    out[..., PLACE + 1] = torch.sin(phase)
    absent = z[..., :1] <= 0
    out[..., PLACE : PLACE + 2] = torch.where(absent, torch.zeros_like(out[..., PLACE : PLACE + 2]), out[..., PLACE : PLACE + 2])
    return out


class Block(nn.Module):
    """Self-attention over all tokens, cross-attention to the text, an MLP; adaLN-zero on flow time."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.xproj = nn.Linear(dim, dim)
        self.norm3 = nn.LayerNorm(dim, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"), nn.Linear(4 * dim, dim))
        self.mod = nn.Linear(dim, 6 * dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        return x.view(B, N, self.heads, C // self.heads).transpose(1, 2)

    def forward(self, x, cond, text, text_mask):
        B, N, C = x.shape
        s1, b1, g1, s2, b2, g2 = self.mod(F.silu(cond))[:, None].chunk(6, dim=-1)
        h = self.norm1(x) * (1 + s1) + b1
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        o = F.scaled_dot_product_attention(self._heads(q), self._heads(k), self._heads(v))
        x = x + g1 * self.proj(o.transpose(1, 2).reshape(B, N, C))
        q = F.rms_norm(self._heads(self.q(self.norm2(x))), (C // self.heads,))
        k, v = self.kv(text).chunk(2, dim=-1)
        k = F.rms_norm(self._heads(k), (C // self.heads,))
        o = F.scaled_dot_product_attention(q, k, self._heads(v), attn_mask=text_mask[:, None, None, :])
        x = x + self.xproj(o.transpose(1, 2).reshape(B, N, C))
        x = x + g2 * self.mlp(self.norm3(x) * (1 + s2) + b2)
        return x


class WorldPlanner(nn.Module):
    def __init__(self, cfg: PlannerConfig):
        super().__init__()
        self.cfg = cfg
        d, k = cfg.dim, cfg.chunk
        self.inp = nn.Linear((2 * cfg.features + 1) * k, d)  # noisy layout + known layout + mask, per chunk
        # the frozen encoder's token features are standardised per dimension (statistics of
        # training captions, set once before training): a few of its dimensions are far larger than
        # the rest, and training adds noise on this scale so that the layer reads meanings, not tokens
        self.register_buffer("text_mean", torch.zeros(cfg.text_dim))
        self.register_buffer("text_std", torch.ones(cfg.text_dim))
        self.text_proj = nn.Linear(cfg.text_dim, d)
        layer = nn.TransformerEncoderLayer(d, cfg.heads, 2 * d, dropout=0.0, batch_first=True, norm_first=True)
        self.text_layers = nn.TransformerEncoder(layer, cfg.text_layers, enable_nested_tensor=False)
        self.text_norm = nn.LayerNorm(d)
        self.t_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.aspect = nn.Linear(2, d)
        self.time = nn.Linear(16, d)  # when in the window a chunk is
        self.slot = nn.Parameter(torch.randn(cfg.slots, d) * 0.5)  # which object's track a token is of
        self.label = nn.Linear(cfg.labels, d) if cfg.labels else None
        self.blocks = nn.ModuleList(Block(d, cfg.heads) for _ in range(cfg.layers))
        self.out_norm = nn.LayerNorm(d, elementwise_affine=False)
        self.out = nn.Linear(d, cfg.features * k)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        for b in self.blocks:  # each block starts as the identity (DiT's adaLN-zero)
            nn.init.zeros_(b.mod.weight)
            nn.init.zeros_(b.xproj.weight)
        nn.init.zeros_(self.out.weight)
        if self.label is not None:  # starts as the planner without labels
            nn.init.zeros_(self.label.weight)

    @torch.no_grad()
    def fit_text_scale(self, tokens: torch.Tensor, mask: torch.Tensor) -> None:
        """Set the per-dimension mean and spread of token features from encoded captions."""
        text.fit_scale(self, tokens, mask)

    def encode_text(self, tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = (tokens - self.text_mean.to(tokens.dtype)) / self.text_std.to(tokens.dtype)
        x = self.text_layers(self.text_proj(tokens), src_key_padding_mask=~mask)
        pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return self.text_norm(x), pooled

    def forward(self, x, t, text_tokens, text_mask, aspect, ctx, ctx_mask, labels=None):
        """Velocity for layouts x (B, T, SLOTS, FEATURES) at flow time t (B,); aspect (B,) width
        over height; ctx: the same shape as x, known frames filled in; ctx_mask (B, T): 1 on them;
        labels (B, SLOTS, LABELS) where the config reads them (None: all zero, no labels)."""
        B, T, S, Fe = x.shape
        k = self.cfg.chunk
        if T % k or S != self.cfg.slots or Fe != self.cfg.features:
            raise ValueError(f"x must have shape (batch, frames divisible by {k}, {self.cfg.slots}, {self.cfg.features}). Got {tuple(x.shape)}.")
        m = ctx_mask[:, :, None, None].expand(B, T, S, 1)
        h = torch.cat([x, ctx * m, m], dim=-1)  # (B, T, S, 2F+1)
        h = h.view(B, T // k, k, S, -1).permute(0, 3, 1, 2, 4).reshape(B, S, T // k, -1)  # tokens: (slot, chunk)
        h = self.inp(h)
        pos = (torch.arange(T // k, device=x.device, dtype=torch.float32) * k + k / 2) / 12.0  # seconds at the chunk's middle
        freqs = 2.0 ** torch.arange(8, device=x.device, dtype=torch.float32) * 0.25
        tf = torch.cat([torch.sin(pos[:, None] * freqs), torch.cos(pos[:, None] * freqs)], dim=-1)  # (T/k, 16)
        h = h + self.time(tf.to(h.dtype))[None, None] + self.slot[None, :, None].to(h.dtype)
        if self.label is not None and labels is not None:
            h = h + self.label(labels.to(h.dtype))[:, :, None]
        h = h.reshape(B, S * (T // k), -1)
        text, pooled = self.encode_text(text_tokens, text_mask)
        la = torch.log(aspect.float())[:, None]
        cond = self.t_mlp(timestep_embedding(t, self.cfg.dim) + pooled) + self.aspect(torch.cat([la, la.abs()], dim=-1).to(pooled.dtype))
        for blk in self.blocks:
            h = blk(h, cond, text, text_mask)
        out = self.out(self.out_norm(h)).view(B, S, T // k, k, Fe).permute(0, 2, 3, 1, 4).reshape(B, T, S, Fe)
        return out


@torch.no_grad()
def sample(
    net: WorldPlanner,
    tokens: torch.Tensor,
    mask: torch.Tensor,
    null: tuple[torch.Tensor, torch.Tensor],
    aspect: float,
    frames: int,
    *,
    ctx: torch.Tensor | None = None,
    ctx_mask: torch.Tensor | None = None,
    steps: int = 32,
    guidance: float = 2.0,
    generator: torch.Generator | None = None,
    labels: torch.Tensor | None = None,
    samples: int = 1,
) -> torch.Tensor:
    """One layout (frames, SLOTS, FEATURES) for a prompt (tokens, mask: (1, L, D), (1, L)), by
    Euler steps of the flow from noise, classifier-free guided against the empty prompt `null`.
    ctx/ctx_mask: known frames (frames, SLOTS, FEATURES) and (frames,), kept as given; labels:
    (SLOTS, LABELS) for a planner that reads them, guided against no labels with the empty prompt.
    samples > 1: that many layouts from independent noise, sampled as one batch, as
    (samples, frames, SLOTS, FEATURES)."""
    if samples < 1:
        raise ValueError(f"samples must be at least 1. Got {samples}.")
    S, Fe = net.cfg.slots, net.cfg.features
    n = samples
    ctx = torch.zeros(frames, S, FEATURES) if ctx is None else ctx
    ctx_mask = torch.zeros(frames) if ctx_mask is None else ctx_mask
    if net.cfg.displacement:
        ctx = to_plan(ctx)
    toks, tmask = text.pair((tokens, mask), null)
    toks, tmask = toks.repeat_interleave(n, 0), tmask.repeat_interleave(n, 0)  # the prompt's n rows, then the empty prompt's
    asp = torch.full((2 * n,), float(aspect))
    c, cm = ctx[None].expand(2 * n, -1, -1, -1), ctx_mask[None].expand(2 * n, -1)
    x = torch.randn(n, frames, S, Fe, generator=generator)
    ts = torch.linspace(0, 1, steps + 1)
    keep = ctx_mask[None, :, None, None] > 0
    lab = None if labels is None else torch.cat([labels[None].expand(n, -1, -1), torch.zeros(n, *labels.shape)])
    for i in range(steps):
        t = ts[i]
        v = net(torch.cat([x, x]), torch.full((2 * n,), float(t)), toks, tmask, asp, c, cm, lab)
        v = v[n:] + guidance * (v[:n] - v[n:])
        x = x + (ts[i + 1] - t) * v
    x = torch.where(keep, ctx[None], x)
    if net.cfg.displacement:
        x = from_plan(x)  # batched: (..., T, SLOTS, FEATURES + 1)
    return x[0] if samples == 1 else x


def widen(state: dict, cfg: PlannerConfig) -> dict:
    """A planner's weights (a state dict) for `cfg`, which plans FEATURES + 1 numbers per object
    and frame (displacement) where the weights plan FEATURES: the input and output layers gain
    the new feature (as zeros, after the others), everything else stays."""
    k, old, new = cfg.chunk, FEATURES, cfg.features
    if state["out.weight"].shape[0] == new * k:
        return state
    state = dict(state)
    w = state["inp.weight"].view(-1, k, 2 * old + 1)
    grown = torch.zeros(w.shape[0], k, 2 * new + 1)
    grown[..., :old] = w[..., :old]  # the noisy layout
    grown[..., new : new + old] = w[..., old : 2 * old]  # the known layout
    grown[..., 2 * new] = w[..., 2 * old]  # the mask
    state["inp.weight"] = grown.view(w.shape[0], -1)
    for name in ("out.weight", "out.bias"):
        t = state[name].view(k, old, *state[name].shape[1:])
        g = torch.zeros(k, new, *t.shape[2:])
        g[:, :old] = t
        state[name] = g.view(k * new, *t.shape[2:])
    return state


def load(path) -> WorldPlanner:
    return load_module(path, lambda cfg: WorldPlanner(PlannerConfig.from_dict(cfg)))


__all__ = ["CHUNK", "LABELS", "PlannerConfig", "Planner_configs", "WorldPlanner", "from_plan", "label_column", "load", "sample", "scene_labels", "to_plan", "widen"]
