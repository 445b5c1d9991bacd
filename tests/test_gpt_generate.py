"""Tier (a) for GPT decoding: static KV cache vs full recomputation, beam reorder, processor chain,
beam scorer, natural / target duration for every decoding method, parameter validation."""

from __future__ import annotations

import logging

import pytest
import torch

from indextts2_core.gpt.generate import (BeamHypotheses, DecodingSettings, KVCache, apply_top_p,
                                         decode_one_token, generate_codes, prefill, process_scores,
                                         score_processors)
from test_gpt_model import tiny_model

STOP = 25  # tiny_config: 24 codes + start 24 + stop 25
METHODS = {
    "greedy": DecodingSettings(do_sample=False, num_beams=1, max_mel_tokens=200),
    "sampling": DecodingSettings(num_beams=1, max_mel_tokens=200),
    "beam_search": DecodingSettings(do_sample=False, num_beams=3, max_mel_tokens=200),
    "beam_sampling": DecodingSettings(max_mel_tokens=200),  # the official default, capped at the tiny table
}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny tensors, one intra-op thread


@pytest.fixture(scope="module")
def model():
    return tiny_model(7)


@pytest.fixture(scope="module")
def stop_loving_model():
    """Wants to emit the stop token at every step: target mode must hold it off until N."""
    m = tiny_model(8)
    with torch.no_grad():
        m.mel_head.bias[STOP] = 50.0
    return m


def _conds(seed=0):
    return torch.randn(1, 34, 16, generator=torch.Generator().manual_seed(seed))


TEXT = torch.tensor([5, 9, 3, 17])


def _full_logits(m, conds, text, fed_codes):
    """Uncached recomputation: whole sequence through the stack, generation positions (k+2)."""
    prompt = m.prompt_embeds(conds, text)
    k = torch.tensor(fed_codes, dtype=torch.long).view(1, -1)
    mel = m.mel_embeds(k, torch.arange(k.size(1)) + 2)
    h = m.hidden_states(torch.cat((prompt, mel), 1))
    return m.logits(h[0, prompt.size(1) - 1:])  # logits after start, c_0, c_1, ...


def test_cached_greedy_equals_full_recomputation(model):
    conds = _conds()
    seen = []
    settings = DecodingSettings(do_sample=False, num_beams=1, repetition_penalty=1.0, max_mel_tokens=12)
    with torch.no_grad():
        model.mel_head.bias[STOP] -= 100.0  # run all 12 steps
        try:
            r = generate_codes(model, conds, TEXT, settings, on_step=lambda lg, sc: seen.append(lg.clone()))
            full = _full_logits(model, conds, TEXT, r.sequence[0, :-1].tolist())
        finally:
            model.mel_head.bias[STOP] += 100.0
    assert r.sequence.shape == (1, 12) and not r.stopped
    torch.testing.assert_close(torch.cat(seen), full, atol=1e-5, rtol=1e-5)
    assert torch.equal(r.sequence[0], full.argmax(-1))


def test_generation_positions_skip_mel_position_one(model):
    """Quirk Q2: the first generated code is embedded at mel position 2, not 1."""
    conds = _conds(1)
    with torch.no_grad():
        prompt = model.prompt_embeds(conds, TEXT)
        cache = KVCache.for_model(model, 1, prompt.size(1) + 2)
        prefill(model, prompt, cache)
        got = decode_one_token(model, torch.tensor([3]), 0, prompt.size(1), cache)
        want = _full_logits(model, conds, TEXT, [3])[1]
        mel1 = model.mel_embeds(torch.tensor([[3]]), torch.tensor([1]))
        wrong = model.logits(model.hidden_states(torch.cat((prompt, mel1), 1)))[0, -1]
    torch.testing.assert_close(got[0], want, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(got[0], wrong, atol=1e-3)


def test_kv_cache_beam_reorder_matches_recomputation(model):
    conds = _conds(2)
    with torch.no_grad():
        prompt = model.prompt_embeds(conds, TEXT)
        p = prompt.size(1)
        cache = KVCache.for_model(model, 3, p + 5)
        prefill(model, prompt, cache)  # batch-1 prefill fills every beam row
        hist = [[4], [7], [11]]
        decode_one_token(model, torch.tensor([4, 7, 11]), 0, p, cache)
        parents = torch.tensor([2, 0, 0])
        cache.reorder(parents)
        hist = [hist[i] + [t] for i, t in zip(parents.tolist(), [1, 2, 3])]
        decode_one_token(model, torch.tensor([1, 2, 3]), 1, p, cache)
        cache.reorder(torch.tensor([1, 1, 2]))
        hist = [hist[1] + [5], hist[1] + [6], hist[2] + [8]]
        got = decode_one_token(model, torch.tensor([5, 6, 8]), 2, p, cache)
        for b in range(3):
            torch.testing.assert_close(got[b], _full_logits(model, conds, TEXT, hist[b])[-1], atol=1e-5, rtol=1e-5)
    assert cache.length == p + 3
    assert len(cache.k) == model.cfg.layers and cache.k[0].shape == (3, 2, p + 5, 8)


def test_processor_chain_semantics():
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0, -2.0, 1.0]])
    hist = torch.tensor([[1, 3, 3]])
    s = DecodingSettings(num_beams=2, temperature=0.5, top_k=4, top_p=0.6, repetition_penalty=2.0)
    trace, scores = {}, logits
    for name, step in score_processors(s, hist):
        scores = trace[name] = step(scores)
    out = process_scores(logits, hist, s)
    assert torch.equal(out, scores)
    lp = torch.log_softmax(logits, -1)
    assert torch.equal(trace["log_softmax"], lp)
    rp = lp.clone()
    rp[0, [1, 3]] = rp[0, [1, 3]] * 2.0  # log-probs are negative: multiplied
    torch.testing.assert_close(trace["repetition_penalty"], rp)
    torch.testing.assert_close(trace["temperature"], rp / 0.5)
    assert torch.isinf(trace["top_k"]).sum() == 2  # 6 - 4 removed
    assert torch.isfinite(out).sum() >= 2  # min_tokens_to_keep 2 with beams
    # with one beam the chain runs on raw logits (positive ones are divided)
    raw = process_scores(logits, hist, DecodingSettings(num_beams=1, top_k=0, top_p=1.0, temperature=1.0,
                                                        repetition_penalty=2.0))
    torch.testing.assert_close(raw, torch.tensor([[2.0, -2.0, 0.5, 1.5, -2.0, 1.0]]))
    # stop suppression acts before the warpers
    sup = process_scores(logits, hist, DecodingSettings(num_beams=1, top_k=1), suppress_token=3)
    assert torch.isfinite(sup).sum() == 1 and torch.isfinite(sup[0, 0])


