"""The latent world model at tiny size: FrameAE (shapes, save and load, training resume), WorldNet
over latents (shapes, a warm start from a pixel model's trunk, training), and WorldModel sampling
through the autoencoder in every mode."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vitascope.models import world_ae
from vitascope.models.base import GenerationRequest
from vitascope.models.world import WorldModel
from vitascope.models.world_ae import FrameAE, FrameAE_configs
from vitascope.models.world_net import WorldNet, WorldNet_configs
from vitascope.train.world import TrainConfig, export_weights, load_trunk, train
from vitascope.train.world_ae import AEConfig, calibrate
from vitascope.train.world_ae import train as train_ae


def test_autoencoder_shapes_any_aspect_and_bad_sizes():
    ae = FrameAE(FrameAE_configs["ae-tiny"]).eval()
    for H, W in ((64, 112), (112, 64), (64, 64)):
        x = torch.rand(1, 3, 5, H, W) * 2 - 1
        z = ae.encode(x)
        assert z.shape == (1, 4, 5, H // 8, W // 8)
        assert ae.decode(z).shape == x.shape
    with pytest.raises(ValueError, match="divisible by 8. Got 60x112"):
        ae.encode_frames(torch.zeros(1, 3, 60, 112))


def test_autoencoder_trains_resumes_and_round_trips(tmp_path):
    cfg = AEConfig(model="ae-tiny", clips=1, frames=2, scale=2, save_every=2, log_every=1, steps=2)
    train_ae(cfg, tmp_path / "run")
    cfg.steps = 3
    ae = train_ae(cfg, tmp_path / "run")
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]  # the second call went on from the checkpoint of step 2
    spread = calibrate(ae, cfg, batches=1)
    assert spread > 0 and float(ae.scale) == pytest.approx(0.5 / spread)
    path = tmp_path / "ae.safetensors"
    world_ae.save(ae, path, step=3)
    back = world_ae.load(path)
    x = torch.rand(1, 3, 2, 32, 56) * 2 - 1
    assert float(back.scale) == pytest.approx(float(ae.scale), rel=1e-6)
    with torch.no_grad():
        assert torch.allclose(back.encode(x), ae.encode(x), atol=0.05 * float(ae.encode(x).abs().max()))
    with pytest.raises(FileNotFoundError, match="autoencoder weights not found"):
        world_ae.load(tmp_path / "missing.safetensors")


def test_decoder_alone_trains_from_exported_weights_and_keeps_the_latents(tmp_path):
    cfg = AEConfig(model="ae-tiny", clips=1, frames=2, scale=2, steps=2)
    ae = train_ae(cfg, tmp_path / "first")
    calibrate(ae, cfg, batches=1)
    src = tmp_path / "ae.safetensors"
    world_ae.save(ae, src, step=2)
    before = world_ae.load(src)
    tuned = train_ae(AEConfig(clips=1, frames=2, scale=2, steps=4, lr=1e-2, init_from=str(src), decoder_only=True, log_every=1), tmp_path / "dec")
    steps = [json.loads(line)["step"] for line in (tmp_path / "dec" / "log.jsonl").read_text().splitlines()]
    assert steps == [3, 4]  # steps go on from the source's
    x = torch.rand(1, 3, 2, 32, 56) * 2 - 1
    with torch.no_grad():
        assert torch.equal(tuned.encode(x), before.encode(x))  # the latent space is untouched
        assert float(tuned.scale) == float(before.scale)
        z = before.encode(x)
        assert not torch.allclose(tuned.decode(z), before.decode(z))  # the decoder trained
    with pytest.raises(ValueError, match="init_from: no such file"):
        AEConfig(init_from=str(tmp_path / "missing.safetensors"))


def _latent_inputs(B=2, T=16, h=4, w=6):
    cfg = WorldNet_configs["world-tiny-latent"]
    g = torch.Generator().manual_seed(0)
    C = cfg.video_channels
    return dict(
        video=torch.randn(B, C, T, h, w, generator=g),
        audio=torch.randn(B, cfg.audio_bands, T * cfg.env_per_frame, generator=g),
        t=torch.rand(B, generator=g),
        text_tokens=torch.randn(B, 5, cfg.text_dim, generator=g),
        text_mask=torch.ones(B, 5, dtype=torch.bool),
        ctx_video=torch.zeros(B, C, T, h, w),
        ctx_audio=torch.zeros(B, cfg.audio_bands, T * cfg.env_per_frame),
        ctx_mask=torch.zeros(B, 1, T),
    )


def test_latent_net_shapes_and_bad_channels():
    torch.manual_seed(0)
    net = WorldNet(WorldNet_configs["world-tiny-latent"]).eval()
    x = _latent_inputs()
    v, a = net(**x)
    assert v.shape == x["video"].shape and a.shape == x["audio"].shape
    x["video"] = torch.zeros(2, 3, 16, 4, 6)
    x["ctx_video"] = x["video"]
    with pytest.raises(ValueError, match="must have 4 channels"):
        net(**x)


def test_trunk_of_a_pixel_model_starts_a_latent_model(tmp_path):
    run = tmp_path / "pixel"
    train(run, TrainConfig(model="world-tiny", steps=1, batch=1, seconds=4 / 3))
    path = export_weights(run, tmp_path / "pixel.safetensors", dtype=torch.float32)
    from safetensors.torch import load_file

    src = load_file(str(path))
    net = WorldNet(WorldNet_configs["world-tiny-latent"])
    names = load_trunk(net, path)
    own = net.state_dict()
    # the coarse level, the middle, the text pathway come over; the first level and the ends do not
    assert torch.equal(own["mid_attn.qkv.weight"], src["mid_attn.qkv.weight"])
    assert torch.equal(own["down.1.0.conv_s.weight"], src["down.2.0.conv_s.weight"])
    assert torch.equal(own["xattn_down.0.q.weight"], src["xattn_down.1.q.weight"])
    assert "text.proj.weight" in names and not any(n.startswith(("v_in.", "v_out.", "pos.")) for n in names)


def test_latent_model_trains_and_samples_in_every_mode(tmp_path):
    run = tmp_path / "run"
    last = train(run, TrainConfig(model="world-tiny-latent", steps=2, batch=1, seconds=2.0, save_every=1))
    assert last["step"] == 2 and np.isfinite(last["loss"])
    path = export_weights(run, tmp_path / "w.safetensors")
    m = WorldModel.from_file("t", path, steps=2, guidance=2.0)
    assert m.ae is not None
    req = GenerationRequest(prompt="two red balls bouncing", seconds=1, width=640, height=360, seed=3)
    r1, r2 = m.generate(req, lambda f: None), m.generate(req, lambda f: None)
    assert r1.frames.shape == (12, 64, 112, 3) and r1.frames.dtype == np.uint8 and len(r1.audio) == 16000
    assert np.array_equal(r1.frames, r2.frames)  # a seed reproduces bit for bit
    img = np.full((50, 90, 3), (220, 40, 40), np.uint8)  # the wrong size: fitted
    i2v = m.generate(GenerationRequest(prompt="a red box", seconds=1, width=720, height=1280, seed=1, image=img), lambda f: None)
    assert i2v.frames.shape == (12, 112, 64, 3)
    ext = m.generate(GenerationRequest(prompt="more", seconds=5, width=640, height=360, seed=2, mode="extend", video=r1.frames, video_fps=12, audio=r1.audio, audio_rate=16000), lambda f: None)
    assert ext.frames.shape[0] == 72 and np.array_equal(ext.frames[:12], r1.frames)
    remix = m.generate(GenerationRequest(prompt="a blue cone", seconds=1, width=640, height=360, seed=4, mode="remix", video=r1.frames, video_fps=12, audio=r1.audio, audio_rate=16000, strength=0.5), lambda f: None)
    assert remix.frames.shape == r1.frames.shape


def test_cli_trains_an_autoencoder_then_a_latent_model_on_it(tmp_path):
    from conftest import cli

    ae = tmp_path / "ae.safetensors"
    r = cli(tmp_path, "train-ae", "--run", str(tmp_path / "ae"), "--model", "ae-tiny", "--steps", "2", "--clips", "1", "--frames", "2", "--export", str(ae))
    assert "stopped at step 2" in r.stdout and ae.exists()
    assert world_ae.load(ae).cfg.latent == 4
    r = cli(tmp_path, "train", "--run", str(tmp_path / "lat"), "--model", "world-tiny-latent", "--autoencoder", str(ae), "--steps", "1", "--batch", "1")
    assert "stopped at step 1" in r.stdout
    tuned = tmp_path / "ae-dec.safetensors"
    r = cli(tmp_path, "train-ae", "--run", str(tmp_path / "dec"), "--init-from", str(ae), "--decoder-only", "--steps", "3", "--clips", "1", "--frames", "2", "--export", str(tuned))
    assert "stopped at step 3" in r.stdout
    assert float(world_ae.load(tuned).scale) == float(world_ae.load(ae).scale)  # not calibrated again
    bad = cli(tmp_path, "train-ae", "--model", "ae-huge", check=False)
    assert bad.returncode != 0 and "model must be one of" in bad.stdout + bad.stderr
