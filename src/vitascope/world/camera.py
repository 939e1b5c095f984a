"""Moving the camera over frames drawn for a camera that holds still.

In this world a camera moves only the background's detail (shared/world-spec.md, "Camera and
weather"; `render._placed`): a pan drifts the clouds, stars and tufts sideways, against the
camera, a zoom spreads them from the middle of the horizon; the objects keep their places. The
world network draws every scene for a still camera, whatever the prompt says of the camera
(model card, sessions 14 and 18: 23 of 27 pans drawn static). So the world model moves the
camera itself, over what the network drew, the way training-free camera control moves a video
model's frames or latents (CamTrol, MotionMaster): `move` lifts the background the network drew
into one still picture, moves that picture as the camera moves, and lays each frame's drawn
objects and rain back over it. The picture is the first frame's background where it shows
detail (clouds, stars, tufts) or the clip's still background (each pixel's median over the
frames where no object covers it), that median elsewhere, and near the first frame's objects,
whose haze even the median holds, its row's colour. The network's detail flickers from frame to
frame; in a moving shot the first frame's holds still and moves. Snow the network draws is
white, as stars are, and moves with the stars. A still camera is held still the same way
(`hold`): the picture, not moved, behind each frame's objects and rain, so that what the network
draws around a moving object (a haze that drifts with it) does not read as the background moving.

The network draws the world's falling snow as a still speckle too (model card, session 24):
`fall` takes the specks it drew out of each frame and lays the first frame's lower in each
frame, as the world's flakes fall.

Every pixel still comes from the network; only where the background's pixels are shown moves.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import ndimage

from .measure import _PALETTE, OBJECT_IDS, OBJECT_NEAR, min_object_area, nearest_palette, rain_pixels, specks, white_pixels
from .render import SNOW_FALL
from .scene import HORIZON, Scene

CAMERAS_MOVING = ("pan_left", "pan_right", "zoom_in")
PAN_SPEED = Scene.__dataclass_fields__["pan_speed"].default  # frame widths per second
ZOOM_RATE = Scene.__dataclass_fields__["zoom_rate"].default  # log-scale per second
_DETAIL_IDS = [i for i, (_, (k, _)) in enumerate(_PALETTE) if k in ("cloud", "tuft", "white")]
_DETAIL_NEAR = 24  # colour distance within which a first-frame pixel is background detail, or the still background (tighter than measure.py's 40: soft edges are not detail)
_HAZE = 0.12  # frame heights around the first frame's objects where the still picture is its row's colour


def rain_coloured(frames: np.ndarray, palette: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """(..., H, W) bool: pixels of the rain's colour. palette: `nearest_palette(frames)`, if read."""
    idx, dist = nearest_palette(frames) if palette is None else palette
    return rain_pixels(idx, dist)


