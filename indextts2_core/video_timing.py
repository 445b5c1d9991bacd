"""Length bookkeeping between speech and video: seconds, samples, video frames, GPT tokens.

Everything is exact integer / rational arithmetic, so a length survives the round trip through
the graph at sample precision (a 3.0 s target is 66150 samples at 22.05 kHz, 81 frames at 25 fps
are 3.24 s). Frame rates are handled as fractions (29.97 → 2997/100, 23.976 → 2997/125), which is
what video containers store.

Shapes: waveform [B, C, T] (ComfyUI AUDIO) or [1, T] (pipeline); S samples of one segment.

Frame-count rules: video diffusion models want 4n+1 (Wan) or 8n+1 (LTX) frames; `frame_rule`
rounds a count to the nearest valid one in the requested direction.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Sequence

import torch

from . import durations

FRAME_RULES = ("none", "4n+1", "8n+1")
ROUNDING = ("up", "nearest", "down")


def as_fraction(fps: float | int | Fraction) -> Fraction:
    """Frame rate as an exact fraction (denominator ≤ 1001·1000, enough for NTSC rates)."""
    if isinstance(fps, bool) or not isinstance(fps, (int, float, Fraction)):
        raise ValueError(f"fps must be a number, got {fps!r}")
    if isinstance(fps, float) and not math.isfinite(fps):
        raise ValueError(f"fps must be finite, got {fps!r}")
    frac = Fraction(fps).limit_denominator(1001000)
    if frac <= 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    return frac


def _positive_int(n: int, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ValueError(f"{what} must be a positive integer, got {n!r}")
    return n


def video_seconds(frame_count: int, fps: float | Fraction) -> float:
    """Length of `frame_count` frames at `fps` (81 frames at 25 fps → 3.24 s)."""
    return float(Fraction(_positive_int(frame_count, "frame count")) / as_fraction(fps))


def video_samples(frame_count: int, fps: float | Fraction, sample_rate: int = durations.SAMPLE_RATE) -> int:
    """Audio samples spanning exactly `frame_count` frames, rounded to the nearest sample.

    ComfyUI's CreateVideo keeps ceil(sample_rate / fps · frames) samples; this count never
    exceeds that, so speech of this length is never cut by the video muxer.
    """
    exact = Fraction(_positive_int(frame_count, "frame count")) * _positive_int(sample_rate, "sample rate") / as_fraction(fps)
    return max(1, round(exact))


def seconds_to_samples(seconds: float, sample_rate: int = durations.SAMPLE_RATE) -> int:
    """3.0 s at 22050 Hz → 66150 samples (nearest sample, computed from the decimal value)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"duration must be a positive number of seconds, got {seconds!r}")
    exact = Fraction(str(float(seconds))) * _positive_int(sample_rate, "sample rate")
    return max(1, round(exact))


def tokens_for_seconds(seconds: float) -> int:
    """GPT (semantic) tokens for a target duration: the T2S `target tokens` value."""
    return durations.seconds_to_codes(seconds)


def frame_rule(frames: int, rule: str = "none", rounding: str = "up") -> int:
    """Snap a frame count to a model's rule: 4n+1 or 8n+1 (n ≥ 0), rounding up, down or to nearest."""
    _positive_int(frames, "frame count")
    if rule not in FRAME_RULES:
        raise ValueError(f"frame rule must be one of {FRAME_RULES}, got {rule!r}")
    if rounding not in ROUNDING:
        raise ValueError(f"rounding must be one of {ROUNDING}, got {rounding!r}")
    if rule == "none":
        return frames
    step = 4 if rule == "4n+1" else 8
    below = ((frames - 1) // step) * step + 1
    above = below if below == frames else below + step
    if rounding == "up":
        return above
    if rounding == "down":
        return below
    return below if frames - below < above - frames else above  # ties go up: never shorter than the audio


def audio_frame_count(num_samples: int, sample_rate: int, fps: float | Fraction, rule: str = "none",
                      rounding: str = "up") -> int:
    """Video frames covering `num_samples` of audio (ceil by default), snapped to `rule`."""
    exact = Fraction(_positive_int(num_samples, "number of samples")) * as_fraction(fps) / _positive_int(sample_rate, "sample rate")
    if rounding == "up":
        frames = math.ceil(exact)
    elif rounding == "down":
        frames = max(1, math.floor(exact))
    else:
        frames = max(1, round(exact))
    return frame_rule(frames, rule, rounding)


def fit_waveform(waveform: torch.Tensor, num_samples: int) -> torch.Tensor:
    """Pad with zeros or trim the last axis to exactly `num_samples` samples."""
    _positive_int(num_samples, "number of samples")
    if not isinstance(waveform, torch.Tensor) or waveform.ndim == 0 or waveform.shape[-1] == 0:
        raise ValueError("waveform must be a non-empty tensor with time as the last axis")
    length = waveform.shape[-1]
    if length >= num_samples:
        return waveform[..., :num_samples]
    pad = waveform.new_zeros(*waveform.shape[:-1], num_samples - length)
    return torch.cat([waveform, pad], dim=-1)


def split_total(total: int, weights: Sequence[float], minimum: int = 1) -> list[int]:
    """Split a positive integer over parts in proportion to `weights` (largest remainder), each part
    at least `minimum` (a part below it is topped up from the largest parts)."""
    _positive_int(total, "total")
    _positive_int(minimum, "minimum")
    if not weights or any((not math.isfinite(w)) or w <= 0 for w in weights):
        raise ValueError(f"weights must be positive and finite, got {list(weights)!r}")
    if total < minimum * len(weights):
        raise ValueError(f"cannot split {total} over {len(weights)} parts (each needs at least {minimum})")
    wsum = float(sum(weights))
    raw = [total * w / wsum for w in weights]
    parts = [math.floor(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (parts[i] - raw[i], i))  # largest remainder first
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    for i in range(len(parts)):  # total >= minimum · n, so the largest part always has some to give
        while parts[i] < minimum:
            j = max(range(len(parts)), key=lambda k: parts[k])
            take = min(minimum - parts[i], parts[j] - minimum)
            parts[i], parts[j] = parts[i] + take, parts[j] - take
    return parts


def silence_samples(ms: float, sample_rate: int = durations.SAMPLE_RATE) -> int:
    """Official interval silence: int(sample_rate · ms / 1000) zeros between segments."""
    if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not math.isfinite(ms) or ms < 0:
        raise ValueError(f"interval silence must be a non-negative number of milliseconds, got {ms!r}")
    return int(sample_rate * ms / 1000)
