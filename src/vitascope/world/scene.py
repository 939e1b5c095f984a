"""Scenes of Vitascope World v1 (shared/world-spec.md): what is in a clip and how it moves.

Coordinates are in units of the frame height: y runs from 0 (top) to 1 (bottom), x from 0 to
the aspect ratio (width / height), so objects keep their size relative to the frame height at
any aspect. Time is in seconds. Every function here is pure: a scene plus a time gives a state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

HORIZON = 0.62  # fraction of the frame height, from the top

SKIES = {"day": (135, 200, 240), "sunset": (245, 150, 90), "night": (25, 30, 70)}
GROUNDS = {"grass": (70, 150, 60), "sand": (225, 205, 150), "snow": (235, 240, 248)}
COLOURS = {
    "red": (220, 40, 40),
    "blue": (40, 70, 210),
    "yellow": (245, 205, 30),
    "purple": (140, 60, 190),
    "pink": (240, 110, 180),
    "cyan": (30, 200, 190),
}
SHAPES = ("ball", "box", "triangle")
SIZES = {"small": 0.10, "big": 0.20}  # object extent across, in frame heights
MOTIONS = (
    "still",
    "bouncing",
    "falling",
    "slide_left",
    "slide_right",
    "rising",
    "spinning",
    "growing",
    "shrinking",
)
CAMERAS = ("static", "pan_left", "pan_right", "zoom_in")
WEATHERS = ("clear", "rain", "snow")

GRAVITY = 2.4  # frame heights per second squared


@dataclass(frozen=True)
class WorldObject:
    colour: str
    shape: str
    size: str
    motion: str
    direction: int = 0  # -1 left, +1 right: for bouncing that travels
    # Free parameters that the caption does not fix, drawn per scene.
    x0: float = 0.5  # start centre, frame heights from the left edge
    base: float = 0.85  # ground line the object rests on (its bottom), frame heights from the top
    speed: float = 0.0  # horizontal speed, frame widths per second
    period: float = 1.2  # bounce period, seconds
    height: float = 0.2  # bounce height, frame heights
    phase: float = 0.0  # bounce phase, seconds
    spin: float = 0.4  # turns per second
    top: float = 0.2  # start height of a fall (centre), frame heights

    @property
    def extent(self) -> float:
        return SIZES[self.size]


@dataclass(frozen=True)
class Scene:
    sky: str = "day"
    ground: str = "grass"
    camera: str = "static"
    weather: str = "clear"
    objects: tuple[WorldObject, ...] = ()
    seed: int = 0
    aspect: float = 16 / 9
    # background detail: positions in world units, drawn once per scene
    detail_seed: int = 0
    pan_speed: float = 0.09  # frame widths per second for panning cameras
    zoom_rate: float = 0.16  # log-scale per second for a zooming camera
    extras: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class ObjectState:
    x: float  # centre, frame heights
    y: float  # centre, frame heights
    scale: float  # extent across, frame heights
    angle: float  # radians
    visible: bool = True


def object_state(obj: WorldObject, t: float, aspect: float) -> ObjectState:
    """Where an object is at time t (seconds). Horizontal motion wraps around the frame."""
    scale = obj.extent
    half = scale / 2
    x, y, angle = obj.x0, obj.base - half, 0.0
    if obj.motion in ("slide_left", "slide_right") or (obj.motion == "bouncing" and obj.direction):
        sign = -1 if (obj.motion == "slide_left" or obj.direction < 0) else 1
        x = obj.x0 + sign * obj.speed * aspect * t
        if obj.motion in ("slide_left", "slide_right"):
            angle = -sign * (obj.speed * aspect * t) / max(half, 1e-6)  # rolling
            if obj.shape != "ball":
                angle = 0.0
    if obj.motion == "bouncing":
        u = (t + obj.phase) % obj.period
        vy = GRAVITY * obj.period / 2
        h = vy * u - GRAVITY * u * u / 2  # height above ground, zero at contacts
        y = obj.base - half - h
    elif obj.motion == "falling":
        y = obj.base - half - _fall_height(obj, t)
    elif obj.motion == "rising":
        lift = min(0.11 * t, obj.base - half - 0.08 - half)
        y = obj.base - half - lift + 0.01 * math.sin(2 * math.pi * 0.5 * t) * (t > 6)
    elif obj.motion == "spinning":
        angle = 2 * math.pi * obj.spin * t
    elif obj.motion == "growing":
        scale = obj.extent * min(1 + 0.16 * t, 1.96)
        y = obj.base - scale / 2
    elif obj.motion == "shrinking":
        scale = obj.extent / min(1 + 0.16 * t, 1.96)
        y = obj.base - scale / 2
    period = aspect + scale  # wrap with room to leave the frame entirely
    x = (x + scale / 2) % period - scale / 2
    return ObjectState(x=x, y=y, scale=scale, angle=angle)


def _fall_flights(obj: WorldObject) -> tuple[float, float, list[tuple[float, float]]]:
    """A falling object's drop height, landing time, and its damped bounces as (start, speed)."""
    drop = max(obj.base - obj.extent / 2 - obj.top, 1e-4)
    t_land = math.sqrt(2 * drop / GRAVITY)
    flights, t, v = [], t_land, GRAVITY * t_land
    while v * 0.5 > 0.3:
        v *= 0.5  # restitution
        flights.append((t, v))
        t += 2 * v / GRAVITY
    return drop, t_land, flights


