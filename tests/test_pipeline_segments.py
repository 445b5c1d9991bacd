"""pipeline/plan.py and segments.py: the duration plan (seconds = the whole output, silences included;
target tokens = the whole text's speech; the plan owns the silences and the model's limits), the join,
and the three segment stages chained by hand on the public e2e kit's random-weight models, as the
ComfyUI nodes chain them (S2M override, the plan's silences at the vocoder)."""

from __future__ import annotations

import pytest
import torch

from e2e_fixtures import e2e_audio, e2e_kit, e2e_models  # noqa: F401  (fixtures)
from indextts2_core import pipeline as pl
from indextts2_core.gpt import DecodingSettings
from indextts2_core.timing import Timing

T = Timing()

SEGMENTS = [[1] * 10, [2] * 3, [3] * 7]
GAP_350 = int(22050 * 0.35)  # 7717 samples


def test_seconds_plan_covers_the_whole_output():
    plan = pl.plan_durations(SEGMENTS, T, seconds=3.0, interval_silence_ms=350)
    assert plan.total_samples == 66150 and plan.silence_samples == GAP_350
    assert sum(plan.samples) + 2 * GAP_350 == 66150  # speech + silences = exactly 3.0 s
    assert plan.samples[0] > plan.samples[2] > plan.samples[1]  # shared by text tokens
    for tokens, frames, samples in zip(plan.tokens, plan.frames, plan.samples):
        assert frames * 256 >= samples > (frames - 1) * 256  # the S2M length covers the samples
        assert tokens == T.codes_for_samples(samples)
    assert plan.text_ids == tuple(tuple(s) for s in SEGMENTS) and plan.langs is None and plan.lang(1) is None
    with_langs = pl.plan_durations([pl.TextSegment((5, 6), 2), pl.TextSegment((7,), 3)], T)
    assert with_langs.langs == (2, 3) and with_langs.lang(1) == 3  # an IndexTTS-2.5 segment's language row


def test_tiny_shares_still_get_one_frame():
    plan = pl.plan_durations([[1] * 200, [2]], T, seconds=0.1, interval_silence_ms=0)
    assert plan.samples[1] == 256 and sum(plan.samples) == 2205


def test_token_and_natural_plans():
    plan = pl.plan_durations(SEGMENTS, T, target_tokens=100)
    assert plan.tokens == (50, 15, 35) and plan.frames == plan.samples == (None,) * 3
    assert plan.total_samples is None
    assert pl.plan_durations([[1] * 50, [2]], T, target_tokens=2).tokens == (1, 1)  # at least one each
    natural = pl.plan_durations(SEGMENTS, T)
    assert natural.tokens == natural.frames == natural.samples == (None,) * 3
    assert natural.silence_samples == 4410 and natural.total_samples is None
    with pytest.raises(ValueError, match="nothing to plan"):
        pl.plan_durations([[1], []], T)


@pytest.mark.parametrize("kw, message", [
    ({"seconds": 1.0, "target_tokens": 5}, "either seconds or target_tokens"),
    ({"seconds": 0.4, "interval_silence_ms": 200}, r"too short for 3 text segment.*at least 0\.435 s"),
    ({"seconds": float("nan")}, "seconds"),
    ({"seconds": -1.0}, "seconds"),
    ({"target_tokens": 2}, "fewer than the 3 text segments"),
    ({"target_tokens": [4, 6, 8]}, "target tokens must be a positive integer"),
    ({"interval_silence_ms": -5}, "interval silence"),
    ({"interval_silence_ms": 1e8}, "interval silence"),
    ({"target_tokens": 10**6, "max_codes": 1815}, "at most 1815 per segment"),
    ({"seconds": 1e9, "max_codes": 1815}, "at most 1815 per segment"),
])
def test_bad_plans_are_refused(kw, message):
    with pytest.raises(ValueError, match=message):
        pl.plan_durations(SEGMENTS, T, **kw)


def test_the_plan_owns_the_silences_and_the_s2m_override_keeps_them():
    plan = pl.plan_durations(SEGMENTS, T, target_tokens=100, interval_silence_ms=350)
    timed = pl.replan_s2m(plan, seconds=3.0)
    assert timed.silence_samples == GAP_350 and sum(timed.samples) + 2 * GAP_350 == 66150
    assert timed.tokens == plan.tokens  # codes are kept, only S2M lengths change
    framed = pl.replan_s2m(plan, frames=99)
    assert sum(framed.frames) == 99 and framed.samples == (None,) * 3 and framed.total_samples is None


