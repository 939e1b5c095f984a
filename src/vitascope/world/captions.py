"""Captions: many English phrasings of one scene.

Each attribute value has words the model is trained on and words held out for evaluation, so
`vitascope eval` can ask in phrasings the model never saw (synonyms, word orders, numbers).
"""

from __future__ import annotations

import numpy as np

from .scene import Scene, WorldObject

# value -> (training words, held-out words)
COLOUR_WORDS = {
    "red": (["red", "scarlet", "cherry red"], ["crimson"]),
    "blue": (["blue", "royal blue", "navy"], ["cobalt"]),
    "yellow": (["yellow", "golden", "lemon"], ["mustard"]),
    "purple": (["purple", "violet", "lilac"], ["lavender"]),
    "pink": (["pink", "rose", "hot pink"], ["magenta"]),
    "cyan": (["cyan", "teal", "aqua"], ["turquoise"]),
}
SHAPE_WORDS = {  # (singular, plural)
    "ball": ([("ball", "balls"), ("orb", "orbs"), ("circle", "circles")], [("sphere", "spheres")]),
    "box": ([("box", "boxes"), ("block", "blocks"), ("square", "squares")], [("cube", "cubes")]),
    "triangle": ([("triangle", "triangles"), ("wedge", "wedges")], [("pyramid", "pyramids")]),
}
SIZE_WORDS = {
    "small": (["small", "little", "tiny", ""], ["petite"]),
    "big": (["big", "large", "huge"], ["giant"]),
}
# motion words: (singular verb phrase, participle phrase)
MOTION_WORDS = {
    "still": ([("rests", "resting"), ("sits still", "sitting still"), ("stands", "standing"), ("", "")], [("waits", "waiting")]),
    "bouncing": ([("bounces", "bouncing"), ("jumps", "jumping")], [("hops", "hopping")]),
    "falling": ([("falls", "falling"), ("drops", "dropping")], [("tumbles down", "tumbling down")]),
    "slide_left": ([("slides left", "sliding left"), ("rolls to the left", "rolling to the left"), ("moves left", "moving left")], [("glides to the left", "gliding to the left")]),
    "slide_right": ([("slides right", "sliding right"), ("rolls to the right", "rolling to the right"), ("moves right", "moving right")], [("glides to the right", "gliding to the right")]),
    "rising": ([("rises", "rising"), ("floats up", "floating up"), ("flies up", "flying up")], [("drifts upward", "drifting upward")]),
    "spinning": ([("spins", "spinning"), ("rotates", "rotating"), ("turns around", "turning around")], [("twirls", "twirling")]),
    "growing": ([("grows", "growing"), ("gets bigger", "getting bigger"), ("expands", "expanding")], [("swells", "swelling")]),
    "shrinking": ([("shrinks", "shrinking"), ("gets smaller", "getting smaller")], [("contracts", "contracting")]),
}
DIRECTION_WORDS = {-1: ([" to the left", " left", " leftward"], [" westward"]), 1: ([" to the right", " right", " rightward"], [" eastward"])}
SKY_WORDS = {
    "day": (["during the day", "on a sunny day", "in daylight", "under a blue sky", ""], ["at noon"]),
    "sunset": (["at sunset", "in the evening", "at sundown"], ["at dusk"]),
    "night": (["at night", "at nighttime", "under the stars"], ["at midnight"]),
}
GROUND_WORDS = {
    "grass": (["on green grass", "on the grass", "on a lawn", "in a meadow", ""], ["on a green field"]),
    "sand": (["on the sand", "in the desert", "on sand"], ["on the beach"]),
    "snow": (["on a snowy field", "on snow", "on snowy ground"], ["in a winter landscape"]),
}
WEATHER_WORDS = {
    "clear": (["", "", "in clear weather"], ["under clear skies"]),
    "rain": (["while it rains", "in the rain", "in a rainstorm"], ["during a downpour"]),
    "snow": (["while it snows", "as snow falls", "in a snowstorm"], ["in falling snowflakes"]),
}
CAMERA_WORDS = {
    "static": (["", "", "static camera", "the camera is still"], ["fixed shot"]),
    "pan_left": (["the camera pans left", "camera panning left", "pan to the left"], ["the view sweeps left"]),
    "pan_right": (["the camera pans right", "camera panning right", "pan to the right"], ["the view sweeps right"]),
    "zoom_in": (["the camera zooms in", "zooming in", "zoom in"], ["the camera pushes in"]),
}
NUMBERS = {1: (["a", "one", "1", "a single"], ["an individual"]), 2: (["two", "2", "a pair of"], ["a couple of"]), 3: (["three", "3"], ["a trio of"])}


