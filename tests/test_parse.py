"""The prompt parser (models/world_parse.py) and the fixed phrasing it rewrites prompts into."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vitascope.models import world_parse
from vitascope.models.base import GenerationRequest
from vitascope.models.world import WorldModel
from vitascope.train.world import export_weights
from vitascope.train.world_parse import ParseTrainConfig, accuracy, loss_fn, make_batch, train
from vitascope.world import sample_scene
from vitascope.world.captions import (
    CAMERA_WORDS,
    COLOUR_WORDS,
    MOTION_WORDS,
    SHAPE_WORDS,
    describe,
)
from vitascope.world.scene import Scene, WorldObject


def test_describe_phrases_a_scene_in_first_training_words_defaults_unsaid():
    scene = Scene(sky="sunset", ground="sand", camera="pan_left", weather="rain", objects=(
        WorldObject("red", "ball", "small", "bouncing", direction=1), WorldObject("red", "ball", "small", "bouncing", direction=1),
        WorldObject("cyan", "box", "big", "still")))
    assert describe(scene) == "two red balls bouncing to the right and a big cyan box on the sand at sunset while it rains; the camera pans left"
    plain = Scene(objects=(WorldObject("yellow", "triangle", "small", "spinning"),))
    assert describe(plain) == "a yellow triangle spinning on green grass during the day"
    assert describe(Scene(objects=(WorldObject("purple", "box", "big", "still"),))).startswith("a big purple box")
    held = {w for table in (COLOUR_WORDS, CAMERA_WORDS) for _, held in table.values() for w in held}
    held |= {w for _, held in SHAPE_WORDS.values() for pair in held for w in pair} | {w for _, held in MOTION_WORDS.values() for pair in held for w in pair}
    for seed in range(50):
        words = describe(sample_scene(seed))
        assert not any(f" {h} " in f" {words} " for h in held if h), words  # never a held-out word


def test_parse_targets_are_groups_in_the_order_captions_name_them():
    a = WorldObject("red", "ball", "small", "bouncing", direction=-1)
    b = WorldObject("blue", "triangle", "big", "spinning")
    t = world_parse.targets(Scene(sky="night", camera="zoom_in", objects=(a, b, a)))
    assert t["sky"] == [2] and t["camera"] == [3] and t["present"] == [1, 1, 0]  # "two red balls ... and a blue triangle"
    assert [world_parse.GROUP_ATTRS["count"][i] for i in t["count"][:2]] == [2, 1] and t["count"][2] == -100
    assert [world_parse.GROUP_ATTRS["colour"][i] for i in t["colour"][:2]] == ["red", "blue"]
    assert [world_parse.MOTION_CLASSES[i] for i in t["motion"][:2]] == ["bouncing_left", "spinning"]


def test_scene_from_logits_expands_groups_and_keeps_at_least_one_object():
    def onehot(k, idx):
        n = len({**world_parse.SETTINGS, **world_parse.GROUP_ATTRS}[k])
        return torch.nn.functional.one_hot(torch.tensor(idx), n).float()[None] * 9

    logits = {k: onehot(k, 0) for k in world_parse.SETTINGS}
    logits["present"] = onehot("present", [1, 1, 0])
    logits["count"] = onehot("count", [1, 2, 0])  # two, then three: more than the world holds
    logits["colour"] = onehot("colour", [0, 1, 2])
    logits["shape"] = onehot("shape", [0, 1, 2])
    logits["size"] = onehot("size", [1, 0, 0])
    logits["motion"] = onehot("motion", [world_parse.MOTION_CLASSES.index("bouncing_right"), 0, 0])
    scene = world_parse.scene_from_logits(logits, 0)
    assert [(o.colour, o.shape, o.motion, o.direction) for o in scene.objects] == [("red", "ball", "bouncing", 1)] * 2 + [("blue", "box", "still", 0)]
    logits["present"] = onehot("present", [0, 0, 0]) + torch.tensor([[[0.0, 0.0], [0.0, 5.0], [0.0, 0.0]]])  # none sure; the second likeliest
    assert [o.colour for o in world_parse.scene_from_logits(logits, 0).objects] == ["blue", "blue", "blue"]
    # two groups alike but for their number are one phrase read twice: the surer reading stays,
    # where the prompt named it (captions name identical objects together: "two red balls")
    logits["present"] = torch.tensor([[[0.0, 3.0], [0.0, 5.0], [0.0, 4.0]]])
    logits["colour"], logits["shape"] = onehot("colour", [0, 1, 1]), onehot("shape", [0, 1, 1])
    logits["count"] = onehot("count", [0, 0, 1])
    assert [(o.colour, o.shape) for o in world_parse.scene_from_logits(logits, 0).objects] == [("red", "ball"), ("blue", "box")]
    logits["size"] = onehot("size", [1, 0, 1])  # a size apart: two groups
    assert [(o.colour, o.size) for o in world_parse.scene_from_logits(logits, 0).objects] == [("red", "big"), ("blue", "small"), ("blue", "big")]


def test_parser_trains_resumes_and_rewrites(tmp_path):
    caps, tgt = make_batch(ParseTrainConfig(batch=5), step=2)
    assert len(caps) == 5 and tgt["sky"].shape == (5,) and tgt["colour"].shape == (5, 3) and tgt["count"].shape == (5, 3)
    cfg = ParseTrainConfig(model="parse-tiny", batch=4, save_every=2, log_every=1, schedule="constant", warmup=1)
    run = tmp_path / "run"
    train(run, ParseTrainConfig(**{**cfg.__dict__, "steps": 2}))
    train(run, ParseTrainConfig(**{**cfg.__dict__, "steps": 4}))
    whole = tmp_path / "whole"
    train(whole, ParseTrainConfig(**{**cfg.__dict__, "steps": 4}))
    a = torch.load(run / "ckpt.pt", weights_only=False)["model"]
    b = torch.load(whole / "ckpt.pt", weights_only=False)["model"]
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)  # resuming is the same run
    assert [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()] == [1, 2, 3, 4]
    net = world_parse.load(export_weights(run, tmp_path / "p.safetensors"))
    scene = net.parse(["two crimson spheres hop on the beach"])[0]
    assert 1 <= len(scene.objects) <= 3  # an untrained parser still reads some scene, in the world's terms
    assert net.rewrite("") == "" and net.rewrite("zxq blorp") == describe(net.parse(["zxq blorp"])[0])
    with pytest.raises(ValueError, match="model must be one of"):
        ParseTrainConfig(model="parse-huge")


def test_parser_loss_and_accuracy_read_only_present_objects():
    caps, tgt = make_batch(ParseTrainConfig(batch=8), step=0)
    perfect = {}
    for k, t in tgt.items():
        n = len({**world_parse.SETTINGS, **world_parse.GROUP_ATTRS}[k])
        perfect[k] = torch.nn.functional.one_hot(t.clamp(min=0), n).float() * 50
    assert accuracy(perfect, tgt)["prompt"] == 1.0 and float(loss_fn(perfect, tgt)) < 1e-6
    wrong = {k: -v for k, v in perfect.items()}
    assert accuracy(wrong, tgt)["prompt"] == 0.0


def test_world_model_reads_the_prompt_as_the_parser_rewrites_it():
    from vitascope.models import world_plan

    torch.manual_seed(0)
    parser = world_parse.WorldParser(world_parse.Parser_configs["parse-tiny"])
    planner = world_plan.WorldPlanner(world_plan.Planner_configs["plan-tiny"])
    req = GenerationRequest(prompt="a crimson sphere hops", seconds=1, width=640, height=360, seed=4)
    read = parser.rewrite(req.prompt)
    assert read != req.prompt
    m = WorldModel.random("t", "world-tiny-layout", steps=2, guidance=2.0, planner=planner, plan_steps=2, parser=parser, lexicon=None)
    r = m.generate(req, lambda f: None)
    assert (r.info["plan_prompt"], r.info["network_prompt"]) == (read, req.prompt)  # the planner reads the rewrite, the network the user
    assert np.array_equal(r.frames, m.generate(req, lambda f: None).frames)
    m.parse_for = "all"
    assert m.generate(req, lambda f: None).info["network_prompt"] == read
    plain = WorldModel.random("t", "world-tiny", steps=2, guidance=2.0, parser=parser, lexicon=None)  # no planner: nothing reads the rewrite
    assert plain.generate(req, lambda f: None).info["network_prompt"] == req.prompt
    with pytest.raises(ValueError, match="parse_for"):
        WorldModel.random("t", "world-tiny", parser=parser, parse_for="net")


def test_trained_parser_reads_held_out_prompts():
    """The committed parser against validation scenes phrased in held-out words (eval's own scenes
    stay unseen): what tools/parse_report.py reports, on fewer prompts, settings and counts."""
    from pathlib import Path

    from vitascope.eval import VALIDATION_SEED_BASE, eval_cases

    net = world_parse.load(Path(__file__).resolve().parents[1] / "checkpoints" / "world-parse" / "parse.safetensors")
    cases = eval_cases(64, VALIDATION_SEED_BASE, "heldout")
    right = total = 0
    for (_, scene, prompt, _), read in zip(cases, net.parse([p for _, _, p, _ in cases])):
        for k in ("sky", "weather", "camera"):
            right += getattr(read, k) == getattr(scene, k)
            total += 1
        right += len(read.objects) == len(scene.objects)
        total += 1
    assert right / total > 0.7  # 500 prompts: sky 70.8%, weather 67.0%, camera 89.2%, count 93.4%
    assert net.rewrite("two red balls bouncing on green grass at sunset") == "two red balls bouncing on green grass at sunset"


def test_ngrams_are_encoded_alone_and_pool_the_tokens_they_cover():
    from vitascope.models import text

    assert [g for g, _, _ in text.ngrams("Two crimson spheres, hop!", 2)] == ["two", "crimson", "spheres", "hop", "two crimson", "crimson spheres", "spheres hop"]
    enc = text.encode_ngrams(["a crimson sphere at dusk", "cube"], 4)
    B, G, L = enc["gram_pool"].shape
    assert enc["grams"].shape == (B, G, 384) and enc["tokens"].shape[:2] == (B, L)
    assert int(enc["gram_mask"][0].sum()) == 5 + 4 + 3 + 2 and int(enc["gram_mask"][1].sum()) == 1
    assert torch.allclose(enc["gram_pool"][enc["gram_mask"]].sum(-1), torch.ones(int(enc["gram_mask"].sum())))  # each averages its tokens
    assert float(enc["gram_pool"][~enc["gram_mask"]].abs().sum()) == 0
    # an n-gram's features are the phrase encoded on its own, wherever it stands
    alone = text.encode_phrases(["at dusk"])[0]
    at = [g for g, _, _ in text.ngrams("a crimson sphere at dusk", 4)].index("at dusk")
    assert torch.allclose(enc["grams"][0, at], alone) and abs(float(alone.norm()) - 1) < 1e-2
    # the pooled tokens are those of the n-gram's words: "sphere" is the third word, after [CLS], a, crimson
    sphere = [g for g, _, _ in text.ngrams("a crimson sphere at dusk", 1)].index("sphere")
    assert int(enc["gram_pool"][0, sphere].argmax()) >= 3


@pytest.mark.parametrize("model", ["parse-tiny-grams", "parse-tiny-protos"])
def test_phrase_parser_trains_and_reads(tmp_path, model):
    cfg = ParseTrainConfig(model=model, batch=4, steps=2, save_every=2, log_every=1, schedule="constant", warmup=1)
    train(tmp_path / "run", cfg)
    net = world_parse.load(export_weights(tmp_path / "run", tmp_path / "p.safetensors"))
    assert net.cfg.ngram == 4 and float(net.gram_std.mean()) != 1.0  # its n-gram scale was fitted
    if net.cfg.prototypes:  # the training phrases, encoded alone, travel with the weights
        from vitascope.models import text

        names = world_parse.training_phrases()["ground"]
        assert torch.allclose(net.proto_ground, text.encode_phrases([w for w, _ in names]), atol=2e-3)
        assert "on the beach" not in [w for w, _ in names]  # never a held-out phrase
    (scene, sure), = net.read(["two crimson spheres hop on the beach"])
    assert 1 <= len(scene.objects) <= 3 and set(sure) == set(world_parse.SETTINGS)
    assert net.rewrite("zxq blorp") == describe(net.parse(["zxq blorp"])[0])
    with pytest.raises(ValueError, match="n-grams"):
        net(**{k: v for k, v in net.inputs(["a ball"]).items() if k in ("tokens", "mask")})


def test_prototype_logits_name_the_value_of_the_nearest_training_phrase():
    torch.manual_seed(0)
    net = world_parse.WorldParser(world_parse.Parser_configs["parse-tiny-protos"])
    net.fit_prototypes()
    from vitascope.models import text

    read = text.encode_phrases(["on the sand", "at night", "in the rain"])
    assert world_parse.SETTINGS["ground"][int(net._proto_logits("ground", read[:1]).argmax())] == "sand"
    assert world_parse.SETTINGS["sky"][int(net._proto_logits("sky", read[1:2]).argmax())] == "night"
    assert world_parse.SETTINGS["weather"][int(net._proto_logits("weather", read[2:]).argmax())] == "rain"
    # nothing read (the "nothing said" place starts at zero): every value alike but for the bias
    flat = net._proto_logits("weather", torch.zeros(1, 384))
    assert torch.allclose(flat, flat[:, :1].expand_as(flat))


def test_an_ensemble_averages_its_parsers_log_probabilities():
    torch.manual_seed(0)
    a = world_parse.WorldParser(world_parse.Parser_configs["parse-tiny"]).eval()
    b = world_parse.WorldParser(world_parse.Parser_configs["parse-tiny-grams"]).eval()
    both = world_parse.ParserEnsemble([a, b]).eval()
    prompts = ["two crimson spheres hop at dusk", "a cube"]
    la, lb, l2 = a.logits(prompts), b.logits(prompts), both.logits(prompts)
    for k in l2:
        assert torch.allclose(l2[k], (la[k].log_softmax(-1) + lb[k].log_softmax(-1)) / 2, atol=1e-5)
    assert len(both.parse(prompts)) == 2 and set(both.read(prompts)[0][1]) == set(world_parse.SETTINGS)
    with pytest.raises(ValueError, match="at least one"):
        world_parse.ParserEnsemble([])


def test_trained_parsers_read_held_out_prompts_better_together():
    """The committed token and phrase parsers, alone and read together (as `vitascope generate`
    reads prompts), on validation scenes in held-out words: what tools/parse_report.py reports, on
    fewer prompts. The phrase parser reads the ground where the token parser cannot, and the two
    together read more of every prompt than either alone."""
    from pathlib import Path

    from vitascope.eval import VALIDATION_SEED_BASE, eval_cases
    from vitascope.world.captions import _groups

    here = Path(__file__).resolve().parents[1] / "checkpoints" / "world-parse"
    token, phrase = world_parse.load(here / "parse.safetensors"), world_parse.load(here / "parse-protos.safetensors")
    both = world_parse.ParserEnsemble([token, phrase]).eval()
    cases = eval_cases(96, VALIDATION_SEED_BASE, "heldout")
    prompts = [p for _, _, p, _ in cases]

    def score(net):
        right, total, ground = 0, 0, 0
        for (_, scene, _, _), read in zip(cases, net.parse(prompts)):
            ground += read.ground == scene.ground
            for k in ("sky", "ground", "weather", "camera"):
                right += getattr(read, k) == getattr(scene, k)
            right += len(read.objects) == len(scene.objects)
            objs = [o for o, n in _groups(scene.objects) for _ in range(n)]  # in the order the prompt names them
            for o, r in zip(objs, read.objects):
                right += (o.colour == r.colour) + (o.shape == r.shape) + (o.size == r.size)
            total += 5 + 3 * len(objs)
        return right / total, ground / len(cases)

    (t_all, t_ground), (p_all, p_ground), (b_all, _) = score(token), score(phrase), score(both)
    assert p_ground > 0.9 and t_ground < 0.6  # 500 prompts: 100.0% against 42.2%
    assert b_all > max(t_all, p_all)  # 500 prompts, all attributes: 81.5% against 75.4% and 73.8%


def _shipped_parsers():
    from pathlib import Path

    from vitascope.models.world import PARSER_FILE, PHRASE_PARSER_FILE, WEIGHTS_DIR

    return world_parse.load_all([Path(WEIGHTS_DIR) / PARSER_FILE, Path(WEIGHTS_DIR) / PHRASE_PARSER_FILE])


def test_reword_puts_training_phrases_where_the_prompt_says_its_settings():
    """The shipped parsers, read together as `vitascope generate` reads prompts: the words that say
    the sky and the ground become a training phrase of the value read, the objects' words stay the
    user's, and words that are already training phrases stay as they are."""
    from vitascope.world.captions import GROUND_WORDS, SKY_WORDS

    both = _shipped_parsers()
    prompt = "a big blue cube hopping on the beach at midnight; the camera pans left"
    (scene, sure, words), = both.reword([prompt])
    assert (scene.ground, scene.sky) == ("sand", "night") and set(sure) == set(world_parse.SETTINGS)
    assert "beach" not in words and any(w in words for w in GROUND_WORDS["sand"][0] if w), words
    assert words.startswith("a big blue cube hopping ") and words.endswith("; the camera pans left"), words
    assert (scene, sure) == both.read([prompt])[0]  # the same reading
    # the sky is reworded where it is read with at least its fitted probability (tools/fit_ensemble.py)
    if sure["sky"] >= both.reword_from["sky"]:
        assert "midnight" not in words and any(w in words for w in SKY_WORDS["night"][0] if w), words
    else:
        assert "at midnight" in words
    sure_of_all = both.reword([prompt], confidence={k: 0.0 for k in world_parse.SETTINGS})[0][2]
    assert "midnight" not in sure_of_all and any(w in sure_of_all for w in SKY_WORDS["night"][0] if w), sure_of_all
    assert both.reword([prompt], confidence={k: 1.01 for k in world_parse.SETTINGS})[0][2] == prompt  # sure of none: the user's words
    assert both.reword([prompt], attrs=())[0][2] == prompt
    plain = "two red balls bouncing on green grass at sunset"
    assert both.reword([plain])[0][2] == plain  # said in training words already
    # a span becomes its value's first training phrase (what `describe` says), or the nearest one
    moonlit = "a red ball bouncing on green grass under the moon"
    assert both.reword([moonlit], confidence={k: 0.0 for k in world_parse.SETTINGS})[0][2] == "a red ball bouncing on green grass at night"
    nearest = both.reword([moonlit], confidence={k: 0.0 for k in world_parse.SETTINGS}, to="nearest")[0][2]
    assert "moon" not in nearest and any(w in nearest for w in SKY_WORDS["night"][0] if w), nearest
    with pytest.raises(ValueError, match="first"):
        both.reword([moonlit], to="closest")
    assert both.reword([""])[0][2] == "" and both.reword([]) == []
    # a parser that points at no phrases (the token parser alone) leaves the words as given
    token = both.members[0] if isinstance(both, world_parse.ParserEnsemble) else both
    assert token.reword([prompt])[0][2] == prompt


