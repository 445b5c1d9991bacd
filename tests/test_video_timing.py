"""Sample-exact length bookkeeping between speech and video (indextts2_core.video_timing)."""

from fractions import Fraction

import pytest
import torch

from indextts2_core import durations, video_timing as vt


def test_seconds_to_samples_is_exact():
    assert vt.seconds_to_samples(3.0) == 66150
    assert vt.seconds_to_samples(3.24) == 71442
    assert vt.seconds_to_samples(0.1, 16000) == 1600
    assert vt.seconds_to_samples(1 / 3) == 7350


def test_video_seconds_and_samples():
    assert vt.video_seconds(81, 25) == 3.24
    assert vt.video_seconds(121, 24) == pytest.approx(121 / 24)
    assert vt.video_samples(81, 25) == 71442
    # NTSC film: 24000/1001 fps (as a float) is recovered exactly; 240 frames = 10.01 s
    assert vt.as_fraction(24000 / 1001) == Fraction(24000, 1001)
    assert vt.video_seconds(240, 24000 / 1001) == pytest.approx(10.01)
    assert vt.video_samples(240, 24000 / 1001) == round(10.01 * 22050)
    assert vt.as_fraction(29.97) == Fraction(2997, 100)


@pytest.mark.parametrize("frames,fps", [(81, 25), (49, 16), (100, 29.97), (33, 30)])
def test_video_samples_never_exceed_createvideo_cut(frames, fps):
    import math

    kept = math.ceil(22050 / vt.as_fraction(fps) * frames)  # what CreateVideo keeps
    assert vt.video_samples(frames, fps) <= kept


def test_tokens_for_seconds_uses_50_codes_per_second():
    assert vt.tokens_for_seconds(3.24) == 162
    assert vt.tokens_for_seconds(3.0) == 3 * durations.CODES_PER_SECOND


@pytest.mark.parametrize("frames,rule,rounding,expected", [
    (80, "4n+1", "up", 81), (81, "4n+1", "up", 81), (82, "4n+1", "up", 85), (82, "4n+1", "down", 81),
    (83, "4n+1", "nearest", 85), (82, "4n+1", "nearest", 81), (80, "8n+1", "up", 81), (90, "8n+1", "down", 89),
    (1, "8n+1", "up", 1), (2, "8n+1", "down", 1), (77, "none", "up", 77),
])
def test_frame_rule(frames, rule, rounding, expected):
    assert vt.frame_rule(frames, rule, rounding) == expected


def test_audio_frame_count():
    assert vt.audio_frame_count(71442, 22050, 25) == 81  # 3.24 s
    assert vt.audio_frame_count(71443, 22050, 25) == 82  # one sample more needs one more frame
    assert vt.audio_frame_count(66150, 22050, 25, rule="4n+1") == 77  # 75 → 77
    assert vt.audio_frame_count(66150, 22050, 16, rule="8n+1", rounding="down") == 41  # 48 → 41


def test_fit_waveform_pads_and_trims_at_sample_precision():
    wav = torch.ones(1, 2, 1000)
    out = vt.fit_waveform(wav, vt.seconds_to_samples(3.0))
    assert out.shape == (1, 2, 66150)
    assert out[..., :1000].eq(1).all() and out[..., 1000:].eq(0).all()
    assert vt.fit_waveform(torch.ones(1, 1, 70000), 66150).shape == (1, 1, 66150)


def test_split_total_is_exact_and_proportional():
    assert vt.split_total(10, [1, 1, 1]) == [4, 3, 3]
    assert sum(vt.split_total(157, [17, 5, 40])) == 157
    parts = vt.split_total(1000, [1, 3])
    assert parts == [250, 750]
    assert vt.split_total(3, [100, 1, 1]) == [1, 1, 1]


def test_split_total_with_a_minimum_part():
    parts = vt.split_total(2205, [200, 1], minimum=256)
    assert parts == [1949, 256]
    assert vt.split_total(50716, [10, 3, 7], minimum=256) == [25358, 7607, 17751]
    with pytest.raises(ValueError, match="at least 256"):
        vt.split_total(500, [1, 1], minimum=256)


def test_silence_samples_follow_the_official_truncation():
    assert vt.silence_samples(200) == 4410 and vt.silence_samples(350) == 7717 and vt.silence_samples(0) == 0
    assert vt.silence_samples(12.5) == 275


@pytest.mark.parametrize("call", [
    lambda: vt.seconds_to_samples(0), lambda: vt.seconds_to_samples(float("nan")),
    lambda: vt.video_seconds(0, 25), lambda: vt.video_seconds(10, 0), lambda: vt.frame_rule(10, "3n+1"),
    lambda: vt.split_total(2, [1, 1, 1]), lambda: vt.fit_waveform(torch.ones(1, 1, 0), 10),
    lambda: vt.silence_samples(-1), lambda: vt.silence_samples(float("inf")), lambda: vt.silence_samples(True),
])
def test_bad_values_raise(call):
    with pytest.raises(ValueError):
        call()
