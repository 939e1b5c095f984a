"""Training the embedded world model with flow matching on clips the simulator makes on the fly.

Resumable: every `save_every` steps the run directory gets ckpt.pt (weights, EMA weights,
optimizer, step, data position) and a line per `log_every` steps in log.jsonl. Starting again
with the same run directory picks up where the last checkpoint left off.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vitascope.models import flow, text, world_ae
from vitascope.models.world_parse import SETTINGS, settings_vector
from vitascope.models.world import WEIGHTS_DIR, cpu_has_bf16
from vitascope.models.world_ae import DOWN, FrameAE
from vitascope.models.world_net import WorldNet, WorldNet_configs, WorldNetConfig, load_weights
from vitascope.world import amp_to_feature, layout, simulate
from vitascope.world.captions import describe

# (height, width) at which the model is trained, with their shares of batches
ASPECTS = ((64, 112), (112, 64), (64, 64))
ASPECT_P = (0.5, 0.3, 0.2)


@dataclass
class TrainConfig:
    model: str = "world-s"
    steps: int = 100_000
    batch: int = 8
    lr: float = 3e-4
    warmup: int = 200
    ema: float = 0.999
    seconds: float = 4.0
    fps: float = 12.0
    scale: int = 1  # divides the native frame size (tiny runs)
    seed: int = 0
    save_every: int = 100
    log_every: int = 10
    threads: int = 0  # 0: torch's default
    device: str = "auto"
    # "bf16" (autocast), "fp32", or "auto": bf16 on CUDA, fp32 on a CPU. bf16 on a CPU with native
    # bfloat16 is about 1.3x faster for world-s, but oneDNN's bf16 weight gradient of a temporal
    # convolution gave NaN at the tiny size (torch 2.13, AMD EPYC), so it is asked for, not assumed
    precision: str = "auto"
    caption_dropout: float = 0.1
    object_weight: float = 8.0  # extra loss weight on object pixels (and their rim)
    # extra loss weight on the background's detail (`background_detail`: clouds, stars, tufts, rain,
    # snow), ramped in as the objects' is. These few pixels are all that shows the camera and the
    # weather, and unweighted they are too little of the loss to learn: world-sl drew every camera
    # static and every weather clear (session 14)
    detail_weight: float = 0.0
    low_t: float = 0.3  # share of training times drawn uniformly from the noisiest quarter
    near_zero_t: float = 0.2  # share drawn from t < 0.03, where only the prompt tells what to draw
    uniform_t: float = 0.0  # share drawn from all of [0, 1]
    min_t: float = 0.0  # times are mapped onto [min_t, 1] (a part that works only late in sampling, such as the detail head)
    image_share: float = 0.2  # share of training clips that give their first frame (image-to-video)
    extend_share: float = 0.3  # share that give their first 4-24 frames and their sound (extension)
    # layout-guided models (WorldNetConfig.layout): share of training clips that show the network
    # their true layout (world/layout.py); the others give none, so the model also draws alone
    layout_share: float = 0.75
    # share of captions in the one fixed phrasing the prompt parser rewrites prompts into
    # (world/captions.py describe; models/world_parse.py), the rest as the simulator phrased them
    canonical: float = 0.0
    workers: int = 0  # data worker processes (0: clips are made in the training loop, exactly reproducible)
    max_reuse: int = 1  # with workers: a batch trains again at new noise levels while the next is not ready, up to this many times
    schedule: str = "constant"  # or "cosine": down to min_lr over the run (its steps, or max_seconds when given)
    min_lr: float = 0.1  # cosine's floor, as a share of lr
    resume_from: str | None = None  # a compact resume file (`save_resume`), used when run_dir has no checkpoint
    ema_from: str | None = None  # EMA weights to start from with resume_from (the shipped weights)
    train_only: str = ""  # train only the parameters whose names start with this (e.g. "detail."); the rest stay frozen
    # latent models: the FrameAE weights to encode clips with (default: the model config's own,
    # from the package's weights folder)
    autoencoder: str | None = None
    trunk_from: str | None = None  # a new latent model's coarse levels and text pathway start from these pixel-model weights
    # learning rate of a cue head (WorldNetConfig.cues) as a multiple of lr: a new, small linear path
    # whose weights must grow to about 1, which AdamW at lr moves by about lr a step
    cue_lr_scale: float = 1.0
    # the same for a copying detail head's gate (WorldNetConfig.copy): one logit per pixel that must
    # move by several units to open (sigmoid 0.5 -> 0.95 is 3 units, 3,000 steps at lr 1e-3)
    gate_lr_scale: float = 1.0
    # networks that read the scene's settings (WorldNetConfig.settings): the share of clips that
    # hide each setting (sky, ground, weather, camera, independently), so a network also draws
    # what a prompt leaves unsaid; clips whose caption is dropped hide all four (guidance's empty prompt)
    settings_drop: float = 0.2
    # ...and the share of clips that give the settings without the caption. A caption says the
    # sky, ground, weather and camera too (or leaves them unsaid only for the commonest value), so
    # with both the network has no need of the settings, and a run from world-sl's weights did not
    # learn them (session 14: 418 steps, sky unchanged by them at t = 0)
    settings_only: float = 0.3
    # the settings' input layers' learning rate as a multiple of lr: new layers from zero whose
    # weights must grow to the scale of the flow time's embedding
    settings_lr_scale: float = 10.0

    def __post_init__(self):
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"precision must be 'auto', 'bf16' or 'fp32'. Got {self.precision!r}.")
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule must be 'constant' or 'cosine'. Got {self.schedule!r}.")
        if not 0 <= self.min_t < 1:
            raise ValueError(f"min_t must be in [0, 1). Got {self.min_t}.")
        shares = (self.low_t, self.near_zero_t, self.uniform_t)
        if min(shares) < 0 or sum(shares) > 1 + 1e-9:
            raise ValueError(f"low_t, near_zero_t and uniform_t are shares of the training times: each at least 0, together at most 1. Got {shares}.")
        if min(self.image_share, self.extend_share) < 0 or self.image_share + self.extend_share > 1 + 1e-9:
            raise ValueError(f"image_share and extend_share are shares of the training clips: each at least 0, together at most 1. Got {(self.image_share, self.extend_share)}.")
        if not 0 <= self.canonical <= 1:
            raise ValueError(f"canonical must be in [0, 1]. Got {self.canonical}.")
        if self.detail_weight < 0:
            raise ValueError(f"detail_weight must be at least 0. Got {self.detail_weight}.")
        if not (0 <= self.settings_drop <= 1 and 0 <= self.settings_only <= 1):
            raise ValueError(f"settings_drop and settings_only must be in [0, 1]. Got {self.settings_drop} and {self.settings_only}.")
        if not 0 <= self.layout_share <= 1:
            raise ValueError(f"layout_share must be in [0, 1]. Got {self.layout_share}.")
        if self.workers < 0 or self.max_reuse < 1:
            raise ValueError(f"workers must be at least 0 and max_reuse at least 1. Got workers={self.workers}, max_reuse={self.max_reuse}.")


@dataclass
class Batch:
    video: torch.Tensor  # (B, 3, T, H, W)
    audio: torch.Tensor  # (B, A, T*E)
    free_v: torch.Tensor  # (B, 1, T, 1, 1): 1 on frames to generate, 0 on context frames
    free_a: torch.Tensor  # (B, 1, T*E)
    ctx_mask: torch.Tensor  # (B, 1, T)
    tokens: torch.Tensor
    token_mask: torch.Tensor
    obj_v: torch.Tensor  # (B, 1, T, H, W): object pixels and their rim
    loud_a: torch.Tensor  # (B, 1, T*E): steps with any sound
    layout: torch.Tensor | None = None  # (B, LAYOUT_CHANNELS, T, H, W) for layout-guided models
    cues: torch.Tensor | None = None  # (B, CUE_CHANNELS, T*E) the layout's sound cues, for networks that read them
    settings: torch.Tensor | None = None  # (B, SETTINGS_WIDTH) the scene's settings one-hot, for networks that read them
    detail_v: torch.Tensor | None = None  # (B, 1, T, H, W): the background's detail pixels, where weighted


@dataclass
class RawBatch:
    """What the simulator gives for one step, before it meets a device: compact, so that worker
    processes can hand it over through shared memory."""

    frames: torch.Tensor  # (B, T, H, W, 3) uint8
    masks: torch.Tensor  # (B, T, H, W) bool: object pixels
    audio: torch.Tensor  # (B, A, T*E) band-envelope features
    ctx: torch.Tensor  # (B, T) 1 on context frames
    captions: list[str]
    step: int
    layout: torch.Tensor | None = None  # (B, LAYOUT_CHANNELS, T, H, W) float16, zero where a clip gives none
    cues: torch.Tensor | None = None  # (B, CUE_CHANNELS, T*E) the shown layout's sound cues, zero where a clip gives none
    settings: torch.Tensor | None = None  # (B, SETTINGS_WIDTH) float32, zero where a setting is hidden
    detail: torch.Tensor | None = None  # (B, T, H, W) bool: the background's detail pixels (when TrainConfig.detail_weight)


def background_detail(frames: np.ndarray, masks: np.ndarray, threshold: int = 24) -> np.ndarray:
    """(T, H, W) bool: pixels of a clip (T, H, W, 3) that are neither an object (masks) nor the flat
    sky or ground colour of their row: clouds, stars, tufts, rain and snow. A row's flat colour is
    its median; a pixel off it by more than `threshold` (summed over RGB, 0-255) is detail."""
    flat = np.median(frames, axis=2, keepdims=True)  # (T, H, 1, 3)
    off = np.abs(frames.astype(np.int16) - flat.astype(np.int16)).sum(-1) > threshold
    return off & ~masks


def simulate_batch(cfg: TrainConfig, step: int, net_cfg: WorldNetConfig | None = None) -> RawBatch:
    """Clips for one step, all of one frame size; seeds follow from (run seed, step). What a clip
    carries beside itself (a layout, sound cues) follows the network's config: `net_cfg`, or by
    default the one `cfg.model` names."""
    rng = np.random.default_rng([cfg.seed, step])
    h, w = ASPECTS[rng.choice(len(ASPECTS), p=ASPECT_P)]
    h, w = h // cfg.scale, w // cfg.scale
    frames, masks, envs, caps, ctx, lay, cue, sets, detail = [], [], [], [], [], [], [], [], []
    T = int(round(cfg.seconds * cfg.fps))
    net_cfg = net_cfg or WorldNet_configs[cfg.model]
    with_layout = net_cfg.layout > 0
    for i in range(cfg.batch):
        seed = int(rng.integers(2**62))
        start = 0.0 if rng.random() < 0.5 else float(rng.uniform(0, 16))
        s = simulate(seed, height=h, width=w, seconds=cfg.seconds, fps=cfg.fps, start=start)
        frames.append(s.frames)
        masks.append(s.masks)
        if cfg.detail_weight:
            detail.append(background_detail(s.frames, s.masks))
        envs.append(s.audio_env)
        if rng.random() < cfg.caption_dropout:
            caps.append("")
        else:  # (no draw when canonical is 0: runs without it keep their data stream)
            caps.append(describe(s.scene) if cfg.canonical and rng.random() < cfg.canonical else s.caption)
        if net_cfg.settings:  # (drawn only for a network that reads them: other runs keep their data stream)
            hidden = tuple(k for k in SETTINGS if rng.random() < cfg.settings_drop)
            sets.append(settings_vector(s.scene, drop=tuple(SETTINGS) if not caps[-1] else hidden))
            if caps[-1] and rng.random() < cfg.settings_only:
                caps[-1] = ""  # the settings alone
        m = np.zeros(T, np.float32)
        r = rng.random()
        if r < cfg.image_share:  # image-to-video: the first frame is given
            m[0] = 1
        elif r < cfg.image_share + cfg.extend_share:  # extension: the first second or more is given, sound included
            m[: int(rng.choice([4, 8, 12, 24]))] = 1
        ctx.append(m)
        if with_layout:
            if rng.random() < cfg.layout_share:
                feat = layout.features(s.scene, start, T, cfg.fps)
                lay.append(layout.maps(feat, h, w).astype(np.float16))
                if net_cfg.cues:  # only for a network that reads them: other layout models skip the work
                    cue.append(layout.cues(feat, net_cfg.env_per_frame, cfg.fps))
            else:
                lay.append(np.zeros((layout.LAYOUT_CHANNELS, T, h, w), np.float16))
                if net_cfg.cues:
                    cue.append(np.zeros((layout.CUE_CHANNELS, T * net_cfg.env_per_frame), np.float32))
    audio = torch.from_numpy(amp_to_feature(np.stack(envs))).permute(0, 2, 1).contiguous()  # (B, A, T*E)
    maps = torch.from_numpy(np.stack(lay)) if lay else None
    cues = torch.from_numpy(np.stack(cue)) if cue else None
    settings = torch.from_numpy(np.stack(sets)) if sets else None
    details = torch.from_numpy(np.stack(detail)) if detail else None
    return RawBatch(torch.from_numpy(np.stack(frames)), torch.from_numpy(np.stack(masks)), audio, torch.from_numpy(np.stack(ctx)), caps, step, maps, cues, settings, details)


def to_batch(raw: RawBatch, net_cfg: WorldNetConfig, device: torch.device | None = None) -> Batch:
    """A step's tensors on `device`: pixels in [-1, 1], object rims, masks, encoded captions."""
    device = device or torch.device("cpu")
    video = raw.frames.to(device, non_blocking=True).permute(0, 4, 1, 2, 3).float() / 127.5 - 1  # (B, 3, T, H, W)
    audio = raw.audio.to(device, non_blocking=True)
    obj = raw.masks.to(device, non_blocking=True).float()[:, None]  # (B, 1, T, H, W)
    obj = F.max_pool3d(obj, (1, 3, 3), stride=1, padding=(0, 1, 1))  # the rim of an object matters too
    ctx_mask = raw.ctx.to(device)[:, None]  # (B, 1, T)
    free_v = (1 - ctx_mask)[:, :, :, None, None]
    free_a = (1 - ctx_mask).repeat_interleave(net_cfg.env_per_frame, dim=2)
    loud = (audio > -0.8).float().amax(dim=1, keepdim=True)  # steps with any sound
    tokens, token_mask = text.encode(raw.captions, device)
    maps = raw.layout.to(device, non_blocking=True).float() if raw.layout is not None else None
    cues = raw.cues.to(device, non_blocking=True) if raw.cues is not None else None
    settings = raw.settings.to(device, non_blocking=True) if raw.settings is not None else None
    detail = raw.detail.to(device, non_blocking=True).float()[:, None] if raw.detail is not None else None
    return Batch(video, audio, free_v, free_a, ctx_mask, tokens, token_mask, obj, loud, maps, cues, settings, detail)


