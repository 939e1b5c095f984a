"""Speed and memory of the embedded model: a 4-second clip at each Sora size, encoding included.

    python benchmarks/generate.py [--model vitascope-world] [--repeats 2] [--presets]

Each size is generated `repeats` times with the model already loaded (what the server and a
second `vitascope generate` see); the first load is timed on its own; then one extension of a
clip by as many seconds, with the time its layout takes to read, and one clip whose camera pans
(with the time moving the camera takes). Prints seconds per clip,
the real-time factor, and the process's peak resident memory. --presets also encodes one
1920x1080 clip with each of the fast x264 presets (VITASCOPE_ENCODE_PRESET) and prints seconds,
file sizes and PSNR.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vitascope import media
from vitascope.models.base import GenerationRequest
from vitascope.models.registry import default_registry
from vitascope.settings import Settings

SIZES = ("1280x720", "720x1280", "1792x1024", "1024x1792", "1920x1080", "1080x1920")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="vitascope-world")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--presets", action="store_true", help="also time encoding one clip with each x264 preset")
    args = ap.parse_args()
    settings = Settings(home=Path(tempfile.mkdtemp()), test_models=True)
    t0 = time.perf_counter()
    backend = default_registry(settings).get(args.model)
    backend.generate(GenerationRequest(prompt="warm up", seconds=1, width=640, height=360, seed=0), lambda f: None)
    load = time.perf_counter() - t0
    print(f"model {args.model}: load and first tiny clip {load:.1f} s; torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs")
    print(f"{'size':<11}{'generate s':>11}{'encode s':>10}{'total s':>9}{'x real time':>12}")
    out = Path(tempfile.mkdtemp()) / "clip.mp4"
    for size in SIZES:
        w, h = (int(x) for x in size.split("x"))
        gen = enc = 0.0
        for r in range(args.repeats):
            t = time.perf_counter()
            res = backend.generate(GenerationRequest(prompt="two red balls bouncing on green grass at sunset", seconds=args.seconds, width=w, height=h, seed=r), lambda f: None)
            t1 = time.perf_counter()
            media.encode_mp4(out, res.frames, res.fps, res.audio, res.sample_rate, size=(w, h), out_fps=settings.output_fps, preset=settings.encode_preset)
            gen += t1 - t
            enc += time.perf_counter() - t1
        gen, enc = gen / args.repeats, enc / args.repeats
        print(f"{size:<11}{gen:>11.2f}{enc:>10.2f}{gen + enc:>9.2f}{args.seconds / (gen + enc):>12.2f}")
    # an extension: 4 more seconds of the last clip, whose layout is read from its last frames first
    from vitascope.models.world import CONTEXT, native_size
    from vitascope.world import layout

    src = backend.generate(GenerationRequest(prompt="two red balls bouncing on green grass at sunset", seconds=args.seconds, width=1280, height=720, seed=0), lambda f: None)
    t = time.perf_counter()
    layout.read(media.fit(src.frames, *native_size(1280, 720))[-CONTEXT:])
    read_s = time.perf_counter() - t
    t = time.perf_counter()
    backend.generate(GenerationRequest(prompt="two red balls bouncing on green grass at sunset", seconds=args.seconds, width=1280, height=720, seed=1, mode="extend", video=src.frames, video_fps=src.fps, audio=src.audio, audio_rate=src.sample_rate), lambda f: None)
    print(f"extension of a {args.seconds:g}-s 1280x720 clip by {args.seconds:g} s: {time.perf_counter() - t:.2f} s (reading the layout of its last {CONTEXT} frames: {read_s:.2f} s)")
    # a panning camera: the background the network drew moved over its frames (world/camera.py)
    from vitascope.world import camera

    pan = "two red balls bouncing on green grass at sunset; the camera pans left"
    t = time.perf_counter()
    res = backend.generate(GenerationRequest(prompt=pan, seconds=args.seconds, width=1280, height=720, seed=0), lambda f: None)
    pan_s = time.perf_counter() - t
    if res.info.get("camera") == "pan_left":
        t = time.perf_counter()
        camera.move(res.frames, np.zeros(res.frames.shape[:3], bool), "pan_left", res.fps)  # move finds the objects by colour itself
        print(f"1280x720, the camera panning left: generate {pan_s:.2f} s (of which moving the camera about {time.perf_counter() - t:.2f} s)")
    # rain: its drawing guided away from clear weather, one more detail-head call a step (WorldModel.weather_guidance)
    rain = "two red balls bouncing on green grass at sunset while it rains"
    for size in ("1280x720", "1792x1024"):
        w, h = (int(x) for x in size.split("x"))
        t = time.perf_counter()
        res = backend.generate(GenerationRequest(prompt=rain, seconds=args.seconds, width=w, height=h, seed=0), lambda f: None)
        t1 = time.perf_counter()
        media.encode_mp4(out, res.frames, res.fps, res.audio, res.sample_rate, size=(w, h), out_fps=settings.output_fps, preset=settings.encode_preset)
        guided = " (weather guided)" if res.info.get("settings", {}).get("weather") == "rain" else " (rain not read: unguided)"
        print(f"{size}, while it rains{guided}: generate {t1 - t:.2f} s, encode {time.perf_counter() - t1:.2f} s, total {time.perf_counter() - t:.2f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory: {peak:.0f} MB")  # before --presets, whose PSNR holds decoded 1080p clips
    if args.presets:
        print(f"encoding one {args.seconds:g}-s 1920x1080 clip at {settings.output_fps} fps, CRF 20 (best of 2; PSNR of the decoded frames against the scaled ones):")
        for preset in media.X264_PRESETS[:4]:
            best = float("inf")
            for _ in range(2):
                t = time.perf_counter()
                media.encode_mp4(out, src.frames, src.fps, src.audio, src.sample_rate, size=(1920, 1080), out_fps=settings.output_fps, preset=preset)
                best = min(best, time.perf_counter() - t)
            print(f"  {preset:<10}{best:>6.2f} s {out.stat().st_size / 1e6:>6.2f} MB  PSNR {psnr(out, src.frames, src.fps, (1920, 1080)):.1f} dB" + ("  (default)" if preset == settings.encode_preset else ""))


def psnr(path: Path, frames, fps: float, size: tuple[int, int]) -> float:
    """PSNR (dB) of an encoded clip's frames against its source frames scaled as encode_mp4 scales them."""
    import av

    decoded = media.decode(path)
    w, h = size
    err = []
    for i, frame in enumerate(decoded.frames):
        src = frames[min(int(i * fps / decoded.fps + 1e-6), len(frames) - 1)]
        ref = av.VideoFrame.from_ndarray(np.ascontiguousarray(src), format="rgb24").reformat(width=w, height=h, format="yuv420p", interpolation="BILINEAR").to_ndarray(format="rgb24")
        err.append(np.mean((frame.astype(np.float32) - ref) ** 2))
    return float(10 * np.log10(255**2 / np.mean(err)))


if __name__ == "__main__":
    main()
