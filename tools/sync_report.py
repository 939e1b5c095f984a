"""Where does sync fail? Clip by clip, the contacts the measurement reads in the generated frames,
the contacts the plan holds, and the sound's onsets.

Each validation prompt (held-out words, scenes from VALIDATION_SEED_BASE + offset, as
`tools/validate.py` asks them) is generated once by the pipeline, and its clip goes through the
platform's encoder and back as `vitascope eval` measures it. For every clip with a contact the
report prints the frames of the contacts measured (`world/measure.py`), of those no onset is
within a frame of (missed), of the plan's contacts (`layout.contact_frames`) and of the onsets;
then the totals and how far each measured contact's nearest onset lies, in frames. This is how
session 18 found that resting objects trembled (contacts measured where none was planned) and
that onsets came early.

    python tools/sync_report.py src/vitascope/models/weights/world-sl.safetensors --n 36 [--offset 36] [--plan-settle 0] [--sound plan]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from validate import SOUNDS, add_pipeline_switches, pipeline_switches, use_sound  # noqa: E402
from vitascope import media  # noqa: E402
from vitascope.eval import VALIDATION_SEED_BASE, eval_cases  # noqa: E402
from vitascope.models import world_foley  # noqa: E402
from vitascope.models.base import GenerationRequest  # noqa: E402
from vitascope.models.world import FPS, WorldModel  # noqa: E402
from vitascope.world import layout  # noqa: E402
from vitascope.world.measure import measure  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights")
    ap.add_argument("--n", type=int, default=36, help="validation prompts")
    ap.add_argument("--offset", type=int, default=0, help="start at this validation scene")
    ap.add_argument("--plan-settle", type=float, default=None, help="frame heights within which planned heights are held still (default: the model's)")
    ap.add_argument("--sound", choices=SOUNDS, default="foley", help="as tools/validate.py's --sound")
    add_pipeline_switches(ap)
    args = ap.parse_args()
    kw = {} if args.plan_settle is None else {"plan_settle": args.plan_settle}
    kw.update(pipeline_switches(args))
    model = WorldModel.from_file("sync-report", Path(args.weights), **kw)
    use_sound(model, args.sound)
    plans = []
    hear = world_foley.hear

    def keep_plan(net, feat, weather, drawn=None, sharp=True):  # the plan the clip's sound is heard from
        plans.append(np.array(feat))
        return hear(net, feat, weather, drawn=drawn, sharp=sharp)

    world_foley.hear = keep_plan
    hits = total = onsets = 0
    offsets: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed, _, prompt, (w, h) in eval_cases(args.n, VALIDATION_SEED_BASE + args.offset):
            plans.clear()
            r = model.generate(GenerationRequest(prompt=prompt, seconds=4, width=w, height=h, seed=seed), lambda f: None)
            path = Path(tmp) / "clip.mp4"
            media.encode_mp4(path, r.frames, r.fps, r.audio, r.sample_rate, size=(w // 4 // 2 * 2, h // 4 // 2 * 2), out_fps=int(round(r.fps)))
            d = media.decode(path)
            reading = measure(d.frames, d.fps, d.audio, d.sample_rate or r.sample_rate)
            measured = [round(c * FPS) for c in reading.contacts]
            heard = [round(o * FPS, 2) for o in reading.onsets]
            onsets += len(heard)
            if not measured:
                continue
            missed = [c for c in measured if not any(abs(o - c) <= 1 + 1e-6 for o in heard)]
            planned = sorted(f for f, _, _ in layout.contact_frames(plans[0])) if plans else []  # as planned, before any move
            hits, total = hits + len(measured) - len(missed), total + len(measured)
            offsets += [min(heard, key=lambda o: abs(o - c)) - c for c in measured if heard]
            print(f"{seed}: measured {measured} missed {missed} planned {planned} onsets {heard}", flush=True)
    if total:
        print(f"sync {100 * hits / total:.1f}% ({hits} of {total} contacts measured); {onsets} onsets in all")
        edges = np.arange(-4.5, 5.0)
        counts, _ = np.histogram(np.clip(offsets, -4, 4), bins=edges)
        print("nearest onset minus contact, frames (-4 and 4 include beyond):", dict(zip(range(-4, 5), counts.tolist())))
    else:
        print(f"no contact measured in {args.n} clips; {onsets} onsets in all")


if __name__ == "__main__":
    main()