def make_batch(cfg: TrainConfig, net_cfg: WorldNetConfig, step: int) -> Batch:
    """Clips for one step, on the CPU."""
    return to_batch(simulate_batch(cfg, step, net_cfg), net_cfg)


@torch.no_grad()
def encode_batch(ae: FrameAE, b: Batch) -> Batch:
    """A batch for a latent model: its clips as FrameAE latents, object weights per latent cell."""
    z = ae.encode(b.video).float()
    obj = F.max_pool3d(b.obj_v, (1, DOWN, DOWN))  # a cell that holds any object pixel
    return replace(b, video=z, obj_v=obj)


def load_autoencoder(cfg: TrainConfig, net_cfg: WorldNetConfig, device: torch.device) -> FrameAE | None:
    if net_cfg.video_channels == 3:
        return None
    ae = world_ae.load(cfg.autoencoder or net_cfg.autoencoder, WEIGHTS_DIR).to(device)
    if ae.cfg.latent != net_cfg.video_channels:
        raise ValueError(f"the autoencoder makes {ae.cfg.latent} latent channels; {cfg.model} diffuses {net_cfg.video_channels}.")
    return ae.requires_grad_(False)


# where world-s's weights go in a latent model (models/world_net.py: "world-l" has the geometry
# and widths of world-s's two coarse levels): new name prefix <- world-s name prefix
TRUNK_MAP = (
    ("down.0.1.", "down.1.1."),
    ("down.1.", "down.2."),
    ("down_v.0.", "down_v.1."),
    ("down_a.0.", "down_a.1."),
    ("xattn_down.0.", "xattn_down.1."),
    ("xattn_down.1.", "xattn_down.2."),
    ("xattn_up.0.", "xattn_up.1."),
    ("xattn_up.1.", "xattn_up.2."),
    ("up.0.", "up.0."),
    ("up.1.", "up.1."),
    ("up_v.0.", "up_v.0."),
    ("up_a.0.", "up_a.0."),
    ("mid_attn.", "mid_attn."),
    ("mid_block.", "mid_block."),
    ("text.", "text."),
    ("t_mlp.", "t_mlp."),
    ("in_gate.", "in_gate."),
)


