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

A phrase parser (`ParserConfig.ngram`, configs parse-s-grams / parse-tiny-grams; session 15)
reads values from the prompt's word n-grams (1-4 words), each encoded alone (text.encode_ngrams),
instead of from the tokens' features inside the whole prompt: the encoder was trained to compare
sentences, and a phrase alone keeps its meaning ("on a green field" alone is nearest "on green
grass"; inside a prompt the token parser read it as snow 152 times in 500). The pointer still
finds where each attribute is said through the transformer's states over the tokens an n-gram
covers; a learned "nothing said" place stands for values the prompt leaves unsaid. The shipped
one (parse-s-protos, `ParserConfig.prototypes`) names each value by the training phrases, encoded
alone, that the read is nearest; a linear read of the same features (parse-s-grams) forgets with
training what the encoder knows. It is read together with the token parser (ParserEnsemble).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

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
VALUES = {**SETTINGS, **GROUP_ATTRS}  # every attribute's values


@dataclass(frozen=True)
class ParserConfig:
    dim: int = 192
    layers: int = 3
    heads: int = 6
    text_dim: int = 384
    groups: int = SLOTS  # at most one group per object
    ngram: int = 0  # > 0: read each value from the prompt's word n-grams (up to this many words) encoded on their own
    prototypes: bool = False  # a phrase parser names a value by the training phrases its n-gram is nearest (else a linear read)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ParserConfig":
        return cls(**d)


Parser_configs = {
    "parse-tiny": ParserConfig(dim=32, layers=1, heads=2),
    "parse-s": ParserConfig(),
    "parse-tiny-grams": ParserConfig(dim=32, layers=1, heads=2, ngram=4),
    "parse-s-grams": ParserConfig(ngram=4),
    "parse-tiny-protos": ParserConfig(dim=32, layers=1, heads=2, ngram=4, prototypes=True),
    "parse-s-protos": ParserConfig(ngram=4, prototypes=True),
}


def training_phrases() -> dict[str, list[tuple[str, int]]]:
    """Per attribute, the training words of each value as the captions say them, with the value's
    class index: what a prototype parser compares an n-gram with. Held-out words are never among
    them (captions.py keeps them apart)."""
    from vitascope.world import captions as C

    def plain(table):
        return [(w, i) for i, (_, (train, _)) in enumerate(table.items()) for w in train if w.strip()]

    def pairs(table):
        return [(w, i) for i, (_, (train, _)) in enumerate(table.items()) for pair in train for w in pair if w.strip()]

    motion = []
    for i, m in enumerate(MOTION_CLASSES):
        if m.startswith("bouncing_"):
            d = -1 if m.endswith("left") else 1
            motion += [(v + w, i) for pair in C.MOTION_WORDS["bouncing"][0] for v in pair for w in C.DIRECTION_WORDS[d][0]]
        else:
            motion += [(w, i) for pair in C.MOTION_WORDS[m][0] for w in pair if w.strip()]
    out = {"sky": plain(C.SKY_WORDS), "ground": plain(C.GROUND_WORDS), "weather": plain(C.WEATHER_WORDS), "camera": plain(C.CAMERA_WORDS),
           "count": plain(C.NUMBERS), "colour": plain(C.COLOUR_WORDS), "shape": pairs(C.SHAPE_WORDS), "size": plain(C.SIZE_WORDS), "motion": motion}
    for k, v in out.items():  # every value has words to be named by
        if len({i for _, i in v}) != len(VALUES[k]):
            raise ValueError(f"{k}: a value without training words")
    return out


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


class _Reads:
    """parse, read and rewrite, on top of `logits(prompts)`: a parser's or an ensemble's."""

    @torch.no_grad()
    def parse(self, prompts: list[str]) -> list[Scene]:
        """The scene each prompt asks for (its objects' free parameters at their defaults)."""
        if not prompts:
            return []
        logits = self.logits(prompts)
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
        logits = self.logits(prompts)
        probs = {k: logits[k].softmax(-1).amax(-1) for k in SETTINGS}
        return [(scene_from_logits(logits, b), {k: float(probs[k][b]) for k in SETTINGS}) for b in range(len(prompts))]

    def rewrite(self, prompt: str) -> str:
        """The prompt in the world's training words (an empty prompt stays empty: no condition)."""
        if not prompt.strip():
            return prompt
        return describe(self.parse([prompt])[0])


class WorldParser(_Reads, nn.Module):
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
        if not cfg.prototypes:
            self.setting_heads = nn.ModuleDict({k: nn.Linear(cfg.text_dim, len(v)) for k, v in SETTINGS.items()})
            self.group_heads = nn.ModuleDict({k: nn.Linear(cfg.text_dim, len(GROUP_ATTRS[k])) for k in READ_ATTRS})
        if cfg.ngram:
            # a phrase parser points at n-grams (where: the transformer's states over the tokens an
            # n-gram covers, and its length) and reads the n-gram encoded alone; "nothing said" is
            # a learned place to point at, whose value says the default
            self.register_buffer("gram_mean", torch.zeros(cfg.text_dim))
            self.register_buffer("gram_std", torch.ones(cfg.text_dim))
            self.gram_len = nn.Embedding(cfg.ngram + 1, d)
            self.gram_k = nn.Linear(cfg.text_dim, d)
            self.null_key = nn.Parameter(torch.zeros(d))
            self.null_value = nn.ParameterDict({k: nn.Parameter(torch.zeros(cfg.text_dim)) for k in (*SETTINGS, *READ_ATTRS)})
        if cfg.prototypes:
            # instead of the linear reads: each value's logit is the read's cosine to its nearest
            # training phrases (encoded alone), times a learned sharpness, plus a learned bias (the
            # value said when nothing is: the "nothing said" place reads as no phrase at all)
            phrases = training_phrases()
            self.proto_names = {k: [w for w, _ in v] for k, v in phrases.items()}
            for k, v in phrases.items():
                self.register_buffer(f"proto_{k}", torch.zeros(len(v), cfg.text_dim))
                self.register_buffer(f"proto_class_{k}", torch.tensor([i for _, i in v]))
            self.proto_scale = nn.ParameterDict({k: nn.Parameter(torch.tensor(3.0)) for k in phrases})
            self.proto_bias = nn.ParameterDict({k: nn.Parameter(torch.zeros(len(VALUES[k]))) for k in phrases})

    @torch.no_grad()
    def fit_text_scale(self, tokens: torch.Tensor, mask: torch.Tensor) -> None:
        """Set the per-dimension mean and spread of token features from encoded captions."""
        text.fit_scale(self, tokens, mask)

    @torch.no_grad()
    def fit_gram_scale(self, grams: torch.Tensor, gram_mask: torch.Tensor) -> None:
        """Set the per-dimension mean and spread of n-gram features from encoded captions."""
        valid = grams[gram_mask]
        self.gram_mean.copy_(valid.mean(0))
        self.gram_std.copy_(valid.std(0).clamp(min=1e-3))

    @torch.no_grad()
    def fit_prototypes(self) -> None:
        """Encode each attribute's training phrases alone (text.encode_phrases) as its prototypes."""
        for k, names in self.proto_names.items():
            getattr(self, f"proto_{k}").copy_(text.encode_phrases(names))

    def _proto_logits(self, k: str, read: torch.Tensor) -> torch.Tensor:
        """(..., classes): per value, the soft maximum of the read's cosine to that value's phrases."""
        protos, cls = getattr(self, f"proto_{k}"), getattr(self, f"proto_class_{k}")
        sim = torch.nn.functional.normalize(read, dim=-1, eps=1e-6) @ protos.T  # (..., N)
        scale = self.proto_scale[k].exp()  # about 20 at first
        n = len(self.proto_bias[k])
        onehot = torch.nn.functional.one_hot(cls, n).bool()  # (N, classes)
        per = (scale * sim)[..., :, None].masked_fill(~onehot, float("-inf"))  # (..., N, classes)
        return torch.logsumexp(per, dim=-2) - torch.log(onehot.sum(0).float()) + self.proto_bias[k]

    def _point(self, k: str, state: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Attention-weighted frozen features (B, ..., text_dim) for attribute k's queries."""
        q = self.point_q[k](state)  # (B, Q, d) or (B, d)
        squeeze = q.dim() == 2
        q = q[:, None] if squeeze else q
        if self.cfg.ngram:  # the first place is "nothing said"
            B = keys.shape[0]
            keys = torch.cat([self.null_key.expand(B, 1, -1).to(keys.dtype), keys], 1)
            values = torch.cat([self.null_value[k].expand(B, 1, -1).to(values.dtype), values], 1)
            mask = torch.cat([torch.ones(B, 1, dtype=torch.bool, device=mask.device), mask], 1)
        w = torch.einsum("bqd,bld->bql", q, keys) / keys.shape[-1] ** 0.5
        w = w.masked_fill(~mask[:, None], float("-inf")).softmax(-1)
        out = w @ values
        return out[:, 0] if squeeze else out

    def inputs(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        """What forward reads of a batch of prompts: token embeddings and mask, and for a phrase
        parser its n-grams encoded alone (text.encode_ngrams)."""
        if self.cfg.ngram:
            return text.encode_ngrams(prompts, self.cfg.ngram)
        tokens, mask = text.encode(prompts)
        return {"tokens": tokens, "mask": mask}

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor, grams=None, gram_mask=None, gram_pool=None) -> dict[str, torch.Tensor]:
        """Logits per attribute: settings (B, classes), group attributes (B, groups, classes).
        A phrase parser (cfg.ngram) also reads the prompt's n-grams (text.encode_ngrams)."""
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
        if self.cfg.ngram:
            if grams is None:
                raise ValueError("a phrase parser (ParserConfig.ngram) needs the prompt's n-grams: see WorldParser.inputs")
            lengths = (gram_pool > 0).sum(-1).clamp(max=self.cfg.ngram)  # tokens covered, a proxy of words
            # the n-gram's place and context: the transformer's states over its tokens; its length
            z, mask = (grams - self.gram_mean) / self.gram_std, gram_mask
            keys = gram_pool @ keys + self.gram_k(z) + self.gram_len(lengths)
            if self.cfg.prototypes:  # cosines are taken in the encoder's own space, as it compares sentences
                for i, k in enumerate(SETTINGS):
                    out[k] = self._proto_logits(k, self._point(k, q[:, i], keys, grams, mask))
                for k in READ_ATTRS:
                    out[k] = self._proto_logits(k, self._point(k, q[:, ns:], keys, grams, mask))
                return out
        for i, (k, head) in enumerate(self.setting_heads.items()):
            out[k] = head(self._point(k, q[:, i], keys, z, mask))
        for k, head in self.group_heads.items():
            out[k] = head(self._point(k, q[:, ns:], keys, z, mask))
        return out

    @torch.no_grad()
    def logits(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        return self(**self.inputs(prompts))


class ParserEnsemble(_Reads, nn.Module):
    """Parsers read together: each attribute's log-probabilities averaged over the members (a
    product of experts). A token parser and a phrase parser err on different held-out words
    (session 15: the token parser reads "on a green field" as snow, the phrase parser reads it
    right; the phrase parser takes "at dusk" for night), so each is outvoted where it alone is
    unsure. The prompt is encoded once for all members."""

    def __init__(self, members: list[WorldParser]):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one parser")
        self.members = nn.ModuleList(members)

    @torch.no_grad()
    def logits(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        grams = next((m for m in self.members if m.cfg.ngram), None)
        enc = grams.inputs(prompts) if grams is not None else self.members[0].inputs(prompts)
        out: dict[str, torch.Tensor] = {}
        for m in self.members:
            mine = enc if m.cfg.ngram else {"tokens": enc["tokens"], "mask": enc["mask"]}
            for k, v in m(**mine).items():
                out[k] = out.get(k, 0) + v.log_softmax(-1) / len(self.members)
        return out


def load(path) -> WorldParser:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    net = WorldParser(ParserConfig.from_dict(json.loads(meta["config"])))
    net.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
    return net.eval()


def load_all(paths) -> WorldParser | ParserEnsemble:
    """One parser, or several read together (ParserEnsemble); `paths` may be one string of paths
    joined by '+'."""
    if isinstance(paths, (str, Path)):
        paths = str(paths).split("+")
    nets = [load(p) for p in paths]
    return nets[0] if len(nets) == 1 else ParserEnsemble(nets).eval()


__all__ = ["GROUP_ATTRS", "MOTION_CLASSES", "ParserConfig", "ParserEnsemble", "Parser_configs", "READ_ATTRS", "SETTINGS", "SETTINGS_WIDTH", "WorldParser", "load", "load_all", "motion_class", "scene_from_logits", "settings_vector", "targets", "training_phrases", "VALUES"]
