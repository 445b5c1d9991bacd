"""Fitting a line to its slot (the three policies, bounds and overflow) and placing lines on a
track (exact start samples, gaps, overlap policies): sample arithmetic, no models."""

from __future__ import annotations

import random

import pytest

from indextts2_core.dubbing import FitError, FitSettings, fit_cue, place
from indextts2_core.timing import Timing

V2, V25 = Timing(), Timing(codes_per_second=25, content_per_code=2)


def _natural(codes, t=V2):
    return sum(t.frames_to_samples(t.frames_for_codes(c)) for c in codes)


@pytest.mark.parametrize("timing", [V2, V25], ids=["v2", "v2.5"])
@pytest.mark.parametrize("policy", ["auto", "tokens", "s2m"])
def test_every_policy_fills_the_slot_exactly(timing, policy):
    rng = random.Random(3)
    for _ in range(200):
        codes = [rng.randint(5, 120) for _ in range(rng.randint(1, 4))]
        fixed = rng.randint(0, 20000)
        ratio = rng.uniform(0.72, 1.38)  # inside the default bounds
        slot = fixed + round(_natural(codes, timing) * ratio)
        fit = fit_cue(codes, fixed, slot, timing, FitSettings(policy=policy), "cue 1")
        assert fit.length == slot and sum(fit.samples) + fixed == slot and not fit.warnings
        for samples, frames in zip(fit.samples, fit.frames):
            assert timing.frames_to_samples(frames) >= samples > timing.frames_to_samples(frames - 1)
        if policy == "s2m":
            assert fit.tokens == (None,) * len(codes)  # the natural codes, stretched
        if policy == "tokens":
            assert fit.tokens == tuple(timing.codes_for_samples(s) for s in fit.samples)


def test_auto_keeps_the_gpt_within_its_range_and_reuses_natural_codes():
    codes = [100]
    fit = fit_cue(codes, 0, round(_natural(codes) * 1.3), V2, FitSettings(), "c")
    assert fit.tokens == (115,) and "S2M" in fit.decision  # 1.15 by the GPT, the rest by S2M
    fit = fit_cue(codes, 0, round(_natural(codes) * 0.8), V2, FitSettings(), "c")
    assert fit.tokens == (85,)
    fit = fit_cue(codes, 0, round(_natural(codes) * 1.004), V2, FitSettings(), "c")
    assert fit.tokens == (None,) and "natural codes" in fit.decision  # same count: no second GPT run


def test_natural_length_without_a_slot():
    fit = fit_cue([10, 20], 4410, None, V2, FitSettings(), "c")
    assert fit.length == 4410 + _natural([10, 20]) and fit.ratio == 1.0 and fit.tokens == (None, None)


@pytest.mark.parametrize("ratio", [0.3, 0.5, 1.6, 3.0])
def test_out_of_bounds_lines_follow_the_overflow_choice(ratio):
    codes, fixed = [80], 1000
    natural = _natural(codes)
    slot = fixed + round(natural * ratio)
    with pytest.raises(FitError, match=r"cue 7 \(line 9\).*outside the bounds 0.7–1.4"):
        fit_cue(codes, fixed, slot, V2, FitSettings(overflow="fail"), "cue 7 (line 9)")
    extended = fit_cue(codes, fixed, slot, V2, FitSettings(overflow="extend"), "c")
    bound = 0.7 if ratio < 1 else 1.4
    assert extended.length == fixed + round(natural * bound) and extended.warnings
    assert ("past its slot" if ratio < 1 else "early") in extended.warnings[0]
    squeezed = fit_cue(codes, fixed, slot, V2, FitSettings(overflow="squeeze"), "c")
    assert squeezed.length == slot and "squeezed" in squeezed.warnings[0]


def test_a_slot_with_no_room_for_speech_is_extended_even_when_squeezing():
    fit = fit_cue([50], 5000, 4000, V2, FitSettings(overflow="squeeze"), "c")
    assert fit.length > 5000 and any("no room" in w for w in fit.warnings)


@pytest.mark.parametrize("kw", [dict(policy="fast"), dict(overflow="stretch"), dict(bounds=(1.2, 1.4)),
                                dict(bounds=(0.5, 0.9)), dict(token_range=(0.0, 1.0)), dict(bounds=(0.7, 50))])
def test_bad_fit_settings(kw):
    with pytest.raises(ValueError):
        FitSettings(**kw)


def test_placement_at_exact_samples_with_script_gaps():
    out = place([22050, None, 88200], [1000, 500, 300], ["a", "b", "c"], "error", gap=100)
    assert [(p.start, p.length) for p in out] == [(22050, 1000), (23150, 500), (88200, 300)]


def test_overlap_policies():
    wanted, lengths, wheres = [0, 500, 2000], [1000, 1000, 100], ["cue 1 (line 3)", "cue 2 (line 7)", "cue 3"]
    with pytest.raises(FitError, match=r"cue 2 \(line 7\) starts 500 samples before cue 1 \(line 3\) ends"):
        place(wanted, lengths, wheres, "error")
    shifted = place(wanted, lengths, wheres, "shift")
    assert [p.start for p in shifted] == [0, 1000, 2000] and shifted[1].moved and not shifted[2].moved
    overlaid = place(wanted, lengths, wheres, "overlay")
    assert [p.start for p in overlaid] == [0, 500, 2000] and "mixed" in overlaid[1].notes[0]
    cascade = place([0, 100, 200], [1000, 1000, 1000], ["a", "b", "c"], "shift")
    assert [p.start for p in cascade] == [0, 1000, 2000]
    with pytest.raises(ValueError, match="overlap"):
        place(wanted, lengths, wheres, "merge")


@pytest.mark.parametrize("policy", ["auto", "tokens", "s2m"])
def test_a_segment_the_gpt_ended_at_once_is_estimated_from_its_text_and_generated(policy):
    fit = fit_cue([0, 40], 0, 40000, V2, FitSettings(policy=policy, bounds=(0.1, 10)), "c", text_lengths=[10, 12])
    assert fit.length == 40000 and fit.tokens[0] is not None  # always generated to its planned length
    assert "estimated" in fit.warnings[0]
    alone = fit_cue([0], 0, None, V2, FitSettings(), "c", text_lengths=[10])
    assert alone.tokens == (40,) and alone.length == _natural([40])  # 10 tokens x 0.08 s x 50 codes/s
    with pytest.raises(ValueError, match="text length"):
        fit_cue([0], 0, None, V2, FitSettings(), "c")