def load_trunk(net: WorldNet, path: str | Path) -> list[str]:
    """Start a latent model from a pixel model's coarse levels, middle and text pathway (TRUNK_MAP);
    the parts that touch the latents (input, output, first block, positions) start fresh. Returns
    the names of the parameters loaded."""
    from safetensors.torch import load_file

    src = load_file(str(path))
    own = net.state_dict()
    loaded = {}
    for name, value in own.items():
        for new, old in TRUNK_MAP:
            if name.startswith(new):
                o = old + name[len(new) :]
                if o in src and src[o].shape == value.shape:
                    loaded[name] = src[o].float()
                break
    if not loaded:
        raise ValueError(f"{path} holds no weights that fit {net.cfg}")
    net.load_state_dict(loaded, strict=False)
    return sorted(loaded)


def _feed(cfg: TrainConfig, first: int, every: int, queue) -> None:
    """A data worker: simulates the batches of steps first, first + every, ... into `queue`."""
    torch.set_num_threads(1)
    step = first
    while True:
        queue.put(simulate_batch(cfg, step))
        step += every


class Feeder:
    """Worker processes that simulate batches ahead of the trainer (clips are made on the CPU;
    on a GPU the network would otherwise wait for them), and a thread that turns each into a
    device batch (copy, object rims, text encoding) while the network works on the last one:
    done on the training thread, that took a third of each step on an H100."""

    def __init__(self, cfg: TrainConfig, start: int, workers: int, net_cfg: WorldNetConfig, device: torch.device):
        import queue
        import threading

        import torch.multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.raw = ctx.Queue(maxsize=2 * workers)
        self.procs = [ctx.Process(target=_feed, args=(cfg, start + k, workers, self.raw), daemon=True) for k in range(workers)]
        for p in self.procs:
            p.start()
        self.ready: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._prepare, args=(net_cfg, device), daemon=True)
        self.thread.start()

    def _prepare(self, net_cfg: WorldNetConfig, device: torch.device) -> None:
        import queue

        try:
            while not self.stop.is_set():
                try:
                    raw = self.raw.get(timeout=1)
                except queue.Empty:
                    continue
                item = (raw.step, to_batch(raw, net_cfg, device))
                while not self.stop.is_set():
                    try:
                        self.ready.put(item, timeout=1)
                        break
                    except queue.Full:
                        continue
        except BaseException as e:  # handed to the training thread, which raises it
            self.error = e

    def get(self, block: bool = True) -> tuple[int, Batch] | None:
        """(step, batch) of the next prepared batch; None when block is False and none is ready."""
        import queue

        waited = 0.0
        while True:
            if self.error is not None:
                raise RuntimeError("preparing a batch failed") from self.error
            try:
                return self.ready.get(timeout=1) if block else self.ready.get_nowait()
            except queue.Empty:
                if not block:
                    return None
                waited += 1
                if waited > 600:
                    raise RuntimeError("data workers produced nothing for 10 minutes") from None

    def close(self) -> None:
        self.stop.set()
        for p in self.procs:
            p.kill()
        self.thread.join(timeout=5)


