import pytest
import torch

from indextts2_core import durations as d


def test_official_frame_rule_matches_float32_truncation():
    for t in range(1, 3000):
        assert d.frames_for_codes(t) == int((torch.tensor([t]) * 1.72).long())


def test_sample_precision():
    assert d.seconds_to_samples(3.0) == 66150
    assert d.frames_to_samples(d.seconds_to_frames(1.0)) == 86 * 256
    assert d.seconds_to_codes(2.0) == 100 and d.codes_to_seconds(50) == 1.0
    assert d.CODES_PER_SECOND == 50


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "3"])
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        d.seconds_to_frames(bad)


def test_bad_counts():
    with pytest.raises(ValueError):
        d.frames_for_codes(0)
    with pytest.raises(ValueError):
        d.frames_to_samples(2.5)
