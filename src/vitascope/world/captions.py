"""Captions: many English phrasings of one scene.

Each attribute value has words the model is trained on and words held out for evaluation, so
`vitascope eval` can ask in phrasings the model never saw (synonyms, word orders, numbers).
"""

from __future__ import annotations

import numpy as np

from .scene import Scene, WorldObject

# value -> (training words, held-out words). The training words are many, so that the frozen
# sentence encoder's neighbourhood of each meaning is covered rather than a few points of it; no
# training word is a held-out word or shares its stem (tests/test_world.py checks), so the
# evaluation still asks in words the model never saw.
COLOUR_WORDS = {
    "red": (["red", "scarlet", "cherry red", "ruby", "blood red", "tomato red", "vermilion", "bright red"], ["crimson"]),
    "blue": (["blue", "royal blue", "navy", "sapphire", "deep blue", "ultramarine", "dark blue", "denim blue"], ["cobalt"]),
    "yellow": (["yellow", "golden", "lemon", "canary yellow", "sunflower yellow", "banana yellow", "bright yellow", "saffron"], ["mustard"]),
    "purple": (["purple", "violet", "lilac", "plum", "grape", "amethyst", "deep purple", "orchid"], ["lavender"]),
    "pink": (["pink", "rose", "hot pink", "fuchsia", "bubblegum pink", "flamingo pink", "rosy", "blush pink"], ["magenta"]),
    "cyan": (["cyan", "teal", "aqua", "aquamarine", "sea green", "teal blue", "seafoam", "aqua blue"], ["turquoise"]),
}
SHAPE_WORDS = {  # (singular, plural)
    "ball": ([("ball", "balls"), ("orb", "orbs"), ("circle", "circles"), ("globe", "globes"), ("disc", "discs"), ("round ball", "round balls")], [("sphere", "spheres")]),
    "box": ([("box", "boxes"), ("block", "blocks"), ("square", "squares"), ("crate", "crates"), ("brick", "bricks"), ("square block", "square blocks")], [("cube", "cubes")]),
    "triangle": ([("triangle", "triangles"), ("wedge", "wedges"), ("cone", "cones"), ("triangular block", "triangular blocks"), ("arrowhead", "arrowheads")], [("pyramid", "pyramids")]),
}
SIZE_WORDS = {
    "small": (["small", "little", "tiny", "", "mini", "miniature", "compact"], ["petite"]),
    "big": (["big", "large", "huge", "enormous", "massive", "jumbo", "oversized"], ["giant"]),
}
# motion words: (singular verb phrase, participle phrase)
MOTION_WORDS = {
    "still": ([("rests", "resting"), ("sits still", "sitting still"), ("stands", "standing"), ("", ""), ("stays put", "staying put"), ("lies still", "lying still"), ("sits", "sitting"), ("remains still", "remaining still"), ("idles", "idling")], [("waits", "waiting")]),
    "bouncing": ([("bounces", "bouncing"), ("jumps", "jumping"), ("leaps", "leaping"), ("springs", "springing"), ("skips", "skipping"), ("bounds", "bounding")], [("hops", "hopping")]),
    "falling": ([("falls", "falling"), ("drops", "dropping"), ("plummets", "plummeting"), ("falls down", "falling down"), ("plunges", "plunging"), ("comes down", "coming down")], [("tumbles down", "tumbling down")]),
    "slide_left": ([("slides left", "sliding left"), ("rolls to the left", "rolling to the left"), ("moves left", "moving left"), ("goes left", "going left"), ("travels to the left", "traveling to the left"), ("skids left", "skidding left")], [("glides to the left", "gliding to the left")]),
    "slide_right": ([("slides right", "sliding right"), ("rolls to the right", "rolling to the right"), ("moves right", "moving right"), ("goes right", "going right"), ("travels to the right", "traveling to the right"), ("skids right", "skidding right")], [("glides to the right", "gliding to the right")]),
    "rising": ([("rises", "rising"), ("floats up", "floating up"), ("flies up", "flying up"), ("ascends", "ascending"), ("goes up", "going up"), ("lifts off", "lifting off"), ("climbs", "climbing"), ("soars", "soaring")], [("drifts upward", "drifting upward")]),
    "spinning": ([("spins", "spinning"), ("rotates", "rotating"), ("turns around", "turning around"), ("whirls", "whirling"), ("revolves", "revolving"), ("pivots", "pivoting"), ("turns in circles", "turning in circles")], [("twirls", "twirling")]),
    "growing": ([("grows", "growing"), ("gets bigger", "getting bigger"), ("expands", "expanding"), ("enlarges", "enlarging"), ("gets larger", "getting larger"), ("inflates", "inflating"), ("increases in size", "increasing in size")], [("swells", "swelling")]),
    "shrinking": ([("shrinks", "shrinking"), ("gets smaller", "getting smaller"), ("deflates", "deflating"), ("dwindles", "dwindling"), ("decreases in size", "decreasing in size"), ("becomes smaller", "becoming smaller")], [("contracts", "contracting")]),
}
DIRECTION_WORDS = {-1: ([" to the left", " left", " leftward", " towards the left", " leftwards"], [" westward"]), 1: ([" to the right", " right", " rightward", " towards the right", " rightwards"], [" eastward"])}
SKY_WORDS = {
    "day": (["during the day", "on a sunny day", "in daylight", "under a blue sky", "", "at midday", "in the morning", "in the afternoon", "in bright sunshine", "by day", "in the daytime"], ["at noon"]),
    "sunset": (["at sunset", "in the evening", "at sundown", "at twilight", "as the sun sets", "at the end of the day", "in the golden hour", "late in the day"], ["at dusk"]),
    "night": (["at night", "at nighttime", "under the stars", "in the dark", "after dark", "late at night", "in the night", "under a starry sky", "in darkness", "by moonlight"], ["at midnight"]),
}
GROUND_WORDS = {
    "grass": (["on green grass", "on the grass", "on a lawn", "in a meadow", "", "on grassland", "on a grassy hill", "on turf", "in a park", "in a pasture", "on the lawn"], ["on a green field"]),
    "sand": (["on the sand", "in the desert", "on sand", "on a sandy shore", "on the dunes", "on sandy ground", "in the dunes", "on the seashore"], ["on the beach"]),
    "snow": (["on a snowy field", "on snow", "on snowy ground", "in the snow", "on snow-covered ground", "on a frozen plain", "on a white snowfield", "in the arctic"], ["in a winter landscape"]),
}
WEATHER_WORDS = {
    "clear": (["", "", "in clear weather", "in fine weather", "in calm weather", "in dry weather", "with no rain"], ["under clear skies"]),
    "rain": (["while it rains", "in the rain", "in a rainstorm", "in a shower", "in the pouring rain", "as rain falls", "with rain falling", "in rainy weather", "in a drizzle"], ["during a downpour"]),
    "snow": (["while it snows", "as snow falls", "in a snowstorm", "in a blizzard", "with snow falling", "in snowy weather", "in a snow shower"], ["in falling snowflakes"]),
}
CAMERA_WORDS = {
    "static": (["", "", "static camera", "the camera is still", "still camera", "locked-off shot", "tripod shot", "steady camera", "no camera movement"], ["fixed shot"]),
    "pan_left": (["the camera pans left", "camera panning left", "pan to the left", "the camera moves left", "panning left", "the camera turns left", "camera tracking left", "the shot pans to the left"], ["the view sweeps left"]),
    "pan_right": (["the camera pans right", "camera panning right", "pan to the right", "the camera moves right", "panning right", "the camera turns right", "camera tracking right", "the shot pans to the right"], ["the view sweeps right"]),
    "zoom_in": (["the camera zooms in", "zooming in", "zoom in", "the camera moves closer", "zooming closer", "the camera zooms closer", "dolly in", "zoom-in shot"], ["the camera pushes in"]),
}
NUMBERS = {1: (["a", "one", "1", "a single", "just one", "only one", "one single"], ["an individual"]), 2: (["two", "2", "a pair of", "twin", "a duo of", "two separate"], ["a couple of"]), 3: (["three", "3", "a group of three", "a set of three", "three separate"], ["a trio of"])}
# Development words: a third phrasing of each value, neither trained on nor held out, on which
# choices about reading prompts are made (how much each parser is trusted per attribute), so that
# the held-out words stay unseen by every choice (tests/test_world.py checks both). Per table:
# value -> words, in the form of the table's training words.
DEV_WORDS = {
    "colour": {"red": ["cardinal", "maroon", "fire-engine red"], "blue": ["indigo", "cerulean", "electric blue"], "yellow": ["gold", "butter yellow", "honey yellow"],
               "purple": ["mauve", "aubergine", "heather purple"], "pink": ["baby pink", "cerise", "candy pink"], "cyan": ["mint", "jade", "bluish green"]},
    "shape": {"ball": [("marble", "marbles"), ("bead", "beads"), ("bubble", "bubbles")], "box": [("cuboid", "cuboids"), ("chest", "chests"), ("carton", "cartons")],
              "triangle": [("spike", "spikes"), ("tent shape", "tent shapes"), ("three-sided shape", "three-sided shapes")]},
    "size": {"small": ["teeny", "wee", "smallish"], "big": ["gigantic", "hefty", "colossal"]},
    "motion": {"still": [("stays motionless", "staying motionless"), ("does nothing", "doing nothing"), ("pauses", "pausing")],
               "bouncing": [("bobs up and down", "bobbing up and down"), ("rebounds", "rebounding"), ("vaults", "vaulting")],
               "falling": [("crashes down", "crashing down"), ("topples down", "toppling down"), ("descends", "descending")],
               "slide_left": [("scoots left", "scooting left"), ("shifts left", "shifting left"), ("heads to the left", "heading to the left")],
               "slide_right": [("scoots right", "scooting right"), ("shifts right", "shifting right"), ("heads to the right", "heading to the right")],
               "rising": [("levitates", "levitating"), ("goes skyward", "going skyward"), ("takes off", "taking off")],
               "spinning": [("swirls", "swirling"), ("turns round and round", "turning round and round"), ("pirouettes", "pirouetting")],
               "growing": [("balloons", "ballooning"), ("scales up", "scaling up"), ("puffs up", "puffing up")],
               "shrinking": [("scales down", "scaling down"), ("gets tinier", "getting tinier"), ("diminishes", "diminishing")]},
    "direction": {-1: [" toward the left side", " to the left-hand side"], 1: [" toward the right side", " to the right-hand side"]},
    "sky": {"day": ["at lunchtime", "on a bright morning", "under the blazing sun", "in full daylight"],
            "sunset": ["as the sun goes down", "at eventide", "under an orange evening sky", "at the close of day"],
            "night": ["in the dead of night", "under the moon", "in the middle of the night", "on a moonlit night"]},
    "ground": {"grass": ["in a garden", "on a football pitch", "on a prairie", "on the green lawn"],
               "sand": ["at the seaside", "on a sand dune", "in the Sahara", "on the shore"],
               "snow": ["on the ice", "on a glacier", "on the tundra", "on a frosty plain"]},
    "weather": {"clear": ["", "in good weather", "in pleasant weather"], "rain": ["in a thunderstorm", "while rain pours", "on a rainy day", "in wet weather"],
                "snow": ["as flakes fall", "in a flurry of snow", "while snow comes down", "during a snowfall"]},
    "camera": {"static": ["", "the camera does not move", "a stationary camera", "camera on a tripod"],
               "pan_left": ["the camera swings left", "a leftward pan", "the shot tracks left"],
               "pan_right": ["the camera swings right", "a rightward pan", "the shot tracks right"],
               "zoom_in": ["the camera closes in", "a slow zoom", "the lens zooms in"]},
    "count": {1: ["one lone", "a lone", "a solitary"], 2: ["two matching", "a twosome of", "double"], 3: ["three matching", "a threesome of", "triple"]},
}
# Words a prompt may carry that say nothing the world can show: training captions sometimes wear
# them, so that a user's "a cinematic video of ..." does not move the model off its meaning.
FILLER_PREFIXES = ["a video of", "a clip of", "footage of", "a short film:", "scene:", "watch as", "a cinematic shot of",
                   "an animation of", "a simple video showing", "a beautiful 4k video of", "a cute cartoon of", "lovely footage:"]


