"""Does the world model understand a word it was not trained on? For each sky and ground value,
the colour the model paints at pure noise (t = 0, where only the prompt says what to draw) for
training phrasings and for the held-out ones the evaluation uses. A held-out phrase whose colour
lands on another value's is a paraphrase the model does not generalise to.

    python tools/prompt_report.py src/vitascope/models/weights/world-sl.safetensors
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from vitascope.models import text  # noqa: E402
from vitascope.models.world import WorldModel  # noqa: E402
from vitascope.world.captions import GROUND_WORDS, SKY_WORDS  # noqa: E402
from vitascope.world.scene import GROUNDS, HORIZON, SKIES  # noqa: E402


def painted(net, prompt: str, H: int = 64, W: int = 112) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean RGB the data estimate at t = 0 gives the sky band and the ground band."""
    tokens, mask = text.encode([prompt] * 2)
    g = torch.Generator().manual_seed(0)
    v = torch.randn(2, 3, 48, H, W, generator=g)
    a = torch.randn(2, net.cfg.audio_bands, 48 * net.cfg.env_per_frame, generator=g)
    with torch.no_grad():
        dv, _ = net(v, a, torch.zeros(2), tokens, mask, torch.zeros_like(v), torch.zeros_like(a), torch.zeros(2, 1, 48))
    rgb = (dv.clamp(-1, 1) + 1) * 127.5
    horizon = int(HORIZON * H)
    return rgb[:, :, :, : horizon - 8].mean(dim=(0, 2, 3, 4)), rgb[:, :, :, horizon + 8 :].mean(dim=(0, 2, 3, 4))


def nearest(rgb: torch.Tensor, palette: dict) -> str:
    return min(palette, key=lambda k: float(((rgb - torch.tensor(palette[k], dtype=torch.float32)) ** 2).sum()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights")
    net = WorldModel.from_file("report", Path(ap.parse_args().weights)).net
    print("value     phrase                      split     painted RGB      reads as")
    right = {"train": [0, 0], "held-out": [0, 0]}
    for kind, table, palette, template in (("sky", SKY_WORDS, SKIES, "a red ball on the grass {}"), ("ground", GROUND_WORDS, GROUNDS, "a red ball {} at night")):
        for value, (train, held) in table.items():
            for split, words in (("train", [w for w in train if w]), ("held-out", held)):
                for w in words:
                    sky, ground = painted(net, template.format(w))
                    rgb = sky if kind == "sky" else ground
                    got = nearest(rgb, palette)
                    right[split][0] += got == value
                    right[split][1] += 1
                    print(f"{value:9} {w!r:27} {split:9} {str([int(x) for x in rgb]):16} {got}")
    for split, (r, n) in right.items():
        print(f"{split}: {r}/{n} phrases read as their value")


if __name__ == "__main__":
    main()
