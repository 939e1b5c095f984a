"""The `vitascope` command: generate, serve, models, keys, videos, train."""

from __future__ import annotations

import logging

import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(help="Vitascope: the open, self-hostable video generation system.", no_args_is_help=True, add_completion=False)
keys_app = typer.Typer(help="API keys for the server.", no_args_is_help=True)
videos_app = typer.Typer(help="Videos in the local store.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(videos_app, name="videos")
console = Console(width=None if sys.stdout.isatty() else 200)  # piped output keeps whole ids


def _vs():
    from vitascope.service import Vitascope
    from vitascope.settings import Settings

    return Vitascope(Settings())


def _fail(msg: str) -> None:
    console.print(f"[red]error:[/red] {msg}")
    raise typer.Exit(2)


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="What the clip shows and sounds like.")],
    seconds: Annotated[str, typer.Option(help="4, 8 or 12.")] = "4",
    size: Annotated[str, typer.Option(help="WIDTHxHEIGHT, e.g. 1280x720.")] = "1280x720",
    model: Annotated[Optional[str], typer.Option(help="Model name or alias (see `vitascope models`).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed: the same seed gives the same clip.")] = None,
    image: Annotated[Optional[Path], typer.Option(help="First frame (image-to-video).", exists=True, dir_okay=False)] = None,
    out: Annotated[Path, typer.Option(help="Where to write the MP4.")] = Path("vitascope.mp4"),
) -> None:
    """Generate a clip with sound from a prompt and write it as an MP4."""
    from vitascope.errors import VitascopeError
    from vitascope.service import Upload

    vs = _vs()
    up = Upload(filename=image.name, content_type="image/" + image.suffix.lstrip(".").lower().replace("jpg", "jpeg"), data=image.read_bytes()) if image else None
    try:
        v = vs.create_video(owner="local", prompt=prompt, model=model, seconds=seconds, size=size, image=up, seed=seed)
    except VitascopeError as e:
        _fail(f"{e.message}" + (f" (--{e.param.replace('_', '-')})" if e.param and e.param != "input_reference" else ""))
    t0 = time.time()
    vid = vs.engine.claim()
    while vid is not None and vid != v.id:  # older queued jobs in the local store are served first
        vs.engine.run(vid)
        vid = vs.engine.claim()
    worker = threading.Thread(target=vs.engine.run, args=(v.id,), daemon=True)
    worker.start()
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("generating", total=100)
        while worker.is_alive():
            bar.update(task, completed=vs.get_video(owner="local", video_id=v.id).progress)
            worker.join(0.2)
        bar.update(task, completed=vs.get_video(owner="local", video_id=v.id).progress)
    v = vs.get_video(owner="local", video_id=v.id)
    if v.status != "completed":
        _fail(f"generation failed: {(v.error or {}).get('message')}")
    path, _ = vs.content(owner="local", video_id=v.id, variant="video")
    shutil.copyfile(path, out)
    console.print(f"wrote [bold]{out}[/bold] ({v.seconds} s, {v.size}, {v.id}) in {time.time() - t0:.1f} s")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the OpenAI-compatible Videos API at http://HOST:PORT/v1."""
    import uvicorn

    from vitascope.api.app import create_app

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
    logging.getLogger("vitascope").addHandler(handler)
    logging.getLogger("vitascope").setLevel(logging.INFO)
    uvicorn.run(create_app(_vs()), host=host, port=port, log_level="info")


@app.command()
def models() -> None:
    """The models this installation serves, and whether their weights are present."""
    vs = _vs()
    t = Table("model", "available", "detail")
    for m in vs.models():
        if "alias_of" in m:
            t.add_row(m["id"], "", f"alias of {m['alias_of']}")
        else:
            t.add_row(m["id"], "yes" if m["available"] else "no", m["detail"])
    console.print(t)


