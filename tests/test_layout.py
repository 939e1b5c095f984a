"""Layouts, the layout planner and the layout-guided world network, at tiny size."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from vitascope.models import text, world_plan
from vitascope.models.base import GenerationRequest
from vitascope.models.world import WorldModel, fit_motions, match_slots
from vitascope.models.world_net import WorldNet, WorldNet_configs, load_weights
from vitascope.train.world import TrainConfig, simulate_batch
from vitascope.train.world_plan import PlanTrainConfig, export_weights, make_batch, train
from vitascope.world import layout, render, sample_scene, simulate
from vitascope.world.render import draw_shape
from vitascope.world.scene import COLOURS, object_state


def test_layout_features_read_back_to_the_scene_at_any_aspect():
    for aspect in (16 / 9, 9 / 16, 1.0):
        scene = sample_scene(11, aspect=aspect)
        feat = layout.features(scene, 2.5, 24, 12.0)
        assert feat.shape == (24, layout.SLOTS, layout.FEATURES) and feat.dtype == np.float32
        assert np.abs(feat).max() < 4  # about unit spread: what a flow model diffuses
        back = layout.objects(feat, aspect)
        for i in (0, 23):
            assert len(back[i]) == len(scene.objects)
            for obj, got in zip(scene.objects, back[i]):
                st = object_state(obj, 2.5 + i / 12.0, aspect)
                assert got["x"] == pytest.approx(st.x, abs=1e-4) and got["y"] == pytest.approx(st.y, abs=1e-4)
                assert got["scale"] == pytest.approx(st.scale, rel=1e-4)
                assert got["rgb"] == COLOURS[obj.colour] and got["shape"] == obj.shape
        assert (feat[:, len(scene.objects) :, 0] == -1).all()  # the slots left over are absent


def test_layout_maps_are_the_objects_silhouettes_with_their_colour_and_shape():
    for seed, (h, w) in ((5, (64, 112)), (9, (112, 64)), (21, (64, 64))):
        scene = sample_scene(seed, aspect=w / h)
        feat = layout.features(scene, 3.0, 12, 12.0)
        maps = layout.maps(feat, h, w)
        clip = render(scene, h, w, 12.0, 12, start=3.0)
        assert maps.shape == (layout.LAYOUT_CHANNELS, 12, h, w)
        assert ((maps[0] > 0) == clip.masks).mean() > 0.999  # the silhouettes are where render draws the objects
        assert (maps[:, ~clip.masks] == 0).mean() > 0.99
        for obj in scene.objects[-1:]:  # the last object is drawn on top
            inside = np.zeros((12, h, w), bool)
            for i in range(12):
                st = object_state(obj, 3.0 + i / 12.0, scene.aspect)
                draw_shape(np.zeros((h, w), np.uint8), inside[i], obj.shape, st.x, st.y, st.scale, st.angle, 1, h)
            if inside.any():
                rgb = (maps[1:4][:, inside] + 1) * 127.5
                assert np.allclose(rgb, np.array(COLOURS[obj.colour])[:, None], atol=1)
                assert (maps[4:7][:, inside].argmax(0) == ("ball", "box", "triangle").index(obj.shape)).all()


def test_layout_features_carry_a_spinning_objects_turn():
    scene = next(s for s in (sample_scene(i) for i in range(200)) if any(o.motion == "spinning" and o.shape != "ball" for o in s.objects))
    feat = layout.features(scene, 1.0, 6, 12.0)
    j, obj = next((j, o) for j, o in enumerate(scene.objects) if o.motion == "spinning" and o.shape != "ball")
    k = layout.SYMMETRY[obj.shape]
    for i, frame in enumerate(layout.objects(feat, scene.aspect)):
        angle = object_state(obj, 1.0 + i / 12.0, scene.aspect).angle
        got = frame[j]["angle"]
        assert np.cos(k * (got - angle)) == pytest.approx(1.0, abs=1e-5)  # the same turn up to the shape's symmetry


def test_steady_turn_spins_at_the_plans_mean_rate_and_keeps_known_frames():
    scene = next(s for s in (sample_scene(i) for i in range(200)) if any(o.motion == "spinning" and o.shape == "triangle" for o in s.objects))
    j = next(j for j, o in enumerate(scene.objects) if o.motion == "spinning" and o.shape == "triangle")
    feat = layout.features(scene, 1.0, 24, 12.0)
    steady = layout.steady_turn(feat, j)
    np.testing.assert_allclose(steady, feat, atol=1e-4)  # the world's own spin is steady already
    rng = np.random.default_rng(0)
    turn = np.unwrap(np.arctan2(feat[:, j, layout.PLACE + 5], feat[:, j, layout.PLACE + 4]))
    shaky = feat.copy()
    wobble = turn + rng.normal(0, 0.5, len(turn))  # a planner's spin: back and forth about the mean
    shaky[:, j, layout.PLACE + 4], shaky[:, j, layout.PLACE + 5] = np.cos(wobble), np.sin(wobble)
    for start in (0, 6):
        got = layout.steady_turn(shaky, j, start=start)
        assert np.array_equal(got[:start], shaky[:start])  # carried-over frames stay
        new = np.unwrap(np.arctan2(got[:, j, layout.PLACE + 5], got[:, j, layout.PLACE + 4]))
        steps = np.diff(new[max(start - 1, 0) :])
        assert steps.std() < 1e-4 and np.sign(steps.mean()) == np.sign(np.diff(turn).mean())
        assert abs(steps.mean() - np.diff(turn).mean()) < 0.1
        others = [k for k in range(layout.FEATURES) if k not in (layout.PLACE + 4, layout.PLACE + 5)]
        assert np.array_equal(got[:, :, others], shaky[:, :, others])  # only the turn changes
        assert np.array_equal(np.delete(got, j, axis=1), np.delete(shaky, j, axis=1))


def _grown(plain_config: str, grown_config: str, t: float | None = None):
    """A network of plain_config with weights off their initial values, one of grown_config
    started from its weights, and inputs for both (B, T, H, W = 1, 16, 32, 48)."""
    torch.manual_seed(0)
    plain = WorldNet(WorldNet_configs[plain_config])
    with torch.no_grad():
        for p in plain.parameters():
            p.add_(0.02 * torch.randn_like(p))
    grown = WorldNet(WorldNet_configs[grown_config])
    load_weights(grown, plain.state_dict())  # the new inputs' weights start at zero
    g = torch.Generator().manual_seed(1)
    B, T, H, W = 1, 16, 32, 48
    times = torch.rand(B, generator=g) if t is None else torch.full((B,), t)
    args = (torch.randn(B, 3, T, H, W, generator=g), torch.randn(B, 16, T * 4, generator=g), times, torch.randn(B, 5, 384, generator=g), torch.ones(B, 5, dtype=torch.bool))
    ctx = (torch.zeros(B, 3, T, H, W), torch.zeros(B, 16, T * 4), torch.zeros(B, 1, T))
    return plain, grown, args, ctx, g


def test_layout_guided_network_starts_from_a_plain_network_unchanged():
    plain, guided, args, ctx, g = _grown("world-tiny", "world-tiny-layout")
    B, _, T, H, W = args[0].shape
    a = plain.eval()(*args, *ctx)
    lay = torch.rand(B, layout.LAYOUT_CHANNELS, T, H, W, generator=g)
    b = guided.eval()(*args, *ctx, layout=lay)
    assert torch.allclose(a[0], b[0], atol=1e-5) and torch.allclose(a[1], b[1], atol=1e-5)
    with pytest.raises(ValueError, match="layout must have shape"):
        guided(*args, *ctx, layout=lay[:, :3])
    with pytest.raises(ValueError, match="takes no layout"):
        plain(*args, *ctx, layout=lay)


def test_detail_head_of_a_layout_guided_network_reads_the_layout():
    torch.manual_seed(0)
    base = WorldNet(WorldNet_configs["world-tiny-layout"])
    net = WorldNet(WorldNet_configs["world-tiny-layout-detail"])
    assert set(load_weights(net, base.state_dict())) == {k for k in net.state_dict() if k.startswith("detail.")}
    with torch.no_grad():
        for p in net.detail.parameters():
            p.add_(0.1 * torch.randn_like(p))
    g = torch.Generator().manual_seed(2)
    est, x_t = torch.randn(1, 3, 4, 16, 24, generator=g), torch.randn(1, 3, 4, 16, 24, generator=g)
    lay = torch.zeros(1, layout.LAYOUT_CHANNELS, 4, 16, 24)
    lay[:, :, :, 4:9, 6:12] = 1
    late, early = torch.tensor([0.8]), torch.tensor([0.3])
    with torch.no_grad():
        a = net.refine(est, x_t, late, lay)
        b = net.refine(est, x_t, late, torch.zeros_like(lay))
        assert not torch.allclose(a, b)  # the silhouettes reach the full-resolution head
        assert torch.allclose(b, net.refine(est, x_t, late))  # no layout reads as an empty one
        assert torch.equal(net.refine(est, x_t, early, lay), est)  # too noisy for detail: unchanged


def test_copying_detail_head_takes_object_colours_from_the_silhouettes_at_any_time():
    torch.manual_seed(0)
    base = WorldNet(WorldNet_configs["world-tiny-layout-detail"])
    net = WorldNet(WorldNet_configs["world-tiny-layout-copy"])
    assert load_weights(net, base.state_dict()) == ["detail.gate.weight", "detail.gate.bias"]  # the gate starts at its init
    g = torch.Generator().manual_seed(3)
    est, x_t = torch.randn(1, 3, 4, 16, 24, generator=g), torch.randn(1, 3, 4, 16, 24, generator=g)
    lay = torch.zeros(1, layout.LAYOUT_CHANNELS, 4, 16, 24)
    lay[:, 0, :, 4:9, 6:12] = 1  # a silhouette...
    lay[:, 1:4, :, 4:9, 6:12] = torch.tensor([1.0, -1.0, 0.5]).view(3, 1, 1, 1)  # ...of one colour
    inside = lay[:, :1].bool().expand_as(est)
    with torch.no_grad():
        for t in (0.05, 0.9):  # the head works from t = 0 (detail_from) for a copying head
            out = net.refine(est, x_t, torch.tensor([t]), lay)
            assert torch.allclose(out[inside], ((est + lay[:, 1:4]) / 2)[inside], atol=1e-5)  # a gate of 0.5 at first
            assert torch.allclose(out[~inside], est[~inside], atol=1e-6)  # nothing outside the silhouettes
        assert torch.allclose(net.refine(est, x_t, torch.tensor([0.5])), est)  # no layout: nothing to copy
        net.detail.gate.bias.fill_(20.0)  # a gate that has learned to copy
        out = net.refine(est, x_t, torch.tensor([0.5]), lay)
        assert torch.allclose(out[inside], lay[:, 1:4].expand_as(est)[inside], atol=1e-5)
    with pytest.raises(ValueError, match="copying detail head needs a layout"):
        WorldNet(replace(WorldNet_configs["world-tiny-layout-copy"], layout=0))


def test_planner_reads_standardised_token_features_and_trains_on_perturbed_ones():
    from vitascope.train.world_plan import perturb_text

    net = world_plan.WorldPlanner(world_plan.Planner_configs["plan-tiny"])
    tokens, mask = text.encode(["a red ball bounces", "two big blue boxes slide left at night on the sand"])
    net.fit_text_scale(tokens, mask)
    z = (tokens[mask] - net.text_mean) / net.text_std
    live = net.text_std > 1e-3  # (a dimension without spread is left at the floor)
    assert z.mean(0).abs().max() < 1e-3 and (z.std(0)[live] - 1).abs().max() < 1e-3 and live.float().mean() > 0.99
    noisy, kept = perturb_text(net, tokens, mask, 0.5, 0.5, torch.Generator().manual_seed(0))
    assert kept[:, 0].all() and (kept <= mask).all() and kept.sum() < mask.sum()  # some tokens hidden, never the first
    ratio = ((noisy - tokens)[mask] / net.text_std).std()
    assert 0.45 < float(ratio) < 0.55  # noise of half a spread per dimension


def test_training_clips_carry_their_true_layout_or_none():
    cfg = TrainConfig(model="world-tiny-layout", batch=4, scale=4, layout_share=1.0)
    raw = simulate_batch(cfg, step=0)
    _, T, H, W, _ = raw.frames.shape
    assert raw.layout is not None and raw.layout.shape == (4, layout.LAYOUT_CHANNELS, T, H, W)
    bump = raw.layout[:, 0].float()
    assert (bump.amax(dim=(1, 2, 3)) > 0.5).all()  # every clip has an object and shows it
    none = simulate_batch(TrainConfig(model="world-tiny-layout", batch=4, scale=4, layout_share=0.0), step=0)
    assert none.layout.eq(0).all()
    assert simulate_batch(TrainConfig(model="world-tiny", batch=2, scale=4), step=0).layout is None
    with pytest.raises(ValueError, match="layout_share"):
        TrainConfig(layout_share=1.5)


def test_planner_learns_fresh_scenes_from_their_start():
    def first_sizes(fresh):
        x = make_batch(PlanTrainConfig(batch=64, extend_share=0.0, fresh_start=fresh), step=5)[0]
        present = x[:, 0, :, 0] > 0
        return layout.extents(x[:, 0].numpy())[present.numpy()]

    # at its start every object has its size's own extent; later, growing and shrinking ones do not
    assert np.allclose(sorted(set(np.round(first_sizes(True), 4))), [0.1, 0.2])
    assert len(set(np.round(first_sizes(False), 4))) > 2


def test_displacement_planner_plans_where_objects_start_and_how_far_they_move(tmp_path):
    scene = sample_scene(5, aspect=16 / 9)
    feat = torch.from_numpy(layout.features(scene, 2.0, 48, 12.0))
    z = world_plan.to_plan(feat)
    assert z.shape == (48, layout.SLOTS, layout.FEATURES + 1) and torch.allclose(world_plan.from_plan(z), feat, atol=1e-5)
    assert torch.equal(z[:, :, layout.PLACE], z[:1, :, layout.PLACE].expand(48, -1))  # the start's phase, in every frame
    slide = replace(scene.objects[0], motion="slide_left", direction=0)
    moved = world_plan.to_plan(torch.from_numpy(layout.features(replace(scene, objects=(slide,)), 0.0, 48, 12.0)))[:, 0, -1]
    assert moved[0] == 0 and (torch.diff(moved) < 0).all()  # going left, frame by frame, across the wrap too
    # a planner of phases grows into one of displacements: the new feature's weights start at zero
    old = world_plan.WorldPlanner(world_plan.Planner_configs["plan-tiny-labels"])
    path = tmp_path / "p.safetensors"
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in old.state_dict().items()}, str(path), metadata={"config": json.dumps(old.cfg.to_dict())})
    r = train(tmp_path / "run", PlanTrainConfig(model="plan-tiny-moves", batch=2, steps=2, init_from=str(path)))
    assert r["step"] == 2
    net = world_plan.load(export_weights(tmp_path / "run", tmp_path / "moves.safetensors"))
    out = world_plan.sample(net, *text.encode(["a red ball sliding left"]), text.encode([""]), 16 / 9, 48, steps=2, generator=torch.Generator().manual_seed(0), labels=world_plan.scene_labels(replace(scene, objects=(slide,))))
    assert out.shape == (48, layout.SLOTS, layout.FEATURES)


def test_planner_trains_resumes_and_samples(tmp_path):
    x, aspect, ctx, caps, labels = make_batch(PlanTrainConfig(batch=6, extend_share=1.0), step=3)
    assert x.shape == (6, 48, layout.SLOTS, layout.FEATURES) and ctx[:, :1].eq(1).all() and len(caps) == 6
    assert set(ctx.sum(1).tolist()) <= {1, 4, 8, 12, 24}  # an image, or a window continuing the last
    cfg = PlanTrainConfig(model="plan-tiny", batch=4, save_every=2)
    run = tmp_path / "run"
    train(run, PlanTrainConfig(**{**cfg.__dict__, "steps": 2}))
    train(run, PlanTrainConfig(**{**cfg.__dict__, "steps": 4}))
    whole = tmp_path / "whole"
    train(whole, PlanTrainConfig(**{**cfg.__dict__, "steps": 4}))
    a = torch.load(run / "ckpt.pt", weights_only=False)["model"]
    b = torch.load(whole / "ckpt.pt", weights_only=False)["model"]
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)  # resuming is the same run
    assert [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()] == []  # logs every 10 steps
    net = world_plan.load(export_weights(run, tmp_path / "plan.safetensors"))

    tokens, mask = text.encode(["two red balls bouncing"])
    known = torch.randn(48, layout.SLOTS, layout.FEATURES)
    known_m = torch.zeros(48)
    known_m[:12] = 1
    g = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    out = world_plan.sample(net, tokens, mask, text.encode([""]), 16 / 9, 48, ctx=known, ctx_mask=known_m, steps=3, generator=g())
    assert out.shape == (48, layout.SLOTS, layout.FEATURES) and torch.isfinite(out).all()
    assert torch.equal(out[:12], known[:12])  # the frames carried over stay as they were
    again = world_plan.sample(net, tokens, mask, text.encode([""]), 16 / 9, 48, ctx=known, ctx_mask=known_m, steps=3, generator=g())
    assert torch.equal(out, again)
    with pytest.raises(ValueError, match="frames divisible"):
        net(torch.zeros(1, 10, 3, layout.FEATURES), torch.zeros(1), tokens, mask, torch.ones(1), torch.zeros(1, 10, 3, layout.FEATURES), torch.zeros(1, 10))


def test_layout_read_from_pixels_is_the_simulators_layout():
    errors, shapes, counts = [], [], []
    for seed in range(12):
        for h, w in ((64, 112), (112, 64)):
            start = float(seed % 5)
            s = simulate(seed, height=h, width=w, seconds=1.0, start=start)
            true, got = layout.features(s.scene, start, 12, 12.0), layout.read(s.frames)
            assert got.shape == true.shape
            counts += ((got[:, :, 0] > 0).sum(1) == (true[:, :, 0] > 0).sum(1)).tolist()
            for f, (t_objs, g_objs) in enumerate(zip(layout.objects(true, w / h), layout.objects(got, w / h))):
                for o in t_objs:
                    g = min((g for g in g_objs if g["rgb"] == o["rgb"]), key=lambda g: abs(g["y"] - o["y"]) + abs(g["x"] - o["x"]))
                    errors.append((abs(g["x"] - o["x"]) % (w / h + o["scale"]), abs(g["y"] - o["y"]), abs(np.log(g["scale"] / o["scale"]))))
                    shapes.append(g["shape"] == o["shape"])
    e = np.array(errors)
    assert np.median(e[:, 0]) < 0.01 and np.median(e[:, 1]) < 0.01 and np.median(e[:, 2]) < 0.05  # about a pixel at 64 px
    assert np.mean(shapes) > 0.95
    assert np.mean(counts) > 0.9  # as many objects as there are (three balls of one colour on top of each other are one)
    blank = np.zeros((3, 64, 112, 3), np.uint8)
    blank[:] = (135, 200, 240)  # sky alone: no objects
    assert (layout.read(blank)[:, :, 0] == -1).all()


def test_read_objects_take_the_slots_whose_labels_name_them():
    scene = sample_scene(3, aspect=16 / 9)
    objs = [replace(scene.objects[0], colour="red", shape="ball", size="big"), replace(scene.objects[0], colour="blue", shape="box", size="small", x0=0.4)]
    scene = replace(scene, objects=objs)
    feat = layout.features(scene, 0.0, 12, 12.0)
    swapped = feat[:, [1, 0, 2]]  # as a reading might order them
    labels = world_plan.scene_labels(scene)
    assert np.array_equal(match_slots(swapped, labels), feat)
    only_blue = world_plan.scene_labels(replace(scene, objects=objs[1:]))  # the prompt names the box alone
    moved = match_slots(feat, only_blue)
    assert np.array_equal(moved[:, 0], feat[:, 1]) and np.array_equal(moved[:, 1], feat[:, 0])  # the ball keeps going, in a slot left over
    assert np.array_equal(match_slots(swapped, None), swapped)


def test_world_model_plans_text_to_video_and_extensions(tmp_path):
    torch.manual_seed(0)
    planner = world_plan.WorldPlanner(world_plan.Planner_configs["plan-tiny"])
    m = WorldModel.random("t", "world-tiny-layout", steps=2, guidance=2.0, planner=planner, plan_steps=2)
    req = GenerationRequest(prompt="a big blue box slides left", seconds=8, width=720, height=1280, seed=4)
    r = m.generate(req, lambda f: None)
    assert r.frames.shape == (96, 112, 64, 3) and r.info["planned"] and r.info["windows"] == 3
    assert np.array_equal(r.frames, m.generate(req, lambda f: None).frames)  # a seed reproduces the plan and the clip
    img = np.full((64, 112, 3), 200, np.uint8)
    i2v = m.generate(GenerationRequest(prompt="a red box", seconds=1, width=1280, height=720, seed=1, image=img), lambda f: None)
    assert i2v.info["planned"] and len(i2v.frames) == 12  # the plan continues the layout read from the image
    m.read_layout = False
    assert not m.generate(GenerationRequest(prompt="a red box", seconds=1, width=1280, height=720, seed=1, image=img), lambda f: None).info["planned"]
    m.read_layout = True
    src = simulate(5, height=64, width=112, seconds=2.0)
    ext = m.generate(GenerationRequest(prompt=src.caption, seconds=1, width=112, height=64, seed=2, mode="extend", video=src.frames, video_fps=12), lambda f: None)
    assert ext.info["planned"] and len(ext.frames) == 36  # an extension continues the layout read from the clip's last frames
    assert np.array_equal(ext.frames[:24], src.frames)
    with pytest.raises(ValueError, match="layout-guided network"):
        WorldModel.random("t", "world-tiny", planner=planner)


def test_planned_places_are_smoothed_over_time_but_known_frames_kept():
    torch.manual_seed(0)
    planner = world_plan.WorldPlanner(world_plan.Planner_configs["plan-tiny"])
    torch.nn.init.normal_(planner.out.weight, std=0.5)  # an untrained planner that trembles
    known = layout.features(sample_scene(2, aspect=16 / 9), 0.0, 12, 12.0)
    tokens, mask = text.encode(["a red ball"])

    def plan(k):
        m = WorldModel.random("t", "world-tiny-layout", planner=planner, plan_steps=2, plan_smooth=k)
        return m._layout(tokens, mask, known, 12, 36, 16 / 9, 64, 112, torch.Generator().manual_seed(1))[2][12:]

    rough, smooth = plan(1), plan(3)
    assert np.array_equal(rough[:, :, : layout.PLACE], smooth[:, :, : layout.PLACE])  # present, colour, shape as planned
    tremble = lambda f: np.abs(np.diff(f[:, :, layout.PLACE :], axis=0)).mean()  # noqa: E731
    assert tremble(smooth) < 0.7 * tremble(rough)


def test_cli_trains_a_planner_and_a_layout_guided_model_that_load_together(tmp_path):
    from conftest import cli

    weights = tmp_path / "w" / "world.safetensors"
    r = cli(tmp_path, "train", "--run", str(tmp_path / "net"), "--model", "world-tiny-layout", "--steps", "1", "--batch", "1", "--layout-share", "1", "--export", str(weights))
    assert "stopped at step 1" in r.stdout and weights.exists()
    r = cli(tmp_path, "train-plan", "--run", str(tmp_path / "plan"), "--model", "plan-tiny", "--steps", "2", "--batch", "2", "--export", str(weights.with_name("world-plan.safetensors")))
    assert "stopped at step 2" in r.stdout
    m = WorldModel.from_file("t", weights, steps=2, plan_steps=2)  # the planner beside the weights comes with them
    assert m.planner is not None
    r1 = m.generate(GenerationRequest(prompt="two red balls bouncing", seconds=1, width=640, height=360, seed=3), lambda f: None)
    assert r1.info["planned"] and r1.frames.shape == (12, 64, 112, 3)
    ext = m.generate(GenerationRequest(prompt="more", seconds=2, width=640, height=360, seed=2, mode="extend", video=r1.frames, video_fps=12, audio=r1.audio, audio_rate=16000), lambda f: None)
    assert ext.info["planned"] and np.array_equal(ext.frames[:12], r1.frames)  # a given clip is continued as drawn, its layout read and planned on
    bad = cli(tmp_path, "train-plan", "--model", "plan-huge", check=False)
    assert bad.returncode != 0 and "model must be one of" in bad.stdout + bad.stderr
    bad = cli(tmp_path, "train", "--model", "world-tiny-layout", "--layout-share", "2", check=False)
    assert bad.returncode != 0 and "layout_share" in bad.stdout + bad.stderr


def test_planner_reads_slot_labels_and_starts_from_a_planner_without_them(tmp_path):
    from vitascope.models import text, world_parse
    from vitascope.world.scene import Scene, WorldObject

    scene = Scene(camera="pan_right", objects=(WorldObject("pink", "box", "big", "bouncing", direction=-1), WorldObject("red", "ball", "small", "still")))
    lab = world_plan.scene_labels(scene)
    assert lab.shape == (layout.SLOTS, world_plan.LABELS)
    assert lab[:2].sum(1).tolist() == [6.0, 6.0] and lab[2].sum() == 1  # present, colour, shape, size, motion, camera; an absent slot: camera only
    assert lab[0, -2] == 1 and lab[2, -2] == 1  # pan_right (cameras: static, pan_left, pan_right, zoom_in), on every slot
    cfg = PlanTrainConfig(model="plan-tiny", batch=2, save_every=1)
    train(tmp_path / "a", PlanTrainConfig(**{**cfg.__dict__, "steps": 1}))
    plain = export_weights(tmp_path / "a", tmp_path / "plain.safetensors")
    labelled = PlanTrainConfig(**{**cfg.__dict__, "model": "plan-tiny-labels", "steps": 2, "init_from": str(plain)})
    x, aspect, ctx, caps, labels = make_batch(labelled, step=0)
    assert labels.shape == (2, layout.SLOTS, world_plan.LABELS)
    assert all((labels[i].sum() == 0) == (caps[i] == "") for i in range(2))  # a dropped caption drops its labels
    train(tmp_path / "b", labelled)
    net = world_plan.load(export_weights(tmp_path / "b", tmp_path / "lab.safetensors"))
    start = world_plan.load(plain)
    assert torch.equal(net.text_mean, start.text_mean)  # the text statistics come with the weights started from
    tokens, mask = text.encode(["a big pink box bouncing to the left"])
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    a = world_plan.sample(net, tokens, mask, text.encode([""]), 16 / 9, 8, steps=2, generator=g(), labels=lab)
    b = world_plan.sample(net, tokens, mask, text.encode([""]), 16 / 9, 8, steps=2, generator=g(), labels=torch.zeros_like(lab))
    assert a.shape == (8, layout.SLOTS, layout.FEATURES) and not torch.equal(a, b)  # the labels act
    with pytest.raises(ValueError, match="lacks"):
        train(tmp_path / "c", PlanTrainConfig(**{**cfg.__dict__, "steps": 1, "init_from": str(tmp_path / "lab.safetensors")}))
    parser = world_parse.WorldParser(world_parse.Parser_configs["parse-tiny"])
    m = WorldModel.random("t", "world-tiny-layout", steps=2, guidance=2.0, planner=net, plan_steps=2, parser=parser, lexicon=None)
    r = m.generate(GenerationRequest(prompt="a giant crimson cube hops", seconds=1, width=640, height=360, seed=1), lambda f: None)
    assert r.info["planned"] and r.info["plan_prompt"] == parser.rewrite("a giant crimson cube hops")


def test_layout_contacts_are_the_simulators_ground_contacts():
    from vitascope.world.scene import contacts

    found = missed = extra = 0
    for seed in range(60):
        scene = sample_scene(seed, aspect=16 / 9)
        for start in (0.0, 5.3):
            got = layout.contact_frames(layout.features(scene, start, 48, 12.0))
            true = [((tc - start) * 12, j) for j, o in enumerate(scene.objects) for tc, _ in contacts(o, start + 4) if start + 1 / 12 <= tc < start + 47 / 12]
            near = lambda i, j, pairs: any(jj == j and abs(i - f) <= 1 for f, jj in pairs)  # noqa: E731
            hits = sum(near(f, j, [(i, jj) for i, jj, _ in got]) for f, j in true)
            found, missed = found + hits, missed + len(true) - hits
            extra += sum(not near(i, j, true) for i, j, _ in got)
    assert found > 50 and missed <= 0.1 * found and extra <= 0.05 * found
    feat = layout.features(sample_scene(1), 0.0, 48, 12.0)  # a bouncing ball
    cue = layout.cues(feat, 4)
    assert cue.shape == (layout.CUE_CHANNELS, 192) and cue.min() >= 0 and cue.max() <= 1
    assert 0 < np.count_nonzero(cue) <= len(layout.contact_frames(feat))
    still = feat.copy()
    still[:, :, 1 + len(COLOURS) + 3 + 2] = 0  # every object at one height: nothing touches down
    assert not layout.cues(still, 4).any()


def test_network_with_sound_cues_starts_from_one_without_them_and_hears_them():
    plain, cued, args, ctx, _ = _grown("world-tiny-layout-detail", "world-tiny-layout-cues", t=0.7)
    B, _, T, H, W = args[0].shape
    cue = torch.zeros(B, layout.CUE_CHANNELS, T * 4)
    cue[0, 1, 20] = 1.0
    a = plain.eval()(*args, *ctx)
    b = cued.eval()(*args, *ctx, cues=cue)
    assert torch.allclose(a[1], b[1], atol=1e-5) and torch.allclose(a[0], b[0], atol=1e-5)
    with torch.no_grad():
        cued.a_in.weight.normal_(0, 0.05)
    c = cued(*args, *ctx, cues=cue)
    assert not torch.allclose(b[1], c[1], atol=1e-4)  # once trained, the cues reach the sound
    with torch.no_grad():
        cued.cue_head.weight.fill_(0.1)
    d = cued(*args, *ctx, cues=cue)[1] - c[1]  # the cue head's own part: the cue at step 20, big objects
    assert torch.allclose(d[0, :, 18:33], torch.full_like(d[0, :, 18:33], 0.1), atol=1e-5) and d[0, :, :18].abs().max() < 1e-5 and d[0, :, 33:].abs().max() < 1e-5
    with pytest.raises(ValueError, match="cues must have shape"):
        cued(*args, *ctx, cues=cue[:, :1])
    with pytest.raises(ValueError, match="takes no sound cues"):
        plain(*args, *ctx, cues=cue)
    raw = simulate_batch(TrainConfig(model="world-tiny-layout-cues", batch=3, scale=4, layout_share=1.0), step=2)
    assert raw.cues.shape == (3, layout.CUE_CHANNELS, raw.audio.shape[2]) and raw.cues.min() >= 0
    assert simulate_batch(TrainConfig(model="world-tiny-layout", batch=1, scale=4), step=0).cues is None
    planner = world_plan.WorldPlanner(world_plan.Planner_configs["plan-tiny"])
    m = WorldModel.random("t", "world-tiny-layout-cues", steps=2, guidance=2.0, planner=planner, plan_steps=2)
    maps, cues = m.layout_inputs(layout.features(sample_scene(1), 0.0, 48, 12.0), 64, 112)
    assert maps.shape == (1, layout.LAYOUT_CHANNELS, 48, 64, 112) and cues.shape == (1, layout.CUE_CHANNELS, 192) and cues.any()
    r = m.generate(GenerationRequest(prompt="a big ball bouncing", seconds=1, width=640, height=360, seed=1), lambda f: None)
    assert r.info["planned"] and r.frames.shape == (12, 64, 112, 3) and len(r.audio) == 16000


def test_planner_trains_on_labels_alone():
    cfg = PlanTrainConfig(model="plan-tiny-labels", batch=32, label_only=1.0, caption_dropout=0.0)
    _, _, _, caps, labels = make_batch(cfg, step=0)
    assert all(c == "" for c in caps) and (labels.sum(dim=(1, 2)) > 0).all()  # no words, every label kept
    with pytest.raises(ValueError, match="label_only needs a planner that reads labels"):
        PlanTrainConfig(model="plan-tiny", label_only=0.5)


def test_network_reading_the_scenes_settings_starts_unchanged_and_follows_them(tmp_path):
    from vitascope.models import world_parse
    from vitascope.world.scene import Scene

    scene = Scene(sky="night", ground="sand", weather="rain", camera="zoom_in")
    vec = world_parse.settings_vector(scene)
    assert vec.shape == (world_parse.SETTINGS_WIDTH,) and vec.sum() == 4
    names = [f"{k}={v}" for k, vs in world_parse.SETTINGS.items() for v in vs]
    assert [names[i] for i in np.nonzero(vec)[0]] == ["sky=night", "ground=sand", "weather=rain", "camera=zoom_in"]
    assert world_parse.settings_vector(scene, drop=("sky", "camera")).sum() == 2  # a hidden setting is all zero
    plain, reads, args, ctx, _ = _grown("world-tiny-layout-copy", "world-tiny-layout-settings", t=0.7)
    B, _, T, H, W = args[0].shape
    lay = torch.zeros(B, layout.LAYOUT_CHANNELS, T, H, W)
    s = torch.from_numpy(vec)[None]
    a = plain.eval()(*args, *ctx, layout=lay)
    b = reads.eval()(*args, *ctx, layout=lay, settings=s)
    assert torch.allclose(a[0], b[0], atol=1e-5) and torch.allclose(a[1], b[1], atol=1e-5)  # new layers start at zero
    with torch.no_grad():
        reads.settings_in.weight.normal_(0, 0.5)
    c = reads(*args, *ctx, layout=lay, settings=s)
    d = reads(*args, *ctx, layout=lay, settings=torch.from_numpy(world_parse.settings_vector(Scene(sky="day")))[None])
    assert not torch.allclose(c[0], d[0], atol=1e-4)  # once trained, other settings draw another clip
    with torch.no_grad():
        reads.settings_detail.weight.normal_(0, 0.5)
    e = reads(*args, *ctx, layout=lay, settings=s)
    assert not torch.allclose(c[0], e[0], atol=1e-5)  # and reach the detail head
    with pytest.raises(ValueError, match="settings must have shape"):
        reads(*args, *ctx, layout=lay, settings=s[:, :4])
    with pytest.raises(ValueError, match="takes no settings"):
        plain(*args, *ctx, layout=lay, settings=s)
    cfg = TrainConfig(model="world-tiny-layout-settings", batch=8, scale=4, caption_dropout=0.3, settings_drop=0.2, settings_only=0.0)
    raw = simulate_batch(cfg, step=1)
    assert raw.settings.shape == (8, world_parse.SETTINGS_WIDTH)
    for cap, row in zip(raw.captions, raw.settings):
        assert (row.sum() == 0) == (cap == "") or 0 < row.sum() < 4  # an empty caption hides all four; some hide one
        assert set(row.unique().tolist()) <= {0.0, 1.0}
    alone = simulate_batch(replace(cfg, caption_dropout=0.0, settings_drop=0.0, settings_only=1.0), step=1)
    assert alone.captions == [""] * 8 and (alone.settings.sum(1) == 4).all()  # the settings without the caption
    assert simulate_batch(TrainConfig(model="world-tiny-layout-copy", batch=2, scale=4), step=1).settings is None
    from vitascope.train.world import train as train_world

    out = train_world(tmp_path / "run", replace(cfg, batch=2, steps=2, save_every=1, scale=1, seconds=4 / 3))
    assert np.isfinite(out["loss"])
    planner = world_plan.WorldPlanner(world_plan.Planner_configs["plan-tiny"])
    parser = world_parse.WorldParser(world_parse.Parser_configs["parse-tiny"])
    torch.manual_seed(0)
    m = WorldModel.random("t", "world-tiny-layout-settings", steps=2, guidance=2.0, planner=planner, plan_steps=2, parser=parser)
    with torch.no_grad():  # a network off its initial zeros, whose outputs depend on its inputs
        for p in m.net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    req = GenerationRequest(prompt="a red ball at night in the rain", seconds=1, width=640, height=360, seed=1)
    r = m.generate(req, lambda f: None)
    read, sure = parser.read([req.prompt])[0]
    assert read == parser.parse([req.prompt])[0]
    assert set(sure) == set(world_parse.SETTINGS) and all(0 < p <= 1 for p in sure.values())
    assert r.info["settings"] == {k: getattr(read, k) for k in world_parse.SETTINGS if sure[k] >= m.settings_confidence}
    m.settings_confidence = 0.0  # every setting the parser reads
    r = m.generate(req, lambda f: None)
    assert r.info["settings"] == {k: getattr(read, k) for k in world_parse.SETTINGS}
    with torch.no_grad():
        m.net.settings_in.weight.normal_(0, 0.5)
    assert not np.array_equal(r.frames, m.generate(req, lambda f: None).frames)  # the parsed settings reach the clip
    assert "settings" not in m.generate(replace(req, prompt=""), lambda f: None).info  # nothing to parse: none given
    m.network_words = False  # the settings and the layout alone
    assert m.generate(req, lambda f: None).info["network_prompt"] == ""


def test_background_detail_is_what_shows_camera_and_weather_and_can_be_weighted():
    from vitascope.train.world import background_detail, loss_fn, to_batch

    s = simulate(3, height=64, width=112, seconds=1.0)  # sunset over grass in the rain, panning left
    d = background_detail(s.frames, s.masks)
    assert s.scene.weather == "rain" and 0.005 < d.mean() < 0.2 and not (d & s.masks).any()
    flat = s.frames.copy()
    flat[:] = np.median(s.frames[0], axis=1, keepdims=True)[None]  # every row its one colour
    assert not background_detail(flat, np.zeros(s.masks.shape, bool)).any()
    cfg = TrainConfig(model="world-tiny", batch=2, scale=4, seconds=4 / 3, detail_weight=8.0)
    raw = simulate_batch(cfg, step=0)
    assert raw.detail.shape == raw.masks.shape and raw.detail.any()
    assert simulate_batch(replace(cfg, detail_weight=0.0), step=0).detail is None
    torch.manual_seed(0)
    net = WorldNet(WorldNet_configs["world-tiny"])
    b = to_batch(simulate_batch(replace(cfg, scale=1), step=0), net.cfg)
    with torch.no_grad():
        losses = [float(loss_fn(net, b, torch.Generator().manual_seed(1), uniform_t=1.0, detail_weight=w)[0]) for w in (0.0, 8.0)]
    assert losses[0] != losses[1]  # the detail's weight reaches the loss
    with pytest.raises(ValueError, match="detail_weight"):
        TrainConfig(detail_weight=-1.0)


def test_settled_plans_hold_a_trembling_rest_still_and_keep_bounces():
    rng = np.random.default_rng(0)
    y = layout.PLACE + 2
    bounce = layout.features(_bouncing(), 0.0, 48, 12.0)
    rest = bounce.copy()
    rest[:, 0, y] = 0.5 + rng.uniform(-0.02, 0.02, 48)  # at rest, trembling by up to 0.005 frame heights
    lows = lambda h: sum(h[i] >= h[i - 1] and h[i] > h[i + 1] + 0.004 / layout._Y_SPREAD for i in range(1, len(h) - 1))  # noqa: E731 - as world/measure.py finds contacts
    assert lows(rest[:, 0, y]) >= 3
    assert lows(layout.settle(rest, 0.006)[:, 0, y]) == 0 and np.ptp(layout.settle(rest, 0.006)[:, 0, y]) < 0.5 * np.ptp(rest[:, 0, y])
    settled = layout.settle(bounce, 0.006)
    assert [(i, j) for i, j, _ in layout.contact_frames(settled)] == [(i, j) for i, j, _ in layout.contact_frames(bounce)]  # bounces touch down when they did
    assert np.abs(settled[:, 0, y] - bounce[:, 0, y]).max() * layout._Y_SPREAD <= 0.006 + 1e-6
    assert np.array_equal(settled[..., : y], bounce[..., : y]) and np.array_equal(layout.settle(bounce, 0.0), bounce)
    kept = layout.settle(rest, 0.006, start=12)
    assert np.array_equal(kept[:12], rest[:12])  # frames carried over stay as they were


def test_rest_holds_a_landed_object_where_it_landed_and_keeps_bounces():
    y = layout.PLACE + 2
    bounce = layout.features(_bouncing(), 0.0, 48, 12.0)
    fell = bounce.copy()
    h = np.concatenate([np.linspace(0.10, 0.80, 10), 0.80 + 0.0015 * np.arange(1, 39)])  # falls, lands at frame 9, then sinks slowly
    fell[:, 0, y] = (h - layout._Y_MID) / layout._Y_SPREAD
    assert [i for i, j, _ in layout.contact_frames(fell)] == [9]
    rested = layout.rest(fell)
    assert np.allclose(rested[10:, 0, y], fell[9, 0, y]) and np.array_equal(rested[:10], fell[:10])  # still from its landing on
    assert [i for i, j, _ in layout.contact_frames(rested)] == [9]
    assert np.array_equal(layout.rest(bounce), bounce)  # a bouncing object rises after each contact: untouched
    kept = layout.rest(fell, start=20)
    assert np.array_equal(kept[:20], fell[:20]) and np.allclose(kept[20:, 0, y], fell[9, 0, y])  # frames carried over stay as they were


def _bouncing():
    from vitascope.world.scene import Scene, WorldObject

    return Scene(objects=(WorldObject("red", "ball", "big", "bouncing"),), seed=5, detail_seed=5, aspect=16 / 9)


def test_drawn_heights_and_contacts_are_read_where_the_layout_says():
    from vitascope.world.scene import contacts

    scene = _bouncing()
    s = simulate(5, height=64, width=112, seconds=4.0, scene=scene)
    feat = layout.features(scene, 0.0, 48, 12.0)
    got = layout.heights(s.frames, feat)
    true = feat[:, :, layout.PLACE + 2] * layout._Y_SPREAD + layout._Y_MID
    assert got.shape == (48, layout.SLOTS) and np.isnan(got[:, 1:]).all()  # one object; nothing drawn for empty slots
    assert np.nanmedian(np.abs(got[:, 0] - true[:, 0])) < 1 / 64  # within a pixel
    drawn = layout.drawn_contacts(got[:, 0])
    truth = [tc * 12 for tc, _ in contacts(scene.objects[0], 4.0) if 1 / 12 <= tc < 47 / 12]
    assert len(truth) >= 2 and all(any(abs(d - t) <= 1 for d in drawn) for t in truth) and len(drawn) <= len(truth)
    blank = np.zeros_like(s.frames)
    blank[:] = (135, 200, 240)
    assert np.isnan(layout.heights(blank, feat)).all()
    with pytest.raises(ValueError, match="as many frames"):
        layout.heights(s.frames[:10], feat)


def test_supersampled_maps_cover_edges_in_part_and_move_by_less_than_a_pixel():
    feat = layout.features(_bouncing(), 0.0, 2, 12.0)
    hard, soft = layout.maps(feat, 64, 112), layout.maps(feat, 64, 112, supersample=4)
    assert soft.shape == hard.shape and set(np.unique(hard[0])) <= {0.0, 1.0}
    edge = (soft[0] > 0) & (soft[0] < 1)
    assert edge.any() and abs(soft[0].sum() - hard[0].sum()) < 0.05 * hard[0].sum()  # the same area, its edge shared out
    inside = soft[0] > 0
    assert np.allclose(soft[1:4][:, inside] / soft[0][inside], hard[1:4][:, hard[0] > 0].mean(1, keepdims=True), atol=1e-5)  # one object: its colour wherever it covers
    nudged = feat.copy()
    nudged[:, :, layout.PLACE + 2] += 0.2 / 64 / layout._Y_SPREAD  # a fifth of a pixel lower
    assert not np.array_equal(layout.maps(nudged, 64, 112, supersample=4)[0], soft[0])
    with pytest.raises(ValueError, match="supersample"):
        layout.maps(feat, 64, 112, supersample=0)


def test_every_true_track_shows_its_motion_by_the_spec_and_mirrored_slides_go_the_other_way():
    from vitascope.models.world_parse import motion_class

    shown = 0
    for seed in range(40):
        for aspect in (16 / 9, 9 / 16, 1.0):
            scene = sample_scene(seed, aspect=aspect)
            feat = layout.features(scene, 0.0, 48, 12.0, aspect=aspect)
            for j, o in enumerate(scene.objects):
                motion = motion_class(o)
                assert layout.shows(feat, j, motion, o.shape, aspect), (seed, aspect, motion)
                shown += 1
                others = {"slide_left": "slide_right", "slide_right": "slide_left", "bouncing_left": "bouncing_right", "bouncing_right": "bouncing_left"}
                if motion in others:
                    turned = layout.mirror(feat, j, aspect)
                    assert layout.shows(turned, j, others[motion], o.shape, aspect) and not layout.shows(turned, j, motion, o.shape, aspect)
                    keep = [k for k in range(layout.FEATURES) if k not in (layout.PLACE, layout.PLACE + 1)]
                    assert np.allclose(turned[..., keep], feat[..., keep]) and np.array_equal(np.delete(turned, j, 1), np.delete(feat, j, 1))
                if motion in ("slide_left", "slide_right", "rising", "falling", "growing", "shrinking"):
                    assert not layout.shows(feat, j, "still", o.shape, aspect)  # a track that goes somewhere is not still
    assert shown > 150
    still = layout.features(replace(_bouncing(), objects=(replace(_bouncing().objects[0], motion="still"),)), 0.0, 48, 12.0)
    assert not layout.shows(still, 0, "bouncing", "ball", 16 / 9) and not layout.shows(still, 0, "slide_left", "ball", 16 / 9)


def test_a_continuing_window_is_mirrored_from_the_seam_about_where_the_object_was():
    from vitascope.world.scene import Scene, WorldObject

    aspect, start = 16 / 9, 12
    ball = WorldObject("red", "ball", "big", "slide_right", x0=0.6, speed=0.1)
    feat = layout.features(Scene(objects=(ball, replace(ball, colour="blue", motion="bouncing", x0=1.2)), seed=1, detail_seed=1, aspect=aspect), 0.0, 48, 12.0)
    left = layout.mirror(feat, 0, aspect)  # slides left
    back = layout.mirror(left, 0, aspect, start)  # a plan that turns back at the seam: the new frames go right from where it was
    turned = layout.mirror(back, 0, aspect, start)
    assert np.allclose(turned, left, atol=1e-5)  # mirrored twice: as it was
    assert np.array_equal(turned[:start], back[:start]) and np.array_equal(np.delete(turned, 0, 1), np.delete(back, 0, 1))
    x = layout.track(back, 0, aspect)[0]
    x2 = layout.track(turned, 0, aspect)[0]
    assert np.diff(x[:start]).max() < 0  # carried over: going left
    assert np.diff(x2).max() < 0 < np.diff(x[start:]).min()  # mirrored: it goes on left from where it was
    assert abs(x2[start] - x2[start - 1]) < 0.1  # no jump at the seam
    assert np.allclose(x2[start:] - x2[start - 1], -(x[start:] - x[start - 1]), atol=1e-4)
    assert layout.shows(turned, 0, "slide_left", "ball", aspect) and not layout.shows(back, 0, "slide_left", "ball", aspect)
    out, shown = fit_motions(back, [("slide_left", "ball"), None], aspect, start=start)
    assert shown == 1 and np.allclose(out, turned)
    assert fit_motions(back, [("slide_left", "ball"), None], aspect, mirror=False, start=start)[1] == 0


def test_first_window_plans_move_the_way_their_labels_say():
    from vitascope.models.world import fit_motions

    aspect = 16 / 9
    o = replace(_bouncing().objects[0], motion="slide_right", direction=0, speed=0.1)
    feat = layout.features(replace(_bouncing(), objects=(o,)), 0.0, 48, 12.0, aspect=aspect)
    wrong = layout.mirror(feat, 0, aspect)  # planned going left
    fixed, shown = fit_motions(wrong, [("slide_right", "ball"), None, None], aspect)
    assert shown == 1 and layout.shows(fixed, 0, "slide_right", "ball", aspect)
    assert fit_motions(feat, [("rising", "ball"), None, None], aspect)[1] == 0  # a slide is no rise, and is left as it is
    assert np.array_equal(fit_motions(feat, [("rising", "ball"), None, None], aspect)[0], feat)
    # the planner samples several layouts as one batch; the model draws the first that shows most
    torch.manual_seed(0)
    planner = world_plan.WorldPlanner(world_plan.Planner_configs["plan-tiny-labels"])
    torch.nn.init.normal_(planner.out.weight, std=0.5)  # an untrained planner whose samples differ
    tokens, mask = text.encode(["a red ball slides right"])
    null = text.encode([""])
    labels = world_plan.scene_labels(replace(_bouncing(), objects=(o,)))
    assert world_plan.label_reading(labels) == [("slide_right", "ball"), None, None]
    one = world_plan.sample(planner, tokens, mask, null, aspect, 48, steps=2, generator=torch.Generator().manual_seed(5), labels=labels)
    three = world_plan.sample(planner, tokens, mask, null, aspect, 48, steps=2, generator=torch.Generator().manual_seed(5), labels=labels, samples=3)
    assert one.shape == (48, layout.SLOTS, layout.FEATURES) and three.shape == (3, 48, layout.SLOTS, layout.FEATURES)
    assert not torch.allclose(three[0], three[1])
    with pytest.raises(ValueError, match="samples"):
        world_plan.sample(planner, tokens, mask, null, aspect, 48, steps=2, samples=0)
    m = WorldModel.random("t", "world-tiny-layout", planner=planner, plan_steps=2, plan_candidates=3)
    plan = m._layout(tokens, mask, np.zeros((0, layout.SLOTS, layout.FEATURES), np.float32), 0, 48, aspect, 64, 112, torch.Generator().manual_seed(1), labels=labels)[2]
    assert plan.shape == (48, layout.SLOTS, layout.FEATURES)
    with pytest.raises(ValueError, match="plan_candidates"):
        WorldModel.random("t", "world-tiny-layout", planner=planner, plan_candidates=0)


def test_crowded_counts_frames_where_objects_of_one_colour_meet():
    from vitascope.world.scene import Scene, WorldObject

    def plan(*objects):
        return layout.features(Scene(objects=objects, seed=1, detail_seed=1, aspect=16 / 9), 0.0, 48, 12.0)

    red = WorldObject("red", "ball", "big", "still", x0=0.5)
    assert layout.crowded(plan(red, replace(red, x0=0.55)), 16 / 9) == 48  # one blob all along
    assert layout.crowded(plan(red, replace(red, x0=1.4)), 16 / 9) == 0  # apart
    assert layout.crowded(plan(red, replace(red, x0=0.55, colour="blue")), 16 / 9) == 0  # two colours are two blobs
    passing = layout.crowded(plan(replace(red, x0=0.2, motion="slide_right", speed=0.15), replace(red, x0=1.4)), 16 / 9)
    assert 0 < passing < 48  # a slide that passes another meets it for a while


def test_objects_of_one_colour_planned_on_top_of_each_other_are_moved_apart_motions_kept():
    from vitascope.world.scene import Scene, WorldObject

    def plan(*objects, aspect=16 / 9):
        return layout.features(Scene(objects=objects, seed=1, detail_seed=1, aspect=aspect), 0.0, 48, 12.0)

    def touching(feat, a, b, aspect=16 / 9):
        return int(layout._touching(layout._centres(feat, a, aspect), layout._centres(feat, b, aspect)).sum())

    red = WorldObject("red", "ball", "big", "still", x0=0.8)
    cases = [
        (red, replace(red, x0=0.85)),  # two still balls, one blob
        (replace(red, motion="bouncing", direction=1, speed=0.05), replace(red, motion="bouncing", direction=1, speed=0.05, x0=0.9, phase=0.3)),
        (replace(red, motion="slide_right", speed=0.1, x0=0.3), replace(red, motion="slide_right", speed=0.1, x0=0.35)),
        (replace(red, shape="box", motion="rising"), replace(red, shape="box", motion="growing", x0=0.7), replace(red, colour="blue", x0=1.5)),
    ]
    for objects in cases:
        feat = plan(*objects)
        assert touching(feat, 0, 1) > 0
        out = layout.apart(feat, 16 / 9)
        assert touching(out, 0, 1) == 0, objects
        assert np.array_equal(out[:, 0], feat[:, 0])  # the first object of a colour stays where it was planned
        for j, o in enumerate(objects):
            x, y, s, turn = layout.track(feat, j, 16 / 9)
            x2, y2, s2, turn2 = layout.track(out, j, 16 / 9)
            assert np.allclose(y, y2) and np.allclose(s, s2) and np.allclose(turn, turn2)
            assert np.allclose(x2 - x, np.median(x2 - x), atol=1e-4)  # the whole track moved across by one amount
            want = o.motion if o.motion != "bouncing" else "bouncing_right"
            assert layout.shows(out, j, want, o.shape, 16 / 9) == layout.shows(feat, j, want, o.shape, 16 / 9)
            hidden = [((c[0] < c[2] / 2) | (c[0] > 16 / 9 - c[2] / 2)).sum() for c in (layout._centres(f, j, 16 / 9) for f in (feat, out))]
            assert hidden[1] <= hidden[0]  # no more out of the frame than planned
    # objects of two colours are two blobs, however close: left as planned
    apart_colours = plan(red, replace(red, colour="blue", x0=0.85))
    assert np.array_equal(layout.apart(apart_colours, 16 / 9), apart_colours)
    # where there is no room for both (two big balls in a narrow frame, still), they are left no closer than planned
    narrow = plan(replace(red, x0=0.28), replace(red, x0=0.3), aspect=9 / 16)
    assert touching(layout.apart(narrow, 9 / 16), 0, 1, 9 / 16) <= touching(narrow, 0, 1, 9 / 16)


def test_a_continuing_window_eases_objects_of_one_colour_apart_from_the_seam():
    from vitascope.world.scene import Scene, WorldObject

    aspect, start = 16 / 9, 12

    def plan(*objects):
        return layout.features(Scene(objects=objects, seed=1, detail_seed=1, aspect=aspect), 0.0, 48, 12.0)

    def touching(feat, a, b):
        return int(layout._touching(*(tuple(v[start:] for v in layout._centres(feat, j, aspect)) for j in (a, b))).sum())

    red = WorldObject("red", "ball", "big", "still", x0=0.8)
    cases = [
        (replace(red, motion="bouncing", direction=1, speed=0.05), replace(red, motion="bouncing", direction=1, speed=0.05, x0=0.9, phase=0.3)),
        (replace(red, motion="slide_right", speed=0.1, x0=0.3), replace(red, motion="slide_right", speed=0.1, x0=0.35)),
        (replace(red, shape="box", motion="rising"), replace(red, shape="box", motion="growing", x0=0.7), replace(red, colour="blue", x0=1.5)),
        (replace(red, motion="slide_left", speed=0.1, x0=1.3), replace(red, size="small", x0=0.6)),
    ]
    for objects in cases:
        feat = plan(*objects)
        out = layout.apart_after(feat, aspect, start)
        assert np.array_equal(out[:start], feat[:start])  # frames already drawn stay
        assert touching(out, 0, 1) < touching(feat, 0, 1) / 2, objects
        for j, o in enumerate(objects):
            x, y, s, turn = layout.track(feat, j, aspect)
            x2, y2, s2, turn2 = layout.track(out, j, aspect)
            assert np.allclose(y, y2) and np.allclose(s, s2) and np.allclose(turn, turn2)
            assert np.abs(np.diff(x2 - x)).max() < 0.07  # eased: no jump at the seam or after it
            dx, dx2 = (float(v[-6:].mean() - v[start : start + 6].mean()) for v in (x, x2))
            if o.motion.startswith("slide"):
                assert dx2 * dx > 0 and abs(dx2) >= abs(dx)  # a slide keeps its way and its length
            else:
                assert abs(dx2 - dx) <= layout._STAY * aspect + 1e-6
    # objects of two colours are left as planned
    two = plan(red, replace(red, colour="blue", x0=0.85))
    assert np.array_equal(layout.apart_after(two, aspect, start), two)


def test_world_model_moves_apart_objects_of_one_colour_a_first_window_whole_a_later_one_eased():
    torch.manual_seed(0)
    planner = world_plan.WorldPlanner(world_plan.Planner_configs["plan-tiny-labels"])
    from vitascope.world.scene import Scene, WorldObject

    red = WorldObject("red", "ball", "big", "still", x0=0.8)
    scene = Scene(objects=(red, replace(red, x0=0.85)), seed=1, detail_seed=1, aspect=16 / 9)
    known = layout.features(scene, 0.0, 12, 12.0)
    tokens, mask = text.encode(["two red balls"])
    labels = world_plan.scene_labels(scene)
    for keep in (True, False):
        m = WorldModel.random("t", "world-tiny-layout", planner=planner, plan_steps=2, keep_apart=keep)
        first = m._layout(tokens, mask, known[:0], 0, 48, 16 / 9, 64, 112, torch.Generator().manual_seed(1), labels=labels)[2]
        plain = WorldModel.random("t", "world-tiny-layout", planner=planner, plan_steps=2, keep_apart=False)
        drawn = plain._layout(tokens, mask, known[:0], 0, 48, 16 / 9, 64, 112, torch.Generator().manual_seed(1), labels=labels)[2]
        assert np.array_equal(first, layout.apart(drawn, 16 / 9) if keep else drawn)
        later = m._layout(tokens, mask, known, 12, 36, 16 / 9, 64, 112, torch.Generator().manual_seed(1), labels=labels)[2]
        assert np.array_equal(later[:12], known)  # known frames cannot move
        drawn = plain._layout(tokens, mask, known, 12, 36, 16 / 9, 64, 112, torch.Generator().manual_seed(1), labels=labels)[2]
        assert np.array_equal(later, np.concatenate([known, layout.apart_after(drawn[-48:], 16 / 9, 12)[12:]]) if keep else drawn)  # the new ones are eased apart


def test_windows_that_continue_a_plan_are_checked_only_for_which_way_things_move():
    torch.manual_seed(0)
    planner = world_plan.WorldPlanner(world_plan.Planner_configs["plan-tiny-labels"])
    torch.nn.init.normal_(planner.out.weight, std=0.5)
    o = replace(_bouncing().objects[0], motion="slide_right", direction=0, speed=0.1)
    scene = replace(_bouncing(), objects=(o,))
    known = layout.features(scene, 0.0, 12, 12.0)
    tokens, mask = text.encode(["a red ball slides right"])
    labels = world_plan.scene_labels(scene)
    calls = []
    real = world_plan.sample

    def counting(*a, **kw):
        calls.append(kw.get("samples", 1))
        return real(*a, **kw)

    world_plan.sample = counting
    try:
        m = WorldModel.random("t", "world-tiny-layout", planner=planner, plan_steps=2, continue_candidates=3)
        plan = m._layout(tokens, mask, known, 12, 36, 16 / 9, 64, 112, torch.Generator().manual_seed(1), labels=labels)[2]
        assert np.array_equal(plan[:12], known) and plan.shape == (48, layout.SLOTS, layout.FEATURES)  # the known frames stay
        m._layout(tokens, mask, known, 12, 36, 16 / 9, 64, 112, torch.Generator().manual_seed(1), labels=world_plan.scene_labels(_bouncing()))
    finally:
        world_plan.sample = real
    assert calls == [3, 1]  # a slide's continuation is chosen from 3; a bounce without a direction is not checked
    with pytest.raises(ValueError, match="continue_candidates"):
        WorldModel.random("t", "world-tiny-layout", planner=planner, continue_candidates=0)