def object_coloured(frames: np.ndarray, palette: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """(T, H, W) bool: blobs of an object's colour, wherever the network drew them (an object
    drawn beside its planned place is an object still, not background to move), at least as big
    as world/measure.py's smallest object; specks of such colours (the edge of a cloud) are not.
    palette: `nearest_palette(frames)`, if read."""
    H = frames.shape[1]
    idx, dist = nearest_palette(frames) if palette is None else palette
    near = np.isin(idx, list(OBJECT_IDS)) & (dist < OBJECT_NEAR)
    flat = np.zeros((3, 3, 3), bool)
    flat[1] = ndimage.generate_binary_structure(2, 1)  # blobs within a frame, not across frames
    lab, n = ndimage.label(near, structure=flat)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    big = sizes >= min_object_area(H)
    big[0] = False
    return big[lab]


def background(frames: np.ndarray, objects: np.ndarray) -> np.ndarray:
    """The still background of drawn frames (T, H, W, 3) uint8: each pixel's median over the
    frames where `objects` (T, H, W) bool leaves it uncovered; a pixel the objects cover in every
    frame takes its row's median (sky and ground are bands across the frame). (H, W, 3) uint8."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3). Got {frames.shape}.")
    if objects.shape != frames.shape[:3]:
        raise ValueError(f"objects must be (T, H, W) = {frames.shape[:3]}. Got {objects.shape}.")
    seen = np.where(objects[..., None], np.nan, frames.astype(np.float32))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices, filled below
        plate = np.nanmedian(seen, axis=0)  # (H, W, 3), NaN where never uncovered
        rows = np.nanmedian(plate, axis=1, keepdims=True)  # (H, 1, 3)
    plate = np.where(np.isnan(plate), np.broadcast_to(rows, plate.shape), plate)
    if np.isnan(plate).any():  # whole rows covered: the nearest row's colour
        filled = ~np.isnan(plate[:, 0, 0])
        if not filled.any():
            return np.asarray(frames[0], np.uint8).copy()
        nearest = ndimage.distance_transform_edt(~filled, return_distances=False, return_indices=True)[0]
        plate = plate[nearest]
    return np.clip(np.round(plate), 0, 255).astype(np.uint8)


def view(plate: np.ndarray, camera: str, t: float, pan_speed: float = PAN_SPEED, zoom_rate: float = ZOOM_RATE) -> np.ndarray:
    """The still background `plate` (H, W, 3) as the camera shows it t seconds on: panned
    (the picture drifts against the camera, wrapping around the frame as the world's detail
    does) or zoomed in about the middle of the horizon, in whole pixels. (H, W, 3)."""
    H, W = plate.shape[:2]
    if camera == "static" or t == 0:
        return plate
    if camera in ("pan_left", "pan_right"):
        sign = 1 if camera == "pan_left" else -1  # panning left, the world drifts right
        return np.roll(plate, int(round(sign * pan_speed * W * t)), axis=1)
    if camera == "zoom_in":
        k = math.exp(zoom_rate * t)
        cy, cx = HORIZON * H, W / 2
        ys = np.clip(np.floor(cy + (np.arange(H) + 0.5 - cy) / k), 0, H - 1).astype(int)
        xs = np.clip(np.floor(cx + (np.arange(W) + 0.5 - cx) / k), 0, W - 1).astype(int)
        return plate[ys[:, None], xs[None, :]]
    raise ValueError(f"camera must be one of static, {', '.join(CAMERAS_MOVING)}. Got {camera!r}.")


def move(frames: np.ndarray, objects: np.ndarray, camera: str, fps: float, t0: float = 0.0, pan_speed: float = PAN_SPEED, zoom_rate: float = ZOOM_RATE, grow: int = 1, hold: bool = False, falling: bool = False) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 drawn for a still camera, as `camera` shows them: frame i is
    t0 + i / fps seconds after the moment of the first frame, whose background they all show
    moved (t0 = 1 / fps for frames that continue a clip whose last frame is that moment, 0 for a
    clip's first frame). Pixels inside `objects` (T, H, W) bool or of an object's colour anywhere
    (`object_coloured`), grown by `grow` pixels, and pixels of rain stay as drawn; the rest show
    the moved background. A static camera returns the frames as they are, or with `hold` shows
    the still picture behind the objects in every frame: what the network drew around a moving
    object (the haze it trails, which drifts with it, as a pan's background does) is gone.
    falling: white specks stay as drawn too (snow falls through each frame, as rain does)."""
    if camera == "static" and not hold:
        return frames
    if camera not in CAMERAS_MOVING + ("static",):
        raise ValueError(f"camera must be one of static, {', '.join(CAMERAS_MOVING)}. Got {camera!r}.")
    frames = np.asarray(frames, np.uint8)
    palette = nearest_palette(frames)
    objects = np.asarray(objects, bool) | object_coloured(frames, palette)
    if grow > 0:
        objects = ndimage.binary_dilation(objects, structure=np.ones((1, 3, 3), bool), iterations=grow)
    # the still picture: the first frame's background (the network's detail flickers from frame to
    # frame, and a median over the clip keeps little of it: 21 star and tuft pixels of 101 on a
    # night scene), the clip's still background behind that frame's objects and rain, and where
    # it shows neither detail nor the still background
    rain = rain_coloured(frames, palette)
    still = background(frames, objects)
    idx, dist = palette
    detail = np.isin(idx[0], _DETAIL_IDS) & (dist[0] < _DETAIL_NEAR)  # clouds, stars, tufts
    near = np.abs(frames[0].astype(np.int16) - still.astype(np.int16)).max(-1) <= _DETAIL_NEAR
    # haze an object trails (the network draws a moving object's past as a smear beside it) is
    # neither: left in the picture it would drift with the camera, a ghost
    plate = np.where((rain[0] | ~(detail | near))[..., None], still, frames[0])
    # near the first frame's objects even the median holds their haze (a ball bouncing in place
    # smears the same sky in most frames): there the picture is its row's colour, sky or ground
    around = ndimage.binary_dilation(objects[0], iterations=max(1, round(_HAZE * frames.shape[1])))
    clear = np.where(around[..., None], np.nan, still.astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rows all near objects: their median is used
        rows = np.nanmedian(clear, axis=1, keepdims=True)
    rows = np.where(np.isnan(rows), np.median(still, axis=1, keepdims=True), rows)
    plate = np.where(around[..., None], np.broadcast_to(rows, plate.shape), plate).round().astype(np.uint8)
    keep = objects | rain  # rain falls through each frame as drawn
    if falling:
        keep = keep | white_pixels(idx, dist)
    out = frames.copy()
    for i in range(len(frames)):
        shown = view(plate, camera, t0 + i / fps, pan_speed, zoom_rate)
        out[i] = np.where(keep[i, ..., None], frames[i], shown)
    return out


SNOW_SPEED = SNOW_FALL  # frame heights a second that the world's flakes fall (render._weather)


def flakes(frames: np.ndarray, objects: np.ndarray, palette=None) -> np.ndarray:
    """(T, H, W) bool: the white specks of frames (T, H, W, 3) uint8 that may be snow: pixels of
    a flake's white (`measure.white_pixels`, which holds a cloud's white too) in parts no larger
    than the measurement's flakes, off `objects` (T, H, W) bool grown by a pixel."""
    idx, dist = palette if palette is not None else nearest_palette(frames)
    return _specks_off(white_pixels(idx, dist), objects)  # as measure._weather keeps them


def drops(frames: np.ndarray, objects: np.ndarray, palette=None) -> np.ndarray:
    """(T, H, W) bool: the specks of frames (T, H, W, 3) uint8 that may be rain: pixels of the
    rain's colour (`measure.rain_pixels`) in parts no larger than a flake, off `objects` (T, H, W)
    bool grown by a pixel."""
    idx, dist = palette if palette is not None else nearest_palette(frames)
    return _specks_off(rain_pixels(idx, dist), objects)


def _specks_off(mask: np.ndarray, objects: np.ndarray) -> np.ndarray:
    """The parts of mask (T, H, W) bool no larger than a flake (`measure.specks`), off `objects`
    (T, H, W) bool grown by a pixel."""
    mask = mask & ~ndimage.binary_dilation(np.asarray(objects, bool), structure=np.ones((1, 3, 3), bool))
    return specks(mask, mask.shape[1])


def fall(frames: np.ndarray, objects: np.ndarray, fps: float, t0: float = 0.0, speed: float = SNOW_SPEED, drift: float = 0.0, rain: bool = False) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 whose snow (or, with rain=True, rain) falls. The network learned
    the world's one-pixel flakes as a still speckle (model card, session 24), and its rain as specks
    scattered afresh in every frame (session 26): the specks it drew in the first frame (`flakes`,
    or `drops`) are taken out of every frame, each frame showing there what its 3x3 neighbourhood
    shows most (its median), and laid again, in their drawn colours, `speed` frame heights a second
    lower and `drift` to the left in each later frame (t0 + i / fps seconds after the first frame's
    moment, as in `move`), wrapping from the bottom to the top, behind the objects: pixels inside
    `objects` (T, H, W) bool or of an object's colour anywhere (`object_coloured`), as `move` keeps
    them. Every pixel still comes from the network; only where its specks are shown moves."""
    frames = np.asarray(frames, np.uint8)
    T, H, W, _ = frames.shape
    palette = nearest_palette(frames)
    objects = np.asarray(objects, bool) | object_coloured(frames, palette)
    drawn = (drops if rain else flakes)(frames, objects, palette)
    out = np.where(drawn[..., None], ndimage.median_filter(frames, size=(1, 3, 3, 1)), frames)
    ys, xs = np.nonzero(drawn[0])
    colours = frames[0][ys, xs]
    for i in range(T):
        t = t0 + i / fps
        y = (ys + int(round(speed * H * t))) % H
        x = (xs - int(round(drift * H * t))) % W
        shown = ~objects[i][y, x]
        out[i, y[shown], x[shown]] = colours[shown]
    return out
