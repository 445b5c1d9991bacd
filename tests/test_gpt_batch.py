"""Batched decoding (`generate_codes_batch`, timeline dubbing) equals decoding one by one: the same
codes, sequences, stop flags, step counts, beam rows and scores for every method, with requests
of different text lengths, conditioning, languages, targets and natural stops, each with its own
seeded generator; on tiny random GPTs (IndexTTS-2 and 2.5) and on the public e2e kits' GPTs."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import test_gpt_model as tiny_v2
import test_v25_networks as tiny_25
from indextts2_core.gpt.generate import DecodingSettings, _generate, generate_codes, generate_codes_batch
from kit_gpts import e2e_kit, kit_gpt_25, kit_gpt_v2, kit_requests  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("one_thread")

STOP = 25  # both tiny configs


def methods(cap: int) -> dict[str, DecodingSettings]:
    return {
        "greedy": DecodingSettings(do_sample=False, num_beams=1, max_mel_tokens=cap),
        "sampling": DecodingSettings(num_beams=1, max_mel_tokens=cap),
        "beam_search": DecodingSettings(do_sample=False, num_beams=3, max_mel_tokens=cap),
        "beam_sampling": DecodingSettings(max_mel_tokens=cap),  # the official default
    }


def seeds(n: int, base: int = 10) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(base + i) for i in range(n)]


def one_by_one(model, conds, texts, settings, targets, langs, base=10):
    return [generate_codes(model, c, t, settings, target_tokens=n, generator=g, lang=lang)
            for c, t, n, g, lang in zip(conds, texts, targets, seeds(len(conds), base), langs)]


def assert_same(batch, single):
    assert len(batch) == len(single)
    for i, (b, s) in enumerate(zip(batch, single)):
        assert torch.equal(b.codes, s.codes), f"request {i}: codes {b.codes.tolist()} != {s.codes.tolist()}"
        assert torch.equal(b.sequence, s.sequence), f"request {i}"
        assert (b.stopped, b.steps, b.target_tokens, b.beam_indices) == \
            (s.stopped, s.steps, s.target_tokens, s.beam_indices), f"request {i}"
        if s.score is None:
            assert b.score is None
        else:  # a beam score is a sum of float32 log-probs: the batched logits round alike to ~1e-6
            assert b.score == pytest.approx(s.score, rel=1e-4, abs=1e-4), f"request {i}"


def _tiny(version: str):
    """A tiny GPT whose stop logit is raised so natural stops come at different steps."""
    if version == "2":
        m, bias = tiny_v2.tiny_model(7), 2.0
    else:
        m, bias = tiny_25.tiny_model(7), 1.0
    with torch.no_grad():
        m.mel_head.bias[STOP] += bias
    g = torch.Generator().manual_seed(3)
    conds, texts, langs = [], [], []
    for i in range(5):
        texts.append(torch.randint(2, 20, (3 + 4 * i,), generator=g))
        if version == "2":
            conds.append(torch.randn(1, 34, 16, generator=g))
            langs.append(None)
        else:
            with torch.no_grad():
                conds.append(m.conditioning(torch.randn(1, 192, generator=g), torch.randn(1, 16, generator=g)))
            langs.append(2 + i)
    return m, conds, texts, langs


TARGETS = [None, 30, None, 7, None]  # natural stops and exact counts mixed


@pytest.fixture(scope="module", params=["2", "2.5"])
def tiny(request):
    return _tiny(request.param)


@pytest.mark.parametrize("method", list(methods(60)))
def test_batch_equals_one_by_one_on_tiny_gpts(tiny, method):
    m, conds, texts, langs = tiny
    s = methods(60)[method]
    single = one_by_one(m, conds, texts, s, TARGETS, langs)
    batch = generate_codes_batch(m, conds, texts, s, TARGETS, seeds(len(conds)), langs=langs)
    assert_same(batch, single)
    natural = [r.codes.size(1) for r, t in zip(single, TARGETS) if t is None]
    assert len(set(natural)) > 1 and min(natural) < 60, "the natural requests should stop at different steps"
    assert [r.codes.size(1) for r, t in zip(single, TARGETS) if t is not None] == [30, 7]


@pytest.mark.parametrize("method", ["greedy", "beam_sampling"])
def test_static_step_batch_equals_one_by_one(tiny, method):
    m, conds, texts, langs = tiny
    s = dataclasses.replace(methods(60)[method], decode_step="static")
    single = one_by_one(m, conds, texts, methods(60)[method], TARGETS, langs)  # eager, one by one
    assert_same(generate_codes_batch(m, conds, texts, s, TARGETS, seeds(len(conds)), langs=langs), single)


def test_stop_looked_at_every_few_tokens_gives_the_same_codes(tiny):
    """Greedy natural stops checked every 5 tokens (what a GPU run does to avoid a sync per
    token): the codes are cut at the first stop all the same."""
    m, conds, texts, langs = tiny
    s = methods(60)["greedy"]
    single = one_by_one(m, conds, texts, s, TARGETS, langs)
    for check in (3, 5, 64):
        got = _generate(m, conds, texts, s, TARGETS, [None] * len(conds), None, langs, check_every=check)
        assert_same(got, single)


def test_each_request_draws_from_its_own_generator(tiny):
    """Swapping two requests (with their generators) swaps the results: no draw leaks across rows."""
    m, conds, texts, langs = tiny
    s = methods(60)["beam_sampling"]
    a = generate_codes_batch(m, conds[:3], texts[:3], s, TARGETS[:3], seeds(3), langs=langs[:3])
    order = [2, 0, 1]
    gens = seeds(3)
    b = generate_codes_batch(m, [conds[i] for i in order], [texts[i] for i in order], s, [TARGETS[i] for i in order],
                             [gens[i] for i in order], langs=[langs[i] for i in order])
    assert_same([b[order.index(i)] for i in range(3)], a)


def test_batch_of_one_is_generate_codes(tiny):
    m, conds, texts, langs = tiny
    s = methods(60)["sampling"]
    (got,) = generate_codes_batch(m, conds[:1], texts[:1], s, [None], seeds(1), langs=langs[:1])
    assert_same([got], one_by_one(m, conds[:1], texts[:1], s, [None], langs[:1]))


def test_batch_progress_and_arguments(tiny):
    m, conds, texts, langs = tiny
    s = methods(60)["greedy"]
    seen = []
    generate_codes_batch(m, conds[:2], texts[:2], s, [5, 9], langs=langs[:2], progress=lambda i, n: seen.append((i, n)))
    assert seen == [(i, 9) for i in range(1, 10)]
    assert generate_codes_batch(m, [], [], s) == []
    with pytest.raises(ValueError, match="one text, target"):
        generate_codes_batch(m, conds[:2], texts[:1], s)
    with pytest.raises(ValueError, match="request 1: target_tokens"):
        generate_codes_batch(m, conds[:2], texts[:2], s, [3, 0], langs=langs[:2])


def test_a_raising_progress_interrupts_the_batch(tiny):
    m, conds, texts, langs = tiny

    def stop_at_3(i, n):
        if i == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_codes_batch(m, conds, texts, methods(60)["greedy"], [20] * 5, langs=langs, progress=stop_at_3)


@pytest.mark.parametrize("version", ["2", "2.5"])
def test_batch_equals_one_by_one_on_the_kit_gpts(request, version):
    model = request.getfixturevalue("kit_gpt_v2" if version == "2" else "kit_gpt_25")
    conds, texts, langs = kit_requests(model, 4)
    targets = [None, 25, None, 9]
    stops = []
    for name, s in methods(model.max_codes).items():
        single = one_by_one(model, conds, texts, s, targets, langs)
        assert_same(generate_codes_batch(model, conds, texts, s, targets, seeds(4), langs=langs), single)
        stops += [r.steps for r, t in zip(single, targets) if t is None]
    assert len(set(stops)) > 1  # natural stops at different steps somewhere
