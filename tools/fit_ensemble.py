"""Fit how much each of two parsers is trusted, attribute by attribute, when they read together
(ParserEnsemble), and from which probability each setting's reading is reworded for the network
(`reword`), on the development words (captions.DEV_WORDS: neither trained on nor held out), and
write both beside the parsers (world_parse.ENSEMBLE_FILE), where `load_all` and so `vitascope
generate` read them.

    python tools/fit_ensemble.py src/vitascope/models/weights/world-parse.safetensors src/vitascope/models/weights/world-parse-phrases.safetensors --n 1000 --attrs sky,ground
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from vitascope.eval import eval_cases  # noqa: E402
from vitascope.models import world_parse  # noqa: E402

DEV_SEED_BASE = 7_300_000_000  # scenes of neither eval (7,000,000,000) nor validation (7,100,000,000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("first")
    ap.add_argument("second")
    ap.add_argument("--n", type=int, default=1000, help="development prompts")
    ap.add_argument("--least", type=float, default=0.0, help="the smallest share either parser keeps")
    ap.add_argument("--attrs", default=None, help="attributes to fit, joined by commas (default: all; the rest are read with even shares)")
    ap.add_argument("--precision", type=float, default=0.9, help="reword a setting from the probability at which its readings are this often right")
    ap.add_argument("--dry-run", action="store_true", help="print the shares, write nothing")
    args = ap.parse_args()
    cases = eval_cases(args.n, DEV_SEED_BASE, "dev")
    members = [world_parse.load(args.first), world_parse.load(args.second)]
    weights, acc = world_parse.fit_weights(members, [p for _, _, p, _ in cases], [s for _, s, _, _ in cases], least=args.least, attrs=args.attrs.split(",") if args.attrs else None)
    print(f"{args.n} development prompts; share of {Path(args.second).name} per attribute (the rest: {Path(args.first).name})")
    print("| attribute | share | even shares | fitted |")
    print("|---|---|---|---|")
    for k, (even, best) in acc.items():
        print(f"| {k} | {weights[k][1]:.2f} | {100 * even:.1f}% | {100 * best:.1f}% |")
    ens = world_parse.ParserEnsemble(members, weights).eval()
    reword_from = world_parse.fit_reword_from(ens, [p for _, _, p, _ in cases], [s for _, s, _, _ in cases], precision=args.precision)
    print(f"settings reworded from a probability of (readings at least {args.precision:.0%} right): {reword_from}")
    if not args.dry_run:
        out = Path(args.first).with_name(world_parse.ENSEMBLE_FILE)
        spec = {"members": [Path(args.first).name, Path(args.second).name], "weights": weights, "reword_from": reword_from,
                "fitted_on": f"{args.n} development prompts (captions.DEV_WORDS), scenes from seed {DEV_SEED_BASE}; shares of {args.attrs or 'all attributes'}, at least {args.least}; reworded where {args.precision:.0%} right"}
        out.write_text(json.dumps(spec, indent=1) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
