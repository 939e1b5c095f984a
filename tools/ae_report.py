"""How much of the evaluation survives a FrameAE: validation scenes simulated at the model's
native size, scored as they are and after encoding and decoding (the ceiling of a latent model
that uses this autoencoder), with reconstruction errors over all pixels and over object pixels.

    python tools/ae_report.py src/vitascope/models/weights/world-ae.safetensors --n 36
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from vitascope.eval import VALIDATION_SEED_BASE, eval_cases, evaluate, table  # noqa: E402
from vitascope.models import world_ae  # noqa: E402
from vitascope.models.world import FPS, native_size  # noqa: E402
from vitascope.world import simulate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights")
    ap.add_argument("--n", type=int, default=36)
    args = ap.parse_args()
    ae = world_ae.load(args.weights)
    scenes = {seed: scene for seed, scene, _, _ in eval_cases(args.n, VALIDATION_SEED_BASE)}
    errs: list[tuple[float, float]] = []

    def make(coded: bool):
        def generate(prompt, seed, w, h, seconds):
            H, W = native_size(w, h)
            s = simulate(seed, height=H, width=W, seconds=seconds, fps=FPS, scene=scenes[seed])
            frames = s.frames
            if coded:
                x = torch.from_numpy(frames).permute(3, 0, 1, 2).float()[None] / 127.5 - 1
                with torch.no_grad():
                    y = ae.decode(ae.encode(x))[0].clamp(-1, 1)
                frames = ((y + 1) * 127.5).round().byte().permute(1, 2, 3, 0).numpy()
                d = (y - x[0]).permute(1, 2, 3, 0).numpy() ** 2
                errs.append((float(d.mean()), float(d[s.masks].mean()) if s.masks.any() else float("nan")))
            return frames, FPS, s.waveform(), 16000

        return generate

    rows = {"simulator": evaluate(make(False), n=args.n, seed_base=VALIDATION_SEED_BASE), "autoencoded": evaluate(make(True), n=args.n, seed_base=VALIDATION_SEED_BASE)}
    e = np.array(errs)
    print(f"reconstruction MSE (pixels in [-1, 1]): all {e[:, 0].mean():.4f}, object pixels {np.nanmean(e[:, 1]):.4f}")
    print(table(rows))


if __name__ == "__main__":
    main()