def test_a_reworded_span_keeps_the_words_of_its_neighbours():
    # a span ending in a joining word the phrase does not end in gives it back to the next phrase
    prompt = "a ball during a downpour in a winter landscape"
    a = prompt.index("during")
    assert world_parse._tidy(prompt, a, prompt.index(" a winter"), "while it rains") == (a, prompt.index(" in a winter"))
    z = len("a ball; the camera zooms in")  # the phrase's own last word stays in the span
    assert world_parse._tidy("a ball; the camera zooms in", 8, z, "the camera zooms in") == (8, z)
    # the word before a span, where the phrase begins with it, is replaced with the span
    prompt = "The view pans right, a ball"
    assert world_parse._tidy(prompt, 4, 19, "the camera pans right") == (0, 19)
    assert world_parse._tidy(prompt, 4, 19, "camera pans right") == (4, 19)
    both = _shipped_parsers()
    words = both.reword(["The view pans right, a red ball rests on the grass"], confidence={k: 0.0 for k in world_parse.SETTINGS})[0][2]
    assert words.lower().count("the camera") == 1 and "the the" not in words.lower(), words


def test_world_model_reads_the_reworded_prompt():
    torch.manual_seed(0)
    parser = world_parse.WorldParser(world_parse.Parser_configs["parse-tiny-protos"]).eval()
    parser.fit_prototypes()
    req = GenerationRequest(prompt="a crimson sphere hops on the beach at midnight", seconds=1, width=640, height=360, seed=4)
    m = WorldModel.random("t", "world-tiny", steps=2, guidance=2.0, parser=parser, lexicon=None)
    assert m.reword == tuple(world_parse.SETTINGS)
    assert m.generate(req, lambda f: None).info["network_prompt"] == parser.reword([req.prompt])[0][2]
    m.reword = ()
    assert m.generate(req, lambda f: None).info["network_prompt"] == req.prompt
    with pytest.raises(ValueError, match="reword"):
        WorldModel.random("t", "world-tiny", parser=parser, reword=("mood",))
    with pytest.raises(ValueError, match="reword_to"):
        WorldModel.random("t", "world-tiny", parser=parser, reword_to="closest")