def test_top_p_keeps_the_nucleus():
    scores = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = torch.isfinite(apply_top_p(scores, 0.8, 1))[0].tolist()
    assert kept == [True, True, False, False]  # 0.05 + 0.15 = 0.2 <= 1 - 0.8 removed
    assert torch.isfinite(apply_top_p(scores, 0.01, 2)).sum() == 2


def test_beam_hypotheses_keep_the_best_and_stop_rule():
    h = BeamHypotheses(2, length_penalty=0.0)
    h.add(torch.tensor([1]), -5.0, 2, True)
    assert not h.is_done(-1.0, 3)
    h.add(torch.tensor([2]), -3.0, 2, True)
    h.add(torch.tensor([3]), -4.0, 3, True)  # evicts -5
    assert sorted(s for s, _, _ in h.beams) == [-4.0, -3.0] and h.worst_score == -4.0
    h.add(torch.tensor([4]), -9.0, 3, True)  # worse than the worst: ignored
    assert len(h.beams) == 2
    assert h.is_done(-4.0, 5) and not h.is_done(-3.9, 5)
    assert h.best()[1].item() == 2
    lp = BeamHypotheses(1, length_penalty=1.0)
    lp.add(torch.tensor([1, 2]), -6.0, 3, True)
    assert lp.beams[0][0] == -2.0


@pytest.mark.parametrize("name", sorted(METHODS))
def test_natural_mode_stops_on_the_stop_token(name, stop_loving_model):
    r = generate_codes(stop_loving_model, _conds(), TEXT, METHODS[name], generator=torch.Generator().manual_seed(0))
    assert r.stopped and r.codes.shape == (1, 0)
    assert r.sequence[0, -1].item() == STOP


@pytest.mark.parametrize("name", sorted(METHODS))
def test_no_stop_keeps_every_code_and_warns(name, model, caplog):
    settings = DecodingSettings(**{**METHODS[name].__dict__, "max_mel_tokens": 9})
    with torch.no_grad():
        model.mel_head.bias[STOP] -= 100.0
        try:
            with caplog.at_level(logging.WARNING, logger="indextts2_core.gpt.generate"):
                r = generate_codes(model, _conds(), TEXT, settings, generator=torch.Generator().manual_seed(0))
        finally:
            model.mel_head.bias[STOP] += 100.0
    assert not r.stopped and r.codes.shape == (1, 9) and torch.equal(r.codes, r.sequence)
    assert sum("no stop token" in m for m in caplog.messages) == 1


# Every N in 1..200 is checked, spread over the four methods to keep the suite fast (a full 4 x 200
# sweep is 80k decode steps); each method covers a quarter of the range plus both ends.
_TARGETS = [(name, n) for i, name in enumerate(sorted(METHODS)) for n in range(1, 201)
            if n % 4 == i or n in (1, 2, 3, 199, 200)]


