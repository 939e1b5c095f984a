"""How well a world-model checkpoint denoises real clips, per flow time: the data estimate's
error (MSE, pixels in [-1, 1]) over the whole clip and on object pixels, beside the error of the
noisy input itself. A model whose error stays above the input's near t = 1 loses detail it was
given; an object error that stays flat as t grows is a ceiling of the network's output path.

    python tools/denoise_report.py src/vitascope/models/weights/world-sl.safetensors
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from vitascope.models import flow  # noqa: E402
from vitascope.models.world import WorldModel  # noqa: E402
from vitascope.train.world import TrainConfig, make_batch  # noqa: E402

TIMES = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights")
    ap.add_argument("--clips", type=int, default=6)
    ap.add_argument("--seed", type=int, default=12345, help="data seed (training draws from seed 0 and 1)")
    ap.add_argument("--layout-share", type=float, default=1.0, help="layout-guided networks: share of clips shown their true layout")
    args = ap.parse_args()
    net = WorldModel.from_file("report", Path(args.weights)).net
    b = make_batch(TrainConfig(batch=args.clips, seed=args.seed, caption_dropout=0.0, layout_share=args.layout_share), net.cfg, 0)
    no_ctx = torch.zeros_like(b.ctx_mask)
    obj = b.obj_v.expand_as(b.video) > 0
    print("    t  data estimate  objects  noisy input  sound")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for t in TIMES:
            tt = torch.full((args.clips,), t)
            xv = flow.interpolate(b.video, torch.randn(b.video.shape, generator=g), tt)
            xa = flow.interpolate(b.audio, torch.randn(b.audio.shape, generator=g), tt)
            dv, da = net(xv, xa, tt, b.tokens, b.token_mask, b.video, b.audio, no_ctx, layout=b.layout, cues=b.cues)
            err = (dv - b.video) ** 2
            print(f"{t:5.2f}  {float(err.mean()):13.4f}  {float(err[obj].mean()):7.4f}  {float(((xv - b.video) ** 2).mean()):11.4f}  {float(((da - b.audio) ** 2).mean()):.4f}")


if __name__ == "__main__":
    main()
