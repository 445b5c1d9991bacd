"""S2M mel, Kaldi fbank (CAMPPlus) and w2v-BERT input features: kit parity, independent
references from transformers' audio utilities, frame-count formulas, batching, errors."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from conftest import PUBLIC_KIT, need
from indextts2_core.audio import (W2VFeatureConfig, campplus_features, fbank_frames, kaldi_fbank, mel_frames,
                                  mel_spectrogram, slaney_mel_filters, w2v_bert_features)
from indextts2_core.audio.fbank import kaldi_mel_banks
from indextts2_core.audio.mel import effective_fmax
from indextts2_core.config import IndexTTS2Config, MelConfig

MEL = MelConfig(sr=22050, n_fft=1024, win_length=1024, hop_length=256, n_mels=80, fmin=0.0, fmax=None)
TINY_MEL = MelConfig(sr=8000, n_fft=256, win_length=200, hop_length=64, n_mels=20, fmin=0.0, fmax=None)


def _noise(*shape, seed=0):
    return 0.3 * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def kit():
    expected = load_file(str(need(PUBLIC_KIT / "expected" / "a_audio.safetensors")))
    inputs = load_file(str(PUBLIC_KIT / "inputs" / "inputs.safetensors"))
    stages = json.loads((PUBLIC_KIT / "stages.json").read_text())["stages"]
    tol = {o["name"]: o["tolerance"] for s in stages if s["id"] == "audio" for o in s["outputs"]}
    return inputs, expected, tol


def _check(kit, name, out):
    _, expected, tol = kit
    ref = expected[name]
    assert out.shape == ref.shape and out.dtype == ref.dtype, (out.shape, out.dtype)
    if tol[name].get("exact"):
        assert torch.equal(out, ref)
        return
    err = (out.double() - ref.double()).abs().max().item()
    assert err <= tol[name]["max_abs"] or err / ref.abs().max().item() <= tol[name]["max_rel"], f"{name}: {err}"


# --- mel ----------------------------------------------------------------------------------------

def test_mel_matches_kit(kit):
    cfg = IndexTTS2Config.from_yaml(PUBLIC_KIT / "config.yaml").s2mel.mel
    _check(kit, "ref_mel", mel_spectrogram(kit[0]["spk_wav_22k"], cfg))


@pytest.mark.parametrize("sr,n_fft,n_mels,fmax", [(22050, 1024, 80, None), (24000, 1024, 100, None),
                                                   (16000, 512, 40, 8000.0)])
def test_slaney_filters_match_transformers(sr, n_fft, n_mels, fmax):
    audio_utils = pytest.importorskip("transformers.audio_utils")
    ref = audio_utils.mel_filter_bank(n_fft // 2 + 1, n_mels, 0.0, fmax or sr / 2, sr, norm="slaney",
                                      mel_scale="slaney")
    ours = slaney_mel_filters(sr, n_fft, n_mels, 0.0, fmax)
    assert ours.dtype == torch.float32 and ours.shape == (n_mels, n_fft // 2 + 1)
    torch.testing.assert_close(ours.double(), torch.from_numpy(ref).T, rtol=0, atol=1e-8)


def test_fmax_quirk():
    assert effective_fmax(MEL) is None
    assert effective_fmax(MelConfig(**{**MEL.__dict__, "fmax": 7600.0})) == 8000.0


@pytest.mark.parametrize("n", [385, 1000, 22050])
def test_mel_frame_count(n):
    out = mel_spectrogram(_noise(n), MEL)
    frames = 1 + (n + 768 - 1024) // 256
    assert out.shape == (1, 80, frames) and mel_frames(n, MEL) == frames
    if n >= 256:
        assert frames == n // 256


def test_mel_batched_equals_single():
    x = _noise(3, 3000, seed=1)
    out = mel_spectrogram(x, TINY_MEL)
    assert out.shape == (3, 20, mel_frames(3000, TINY_MEL))
    for i in range(3):
        torch.testing.assert_close(out[i], mel_spectrogram(x[i], TINY_MEL)[0], rtol=1e-6, atol=1e-5)


def test_mel_of_a_tone_peaks_at_its_band():
    t = torch.arange(8000) / 8000
    out = mel_spectrogram(0.5 * torch.sin(2 * math.pi * 1000 * t), TINY_MEL)[0]
    filters = slaney_mel_filters(8000, 256, 20)
    assert out.mean(dim=1).argmax() == filters[:, 1000 * 256 // 8000].argmax()


@pytest.mark.parametrize("x,match", [(torch.zeros(0), "empty"), (torch.zeros(2000), "silent"),
                                     (torch.full((2000,), float("inf")), "NaN/Inf"),
                                     (_noise(384), "too short"), (_noise(1, 1, 2000), "expected")])
def test_mel_bad_input(x, match):
    with pytest.raises(ValueError, match=match):
        mel_spectrogram(x, MEL)


# --- Kaldi fbank (CAMPPlus) ---------------------------------------------------------------------

def test_fbank_matches_kit(kit):
    _, expected, _ = kit
    wav16 = expected["spk_wav_16k"]
    _check(kit, "campplus_fbank_raw", kaldi_fbank(wav16))
    _check(kit, "campplus_fbank", campplus_features(wav16))


def test_kaldi_banks_match_transformers():
    audio_utils = pytest.importorskip("transformers.audio_utils")
    ref = audio_utils.mel_filter_bank(257, 80, 20, 8000, 16000, norm=None, mel_scale="kaldi",
                                      triangularize_in_mel_space=True)
    torch.testing.assert_close(kaldi_mel_banks(80, 512, 16000, dtype=torch.float64), torch.from_numpy(ref).T,
                               rtol=0, atol=1e-10)


@pytest.mark.parametrize("m", [400, 559, 560, 16000])
def test_fbank_frame_count_and_cmn(m):
    frames = 1 + (m - 400) // 160
    assert kaldi_fbank(_noise(1, m)).shape == (frames, 80) and fbank_frames(m) == frames
    feats = campplus_features(_noise(m))
    assert feats.shape == (frames, 80)
    assert feats.mean(dim=0).abs().max() < 1e-5


def test_fbank_keeps_unscaled_waveform():
    # Q21: no x32768 here, so scaling the input only shifts every log energy by ln(scale^2)
    x = _noise(4000, seed=3)
    diff = kaldi_fbank(x * 4) - kaldi_fbank(x)
    torch.testing.assert_close(diff, torch.full_like(diff, math.log(16.0)), rtol=0, atol=1e-4)


@pytest.mark.parametrize("x,match", [(_noise(399), "too short"), (torch.zeros(0), "empty"),
                                     (torch.zeros(1000), "silent"), (_noise(2, 1000), "mono"),
                                     (torch.tensor([float("nan")] * 500), "NaN/Inf")])
def test_fbank_bad_input(x, match):
    with pytest.raises(ValueError, match=match):
        kaldi_fbank(x)


# --- w2v-BERT features --------------------------------------------------------------------------

def test_w2v_features_match_kit(kit):
    inputs, expected, _ = kit
    cfg = W2VFeatureConfig.from_json(PUBLIC_KIT / "checkpoints/hf_cache/w2v-bert-2.0/preprocessor_config.json")
    spk, emo = expected["spk_wav_16k"], inputs["emo_wav_16k"]
    for prefix, audio in (("w2v", spk), ("emo_w2v", emo), ("w2v_batch", [spk[0], emo[0]])):
        feats, mask = w2v_bert_features(audio, cfg)
        _check(kit, f"{prefix}_input_features", feats)
        _check(kit, f"{prefix}_attention_mask", mask)


def test_w2v_matches_transformers_extractor():
    transformers = pytest.importorskip("transformers")
    extractor = transformers.SeamlessM4TFeatureExtractor(feature_size=80, num_mel_bins=80, sampling_rate=16000,
                                                          padding_value=1.0, stride=2)
    clips = [_noise(4000, seed=4), _noise(5630, seed=5), _noise(2500, seed=6)]  # 24, 33 (odd), 14 frames
    ref = extractor([c.numpy() for c in clips], sampling_rate=16000, padding=True, pad_to_multiple_of=2,
                    return_attention_mask=True, return_tensors="pt")
    feats, mask = w2v_bert_features(clips)
    torch.testing.assert_close(feats, ref["input_features"].float(), rtol=0, atol=5e-5)
    assert torch.equal(mask, ref["attention_mask"].to(torch.int32))


def test_w2v_odd_frame_padding_and_batch_rows():
    a, b = _noise(5630, seed=7), _noise(3000, seed=8)  # 33 and 17 frames
    fa, ma = w2v_bert_features(a)
    assert fbank_frames(5630) == 33 and fa.shape == (1, 17, 160) and ma.dtype == torch.int32
    assert ma[0, :16].all() and ma[0, 16] == 0  # half-real last row is masked (Q8)...
    assert torch.all(fa[0, 16, 80:] == 1.0) and not torch.all(fa[0, 16, :80] == 1.0)  # ...but kept
    # stacked row i = frames 2i and 2i+1, each normalised per bin over the clip
    first = fa[0].reshape(34, 80)[:33]
    torch.testing.assert_close(first.mean(0), torch.zeros(80), rtol=0, atol=1e-5)
    fb_, _ = w2v_bert_features(b)
    both, mask = w2v_bert_features([a, b])
    assert both.shape == (2, 17, 160) and mask.sum(1).tolist() == [16, 8]
    torch.testing.assert_close(both[0], fa[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(both[1, :9], fb_[0], rtol=0, atol=1e-6)
    assert torch.all(both[1, 9:] == 1.0)
    assert torch.equal(w2v_bert_features(torch.stack([a[:3000], b]))[0][1], fb_[0])


def test_w2v_config_from_json(tmp_path):
    cfg = W2VFeatureConfig.from_json(need(PUBLIC_KIT / "checkpoints/hf_cache/w2v-bert-2.0/preprocessor_config.json"))
    assert cfg == W2VFeatureConfig(sampling_rate=16000, num_mel_bins=80, stride=2, padding_value=1.0)
    bad = tmp_path / "p.json"
    bad.write_text(json.dumps({"feature_extractor_type": "WhisperFeatureExtractor"}))
    with pytest.raises(ValueError, match="unsupported"):
        W2VFeatureConfig.from_json(bad)


@pytest.mark.parametrize("audio,match", [([], "no clips"), (_noise(559), "too short"),
                                         ([_noise(1000), torch.zeros(1000)], "clip 1.*silent"),
                                         (_noise(1, 1, 1000), "expected")])
def test_w2v_bad_input(audio, match):
    with pytest.raises(ValueError, match=match):
        w2v_bert_features(audio)