@keys_app.command("create")
def keys_create(name: Annotated[str, typer.Option(help="A name for the key.")] = "default", owner: Annotated[Optional[str], typer.Option(help="The user the key acts as (default: the name).")] = None) -> None:
    """Create an API key; it is printed once."""
    key, secret = _vs().create_key(name=name, owner=owner)
    console.print(f"created {key.id} for owner {key.owner!r}; the key (shown once):")
    print(secret)


@keys_app.command("list")
def keys_list() -> None:
    t = Table("name", "owner", "prefix", "created", "revoked")
    t.add_column("id", no_wrap=True, min_width=20)
    t.columns.insert(0, t.columns.pop())
    for k in _vs().list_keys():
        t.add_row(k.id, k.name, k.owner, k.prefix + "...", time.strftime("%Y-%m-%d %H:%M", time.localtime(k.created_at)), "yes" if k.revoked_at else "")
    console.print(t)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    _vs().revoke_key(key_id=key_id)
    console.print(f"revoked {key_id}")


@videos_app.command("list")
def videos_list(limit: int = 20) -> None:
    """Videos in the local store, newest first."""
    vs = _vs()
    rows, _ = vs.list_videos(owner=None, limit=limit)
    t = Table("status", "progress", "seconds", "size", "model", "prompt")
    t.add_column("id", no_wrap=True, min_width=38)
    t.columns.insert(0, t.columns.pop())
    for v in rows:
        t.add_row(v.id, v.status, str(v.progress), v.seconds, v.size, v.model, (v.prompt or "")[:50])
    console.print(t)


@videos_app.command("show")
def videos_show(video_id: str) -> None:
    from vitascope.errors import VitascopeError
    from vitascope.service import video_public

    try:
        console.print_json(data=video_public(_vs().get_video(owner=None, video_id=video_id)))
    except VitascopeError as e:
        _fail(e.message)


@videos_app.command("download")
def videos_download(video_id: str, variant: str = "video", out: Optional[Path] = None) -> None:
    from vitascope.errors import VitascopeError

    try:
        path, _ = _vs().content(owner=None, video_id=video_id, variant=variant)
    except VitascopeError as e:
        _fail(e.message)
    dest = out or Path(f"{video_id}{Path(path).suffix}")
    shutil.copyfile(path, dest)
    console.print(f"wrote {dest}")


@videos_app.command("delete")
def videos_delete(video_id: str) -> None:
    from vitascope.errors import VitascopeError

    try:
        _vs().delete_video(owner=None, video_id=video_id)
    except VitascopeError as e:
        _fail(e.message)
    console.print(f"deleted {video_id}")


