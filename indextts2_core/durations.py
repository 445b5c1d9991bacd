"""Time units of the pipeline and the one rounding rule used to convert between them.

* semantic codes (GPT tokens): 50 per second (w2v-BERT frame rate: 16 kHz / hop 320);
* mel frames: 22050 / 256 ≈ 86.13 per second (S2M and BigVGAN);
* samples: 22050 per second; one mel frame is exactly 256 samples.

Rounding rule: a duration in seconds becomes a count with `round()` (nearest, ties to even) —
except where the official pipeline truncates, which is reproduced by `frames_for_codes`
(`floor(1.72 · T)`, spec §6.1 / quirk Q25). Counts always convert exactly to samples.
"""

from __future__ import annotations

import math

SAMPLE_RATE = 22050  # output / S2M / BigVGAN rate
HOP_LENGTH = 256  # samples per mel frame
SEMANTIC_RATE = 16000  # w2v-BERT input rate
SEMANTIC_HOP = 320  # 16 kHz samples per semantic code (2 × 160-sample fbank hop)
CODES_PER_SECOND = SEMANTIC_RATE // SEMANTIC_HOP  # 50
FRAMES_PER_CODE = 1.72  # official factor: (22050/256)/50 = 1.7227 truncated to two decimals


def _check_seconds(seconds: float) -> float:
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"duration must be a positive number of seconds, got {seconds!r}")
    return float(seconds)


def _check_count(n: int, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ValueError(f"{what} must be a positive integer, got {n!r}")
    return n


def frames_for_codes(num_codes: int) -> int:
    """Mel frames the official pipeline makes from `num_codes` semantic codes: floor(1.72·T)."""
    _check_count(num_codes, "number of codes")
    return int(num_codes * FRAMES_PER_CODE)  # float32 .long() upstream; identical for T < 2**20


def seconds_to_frames(seconds: float) -> int:
    return max(1, round(_check_seconds(seconds) * SAMPLE_RATE / HOP_LENGTH))


def frames_to_samples(frames: int) -> int:
    return _check_count(frames, "number of mel frames") * HOP_LENGTH


def seconds_to_samples(seconds: float) -> int:
    return round(_check_seconds(seconds) * SAMPLE_RATE)


def seconds_to_codes(seconds: float) -> int:
    """Semantic codes (GPT tokens) for a target duration of speech."""
    return max(1, round(_check_seconds(seconds) * CODES_PER_SECOND))


def codes_to_seconds(num_codes: int) -> float:
    return _check_count(num_codes, "number of codes") / CODES_PER_SECOND
