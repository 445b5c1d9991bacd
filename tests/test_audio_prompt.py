"""File loading, channel mixing, validation and the speaker / emotion prompt chains (spec §2.2,
Q6): kit parity, any rate and channel count, 15 s cut, bad input."""

import logging
import math

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from conftest import PUBLIC_KIT, need
from indextts2_core.audio import (kaldi_fbank, load_audio, mel_spectrogram, prepare_emotion_prompt,
                                  prepare_speaker_prompt, resample, to_mono, validate_waveform,
                                  w2v_bert_features)
from indextts2_core.config import MelConfig


def _tone(seconds, sr, channels=1, seed=0):
    t = torch.arange(int(seconds * sr), dtype=torch.float64) / sr
    g = torch.Generator().manual_seed(seed)
    chans = [0.4 * torch.sin(2 * math.pi * (220 + 110 * c) * t) + 0.01 * torch.randn(len(t), generator=g,
                                                                                     dtype=torch.float64)
             for c in range(channels)]
    return torch.stack(chans).float()


@pytest.fixture(scope="module")
def kit():
    expected = load_file(str(need(PUBLIC_KIT / "expected" / "a_audio.safetensors")))
    return load_file(str(PUBLIC_KIT / "inputs" / "inputs.safetensors")), expected


# --- io -----------------------------------------------------------------------------------------

def test_load_audio_formats(tmp_path):
    stereo = np.stack([np.linspace(-0.5, 0.5, 800), np.zeros(800)], axis=1)
    sf.write(tmp_path / "s.wav", stereo, 24000, subtype="PCM_16")
    wav, sr = load_audio(tmp_path / "s.wav")
    assert sr == 24000 and wav.shape == (2, 800) and wav.dtype == torch.float32
    assert abs(wav[0, -1].item() - 0.5) < 1e-4
    with pytest.raises(FileNotFoundError):
        load_audio(tmp_path / "missing.wav")
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    with pytest.raises(ValueError, match="cannot decode"):
        load_audio(tmp_path / "junk.wav")


def test_to_mono_shapes():
    x = torch.randn(2, 50)
    torch.testing.assert_close(to_mono(x), x.mean(0, keepdim=True))
    torch.testing.assert_close(to_mono(x[None]), x.mean(0, keepdim=True))
    assert to_mono(x[0]).shape == (1, 50)
    with pytest.raises(ValueError, match="batch"):
        to_mono(torch.randn(2, 2, 50))


@pytest.mark.parametrize("wav,sr,match", [
    (torch.zeros(0), 16000, "empty"), (torch.zeros(1, 1000), 16000, "silent"),
    (torch.tensor([0.1, float("nan")] * 500), 16000, "NaN/Inf"), (torch.tensor([0.1, float("-inf")] * 500), 16000,
                                                                  "NaN/Inf"),
    (torch.randn(100), 16000, "too short"), (torch.randn(1000), 0, "positive"), (torch.randn(1000), -5, "positive"),
    (torch.randn(1000), float("nan"), "finite"), (torch.randn(1000), float("inf"), "finite"),
    (torch.randn(1000), None, "number")])
def test_validate_waveform(wav, sr, match):
    with pytest.raises(ValueError, match=match):
        validate_waveform(wav, sr, "clip", min_seconds=0.025)


def test_validate_accepts_good_audio():
    validate_waveform(torch.randn(1, 400), 16000, "clip", min_seconds=0.025)


# --- prompts against the kit -------------------------------------------------------------------

def test_speaker_prompt_reproduces_kit(kit):
    inputs, expected = kit
    wav, sr = load_audio(PUBLIC_KIT / "inputs" / "spk_prompt_22k.wav")
    a22, a16 = prepare_speaker_prompt(wav, sr)
    assert torch.equal(a22, inputs["spk_wav_22k"])
    torch.testing.assert_close(a16, expected["spk_wav_16k"], rtol=0, atol=1e-5)


def test_emotion_prompt_reproduces_kit(kit):
    inputs, expected = kit
    wav, sr = load_audio(PUBLIC_KIT / "inputs" / "emo_prompt_16k.wav")
    assert torch.equal(prepare_emotion_prompt(wav, sr), inputs["emo_wav_16k"])
    wav, sr = load_audio(PUBLIC_KIT / "inputs" / "spk_prompt_22k.wav")
    emo16 = prepare_emotion_prompt(wav, sr)
    torch.testing.assert_close(emo16, expected["spk_wav_16k_librosa"], rtol=0, atol=1e-4)
    # Q6: the same file through the two chains gives slightly different 16 kHz signals
    diff = (emo16 - expected["spk_wav_16k"]).abs().max().item()
    assert 0 < diff < 0.05


