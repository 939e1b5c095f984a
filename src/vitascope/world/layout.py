"""Layouts: where the objects of a clip are, frame by frame, and what they are.

A layout is the plan of a clip's objects, the way layout-guided video diffusion plans boxes
before drawing (LLM-grounded video diffusion, GLIGEN's grounding boxes): for each frame and each
of up to SLOTS objects, whether it is there, its colour, its shape, where its centre is and how
big it is. The planner (models/world_plan.py) generates layouts from a prompt; the world model
draws a clip that follows one. The simulator gives the true layout of every training clip.

Two forms:
- `features`: (T, SLOTS, FEATURES) numbers of about unit spread, what the planner generates;
- `maps`: (LAYOUT_CHANNELS, T, H, W) pictures of a layout, what the world network reads beside
  the noisy clip: each object's silhouette (its shape at its place, size and turn), carrying its
  colour and a label of its shape, as a segmentation map conditions an image model (ControlNet,
  GLIGEN). The network draws the clip: sky, ground, weather, the objects' look, and the sound.
"""

from __future__ import annotations

import math

import numpy as np

from .render import draw_object, with_aspect
from .scene import COLOURS, SHAPES, Scene, object_state

SLOTS = 3
# present, colour label (one of the palette's, +1 for it and -1 for the rest: a generated layout
# names a colour of the world rather than a blend), shape label, cos and sin of the horizontal
# phase, height, size, cos and sin of the turn (times the shape's symmetry)
_COLOUR, _SHAPE = 1, 1 + len(COLOURS)
_PLACE = _SHAPE + len(SHAPES)
FEATURES = _PLACE + 6
LAYOUT_CHANNELS = 1 + 3 + len(SHAPES)  # silhouette, colour inside it, shape labels inside it
SYMMETRY = {"ball": 0, "box": 4, "triangle": 1}  # a turn of 2 pi / k looks the same; a ball looks the same at any turn
_Y_MID, _Y_SPREAD = 0.6, 0.25  # object centres lie at y in about 0.1..0.95 frame heights
_LOG_SCALE_MID, _LOG_SCALE_SPREAD = math.log(0.14), 0.5  # extents of 0.05..0.4 frame heights


def _period(aspect: float, scale: float) -> float:
    return aspect + scale  # objects wrap around the frame with room to leave it (scene.object_state)


def features(scene: Scene, start: float, n_frames: int, fps: float, aspect: float | None = None) -> np.ndarray:
    """The true layout of a scene's frames from `start`: (n_frames, SLOTS, FEATURES), float32.
    Slots past the scene's objects are absent (present = -1, the rest 0)."""
    if len(scene.objects) > SLOTS:
        raise ValueError(f"a layout holds at most {SLOTS} objects. Got {len(scene.objects)}.")
    if aspect is not None and abs(aspect - scene.aspect) > 1e-6:
        scene = with_aspect(scene, aspect)  # the scene seen through another aspect, as render() sees it
    aspect = scene.aspect
    out = np.zeros((n_frames, SLOTS, FEATURES), np.float32)
    out[:, :, 0] = -1
    for j, obj in enumerate(scene.objects):
        colour = np.full(len(COLOURS), -1, np.float32)
        colour[list(COLOURS).index(obj.colour)] = 1
        shape = np.full(len(SHAPES), -1, np.float32)
        shape[SHAPES.index(obj.shape)] = 1
        for i in range(n_frames):
            st = object_state(obj, start + i / fps, aspect)
            phase = 2 * math.pi * (st.x + st.scale / 2) / _period(aspect, st.scale)
            turn = SYMMETRY[obj.shape] * st.angle
            out[i, j] = [1, *colour, *shape, math.cos(phase), math.sin(phase), (st.y - _Y_MID) / _Y_SPREAD, (math.log(st.scale) - _LOG_SCALE_MID) / _LOG_SCALE_SPREAD, math.cos(turn), math.sin(turn)]
    return out


