"""Does a network's sound follow the ground contacts of the layout it is given?

For validation scenes with a bouncing or falling object, each network draws the clip to the
scene's true layout (as `tools/validate.py --layout true` does), and the report counts the layout's
contacts (`layout.contact_frames`, the frames where the cues of a network that reads them say an
object touches down) that have a sound onset within one frame in the generated sound
(`world/measure.py`'s onset detector). Unlike the sync score of `vitascope eval`, which counts
the contacts found in the generated frames, this leaves out how well the frames follow the
layout: it measures the sound alone. The simulator's own sound is scored the same way.

    python tools/cue_report.py src/vitascope/models/weights/world-sl.safetensors runs/cues/raw.safetensors --n 12
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from validate import oracle_layout_calls  # noqa: E402
from vitascope.eval import VALIDATION_SEED_BASE  # noqa: E402
from vitascope.models.world import FPS, WINDOW, WorldModel, native_size  # noqa: E402
from vitascope.world import layout, sample_scene, simulate, vocode  # noqa: E402
from vitascope.world.captions import describe  # noqa: E402
from vitascope.world.measure import _onsets  # noqa: E402


def scenes(n: int):
    """The first n validation scenes (landscape) with an object that touches down in 4 s."""
    seed = VALIDATION_SEED_BASE
    while n:
        scene = sample_scene(seed, aspect=16 / 9)
        H, W = native_size(1280, 720)
        if layout.contact_frames(layout.features(scene, 0.0, WINDOW, FPS, aspect=W / H)):
            yield seed, scene
            n -= 1
        seed += 1


def heard(onsets: list[float], frames: list[int]) -> tuple[int, int, int]:
    """(contacts with an onset within a frame, contacts, onsets more than a frame from any contact)."""
    near = lambda a, b: abs(a - b / FPS) <= 1 / FPS + 1e-6  # noqa: E731
    return sum(any(near(o, f) for o in onsets) for f in frames), len(frames), sum(not any(near(o, f) for f in frames) for o in onsets)


def summary(got: list[tuple[int, int, int]]) -> str:
    h, n, extra = (sum(g[k] for g in got) for k in range(3))
    return f"{h} of {n} layout contacts heard within a frame ({100 * h / max(n, 1):.1f}%), {extra / len(got):.1f} onsets a clip away from any contact"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", nargs="+")
    ap.add_argument("--n", type=int, default=12, help="scenes")
    args = ap.parse_args()
    H, W = native_size(1280, 720)
    cases = list(scenes(args.n))
    truth = [sorted(i for i, _, _ in layout.contact_frames(layout.features(s, 0.0, WINDOW, FPS, aspect=W / H))) for _, s in cases]
    sim = [heard(_onsets(vocode(simulate(seed, height=H, width=W, seconds=4, fps=FPS).audio_env, 64000), 16000), f) for (seed, _), f in zip(cases, truth)]
    print(f"simulator: {summary(sim)}", flush=True)
    for w in args.weights:
        t0 = time.time()
        generate = oracle_layout_calls(WorldModel.from_file("cues", Path(w)))
        got = []
        for (seed, scene), frames in zip(cases, truth):
            _, _, audio, sr = generate(describe(scene), seed, 1280, 720, 4)
            got.append(heard(_onsets(audio, sr), frames))
        print(f"{w}: {summary(got)} ({time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
