"""Drawing a scene's frames at any size: sky, ground, their detail, objects and weather.

Frames are uint8 RGB arrays of shape (T, H, W, 3). Alongside them comes a mask of the object
pixels (T, H, W), which training uses to weight the loss towards the small things that matter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .scene import COLOURS, GROUNDS, HORIZON, SKIES, Scene, object_state

CLOUD = {"day": (245, 245, 245), "sunset": (250, 200, 190)}
RAIN = (150, 165, 195)
RAIN_FALL, RAIN_DRIFT = 1.3, 0.15  # rain's speed down and to the left, frame heights a second
SNOW_FALL = 0.18  # frame heights a second that the flakes fall
FLAKE = (250, 250, 255)


@dataclass
class Clip:
    frames: np.ndarray  # (T, H, W, 3) uint8
    masks: np.ndarray  # (T, H, W) bool, object pixels
    fps: float


def _detail(scene: Scene):
    """Background detail of a scene in world units: drawn once from the scene's detail seed."""
    rng = np.random.default_rng(scene.detail_seed)
    band = 2.0 * max(scene.aspect, 1.0) + 0.5  # width of the repeating strip of detail
    n_sky = 7 if scene.sky != "night" else 40
    sky = np.stack(
        [
            rng.uniform(0, band, n_sky),  # x
            rng.uniform(0.04, HORIZON - 0.08, n_sky),  # y
            rng.uniform(0.05, 0.11, n_sky) if scene.sky != "night" else np.full(n_sky, 0.007),  # rx
            rng.uniform(0.02, 0.035, n_sky) if scene.sky != "night" else np.full(n_sky, 0.007),  # ry
            rng.uniform(0, 1, n_sky),  # zoom phase
        ],
        1,
    )
    n_ground = 22
    ground = np.stack(
        [
            rng.uniform(0, band, n_ground),
            rng.uniform(HORIZON + 0.03, 0.99, n_ground),
            rng.uniform(0.02, 0.04, n_ground),
            np.full(n_ground, 0.006),
            rng.uniform(0, 1, n_ground),
        ],
        1,
    )
    n_w = 60 if scene.weather == "rain" else 45
    weather = np.stack([rng.uniform(0, band, n_w), rng.uniform(0, 1, n_w), rng.uniform(0, 1, n_w)], 1)
    return band, sky, ground, weather


def _paint(img, mask_out, y0, y1, x0, x1, inside_fn, colour, H):
    """Fill the pixels of box [y0,y1)x[x0,x1) (pixel indices, clipped) where inside_fn(y, x) holds."""
    h, w = img.shape[:2]
    y0, y1, x0, x1 = max(y0, 0), min(y1, h), max(x0, 0), min(x1, w)
    if y0 >= y1 or x0 >= x1:
        return
    ys = (np.arange(y0, y1) + 0.5)[:, None] / H
    xs = (np.arange(x0, x1) + 0.5)[None, :] / H
    m = inside_fn(ys, xs)
    region = img[y0:y1, x0:x1]
    region[m] = colour
    if mask_out is not None:
        mask_out[y0:y1, x0:x1] |= m


def _ellipse(img, cx, cy, rx, ry, colour, H, mask_out=None):
    rx, ry = max(rx, 0.5 / H), max(ry, 0.5 / H)
    _paint(
        img,
        mask_out,
        int(math.floor((cy - ry) * H)),
        int(math.ceil((cy + ry) * H)) + 1,
        int(math.floor((cx - rx) * H)),
        int(math.ceil((cx + rx) * H)) + 1,
        lambda y, x: ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0,
        colour,
        H,
    )


def draw_shape(img, mask, shape, cx, cy, s, angle, colour, H):
    r = s * 0.75  # covers the rotated square and triangle
    c, si = math.cos(angle), math.sin(angle)

    def inside(y, x):
        dx, dy = x - cx, y - cy
        u, v = c * dx + si * dy, -si * dx + c * dy  # rotate into the object's frame
        if shape == "ball":
            return dx * dx + dy * dy <= (s / 2) ** 2
        if shape == "box":
            return (np.abs(u) <= s / 2) & (np.abs(v) <= s / 2)
        return (v <= s / 2) & (np.abs(u) <= (v + s / 2) / 2)  # triangle, apex up

    _paint(
        img,
        mask,
        int(math.floor((cy - r) * H)),
        int(math.ceil((cy + r) * H)) + 1,
        int(math.floor((cx - r) * H)),
        int(math.ceil((cx + r) * H)) + 1,
        inside,
        colour,
        H,
    )


