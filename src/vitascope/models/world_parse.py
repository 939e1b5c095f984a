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
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from vitascope.world.captions import _groups, describe
from vitascope.world.layout import SLOTS
from vitascope.world.scene import CAMERAS, COLOURS, GROUNDS, MOTIONS, SHAPES, SIZES, SKIES, WEATHERS, Scene, WorldObject

from . import text
from .world_net import load_module

# an object's motion with its direction: bouncing may travel left or right
MOTION_CLASSES = tuple(m for m in MOTIONS) + ("bouncing_left", "bouncing_right")
SETTINGS = {"sky": tuple(SKIES), "ground": tuple(GROUNDS), "weather": WEATHERS, "camera": CAMERAS}
SETTINGS_WIDTH = sum(len(v) for v in SETTINGS.values())  # one-hot width of a scene's settings (WorldNetConfig.settings)
# per group of identical objects, as captions name them ("two red balls"): whether the group is
# named at all, how many, and what they are
GROUP_ATTRS = {"present": (False, True), "count": (1, 2, 3), "colour": tuple(COLOURS), "shape": SHAPES, "size": tuple(SIZES), "motion": MOTION_CLASSES}
READ_ATTRS = ("count", "colour", "shape", "size", "motion")  # what a group's words say (pointer reads)
VALUES = {**SETTINGS, **GROUP_ATTRS}  # every attribute's values
REWORD_ATTRS = (*SETTINGS, *READ_ATTRS)  # what `reword` can put in training words


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


# a group of objects is read as named where the parser gives it at least this probability: at 0.5
# a group the prompt names once was often read twice (a second group pointing at the same words or
# at the camera's), and on the development words 0.7 reads the number of objects right in 80.0%
# of prompts against 75.5%, the other attributes within an object (session 22)
PRESENT = 0.7


def scene_from_logits(logits: dict[str, torch.Tensor], b: int, max_objects: int = SLOTS) -> Scene:
    """The scene one row of parser logits reads: likeliest values; at least one object (a prompt
    that names none the parser can read still gets the likeliest group), at most max_objects; two
    groups alike but for their number are one (on 500 validation prompts in development words the
    number of objects is read right in 83.6% against 79.4%, in training words 98.6% against 96.6%)."""
    settings = {k: SETTINGS[k][int(logits[k][b].argmax())] for k in SETTINGS}
    present = logits["present"][b].softmax(-1)[:, 1]
    keep = [i for i in range(len(present)) if present[i] > PRESENT] or [int(present.argmax())]
    # captions name identical objects together ("two red balls": `captions._groups`), so two groups
    # read alike but for their number are one phrase read twice: the surer reading stays
    groups: dict[tuple, tuple[int, dict]] = {}
    for i in sorted(keep, key=lambda i: -float(present[i])):
        a = {k: GROUP_ATTRS[k][int(logits[k][b, i].argmax())] for k in READ_ATTRS}
        groups.setdefault(tuple(v for k, v in a.items() if k != "count"), (i, a))
    objs: list[WorldObject] = []
    for _, a in sorted(groups.values(), key=lambda g: g[0]):
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
        return [(scene, sure) for scene, sure, _ in self.reword(prompts, attrs=())]

    @torch.no_grad()
    def reword(self, prompts: list[str], attrs=tuple(SETTINGS), least: float = 0.5, near: float = 0.3, confidence: dict[str, float] | None = None, to: str = "first") -> list[tuple[Scene, dict[str, float], str]]:
        """`read`, and each prompt with the words that say the attributes in `attrs` replaced by
        the training phrase of the value read that is nearest them: "on a green field at dusk"
        becomes "on green grass at sunset" where the parser reads grass and sunset, and every
        other word stays the user's. The network draws a scene from its words (it reads the
        sky a prompt says over the settings it is given: session 15), and draws training words
        best (a parser that never errs gives 74.8% of attributes against 57.1%).

        Where: the phrase parser's pointer for that attribute (or object group) says where it is
        said. Of the n-grams it weighs at least `near` times its most weighed one, the one nearest
        (cosine of the n-gram encoded alone) to a training phrase of the value read is replaced,
        if that cosine is at least `least`; spans that overlap a better one are left. A value the
        pointer finds unsaid, or a parser with no phrase member, leaves the words as they are.
        A setting is reworded only where the parser reads it with at least the probability
        `confidence` names for it (default: `reword_from`, fitted on the development words by
        `fit_reword_from`; else REWORD_FROM): a wrong reading reworded is drawn wrong for sure.
        Settings: sky, ground, weather, camera; object groups: count, colour, shape, size, motion.
        to: what the span becomes, "first": the value's first training phrase, the one `describe`
        uses ("at dusk" -> "at sunset"; session 29: the network draws those best), or "nearest":
        the training phrase nearest the span ("at dusk" -> "at twilight", sessions 16-28)."""
        if to not in REWORD_TO:
            raise ValueError(f"to must be one of {REWORD_TO}. Got {to!r}.")
        if not prompts:
            return []
        logits, enc, pointer, pointers = self._run(prompts)
        probs = {k: logits[k].softmax(-1).amax(-1) for k in SETTINGS}
        sure_of = confidence if confidence is not None else getattr(self, "reword_from", None) or {}
        out = []
        for b, prompt in enumerate(prompts):
            scene = scene_from_logits(logits, b)
            sure = {k: float(probs[k][b]) for k in SETTINGS}
            words = prompt
            mine = [k for k in attrs if k not in SETTINGS or sure[k] >= sure_of.get(k, REWORD_FROM)]
            if pointer is not None and prompt.strip() and mine:
                words = _reword(prompt, {k: v[b] for k, v in logits.items()}, {k: v[b] for k, v in pointers.items()}, enc["grams"][b], pointer, mine, least, near, first=to == "first")
            out.append((scene, sure, words))
        return out

    def rewrite(self, prompt: str) -> str:
        """The prompt in the world's training words (an empty prompt stays empty: no condition)."""
        if not prompt.strip():
            return prompt
        return describe(self.parse([prompt])[0])