@app.command()
def train(
    run: Annotated[Path, typer.Option(help="Run directory: checkpoints and logs; resumed if present.")] = Path("runs/world-s"),
    model: Annotated[str, typer.Option(help="Model configuration: world-tiny, world-s, world-s-skip, world-s-detail, world-s-layout (follows a planner's layout), world-s-layout-settings (also reads the parsed sky, ground, weather and camera), or a latent model (world-l, world-tiny-latent).")] = "world-s",
    steps: Annotated[int, typer.Option(help="Total optimizer steps of the run.")] = 100_000,
    batch: Annotated[int, typer.Option(help="Clips per step.")] = 12,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 3e-4,
    minutes: Annotated[Optional[float], typer.Option(help="Stop after this long (a part of a longer run).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    precision: Annotated[str, typer.Option(help="auto (bf16 autocast on CUDA, fp32 on a CPU), bf16 or fp32.")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed of the data stream and initialisation.")] = 0,
    export: Annotated[Optional[Path], typer.Option(help="Write the EMA weights here (safetensors) at the end.")] = None,
    resume_from: Annotated[Optional[Path], typer.Option(help="Compact resume file, used when the run directory has no checkpoint.")] = None,
    save_resume: Annotated[Optional[Path], typer.Option(help="Write a compact resume file here at the end (to commit).")] = None,
    workers: Annotated[int, typer.Option(help="Data worker processes simulating clips ahead (0: in the training loop, exactly reproducible).")] = 0,
    max_reuse: Annotated[int, typer.Option(help="With workers: train a batch again at new noise levels while the next is not ready, up to this many times.")] = 1,
    schedule: Annotated[str, typer.Option(help="Learning rate: constant, or cosine over the run (over --minutes when given).")] = "constant",
    train_only: Annotated[str, typer.Option(help="Train only parameters whose names start with this (e.g. detail.); the rest stay frozen.")] = "",
    uniform_t: Annotated[float, typer.Option(help="Share of training times drawn from all of [0, 1] (the rest lean to the noisy end).")] = 0.0,
    low_t: Annotated[float, typer.Option(help="Share of training times drawn from the noisiest quarter.")] = 0.3,
    near_zero_t: Annotated[float, typer.Option(help="Share of training times drawn from t < 0.03 (pure noise: only the prompt says what to draw).")] = 0.2,
    min_t: Annotated[float, typer.Option(help="Map training times onto [min_t, 1] (for a part that works only late in sampling).")] = 0.0,
    image_share: Annotated[float, typer.Option(help="Share of training clips given their first frame (image-to-video).")] = 0.2,
    extend_share: Annotated[float, typer.Option(help="Share of training clips given their first 4-24 frames and sound (extension).")] = 0.3,
    layout_share: Annotated[float, typer.Option(help="Layout-guided models (world-s-layout): share of training clips shown their true layout.")] = 0.75,
    canonical: Annotated[float, typer.Option(help="Share of captions in the fixed phrasing the prompt parser rewrites prompts into.")] = 0.0,
    cue_lr_scale: Annotated[float, typer.Option(help="Networks with sound cues: the cue head's learning rate as a multiple of --lr.")] = 1.0,
    gate_lr_scale: Annotated[float, typer.Option(help="Networks with a copying detail head: its gate's learning rate as a multiple of --lr.")] = 1.0,
    settings_drop: Annotated[float, typer.Option(help="Networks that read the scene's settings (world-s-layout-settings): share of clips that hide each of sky, ground, weather and camera.")] = 0.2,
    settings_lr_scale: Annotated[float, typer.Option(help="Networks that read the scene's settings: their input layers' learning rate as a multiple of --lr.")] = 10.0,
    settings_only: Annotated[float, typer.Option(help="Networks that read the scene's settings: share of clips that give them without the caption.")] = 0.3,
    detail_weight: Annotated[float, typer.Option(help="Extra loss weight on the background's detail pixels (clouds, stars, tufts, rain, snow), which show the camera and the weather.")] = 0.0,
    autoencoder: Annotated[Optional[Path], typer.Option(help="Latent models: the FrameAE weights (default: the model config's, from the package).")] = None,
    trunk_from: Annotated[Optional[Path], typer.Option(help="Latent models: start the coarse levels and text pathway from these pixel-model (world-s) weights.")] = None,
) -> None:
    """Train the embedded world model with flow matching; resumable."""
    from vitascope.models.world_net import WorldNet_configs
    from vitascope.train.world import TrainConfig, export_weights
    from vitascope.train.world import train as run_training

    if model not in WorldNet_configs:
        _fail(f"--model must be one of {', '.join(WorldNet_configs)}")
    try:
        cfg = TrainConfig(
            model=model,
            steps=steps,
            batch=batch,
            lr=lr,
            device=device,
            precision=precision,
            seed=seed,
            workers=workers,
            max_reuse=max_reuse,
            schedule=schedule,
            train_only=train_only,
            uniform_t=uniform_t,
            low_t=low_t,
            near_zero_t=near_zero_t,
            min_t=min_t,
            image_share=image_share,
            extend_share=extend_share,
            layout_share=layout_share,
            canonical=canonical,
            cue_lr_scale=cue_lr_scale,
            gate_lr_scale=gate_lr_scale,
            settings_drop=settings_drop,
            settings_lr_scale=settings_lr_scale,
            settings_only=settings_only,
            detail_weight=detail_weight,
            resume_from=str(resume_from) if resume_from else None,
            ema_from=str(export) if resume_from and export and export.exists() else None,
            autoencoder=str(autoencoder) if autoencoder else None,
            trunk_from=str(trunk_from) if trunk_from else None,
        )
    except ValueError as e:
        _fail(str(e))
    _train_with_progress(run_training, run, cfg, steps, minutes)
    if export:
        console.print(f"exported {export_weights(run, export)}")
    if save_resume:
        console.print(f"resume file {export_weights(run, save_resume, which='model')}")


