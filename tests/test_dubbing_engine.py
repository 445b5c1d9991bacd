"""Timeline dubbing on the public e2e kit's random-weight models: two voices, every cue at its exact
start sample and of exactly its slot's length, the three fit policies, script lines in sequence,
overlaps, and the content-keyed cache (editing one line regenerates that line only)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from e2e_fixtures import e2e_audio, e2e_kit, e2e_models  # noqa: F401  (fixtures)
from indextts2_core import pipeline as pl
from indextts2_core.dubbing import DubSettings, FitError, FitSettings, dub, parse_script, voice_set
from indextts2_core.gpt import DecodingSettings
from indextts2_core.prompt_cache import FeatureCache

FAST = DecodingSettings(do_sample=False, num_beams=1, repetition_penalty=1.0, max_mel_tokens=12)
WIDE = FitSettings(bounds=(0.1, 10.0), token_range=(0.5, 2.0), overflow="squeeze")
SRT = """1
00:00:00,500 --> 00:00:01,300
[Alice] The robots sang.

2
00:00:01,500 --> 00:00:02,100
[Bob] Then they danced. {happy: 0.5}

3
00:00:02,250 --> 00:00:03,000
[Alice] And then [pause:200ms] they slept.
"""


@pytest.fixture(scope="module")
def voices(e2e_models, e2e_audio):  # noqa: F811
    m = e2e_models
    (a, a_sr), (b, b_sr) = e2e_audio
    rows = []
    # the kits' whole prompts: with them the random GPT speaks (to the cap) before it stops
    for name, (wav, sr) in (("Alice", (a, a_sr)), ("Bob", (b, b_sr))):
        spk = pl.encode_speaker(m.semantic, m.codec, m.campplus, m.s2mel, wav, sr, mel_config=m.config.s2mel.mel,
                                w2v_features=m.w2v_features)
        rows.append((name, spk, (wav, sr)))
    return voice_set(rows, default="Alice")


def settings(**kw) -> DubSettings:
    return DubSettings(**{"fit": WIDE, "decoding": FAST, "s2m": pl.S2MSettings(steps=2), **kw})


@pytest.mark.parametrize("policy", ["auto", "tokens", "s2m"])
def test_every_cue_starts_at_its_sample_and_fills_its_slot(e2e_models, voices, policy):  # noqa: F811
    script = parse_script(SRT)
    fit = dataclasses.replace(WIDE, policy=policy)
    result = dub(e2e_models, script, voices, settings(fit=fit))
    t = e2e_models.timing
    assert result.waveform.shape == (1, t.samples(3.0)) and result.sample_rate == 22050
    for cue, report, audio in zip(script.cues, result.cues, result.cue_audio):
        start, end = t.samples(cue.start), t.samples(cue.end)
        assert (report.start_sample, report.end_sample) == (start, end) and audio.shape[-1] == end - start
        assert torch.equal(result.waveform[:, start:end], audio)
        assert audio.abs().max() > 0
        assert all("estimated from the text" in w for w in report.warnings)  # the random GPT may say nothing
    gaps = [(0, t.samples(0.5)), (t.samples(1.3), t.samples(1.5)), (t.samples(2.1), t.samples(2.25))]
    assert all(not result.waveform[:, a:b].any() for a, b in gaps)  # silence between the lines
    third = result.cue_audio[2]
    assert [r.speaker for r in result.cues] == ["Alice", "Bob", "Alice"] and result.srt is None
    assert third.shape[-1] > t.samples(0.2)  # the pause is inside the line
    if policy == "s2m":
        assert all("S2M stretch" in r.decision for r in result.cues)


def test_script_lines_follow_each_other_and_a_total_length(e2e_models, voices):  # noqa: F811
    script = parse_script("[Alice] The robots sang.\n[pause:0.5s]\n[Bob] Then they danced.\n")
    t = e2e_models.timing
    result = dub(e2e_models, script, voices, settings(line_gap_ms=100, total_seconds=4.0))
    a, b = result.cues
    gap = t.silence_samples(100)
    assert a.start_sample == 0 and b.start_sample == a.end_sample + gap + t.samples(0.5) + gap
    assert result.waveform.shape[-1] == t.samples(4.0) and result.srt.startswith("1\n00:00:00,000 --> ")


def test_overlaps_follow_the_policy(e2e_models, voices):  # noqa: F811
    srt = SRT.replace("00:00:01,500 --> 00:00:02,100", "00:00:01,000 --> 00:00:02,100")
    with pytest.raises(FitError, match=r"cue 2 \(line 7\) starts .* before cue 1 \(line 3\) ends"):
        dub(e2e_models, parse_script(srt), voices, settings())
    shifted = dub(e2e_models, parse_script(srt), voices, settings(overlap="shift"))
    assert shifted.cues[1].start_sample == shifted.cues[0].end_sample and shifted.srt is not None
    assert any("moved" in w for w in shifted.cues[1].warnings)


def test_bad_lines_are_refused_before_anything_is_generated(e2e_models, voices, monkeypatch):  # noqa: F811
    calls = []
    monkeypatch.setattr("indextts2_core.dubbing.engine.generate_semantic_batch", lambda *a, **k: calls.append(1))
    for text, match in [("[Carol] Hello.", r"cue 1 \(line 1\): no voice for \[Carol\]"),
                        ("[Alice] Hi. {emotion_audio: nobody}", "no recording named 'nobody'"),
                        ("[Bob] Hi. {emotion: sad}", "text-emotion model"),
                        ("[Alice] !!! ???", "no speakable content")]:
        with pytest.raises(FitError, match=match):
            dub(e2e_models, parse_script("[Alice] Fine.\n" * 0 + text), voices, settings())
    assert calls == []


def test_editing_one_line_regenerates_that_line_only(e2e_models, voices, monkeypatch):  # noqa: F811
    import indextts2_core.dubbing.engine as engine

    real, calls = engine.generate_semantic_batch, []

    def counted(gpt, requests, *a, **k):
        calls.extend(r.text_ids for r in requests)
        return real(gpt, requests, *a, **k)

    monkeypatch.setattr(engine, "generate_semantic_batch", counted)
    cache = FeatureCache()
    first = dub(e2e_models, parse_script(SRT), voices, settings(), cache=cache)
    runs = len(calls)
    again = dub(e2e_models, parse_script(SRT), voices, settings(), cache=cache)
    assert len(calls) == runs and all(r.cached for r in again.cues)
    assert torch.equal(first.waveform, again.waveform)
    edited = dub(e2e_models, parse_script(SRT.replace("Then they danced.", "Then they flew.")), voices, settings(),
                 cache=cache)
    assert [r.cached for r in edited.cues] == [True, False, True]
    assert torch.equal(edited.cue_audio[0], first.cue_audio[0]) and torch.equal(edited.cue_audio[2], first.cue_audio[2])
    moved = dub(e2e_models, parse_script(SRT.replace("00:00:02,250 --> 00:00:03,000", "00:00:02,250 --> 00:00:03,200")),
                voices, settings(), cache=cache)
    assert [r.cached for r in moved.cues] == [True, True, False]  # a new slot: refitted, natural run reused
    fresh = len(calls)
    assert cache.bytes <= cache.max_bytes and all(v.device.type == "cpu" for v in [edited.waveform])
    assert fresh - runs <= 2 * 2  # the edited line (and the moved line's forced runs), nothing else


def test_batched_lines_equal_one_by_one(e2e_models, voices):  # noqa: F811
    """Lines decoded and synthesised together give the codes they get alone (each segment draws from
    its own generator) and the same audio to float rounding."""
    script = parse_script(SRT)
    alone = dub(e2e_models, script, voices, settings(batch_size=1))
    together = dub(e2e_models, script, voices, settings(batch_size=8))
    assert [r.tokens for r in alone.cues] == [r.tokens for r in together.cues]
    assert [r.decision for r in alone.cues] == [r.decision for r in together.cues]
    for a, b in zip(alone.cue_audio, together.cue_audio):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=0, atol=2e-3)