def _fall_height(obj: WorldObject, t: float) -> float:
    drop, t_land, flights = _fall_flights(obj)
    if t < t_land:
        return drop - GRAVITY * t * t / 2
    for t0, v in flights:
        u = t - t0
        if 0 <= u < 2 * v / GRAVITY:
            return v * u - GRAVITY * u * u / 2
    return 0.0


def contacts(obj: WorldObject, duration: float) -> list[tuple[float, float]]:
    """Ground contacts in [0, duration): (time, impact speed in frame heights per second)."""
    out: list[tuple[float, float]] = []
    if obj.motion == "bouncing":
        vy = GRAVITY * obj.period / 2
        t = (obj.period - obj.phase % obj.period) % obj.period
        while t < duration:
            out.append((t, vy))
            t += obj.period
    elif obj.motion == "falling":
        drop, t_land, flights = _fall_flights(obj)
        out.append((t_land, GRAVITY * t_land))
        out += [(t0 + 2 * v / GRAVITY, v) for t0, v in flights]
        out = [(t, s) for t, s in out if t < duration]
    return out


# --- sampling ---------------------------------------------------------------------------------


def sample_object(rng: np.random.Generator, aspect: float, **fixed) -> WorldObject:
    colour = fixed.get("colour") or str(rng.choice(list(COLOURS)))
    shape = fixed.get("shape") or str(rng.choice(SHAPES))
    size = fixed.get("size") or str(rng.choice(list(SIZES), p=[0.6, 0.4]))
    motion = fixed.get("motion") or str(rng.choice(MOTIONS))
    direction = fixed.get("direction")
    if direction is None:
        direction = int(rng.choice([-1, 0, 0, 1])) if motion == "bouncing" else 0
    ext = SIZES[size]
    speed = float(rng.uniform(0.09, 0.12))
    if motion in ("slide_left", "slide_right") or direction:
        going_left = motion == "slide_left" or direction < 0
        lo, hi = (0.55, 0.9) if going_left else (0.1, 0.45)
        x0 = float(rng.uniform(lo, hi)) * aspect
    else:
        x0 = float(rng.uniform(ext / 2 + 0.02, aspect - ext / 2 - 0.02))
    return WorldObject(
        colour=colour,
        shape=shape,
        size=size,
        motion=motion,
        direction=direction,
        x0=x0,
        base=float(rng.uniform(0.74, 0.96)),
        speed=speed,
        period=float(rng.uniform(0.8, 1.2)),
        height=0.0,
        phase=float(rng.uniform(0, 1.5)),
        spin=float(rng.uniform(0.2, 0.45)) * float(rng.choice([-1, 1])),
        top=float(rng.uniform(0.12, 0.3)),
    )


def sample_scene(seed: int, aspect: float = 16 / 9) -> Scene:
    """A random scene: every attribute of the spec drawn, defaults a little more often."""
    rng = np.random.default_rng(seed)

    def pick(options, default_p):
        p = np.full(len(options), (1 - default_p) / (len(options) - 1))
        p[0] = default_p
        return str(rng.choice(options, p=p))

    n = int(rng.choice([1, 2, 3], p=[0.45, 0.35, 0.2]))
    first = sample_object(rng, aspect)
    objs = [first]
    for _ in range(n - 1):
        if rng.random() < 0.4:  # "two red balls": identical but for where and when
            o = sample_object(
                rng,
                aspect,
                colour=first.colour,
                shape=first.shape,
                size=first.size,
                motion=first.motion,
                direction=first.direction,
            )
        else:
            o = sample_object(rng, aspect)
        objs.append(o)
    objs = _spread(objs, aspect, rng)
    return Scene(
        sky=pick(list(SKIES), 0.45),
        ground=pick(list(GROUNDS), 0.45),
        camera=pick(list(CAMERAS), 0.55),
        weather=pick(list(WEATHERS), 0.6),
        objects=tuple(objs),
        seed=seed,
        aspect=aspect,
        detail_seed=int(rng.integers(0, 2**31 - 1)),
    )


def _spread(objs: list[WorldObject], aspect: float, rng: np.random.Generator) -> list[WorldObject]:
    """Keep the starting places of objects that do not travel apart, so that they can be counted."""
    static = [i for i, o in enumerate(objs) if o.motion not in ("slide_left", "slide_right") and not o.direction]
    if len(static) < 2:
        return objs
    slots = np.linspace(0, aspect, len(static) + 1)
    order = rng.permutation(len(static))
    out = list(objs)
    for k, i in enumerate(static):
        lo, hi = slots[order[k]], slots[order[k] + 1]
        half = objs[i].extent / 2 * (1.96 if objs[i].motion == "growing" else 1)
        lo, hi = lo + half + 0.01, hi - half - 0.01
        x0 = float(rng.uniform(lo, hi)) if hi > lo else float((slots[order[k]] + slots[order[k] + 1]) / 2)
        out[i] = replace(objs[i], x0=x0)
    return out