def detail_ramp(t: torch.Tensor) -> torch.Tensor:
    """How much of the extra weight on objects and sound a sample at time t gets: none while the
    clip is mostly noise (t < 0.2), all from t = 0.6. A weighted loss's best estimate is the
    weighted mean: with object pixels weighted up where their places are still unknown, the
    model learned to paint object colours everywhere, and drew colour blotches from noise."""
    return ((t - 0.2) / 0.4).clamp(0, 1)


def loss_fn(
    net: WorldNet,
    b: Batch,
    gen: torch.Generator,
    low_t: float = 0.3,
    object_weight: float = 8.0,
    near_zero_t: float = 0.0,
    noise_gen: torch.Generator | None = None,
    uniform_t: float = 0.0,
    min_t: float = 0.0,
    detail_weight: float = 0.0,
) -> tuple[torch.Tensor, dict]:
    """Flow-matching loss of a batch. `gen` draws the times; `noise_gen` (default `gen`) the
    noise, on its own device: on a GPU, drawing a batch's noise on the CPU takes longer than the step."""
    B = b.video.shape[0]
    t = flow.sample_t(B, gen, low=low_t, near_zero=near_zero_t, uniform=uniform_t).to(b.video.device)
    t = min_t + (1 - min_t) * t
    ramp = detail_ramp(t)
    weight_v = 1 + object_weight * ramp.view(B, 1, 1, 1, 1) * b.obj_v
    if detail_weight and b.detail_v is not None:
        weight_v = weight_v + detail_weight * ramp.view(B, 1, 1, 1, 1) * b.detail_v
    weight_v = weight_v * b.free_v  # (B, 1, T, H, W)
    weight_a = (1 + 4 * ramp.view(B, 1, 1) * b.loud_a) * b.free_a
    ng = noise_gen or gen
    nv = torch.randn(b.video.shape, generator=ng, device=ng.device).to(b.video.device)
    na = torch.randn(b.audio.shape, generator=ng, device=ng.device).to(b.video.device)
    xv, xa = flow.interpolate(b.video, nv, t), flow.interpolate(b.audio, na, t)
    dv, da = net(xv, xa, t, b.tokens, b.token_mask, b.video, b.audio, b.ctx_mask, layout=b.layout, cues=b.cues, settings=b.settings)  # data predictions
    pv, pa = flow.velocity(dv.float(), xv, t), flow.velocity(da.float(), xa, t)
    lv = (weight_v * (pv - (b.video - nv)) ** 2).mean() / weight_v.mean().clamp(min=1e-6)
    la = (weight_a * (pa - (b.audio - na)) ** 2).mean() / weight_a.mean().clamp(min=1e-6)
    free = weight_v > 0
    x_mse = ((dv.detach().float() - b.video) ** 2)[free.expand_as(dv)].mean()  # readable progress: data error
    return lv + la, {"loss_video": lv.item(), "loss_audio": la.item(), "x_mse_video": x_mse.item()}


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def train(
    run_dir: str | Path,
    cfg: TrainConfig,
    *,
    max_seconds: float | None = None,
    on_step: Callable[[int, dict], None] | None = None,
) -> dict:
    """Train until cfg.steps or max_seconds; resume from run_dir/ckpt.pt if present."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = _device(cfg.device)
    torch.manual_seed(cfg.seed)
    net_cfg = WorldNet_configs[cfg.model]
    net = WorldNet(net_cfg).to(device)
    ema = WorldNet(net_cfg).to(device)
    ema.load_state_dict(net.state_dict())
    ema.requires_grad_(False)
    for n, p in net.named_parameters():
        p.requires_grad_(n.startswith(cfg.train_only))  # frozen parts run without a graph: cheap steps
    trainable = [p for p in net.parameters() if p.requires_grad]
    ema_trained = [e for e, p in zip(ema.parameters(), net.parameters()) if p.requires_grad]  # frozen EMA weights stay as loaded
    if not trainable:
        raise ValueError(f"train_only matches no parameter of {cfg.model}. Got {cfg.train_only!r}.")
    scales = {"cue_head.": cfg.cue_lr_scale, "detail.gate.": cfg.gate_lr_scale, "settings_": cfg.settings_lr_scale}  # small new paths at their own learning rates
    part = {id(p): next((k for k in scales if n.startswith(k)), "") for n, p in net.named_parameters()}
    groups = [{"params": ps, "lr_scale": scales.get(k, 1.0)} for k in ("", *scales) if (ps := [p for p in trainable if part[id(p)] == k])]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=0.01, betas=(0.9, 0.99))
    step = start = 0
    ckpt_path = run_dir / "ckpt.pt"
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location=device, weights_only=False)
        added = load_weights(net, ck["model"])
        load_weights(ema, ck["ema"])
        step = start = ck["step"]
        if added:  # the architecture grew: the optimizer starts fresh and warms up again
            start = step
        else:
            opt.load_state_dict(ck["opt"])
            start = ck.get("warm_start", 0)
    elif cfg.trunk_from:
        load_trunk(net, cfg.trunk_from)
        ema.load_state_dict(net.state_dict())
    elif cfg.resume_from:
        # a new machine: weights and step from the committed resume file; the optimizer starts
        # fresh and warms up again from here
        step = start = load_resume(net, cfg.resume_from)
        if cfg.ema_from:
            load_resume(ema, cfg.ema_from)
        else:
            ema.load_state_dict(net.state_dict())
    (run_dir / "config.json").write_text(json.dumps({"train": asdict(cfg), "model": net_cfg.to_dict()}, indent=2))
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    amp = cfg.precision == "bf16" or (cfg.precision == "auto" and cuda)
    t_start, last = time.time(), {}
    log = open(run_dir / "log.jsonl", "a")
    feeder = Feeder(cfg, step, cfg.workers, net_cfg, device) if cfg.workers else None
    ae = load_autoencoder(cfg, net_cfg, device)
    ae_bf16 = device.type == "cpu" and cpu_has_bf16()
    b, uses, data_step = None, 0, step
    try:
        while step < cfg.steps:
            elapsed = time.time() - t_start
            if max_seconds is not None and elapsed > max_seconds:
                break
            t0 = time.time()
            if feeder is None:
                b, data_step, uses = to_batch(simulate_batch(cfg, step), net_cfg, device), step, 0
            else:
                got = feeder.get(block=b is None or uses >= cfg.max_reuse)
                if got is not None:
                    (data_step, b), uses = got, 0
            if ae is not None and uses == 0:  # a fresh batch: its clips as latents (no gradient: bf16 where it is native)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp or ae_bf16):
                    b = encode_batch(ae, b)
            uses += 1
            t_data = time.time() - t0
            lr = cfg.lr * min(1.0, (step - start + 1) / cfg.warmup) * _decay(cfg, step, start, elapsed, max_seconds)
            for g in opt.param_groups:
                g["lr"] = lr * g["lr_scale"]
            gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)  # noise per step: a resumed run is the same run
            noise_gen = torch.Generator(device).manual_seed(cfg.seed * 1_000_003 + step) if cuda else None
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss, parts = loss_fn(net, b, gen, cfg.low_t, cfg.object_weight, cfg.near_zero_t, noise_gen, cfg.uniform_t, cfg.min_t, cfg.detail_weight)
            opt.zero_grad(set_to_none=True)
            gnorm = 0.0
            if loss.requires_grad:  # with a part frozen, a batch may not reach the part that trains
                loss.backward()
                gnorm = float(torch.nn.utils.clip_grad_norm_(trainable, 1.0))
                if not math.isfinite(gnorm):  # before the step: a non-finite gradient would spoil every weight
                    raise FloatingPointError(f"gradient norm is {gnorm} at step {step + 1} (precision {'bf16' if amp else 'fp32'}); the weights are kept as of the last checkpoint")
                opt.step()
            decay = min(cfg.ema, (1 + step) / (10 + step))
            with torch.no_grad():
                torch._foreach_lerp_(ema_trained, trainable, 1 - decay)
            step += 1
            last = {"step": step, "loss": loss.item(), **parts, "grad_norm": gnorm, "lr": lr, "sec": time.time() - t0, "data_sec": t_data}
            if feeder is not None:
                last |= {"data_step": data_step, "use": uses}
            if not math.isfinite(last["loss"]):
                raise FloatingPointError(f"loss is {last['loss']} at step {step}")
            if step % cfg.log_every == 0:
                log.write(json.dumps({**last, "time": time.time()}) + "\n")
                log.flush()
            if on_step:
                on_step(step, last)
            if step % cfg.save_every == 0 or step == cfg.steps:
                save_checkpoint(ckpt_path, net, ema, opt, step, start)
    finally:
        if feeder is not None:
            feeder.close()
    save_checkpoint(ckpt_path, net, ema, opt, step, start)
    log.close()
    return last | {"step": step}


def _decay(cfg: TrainConfig, step: int, start: int, elapsed: float, max_seconds: float | None) -> float:
    """The learning rate's share at this point of the run: 1 (constant), or a cosine from 1 to
    cfg.min_lr over the run's steps, or over max_seconds when the run is limited in time."""
    if cfg.schedule == "constant":
        return 1.0
    done = elapsed / max_seconds if max_seconds else (step - start) / max(cfg.steps - start, 1)
    return cfg.min_lr + (1 - cfg.min_lr) * 0.5 * (1 + math.cos(math.pi * min(done, 1.0)))


