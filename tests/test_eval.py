"""`vitascope eval` tells a model that draws the world from one that does not."""

from __future__ import annotations

import pytest

from vitascope.eval import ATTRIBUTES, backend_calls, eval_cases, evaluate, table
from vitascope.models.base import GenerationRequest
from vitascope.models.world import WorldModel
from vitascope.world.captions import COLOUR_WORDS


def test_simulator_clips_score_high_and_random_weights_low():
    sim = evaluate(None, 6)
    m = WorldModel.random("t", "world-tiny", steps=2, guidance=1.0)

    def gen(prompt, seed, w, h, seconds):
        r = m.generate(GenerationRequest(prompt=prompt, seconds=seconds, width=w, height=h, seed=seed), lambda f: None)
        return r.frames, r.fps, r.audio, r.sample_rate

    rnd = evaluate(gen, 3)
    assert sim.overall > 0.8 and sim.sync > 0.8
    assert rnd.overall < 0.4
    text = table({"simulator": sim, "random": rnd})
    assert all(f"| {a} |" in text for a in ATTRIBUTES)


def test_eval_prompts_use_held_out_words():
    held = {w for _, ws in COLOUR_WORDS.values() for w in ws}
    prompts = [p.lower() for _, _, p, _ in eval_cases(12)]
    assert any(any(w in p for w in held) for p in prompts)
    assert len(set(prompts)) == 12
    # fixed: the same cases every run, so numbers are comparable between checkpoints
    assert [p for _, _, p, _ in eval_cases(3)] == [p for _, _, p, _ in eval_cases(3)]
    # the same scenes in training words: no held-out colour word, the same scenes and sizes
    train = eval_cases(12, split="train")
    assert [(s, sc, size) for s, sc, _, size in train] == [(s, sc, size) for s, sc, _, size in eval_cases(12)]
    assert not any(any(w in p.lower().split() for w in held) for _, _, p, _ in train)
    with pytest.raises(ValueError, match="split"):
        eval_cases(2, split="any")


def test_extension_eval_builds_long_clips_and_scores_both_ends():
    from vitascope.eval import evaluate_extension

    first, last = evaluate_extension(None, None, 3)
    assert first.overall > 0.8 and last.overall > 0.7  # the simulator keeps its scene for 20 s
    m = WorldModel.random("t", "world-tiny", steps=2, guidance=1.0)
    gen, ext = backend_calls(m)
    lengths = []

    def extend(*args):
        out = ext(*args)
        lengths.append(len(out[0]) / out[1])
        return out

    a, b = evaluate_extension(gen, extend, 1, total=12.0)
    assert lengths == [8.0, 12.0]
    assert sum(a.total.values()) == sum(b.total.values()) > 0
