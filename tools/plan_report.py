"""How well the layout planner alone places what validation prompts ask for.

For each validation prompt (held-out words, the scenes `tools/validate.py` uses), the planner's
layout is drawn with flat shapes over the scene's own background (sky, ground, camera, weather as
the simulator draws them, so those rows read 100% and say nothing) and measured like any clip:
the object rows (count, colour, shape, size, motion) are the plan's accuracy, the ceiling of a
network that draws exactly what it is given. `true` in place of a planner draws each scene's true
layout the same way: the ceiling of any plan.

    python tools/plan_report.py runs/plan/plan.safetensors true --n 36
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from vitascope.eval import VALIDATION_SEED_BASE, evaluate, table  # noqa: E402
from vitascope.models import text, world_parse, world_plan  # noqa: E402
from vitascope.models.world import FPS, WINDOW, native_size, plan_inputs  # noqa: E402
from vitascope.world import layout, render, sample_scene  # noqa: E402
from vitascope.world.render import draw_shape  # noqa: E402


def draw_plan(feat: np.ndarray, background: np.ndarray) -> np.ndarray:
    frames = background.copy()
    H, W = frames.shape[1:3]
    for i, objs in enumerate(layout.objects(feat, W / H)):
        for o in objs:
            draw_shape(frames[i], np.zeros((H, W), bool), o["shape"], o["x"], o["y"], o["scale"], o["angle"], o["rgb"], H)
    return frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("planners", nargs="+")
    ap.add_argument("--n", type=int, default=36)
    ap.add_argument("--guidance", type=float, default=2.0)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--words", choices=("heldout", "train"), default="heldout")
    ap.add_argument("--parser", default=None, help="prompt parser weights: the planner reads each prompt as the parser rewrites it")
    ap.add_argument("--labels-only", action="store_true", help="with --parser, a planner with labels reads the parser's labels alone, not its rewritten prompt")
    args = ap.parse_args()
    parser = world_parse.load_all(args.parser) if args.parser else None
    null = text.encode([""])
    rows = {}
    for p in args.planners:
        net = None if p == "true" else world_plan.load(p)
        t0 = time.time()

        def generate(prompt, seed, w, h, seconds, net=net):
            H, W = native_size(w, h)
            scene = sample_scene(seed, aspect=w / h)  # as eval_cases makes it
            bg = render(replace(scene, objects=()), H, W, FPS, WINDOW).frames
            if net is None:
                feat = layout.features(scene, 0.0, WINDOW, FPS, aspect=W / H)
            else:
                read = parser.parse([prompt])[0] if parser is not None else None
                plan_prompt, labels = plan_inputs(net, read, prompt, words=not args.labels_only)
                tokens, mask = text.encode([plan_prompt])
                feat = world_plan.sample(net, tokens, mask, null, W / H, WINDOW, steps=args.steps, guidance=args.guidance, generator=torch.Generator().manual_seed(seed), labels=labels).numpy()
            return draw_plan(feat, bg), FPS, np.zeros(int(seconds * 16000), np.float32), 16000

        rows[p] = evaluate(generate, n=args.n, seed_base=VALIDATION_SEED_BASE, split=args.words)
        print(f"{p} (guidance {args.guidance}, {args.steps} steps, {args.words} words{', parser ' + args.parser if parser else ''}{', labels only' if args.labels_only else ''}): objects {100 * np.mean([rows[p].accuracy(a) for a in ('count', 'colour', 'shape', 'size', 'motion')]):.1f}% ({time.time() - t0:.0f} s)", flush=True)
    print(table({p if p == "true" else Path(p).parent.name + "/" + Path(p).name: s for p, s in rows.items()}))


if __name__ == "__main__":
    main()