REWORD_TO = ("first", "nearest")  # what a reworded span becomes (`_Reads.reword`'s `to`)
REWORD_FROM = 0.9  # a setting's reading is reworded from this probability where none was fitted
_PUNCTUATION = re.compile(r"[,;:.!?]")
_JOINING = {"a", "an", "the", "in", "on", "at", "under", "during", "while", "of", "and", "with", "as", "by", "to", "into", "over", "is", "it", "that"}  # never the last word of a span grown longer


def _tidy(prompt: str, a: int, z: int, phrase: str) -> tuple[int, int]:
    """The span prompt[a:z] that `phrase` replaces, without the joining words it ends in and the
    phrase does not ("during a downpour in" leaves the "in" of "in a winter landscape"), and with
    the word before it where the phrase begins with that word ("The view pans right" -> "the
    camera pans right", not "The the camera pans right")."""
    last = phrase.rsplit(" ", 1)[-1].lower()  # "the camera zooms in" keeps its "in"
    while (m := re.search(r"\s+([a-z]+)$", prompt[a:z], re.I)) and m.group(1).lower() in _JOINING and m.group(1).lower() != last:
        z = a + m.start()
    first = phrase.split(" ", 1)[0].lower()
    before = re.search(r"([a-z]+)\s+$", prompt[:a], re.I)
    if before and before.group(1).lower() == first and len(phrase.split()) > 1:
        a = before.start()
    return a, z


