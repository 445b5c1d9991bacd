"""Resamplers of the official prompt chain.

`resample`: band-limited Hann-windowed sinc interpolation, numerically the same as
torchaudio's `transforms.Resample` defaults (lowpass_filter_width 6, rolloff 0.99; kernel built
in float64, stored as float32). Pure torch, any device, any leading batch dims.
`resample_hq`: what `librosa.load(path, sr=...)` does with its default `res_type="soxr_hq"`
(libsoxr HQ through python-soxr on the CPU, then length fixed to ceil(T * new / orig)).

Shapes: T input samples, T' = ceil(T * new_sr / orig_sr) output samples, R rows (flattened
leading dims). The reduced rates are o = orig_sr / g and n = new_sr / g with g = gcd.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .io import check_sample_rate, check_signal


def _int_rate(sample_rate, what: str) -> int:
    sr = check_sample_rate(sample_rate, what)
    if sr != int(sr):
        raise ValueError(f"{what}: the sinc resampler needs an integer sample rate, got {sample_rate!r}")
    return int(sr)


def sinc_kernel(orig_sr: int, new_sr: int, lowpass_filter_width: int = 6, rolloff: float = 0.99,
                device: torch.device | str | None = None) -> tuple[torch.Tensor, int]:
    """Polyphase filter bank -> (kernel float64 [n, 1, 2*width + o], width)."""
    if lowpass_filter_width <= 0:
        raise ValueError(f"lowpass_filter_width must be positive, got {lowpass_filter_width}")
    if not 0 < rolloff <= 1:
        raise ValueError(f"rolloff must be in (0, 1], got {rolloff}")
    g = math.gcd(orig_sr, new_sr)
    orig, new = orig_sr // g, new_sr // g
    base_freq = min(orig, new) * rolloff  # cutoff just below the lower Nyquist
    width = math.ceil(lowpass_filter_width * orig / base_freq)
    idx = torch.arange(-width, width + orig, dtype=torch.float64, device=device)[None, None] / orig
    # torchaudio divides the output phase in float32 (integer arange / int) before adding the
    # float64 input positions; mirrored so the kernel matches it bit for bit.
    phase = torch.arange(0, -new, -1, dtype=torch.float32, device=device) / new
    t = (phase.to(torch.float64)[:, None, None] + idx) * base_freq
    t = t.clamp(-lowpass_filter_width, lowpass_filter_width)
    window = torch.cos(t * math.pi / lowpass_filter_width / 2) ** 2
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones((), dtype=t.dtype, device=device), torch.sin(t) / t)
    return sinc * window * (base_freq / orig), width


def resample(wav: torch.Tensor, orig_sr: int, new_sr: int, lowpass_filter_width: int = 6,
             rolloff: float = 0.99) -> torch.Tensor:
    """[..., T] -> [..., T'] (torchaudio `Resample(orig_sr, new_sr)` equivalent)."""
    orig_sr, new_sr = _int_rate(orig_sr, "resample orig_sr"), _int_rate(new_sr, "resample new_sr")
    check_signal(wav, "resample input", allow_silence=True)
    if orig_sr == new_sr:
        return wav
    kernel, width = sinc_kernel(orig_sr, new_sr, lowpass_filter_width, rolloff, device=wav.device)
    # Official kernel is cached as float32; cast once more for half/bf16/float64 inputs.
    kernel = kernel.to(torch.float32).to(wav.dtype)
    g = math.gcd(orig_sr, new_sr)
    orig, new = orig_sr // g, new_sr // g
    shape, length = wav.shape, wav.shape[-1]
    x = wav.reshape(-1, length)
    x = F.pad(x, (width, width + orig))
    y = F.conv1d(x[:, None], kernel, stride=orig)  # [R, n, blocks]: phase j of block b -> sample b*n + j
    y = y.transpose(1, 2).reshape(x.shape[0], -1)
    target = -(-new * length // orig)
    return y[:, :target].reshape(*shape[:-1], target)


def resample_hq(wav: torch.Tensor, orig_sr, new_sr) -> torch.Tensor:
    """[..., T] -> [..., T'] like librosa.resample(res_type="soxr_hq"); runs on the CPU in float32
    (librosa loads float32) and returns on the input's device and dtype."""
    import soxr

    orig = check_sample_rate(orig_sr, "resample_hq orig_sr")
    new = check_sample_rate(new_sr, "resample_hq new_sr")
    check_signal(wav, "resample_hq input", allow_silence=True)
    if orig == new:
        return wav
    shape, length = wav.shape, wav.shape[-1]
    rows = wav.detach().reshape(-1, length).to("cpu", torch.float32).numpy()
    # soxr treats the columns of a [T, R] array as independent channels.
    out = soxr.resample(np.ascontiguousarray(rows.T), orig, new, quality="HQ")
    out = out.reshape(out.shape[0], rows.shape[0]).T  # soxr may return 0 samples for a tiny input
    # librosa's fix_length: zero-pad or trim to ceil(T * ratio), ratio as a float.
    target = int(np.ceil(length * (float(new) / orig)))
    if out.shape[1] >= target:
        out = out[:, :target]
    else:
        out = np.pad(out, ((0, 0), (0, target - out.shape[1])))
    y = torch.from_numpy(np.ascontiguousarray(out))
    return y.reshape(*shape[:-1], target).to(wav.device, wav.dtype)
