"""What makes a diffusers pipeline fast, each switch on its own: dtype, attention backend,
conditional and unconditional passes in one batch, torch.compile, VAE tiling and slicing, FP8
weights, a first-block step cache, and a memory mode chosen from free GPU memory.

`Speed.stock()` is diffusers as its documentation runs it (bf16, model on the GPU, nothing
else); the benchmark compares that with `Speed()` on the same GPU at the same steps.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)

GB = 1024**3


@dataclass(frozen=True)
class Speed:
    dtype: str = "bfloat16"  # on CUDA; the CPU always runs float32
    attention: str = "auto"  # auto | native | flash | _flash_3 | sage: diffusers' attention backends
    cfg_batch: bool = True  # the prompt's and the negative prompt's passes as one batch
    compile: bool = True  # torch.compile of the transformer's repeated blocks (CUDA only)
    vae_tiling: bool = True  # decode in tiles: large sizes fit in less memory
    fp8: bool = False  # FP8 weights and activations through torchao (Hopper or newer)
    step_cache: float = 0.0  # first-block cache threshold; 0 is off, 0.05-0.1 trades quality for speed
    offload: str = "auto"  # auto | none | model | group
    max_batch: int = 4  # jobs of the same model and settings denoised together

    @classmethod
    def stock(cls) -> "Speed":
        return cls(attention="native", cfg_batch=False, compile=False, vae_tiling=False, fp8=False, step_cache=0.0, offload="none", max_batch=1)


def torch_dtype(name: str, device: torch.device) -> torch.dtype:
    if device.type != "cuda":
        return torch.float32
    return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[name]


def module_bytes(module: torch.nn.Module | None) -> int:
    if module is None or not isinstance(module, torch.nn.Module):
        return 0
    return sum(p.numel() * p.element_size() for p in module.parameters())


def choose_offload(mode: str, *, total_bytes: int, largest_bytes: int, free_bytes: int, working_bytes: int = 6 * GB) -> str:
    """The memory mode for weights of `total_bytes` (largest component `largest_bytes`) when the
    GPU has `free_bytes`: all on the GPU, one component at a time (model offload), or layer
    groups streamed in (group offload), keeping `working_bytes` for activations and decoding."""
    if mode != "auto":
        if mode not in ("none", "model", "group"):
            raise ValueError(f"offload must be auto, none, model or group. Got {mode!r}.")
        return mode
    if total_bytes + working_bytes <= free_bytes:
        return "none"
    if largest_bytes + working_bytes <= free_bytes:
        return "model"
    return "group"


def apply(pipe, speed: Speed, device: torch.device) -> dict:
    """Put `pipe` on `device` with the switches of `speed`; returns what was applied."""
    applied: dict = {"device": str(device)}
    parts = {name: c for name, c in pipe.components.items() if isinstance(c, torch.nn.Module)}
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        mode = choose_offload(
            speed.offload,
            total_bytes=sum(module_bytes(m) for m in parts.values()),
            largest_bytes=max((module_bytes(m) for m in parts.values()), default=0),
            free_bytes=free,
        )
    else:
        mode = "none"
    if speed.fp8 and device.type == "cuda":
        applied["fp8"] = _fp8(pipe, device)
    if mode == "none":
        pipe.to(device)
    elif mode == "model":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.enable_group_offload(onload_device=device, offload_device=torch.device("cpu"), offload_type="leaf_level", use_stream=True)
    applied["offload"] = mode
    for name in ("transformer", "transformer_2"):
        tr = getattr(pipe, name, None)
        if tr is None:
            continue
        backend = _attention_backend(speed.attention, device)
        if backend != "native":
            try:
                tr.set_attention_backend(backend)
                applied["attention"] = backend
            except Exception as e:  # a backend whose kernels are not installed: stay on SDPA
                log.warning("attention backend %s unavailable (%s); using PyTorch SDPA", backend, e)
                applied["attention"] = "native"
        else:
            applied["attention"] = "native"
        if speed.step_cache > 0:
            from diffusers.hooks import FirstBlockCacheConfig

            tr.enable_cache(FirstBlockCacheConfig(threshold=speed.step_cache))
            applied["step_cache"] = speed.step_cache
        if speed.compile and device.type == "cuda":
            tr.compile_repeated_blocks(fullgraph=speed.step_cache == 0)
            applied["compile"] = True
    vae = getattr(pipe, "vae", None)
    if vae is not None and speed.vae_tiling and hasattr(vae, "enable_tiling"):
        vae.enable_tiling()
        applied["vae_tiling"] = True
    if vae is not None and speed.max_batch > 1 and hasattr(vae, "enable_slicing"):
        vae.enable_slicing()  # a batch of clips decodes one at a time
    return applied


def _attention_backend(name: str, device: torch.device) -> str:
    if name != "auto":
        return name
    if device.type != "cuda":
        return "native"
    major, _ = torch.cuda.get_device_capability(device)
    try:
        import flash_attn_interface  # noqa: F401  FlashAttention 3, Hopper

        if major == 9:
            return "_flash_3"
    except ImportError:
        pass
    try:
        import flash_attn  # noqa: F401

        return "flash"
    except ImportError:
        return "native"  # PyTorch SDPA picks flash or memory-efficient kernels itself


def _fp8(pipe, device: torch.device) -> bool:
    major, minor = torch.cuda.get_device_capability(device)
    if (major, minor) < (8, 9):
        log.warning("FP8 needs compute capability 8.9 or newer (Ada, Hopper); this GPU is %d.%d", major, minor)
        return False
    try:
        from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, quantize_
    except ImportError:
        log.warning("FP8 needs torchao: pip install 'vitascope[gpu]'")
        return False
    for name in ("transformer", "transformer_2"):
        tr = getattr(pipe, name, None)
        if tr is not None:
            tr.to(device)
            quantize_(tr, Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()))
    return True


class CFGBatcher:
    """Runs a pipeline's conditional and unconditional transformer calls as one batch.

    Wan's pipelines call the transformer twice per step, first with the prompt's embeddings and
    then with the negative prompt's, on the same latents. Installed as the transformer's
    `forward`, this turns the first call into one batched call of both and answers the second
    from it. Any call it does not recognise goes through unchanged.
    """

    def __init__(self, module: torch.nn.Module):
        self.module = module
        self.inner = module.forward
        self.cond: torch.Tensor | None = None
        self.uncond: torch.Tensor | None = None
        self._pending: tuple | None = None
        self.batched_calls = 0

    def install(self) -> "CFGBatcher":
        self.module.forward = self
        return self

    def set_embeddings(self, cond: torch.Tensor | None, uncond: torch.Tensor | None) -> None:
        self.cond, self.uncond, self._pending = cond, uncond, None

    @staticmethod
    def _same(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
        return a is not None and b is not None and (a is b or (a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)))

    def __call__(self, hidden_states, timestep, encoder_hidden_states, *args, **kwargs):
        if args or self.uncond is None or kwargs.get("return_dict", True):
            return self.inner(hidden_states, timestep, encoder_hidden_states, *args, **kwargs)
        if self._pending is not None:
            hs, ts, out = self._pending
            self._pending = None
            if hs is hidden_states and ts is timestep and self._same(encoder_hidden_states, self.uncond):
                return (out,)
        if self._same(encoder_hidden_states, self.cond):
            B = hidden_states.shape[0]
            both = lambda x: torch.cat([x, x]) if isinstance(x, torch.Tensor) and x.dim() and x.shape[0] == B else x  # noqa: E731
            kw = {k: both(v) for k, v in kwargs.items()}  # per-sample inputs shared by both passes (image embeddings)
            out = self.inner(both(hidden_states), both(timestep), torch.cat([self.cond, self.uncond]), **kw)[0]
            c, u = out.chunk(2)
            self._pending = (hidden_states, timestep, u)
            self.batched_calls += 1
            return (c,)
        return self.inner(hidden_states, timestep, encoder_hidden_states, **kwargs)