def _reword(prompt: str, logits: dict, pointers: dict, grams: torch.Tensor, parser: "WorldParser", attrs, least: float, near: float, longer: float = 0.05, first: bool = True) -> str:
    """One prompt's words with the spans that say `attrs` replaced (see `_Reads.reword`): logits and
    pointers of that prompt, grams its n-grams encoded alone (G, 384) in `text.ngrams` order; each
    span by its value's first training phrase (first) or by the training phrase nearest it."""
    found = text.ngrams(prompt, parser.cfg.ngram)
    feats = grams[: len(found)]
    within = torch.tensor([bool(_PUNCTUATION.search(prompt[a:z])) for _, a, z in found], dtype=torch.bool)  # spans no clause break
    present = logits["present"].softmax(-1)[:, 1]
    groups = [i for i in range(len(present)) if present[i] > PRESENT] or [int(present.argmax())]
    spans = []  # (cosine, first char, end char, training phrase)
    for k in attrs:
        rows = [(logits[k], pointers[k])] if k in SETTINGS else [(logits[k][g], pointers[k][g]) for g in groups]
        cls, names = getattr(parser, f"proto_class_{k}"), parser.proto_names[k]
        protos = getattr(parser, f"proto_{k}")
        for lg, w in rows:
            if int(w.argmax()) == 0 or not found:  # "nothing said"
                continue
            w = w[1 : len(found) + 1]
            mine = (cls == int(lg.argmax())).nonzero()[:, 0]
            sim, j = (feats @ protos[mine].T).max(-1)  # (G,): each n-gram's nearest phrase of the value read
            sim = sim.masked_fill((w < near * w.max()) | within, float("-inf"))
            i = int(sim.argmax())
            if float(sim[i]) < least:
                continue
            # a longer n-gram that holds this one and is nearly as near says the whole of it ("on
            # a green field", not "on a green")
            holds = [g for g in range(len(found)) if found[g][1] <= found[i][1] and found[g][2] >= found[i][2] and float(sim[g]) >= float(sim[i]) - longer
                     and (found[g][2] == found[i][2] or found[g][0].rsplit(" ", 1)[-1] not in _JOINING)]
            i = max(holds, key=lambda g: (found[g][2] - found[g][1], float(sim[g])))
            phrase = next(names[m] for m in mine.tolist() if names[m].strip()) if first else names[int(mine[j[i]])]
            spans.append((float(sim[i]), *_tidy(prompt, found[i][1], found[i][2], phrase), phrase))
    chosen: list[tuple[float, int, int, str]] = []
    for span in sorted(spans, reverse=True):
        if all(span[2] <= a or span[1] >= z for _, a, z, _ in chosen):
            chosen.append(span)
    for _, a, z, phrase in sorted(chosen, key=lambda c: -c[1]):
        prompt = prompt[:a] + phrase + prompt[z:]
    return prompt


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

    def _point(self, k: str, state: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, pointers: dict | None = None) -> torch.Tensor:
        """Attention-weighted frozen features (B, ..., text_dim) for attribute k's queries; the
        attention itself goes into `pointers[k]` where given (a phrase parser's place 0 is "nothing
        said", then the n-grams in `text.ngrams` order)."""
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
        if pointers is not None:
            pointers[k] = w[:, 0] if squeeze else w
        out = w @ values
        return out[:, 0] if squeeze else out

    def inputs(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        """What forward reads of a batch of prompts: token embeddings and mask, and for a phrase
        parser its n-grams encoded alone (text.encode_ngrams)."""
        if self.cfg.ngram:
            return text.encode_ngrams(prompts, self.cfg.ngram)
        tokens, mask = text.encode(prompts)
        return {"tokens": tokens, "mask": mask}

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor, grams=None, gram_mask=None, gram_pool=None, pointers: dict | None = None) -> dict[str, torch.Tensor]:
        """Logits per attribute: settings (B, classes), group attributes (B, groups, classes).
        A phrase parser (cfg.ngram) also reads the prompt's n-grams (text.encode_ngrams).
        `pointers`, where given, receives each attribute's attention over the places it reads."""
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
                    out[k] = self._proto_logits(k, self._point(k, q[:, i], keys, grams, mask, pointers))
                for k in READ_ATTRS:
                    out[k] = self._proto_logits(k, self._point(k, q[:, ns:], keys, grams, mask, pointers))
                return out
        for i, (k, head) in enumerate(self.setting_heads.items()):
            out[k] = head(self._point(k, q[:, i], keys, z, mask, pointers))
        for k, head in self.group_heads.items():
            out[k] = head(self._point(k, q[:, ns:], keys, z, mask, pointers))
        return out

    @torch.no_grad()
    def logits(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        return self(**self.inputs(prompts))

    @torch.no_grad()
    def _run(self, prompts: list[str]):
        """(logits, the n-gram inputs, the phrase parser that pointed, its pointers): for `reword`;
        the last three None for a parser that reads no n-grams."""
        enc = self.inputs(prompts)
        pointers: dict = {}
        out = self(**enc, pointers=pointers)
        return (out, enc, self, pointers) if self.cfg.prototypes else (out, None, None, None)


class ParserEnsemble(_Reads, nn.Module):
    """Parsers read together: each attribute's log-probabilities averaged over the members (a
    product of experts). A token parser and a phrase parser err on different held-out words
    (session 15: the token parser reads "on a green field" as snow, the phrase parser reads it
    right; the phrase parser takes "at dusk" for night), so each is outvoted where it alone is
    unsure. The prompt is encoded once for all members."""

    def __init__(self, members: list[WorldParser], weights: dict[str, list[float]] | None = None):
        """weights: per attribute, each member's share of the averaged log-probabilities (they sum
        to 1); attributes not named are averaged evenly. See `fit_weights`."""
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one parser")
        self.members = nn.ModuleList(members)
        self.weights = {k: [float(x) for x in v] for k, v in (weights or {}).items()}
        self.reword_from: dict[str, float] = {}  # per setting, the probability from which `reword` rewords it (load_all reads it)
        for k, v in self.weights.items():
            if k not in VALUES or len(v) != len(members) or min(v) < 0 or abs(sum(v) - 1) > 1e-6:
                raise ValueError(f"weights[{k!r}] must name an attribute and give each of the {len(members)} members a share >= 0, summing to 1. Got {v}.")

    def share(self, k: str, i: int) -> float:
        """Member i's share of attribute k's log-probabilities."""
        return self.weights[k][i] if k in self.weights else 1 / len(self.members)

    @torch.no_grad()
    def logits(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        return self._run(prompts)[0]

    @torch.no_grad()
    def _each(self, prompts: list[str], pointers: dict | None = None):
        """(each member's log-probabilities per attribute, the inputs, the member that points):
        the prompts are encoded once for all members; the first member that names values by
        training phrases points for `reword`, into `pointers` where given."""
        grams = next((m for m in self.members if m.cfg.ngram), None)
        enc = (grams or self.members[0]).inputs(prompts)
        pointer = next((m for m in self.members if m.cfg.prototypes), None)
        each = []
        for m in self.members:
            mine = enc if m.cfg.ngram else {"tokens": enc["tokens"], "mask": enc["mask"]}
            each.append({k: v.log_softmax(-1) for k, v in m(**mine, pointers=pointers if m is pointer else None).items()})
        return each, enc, pointer

    @torch.no_grad()
    def _run(self, prompts: list[str]):
        """(averaged logits, the n-gram inputs, the phrase parser that pointed, its pointers)."""
        pointers: dict = {}
        each, enc, pointer = self._each(prompts, pointers)
        out = {k: sum(e[k] * self.share(k, i) for i, e in enumerate(each)) for k in each[0]}
        return (out, enc, pointer, pointers) if pointer is not None else (out, None, None, None)


def load(path) -> WorldParser:
    return load_module(path, lambda cfg: WorldParser(ParserConfig.from_dict(cfg)))


@torch.no_grad()
def fit_weights(members: list[WorldParser], prompts: list[str], scenes: list[Scene], grid: int = 21, least: float = 0.0, attrs=None) -> tuple[dict[str, list[float]], dict[str, tuple[float, float]]]:
    """Per attribute, the share of two parsers' log-probabilities that reads `prompts` best (the
    scenes they say): {attribute: [share of the first, share of the second]}, and per attribute
    the accuracy (even shares, fitted shares). Fit on the development words (captions.DEV_WORDS),
    never the held-out ones; among equal accuracies the share nearest even wins. least: the
    smallest share either parser keeps (0: one may read an attribute alone). attrs: the attributes
    to fit (default: all); the others are left out, to be read with even shares."""
    if len(members) != 2:
        raise ValueError(f"fit_weights reads two parsers. Got {len(members)}.")
    ens = ParserEnsemble(members).eval()
    chunks = [ens._each(prompts[i : i + 64])[0] for i in range(0, len(prompts), 64)]
    per = [{k: torch.cat([c[j][k] for c in chunks]) for k in chunks[0][j]} for j in range(2)]
    tg = [targets(s) for s in scenes]
    weights, acc = {}, {}
    for k in per[0]:
        if attrs is not None and k not in attrs:
            continue
        truth = torch.tensor([t[k] for t in tg])
        if truth.dim() == 1:
            truth = truth[:, None]
        valid = truth >= 0
        a, b = per[0][k], per[1][k]
        a, b = (a[:, None], b[:, None]) if a.dim() == 2 else (a, b)

        def right(share):
            return float(((share * b + (1 - share) * a).argmax(-1) == truth)[valid].float().mean())

        shares = sorted((x for x in np.linspace(0, 1, grid) if least - 1e-9 <= x <= 1 - least + 1e-9), key=lambda x: abs(x - 0.5))
        scores = {float(x): right(float(x)) for x in shares}
        best = max(scores.values())
        x = next(float(x) for x in shares if scores[float(x)] == best)
        weights[k] = [round(1 - x, 4), round(x, 4)]
        acc[k] = (scores[0.5], best)
    return weights, acc


@torch.no_grad()
def fit_reword_from(parser, prompts: list[str], scenes: list[Scene], precision: float = 0.9, grid=(0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)) -> dict[str, float]:
    """Per setting, the lowest probability from which the parser's readings of `prompts` are at
    least `precision` right (the development words, never the held-out ones): `reword` rewords a
    setting read with at least that probability. A setting no threshold makes that right is
    never reworded (1.01)."""
    reads = [r for i in range(0, len(prompts), 64) for r in parser.read(prompts[i : i + 64])]
    out = {}
    for k in SETTINGS:
        pairs = [(sure[k], getattr(read, k) == getattr(scene, k)) for (read, sure), scene in zip(reads, scenes)]
        out[k] = 1.01
        for lo in grid:
            right = [ok for p, ok in pairs if p >= lo]
            if right and sum(right) >= precision * len(right):
                out[k] = float(lo)
                break
    return out


ENSEMBLE_FILE = "world-parse-ensemble.json"  # beside the parsers: their fitted shares (fit_weights)


def load_all(paths) -> WorldParser | ParserEnsemble:
    """One parser, or several read together (ParserEnsemble); `paths` may be one string of paths
    joined by '+'. Shares fitted for exactly these parsers (ENSEMBLE_FILE beside the first, naming
    their files) are read with them, and so are the probabilities from which `reword` rewords
    each setting."""
    if isinstance(paths, (str, Path)):
        paths = str(paths).split("+")
    nets = [load(p) for p in paths]
    if len(nets) == 1:
        return nets[0]
    fitted = Path(paths[0]).with_name(ENSEMBLE_FILE)
    weights = None
    if fitted.is_file():
        spec = json.loads(fitted.read_text())
        if spec.get("members") == [Path(p).name for p in paths]:
            weights = spec
    ens = ParserEnsemble(nets, weights["weights"] if weights else None).eval()
    ens.reword_from = dict(weights.get("reword_from", {})) if weights else {}
    return ens


__all__ = ["GROUP_ATTRS", "MOTION_CLASSES", "ParserConfig", "ParserEnsemble", "Parser_configs", "READ_ATTRS", "REWORD_ATTRS", "SETTINGS", "SETTINGS_WIDTH", "WorldParser", "load", "load_all", "motion_class", "scene_from_logits", "settings_vector", "targets", "training_phrases", "VALUES"]