_TABLES = {"colour": COLOUR_WORDS, "shape": SHAPE_WORDS, "size": SIZE_WORDS, "motion": MOTION_WORDS, "direction": DIRECTION_WORDS,
           "sky": SKY_WORDS, "ground": GROUND_WORDS, "weather": WEATHER_WORDS, "camera": CAMERA_WORDS, "count": NUMBERS}
SPLITS = ("train", "heldout", "dev", "any")


def _pick(rng: np.random.Generator, table: dict, key, split: str):
    train, held = table[key]
    if split == "dev":
        name = next(n for n, t in _TABLES.items() if t is table)
        words = DEV_WORDS[name][key]
    else:
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


def _fill(rng: np.random.Generator, text: str) -> str:
    """Sometimes a filler prefix, sometimes a closing full stop."""
    if rng.random() < 0.25:
        text = f"{FILLER_PREFIXES[int(rng.integers(len(FILLER_PREFIXES)))]} {text}"
    if rng.random() < 0.2:
        text += "."
    return text


def caption(scene: Scene, rng: np.random.Generator, split: str = "train") -> str:
    """One phrasing of the scene. split: 'train', 'heldout' (eval-only words), 'dev' (words for
    choices about reading prompts: DEV_WORDS) or 'any' (training or held-out)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}. Got {split!r}.")
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
    if split not in ("heldout", "dev"):  # held-out captions stay as they were: eval prompts do not change
        text = _fill(rng, text)
    text = " ".join(text.split())
    if rng.random() < 0.5:
        text = text[0].upper() + text[1:]
    return text


def describe(scene: Scene) -> str:
    """The scene in one fixed phrasing: the first training word of each value, the defaults
    (small, still, clear, static) left unsaid as captions often leave them. A prompt rewritten
    to this form (models/world_parse.py) asks the world model in the words it knows best."""
    parts = []
    for obj, n in _groups(scene.objects):
        number = NUMBERS[n][0][0]
        size = "" if obj.size == "small" else SIZE_WORDS[obj.size][0][0]
        colour = COLOUR_WORDS[obj.colour][0][0]
        singular, plural = SHAPE_WORDS[obj.shape][0][0]
        if n == 1 and (size or colour)[:1] in "aeiou":
            number = "an"
        participle = "" if obj.motion == "still" else MOTION_WORDS[obj.motion][0][0][1]
        if obj.motion == "bouncing" and obj.direction:
            participle += DIRECTION_WORDS[obj.direction][0][0]
        parts.append(" ".join(w for w in (number, size, colour, plural if n > 1 else singular, participle) if w))
    subject = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1] if parts else ""
    setting = [GROUND_WORDS[scene.ground][0][0], SKY_WORDS[scene.sky][0][0], WEATHER_WORDS[scene.weather][0][0]]
    text = " ".join(w for w in [subject, *setting] if w)
    if scene.camera != "static":
        text += "; " + CAMERA_WORDS[scene.camera][0][0]
    return text
