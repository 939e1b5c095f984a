"""WorldNet: a joint video-and-audio flow-matching network for the embedded world model.

A factorised (2+1)D convolutional U-Net over space-time patches of the video, with a 1D branch
for the sound's band envelopes that trades information with the video at every block, cross-
attention to text tokens at the two coarse levels, and joint self-attention of video and audio
tokens at the coarsest. Convolutions bring the locality bias that lets a small model learn flat
shapes from little data (a pixel transformer of the same size did not, see issue 3); attention
carries the prompt and the clip-wide facts (which object bounces, when it sounds).

Inputs per clip:
  video (B, 3, T, H, W) in [-1, 1]; audio (B, A, T * E) band-envelope features in [-1, 1],
  with A = audio_bands and E = env_per_frame; context: the same tensors with known frames filled
  in and a mask (B, 1, T) of which frames are known (image-to-video, extension).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class WorldNetConfig:
    channels: tuple[int, ...] = (64, 128, 256)
    blocks: tuple[int, ...] = (2, 2, 2)  # residual blocks per level, on the way down
    heads: int = 4
    cond_dim: int = 256
    text_dim: int = 384  # width of the text encoder's token embeddings
    text_layers: int = 1  # trainable transformer layers over the frozen text tokens
    audio_bands: int = 16
    env_per_frame: int = 4
    patch: tuple[int, int, int] = (2, 4, 4)  # (t, h, w)
    # "x": the network's output is the data estimate. "skip": the estimate is
    # c_skip(t) * x_t + c_out(t) * output (EDM's preconditioning), so detail already in the input
    # passes through near the data end instead of through a patch's few channels. Measured as a
    # warm start from x weights (docs/models/world.md): sharper near the data end, but the skipped
    # input's noise must then be cancelled through those same channels, and clips scored lower
    precond: str = "x"
    # channels of a full-resolution detail head (0: none): a few 2D convolutions over each frame
    # that see the noisy input x_t and the network's data estimate at full resolution, and correct
    # the estimate. The U-Net's output leaves it through 2x4x4 patches of 64 channels, which
    # blurs objects (object-pixel error 0.08 even where the input is nearly clean, see
    # docs/models/world.md); the head can read edges off x_t instead
    detail: int = 0
    # the flow time from which the detail head works (DETAIL_FROM by default). A copying head
    # (below) works from 0. A plain head trained alone from 0.2 (world-s-layout-early) drew worse
    # clips than from 0.5: in training x_t holds the data's sharp objects, in sampling the
    # network's own blurred ones (docs/models/world.md, session 12)
    detail_from: float = 0.5
    # a layout-guided detail head that may copy: inside each silhouette of the layout, a learned
    # per-pixel gate blends the estimate towards the colour the layout names there. Objects of the
    # world are flat colours (weather falls over them), so a drawn object is mostly that colour at
    # exactly those pixels, which the trunk's 2x4x4 patches round off and blur; the gate can take
    # it from the silhouette at any flow time, and learns where not to (rain and snow over objects)
    copy: bool = False
    # what the network diffuses: 3 (pixels) or the latent channels of a FrameAE (models/world_ae.py),
    # whose weights file, next to this network's, is named by `autoencoder`
    video_channels: int = 3
    autoencoder: str = ""
    xattn_from: int = 1  # the first level with cross-attention to the text
    # channels of a layout the network follows (world/layout.py: each object's silhouette carrying its
    # colour and shape label, frame by frame; 0: none). A layout-guided model draws the objects a
    # planner (models/world_plan.py) placed; without a layout its channels are zero
    layout: int = 0
    # channels of sound cues the audio branch reads beside the noisy sound (world/layout.py `cues`:
    # when and how hard the layout's objects touch the ground, per envelope step; 0: none). Without
    # them the sound must find contacts in the network's own coarse video features, and a session-10
    # network put an onset within a frame of 17.5% of the contacts it drew
    cues: int = 0
    # width of the scene's settings read as labels (models/world_parse.py `settings_vector`: sky,
    # ground, weather and camera one-hot, 13; 0: none). They join the flow time and the pooled text
    # in the conditioning every block is modulated by, and the detail head's modulation. Read from
    # the prompt's words alone, a network drew every camera static and every weather clear (session
    # 14: 0 of 10 pans and 0 of 9 rain or snow clips on validation), though the parser reads the
    # camera right 9 times in 10
    settings: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "WorldNetConfig":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


WorldNet_configs = {
    "world-tiny": WorldNetConfig(channels=(8, 16, 16), blocks=(1, 1, 1), heads=2, cond_dim=32, text_layers=1),
    "world-tiny-detail": WorldNetConfig(channels=(8, 16, 16), blocks=(1, 1, 1), heads=2, cond_dim=32, text_layers=1, detail=4),
    "world-s": WorldNetConfig(),
    "world-s-skip": WorldNetConfig(precond="skip"),
    "world-s-detail": WorldNetConfig(detail=16),
    "world-tiny-layout": WorldNetConfig(channels=(8, 16, 16), blocks=(1, 1, 1), heads=2, cond_dim=32, text_layers=1, layout=7),
    "world-s-layout": WorldNetConfig(layout=7),
    "world-tiny-layout-detail": WorldNetConfig(channels=(8, 16, 16), blocks=(1, 1, 1), heads=2, cond_dim=32, text_layers=1, layout=7, detail=4),
    "world-s-layout-detail": WorldNetConfig(layout=7, detail=16),
    "world-s-layout-early": WorldNetConfig(layout=7, detail=16, detail_from=0.2),
    "world-tiny-layout-copy": WorldNetConfig(channels=(8, 16, 16), blocks=(1, 1, 1), heads=2, cond_dim=32, text_layers=1, layout=7, detail=4, detail_from=0.0, copy=True),
    "world-s-layout-copy": WorldNetConfig(layout=7, detail=16, detail_from=0.0, copy=True),
    "world-tiny-layout-settings": WorldNetConfig(channels=(8, 16, 16), blocks=(1, 1, 1), heads=2, cond_dim=32, text_layers=1, layout=7, detail=4, detail_from=0.0, copy=True, settings=13),
    "world-s-layout-settings": WorldNetConfig(layout=7, detail=16, detail_from=0.0, copy=True, settings=13),
    "world-tiny-layout-cues": WorldNetConfig(channels=(8, 16, 16), blocks=(1, 1, 1), heads=2, cond_dim=32, text_layers=1, layout=7, detail=4, cues=2),
    "world-s-layout-cues": WorldNetConfig(layout=7, detail=16, cues=2),
    # latent models: WorldNet over FrameAE latents (16 channels per 8x8 pixels, frame by frame),
    # 4 latent frames per patch; its two levels have the geometry and widths of world-s's two
    # coarse ones, so those can start from world-s's weights
    "world-tiny-latent": WorldNetConfig(channels=(16, 16), blocks=(1, 1), heads=2, cond_dim=32, patch=(4, 1, 1), video_channels=4, xattn_from=0, autoencoder="ae-tiny"),
    "world-l": WorldNetConfig(channels=(128, 256), blocks=(2, 2), patch=(4, 1, 1), video_channels=16, xattn_from=0, autoencoder="world-ae.safetensors"),
}

SIGMA_DATA = 0.5  # typical spread of a pixel or sound feature in [-1, 1]


def skip_scales(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(c_skip, c_out) at flow time t for x_t = t * data + (1 - t) * noise: c_skip * x_t is the
    best linear estimate of data of spread SIGMA_DATA, and c_out the remaining error's spread,
    scaled to 1 at pure noise (there the estimate is the output alone, as with "x")."""
    d = torch.sqrt((t * SIGMA_DATA) ** 2 + (1 - t) ** 2)
    return t * SIGMA_DATA**2 / d**2, (1 - t) / d


