"""Audio decoding, channel mixing and the input checks every front-end function shares.

Shapes: C channels, T samples, B batch (ComfyUI AUDIO is [B, C, T] float).
"""

from __future__ import annotations

import logging
import math
from numbers import Real
from pathlib import Path

import torch

log = logging.getLogger(__name__)

# Peak below this (-120 dBFS, under the LSB of 16/20-bit audio) counts as silence: such a prompt
# carries no speaker or emotion information and only produces log-floor features.
SILENCE_PEAK = 1e-6


def check_sample_rate(sample_rate, what: str = "audio") -> float:
    """A finite, positive sample rate (int or float) or ValueError."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, Real):
        raise ValueError(f"{what}: sample rate must be a number, got {sample_rate!r}")
    sr = float(sample_rate)
    if not math.isfinite(sr) or sr <= 0:
        raise ValueError(f"{what}: sample rate must be finite and positive, got {sample_rate!r}")
    return sr


def check_signal(x: torch.Tensor, what: str = "audio", min_samples: int = 1, allow_silence: bool = False) -> None:
    """ValueError naming the problem when `x [..., T]` is not a usable signal."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{what}: expected a torch.Tensor waveform, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{what}: waveform must be floating point in [-1, 1], got {x.dtype}")
    if x.dim() == 0 or x.numel() == 0 or x.shape[-1] == 0:
        raise ValueError(f"{what}: waveform is empty (shape {tuple(x.shape)})")
    bad = (~torch.isfinite(x)).sum().item()
    if bad:
        raise ValueError(f"{what}: waveform contains {bad} NaN/Inf sample(s)")
    if x.shape[-1] < min_samples:
        raise ValueError(f"{what}: too short, {x.shape[-1]} samples; at least {min_samples} are needed "
                         f"(one analysis window)")
    if not allow_silence and x.abs().amax().item() <= SILENCE_PEAK:
        raise ValueError(f"{what}: waveform is silent (all samples are zero or below {SILENCE_PEAK:g})")


def validate_waveform(waveform: torch.Tensor, sample_rate, what: str = "audio", min_seconds: float = 0.0) -> None:
    """Raise ValueError if `waveform [..., T]` is empty, non-finite, silent, shorter than
    `min_seconds`, or `sample_rate` is not a finite positive number."""
    sr = check_sample_rate(sample_rate, what)
    check_signal(waveform, what, min_samples=max(1, math.ceil(min_seconds * sr - 1e-9)))


def to_mono(waveform: torch.Tensor) -> torch.Tensor:
    """[T], [C, T] or [1, ..., C, T] -> [1, T] by averaging the channels (librosa's `mono=True`)."""
    if not isinstance(waveform, torch.Tensor):
        raise ValueError(f"expected a torch.Tensor waveform, got {type(waveform).__name__}")
    if waveform.dim() == 0:
        raise ValueError("waveform is a scalar; expected [T], [C, T] or [B, C, T]")
    if waveform.dim() == 1:
        return waveform.unsqueeze(0)
    lead = waveform.shape[:-2]
    if math.prod(lead) != 1:
        raise ValueError(f"expected one clip, got a batch of shape {tuple(waveform.shape)}; pass one item "
                         "([C, T] or [1, C, T])")
    chans = waveform.reshape(waveform.shape[-2], waveform.shape[-1])
    if chans.shape[0] == 0:
        raise ValueError(f"waveform has no channels (shape {tuple(waveform.shape)})")
    return chans.mean(dim=0, keepdim=True)


def load_audio(path: str | Path) -> tuple[torch.Tensor, int]:
    """Decode a file with soundfile -> (float32 [C, T] in [-1, 1], sample_rate)."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # libsndfile reports unreadable formats with its own error type
        raise ValueError(f"{path}: cannot decode audio ({e})") from e
    if data.shape[0] == 0:
        raise ValueError(f"{path}: audio file contains no samples")
    log.debug("loaded %s: %d channel(s), %d samples at %d Hz", path, data.shape[1], data.shape[0], sr)
    return torch.from_numpy(data.T.copy()), int(sr)


def fit_waveform(waveform: torch.Tensor, num_samples: int) -> torch.Tensor:
    """Pad with zeros or trim the last axis to exactly `num_samples` samples."""
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples <= 0:
        raise ValueError(f"number of samples must be a positive integer, got {num_samples!r}")
    if not isinstance(waveform, torch.Tensor) or waveform.ndim == 0 or waveform.shape[-1] == 0:
        raise ValueError("waveform must be a non-empty tensor with time as the last axis")
    length = waveform.shape[-1]
    if length >= num_samples:
        return waveform[..., :num_samples]
    pad = waveform.new_zeros(*waveform.shape[:-1], num_samples - length)
    return torch.cat([waveform, pad], dim=-1)
