"""Moving the camera over frames drawn for a still one (world/camera.py), and the world model doing so."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from vitascope.models import world_parse, world_plan
from vitascope.models.base import GenerationRequest
from vitascope.models.world import PARSER_FILE, PHRASE_PARSER_FILE, WEIGHTS_DIR, WorldModel
from vitascope.world import camera, render, sample_scene
from vitascope.world.measure import measure


def _still_scene(seed: int, aspect: float, **kw):
    scene = sample_scene(seed, aspect=aspect)
    return replace(scene, camera="static", weather="clear", **kw)


@pytest.mark.parametrize("cam", ["pan_left", "pan_right", "zoom_in"])
def test_moved_still_frames_are_measured_as_the_camera_and_keep_their_objects(cam):
    for seed, (H, W), sky in ((3, (64, 112), "day"), (8, (112, 64), "sunset"), (21, (64, 64), "day")):
        scene = _still_scene(seed, W / H, sky=sky)
        clip = render(scene, H, W, 12.0, 48)
        assert measure(clip.frames, 12.0).camera == "static"
        moved = camera.move(clip.frames, clip.masks, cam, 12.0)
        assert moved.shape == clip.frames.shape and moved.dtype == np.uint8
        assert measure(moved, 12.0).camera == cam, (seed, cam)
        assert np.array_equal(moved[clip.masks], clip.frames[clip.masks])  # objects stay as drawn
        far = ~ndimage.binary_dilation(clip.masks[0], np.ones((3, 3), bool), iterations=round(camera._HAZE * H) + 1)  # the objects grown by a pixel, then the haze around them
        assert np.array_equal(moved[0][far], clip.frames[0][far])  # the first frame is the still picture's moment (near objects, its rows' colour)
        assert not np.array_equal(moved[-1], clip.frames[-1])


def test_pan_drifts_the_background_against_the_camera_by_the_worlds_speed():
    plate = np.zeros((8, 100, 3), np.uint8)
    plate[2, 10] = 255  # one bright detail pixel
    frames = np.repeat(plate[None], 13, 0)
    none = np.zeros(frames.shape[:3], bool)
    left = camera.move(frames, none, "pan_left", 12.0, grow=0)
    right = camera.move(frames, none, "pan_right", 12.0, grow=0)
    shift = round(camera.PAN_SPEED * 100 * 1.0)  # one second on: 0.09 frame widths
    assert left[12, 2, 10 + shift].max() == 255 and left[12, 2, 10] .max() == 0  # the world drifts right as the camera pans left
    assert right[12, 2, 10 - shift].max() == 255
    cont = camera.move(frames[:1], none[:1], "pan_left", 12.0, t0=1 / 12, grow=0)  # continuing a clip: a frame after the still moment
    assert cont[0, 2, 11].max() == 255
    assert np.array_equal(camera.move(frames, none, "static", 12.0), frames)


def test_background_fills_what_objects_always_cover_from_its_row_and_keeps_weather_in_place():
    frames = np.zeros((4, 6, 10, 3), np.uint8)
    frames[:, :3] = (135, 200, 240)  # sky
    frames[:, 3:] = (70, 150, 60)  # ground
    objects = np.zeros((4, 6, 10), bool)
    objects[:, 1:5, 4:6] = True  # an object that never moves
    frames[objects] = (220, 40, 40)
    plate = camera.background(frames, objects)
    assert (plate[:3] == (135, 200, 240)).all() and (plate[3:] == (70, 150, 60)).all()
    rain = frames.copy()
    rain[2, 0, 8] = (150, 165, 195)  # a streak of rain in one frame, not the background
    moved = camera.move(rain, objects, "pan_right", 12.0, grow=0)
    assert tuple(moved[2, 0, 8]) == (150, 165, 195)
    with pytest.raises(ValueError, match="camera must be one of"):
        camera.move(frames, objects, "dolly", 12.0)
    with pytest.raises(ValueError, match="objects must be"):
        camera.background(frames, objects[:, :3])


def test_hold_shows_one_still_background_behind_the_objects_as_drawn():
    """A still camera held: the haze a moving object trails (which the measurement reads as the
    background drifting) is gone, every frame shows the same background, objects stay as drawn."""
    T, H, W = 12, 16, 40
    frames = np.zeros((T, H, W, 3), np.uint8)
    frames[:, :8] = (135, 200, 240)
    frames[:, 8:] = (70, 150, 60)
    objects = np.zeros((T, H, W), bool)
    for i in range(T):
        x = 4 + 2 * i
        objects[i, 9:13, x : x + 4] = True
        frames[i, 9:13, max(0, x - 6) : x] = (150, 120, 80)  # the haze behind it, of no palette colour
    frames[objects] = (220, 40, 40)
    held = camera.move(frames, objects, "static", 12.0, hold=True, grow=0)
    assert np.array_equal(held[objects], frames[objects])
    outside = ~objects.any(0)  # never covered: the still background, the same in every frame
    assert (held[:, outside] == held[0, outside]).all()
    assert (held[:, 9:13][~objects[:, 9:13]] == (70, 150, 60)).all()  # the haze is ground again
    assert np.array_equal(camera.move(frames, objects, "static", 12.0), frames)  # without hold: as drawn
    snow = frames.copy()
    snow[3, 2, 30] = (250, 250, 255)  # a flake in one frame
    assert tuple(camera.move(snow, objects, "static", 12.0, hold=True, falling=True, grow=0)[3, 2, 30]) == (250, 250, 255)


def test_world_model_moves_the_camera_the_prompt_asks_for():
    """The shipped parsers read the camera; the planned clip's background moves with it, its first
    frame and objects as drawn. A still camera, or move_camera=False, leaves the frames as drawn."""
    torch.manual_seed(0)
    parser = world_parse.load_all([Path(WEIGHTS_DIR) / PARSER_FILE, Path(WEIGHTS_DIR) / PHRASE_PARSER_FILE])
    planner = world_plan.WorldPlanner(world_plan.Planner_configs["plan-tiny"])
    m = WorldModel.random("t", "world-tiny-layout", steps=2, guidance=2.0, planner=planner, plan_steps=2, parser=parser, lexicon=None)
    req = GenerationRequest(prompt="a red ball bounces on green grass; the camera pans left", seconds=1, width=640, height=360, seed=4)
    moved = m.generate(req, lambda f: None)
    assert moved.info["camera"] == "pan_left"
    m.move_camera = False
    drawn = m.generate(req, lambda f: None)
    assert drawn.info["camera"] == "static"
    assert not np.array_equal(moved.frames, drawn.frames)
    assert np.array_equal(moved.audio, drawn.audio)  # the sound is the layout's, not moved
    m.move_camera = True
    still = m.generate(replace(req, prompt="a red ball bounces on green grass"), lambda f: None)
    assert still.info["camera"] == "static"
    m.hold_camera = False
    drawn = m.generate(replace(req, prompt="a red ball bounces on green grass"), lambda f: None)
    assert not np.array_equal(still.frames, drawn.frames)  # held still behind the ball, or as drawn
    assert np.array_equal(still.audio, drawn.audio)


def test_fall_makes_a_still_speckle_fall_as_the_worlds_snow_and_keeps_the_objects():
    """The network draws snow as a still speckle: the world's flakes of one frame, frozen, read as
    clear weather. `fall` takes the specks out and lays them lower in each frame at the world's
    snow speed: read as snow, the objects as drawn, every pixel one the frames hold."""
    for seed, (H, W) in ((3, (64, 112)), (8, (112, 64))):
        scene = replace(sample_scene(seed, aspect=W / H), camera="static", weather="snow", sky="day", ground="grass")
        clip = render(scene, H, W, 12.0, 48)
        assert measure(clip.frames, 12.0).weather == "snow"
        still = np.repeat(clip.frames[:1], 48, axis=0)  # the flakes of the first frame, not falling
        objects = np.repeat(clip.masks[:1], 48, axis=0)
        assert measure(still, 12.0).weather == "clear"
        fell = camera.fall(still, objects, 12.0)
        assert fell.shape == still.shape and fell.dtype == np.uint8
        assert measure(fell, 12.0).weather == "snow"
        assert np.array_equal(fell[objects], still[objects])  # objects as drawn
        specks = camera.flakes(still, objects)
        assert specks[0].sum() >= 10 and np.array_equal(fell[0][specks[0]], still[0][specks[0]])  # the first frame's specks where drawn
        moved = camera.fall(still, objects, 12.0, t0=1.0)  # a second later: 0.18 frame heights lower
        ys, xs = np.nonzero(specks[0])
        lower = (ys + round(camera.SNOW_SPEED * H)) % H
        off = ~objects[0][lower, xs]
        assert np.array_equal(moved[0][lower[off], xs[off]], still[0][ys[off], xs[off]])
    clear = render(replace(sample_scene(5, aspect=16 / 9), weather="clear", sky="sunset"), 64, 112, 12.0, 12)
    assert not camera.flakes(clear.frames, clear.masks).any()  # no white specks: nothing moves
    assert np.array_equal(camera.fall(clear.frames, clear.masks, 12.0), clear.frames)


def test_fall_makes_rain_scattered_afresh_each_frame_fall_as_the_worlds_rain():
    """The network draws rain as specks scattered afresh in every frame, which do not fall and read
    as clear weather. `fall(rain=True)` takes them out and lays the first frame's lower and to the
    left in each frame at the world's rain speed: read as rain, the objects as drawn."""
    from vitascope.world.render import RAIN_DRIFT, RAIN_FALL

    H, W, T = 64, 112, 48
    scene = replace(sample_scene(4, aspect=W / H), camera="static", weather="rain", sky="day", ground="grass")
    rain = render(scene, H, W, 12.0, T)
    dry = render(replace(scene, weather="clear"), H, W, 12.0, T)
    assert measure(rain.frames, 12.0).weather == "rain"
    wet = np.any(rain.frames != dry.frames, axis=-1)  # the rain's pixels in each frame
    order = np.random.default_rng(0).permutation(T)
    scattered = np.where(wet[order][..., None], rain.frames[order], dry.frames)  # another moment's rain in each frame
    scattered = np.where(dry.masks[..., None], dry.frames, scattered)  # behind the objects
    assert measure(scattered, 12.0).weather == "clear"
    fell = camera.fall(scattered, dry.masks, 12.0, speed=RAIN_FALL, drift=RAIN_DRIFT, rain=True)
    assert fell.shape == scattered.shape and fell.dtype == np.uint8
    assert measure(fell, 12.0).weather == "rain"
    assert np.array_equal(fell[dry.masks], scattered[dry.masks])  # objects as drawn
    drops = camera.drops(scattered, dry.masks)
    assert drops[0].sum() >= 20
    moved = camera.fall(scattered, dry.masks, 12.0, t0=0.5, speed=RAIN_FALL, drift=RAIN_DRIFT, rain=True)
    ys, xs = np.nonzero(drops[0])
    y, x = (ys + round(RAIN_FALL * H * 0.5)) % H, (xs - round(RAIN_DRIFT * H * 0.5)) % W
    off = ~dry.masks[0][y, x]
    assert np.array_equal(moved[0][y[off], x[off]], scattered[0][ys[off], xs[off]])