def save_checkpoint(path: Path, net, ema, opt, step: int, warm_start: int = 0) -> None:
    tmp = path.with_suffix(".tmp")
    state = {"model": net.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(), "step": step, "warm_start": warm_start, "config": net.cfg.to_dict()}
    torch.save(state, tmp)
    os.replace(tmp, path)  # a crash mid-write never leaves a broken checkpoint


def small_run(make: Callable[[], torch.nn.Module], lr: float):
    """(net, ema, opt) for the planner's and the parser's runs: a network, its EMA copy (no
    gradients) and AdamW."""
    net, ema = make(), make()
    ema.load_state_dict(net.state_dict())
    ema.requires_grad_(False)
    return net, ema, torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.99))


def small_loop(run_dir: Path, cfg, net, ema, opt, step: int, step_loss: Callable[[int], tuple[torch.Tensor, dict]], *, max_seconds: float | None = None, on_step: Callable[[int, dict], None] | None = None) -> dict:
    """The loop of the planner's, the parser's and WorldFoley's runs, from `step` (resumed or 0)
    to cfg.steps or max_seconds: step_loss(step) gives the step's loss and what else to log; the
    learning rate warms up over cfg.warmup steps, then follows `_decay`; a line per cfg.log_every
    steps goes to run_dir/log.jsonl, the checkpoint to run_dir/ckpt.pt every cfg.save_every steps
    and at the end. Returns the last step's log line."""
    (run_dir / "config.json").write_text(json.dumps({"train": asdict(cfg), "model": net.cfg.to_dict()}, indent=2))
    ckpt = run_dir / "ckpt.pt"
    log = open(run_dir / "log.jsonl", "a")
    t_start, last, first = time.time(), {}, step
    while step < cfg.steps:
        elapsed = time.time() - t_start
        if max_seconds is not None and elapsed > max_seconds:
            break
        t0 = time.time()
        lr = cfg.lr * min(1.0, (step + 1) / cfg.warmup) * _decay(cfg, step, first, elapsed, max_seconds)
        for g in opt.param_groups:
            g["lr"] = lr
        loss, extra = step_loss(step)
        gnorm = optimizer_step(loss, net, ema, opt, step, cfg.ema)
        step += 1
        last = {"step": step, "loss": loss.item(), "grad_norm": gnorm, "lr": lr, "sec": time.time() - t0, **extra}
        if step % cfg.log_every == 0:
            log.write(json.dumps({**last, "time": time.time()}) + "\n")
            log.flush()
        if on_step:
            on_step(step, last)
        if step % cfg.save_every == 0:
            save_checkpoint(ckpt, net, ema, opt, step)
    save_checkpoint(ckpt, net, ema, opt, step)
    log.close()
    return last | {"step": step}


