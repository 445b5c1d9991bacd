"""The WAV writer: official int16 conversion, streaming with an exact total, atomic replacement,
and the refusals before any synthesis (special files, folders, missing or read-only folders,
non-finite audio), with the real error never hidden by a cleanup error."""

from __future__ import annotations

import os
import stat

import pytest
import soundfile as sf
import torch

from indextts2_core import pipeline as pl
from indextts2_core.pipeline.synthesize import SegmentAudio, SegmentInfo


def _piece(i: int, gap: int, wav: torch.Tensor) -> SegmentAudio:
    return SegmentAudio(SegmentInfo(i, (1,), torch.zeros(1, 0, dtype=torch.long), torch.zeros(1, 0, dtype=torch.long),
                                    True, 0, 0, wav.shape[-1]), gap, wav)


def test_result_is_written_with_the_official_int16_conversion(tmp_path):
    result = pl.SynthesisResult(torch.linspace(-1, 1, 2205).unsqueeze(0), 22050, ())
    out = tmp_path / "out.wav"
    assert pl.write_wav(out, result) == 2205
    info = sf.info(str(out))
    assert (info.subtype, info.frames, info.samplerate, info.channels) == ("PCM_16", 2205, 22050, 1)
    data, _ = sf.read(str(out), dtype="int16")
    assert data[0] == -32767 and data[-1] == 32767
    assert torch.equal(torch.from_numpy(data), result.int16()[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]


@pytest.mark.parametrize("total", [None, 20, 40, 70])
def test_streamed_pieces_with_gaps_and_an_exact_total(tmp_path, total):
    pieces = [_piece(0, 0, torch.full((1, 10), 0.5)), _piece(1, 5, torch.full((1, 20), -0.25)),
              _piece(2, 0, torch.zeros(1, 0))]
    out = tmp_path / "s.wav"
    n = pl.write_wav(out, iter(pieces), 22050, total)
    data, _ = sf.read(str(out), dtype="int16")
    expected = torch.cat([torch.full((10,), 0.5), torch.zeros(5), torch.full((20,), -0.25)])
    if total is not None:
        expected = torch.cat([expected, torch.zeros(max(0, total - 35))])[:total]
    assert n == len(data) == len(expected)
    assert torch.equal(torch.from_numpy(data), (expected * 32767).to(torch.int16))


def test_values_beyond_full_scale_are_clamped(tmp_path):
    pieces = [_piece(0, 0, torch.tensor([[2.0, -3.0, 0.0]]))]
    pl.write_wav(tmp_path / "c.wav", pieces, 22050)
    data, _ = sf.read(str(tmp_path / "c.wav"), dtype="int16")
    assert data.tolist() == [32767, -32767, 0]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("where", [0, 7, 29])
def test_non_finite_audio_writes_nothing(tmp_path, bad, where):
    out = tmp_path / "n.wav"
    out.write_bytes(b"previous take")
    wav = torch.zeros(1, 30)
    wav[0, where] = bad
    with pytest.raises(pl.NonFiniteError, match="NaN or Inf"):
        pl.write_wav(out, [_piece(0, 0, torch.full((1, 5), 0.1)), _piece(1, 2, wav)], 22050)
    assert out.read_bytes() == b"previous take"  # the old file is intact, no temporary file is left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.wav"]


def test_special_files_are_refused_before_anything_is_written(tmp_path):
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/null"):
        with pytest.raises(ValueError, match="not a regular file"):
            pl.check_output_path(path)
    assert stat.S_ISFIFO(fifo.stat().st_mode) and stat.S_ISCHR(os.stat("/dev/null").st_mode)
    dangling = tmp_path / "gone.wav"
    dangling.symlink_to(tmp_path / "nowhere" / "x.wav")
    with pytest.raises(ValueError, match="not a regular file"):
        pl.check_output_path(dangling)
    with pytest.raises(ValueError, match="is a folder"):
        pl.check_output_path(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        pl.check_output_path(tmp_path / "missing" / "x.wav")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(ValueError, match="not writable"):
            pl.check_output_path(ro / "x.wav")
    finally:
        ro.chmod(0o700)


@pytest.mark.parametrize("length", [1, 100, 200, 255 - len(".wav")])
def test_long_valid_names_still_work(tmp_path, length):
    out = tmp_path / ("n" * length + ".wav")
    pl.write_wav(out, pl.SynthesisResult(torch.zeros(1, 10), 22050, ()))
    assert out.is_file() and len(list(tmp_path.iterdir())) == 1


def test_a_failing_write_keeps_its_own_error_and_leaves_nothing(tmp_path, monkeypatch):
    out = tmp_path / "out.wav"
    out.write_bytes(b"keep me")

    def pieces():
        yield _piece(0, 0, torch.zeros(1, 10))
        raise OSError("disk full")

    real_unlink = os.unlink

    def failing_cleanup(path, *a, **k):  # the cleanup fails too: the first error must still surface
        real_unlink(path)
        raise PermissionError("cleanup refused")

    monkeypatch.setattr(os, "unlink", failing_cleanup)
    with pytest.raises(OSError, match="disk full"):
        pl.write_wav(out, pieces(), 22050)
    monkeypatch.undo()
    assert out.read_bytes() == b"keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]
