"""Fitting a line to its slot and placing lines on one track: plain arithmetic over sample counts,
no models (engine.py runs the models around it).

A cue's audio is its speech segments with fixed silences between them: the pack's interval
silence between segments of one text piece, the script's pauses between pieces (and before or
after the speech). Fitting shares the slot's speech time among the segments in proportion to
their natural lengths, with one of three policies:

* `tokens`: the GPT makes exactly the number of codes that spans each segment's share (a second
  GPT run), S2M makes exactly its frames;
* `s2m`: the natural codes are kept, S2M stretches them to the share (the official 2.5
  `duration_factor` is this stretch);
* `auto` (default): codes within `token_range` of the natural rate, S2M for the rest; when the
  rounded code counts equal the natural ones the natural codes are reused.

`bounds` limit the overall speed change (slot speech / natural speech). A line outside them is
handled by `overflow`: `extend` keeps the bound (the line runs into the following silence, or
ends early), `squeeze` fits the slot anyway, `fail` stops with the cue's line number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Real
from typing import Sequence

from ..timing import Timing, split_total

POLICIES = ("auto", "tokens", "s2m")
# When the GPT ends a segment at once, its natural length is estimated from its text: about 0.08 s
# per text token (12.5 tokens/s, a moderate speaking rate for both tokenizers' subword units).
SECONDS_PER_TEXT_TOKEN = 0.08
OVERFLOW = ("extend", "squeeze", "fail")
OVERLAP = ("error", "overlay", "shift")


class FitError(ValueError):
    """A cue cannot be fitted or placed as asked; the message names the cue's line."""


@dataclass(frozen=True)
class FitSettings:
    policy: str = "auto"
    bounds: tuple[float, float] = (0.7, 1.4)  # slot speech / natural speech accepted
    token_range: tuple[float, float] = (0.85, 1.15)  # auto: the share of the change the GPT makes
    overflow: str = "extend"

    def __post_init__(self):
        if self.policy not in POLICIES:
            raise ValueError(f"fit policy must be one of {POLICIES}, got {self.policy!r}")
        if self.overflow not in OVERFLOW:
            raise ValueError(f"overflow must be one of {OVERFLOW}, got {self.overflow!r}")
        for name, (lo, hi) in (("bounds", self.bounds), ("token_range", self.token_range)):
            if not (isinstance(lo, Real) and isinstance(hi, Real) and 0.1 <= lo <= 1.0 <= hi <= 10.0):
                raise ValueError(f"{name} must satisfy 0.1 <= low <= 1 <= high <= 10, got ({lo}, {hi})")


@dataclass(frozen=True)
class CueFit:
    """How one cue is made: per segment, samples kept, target codes (None: reuse the natural
    codes) and S2M frames; the cue's whole length; the decision in words."""

    samples: tuple[int, ...]
    tokens: tuple[int | None, ...]
    frames: tuple[int, ...]
    length: int  # samples of the cue's audio, silences and pauses included
    ratio: float  # speech length / natural speech length
    decision: str
    warnings: tuple[str, ...] = ()


def natural_samples(codes: Sequence[int], timing: Timing) -> list[int]:
    """Samples of each segment at its natural length (the official S2M rule for its codes)."""
    return [timing.frames_to_samples(timing.frames_for_codes(max(1, t))) for t in codes]