def input_scale(t: torch.Tensor) -> torch.Tensor:
    """EDM's c_in: the factor that gives x_t unit spread at every t, for data of spread SIGMA_DATA
    and unit noise."""
    return 1.0 / torch.sqrt((t * SIGMA_DATA) ** 2 + (1 - t) ** 2)


POS_FREQS = 4


def coord_features(h: int, w: int, device=None) -> torch.Tensor:
    """Sines and cosines of each patch's centre, as fractions of the frame height and width:
    (h, w, 4 * POS_FREQS), the same for any aspect ratio."""
    y = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
    x = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
    f = math.pi * 2.0 ** torch.arange(POS_FREQS, device=device, dtype=torch.float32)  # (F,)
    yy = (y[:, None] * f).expand(h, POS_FREQS)[:, None].expand(h, w, POS_FREQS)
    xx = (x[:, None] * f).expand(w, POS_FREQS)[None].expand(h, w, POS_FREQS)
    return torch.cat([yy.sin(), yy.cos(), xx.sin(), xx.cos()], dim=-1)


def group_norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, c // 4) if c >= 8 else 1, c, eps=1e-5)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of flow time t in [0, 1]: (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * 1000.0 * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class ResBlock(nn.Module):
    """(2+1)D residual block on video, 1D on audio, with adaLN modulation and a video<->audio exchange."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int):
        super().__init__()
        self.norm1 = group_norm(c_in)
        self.conv_s = nn.Conv3d(c_in, c_out, (1, 3, 3), padding=(0, 1, 1))
        self.norm2 = group_norm(c_out)
        self.conv_t = nn.Conv3d(c_out, c_out, (3, 1, 1), padding=(1, 0, 0))
        self.mod = nn.Linear(cond_dim, 4 * c_out)
        self.skip = nn.Conv3d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.a_norm1 = group_norm(c_in)
        self.a_conv1 = nn.Conv1d(c_in, c_out, 3, padding=1)
        self.a_norm2 = group_norm(c_out)
        self.a_conv2 = nn.Conv1d(c_out, c_out, 3, padding=1)
        self.a_skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.v_to_a = nn.Linear(2 * c_out, c_out)
        self.a_to_v = nn.Linear(c_out, c_out)

    def forward(self, v: torch.Tensor, a: torch.Tensor, cond: torch.Tensor):
        # v: (B, C, T, H, W); a: (B, C, T); cond: (B, D)
        shift_v, scale_v, shift_a, scale_a = self.mod(cond).chunk(4, dim=-1)  # each (B, C_out)
        h = self.conv_s(F.silu(self.norm1(v)))
        h = self.norm2(h) * (1 + scale_v[:, :, None, None, None]) + shift_v[:, :, None, None, None]
        h = self.conv_t(F.silu(h))
        g = self.a_conv1(F.silu(self.a_norm1(a)))
        g = self.a_norm2(g) * (1 + scale_a[:, :, None]) + shift_a[:, :, None]
        g = self.a_conv2(F.silu(g))
        v = self.skip(v) + h
        a = self.a_skip(a) + g
        # what happens where in the picture is pooled for the sound; the sound's timing is broadcast back
        pooled = torch.cat([v.mean(dim=(3, 4)), v.amax(dim=(3, 4))], dim=1)  # (B, 2C, T)
        a = a + self.v_to_a(pooled.transpose(1, 2)).transpose(1, 2)
        v = v + self.a_to_v(a.transpose(1, 2)).transpose(1, 2)[:, :, :, None, None]
        return v, a


class CrossAttention(nn.Module):
    """Video tokens attend to text tokens."""

    def __init__(self, c: int, cond_dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm = group_norm(c)
        self.q = nn.Linear(c, c)
        self.kv = nn.Linear(cond_dim, 2 * c)
        self.out = nn.Linear(c, c)

    def forward(self, v: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        B, C, T, H, W = v.shape
        x = self.norm(v).flatten(2).transpose(1, 2)  # (B, N, C)
        q = self.q(x).view(B, -1, self.heads, C // self.heads).transpose(1, 2)  # (B, nh, N, hs)
        k, val = self.kv(text).chunk(2, dim=-1)  # (B, L, C) each
        k = k.view(B, -1, self.heads, C // self.heads).transpose(1, 2)  # (B, nh, L, hs)
        val = val.view(B, -1, self.heads, C // self.heads).transpose(1, 2)
        # q and k RMS-normalised per head: without it, keys grew to norms of 300 and the softmax
        # saturated, which starved the text pathway of gradient and the model ignored the prompt
        q, k = F.rms_norm(q, (q.shape[-1],)), F.rms_norm(k, (k.shape[-1],))
        o = F.scaled_dot_product_attention(q, k, val, attn_mask=text_mask[:, None, None, :])  # (B, nh, N, hs)
        o = self.out(o.transpose(1, 2).reshape(B, -1, C))  # (B, N, C)
        return v + o.transpose(1, 2).view(B, C, T, H, W)


class JointAttention(nn.Module):
    """Self-attention over all video tokens and audio tokens of the clip together."""

    def __init__(self, c: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm_v = group_norm(c)
        self.norm_a = group_norm(c)
        self.qkv = nn.Linear(c, 3 * c)
        self.out = nn.Linear(c, c)

    def forward(self, v: torch.Tensor, a: torch.Tensor):
        B, C, T, H, W = v.shape
        x = torch.cat([self.norm_v(v).flatten(2), self.norm_a(a)], dim=2).transpose(1, 2)  # (B, N + T, C)
        q, k, val = self.qkv(x).view(B, -1, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)  # (B, nh, N+T, hs)
        o = F.scaled_dot_product_attention(q, k, val)
        o = self.out(o.transpose(1, 2).reshape(B, -1, C)).transpose(1, 2)  # (B, C, N + T)
        n = T * H * W
        return v + o[:, :, :n].reshape(B, C, T, H, W), a + o[:, :, n:]


class TextEncoderHead(nn.Module):
    """A trainable layer over frozen sentence-encoder token embeddings: (B, L, text_dim) -> (B, L, D)."""

    def __init__(self, cfg: WorldNetConfig):
        super().__init__()
        self.proj = nn.Linear(cfg.text_dim, cfg.cond_dim)
        layer = nn.TransformerEncoderLayer(cfg.cond_dim, cfg.heads, 2 * cfg.cond_dim, dropout=0.0, batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, cfg.text_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.cond_dim)  # the tokens cross-attention reads, at unit scale

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor):
        x = self.layers(self.proj(tokens), src_key_padding_mask=~mask)  # (B, L, D)
        pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)  # (B, D)
        return self.norm(x), pooled


CUE_LEAD, CUE_TAIL = 2, 12  # envelope steps (48 a second) a contact's sound may start before its cue and last after it

# the detail head works from this flow time on (by default; WorldNetConfig.detail_from): before
# it, x_t holds too little of the clip's edges to sharpen with (the estimate's object error is
# already as high at t = 0.3 as at 0.7), and skipping it there spares two thirds of its cost in
# sampling
DETAIL_FROM = 0.5


class DetailHead(nn.Module):
    """Corrects a data estimate (B, 3, T, H, W) pixel by pixel from itself, the noisy input at
    flow time t and, for a layout-guided network, the layout's maps (the objects' silhouettes,
    which the patch grid of the trunk cannot draw sharply): a 3x3 convolution per frame, then two
    pixel-wise layers, modulated by t, to a residual that starts at zero (the head begins as the
    identity, so it can join trained weights).
    At full resolution with few channels a CPU spends its time moving memory: the layers run on
    the clip as it lies (B, C, T, H, W), with the modulations folded into the layers' weights
    where they can be, and no change of layout in between."""

    def __init__(self, c: int, cond_dim: int, layout: int = 0, start: float = DETAIL_FROM, copy: bool = False):
        super().__init__()
        self.start = start
        if copy and layout < 4:
            raise ValueError("a copying detail head needs a layout with silhouettes and colours (layout >= 4).")
        self.gate = nn.Linear(c, 1) if copy else None  # the copy gate's logit per pixel; starts at 0 (half the way) inside silhouettes
        self.conv = nn.Conv2d(6 + layout, c, 3, padding=1)
        self.mix = nn.Linear(c, c)
        self.out = nn.Linear(c, 3)
        self.mod = nn.Sequential(nn.Linear(cond_dim, cond_dim), nn.SiLU(), nn.Linear(cond_dim, 4 * c))
        self.cond_dim = cond_dim

    def forward(self, estimate: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, layout: torch.Tensor | None = None, cond: torch.Tensor | None = None) -> torch.Tensor:
        """cond: (B, cond_dim) added to the flow time's embedding before the modulation (the
        scene's settings, where the network reads them)."""
        on = t >= self.start
        if not bool(on.any()):  # all samples still too noisy for detail: nothing to compute
            return estimate
        B, _, T, H, W = estimate.shape
        emb = timestep_embedding(t, self.cond_dim)
        if cond is not None:
            emb = emb + cond.float()
        s1, b1, s2, b2 = (m.view(B, -1, 1, 1, 1) for m in self.mod(emb).to(estimate.dtype).chunk(4, dim=1))
        parts = [estimate, x_t * input_scale(t).to(x_t.dtype).view(B, 1, 1, 1, 1)]  # x_t at unit spread, as the net's input
        if self.conv.in_channels > 6:
            parts.append(layout.to(estimate.dtype) if layout is not None else estimate.new_zeros(B, self.conv.in_channels - 6, T, H, W))
        x = torch.cat(parts, dim=1)  # (B, 6 (+ layout), T, H, W)
        # the 3x3 convolution frame by frame (a kernel one frame deep), then the pixel-wise layers
        # as matrix products over (B, c, pixels): no layout changes between them
        quick = not torch.is_grad_enabled()  # in place where no gradient needs the values
        h = F.conv3d(x, self.conv.weight[:, :, None].to(x.dtype), self.conv.bias.to(x.dtype), padding=(0, 1, 1))  # (B, c, T, H, W)
        h = F.silu(torch.addcmul(b1, h, 1 + s1), inplace=quick).view(B, h.shape[1], -1)  # (B, c, N)
        # the mix layer and the second modulation in one product: (1 + s2) (W h + b) + b2
        s2, b2 = s2.view(B, -1, 1), b2.view(B, -1, 1)
        mix_w = (1 + s2) * self.mix.weight.to(h.dtype)  # (B, c, c)
        g = F.silu(torch.baddbmm((1 + s2) * self.mix.bias.to(h.dtype)[:, None] + b2, mix_w, h), inplace=quick)
        heads = [self.out] + ([self.gate] if self.gate is not None and layout is not None else [])
        w_out = torch.cat([m.weight for m in heads]).to(g.dtype)  # the output's 3 channels (and the copy gate's logit)
        b_out = torch.cat([m.bias for m in heads]).to(g.dtype)
        y = torch.matmul(w_out, g).add_(b_out[:, None])  # (B, 3 (+1), N); in place either way: the product's backward needs only its inputs
        y = y.view(B, -1, T, H, W)
        out = estimate + y[:, :3]  # (B, 3, T, H, W)
        if len(heads) > 1:
            lay = layout.to(out.dtype)
            a = torch.sigmoid(y[:, 3:]) * lay[:, :1]  # (B, 1, T, H, W): 0 outside silhouettes
            out = out + a * (lay[:, 1:4] - out)
        on = on.to(out.dtype).view(B, 1, 1, 1, 1)
        return estimate + (out - estimate) * on