def test_an_ensemble_reads_each_attribute_with_its_fitted_shares(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    a = world_parse.WorldParser(world_parse.Parser_configs["parse-tiny"]).eval()
    b = world_parse.WorldParser(world_parse.Parser_configs["parse-tiny-protos"]).eval()
    b.fit_prototypes()
    weighted = world_parse.ParserEnsemble([a, b], {"ground": [0.25, 0.75]}).eval()
    prompts = ["two crimson spheres hop at dusk on the beach", "a cube"]
    la, lb, lw = a.logits(prompts), b.logits(prompts), weighted.logits(prompts)
    assert torch.allclose(lw["ground"], 0.25 * la["ground"].log_softmax(-1) + 0.75 * lb["ground"].log_softmax(-1), atol=1e-5)
    assert torch.allclose(lw["sky"], (la["sky"].log_softmax(-1) + lb["sky"].log_softmax(-1)) / 2, atol=1e-5)  # not fitted: even
    for bad in ({"ground": [0.5, 0.6]}, {"mood": [0.5, 0.5]}, {"sky": [1.0]}):
        with pytest.raises(ValueError, match="weights"):
            world_parse.ParserEnsemble([a, b], bad)
    # fitting: shares on the grid, within `least`, never worse than even shares on the prompts fitted
    from vitascope.eval import eval_cases

    cases = eval_cases(12, 123, "dev")
    shares, acc = world_parse.fit_weights([a, b], [p for _, _, p, _ in cases], [s for _, s, _, _ in cases], grid=5, least=0.25, attrs=("sky", "colour"))
    assert set(shares) == {"sky", "colour"}
    for k, (w0, w1) in shares.items():
        assert abs(w0 + w1 - 1) < 1e-6 and w1 in (0.25, 0.5, 0.75) and acc[k][1] >= acc[k][0]
    # load_all reads shares fitted for exactly the parsers it loads
    for name, net in (("t.safetensors", a), ("p.safetensors", b)):
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / name), metadata={"config": json.dumps(net.cfg.to_dict())})
    spec = {"members": ["t.safetensors", "p.safetensors"], "weights": {"ground": [0.25, 0.75]}, "reword_from": {"sky": 0.6}}
    (tmp_path / world_parse.ENSEMBLE_FILE).write_text(json.dumps(spec))
    fitted = world_parse.load_all(f"{tmp_path / 't.safetensors'}+{tmp_path / 'p.safetensors'}")
    assert (fitted.weights, fitted.reword_from) == ({"ground": [0.25, 0.75]}, {"sky": 0.6})
    other = world_parse.load_all([tmp_path / "p.safetensors", tmp_path / "t.safetensors"])  # other parsers: even, none fitted
    assert (other.weights, other.reword_from) == ({}, {})
    # from which probability each setting is reworded: where the readings are that often right
    prompts, scenes = [p for _, _, p, _ in cases], [s for _, s, _, _ in cases]
    sure_from = world_parse.fit_reword_from(weighted, prompts, scenes, precision=0.95)
    assert set(sure_from) == set(world_parse.SETTINGS)
    for k, lo in sure_from.items():
        picked = [getattr(r, k) == getattr(sc, k) for (r, sure), sc in zip(weighted.read(prompts), scenes) if sure[k] >= lo]
        assert lo == 1.01 or (picked and sum(picked) >= 0.95 * len(picked))
    assert all(v == 0.0 for v in world_parse.fit_reword_from(weighted, prompts, scenes, precision=0.0).values())