def fit_cue(natural_codes: Sequence[int], fixed: int, slot: int | None, timing: Timing, settings: FitSettings,
            where: str, text_lengths: Sequence[int] | None = None) -> CueFit:
    """Sizes of one cue's segments. `natural_codes`: codes of each segment's natural run (0: the GPT
    ended it at once; its length is then estimated from `text_lengths`, its text tokens, and its
    codes are always generated to the planned length); `fixed`: samples of the cue's silences and
    pauses; `slot`: the cue's samples (None: natural length)."""
    silent = [c == 0 for c in natural_codes]
    warnings = []
    if any(silent):
        if text_lengths is None:
            raise ValueError("a segment without natural codes needs its text length for an estimate")
        natural_codes = [max(1, round(n * timing.codes_per_second * SECONDS_PER_TEXT_TOKEN)) if s else c
                         for c, n, s in zip(natural_codes, text_lengths, silent)]
        warnings.append(f"the GPT ended {sum(silent)} segment(s) at once; their length is estimated from the text")
    natural = natural_samples(natural_codes, timing)
    speech_natural = sum(natural)
    if slot is None:
        if any(silent):
            tokens = tuple(c if s else None for c, s in zip(natural_codes, silent))
            return CueFit(tuple(natural), tokens, tuple(timing.frames_for_samples(n) for n in natural),
                          fixed + speech_natural, 1.0, "natural length (estimated where the GPT said nothing)",
                          tuple(warnings))
        return CueFit(tuple(natural), (None,) * len(natural), tuple(timing.frames_for_samples(n) for n in natural),
                      fixed + speech_natural, 1.0, "natural length")
    budget = slot - fixed
    ratio = budget / speech_natural
    lo, hi = settings.bounds
    if not lo <= ratio <= hi:
        need = f"{ratio:.2f}× its natural speed" if budget > 0 else "less than no time"
        if settings.overflow == "fail":
            raise FitError(f"{where}: fitting it to its slot needs {need}, outside the bounds {lo}–{hi}; widen the "
                           "bounds, allow overflow (extend or squeeze), or edit the line")
        if settings.overflow == "extend" or budget < len(natural) * timing.hop_length:
            kept = min(max(ratio, lo), hi)
            if budget < len(natural) * timing.hop_length and settings.overflow == "squeeze":
                warnings.append("the slot has no room for the speech at all: extended to the lower bound")
            budget = max(round(speech_natural * kept), len(natural) * timing.hop_length)
            over = (fixed + budget - slot) / timing.sample_rate
            warnings.append(f"needs {need}; kept at {kept:.2f}× and runs {over:+.2f} s past its slot"
                            if over > 0 else f"needs {need}; kept at {kept:.2f}× and ends {-over:.2f} s early")
            ratio = budget / speech_natural
        else:
            warnings.append(f"squeezed to {ratio:.2f}×, beyond the bounds {lo}–{hi}")
    samples = split_total(budget, natural, minimum=timing.hop_length) if len(natural) > 1 else [budget]
    frames = tuple(timing.frames_for_samples(s) for s in samples)
    if settings.policy == "s2m":
        tokens = tuple(timing.codes_for_samples(n) if s else None for n, s in zip(samples, silent))
        decision = f"S2M stretch {ratio:.3f}×"
    elif settings.policy == "tokens":
        tokens = tuple(timing.codes_for_samples(s) for s in samples)
        decision = f"tokens {sum(tokens)} (natural {sum(natural_codes)})"
    else:
        t_lo, t_hi = settings.token_range
        rate = min(max(ratio, t_lo), t_hi)
        wanted = tuple(max(1, round(t * rate)) for t in natural_codes)
        if wanted == tuple(natural_codes) and not any(silent):
            tokens, decision = (None,) * len(samples), f"natural codes, S2M stretch {ratio:.3f}×"
        else:
            tokens = wanted
            decision = f"tokens {sum(wanted)} (natural {sum(natural_codes)}, {rate:.3f}×) + S2M {ratio / rate:.3f}×"
    return CueFit(tuple(samples), tokens, frames, fixed + budget, ratio, decision, tuple(warnings))


@dataclass
class Placement:
    start: int  # sample where the cue's audio starts on the track
    length: int
    moved: bool = False
    notes: list[str] = field(default_factory=list)


def place(wanted: Sequence[int | None], lengths: Sequence[int], wheres: Sequence[str], overlap: str,
          gap: int = 0) -> list[Placement]:
    """Start samples on the track. `wanted`: each cue's own start (None: right after the previous
    cue plus `gap`, a script line). Overlaps follow `overlap`: error, overlay (mixed) or shift (a
    cue starts when the previous one ends)."""
    if overlap not in OVERLAP:
        raise ValueError(f"overlap must be one of {OVERLAP}, got {overlap!r}")
    out: list[Placement] = []
    end = 0
    for i, (start, length) in enumerate(zip(wanted, lengths)):
        p = Placement(end + (gap if out else 0) if start is None else start, length)
        if out and p.start < end:
            if overlap == "error":
                raise FitError(f"{wheres[i]} starts {(end - p.start)} samples before {wheres[i - 1]} ends; set the "
                               "overlap policy to overlay or shift, or fix the times")
            if overlap == "shift":
                p.notes.append(f"moved {end - p.start} samples later (the previous line ran until then)")
                p.start, p.moved = end, True
            else:
                p.notes.append(f"overlaps the previous line by {end - p.start} samples (mixed)")
        out.append(p)
        end = max(end, p.start + length)
    return out