def resume(ckpt: Path, net, ema, opt) -> int | None:
    """Load a run's checkpoint into net, ema and opt and return its step; None when there is none."""
    if not ckpt.exists():
        return None
    ck = torch.load(ckpt, map_location="cpu", weights_only=False)
    net.load_state_dict(ck["model"])
    ema.load_state_dict(ck["ema"])
    opt.load_state_dict(ck["opt"])
    return ck["step"]


def optimizer_step(loss: torch.Tensor, net, ema, opt, step: int, ema_decay: float) -> float:
    """Backward, clip the gradient to norm 1, step and update the EMA; returns the gradient norm.
    A gradient that is not finite stops the run before the step, so the weights stay as checkpointed."""
    params = list(net.parameters())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    gnorm = float(torch.nn.utils.clip_grad_norm_(params, 1.0))
    if not math.isfinite(gnorm):
        raise FloatingPointError(f"gradient norm is {gnorm} at step {step + 1}; the weights are kept as of the last checkpoint")
    opt.step()
    with torch.no_grad():
        torch._foreach_lerp_(list(ema.parameters()), params, 1 - min(ema_decay, (1 + step) / (10 + step)))
    return gnorm


def export_weights(run_dir: str | Path, out: str | Path, *, which: str = "ema", dtype: torch.dtype = torch.float16) -> Path:
    """A run's weights (`ema`: what ships; `model`: the raw weights a later run resumes from) as
    safetensors, with the model config and step in the metadata."""
    from safetensors.torch import save_file

    ck = torch.load(Path(run_dir) / "ckpt.pt", map_location="cpu", weights_only=False)
    tensors = {k: v.to(dtype).contiguous() for k, v in ck[which].items()}
    meta = {"config": json.dumps(ck["config"]), "step": str(ck["step"])}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out), metadata=meta)
    return out


def load_resume(net: WorldNet, path: str | Path) -> int:
    """Load weights written by `export_weights` into net; returns the step they were taken at."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    saved = WorldNetConfig.from_dict(json.loads(meta["config"]))
    # the same weights fit either output form; a run may switch (warm start, see WorldNetConfig.precond)
    # and weights without a detail head warm-start one that has it (the head starts as the identity)
    # and weights without layout channels start a layout-guided network (their inputs start at zero)
    if replace(saved, precond=net.cfg.precond, detail=saved.detail or net.cfg.detail, detail_from=net.cfg.detail_from, copy=net.cfg.copy, layout=saved.layout or net.cfg.layout, cues=saved.cues or net.cfg.cues, settings=saved.settings or net.cfg.settings) != net.cfg:
        raise ValueError(f"{path} holds weights of another configuration: {meta['config']}")
    load_weights(net, {k: v.float() for k, v in load_file(str(path)).items()})
    return int(meta.get("step", 0))
