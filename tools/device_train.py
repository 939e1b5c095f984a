"""Train the embedded world model on a lent GPU machine that has no package registry.

Three steps, each a subcommand:
  pack    (here)   a compact copy of the text encoder (only the tokens captions use, float16),
                   small enough to travel with the working tree: .carry/minilm
  run     (there)  train from the committed resume file with data workers, bf16 and a cosine
                   schedule over a time budget; checkpoints every `--save-every` steps
  export  (there)  the run's raw and EMA weights as float16 safetensors, split into pieces
                   under 16 MB (what the machine can send back), and its log; `join` (here)
                   puts the pieces back together

The run itself is `vitascope.train.world.train`, the same code `vitascope train` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

PIECE = 15 * 2**20


def caption_texts(n: int = 20000) -> list[str]:
    """Every word the caption tables hold (training and held-out) and n sampled captions."""
    import numpy as np

    from vitascope.world import captions, sample_scene

    words = ["a", "an", "and", "that", "the", ",", ":", ";", ""]
    for table in (captions.COLOUR_WORDS, captions.SIZE_WORDS, captions.SKY_WORDS, captions.GROUND_WORDS, captions.WEATHER_WORDS, captions.CAMERA_WORDS, captions.NUMBERS, captions.DIRECTION_WORDS):
        for train, held in table.values():
            words += list(train) + list(held)
    for table in (captions.SHAPE_WORDS, captions.MOTION_WORDS):
        for train, held in table.values():
            words += [w for pair in list(train) + list(held) for w in pair]
    words += captions.FILLER_PREFIXES + ["."]
    texts = words + [w[:1].upper() + w[1:] for w in words if w]
    for i in range(n):
        scene = sample_scene(i, aspect=16 / 9)
        texts.append(captions.caption(scene, np.random.default_rng(i), split="any"))
    return texts


def pack(args) -> None:
    from vitascope.models import text

    out = text.compact(args.out, caption_texts())
    size = sum(f.stat().st_size for f in out.iterdir())
    print(f"wrote {out} ({size / 1e6:.1f} MB)")


def run(args) -> None:
    import torch

    from vitascope.train.world import TrainConfig, train

    os.environ["VITASCOPE_TEXT_ENCODER"] = str(Path(args.encoder).resolve())
    cfg = TrainConfig(
        model=args.model,
        batch=args.batch,
        lr=args.lr,
        warmup=args.warmup,
        workers=args.workers,
        max_reuse=args.max_reuse,
        schedule=args.schedule,
        min_lr=args.min_lr,
        save_every=args.save_every,
        log_every=10,
        seed=args.seed,
        device=args.device,
        resume_from=args.resume_from or None,
        ema_from=args.resume_from or None,
        cue_lr_scale=args.cue_lr_scale,
        gate_lr_scale=args.gate_lr_scale,
    )
    print(f"torch {torch.__version__}, cuda {torch.cuda.is_available()}, {os.cpu_count()} CPUs", flush=True)

    def on_step(step: int, info: dict) -> None:
        if step % 50 == 0:
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in info.items()}), flush=True)

    last = train(args.run, cfg, max_seconds=args.minutes * 60, on_step=on_step)
    print("done", json.dumps(last), flush=True)


def export(args) -> None:
    from vitascope.train.world import export_weights

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for which in ("model", "ema"):
        path = export_weights(args.run, out / f"{which}.safetensors", which=which)
        data = path.read_bytes()
        path.unlink()
        for i in range(0, len(data), PIECE):
            (out / f"{which}.safetensors.part{i // PIECE}").write_bytes(data[i : i + PIECE])
    log = Path(args.run) / "log.jsonl"
    if log.exists():
        (out / "log.jsonl").write_bytes(log.read_bytes())
    print("exported", sorted(p.name for p in out.iterdir()))


def join(args) -> None:
    src = Path(args.src)
    for which in ("model", "ema"):
        parts = sorted(src.glob(f"{which}.safetensors.part*"), key=lambda p: int(p.name.rsplit("part", 1)[1]))
        if parts:
            out = Path(args.out) / f"{which}.safetensors"
            out.write_bytes(b"".join(p.read_bytes() for p in parts))
            print("joined", out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--out", default=str(ROOT / ".carry" / "minilm"))
    p.set_defaults(fn=pack)
    p = sub.add_parser("run")
    p.add_argument("--run", default="/tmp/world-run")
    p.add_argument("--encoder", default=str(ROOT / ".carry" / "minilm"))
    p.add_argument("--model", default="world-s")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--min-lr", type=float, default=0.1)
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--workers", type=int, default=max((os.cpu_count() or 2) - 2, 1))
    p.add_argument("--max-reuse", type=int, default=4)
    p.add_argument("--schedule", default="cosine")
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--minutes", type=float, default=20)
    p.add_argument("--resume-from", default=str(ROOT / "checkpoints" / "world-s" / "resume.safetensors"))
    p.add_argument("--cue-lr-scale", type=float, default=1.0, help="networks with sound cues: the cue head's learning rate as a multiple of --lr")
    p.add_argument("--gate-lr-scale", type=float, default=1.0, help="networks with a copying detail head: its gate's learning rate as a multiple of --lr")
    p.set_defaults(fn=run)
    p = sub.add_parser("export")
    p.add_argument("--run", default="/tmp/world-run")
    p.add_argument("--out", required=True)
    p.set_defaults(fn=export)
    p = sub.add_parser("join")
    p.add_argument("--src", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(fn=join)
    args = ap.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
