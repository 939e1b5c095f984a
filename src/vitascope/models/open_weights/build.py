"""Diffusers pipelines built from configuration alone, with random weights.

One JSON file per architecture lists the pipeline class and each component's class and config;
`configs/tiny/` holds sizes the CPU tests run in seconds, `configs/full/` the published configs
of the real models (the GPU benchmark builds those at full size). The tokenizer is the one part
no config describes, so a small character-level tokenizer is built here: no hub access needed,
and the token ids it makes are valid for any vocabulary.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import torch

CONFIG_DIR = Path(__file__).parent / "configs"


def config_path(name: str, size: str = "tiny") -> Path:
    return CONFIG_DIR / size / f"{name}.json"


def load_config(name: str, size: str = "tiny") -> dict:
    path = config_path(name, size)
    if not path.is_file():
        known = sorted(p.stem for p in (CONFIG_DIR / size).glob("*.json"))
        raise ValueError(f"No {size} configuration for '{name}'. Known: {', '.join(known)}.")
    return json.loads(path.read_text())


def char_tokenizer():
    """A character-level fast tokenizer with T5/Gemma's special tokens (pad 0, eos 1, unk 2, bos 3)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    symbols = ["<pad>", "</s>", "<unk>", "<bos>", " "] + list(string.ascii_lowercase + string.digits + string.punctuation)
    tk = Tokenizer(models.WordLevel({s: i for i, s in enumerate(symbols)}, unk_token="<unk>"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.Split("", "isolated")  # every character is a token
    tk.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", bos_token="<bos>")


def _class(name: str):
    import diffusers
    import transformers

    if hasattr(diffusers, name):
        return getattr(diffusers, name)
    if name == "LTX2TextConnectors":
        from diffusers.pipelines.ltx2 import LTX2TextConnectors

        return LTX2TextConnectors
    if name == "LTX2Vocoder":
        from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

        return LTX2Vocoder
    if hasattr(transformers, name):
        return getattr(transformers, name)
    raise ValueError(f"Unknown component class '{name}'.")


def build_component(spec: dict, seed: int = 0):
    if spec["class"] == "char_tokenizer":
        return char_tokenizer()
    cls = _class(spec["class"])
    torch.manual_seed(seed)
    if "config_class" in spec:  # a transformers model: config object first
        return cls(_class(spec["config_class"])(**spec["config"]))
    if spec.get("from_config"):  # schedulers
        return cls.from_config(spec["config"])
    return cls(**spec["config"])


def build(config: dict, *, seed: int = 0, dtype: torch.dtype | None = None, device: str | torch.device | None = None):
    """The pipeline `config` describes, every weight drawn at random from `seed`."""
    comps = {}
    for i, (name, spec) in enumerate(config["components"].items()):
        with torch.device(device or "cpu"):
            comps[name] = None if spec is None else build_component(spec, seed + i)
    pipe = _class(config["pipeline"])(**comps, **config.get("pipeline_kwargs", {}))
    if dtype is not None:
        for c in comps.values():
            if isinstance(c, torch.nn.Module):
                _cast(c, dtype)
    return pipe


def _cast(module: torch.nn.Module, dtype: torch.dtype) -> None:
    """Cast as `from_pretrained(dtype=...)` does: the modules a model keeps in float32 stay so."""
    torch.nn.Module.to(module, dtype)  # diffusers' own `to` warns about exactly what is done next
    keep = getattr(module, "_keep_in_fp32_modules", None) or []
    for name, sub in module.named_modules():
        if any(k in name.split(".") for k in keep):
            torch.nn.Module.to(sub, torch.float32)


def save_tiny(name: str, out_dir: str | Path, *, seed: int = 0) -> Path:
    """Build `name`'s tiny configuration and save it as a model directory Vitascope loads:
    `save_pretrained` output plus the `vitascope.json` that sets its sizes and steps."""
    config = load_config(name, "tiny")
    out = Path(out_dir)
    build(config, seed=seed).save_pretrained(out)
    if "vitascope" in config:
        (out / "vitascope.json").write_text(json.dumps(config["vitascope"], indent=2))
    return out
