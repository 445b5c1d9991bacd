"""Resamplers: kit parity, an independent float64 evaluation of the windowed-sinc formula, and
properties (length, sine through, alias rejection, batching, errors)."""

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import PUBLIC_KIT, need
from indextts2_core.audio import load_audio, resample, resample_hq, to_mono


def _kit_tensor(rel, name):
    return load_file(str(need(PUBLIC_KIT / rel)))[name]


def _tolerance(name):
    stages = json.loads(need(PUBLIC_KIT / "stages.json").read_text())["stages"]
    out = next(o for s in stages if s["id"] == "audio" for o in s["outputs"] if o["name"] == name)
    return out["tolerance"]


def _assert_within(out, ref, name):
    tol = _tolerance(name)
    assert out.shape == ref.shape
    err = (out.double() - ref.double()).abs().max().item()
    assert err <= tol["max_abs"] or err / ref.abs().max().item() <= tol["max_rel"], f"{name}: {err}"


def _naive_sinc(x, orig_sr, new_sr, width=6, rolloff=0.99):
    """y[m] = sum_k x[k] h(k / o - m / n) evaluated directly in float64 with reduced rates o, n.
    Output m = b * n + j: torchaudio computes the phase j / n in float32 (reproduced here); the
    block offset b and k / o are exact."""
    g = math.gcd(orig_sr, new_sr)
    o, n = orig_sr // g, new_sr // g
    base = min(o, n) * rolloff
    m = np.arange(-(-len(x) * n // o))[:, None]
    phase = (np.float32(1.0) * (m % n)).astype(np.float32) / np.float32(n)
    t = base * ((np.arange(len(x))[None, :] - (m // n) * o) / o - phase.astype(np.float64))
    t = np.clip(t, -width, width)
    h = np.sinc(t) * np.cos(t * np.pi / width / 2) ** 2 * base / o
    return h @ x


def test_sinc_matches_kit():
    x = _kit_tensor("inputs/inputs.safetensors", "spk_wav_22k")
    _assert_within(resample(x, 22050, 16000), _kit_tensor("expected/a_audio.safetensors", "spk_wav_16k"),
                   "spk_wav_16k")


def test_hq_matches_librosa_load_of_kit_file():
    wav, sr = load_audio(need(PUBLIC_KIT / "inputs" / "spk_prompt_22k.wav"))
    out = resample_hq(to_mono(wav), sr, 16000)
    _assert_within(out, _kit_tensor("expected/a_audio.safetensors", "spk_wav_16k_librosa"), "spk_wav_16k_librosa")


@pytest.mark.parametrize("orig,new", [(22050, 16000), (16000, 22050), (48000, 16000), (44100, 24000)])
def test_sinc_equals_direct_formula(orig, new):
    x = torch.randn(701, generator=torch.Generator().manual_seed(orig + new), dtype=torch.float64)
    out = resample(x.float(), orig, new).double().numpy()
    ref = _naive_sinc(x.numpy(), orig, new)
    assert out.shape == ref.shape
    assert np.abs(out - ref).max() < 1.5e-6


@pytest.mark.parametrize("fn", [resample, resample_hq])
@pytest.mark.parametrize("n", [1, 441, 1000, 22051])
@pytest.mark.parametrize("orig,new", [(22050, 16000), (16000, 22050), (44100, 16000)])
def test_output_length_is_ceil(fn, n, orig, new):
    x = torch.randn(n, generator=torch.Generator().manual_seed(n))
    assert fn(x, orig, new).shape == (math.ceil(n * new / orig),)


@pytest.mark.parametrize("fn", [resample, resample_hq])
@pytest.mark.parametrize("orig,new", [(22050, 16000), (16000, 22050)])
def test_sine_survives(fn, orig, new):
    f, n = 441.0, 8000
    x = torch.sin(2 * math.pi * f * torch.arange(n, dtype=torch.float64) / orig).float()
    y = fn(x, orig, new).double()
    ref = torch.sin(2 * math.pi * f * torch.arange(y.shape[-1], dtype=torch.float64) / new)
    inner = slice(200, y.shape[-1] - 200)  # away from the zero-padded edges
    assert (y[inner] - ref[inner]).abs().max() < 2e-3


def test_tone_above_new_nyquist_is_removed():
    x = torch.sin(2 * math.pi * 10000 * torch.arange(22050) / 22050)  # above the new 8 kHz Nyquist
    assert resample(x, 22050, 16000)[500:-500].abs().max() < 0.02
    assert resample_hq(x, 22050, 16000)[500:-500].abs().max() < 0.01


def test_same_rate_is_identity():
    x = torch.randn(2, 100)
    assert resample(x, 16000, 16000) is x
    assert resample_hq(x, 16000, 16000) is x


@pytest.mark.parametrize("fn", [resample, resample_hq])
def test_batched_equals_single(fn):
    x = torch.randn(2, 3, 1234, generator=torch.Generator().manual_seed(0))
    y = fn(x, 22050, 16000)
    assert y.shape == (2, 3, math.ceil(1234 * 16000 / 22050))
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(y[i, j], fn(x[i, j], 22050, 16000), rtol=0, atol=2e-6)


def test_dtype_and_device_follow_input():
    x = torch.randn(500, dtype=torch.float64)
    assert resample(x, 22050, 16000).dtype == torch.float64
    assert resample_hq(x, 22050, 16000).dtype == torch.float64


@pytest.mark.parametrize("fn", [resample, resample_hq])
@pytest.mark.parametrize("rate,match", [(0, "positive"), (-16000, "positive"), (float("nan"), "finite"),
                                        (float("inf"), "finite"), ("16000", "number"), (True, "number")])
def test_bad_rates(fn, rate, match):
    with pytest.raises(ValueError, match=match):
        fn(torch.randn(100), rate, 16000)
    with pytest.raises(ValueError, match=match):
        fn(torch.randn(100), 16000, rate)


def test_sinc_needs_integer_rates():
    with pytest.raises(ValueError, match="integer"):
        resample(torch.randn(100), 22050.5, 16000)


@pytest.mark.parametrize("fn", [resample, resample_hq])
def test_bad_signals(fn):
    with pytest.raises(ValueError, match="empty"):
        fn(torch.zeros(0), 22050, 16000)
    with pytest.raises(ValueError, match="NaN/Inf"):
        fn(torch.tensor([0.1, float("nan"), 0.2]), 22050, 16000)
    with pytest.raises(ValueError, match="floating point"):
        fn(torch.ones(10, dtype=torch.int16), 22050, 16000)
