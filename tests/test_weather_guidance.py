"""Guidance on the weather (WorldModel.weather_guidance): rain pushed away from clear weather, but
not on the planned objects, and only where the parsers read rain."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from vitascope.models import text, world_parse, world_plan
from vitascope.models.base import GenerationRequest
from vitascope.models.world import GUIDE_CLEAR, PARSER_FILE, PHRASE_PARSER_FILE, WEIGHTS_DIR, WorldModel
from vitascope.world import sample_scene


@pytest.fixture(scope="module")
def model() -> WorldModel:
    torch.manual_seed(0)
    parser = world_parse.load_all([Path(WEIGHTS_DIR) / PARSER_FILE, Path(WEIGHTS_DIR) / PHRASE_PARSER_FILE])
    planner = world_plan.WorldPlanner(world_plan.Planner_configs["plan-tiny"])
    m = WorldModel.random("t", "world-tiny-layout-settings", steps=2, guidance=2.0, planner=planner, plan_steps=2, parser=parser, lexicon=None, bf16=False)
    with torch.no_grad():  # the layers that read the settings start at zero: give them something to read
        for p in m.net.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return m


def test_rain_is_guided_and_a_clear_sky_is_drawn_as_before(model):
    req = GenerationRequest(prompt="a red ball bounces on green grass while it rains", seconds=1, width=640, height=360, seed=3)
    model.weather_guidance = 0.0
    plain = model.generate(req, lambda f: None)
    clear_req = replace(req, prompt="a red ball bounces on green grass")
    clear_plain = model.generate(clear_req, lambda f: None)
    model.weather_guidance = 2.0
    guided = model.generate(req, lambda f: None)
    assert plain.info["settings"]["weather"] == "rain"
    assert not np.array_equal(plain.frames, guided.frames)
    assert np.array_equal(model.generate(clear_req, lambda f: None).frames, clear_plain.frames)
    assert np.array_equal(model.generate(req, lambda f: None).frames, guided.frames)  # reproducible


def test_one_step_is_pushed_away_from_clear_but_not_near_the_planned_objects(model):
    model.weather_guidance = 2.0
    scene = sample_scene(1)
    rain = torch.from_numpy(world_parse.settings_vector(replace(scene, weather="rain")))[None]
    clear = torch.from_numpy(world_parse.settings_vector(replace(scene, weather="clear")))[None]
    cfg = model.net.cfg
    T, H, W = 16, 32, 48
    lay = torch.zeros(1, cfg.layout, T, H, W)
    lay[:, 0, :, 10:16, 20:26] = 1  # one planned object
    tokens, mask = text.encode(["a red ball bounces while it rains"])
    ctx = (torch.zeros(1, 3, T, H, W), torch.zeros(1, cfg.audio_bands, T * cfg.env_per_frame), torch.zeros(1, 1, T))
    g = torch.Generator().manual_seed(0)
    x_v, x_a, t = torch.randn(1, 3, T, H, W, generator=g), torch.randn(1, cfg.audio_bands, T * cfg.env_per_frame, generator=g), torch.tensor([0.5])
    with torch.no_grad():
        base_v, base_a = model._velocity(tokens, mask, *ctx, lay, None, rain)(x_v, x_a, t)
        push_v, push_a = model._velocity(tokens, mask, *ctx, lay, None, rain, clear)(x_v, x_a, t)
    near = torch.zeros(H, W, dtype=torch.bool)
    near[10 - GUIDE_CLEAR : 16 + GUIDE_CLEAR, 20 - GUIDE_CLEAR : 26 + GUIDE_CLEAR] = True
    assert torch.equal(base_v[..., near], push_v[..., near])
    assert torch.equal(base_a, push_a)  # the sound's estimate is not guided
    assert ((base_v[..., ~near] - push_v[..., ~near]).abs() > 0).float().mean() > 0.9  # away from it, pushed


def test_negative_weather_guidance_is_refused():
    with pytest.raises(ValueError, match="weather_guidance must be at least 0"):
        WorldModel.random("t", "world-tiny", weather_guidance=-1.0)