def _train_with_progress(run_training, run: Path, cfg, steps: int, minutes: float | None) -> None:
    """Run a training loop that reports each step (the world model's, the planner's) under a
    progress bar with its loss, then say where it stopped."""
    with Progress(TextColumn("[bold]training"), BarColumn(), TextColumn("{task.completed}/{task.total} {task.fields[loss]}"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("train", total=steps, loss="")

        def on_step(step: int, info: dict) -> None:
            bar.update(task, completed=step, loss=f"loss {info['loss']:.4f}")

        last = run_training(run, cfg, max_seconds=minutes * 60 if minutes else None, on_step=on_step)
    console.print(f"stopped at step {last.get('step')}; checkpoint in {run / 'ckpt.pt'}")


@app.command("train-ae")
def train_ae(
    run: Annotated[Path, typer.Option(help="Run directory: checkpoints and logs; resumed if present.")] = Path("runs/world-ae"),
    model: Annotated[str, typer.Option(help="Autoencoder configuration: ae-s or ae-tiny.")] = "ae-s",
    steps: Annotated[int, typer.Option(help="Total optimizer steps of the run.")] = 100_000,
    clips: Annotated[int, typer.Option(help="Clips simulated per step.")] = 4,
    frames: Annotated[int, typer.Option(help="Frames drawn from each clip.")] = 8,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 1e-3,
    minutes: Annotated[Optional[float], typer.Option(help="Stop after this long (a part of a longer run).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the data stream and initialisation.")] = 0,
    export: Annotated[Optional[Path], typer.Option(help="Write the EMA weights here (safetensors), latents scaled to the flow model's spread.")] = None,
    init_from: Annotated[Optional[Path], typer.Option(help="Start from these exported weights (a new run directory only).")] = None,
    decoder_only: Annotated[bool, typer.Option(help="Train the decoder alone: the latents and their scale stay, so latent models trained on them stay valid.")] = False,
    detail_weight: Annotated[float, typer.Option(help="Extra loss weight on pixels unlike their neighbours (stars, tufts, rain, edges).")] = 4.0,
    precision: Annotated[str, typer.Option(help="fp32, or bf16 autocast (faster where the CPU has native bfloat16).")] = "fp32",
) -> None:
    """Train FrameAE, the frame autoencoder of the latent world models; resumable."""
    from vitascope.models import world_ae
    from vitascope.train.world_ae import AEConfig, calibrate
    from vitascope.train.world_ae import train as run_training

    try:
        cfg = AEConfig(model=model, steps=steps, clips=clips, frames=frames, lr=lr, seed=seed, init_from=str(init_from or ""), decoder_only=decoder_only, detail_weight=detail_weight, precision=precision)
    except ValueError as e:
        _fail(str(e))
    with Progress(TextColumn("[bold]training"), BarColumn(), TextColumn("{task.completed}/{task.total} {task.fields[loss]}"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("train", total=steps, loss="")
        ae = run_training(cfg, run, max_seconds=minutes * 60 if minutes else None, on_log=lambda r: bar.update(task, completed=r["step"], loss=f"mse {r['mse']:.4f} objects {r['object_mse']:.4f}"))
    step = _checkpoint_step(run / "ckpt.pt")
    console.print(f"stopped at step {step}; checkpoint in {run / 'ckpt.pt'}")
    if export:
        if not decoder_only:  # a decoder trained alone keeps the scale its latents were coded with
            calibrate(ae, cfg)
        world_ae.save(ae, export, step)
        console.print(f"exported {export}")


@app.command("train-plan")
def train_plan(
    run: Annotated[Path, typer.Option(help="Run directory: checkpoints and logs; resumed if present.")] = Path("runs/world-plan"),
    model: Annotated[str, typer.Option(help="Planner configuration: plan-s, plan-s-labels (also reads the prompt parser's labels) or plan-tiny(-labels).")] = "plan-s",
    steps: Annotated[int, typer.Option(help="Total optimizer steps of the run.")] = 100_000,
    batch: Annotated[int, typer.Option(help="Layouts per step.")] = 64,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 5e-4,
    minutes: Annotated[Optional[float], typer.Option(help="Stop after this long (a part of a longer run; the cosine schedule spans it).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the data stream and initialisation.")] = 0,
    schedule: Annotated[str, typer.Option(help="Learning rate: cosine over the run (over --minutes when given), or constant.")] = "cosine",
    text_noise: Annotated[float, typer.Option(help="Noise on training captions' token features, in spreads per dimension.")] = 0.5,
    token_drop: Annotated[float, typer.Option(help="Share of training captions' tokens hidden.")] = 0.1,
    canonical: Annotated[float, typer.Option(help="Share of captions in the fixed phrasing the prompt parser rewrites prompts into.")] = 0.0,
    init_from: Annotated[Optional[Path], typer.Option(help="Planner weights a new run starts from (layers they lack start new).")] = None,
    label_only: Annotated[float, typer.Option(help="Share of layouts planned from the parser's labels alone, without the caption (planners with labels).")] = 0.0,
    fresh_start: Annotated[bool, typer.Option(help="Layouts without known frames start at their scene's start, as text-to-video clips do.")] = False,
    place_weight: Annotated[float, typer.Option(help="Loss weight of the place features (phase, height, size, turn) against present, colour and shape.")] = 1.0,
    export: Annotated[Optional[Path], typer.Option(help="Write the EMA weights here (safetensors) at the end.")] = None,
) -> None:
    """Train the layout planner of the layout-guided world model (world-s-layout); resumable."""
    from vitascope.train.world_plan import PlanTrainConfig, export_weights
    from vitascope.train.world_plan import train as run_training

    try:
        cfg = PlanTrainConfig(model=model, steps=steps, batch=batch, lr=lr, seed=seed, schedule=schedule, text_noise=text_noise, token_drop=token_drop, canonical=canonical, init_from=str(init_from) if init_from else None, label_only=label_only, fresh_start=fresh_start, place_weight=place_weight)
    except ValueError as e:
        _fail(str(e))
    _train_with_progress(run_training, run, cfg, steps, minutes)
    if export:
        console.print(f"exported {export_weights(run, export)}")


@app.command("train-foley")
def train_foley(
    run: Annotated[Path, typer.Option(help="Run directory: checkpoints and logs; resumed if present.")] = Path("runs/world-foley"),
    model: Annotated[str, typer.Option(help="Foley configuration: foley-s or foley-tiny.")] = "foley-s",
    steps: Annotated[int, typer.Option(help="Total optimizer steps of the run.")] = 20_000,
    batch: Annotated[int, typer.Option(help="Layouts per step.")] = 32,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 2e-3,
    minutes: Annotated[Optional[float], typer.Option(help="Stop after this long (a part of a longer run; the cosine schedule spans it).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the data stream and initialisation.")] = 0,
    jitter: Annotated[float, typer.Option(help="Noise on each frame's object heights, frame heights (0: none, the shipped run; shaken layouts leave weak contacts silent).")] = 0.0,
    export: Annotated[Optional[Path], typer.Option(help="Write the EMA weights here (safetensors) at the end.")] = None,
) -> None:
    """Train WorldFoley, which hears a clip's sound from its layout (contacts, sizes, weather); resumable."""
    from vitascope.train.world_foley import FoleyTrainConfig, export_weights
    from vitascope.train.world_foley import train as run_training

    try:
        cfg = FoleyTrainConfig(model=model, steps=steps, batch=batch, lr=lr, seed=seed, jitter=jitter)
    except ValueError as e:
        _fail(str(e))
    _train_with_progress(run_training, run, cfg, steps, minutes)
    if export:
        console.print(f"exported {export_weights(run, export)}")


@app.command("train-parse")
def train_parse(
    run: Annotated[Path, typer.Option(help="Run directory: checkpoints and logs; resumed if present.")] = Path("runs/world-parse"),
    model: Annotated[str, typer.Option(help="Parser configuration: parse-s (reads tokens), parse-s-protos (reads n-grams encoded alone, named by their nearest training phrases), parse-s-grams (the same, read linearly), or their -tiny versions.")] = "parse-s",
    steps: Annotated[int, typer.Option(help="Total optimizer steps of the run.")] = 100_000,
    batch: Annotated[int, typer.Option(help="Captions per step.")] = 128,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 5e-4,
    minutes: Annotated[Optional[float], typer.Option(help="Stop after this long (a part of a longer run; the cosine schedule spans it).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the data stream and initialisation.")] = 0,
    text_noise: Annotated[float, typer.Option(help="Noise on training captions' token features, in spreads per dimension.")] = 0.5,
    token_drop: Annotated[float, typer.Option(help="Share of training captions' tokens hidden.")] = 0.1,
    export: Annotated[Optional[Path], typer.Option(help="Write the EMA weights here (safetensors) at the end.")] = None,
) -> None:
    """Train the prompt parser that rewrites a prompt into the world's training words; resumable."""
    from vitascope.train.world import export_weights
    from vitascope.train.world_parse import ParseTrainConfig
    from vitascope.train.world_parse import train as run_training

    try:
        cfg = ParseTrainConfig(model=model, steps=steps, batch=batch, lr=lr, seed=seed, text_noise=text_noise, token_drop=token_drop)
    except ValueError as e:
        _fail(str(e))
    _train_with_progress(run_training, run, cfg, steps, minutes)
    if export:
        console.print(f"exported {export_weights(run, export)}")


def _checkpoint_step(path: Path) -> int:
    import torch

    return int(torch.load(path, map_location="cpu", weights_only=False)["step"])


@app.command("eval")
def eval_cmd(
    model: Annotated[str, typer.Option(help="Model to evaluate (a world model).")] = "vitascope-world",
    n: Annotated[int, typer.Option(help="Held-out prompts.")] = 30,
    steps: Annotated[Optional[int], typer.Option(help="Sampling steps (default: the model's).")] = None,
    ceiling: Annotated[bool, typer.Option(help="Also score the simulator's own clips: the measurement's ceiling.")] = True,
    extension: Annotated[bool, typer.Option(help="Instead: 20-second clips built from 4-second extensions, first 4 s against last 4 s.")] = False,
) -> None:
    """Prompt adherence per attribute and audio-video sync on held-out prompts, from pixels and sound."""
    from vitascope.eval import backend_calls, evaluate, table

    vs = _vs()
    backend = vs.registry.get(model)
    if steps:
        backend.steps = steps

    generate, extend = backend_calls(backend)

    rows = {}
    if extension:
        from vitascope.eval import evaluate_extension

        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), console=console) as bar:
            if ceiling:
                t = bar.add_task("simulator", total=n)
                a, b = evaluate_extension(None, None, n, progress=lambda k, total: bar.update(t, completed=k))
                rows["simulator: first 4 s"], rows["simulator: last 4 s"] = a, b
            t = bar.add_task(model, total=n)
            a, b = evaluate_extension(generate, extend, n, progress=lambda k, total: bar.update(t, completed=k))
            rows[f"{model}: first 4 s"], rows[f"{model}: last 4 s"] = a, b
        print(table(rows))
        print(f"\nlast 4 s minus first 4 s, all attributes: {100 * (b.overall - a.overall):+.1f} points")
        return
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), console=console) as bar:
        if ceiling:
            t = bar.add_task("simulator", total=n)
            rows["simulator (ceiling)"] = evaluate(None, n, progress=lambda k, total: bar.update(t, completed=k))
        t = bar.add_task(model, total=n)
        rows[model] = evaluate(generate, n, progress=lambda k, total: bar.update(t, completed=k))
    print(table(rows))


def main() -> None:
    app()
