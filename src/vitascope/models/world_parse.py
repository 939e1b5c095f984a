"""WorldParser: reads a prompt into the scene it asks for, so the world model is asked in the
words it knows best.

The frozen sentence encoder (models/text.py) puts a word the model never saw near words of the
same meaning, but near is not on: a flow model conditioned on the raw tokens draws "crimson"
worse than "red" and "pyramid" worse than "triangle" (docs/models/world.md, session 9: the planner
plans 58% of object attributes right in training words, 31-37% in held-out ones). A classifier
over the same tokens, trained with noise on them, reads held-out synonyms far better than a
generative model conditioned on them, because all it must learn is which of a few values each
word is nearest to. So generation is done in two steps, as DALL-E 3 and Sora rewrite a user's
prompt before drawing it: the parser classifies the prompt into sky, ground, weather, camera
and, for each of up to three objects, its colour, shape, size and motion; `describe` (world/
captions.py) phrases that scene in training words; the planner and the network read that.

Architecture: the encoder's token features, standardised per dimension as in the planner, go
through a small transformer together with 7 learned query tokens: 4 for the scene's settings and
3 for groups of identical objects, in the order the prompt names them ("two red balls" is one
group of two). A group's count, colour, shape, size and motion, and each setting, are linear
reads of the encoder's own features at the tokens an attention per attribute picks.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn

from vitascope.world.captions import _groups, describe
from vitascope.world.layout import SLOTS
from vitascope.world.scene import CAMERAS, COLOURS, GROUNDS, MOTIONS, SHAPES, SIZES, SKIES, WEATHERS, Scene, WorldObject

from . import text

# an object's motion with its direction: bouncing may travel left or right
MOTION_CLASSES = tuple(m for m in MOTIONS) + ("bouncing_left", "bouncing_right")
SETTINGS = {"sky": tuple(SKIES), "ground": tuple(GROUNDS), "weather": WEATHERS, "camera": CAMERAS}
SETTINGS_WIDTH = sum(len(v) for v in SETTINGS.values())  # one-hot width of a scene's settings (WorldNetConfig.settings)
# per group of identical objects, as captions name them ("two red balls"): whether the group is
# named at all, how many, and what they are
GROUP_ATTRS = {"present": (False, True), "count": (1, 2, 3), "colour": tuple(COLOURS), "shape": SHAPES, "size": tuple(SIZES), "motion": MOTION_CLASSES}
READ_ATTRS = ("count", "colour", "shape", "size", "motion")  # what a group's words say (pointer reads)


@dataclass(frozen=True)
class ParserConfig:
    dim: int = 192
    layers: int = 3
    heads: int = 6
    text_dim: int = 384
    groups: int = SLOTS  # at most one group per object

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ParserConfig":
        return cls(**d)


Parser_configs = {
    "parse-tiny": ParserConfig(dim=32, layers=1, heads=2),
    "parse-s": ParserConfig(),
}


def motion_class(obj: WorldObject) -> str:
    if obj.motion == "bouncing" and obj.direction:
        return "bouncing_left" if obj.direction < 0 else "bouncing_right"
    return obj.motion


def targets(scene: Scene, groups: int = SLOTS) -> dict[str, list[int]]:
    """Class indices of what the scene's captions say: settings, then per group of identical
    objects in the order captions name them (absent groups: present=0, -100 elsewhere, ignored)."""
    found = _groups(scene.objects)[:groups]
    out = {k: [SETTINGS[k].index(getattr(scene, k))] for k in SETTINGS}
    out["present"] = [int(i < len(found)) for i in range(groups)]
    for k, fn in (("count", lambda o, n: n), ("colour", lambda o, n: o.colour), ("shape", lambda o, n: o.shape), ("size", lambda o, n: o.size), ("motion", lambda o, n: motion_class(o))):
        out[k] = [GROUP_ATTRS[k].index(fn(*found[i])) if i < len(found) else -100 for i in range(groups)]
    return out


def settings_vector(scene, drop: tuple[str, ...] = ()) -> np.ndarray:
    """A scene's (or a parse's) sky, ground, weather and camera as one-hot blocks in SETTINGS order,
    (SETTINGS_WIDTH,) float32, for a network that reads them (WorldNetConfig.settings). A setting
    named in `drop` is left all zero: not given."""
    out = np.zeros(SETTINGS_WIDTH, np.float32)
    at = 0
    for k, values in SETTINGS.items():
        if k not in drop:
            out[at + values.index(getattr(scene, k))] = 1
        at += len(values)
    return out


def scene_from_logits(logits: dict[str, torch.Tensor], b: int, max_objects: int = SLOTS) -> Scene:
    """The scene one row of parser logits reads: likeliest values; at least one object (a prompt
    that names none the parser can read still gets the likeliest group), at most max_objects."""
    settings = {k: SETTINGS[k][int(logits[k][b].argmax())] for k in SETTINGS}
    present = logits["present"][b].softmax(-1)[:, 1]
    keep = [i for i in range(len(present)) if present[i] > 0.5] or [int(present.argmax())]
    objs: list[WorldObject] = []
    for i in keep:
        a = {k: GROUP_ATTRS[k][int(logits[k][b, i].argmax())] for k in READ_ATTRS}
        n, m = a.pop("count"), a.pop("motion")
        direction = {"bouncing_left": -1, "bouncing_right": 1}.get(m, 0)
        objs += [WorldObject(**a, motion="bouncing" if direction else m, direction=direction)] * n
    return Scene(**settings, objects=tuple(objs[:max_objects]))


class WorldParser(nn.Module):
    def __init__(self, cfg: ParserConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.register_buffer("text_mean", torch.zeros(cfg.text_dim))
        self.register_buffer("text_std", torch.ones(cfg.text_dim))
        self.proj = nn.Linear(cfg.text_dim, d)
        self.queries = nn.Parameter(torch.randn(len(SETTINGS) + cfg.groups, d) * 0.5)
        layer = nn.TransformerEncoderLayer(d, cfg.heads, 4 * d, dropout=0.0, batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.present = nn.Linear(d, 2)
        # each attribute's value is a linear read of the frozen encoder's (standardised) features
        # at the tokens an attention per attribute picks: the transformer decides where to look,
        # not what a word means. A linear probe of those features names held-out words far better
        # than trained layers over them do (docs/models/world.md, session 9)
        self.point_q = nn.ModuleDict({k: nn.Linear(d, d) for k in (*SETTINGS, *READ_ATTRS)})
        self.point_k = nn.Linear(d, d)
        self.setting_heads = nn.ModuleDict({k: nn.Linear(cfg.text_dim, len(v)) for k, v in SETTINGS.items()})
        self.group_heads = nn.ModuleDict({k: nn.Linear(cfg.text_dim, len(GROUP_ATTRS[k])) for k in READ_ATTRS})

    @torch.no_grad()
    def fit_text_scale(self, tokens: torch.Tensor, mask: torch.Tensor) -> None:
        """Set the per-dimension mean and spread of token features from encoded captions."""
        text.fit_scale(self, tokens, mask)

    def _point(self, k: str, state: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Attention-weighted frozen features (B, ..., text_dim) for attribute k's queries."""
        q = self.point_q[k](state)  # (B, Q, d) or (B, d)
        squeeze = q.dim() == 2
        q = q[:, None] if squeeze else q
        w = torch.einsum("bqd,bld->bql", q, keys) / keys.shape[-1] ** 0.5
        w = w.masked_fill(~mask[:, None], float("-inf")).softmax(-1)
        out = w @ values
        return out[:, 0] if squeeze else out

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits per attribute: settings (B, classes), group attributes (B, groups, classes)."""
        B = tokens.shape[0]
        z = (tokens - self.text_mean) / self.text_std
        x = self.proj(z)
        nq = self.queries.shape[0]
        x = torch.cat([self.queries[None].expand(B, -1, -1).to(x.dtype), x], dim=1)
        keep = torch.cat([torch.ones(B, nq, dtype=torch.bool, device=mask.device), mask], dim=1)
        h = self.norm(self.layers(x, src_key_padding_mask=~keep))
        q, tok = h[:, :nq], h[:, nq:]
        ns = len(SETTINGS)
        out = {"present": self.present(q[:, ns:])}  # how many groups: the prompt's structure
        keys = self.point_k(tok)
        for i, (k, head) in enumerate(self.setting_heads.items()):
            out[k] = head(self._point(k, q[:, i], keys, z, mask))
        for k, head in self.group_heads.items():
            out[k] = head(self._point(k, q[:, ns:], keys, z, mask))
        return out

    @torch.no_grad()
    def parse(self, prompts: list[str]) -> list[Scene]:
        """The scene each prompt asks for (its objects' free parameters at their defaults)."""
        if not prompts:
            return []
        logits = self(*text.encode(prompts))
        return [scene_from_logits(logits, b) for b in range(len(prompts))]

    @torch.no_grad()
    def read(self, prompts: list[str]) -> list[tuple[Scene, dict[str, float]]]:
        """For each prompt, the scene `parse` reads and how sure the parser is of its settings: the
        probability it gives the sky, ground, weather and camera it reads, from one pass. On
        validation prompts in held-out words, readings it gives 0.9 or more are right far more
        often than the rest (weather 90% against 68% of all, camera 100% against 92%), so a network
        that reads settings is given only those (WorldModel)."""
        if not prompts:
            return []
        logits = self(*text.encode(prompts))
        probs = {k: logits[k].softmax(-1).amax(-1) for k in SETTINGS}
        return [(scene_from_logits(logits, b), {k: float(probs[k][b]) for k in SETTINGS}) for b in range(len(prompts))]

    def rewrite(self, prompt: str) -> str:
        """The prompt in the world's training words (an empty prompt stays empty: no condition)."""
        if not prompt.strip():
            return prompt
        return describe(self.parse([prompt])[0])


def load(path) -> WorldParser:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    net = WorldParser(ParserConfig.from_dict(json.loads(meta["config"])))
    net.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
    return net.eval()


__all__ = ["GROUP_ATTRS", "MOTION_CLASSES", "ParserConfig", "Parser_configs", "READ_ATTRS", "SETTINGS", "SETTINGS_WIDTH", "WorldParser", "load", "motion_class", "scene_from_logits", "settings_vector", "targets"]
