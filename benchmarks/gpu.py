"""Stock diffusers against Vitascope on one GPU: same architecture, steps, size and dtype.

Each model is built at full size from the published configuration kept in the repository
(src/vitascope/models/open_weights/configs/full/), with random weights: speed does not depend on
the weights' values, and nothing is downloaded. Variants:

  stock            diffusers as documented: pipe.to("cuda"), bf16, two transformer passes per step
  vitascope        the backend's defaults: CFG batching, compiled blocks, best attention kernel,
                   VAE tiling, memory mode by free memory
  vitascope+fp8    plus FP8 weights and activations (torchao; Hopper)
  vitascope+cache  plus the first-block step cache (threshold 0.08)

Prints seconds per denoising step, end-to-end seconds (text encoding, denoising, decoding),
peak GPU memory and the speedup over stock, then the time of --concurrency jobs batched
against one. `--config tiny --device cpu` runs the same code on the tiny test models.

    python benchmarks/gpu.py --model wan2.1-t2v-1.3b --width 832 --height 480 --seconds 5 --steps 50
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import time

import torch

from vitascope.models.base import GenerationRequest
from vitascope.models.open_weights.backend import DiffusersModel
from vitascope.models.open_weights.build import build, load_config
from vitascope.models.open_weights.specs import BY_NAME, Preset
from vitascope.models.open_weights.speed import Speed

VARIANTS = {
    "stock": None,
    "vitascope": Speed(),
    "vitascope+fp8": Speed(fp8=True),
    "vitascope+cache": Speed(step_cache=0.08),
}
PROMPT = "A red fox runs through fresh snow in a birch forest at dawn, breath steaming, the camera tracking beside it."


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_gb(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 1024**3 if device.type == "cuda" else float("nan")


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def run_stock(pipe, spec, plan, device, steps: int) -> tuple[float, float]:
    """One stock diffusers call: (end-to-end seconds, seconds per step)."""
    stamps = []

    def on_step(p, i, t, kw):
        sync(device)
        stamps.append(time.perf_counter())
        return {}

    kw = dict(prompt=PROMPT, negative_prompt=spec.negative_prompt, height=plan.height, width=plan.width, num_frames=plan.num_frames,
              num_inference_steps=steps, guidance_scale=plan.guidance, generator=torch.Generator(device).manual_seed(0),
              output_type="np", callback_on_step_end=on_step)
    if spec.family in ("ltx", "ltx2"):
        kw["frame_rate"] = spec.fps
    sync(device)
    t0 = time.perf_counter()
    pipe(**kw)
    sync(device)
    total = time.perf_counter() - t0
    per_step = (stamps[-1] - stamps[0]) / max(len(stamps) - 1, 1)
    return total, per_step


def run_vitascope(model: DiffusersModel, req: GenerationRequest, device, n: int = 1) -> tuple[float, float]:
    stamps = []

    def progress(f: float) -> None:
        sync(device)
        stamps.append(time.perf_counter())

    sync(device)
    t0 = time.perf_counter()
    model.generate_batch([dataclasses.replace(req, seed=req.seed + i) for i in range(n)], [progress] + [lambda f: None] * (n - 1))
    sync(device)
    total = time.perf_counter() - t0
    per_step = (stamps[-1] - stamps[0]) / max(len(stamps) - 1, 1)
    return total, per_step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="wan2.1-t2v-1.3b", choices=sorted(BY_NAME))
    ap.add_argument("--config", default="full", choices=["full", "tiny"])
    ap.add_argument("--width", type=int, default=832)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--guidance", type=float, default=5.0)
    ap.add_argument("--variants", default="stock,vitascope,vitascope+fp8,vitascope+cache")
    ap.add_argument("--concurrency", type=int, default=4, help="jobs batched in the throughput test (0: skip)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()

    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    base_spec = BY_NAME[args.model]
    tier = next(iter(base_spec.sizes))
    sizes = {tier: ((args.width, args.height), (args.height, args.width))}
    spec = dataclasses.replace(base_spec, sizes=sizes, presets={"fast": Preset(args.steps, args.guidance, tier)})
    req = GenerationRequest(prompt=PROMPT, seconds=args.seconds, width=args.width, height=args.height, seed=0, preset="sora-2")
    config = load_config(args.model, args.config)
    rows = []
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"# {args.model} ({args.config} config), {args.width}x{args.height}, {args.seconds:g} s, {args.steps} steps, {dtype}, {gpu}")
    for name in args.variants.split(","):
        speed = VARIANTS[name]
        reset_peak(device)
        pipe = build(config, seed=0, dtype=dtype, device=device)
        if speed is None:
            pipe.to(device)
            pipe.set_progress_bar_config(disable=True)
            plan = DiffusersModel.from_pipeline(spec, pipe, Speed.stock(), args.device).plan(req)
            run_stock(pipe, spec, dataclasses.replace(plan), device, 2)  # warm-up: kernels, allocator
            reset_peak(device)
            total, per_step = run_stock(pipe, spec, plan, device, args.steps)
            applied = {"offload": "none", "attention": "native"}
            model = None
        else:
            model = DiffusersModel.from_pipeline(spec, pipe, speed, args.device)
            warm = dataclasses.replace(spec, presets={"fast": Preset(2, args.guidance, tier)})
            model.spec = warm
            run_vitascope(model, req, device)  # warm-up: compiles the blocks
            model.spec = spec
            reset_peak(device)
            total, per_step = run_vitascope(model, req, device)
            applied = model.applied
        rows.append((name, per_step, total, peak_gb(device), applied))
        print(f"{name:16s} {per_step:8.3f} s/step {total:9.2f} s end-to-end {peak_gb(device):7.1f} GB peak   {applied}", flush=True)
        if model is not None and name == "vitascope" and args.concurrency > 1:
            one, _ = run_vitascope(model, req, device, 1)
            many, _ = run_vitascope(model, req, device, args.concurrency)
            print(f"throughput       1 job {one:.2f} s, {args.concurrency} jobs batched {many:.2f} s ({many / one:.2f}x the time of one)", flush=True)
        del pipe, model
        gc.collect()
        reset_peak(device)
    stock = next((r for r in rows if r[0] == "stock"), None)
    print()
    print("| variant | s/step | end-to-end s | peak GB | speedup (end-to-end) |")
    print("|---|---|---|---|---|")
    for name, per_step, total, peak, _ in rows:
        speedup = f"{stock[2] / total:.2f}x" if stock else "-"
        print(f"| {name} | {per_step:.3f} | {total:.1f} | {peak:.1f} | {speedup} |")


if __name__ == "__main__":
    main()