def objects(feat: np.ndarray, aspect: float) -> list[list[dict]]:
    """A layout's objects per frame, read back from features (generated ones included): for each
    frame, a list of {x, y, scale (frame heights), rgb (0-255), shape, angle} of the slots present."""
    frames = []
    for row in np.asarray(feat, np.float32):
        objs = []
        for f in row:
            if f[0] <= 0:
                continue
            cos_x, sin_x, y, log_scale, cos_turn, sin_turn = (float(v) for v in f[_PLACE:])
            scale = math.exp(log_scale * _LOG_SCALE_SPREAD + _LOG_SCALE_MID)
            phase = math.atan2(sin_x, cos_x) % (2 * math.pi)
            shape = SHAPES[int(np.argmax(f[_SHAPE:_PLACE]))]
            k = SYMMETRY[shape]
            objs.append(
                {
                    "x": phase / (2 * math.pi) * _period(aspect, scale) - scale / 2,
                    "y": y * _Y_SPREAD + _Y_MID,
                    "scale": scale,
                    "rgb": tuple(COLOURS[list(COLOURS)[int(np.argmax(f[_COLOUR:_SHAPE]))]]),
                    "shape": shape,
                    "angle": math.atan2(sin_turn, cos_turn) / k if k else 0.0,
                }
            )
        frames.append(objs)
    return frames


def maps(feat: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pictures of a layout for the world network: (LAYOUT_CHANNELS, T, height, width), float32.
    Channel 0 is 1 inside each object's silhouette (drawn as render draws the object, wrapping
    around the frame; a later slot covers an earlier one), channels 1-3 its colour in [-1, 1]
    there, channels 4-6 its shape label (1 for its shape) there; all 0 outside objects."""
    aspect = width / height
    T = len(feat)
    out = np.zeros((LAYOUT_CHANNELS, T, height, width), np.float32)
    owner = np.zeros((height, width), np.uint8)
    for i, objs in enumerate(objects(feat, aspect)):
        owner[:] = 0
        for j, o in enumerate(objs):
            draw_object(owner, None, o["shape"], o["x"], o["y"], o["scale"], o["angle"], j + 1, height, aspect)
        for j, o in enumerate(objs):
            inside = owner == j + 1
            rgb = np.array(o["rgb"], np.float32) / 127.5 - 1
            out[0, i][inside] = 1
            for c in range(3):
                out[1 + c, i][inside] = rgb[c]
            out[4 + SHAPES.index(o["shape"]), i][inside] = 1
    return out


CUE_CHANNELS = 2  # contacts of small objects, of big ones
_BIG = 0.15  # extent (frame heights) above which an object is big, as world/measure.py reads it
_DESCENT = 0.01  # frame heights per frame: an object coming down at least this fast...
_HALT = 0.005  # ...whose next frame comes down less than this has touched the ground


def contact_frames(feat: np.ndarray, fps: float = 12.0) -> list[tuple[int, int, float]]:
    """A layout's ground contacts, read off its tracks (generated ones included): (frame, slot,
    impact strength in [0, 1]) where an object that was coming down stops coming down (a bounce,
    a landing). Strength follows the simulator's loudness, the square root of the impact speed
    over 2 frame heights a second."""
    feat = np.asarray(feat, np.float32)
    out = []
    for j in range(feat.shape[1]):
        present = feat[:, j, 0] > 0
        y = feat[:, j, _PLACE + 2] * _Y_SPREAD + _Y_MID  # centre height, down the frame
        for i in range(1, len(feat) - 1):
            if not (present[i - 1] and present[i] and present[i + 1]):
                continue
            down = y[i] - y[i - 1]
            if down >= _DESCENT and y[i + 1] - y[i] < _HALT:
                out.append((i, j, min(down * fps / 2.0, 1.0) ** 0.5))
    return out


def cues(feat: np.ndarray, env_per_frame: int, fps: float = 12.0) -> np.ndarray:
    """Sound cues of a layout for the world network's audio: (CUE_CHANNELS, T * env_per_frame),
    float32, the strength of each contact at its frame's first envelope step, in the channel of
    the object's size (big objects sound lower and louder), 0 elsewhere. The network hears when
    and how hard what it draws touches the ground instead of finding it in its own frames."""
    feat = np.asarray(feat, np.float32)
    out = np.zeros((CUE_CHANNELS, len(feat) * env_per_frame), np.float32)
    for i, j, strength in contact_frames(feat, fps):
        scale = math.exp(feat[i, j, _PLACE + 3] * _LOG_SCALE_SPREAD + _LOG_SCALE_MID)
        c = int(scale > _BIG)
        out[c, i * env_per_frame] = max(out[c, i * env_per_frame], strength)
    return out


__all__ = ["CUE_CHANNELS", "FEATURES", "LAYOUT_CHANNELS", "SLOTS", "SYMMETRY", "contact_frames", "cues", "features", "maps", "objects"]