@pytest.mark.parametrize("name,n", _TARGETS)
def test_target_mode_gives_exactly_n_codes(name, n, stop_loving_model):
    calls = []
    r = generate_codes(stop_loving_model, _conds(), TEXT, METHODS[name], target_tokens=n,
                       generator=torch.Generator().manual_seed(n), progress=lambda i, t: calls.append((i, t)))
    assert r.codes.shape == (1, n) and r.stopped and r.target_tokens == n
    assert (r.codes != STOP).all() and r.codes.dtype == torch.int64
    assert calls == [(i, n) for i in range(1, n + 1)]


def test_sampling_is_reproducible_with_an_explicit_generator(model):
    runs = [generate_codes(model, _conds(), TEXT, METHODS["beam_sampling"], target_tokens=30,
                           generator=torch.Generator().manual_seed(s)).codes for s in (11, 11, 12)]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def _reference_beam_search(m, conds, text, beams, steps, penalty):
    """Textbook beam search with full recomputation per step (no cache), official scorer rules."""
    live = [([], 0.0 if b == 0 else -1e9) for b in range(beams)]
    finished = []
    for step in range(steps):
        cands = []
        for b, (seq, score) in enumerate(live):
            lp = torch.log_softmax(_full_logits(m, conds, text, seq)[-1].float(), -1)
            for t in set([1, 24] + seq):
                lp[t] = lp[t] * penalty if lp[t] < 0 else lp[t] / penalty
            cands += [(score + lp[t].item(), b, t) for t in range(lp.numel())]
        cands.sort(key=lambda c: -c[0])
        nxt = []
        for rank, (sc, b, t) in enumerate(cands[:2 * beams]):
            if t == STOP:
                if rank < beams:
                    finished.append((sc, live[b][0]))
            else:
                nxt.append((live[b][0] + [t], sc))
            if len(nxt) == beams:
                break
        finished = sorted(finished, key=lambda f: -f[0])[:beams]
        live = nxt
        if len(finished) == beams and finished[-1][0] >= cands[0][0]:
            return max(finished, key=lambda f: f[0])
    return max(finished + [(sc, seq) for seq, sc in live], key=lambda f: f[0])


@pytest.mark.parametrize("stop_bias,finishes", [(0.0, False), (4.0, True)])
def test_cached_beam_search_equals_uncached_reference(model, stop_bias, finishes):
    with torch.no_grad():
        model.mel_head.bias[STOP] += stop_bias  # 4.0: a finished hypothesis wins
        try:
            got = generate_codes(model, _conds(3), TEXT, DecodingSettings(do_sample=False, num_beams=3,
                                                                          max_mel_tokens=8, repetition_penalty=3.0))
            want_score, want_seq = _reference_beam_search(model, _conds(3), TEXT, 3, 8, 3.0)
        finally:
            model.mel_head.bias[STOP] -= stop_bias
    assert got.stopped == finishes
    assert got.codes[0].tolist() == want_seq
    assert got.score == pytest.approx(want_score, abs=1e-4)


def test_progress_may_interrupt(model):
    def stop_at_3(i, total):
        if i == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_codes(model, _conds(), TEXT, METHODS["beam_sampling"], target_tokens=10, progress=stop_at_3)


def test_half_precision_runs(model):
    m = tiny_model(7).to(torch.bfloat16)
    r = generate_codes(m, _conds().bfloat16(), TEXT, METHODS["beam_sampling"], target_tokens=5,
                       generator=torch.Generator().manual_seed(0))
    assert r.codes.shape == (1, 5)


@pytest.mark.parametrize("field,value", [
    ("num_beams", 0), ("num_beams", 17), ("num_beams", 2.0), ("temperature", 0.0), ("temperature", -1.0),
    ("top_k", -1), ("top_p", 0.0), ("top_p", 1.5), ("top_p", float("nan")), ("repetition_penalty", 0.0),
    ("max_mel_tokens", 0), ("max_mel_tokens", -5), ("length_penalty", float("inf")), ("do_sample", 1),
])
def test_bad_settings_name_the_parameter(field, value):
    with pytest.raises(ValueError, match=field):
        DecodingSettings(**{field: value})


def test_bad_targets_and_limits(model):
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="target_tokens"):
            generate_codes(model, _conds(), TEXT, METHODS["greedy"], target_tokens=bad)
    with pytest.raises(ValueError, match="mel position table"):
        generate_codes(model, _conds(), TEXT, METHODS["greedy"], target_tokens=201)
    with pytest.raises(ValueError, match="max_mel_tokens"):
        generate_codes(model, _conds(), TEXT, DecodingSettings(max_mel_tokens=201))
    assert METHODS["greedy"].validate(model.max_codes, target_tokens=200) is METHODS["greedy"]
    with pytest.raises(ValueError, match="target_tokens"):
        METHODS["greedy"].validate(model.max_codes, target_tokens=201)
    with pytest.raises(ValueError, match="conds"):
        generate_codes(model, torch.randn(1, 34, 8), TEXT, METHODS["greedy"], target_tokens=2)