def test_join_leaves_out_empty_segments_and_hits_the_total():
    waves = [torch.ones(1, 5), torch.zeros(1, 0), torch.full((1, 7), 2.0)]
    joined, starts = pl.join_waveforms(waves, 3)
    assert joined.shape == (1, 15) and starts == (0, 5, 8)  # one silence, none for the empty segment
    assert joined[0, 5:8].eq(0).all() and joined[0, 8:].eq(2).all()
    joined, starts = pl.join_waveforms([torch.ones(1, 5), torch.ones(1, 5), torch.ones(1, 5)], 3, total_samples=25)
    assert joined.shape == (1, 25) and starts == (0, 8, 16) and joined[0, 21:].eq(0).all()  # the end is padded
    joined, _ = pl.join_waveforms([torch.ones(1, 5), torch.ones(1, 5)], 3, total_samples=8)
    assert joined.shape == (1, 8)  # the end is cut
    with pytest.raises(pl.NoSpeechError, match="no speech"):
        pl.join_waveforms([torch.zeros(1, 0)], 3)


# ---- the stage functions on the kit's models -------------------------------------------------------
FAST = DecodingSettings(do_sample=False, num_beams=1, repetition_penalty=1.0, max_mel_tokens=12)
TEXT = "The robots sang. Then they danced, and then they slept."


@pytest.fixture(scope="module")
def stages(e2e_models, e2e_audio):  # noqa: F811
    m = e2e_models
    (wav, sr), _ = e2e_audio
    speaker = pl.encode_speaker(m.semantic, m.codec, m.campplus, m.s2mel, wav[:, : int(0.6 * sr)], sr,
                                mel_config=m.config.s2mel.mel, w2v_features=m.w2v_features)
    segments = pl.text_segments(m.tokenizer, TEXT, 8)
    return m, speaker, segments


def _semantic(stages, **plan_kw):
    m, speaker, segments = stages
    plan = pl.plan_durations(segments, m.timing, **plan_kw)
    steps = []
    sem = pl.generate_semantic_segments(m.gpt, speaker, None, plan, FAST, generator=torch.Generator().manual_seed(0),
                                        segment_progress=lambda i, n: steps.append((i, n)))
    assert steps == [(i + 1, len(plan)) for i in range(len(plan))]
    return sem


def _mels(stages, sem, **kw):
    m, speaker, _ = stages
    return pl.synthesize_mels(m.s2mel, m.codec, speaker, sem, settings=pl.S2MSettings(steps=2),
                              generator=torch.Generator().manual_seed(1), **kw)


def test_stage_chain_follows_the_seconds_plan(stages):
    m = stages[0]
    sem = _semantic(stages, seconds=3.0, interval_silence_ms=350)
    assert sem.plan.total_samples == 66150 and [s.codes.shape[-1] for s in sem.segments] == list(sem.plan.tokens)
    mels = _mels(stages, sem)
    assert [x.shape[-1] for x in mels.mels] == list(sem.plan.frames) and mels.plan.total_samples == 66150
    wav = pl.vocode_segments(m.vocoder, mels)
    assert wav.shape == (1, 66150)  # exactly 3.0 s with the plan's silences
    first = sem.plan.samples[0]
    assert wav[0, first: first + GAP_350].eq(0).all() and wav[0, :first].abs().max() > 0


def test_s2m_override_seconds_and_frames(stages):
    m = stages[0]
    sem = _semantic(stages, target_tokens=30)
    auto = _mels(stages, sem)
    assert [x.shape[-1] for x in auto.mels] == [int(t * 1.72) for t in sem.plan.tokens]  # official rule
    assert auto.plan.total_samples is None and auto.plan.samples == (None,) * len(sem.segments)
    natural_len = pl.vocode_segments(m.vocoder, auto).shape[-1]
    assert natural_len == auto.num_frames * 256 + (len(sem.segments) - 1) * 4410
    timed = _mels(stages, sem, seconds=2.0)
    assert pl.vocode_segments(m.vocoder, timed).shape == (1, 44100)  # the plan's 200 ms silences included
    framed = _mels(stages, sem, frames=99)
    assert framed.num_frames == 99 and framed.plan.total_samples is None
    with pytest.raises(ValueError, match="either seconds or frames"):
        _mels(stages, sem, seconds=2.0, frames=99)
    with pytest.raises(ValueError, match="cfm noise holds 1"):
        _mels(stages, sem, noise=[torch.zeros(1)])