# --- prompts: any rate / channels, cut, errors --------------------------------------------------

def test_speaker_prompt_any_rate_and_channels():
    stereo = _tone(0.5, 44100, channels=2)
    a22, a16 = prepare_speaker_prompt(stereo[None], 44100)  # ComfyUI [1, C, T]
    n = math.ceil(stereo.shape[-1] * 22050 / 44100)
    assert a22.shape == (1, n) and a16.shape == (1, math.ceil(n * 320 / 441))
    assert a22.dtype == torch.float32 and a16.dtype == torch.float32
    # mono mixing happens before resampling: same result as the averaged clip
    m22, _ = prepare_speaker_prompt(stereo.mean(0), 44100)
    torch.testing.assert_close(a22, m22, rtol=0, atol=1e-6)
    torch.testing.assert_close(a16, resample(a22, 22050, 16000), rtol=0, atol=0)
    # downstream features accept what the prompt functions return
    mel = mel_spectrogram(a22, MelConfig(sr=22050, n_fft=1024, win_length=1024, hop_length=256, n_mels=80,
                                         fmin=0.0, fmax=None))
    assert mel.shape == (1, 80, n // 256)
    assert kaldi_fbank(a16).shape[1] == 80


def test_emotion_prompt_any_rate():
    x = _tone(0.3, 48000, channels=3, seed=1).double()
    out = prepare_emotion_prompt(x, 48000)
    assert out.shape == (1, math.ceil(x.shape[-1] / 3)) and out.dtype == torch.float32


def test_prompts_cut_to_15_seconds(caplog):
    long = _tone(15.2, 16000)
    with caplog.at_level(logging.INFO, logger="indextts2_core.audio"):
        a22, a16 = prepare_speaker_prompt(long, 16000)
        e16 = prepare_emotion_prompt(long, 16000)
    assert a22.shape == (1, 15 * 22050) and a16.shape == (1, 15 * 16000) and e16.shape == (1, 15 * 16000)
    cuts = [r.getMessage() for r in caplog.records if "first 15 s" in r.getMessage()]
    assert any("speaker prompt" in m for m in cuts) and any("emotion prompt" in m for m in cuts)


def test_shortest_prompt_still_gives_features():
    short = _tone(0.035, 16000)
    a22, a16 = prepare_speaker_prompt(short, 16000)
    feats, mask = w2v_bert_features(a16)
    assert torch.isfinite(feats).all() and mask.sum() >= 1
    assert torch.isfinite(w2v_bert_features(prepare_emotion_prompt(short, 16000))[0]).all()
    with pytest.raises(ValueError, match="too short"):
        prepare_speaker_prompt(_tone(0.03, 16000), 16000)
    with pytest.raises(ValueError, match="too short"):
        prepare_emotion_prompt(_tone(0.03, 16000), 16000)


@pytest.mark.parametrize("fn", [lambda w, sr: prepare_speaker_prompt(w, sr), prepare_emotion_prompt])
@pytest.mark.parametrize("wav,sr,match", [
    (torch.zeros(1, 0), 16000, "empty"), (torch.zeros(1, 8000), 16000, "silent"),
    (torch.tensor([[0.2, -0.2] * 4000]).repeat(2, 1) * torch.tensor([[1.0], [-1.0]]), 16000, "silent"),  # L = -R
    (torch.full((1, 8000), float("nan")), 16000, "NaN/Inf"), (torch.randn(1, 8000), 0, "positive"),
    (torch.randn(1, 8000), float("nan"), "finite"), (torch.randn(2, 1, 8000), 16000, "batch"),
    (np.zeros(8000, dtype=np.float32), 16000, "torch.Tensor")])
def test_prompt_bad_input(fn, wav, sr, match):
    with pytest.raises(ValueError, match=match):
        fn(wav, sr)


def test_prompt_bad_max_seconds():
    with pytest.raises(ValueError, match="max_seconds"):
        prepare_speaker_prompt(_tone(0.1, 16000), 16000, max_seconds=0)