def _pick(rng: np.random.Generator, table: dict, key, split: str):
    train, held = table[key]
    words = held if split == "heldout" else train if split == "train" else train + held
    return words[int(rng.integers(len(words)))]


def _groups(objects: tuple[WorldObject, ...]) -> list[tuple[WorldObject, int]]:
    """Identical objects (but for place and timing) are spoken of together: 'two red balls'."""
    out: list[tuple[WorldObject, int]] = []
    for o in objects:
        key = (o.colour, o.shape, o.size, o.motion, o.direction)
        for i, (g, n) in enumerate(out):
            if (g.colour, g.shape, g.size, g.motion, g.direction) == key:
                out[i] = (g, n + 1)
                break
        else:
            out.append((o, 1))
    return out


def _object_phrase(rng, obj: WorldObject, count: int, split: str) -> tuple[str, str]:
    """(noun phrase, verb phrase) for a group of identical objects."""
    number = _pick(rng, NUMBERS, count, split)
    size = _pick(rng, SIZE_WORDS, obj.size, split)
    colour = _pick(rng, COLOUR_WORDS, obj.colour, split)
    singular, plural = _pick(rng, SHAPE_WORDS, obj.shape, split)
    noun = plural if count > 1 else singular
    if count == 1 and number == "a" and (size or colour)[:1] in "aeiou":
        number = "an"
    words = [number] + ([size] if size else []) + [colour, noun]
    verb, participle = _pick(rng, MOTION_WORDS, obj.motion, split)
    if obj.motion == "bouncing" and obj.direction:
        d = _pick(rng, DIRECTION_WORDS, obj.direction, split)
        verb, participle = verb + d, participle + d
    if count > 1 and verb:  # plural agreement: "bounce", not "bounces"
        first, _, rest = verb.partition(" ")
        if first.endswith("ies"):
            first = first[:-3] + "y"
        elif first.endswith("es") and first[:-2].endswith(("sh", "ch", "x", "ss")):
            first = first[:-2]
        elif first.endswith("s"):
            first = first[:-1]
        verb = " ".join(x for x in (first, rest) if x)
    return " ".join(words), (verb, participle)


def caption(scene: Scene, rng: np.random.Generator, split: str = "train") -> str:
    """One phrasing of the scene. split: 'train', 'heldout' (eval-only words) or 'any'."""
    parts = []
    for obj, n in _groups(scene.objects):
        noun, (verb, participle) = _object_phrase(rng, obj, n, split)
        style = rng.integers(3)
        if not verb:
            parts.append(noun)
        elif style == 0:
            parts.append(f"{noun} {participle}")
        elif style == 1:
            parts.append(f"{noun} {verb}")
        else:
            parts.append(f"{noun} that {verb}" if n == 1 else f"{noun} {participle}")
    subject = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    setting = [w for w in (
        _pick(rng, GROUND_WORDS, scene.ground, split),
        _pick(rng, SKY_WORDS, scene.sky, split),
        _pick(rng, WEATHER_WORDS, scene.weather, split),
    ) if w]
    rng.shuffle(setting)
    camera = _pick(rng, CAMERA_WORDS, scene.camera, split)
    order = rng.integers(3)
    if order == 0 or not setting:
        text = " ".join([subject] + setting)
    elif order == 1:
        text = setting[0] + ", " + " ".join([subject] + setting[1:])
    else:
        text = " ".join(setting) + ": " + subject
    if camera:
        text = f"{text}; {camera}" if rng.random() < 0.6 else f"{camera}, {text}"
    text = " ".join(text.split())
    if rng.random() < 0.5:
        text = text[0].upper() + text[1:]
    return text
