"""Time units of the pipeline and the one rule that converts between them.

Units: seconds (what users give), samples at the output rate, mel frames (one per `hop_length`
samples), semantic codes (the GPT's tokens, `codes_per_second`), video frames (at a frame rate).
A `Timing` record is built from a model's config, so IndexTTS-2 (50 codes/s) and a model with
another code rate share every conversion.

The rule: a length in seconds becomes a count by rounding its **exact value** to the nearest
count, ties up, the value read as the decimal the user typed (0.17 s is 17/100 s, not the nearest
binary double; a computed 1/30 s is 735 samples, not 734). A count that must *cover* a length
(mel frames for samples, video frames for audio) rounds up. Counts convert exactly to samples.
The two counts the official pipeline defines keep its `int()`: the silence between segments,
int(rate · ms / 1000), and the S2M frames for codes, int(content frames · 1.72 · duration_factor)
in double precision. `web/js/timing.js` implements the same functions; a test compares the two
on random values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from numbers import Rational, Real
from typing import Sequence

MEL_PER_CONTENT_FRAME = 1.72  # official factor: (22050 / 256) / 50 = 1.7227, truncated to two decimals
FRAME_RULES = ("none", "4n+1", "8n+1")
ROUNDING = ("up", "nearest", "down")


def exact(value: Real, what: str = "value") -> Fraction:
    """`value` as an exact fraction: a float as the shortest decimal that reads back to it."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{what} must be a number, got {value!r}")
    if isinstance(value, Rational):
        return Fraction(value)
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return Fraction(repr(float(value)))


def nearest(value: Fraction) -> int:
    """The nearest integer, ties up."""
    return math.floor(value + Fraction(1, 2))


def _positive(value: Real, what: str) -> Fraction:
    v = exact(value, what)
    if v <= 0:
        raise ValueError(f"{what} must be positive, got {value!r}")
    return v


def _count(n: int, what: str, minimum: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}, got {n!r}")
    return n


@dataclass(frozen=True)
class Timing:
    """Rates of one model generation (from its config)."""

    sample_rate: int = 22050  # output, S2M and vocoder rate
    hop_length: int = 256  # samples per mel frame
    codes_per_second: int = 50  # semantic codes (GPT tokens) per second of speech
    content_per_code: int = 1  # S2M content frames per code (a codec may upsample its codes)

    def __post_init__(self):
        for name in ("sample_rate", "hop_length", "codes_per_second", "content_per_code"):
            _count(getattr(self, name), f"timing.{name}")

    # ---- lengths -> counts (nearest of the exact value) -----------------------------------------
    def samples(self, seconds: Real) -> int:
        """Samples in `seconds` (≥ 0)."""
        s = exact(seconds, "seconds")
        if s < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        return nearest(s * self.sample_rate)

    def silence_samples(self, ms: Real) -> int:
        """The official silence between segments: int(rate · ms / 1000) samples."""
        m = exact(ms, "silence (ms)")
        if m < 0:
            raise ValueError(f"silence must be >= 0 ms, got {ms!r}")
        return math.floor(m * self.sample_rate / 1000)

    def codes_for_samples(self, samples: int) -> int:
        """Semantic codes spanning `samples` (at least one)."""
        return max(1, nearest(Fraction(_count(samples, "samples") * self.codes_per_second, self.sample_rate)))

    def codes(self, seconds: Real) -> int:
        """Semantic codes for `seconds` of speech (at least one)."""
        return max(1, nearest(_positive(seconds, "seconds") * self.codes_per_second))

    # ---- counts that cover a length (ceiling) ---------------------------------------------------
    def frames_for_samples(self, samples: int) -> int:
        """Mel frames whose audio covers `samples` (the vocoded frames are then cut to it)."""
        return -(-_count(samples, "samples") // self.hop_length)

    # ---- counts -> lengths (exact) -------------------------------------------------------------
    def frames_to_samples(self, frames: int) -> int:
        return _count(frames, "mel frames", 0) * self.hop_length

    def seconds(self, samples: int) -> float:
        return _count(samples, "samples", 0) / self.sample_rate

    def code_seconds(self, codes: int) -> float:
        return _count(codes, "codes", 0) / self.codes_per_second

    # ---- the official S2M length ---------------------------------------------------------------
    def frames_for_codes(self, codes: int, duration_factor: float = 1.0) -> int:
        """Mel frames S2M makes from `codes` codes (IndexTTS-2: floor(1.72·T))."""
        return mel_frames_for_content(_count(codes, "codes") * self.content_per_code, duration_factor)

    # ---- video frames --------------------------------------------------------------------------
    def video_samples(self, frames: int, fps: Real) -> int:
        """Samples spanning `frames` video frames (never more than a muxer's ceil)."""
        return nearest(_count(frames, "frame count") * self.sample_rate / fps_fraction(fps))

    def video_frames(self, samples: int, fps: Real, rounding: str = "up") -> int:
        """Video frames for `samples` of audio: `up` covers the audio (default), `down` stays
        within it, `nearest` rounds (ties up)."""
        if rounding not in ROUNDING:
            raise ValueError(f"rounding must be one of {ROUNDING}, got {rounding!r}")
        value = _count(samples, "samples") * fps_fraction(fps) / self.sample_rate
        if rounding == "up":
            return math.ceil(value)
        return max(1, math.floor(value) if rounding == "down" else nearest(value))


def mel_frames_for_content(content_frames: int, duration_factor: float = 1.0) -> int:
    """The official S2M length: int(content frames · 1.72 · duration_factor), in double precision."""
    _count(content_frames, "content frames")
    if isinstance(duration_factor, bool) or not isinstance(duration_factor, Real) or \
            not math.isfinite(duration_factor) or duration_factor <= 0:
        raise ValueError(f"duration_factor must be a positive number, got {duration_factor!r}")
    frames = int(content_frames * MEL_PER_CONTENT_FRAME * duration_factor)
    if frames < 1:
        raise ValueError(f"duration_factor {duration_factor} leaves no mel frame for {content_frames} content frames")
    return frames


def fps_fraction(fps: Real) -> Fraction:
    """A frame rate as an exact fraction: 29.97 -> 2997/100, 24000/1001 as a float -> 24000/1001 (a
    container's Fraction as is)."""
    return _positive(fps, "fps").limit_denominator(1001000)


def video_seconds(frames: int, fps: Real) -> float:
    """Length of `frames` frames at `fps` (81 frames at 25 fps -> 3.24 s)."""
    return float(_count(frames, "frame count") / fps_fraction(fps))


def frame_rule(frames: int, rule: str = "none", rounding: str = "up") -> int:
    """Snap a frame count to a video model's rule, 4n+1 (Wan) or 8n+1 (LTX), n >= 0."""
    _count(frames, "frame count")
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


def split_total(total: int, weights: Sequence[float], minimum: int = 1) -> list[int]:
    """Split a positive integer over parts in proportion to `weights` (largest remainder), each part
    at least `minimum` (a part below it is topped up from the largest parts)."""
    _count(total, "total")
    _count(minimum, "minimum")
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
