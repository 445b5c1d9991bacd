"""22.05 kHz log-mel spectrogram of S2M (prompt mel `ref_mel`; BigVGAN v2's training features).

reflect pad (n_fft - hop) / 2 both sides -> STFT (periodic Hann, center False) ->
sqrt(re^2 + im^2 + 1e-9) -> Slaney mel filters (librosa.filters.mel defaults, own code) ->
ln(clamp(x, 1e-5)).

Shapes: B batch, N samples, K = n_fft // 2 + 1 frequency bins, M mel bands,
F = 1 + (N + 2 * pad - n_fft) // hop frames.
"""

from __future__ import annotations

import math

import torch

from ..config import MelConfig
from .io import check_signal

# Slaney ("auditory toolbox") mel scale: linear below 1 kHz, logarithmic above.
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def _hz_to_mel(f: float) -> float:
    if f >= _MIN_LOG_HZ:
        return _MIN_LOG_MEL + math.log(f / _MIN_LOG_HZ) / _LOGSTEP
    return f / _F_SP


def _mel_to_hz(m: torch.Tensor) -> torch.Tensor:
    hz = _F_SP * m
    return torch.where(m >= _MIN_LOG_MEL, _MIN_LOG_HZ * torch.exp(_LOGSTEP * (m - _MIN_LOG_MEL)), hz)


def effective_fmax(cfg: MelConfig) -> float | None:
    """The official loader turns `fmax: "None"` into None (= sr / 2) and any other value into 8000
    (spec §2.5); reproduced so a config behaves as it does upstream."""
    return None if cfg.fmax is None else 8000.0


def slaney_mel_filters(sr: float, n_fft: int, n_mels: int, fmin: float = 0.0,
                       fmax: float | None = None) -> torch.Tensor:
    """[M, K] float32 triangular filters on the Slaney mel scale with Slaney area normalisation
    (= librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax))."""
    fmax = sr / 2 if fmax is None else fmax
    if not 0 <= fmin < fmax:
        raise ValueError(f"mel filters need 0 <= fmin < fmax, got fmin={fmin}, fmax={fmax}")
    if n_mels <= 0 or n_fft <= 0:
        raise ValueError(f"mel filters need positive n_mels and n_fft, got {n_mels}, {n_fft}")
    f64 = torch.float64
    fft_freqs = torch.arange(n_fft // 2 + 1, dtype=f64) * (1.0 / (n_fft * (1.0 / sr)))
    lo, hi = _hz_to_mel(fmin), _hz_to_mel(fmax)
    # numpy.linspace: start + k * step, last point exactly `hi`
    mels = lo + torch.arange(n_mels + 2, dtype=f64) * ((hi - lo) / (n_mels + 1))
    mels[-1] = hi
    edges = _mel_to_hz(mels)
    fdiff = edges[1:] - edges[:-1]
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    # librosa stores each triangle in a float32 array, then scales it by the float64 area norm
    weights = torch.clamp(torch.minimum(lower, upper), min=0).to(torch.float32)
    enorm = 2.0 / (edges[2:] - edges[:-2])
    return (weights.to(f64) * enorm[:, None]).to(torch.float32)


def mel_frames(n_samples: int, cfg: MelConfig) -> int:
    """Frame count F for N samples."""
    pad = (cfg.n_fft - cfg.hop_length) // 2
    return 1 + (n_samples + 2 * pad - cfg.n_fft) // cfg.hop_length


def mel_spectrogram(audio: torch.Tensor, cfg: MelConfig) -> torch.Tensor:
    """[B, N] (or [N]) at cfg.sr -> log-mel [B, M, F] (float, on audio's device)."""
    if not isinstance(audio, torch.Tensor) or audio.dim() not in (1, 2):
        raise ValueError(f"mel_spectrogram: expected a [B, N] or [N] tensor, got "
                         f"{tuple(audio.shape) if isinstance(audio, torch.Tensor) else type(audio).__name__}")
    x = audio.unsqueeze(0) if audio.dim() == 1 else audio
    pad = (cfg.n_fft - cfg.hop_length) // 2
    # reflect padding needs N > pad; the STFT needs N + 2 pad >= n_fft
    check_signal(x, "mel_spectrogram input", min_samples=max(pad + 1, cfg.n_fft - 2 * pad))
    basis = slaney_mel_filters(cfg.sr, cfg.n_fft, cfg.n_mels, cfg.fmin, effective_fmax(cfg))
    basis = basis.to(x.device, x.dtype)
    window = torch.hann_window(cfg.win_length, device=x.device, dtype=x.dtype)
    x = torch.nn.functional.pad(x.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    spec = torch.stft(x, cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length, window=window,
                      center=False, normalized=False, onesided=True, return_complex=True)
    mag = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-9)  # [B, K, F]
    mel = torch.matmul(basis, mag)
    return torch.log(torch.clamp(mel, min=1e-5))