def draw_object(img, mask, shape, x, y, scale, angle, colour, H, aspect) -> None:
    """An object whose left edge is at x, as the frame shows it: horizontal motion wraps around
    the frame (scene.object_state), so the copy one period to the left is drawn too."""
    for shift in (0.0, -(aspect + scale)):
        cx = x + shift
        if -scale < cx < aspect + scale:
            draw_shape(img, mask, shape, cx, y, scale, angle, colour, H)


def _placed(scene: Scene, items: np.ndarray, t: float, band: float):
    """Screen positions and scale of detail items under the camera at time t."""
    x, y, rx, ry, phase = items.T
    if scene.camera in ("pan_left", "pan_right"):
        sign = 1 if scene.camera == "pan_left" else -1  # the world drifts against the camera
        x = (x + sign * scene.pan_speed * scene.aspect * t) % band
        return x, y, rx, ry
    if scene.camera == "zoom_in":
        cx, cy = scene.aspect / 2, HORIZON
        k = np.exp2((phase + t * scene.zoom_rate / math.log(2)) % 1.0)  # endless zoom, layered
        x = cx + ((x % band) / band * scene.aspect - cx) * k
        y = cy + (y - cy) * k
        return x, y, rx * k, ry * k
    return x, y, rx, ry


def render(scene: Scene, height: int, width: int, fps: float, n_frames: int, start: float = 0.0) -> Clip:
    """Render n_frames frames of the scene from time `start`, at height x width pixels."""
    H, W = height, width
    aspect = W / H
    if abs(aspect - scene.aspect) > 1e-6:
        scene = with_aspect(scene, aspect)
    band, sky_items, ground_items, weather_items = _detail(scene)
    sky_rgb = np.array(SKIES[scene.sky], np.uint8)
    ground_rgb = np.array(GROUNDS[scene.ground], np.uint8)
    tuft_rgb = (ground_rgb.astype(np.float32) * 0.82).astype(np.uint8)
    horizon_px = int(round(HORIZON * H))
    frames = np.empty((n_frames, H, W, 3), np.uint8)
    masks = np.zeros((n_frames, H, W), bool)
    for i in range(n_frames):
        t = start + i / fps
        img = frames[i]
        img[:horizon_px] = sky_rgb
        img[horizon_px:] = ground_rgb
        # sky detail, clipped to the sky
        xs, ys, rxs, rys = _placed(scene, sky_items, t, band)
        detail_rgb = CLOUD.get(scene.sky, (255, 255, 255))
        sky_view = img[:horizon_px]
        for x, y, rx, ry in zip(xs, ys, rxs, rys):
            if y + ry < HORIZON:
                for shift in (0.0, -band, band):
                    if -rx < x + shift < aspect + rx:
                        _ellipse(sky_view, x + shift, y, rx, ry, detail_rgb, H)
        xs, ys, rxs, rys = _placed(scene, ground_items, t, band)
        for x, y, rx, ry in zip(xs, ys, rxs, rys):
            if y - ry > HORIZON:
                for shift in (0.0, -band, band):
                    if -rx < x + shift < aspect + rx:
                        _ellipse(img, x + shift, y, rx, ry, tuft_rgb, H)
        for obj in scene.objects:
            st = object_state(obj, t, aspect)
            colour = COLOURS[obj.colour]
            draw_object(img, masks[i], obj.shape, st.x, st.y, st.scale, st.angle, colour, H, aspect)
        _weather(img, scene, weather_items, t, band, aspect, H)
    return Clip(frames=frames, masks=masks, fps=fps)


def _weather(img, scene: Scene, items: np.ndarray, t: float, band: float, aspect: float, H: int) -> None:
    if scene.weather == "clear":
        return
    x, y, phase = items.T
    if scene.weather == "rain":
        ys = (y + RAIN_FALL * t) % 1.1 - 0.05
        xs = (x - RAIN_DRIFT * t) % band
        for cx, cy in zip(xs, ys):
            if cx < aspect:
                for k in range(max(int(0.05 * H), 2)):  # a short slanted streak
                    py, px = int((cy + k / H) * H), int((cx - 0.3 * k / H) * H)
                    if 0 <= py < img.shape[0] and 0 <= px < img.shape[1]:
                        img[py, px] = RAIN
    else:
        ys = (y + SNOW_FALL * t) % 1.05 - 0.02
        xs = (x + 0.02 * np.sin(2 * math.pi * (0.4 * t + phase))) % band
        for cx, cy in zip(xs, ys):
            if cx < aspect:
                _ellipse(img, cx, cy, 0.009, 0.009, FLAKE, H)


def with_aspect(scene: Scene, aspect: float) -> Scene:
    """The same scene seen through a frame of another aspect: horizontal places scale with it."""
    from dataclasses import replace

    k = aspect / scene.aspect
    objs = tuple(replace(o, x0=o.x0 * k) for o in scene.objects)
    return replace(scene, aspect=aspect, objects=objs)