class WorldNet(nn.Module):
    def __init__(self, cfg: WorldNetConfig):
        super().__init__()
        if cfg.precond not in ("x", "skip"):
            raise ValueError(f"precond must be 'x' or 'skip'. Got {cfg.precond!r}.")
        if cfg.detail and cfg.video_channels != 3:
            raise ValueError("a detail head works on pixels: detail must be 0 when video_channels is not 3.")
        self.cfg = cfg
        pt, ph, pw = cfg.patch
        c0 = cfg.channels[0]
        vc = cfg.video_channels
        self.v_in = nn.Conv3d((2 * vc + 1 + cfg.layout) * pt * ph * pw, c0, 1)  # noisy video + context + mask (+ layout), per patch
        a_per_step = cfg.env_per_frame * pt
        self.a_in = nn.Conv1d((2 * cfg.audio_bands + 1 + cfg.cues) * a_per_step, c0, 1)  # noisy sound + context + mask (+ cues), per step
        self.text = TextEncoderHead(cfg)
        self.t_mlp = nn.Sequential(nn.Linear(cfg.cond_dim, cfg.cond_dim), nn.SiLU(), nn.Linear(cfg.cond_dim, cfg.cond_dim))
        self.down = nn.ModuleList()
        self.down_v = nn.ModuleList()
        self.down_a = nn.ModuleList()
        self.xattn_down = nn.ModuleDict()
        chans = []
        c_prev = c0
        for lvl, (c, n) in enumerate(zip(cfg.channels, cfg.blocks)):
            blocks = nn.ModuleList()
            for _ in range(n):
                blocks.append(ResBlock(c_prev, c, cfg.cond_dim))
                c_prev = c
            self.down.append(blocks)
            chans.append(c)
            if lvl >= cfg.xattn_from:
                self.xattn_down[str(lvl)] = CrossAttention(c, cfg.cond_dim, cfg.heads)
            if lvl < len(cfg.channels) - 1:
                self.down_v.append(nn.Conv3d(c, c, (2, 2, 2), stride=(2, 2, 2)))
                self.down_a.append(nn.Conv1d(c, c, 2, stride=2))
        self.mid_attn = JointAttention(c_prev, cfg.heads)
        self.mid_block = ResBlock(c_prev, c_prev, cfg.cond_dim)
        self.up = nn.ModuleList()
        self.up_v = nn.ModuleList()
        self.up_a = nn.ModuleList()
        self.xattn_up = nn.ModuleDict()
        for lvl in reversed(range(len(cfg.channels))):
            c = chans[lvl]
            self.up.append(ResBlock(c_prev + c, c, cfg.cond_dim))
            c_prev = c
            if lvl >= cfg.xattn_from:
                self.xattn_up[str(lvl)] = CrossAttention(c, cfg.cond_dim, cfg.heads)
            if lvl >= 1:
                c_next = chans[lvl - 1]
                self.up_v.append(nn.Conv3d(c, c_next, (1, 3, 3), padding=(0, 1, 1)))
                self.up_a.append(nn.Conv1d(c, c_next, 3, padding=1))
                c_prev = c_next
        self.v_out_norm = group_norm(c0)
        self.v_out = nn.Conv3d(c0, vc * pt * ph * pw, 1)
        self.a_out_norm = group_norm(c0)
        self.a_out = nn.Conv1d(c0, cfg.audio_bands * a_per_step, 1)
        # a learned input scale per flow time, for video and audio: at t near 0 the input is noise
        # and the best data estimate ignores it, which convolutions fed through residual paths find
        # hard to learn on their own (registered last so the other weights draw the same numbers)
        self.in_gate = nn.Linear(cfg.cond_dim, 2)
        # where in the frame a patch is: from pure noise, "sky above, ground below" needs it, and
        # zero-padded convolutions only sense it near the borders
        self.pos = nn.Linear(4 * POS_FREQS, c0)
        self.detail = DetailHead(cfg.detail, cfg.cond_dim, cfg.layout, cfg.detail_from, cfg.copy) if cfg.detail else None
        # a contact's sound from its cue, added to the sound's data estimate: a learned impulse
        # response per cue channel and band, from CUE_LEAD steps before the cue to CUE_TAIL after
        # it (a contact lies within half a frame of its cue's step, and its sound decays in about
        # a quarter second). The path from the cue to the sound is then as short as it can be;
        # through the input alone, 900 steps left the cues' weights at a fortieth of the rest
        self.cue_head = nn.Conv1d(cfg.cues, cfg.audio_bands, CUE_LEAD + CUE_TAIL + 1) if cfg.cues else None
        # the scene's settings as labels, into the blocks' conditioning and the detail head's
        self.settings_in = nn.Linear(cfg.settings, cfg.cond_dim) if cfg.settings else None
        self.settings_detail = nn.Linear(cfg.settings, cfg.cond_dim) if cfg.settings and cfg.detail else None
        self.initialize_weights()

    def initialize_weights(self):
        # Outputs and adaLN modulations start at zero: each block begins as the identity and the
        # net first predicts zero velocity, which keeps early flow-matching steps stable (DiT).
        for m in self.modules():
            if isinstance(m, (nn.Conv3d, nn.Conv2d, nn.Conv1d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight.view(m.weight.shape[0], -1))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, ResBlock):
                nn.init.zeros_(m.mod.weight)
                nn.init.zeros_(m.mod.bias)
            if isinstance(m, (CrossAttention, JointAttention)):
                nn.init.zeros_(m.out.weight)
        for m in (self.v_out, self.a_out, self.in_gate, self.pos, self.cue_head, self.settings_in, self.settings_detail):  # in_gate at zero: the gate starts open (1)
            if m is None:
                continue
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)
        if self.detail is not None:  # the identity at first; t modulation starts at none
            for m in (self.detail.out, self.detail.mod[2]) + ((self.detail.gate,) if self.detail.gate is not None else ()):
                nn.init.zeros_(m.weight)
                nn.init.zeros_(m.bias)

    # --- patches -------------------------------------------------------------------------------
    def unpatchify(self, x: torch.Tensor, C: int) -> torch.Tensor:
        B, _, Tp, Hp, Wp = x.shape
        pt, ph, pw = self.cfg.patch
        x = x.view(B, C, pt, ph, pw, Tp, Hp, Wp).permute(0, 1, 5, 2, 6, 3, 7, 4)  # (B, C, T', pt, H', ph, W', pw)
        return x.reshape(B, C, Tp * pt, Hp * ph, Wp * pw)

    def audio_steps(self, a: torch.Tensor) -> torch.Tensor:
        B, A, S = a.shape
        k = self.cfg.env_per_frame * self.cfg.patch[0]
        return a.view(B, A, S // k, k).permute(0, 1, 3, 2).reshape(B, A * k, S // k)  # (B, A*k, T')

    def audio_unsteps(self, a: torch.Tensor, A: int) -> torch.Tensor:
        B, _, Tp = a.shape
        k = self.cfg.env_per_frame * self.cfg.patch[0]
        return a.view(B, A, k, Tp).permute(0, 1, 3, 2).reshape(B, A, Tp * k)

    def video_context(self, ctx_video: torch.Tensor, ctx_mask: torch.Tensor, layout: torch.Tensor | None = None) -> torch.Tensor:
        """The part of the video's patch embedding that stays the same over a sampling run: the
        input layer's response to the context frames, their mask and the layout's maps, with its
        bias and each patch's position. (B, c0, T', H', W'); `forward` takes it as `context`, so a
        sampler computes it once per window instead of at every step (the input layer is linear,
        so its response to the noisy video is simply added)."""
        B, _, T, H, W = ctx_video.shape
        if ctx_video.shape[1] != self.cfg.video_channels or ctx_mask.shape != (B, 1, T):
            raise ValueError(f"ctx_video must have {self.cfg.video_channels} channels and ctx_mask shape (B, 1, T). Got {tuple(ctx_video.shape)} and {tuple(ctx_mask.shape)}.")
        m_v = ctx_mask[:, :, :, None, None].expand(B, 1, T, H, W).to(ctx_video.dtype)
        parts = [ctx_video * m_v, m_v]
        layout = _extra_input(layout, (B, self.cfg.layout, T, H, W), ctx_video, "layout", "layout")
        if layout is not None:
            parts.append(layout)
        w = self._patch_weight()[:, self.cfg.video_channels :]
        v = F.conv3d(torch.cat(parts, dim=1), w.to(ctx_video.dtype), self.v_in.bias.to(ctx_video.dtype), stride=self.cfg.patch)
        pos = self.pos(coord_features(v.shape[3], v.shape[4], v.device).to(v.dtype))  # (H', W', c0)
        return v + pos.permute(2, 0, 1)[None, :, None]

    def _patch_weight(self) -> torch.Tensor:
        """v_in's weights as a convolution over whole patches (c0, C_in, pt, ph, pw): cutting the
        clip into patches as channels, then a 1x1 convolution, is a convolution with the patch as
        its kernel and its stride."""
        pt, ph, pw = self.cfg.patch
        return self.v_in.weight.view(self.v_in.out_channels, -1, pt, ph, pw)

    # --- forward -------------------------------------------------------------------------------
    def forward(self, video, audio, t, text_tokens, text_mask, ctx_video, ctx_audio, ctx_mask, refine: bool = True, layout=None, cues=None, settings=None, context=None):
        """Clean-data predictions for video (B,3,T,H,W) and audio (B,A,T*E) at flow time t (B,).
        refine=False leaves out the detail head (a sampler applies it once to a guided estimate).
        layout: (B, cfg.layout, T, H, W) maps of the objects to draw (world/layout.py), or None.
        cues: (B, cfg.cues, T*E) the layout's sound cues (world/layout.py `cues`), or None (none).
        settings: (P, cfg.settings) the scene's settings one-hot (world_parse.settings_vector), or
        None (none given, as all zeros). context: `video_context(ctx_video, ctx_mask, layout)`
        where the caller keeps it over calls (else it is computed here).
        The text (and settings) may have a batch P larger than B = 1: the clip is then embedded
        once and read with each of the P prompts (classifier-free guidance's pair), and the
        outputs have batch P."""
        B, _, T, H, W = video.shape
        P = text_tokens.shape[0]
        x_t_video, x_t_audio = video, audio
        if B not in (1, P):
            raise ValueError(f"video must have the batch of text_tokens ({P}) or 1. Got {B}.")
        if t.shape != (B,):
            raise ValueError(f"t must have shape [batch_size]. Got {tuple(t.shape)}.")
        if ctx_video.shape != video.shape:
            raise ValueError(f"ctx_video must have the shape of video {tuple(video.shape)}. Got {tuple(ctx_video.shape)}.")
        pt, ph, pw = self.cfg.patch
        k = 2 ** (len(self.cfg.channels) - 1)  # each level below the first halves the patch grid
        if video.shape[1] != self.cfg.video_channels or T % (pt * k) or H % (ph * k) or W % (pw * k):
            raise ValueError(f"video must have {self.cfg.video_channels} channels, T % {pt * k} == 0, H % {ph * k} == 0, W % {pw * k} == 0. Got {tuple(video.shape)}.")
        layout = _extra_input(layout, (B, self.cfg.layout, T, H, W), video, "layout", "layout")
        if context is None:
            context = self.video_context(ctx_video, ctx_mask, layout)
        elif context.shape != (B, self.cfg.channels[0], T // pt, H // ph, W // pw):
            raise ValueError(f"context must have shape {(B, self.cfg.channels[0], T // pt, H // ph, W // pw)} (video_context). Got {tuple(context.shape)}.")
        # unit-variance inputs at every t (EDM's c_in), for data of std ~0.5 and unit noise
        c_in = input_scale(t).to(video.dtype)  # (B,)
        gate = 1 + self.in_gate(timestep_embedding(t, self.cfg.cond_dim)).to(video.dtype)  # (B, 2)
        scaled = video * (c_in * gate[:, 0]).view(B, 1, 1, 1, 1)
        v = F.conv3d(scaled, self._patch_weight()[:, : self.cfg.video_channels].to(video.dtype), None, stride=self.cfg.patch) + context.to(video.dtype)  # (B, c0, T', H', W')
        audio = audio * (c_in * gate[:, 1]).view(B, 1, 1)
        m_a = ctx_mask.repeat_interleave(self.cfg.env_per_frame, dim=2)  # (B, 1, T*E)
        cues = _extra_input(cues, (B, self.cfg.cues, audio.shape[2]), audio, "cues", "sound cues")
        a_parts = [audio, ctx_audio * m_a, m_a] + ([cues] if cues is not None else [])
        a = self.a_in(self.audio_steps(torch.cat(a_parts, dim=1)))  # (B, c0, T')
        if B < P:  # one clip, read with each prompt
            v, a, t = v.expand(P, *v.shape[1:]), a.expand(P, *a.shape[1:]), t.expand(P)
            x_t_video, x_t_audio = x_t_video.expand(P, *video.shape[1:]), x_t_audio.expand(P, *x_t_audio.shape[1:])
            layout = layout.expand(P, *layout.shape[1:]) if layout is not None else None
        B = P
        text, pooled = self.text(text_tokens, text_mask)  # (B, L, D), (B, D)
        settings = _extra_input(settings, (B, self.cfg.settings), pooled, "settings", "settings")
        emb = timestep_embedding(t, self.cfg.cond_dim) + pooled
        if settings is not None:
            emb = emb + self.settings_in(settings)
        cond = self.t_mlp(emb)  # (B, D)
        skips = []
        for lvl, blocks in enumerate(self.down):
            for blk in blocks:
                v, a = blk(v, a, cond)
            if str(lvl) in self.xattn_down:
                v = self.xattn_down[str(lvl)](v, text, text_mask)
            skips.append((v, a))
            if lvl < len(self.down_v):
                v, a = self.down_v[lvl](v), self.down_a[lvl](a)
        v, a = self.mid_attn(v, a)
        v, a = self.mid_block(v, a, cond)
        for i, blk in enumerate(self.up):
            lvl = len(self.down) - 1 - i
            sv, sa = skips[lvl]
            v, a = blk(torch.cat([v, sv], 1), torch.cat([a, sa], 1), cond)
            if str(lvl) in self.xattn_up:
                v = self.xattn_up[str(lvl)](v, text, text_mask)
            if lvl >= 1:
                # nearest upsampling in time, then a convolution one frame deep: the same as the
                # convolution on the coarse frames, each output frame repeated (half the work)
                v = self.up_v[i](F.interpolate(v, scale_factor=(1, 2, 2), mode="nearest")).repeat_interleave(2, dim=2)
                a = self.up_a[i](F.interpolate(a, scale_factor=2, mode="nearest"))
        v = self.unpatchify(self.v_out(F.silu(self.v_out_norm(v))), self.cfg.video_channels)
        a = self.audio_unsteps(self.a_out(F.silu(self.a_out_norm(a))), self.cfg.audio_bands)
        if self.cue_head is not None:
            a = a + self.cue_head(F.pad(cues.to(a.dtype), (CUE_TAIL, CUE_LEAD)))  # out[s] reads cues[s - CUE_TAIL .. s + CUE_LEAD]
        if self.cfg.precond == "skip":
            c_skip, c_out = (c.to(v.dtype) for c in skip_scales(t.float()))
            v = c_skip.view(B, 1, 1, 1, 1) * x_t_video + c_out.view(B, 1, 1, 1, 1) * v
            a = c_skip.view(B, 1, 1) * x_t_audio + c_out.view(B, 1, 1) * a
        if refine:
            v = self.refine(v, x_t_video, t, layout, settings)
        return v, a

    def refine(self, estimate: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, layout: torch.Tensor | None = None, settings: torch.Tensor | None = None) -> torch.Tensor:
        """The detail head's correction of a video data estimate at x_t, t (the estimate unchanged
        without a head), given the layout's maps where the network is layout-guided and the
        scene's settings where it reads them."""
        if self.detail is None:
            return estimate
        cond = None
        if self.settings_detail is not None:  # none given reads as all zeros, as in training
            settings = settings if settings is not None else estimate.new_zeros(estimate.shape[0], self.cfg.settings)
            cond = self.settings_detail(settings.to(estimate.dtype))
        return self.detail(estimate, x_t, t, layout, cond)


def _extra_input(x: torch.Tensor | None, shape: tuple, like: torch.Tensor, field: str, what: str) -> torch.Tensor | None:
    """An optional input the config gives shape[1] channels for (`field`: layout, cues): x in
    like's dtype, zeros where it is not given, None where the config has none."""
    if not shape[1]:
        if x is not None:
            raise ValueError(f"this network takes no {what} (its config has {field}=0).")
        return None
    if x is None:
        return like.new_zeros(shape)
    if x.shape != shape:
        raise ValueError(f"{field} must have shape {shape}. Got {tuple(x.shape)}.")
    return x.to(like.dtype)


LATER_KEYS = ("in_gate.", "pos.", "text.norm.", "detail.", "cue_head.", "settings_in.", "settings_detail.")  # parameters added after weights were first shipped; they start at their init


def load_module(path, build: Callable[[dict], nn.Module]) -> nn.Module:
    """A small world model (the planner, a prompt parser, WorldFoley) from a safetensors file whose
    metadata holds its config: build(config dict) makes it, its weights are loaded as float32,
    and it is returned in eval mode."""
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    net = build(json.loads(meta["config"]))
    net.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
    return net.eval()


def load_weights(net: WorldNet, state: dict[str, torch.Tensor]) -> list[str]:
    """Load `state` into `net`, allowing only parameters added since (LATER_KEYS) to be missing;
    returns the names that kept their initial values. Weights of a network without layout
    channels start a layout-guided one, and weights without sound cues one that reads them: the
    new inputs' weights start at zero."""
    pt = net.cfg.patch[0]
    for name, added in (("v_in.weight", net.cfg.layout * math.prod(net.cfg.patch)), ("a_in.weight", net.cfg.cues * net.cfg.env_per_frame * pt)):
        w, own = state.get(name), dict(net.named_parameters())[name]
        if w is not None and added and w.shape[1] < own.shape[1]:
            if own.shape[1] - w.shape[1] != added:
                raise ValueError(f"weights do not fit WorldNet: {name.split('.')[0]} takes {w.shape[1]} inputs, this network {own.shape[1]}")
            state = {**state, name: torch.cat([w, w.new_zeros(w.shape[0], added, *w.shape[2:])], dim=1)}
    missing, unexpected = net.load_state_dict(state, strict=False)
    bad = [k for k in missing if not k.startswith(LATER_KEYS)]
    if bad or unexpected:
        raise ValueError(f"weights do not fit WorldNet: missing {bad}, unexpected {unexpected}")
    return list(missing)
