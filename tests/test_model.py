"""WorldNet at tiny size: shapes, a fixed-seed golden slice, save and load, training resume, sampling."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from vitascope.models import flow
from vitascope.models.base import GenerationRequest
from vitascope.models.world import WorldModel, _plan
from vitascope.models.world_net import WorldNet, WorldNet_configs
from vitascope.train.world import TrainConfig, export_weights, train


def _inputs(B=2, T=16, H=32, W=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    cfg = WorldNet_configs["world-tiny"]
    return dict(
        video=torch.randn(B, 3, T, H, W, generator=g),
        audio=torch.randn(B, cfg.audio_bands, T * cfg.env_per_frame, generator=g),
        t=torch.rand(B, generator=g),
        text_tokens=torch.randn(B, 5, cfg.text_dim, generator=g),
        text_mask=torch.ones(B, 5, dtype=torch.bool),
        ctx_video=torch.zeros(B, 3, T, H, W),
        ctx_audio=torch.zeros(B, cfg.audio_bands, T * cfg.env_per_frame),
        ctx_mask=torch.zeros(B, 1, T),
    )


def _perturbed_net(seed=0, scale=0.02):
    torch.manual_seed(seed)
    net = WorldNet(WorldNet_configs["world-tiny"])
    with torch.no_grad():  # zero-initialised outputs would make every output 0: wake them up
        for p in net.parameters():
            p.add_(scale * torch.randn_like(p))
    return net.eval()


def test_shapes_any_aspect():
    net = _perturbed_net()
    for H, W in ((32, 48), (48, 32), (32, 32)):
        x = _inputs(H=H, W=W)
        v, a = net(**x)
        assert v.shape == x["video"].shape and a.shape == x["audio"].shape


def test_one_clip_read_with_two_prompts_matches_the_clip_repeated():
    """Classifier-free guidance's pair: a clip of batch 1 read with P prompts, its input embedding
    (and a context computed once, `video_context`) shared, gives what the clip repeated P times gives."""
    torch.manual_seed(0)
    cfg = WorldNet_configs["world-tiny-layout-settings"]
    net = WorldNet(cfg)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.02 * torch.randn_like(p))
    net.eval()
    x = _inputs(B=1)
    x["ctx_mask"][:, :, :4] = 1
    x["ctx_video"] = torch.randn_like(x["video"])
    lay = torch.rand(1, cfg.layout, 16, 32, 48)
    tokens, mask = torch.randn(2, 5, cfg.text_dim), torch.ones(2, 5, dtype=torch.bool)
    settings = torch.rand(2, cfg.settings)
    two = {k: torch.cat([v, v]) for k, v in x.items() if k not in ("text_tokens", "text_mask")}
    with torch.no_grad():
        v2, a2 = net(**two, text_tokens=tokens, text_mask=mask, layout=torch.cat([lay, lay]), settings=settings)
        shared = {k: v for k, v in x.items() if k not in ("text_tokens", "text_mask")}
        v1, a1 = net(**shared, text_tokens=tokens, text_mask=mask, layout=lay, settings=settings)
        ctx = net.video_context(x["ctx_video"], x["ctx_mask"], lay)
        vc, ac = net(**shared, text_tokens=tokens, text_mask=mask, layout=lay, settings=settings, context=ctx)
    assert v1.shape == v2.shape == (2, 3, 16, 32, 48) and a1.shape == a2.shape
    assert torch.allclose(v1, v2, atol=1e-5) and torch.allclose(a1, a2, atol=1e-5)
    assert torch.equal(v1, vc) and torch.equal(a1, ac)
    assert not torch.allclose(v1[0], v1[1], atol=1e-4)  # the two prompts are read apart
    with pytest.raises(ValueError, match="context must have shape"):
        net(**shared, text_tokens=tokens, text_mask=mask, layout=lay, settings=settings, context=ctx[..., :-1])
    with pytest.raises(ValueError, match="batch of text_tokens"):
        net(**{k: torch.cat([v, v, v]) for k, v in shared.items()}, text_tokens=tokens, text_mask=mask, layout=lay, settings=settings)


def test_detail_head_is_the_same_with_and_without_gradients():
    """The head works in place where no gradient is kept; training (gradients kept) computes the same."""
    torch.manual_seed(1)
    cfg = WorldNet_configs["world-tiny-layout-copy"]
    net = WorldNet(cfg)
    with torch.no_grad():
        for p in net.detail.parameters():
            p.add_(0.1 * torch.randn_like(p))
    est, x_t = torch.randn(2, 3, 4, 16, 24), torch.randn(2, 3, 4, 16, 24)
    lay, t = torch.rand(2, cfg.layout, 4, 16, 24), torch.tensor([0.3, 0.8])
    with torch.no_grad():
        quick = net.refine(est, x_t, t, lay)
    kept = net.refine(est, x_t, t, lay)
    assert torch.allclose(quick, kept, atol=1e-6) and not torch.allclose(kept, est, atol=1e-3)
    kept.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in (net.detail.conv.weight, net.detail.mix.weight, net.detail.out.weight, net.detail.gate.weight))


def test_bad_shapes_say_what_was_received():
    net = _perturbed_net()
    x = _inputs()
    x["video"] = x["video"][:, :, :, :30]
    with pytest.raises(ValueError, match="Got"):
        net(**x)
    x = _inputs()
    x["t"] = x["t"][:1]
    with pytest.raises(ValueError, match="t must have shape"):
        net(**x)


def test_golden_slice():
    net = _perturbed_net(0)
    with torch.no_grad():
        v, a = net(**_inputs(seed=1))
    got = [round(float(x), 4) for x in v[0, 0, 0, 0, :4]] + [round(float(x), 4) for x in a[0, 0, :2]]
    golden = json.loads((__import__("pathlib").Path(__file__).parent / "golden_worldnet.json").read_text())
    assert np.allclose(got, golden, atol=2e-3), got


def test_context_frames_change_the_output():
    net = _perturbed_net()
    x = _inputs()
    v0, _ = net(**x)
    x["ctx_mask"][:, :, :4] = 1
    x["ctx_video"] = torch.ones_like(x["ctx_video"])
    v1, _ = net(**x)
    assert not torch.allclose(v0, v1)


def test_flow_integrates_a_known_velocity_exactly():
    # a constant velocity field data - noise carries noise to data exactly, on any grid
    data, noise = torch.randn(1, 3, 4, 4, 4), torch.randn(1, 3, 4, 4, 4)
    a_data, a_noise = torch.randn(1, 2, 8), torch.randn(1, 2, 8)
    out = flow.integrate(lambda v, a, t: (data - noise, a_data - a_noise), noise, a_noise, flow.time_grid(7))
    assert torch.allclose(out.video, data, atol=1e-5) and torch.allclose(out.audio, a_data, atol=1e-5)
    g = flow.time_grid(10, shift=3.0)
    assert g[0] == 0 and abs(float(g[-1]) - 1) < 1e-6 and (g[1:] > g[:-1]).all()
    assert abs(float(g[1]) - 0.1 / (0.1 + 3.0 * 0.9)) < 1e-6 and float(g[1]) < 0.1  # shifted towards the noise


def test_stochastic_steps_renew_noise_and_still_land_on_the_data():
    # a velocity that knows the data (x_hat = data at every step) lands on it with fresh noise too
    data, noise = torch.randn(1, 3, 4, 4, 4), torch.randn(1, 3, 4, 4, 4)
    a_data, a_noise = torch.randn(1, 2, 8), torch.randn(1, 2, 8)
    seen = []

    def v(x, a, t):
        seen.append(x.clone())
        return flow.velocity(data, x, t), flow.velocity(a_data, a, t)

    grid = flow.time_grid(6)
    out = flow.integrate(v, noise, a_noise, grid, eta=0.7, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(out.video, data, atol=1e-5) and torch.allclose(out.audio, a_data, atol=1e-5)
    # the path differs from the ODE's: after one step x is no longer on the straight line
    t1 = float(grid[1])
    assert not torch.allclose(seen[1], t1 * data + (1 - t1) * noise, atol=1e-3)
    with pytest.raises(ValueError, match="eta"):
        flow.integrate(v, noise, a_noise, grid, eta=1.5)


def test_guidance_interval_and_sampler_settings():
    req = GenerationRequest(prompt="a red box on the sand", seconds=1, width=640, height=360, seed=2)
    net = _perturbed_net(4, scale=0.05)  # one network under every sampler below; clips with visible structure
    plain = WorldModel("t", net, steps=3, guidance=1.0)
    empty_interval = WorldModel("t", net, steps=3, guidance=5.0, guidance_interval=(0.0, 0.0))
    guided = WorldModel("t", net, steps=3, guidance=5.0)
    a, b, c = (m.generate(req, lambda f: None) for m in (plain, empty_interval, guided))
    assert np.array_equal(a.frames, b.frames)  # guidance applied nowhere is the prompt alone
    assert not np.array_equal(a.frames, c.frames)
    s1 = WorldModel("t", net, steps=3, guidance=1.0, eta=0.5)
    r1, r2 = s1.generate(req, lambda f: None), s1.generate(req, lambda f: None)
    assert np.array_equal(r1.frames, r2.frames) and not np.array_equal(r1.frames, a.frames)  # stochastic, yet a seed reproduces
    with pytest.raises(ValueError, match="guidance_interval"):
        WorldModel.random("t", "world-tiny", guidance_interval=(0.8, 0.2))
    out = {}
    for bf16 in (True, False):  # the network under bfloat16 autocast or not; the flow stays float32
        m = WorldModel("t", net, steps=3, guidance=5.0, bf16=bf16)
        out[bf16] = m.generate(req, lambda f: None)
        assert np.array_equal(out[bf16].frames, m.generate(req, lambda f: None).frames) and out[bf16].audio.dtype == np.float32
    diff = np.abs(out[True].frames.astype(int) - out[False].frames.astype(int))
    assert diff.mean() < 3 and (out[False].frames.std() > 10)  # bfloat16 rounds, it does not draw another clip


def test_windows_plan_covers_the_clip():
    assert _plan(0, 48) == [(0, 48)]
    assert _plan(0, 96) == [(0, 48), (48, 36), (84, 12)]
    assert _plan(48, 96) == [(48, 36), (84, 12)]
    assert sum(n for _, n in _plan(0, 240)) == 240


def _tiny_cfg(**kw):
    return TrainConfig(**{"model": "world-tiny", "batch": 2, "seconds": 4 / 3, "scale": 1, "save_every": 2, "log_every": 1, "warmup": 1, **kw})


def test_context_shares_decide_which_training_clips_give_frames():
    from vitascope.train.world import simulate_batch

    image = simulate_batch(_tiny_cfg(batch=4, image_share=1.0, extend_share=0.0), step=0).ctx
    assert image[:, 0].eq(1).all() and image[:, 1:].eq(0).all()  # image-to-video: the first frame only
    extend = simulate_batch(_tiny_cfg(batch=4, image_share=0.0, extend_share=1.0), step=0).ctx
    assert extend[:, :4].eq(1).all() and extend.sum(1).ge(4).all()  # extension: 4 frames or more
    free = simulate_batch(_tiny_cfg(batch=4, image_share=0.0, extend_share=0.0), step=0).ctx
    assert free.eq(0).all()
    with pytest.raises(ValueError, match="image_share and extend_share"):
        _tiny_cfg(image_share=0.6, extend_share=0.6)


def test_training_resumes_from_checkpoint(tmp_path):
    run = tmp_path / "run"
    first = train(run, _tiny_cfg(steps=2))
    assert first["step"] == 2 and (run / "ckpt.pt").exists()
    second = train(run, _tiny_cfg(steps=4))
    assert second["step"] == 4
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
    # the same run in one go ends at the same weights: resume restores everything that matters
    whole = tmp_path / "whole"
    train(whole, _tiny_cfg(steps=4))
    a = torch.load(run / "ckpt.pt", weights_only=False)["model"]
    b = torch.load(whole / "ckpt.pt", weights_only=False)["model"]
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_export_and_load_generate(tmp_path):
    run = tmp_path / "run"
    train(run, _tiny_cfg(steps=1))
    path = export_weights(run, tmp_path / "w.safetensors")
    m = WorldModel.from_file("t", path, steps=2, guidance=1.0)
    req = GenerationRequest(prompt="two red balls bouncing", seconds=1, width=640, height=360, seed=3)
    r1 = m.generate(req, lambda f: None)
    r2 = m.generate(req, lambda f: None)
    assert r1.frames.shape == (12, 64, 112, 3) and r1.frames.dtype == np.uint8
    assert np.array_equal(r1.frames, r2.frames) and np.array_equal(r1.audio, r2.audio)  # a seed reproduces bit for bit
    assert len(r1.audio) == 16000


def test_image_to_video_and_extension_keep_the_given_frames():
    m = WorldModel.random("t", "world-tiny", steps=2, guidance=1.0)
    img = np.zeros((50, 90, 3), np.uint8)  # the wrong size: fitted
    img[:] = (220, 40, 40)
    r = m.generate(GenerationRequest(prompt="a red box", seconds=1, width=1280, height=720, seed=1, image=img), lambda f: None)
    assert r.frames.shape == (12, 64, 112, 3)
    assert (r.frames[0] == (220, 40, 40)).all()  # the clip opens on the given image, fitted to the frame
    x = m.generate(GenerationRequest(prompt="more", seconds=2, width=1280, height=720, seed=2, mode="extend", video=r.frames, video_fps=12, audio=r.audio, audio_rate=16000), lambda f: None)
    assert x.frames.shape[0] == 36 and np.array_equal(x.frames[:12], r.frames)


def test_compact_resume_file_carries_a_run_to_a_new_machine(tmp_path):
    run = tmp_path / "run"
    train(run, _tiny_cfg(steps=2))
    resume = export_weights(run, tmp_path / "resume.safetensors", which="model")
    ema = export_weights(run, tmp_path / "ema.safetensors")
    fresh = tmp_path / "elsewhere"  # no ckpt.pt there
    last = train(fresh, _tiny_cfg(steps=3, resume_from=str(resume), ema_from=str(ema)))
    assert last["step"] == 3
    steps = [json.loads(line)["step"] for line in (fresh / "log.jsonl").read_text().splitlines()]
    assert steps == [3]


def test_training_with_data_workers_and_a_cosine_schedule(tmp_path):
    # clips simulated by a worker process, a batch reused while the next is made, lr decaying
    last = train(tmp_path / "run", _tiny_cfg(steps=4, workers=1, max_reuse=2, schedule="cosine", min_lr=0.1))
    assert last["step"] == 4 and last["use"] in (1, 2)
    lrs = [json.loads(line)["lr"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert len(lrs) == 4 and lrs[-1] < lrs[1]  # warm-up of 1 step, then down the cosine


def test_training_precision_and_a_non_finite_gradient(tmp_path, monkeypatch):
    # auto is fp32 on a CPU: the same run as asking for fp32
    out = {}
    for p in ("auto", "fp32"):
        last = train(tmp_path / p, _tiny_cfg(steps=2, precision=p))
        assert math.isfinite(last["loss"])
        out[p] = torch.load(tmp_path / p / "ckpt.pt", weights_only=False)["model"]
    assert json.loads((tmp_path / "auto" / "config.json").read_text())["train"]["precision"] == "auto"
    assert all(torch.equal(out["auto"][k], out["fp32"][k]) for k in out["fp32"])
    with pytest.raises(ValueError, match="precision"):
        _tiny_cfg(precision="fp16")
    # a gradient that is not finite stops the run before the optimizer step spoils the weights
    before = torch.load(tmp_path / "fp32" / "ckpt.pt", weights_only=False)["model"]

    def poison(step, last):
        raise AssertionError("no step may finish")

    import vitascope.train.world as tw

    real = tw.loss_fn

    def nan_loss(net, *a, **kw):  # NaN gradients, as a broken kernel gives them (here through the loss)
        loss, parts = real(net, *a, **kw)
        return loss * torch.tensor(float("nan")), parts

    monkeypatch.setattr(tw, "loss_fn", nan_loss)
    with pytest.raises(FloatingPointError, match="gradient norm is nan at step 3"):
        train(tmp_path / "fp32", _tiny_cfg(steps=3, precision="fp32"), on_step=poison)
    after = torch.load(tmp_path / "fp32" / "ckpt.pt", weights_only=False)["model"]
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_skip_preconditioning_passes_the_input_through_at_the_data_end():
    from vitascope.models.world_net import WorldNetConfig, skip_scales

    c_skip, c_out = skip_scales(torch.tensor([0.0, 1.0]))
    assert torch.allclose(c_skip, torch.tensor([0.0, 1.0])) and torch.allclose(c_out, torch.tensor([1.0, 0.0]))
    torch.manual_seed(0)
    net = WorldNet(WorldNetConfig(**{**WorldNet_configs["world-tiny"].to_dict(), "precond": "skip"})).eval()
    x = _inputs()
    x["t"] = torch.ones(2)
    with torch.no_grad():
        v, a = net(**x)
    assert torch.allclose(v, x["video"]) and torch.allclose(a, x["audio"])
    with pytest.raises(ValueError, match="precond"):
        WorldNet(WorldNetConfig(precond="eps"))


def test_detail_head_joins_trained_weights_and_trains_alone(tmp_path):
    from safetensors.torch import load_file

    run = tmp_path / "run"
    train(run, _tiny_cfg(steps=2))
    base = export_weights(run, tmp_path / "base.safetensors")
    # the head starts as the identity: with it, the trained weights give the same estimate
    plain = WorldModel.from_file("plain", base).net
    torch.manual_seed(1)
    headed = WorldNet(WorldNet_configs["world-tiny-detail"])
    headed.load_state_dict(plain.state_dict(), strict=False)
    x = _inputs()
    with torch.no_grad():
        assert torch.equal(plain(**x)[0], headed.eval()(**x)[0])
    # only the head trains; the network it sits on stays as it was, in the raw and the EMA weights
    head_run = tmp_path / "head"
    cfg = _tiny_cfg(model="world-tiny-detail", steps=4, resume_from=str(base), ema_from=str(base), train_only="detail.", uniform_t=1.0, low_t=0.0, near_zero_t=0.0, min_t=0.5)
    assert train(head_run, cfg)["step"] == 4
    ck = torch.load(head_run / "ckpt.pt", weights_only=False)
    before = {k: v.float() for k, v in load_file(str(base)).items()}
    for which in ("model", "ema"):
        assert all(torch.equal(ck[which][k], before[k]) for k in before), which
        assert ck[which]["detail.out.weight"].abs().sum() > 0
    # and it samples, applied once to the guided estimate
    m = WorldModel.from_file("d", export_weights(head_run, tmp_path / "d.safetensors"), steps=2, guidance=3.0)
    r = m.generate(GenerationRequest(prompt="a red ball", seconds=1, width=640, height=360, seed=3), lambda f: None)
    assert r.frames.shape == (12, 64, 112, 3)
    with pytest.raises(ValueError, match="train_only"):
        train(tmp_path / "bad", _tiny_cfg(steps=1, train_only="nothing."))
    with pytest.raises(ValueError, match="shares"):
        _tiny_cfg(uniform_t=0.9)  # with low_t 0.3 and near_zero_t 0.2 by default: 1.4 in all


def test_diagnostic_tools_and_the_gpu_export_round_trip(tmp_path):
    # tools/: per-t denoising error, held-out word report, and the export a GPU machine sends back
    import subprocess
    import sys
    from pathlib import Path

    from safetensors.torch import load_file

    root = Path(__file__).resolve().parents[1]
    run = tmp_path / "run"
    train(run, _tiny_cfg(steps=1))
    weights = export_weights(run, tmp_path / "w.safetensors")
    report = subprocess.run([sys.executable, str(root / "tools/denoise_report.py"), str(weights), "--clips", "1"], capture_output=True, text=True, check=True).stdout
    assert len(report.strip().splitlines()) == 11 and report.splitlines()[1].split()[0] == "0.00"
    words = subprocess.run([sys.executable, str(root / "tools/prompt_report.py"), str(weights)], capture_output=True, text=True, check=True).stdout
    assert "held-out:" in words and "at midnight" in words
    val = subprocess.run([sys.executable, str(root / "tools/validate.py"), str(weights), "--n", "1", "--steps", "2"], capture_output=True, text=True, check=True).stdout
    assert "| **all attributes** |" in val and "| sky |" in val
    out = tmp_path / "out"
    subprocess.run([sys.executable, str(root / "tools/device_train.py"), "export", "--run", str(run), "--out", str(out)], check=True, capture_output=True)
    assert (out / "model.safetensors.part0").exists() and (out / "log.jsonl").exists()
    subprocess.run([sys.executable, str(root / "tools/device_train.py"), "join", "--src", str(out), "--out", str(tmp_path)], check=True, capture_output=True)
    a, b = load_file(str(tmp_path / "ema.safetensors")), load_file(str(weights))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
