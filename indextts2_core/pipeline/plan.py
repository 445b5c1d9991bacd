"""Text segments and their duration plan (spec §3.5, §3.7, §6.1): what each segment says, how many
codes, mel frames and samples it gets, and the silences between segments. The plan owns the
silences; every later stage reads them from it.

Durations mean the same everywhere (CLI, nodes, `synthesize`):
* `seconds`: the length of the whole output, silences included, exact to the sample; the speech
  (seconds minus the silences) is shared among the segments in proportion to their text tokens,
  each segment gets exactly its share (S2M length, then a final cut).
* `target_tokens`: semantic codes of the whole text (speech only), shared the same way; mel
  frames then follow the official rule (`Timing.frames_for_codes`) and the silences are added.

All conversions go through `Timing` (indextts2_core/timing.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from numbers import Real
from typing import Sequence

from ..text import TextFrontend25, TextTokenizer
from ..timing import Timing, split_total

DEFAULT_MAX_TEXT_TOKENS = 120  # per segment (spec §3.5)
DEFAULT_INTERVAL_SILENCE_MS = 200  # zeros between segments (spec §3.7)
MAX_INTERVAL_SILENCE_MS = 10_000  # a longer pause is a timeline's job, not a text's


@dataclass(frozen=True)
class TextSegment:
    """The ids of one synthesis segment, and its language row (IndexTTS-2.5; None for IndexTTS-2)."""

    ids: tuple[int, ...]
    lang: int | None = None


@dataclass(frozen=True)
class DurationPlan:
    """What each text segment says and how long it lasts (None: the model decides)."""

    text_ids: tuple[tuple[int, ...], ...]
    tokens: tuple[int | None, ...]  # GPT target codes per segment
    frames: tuple[int | None, ...]  # S2M mel frames per segment (None: the official rule for its codes)
    samples: tuple[int | None, ...]  # samples kept of each vocoded segment (None: all of them)
    silence_samples: int  # zeros between spoken segments
    timing: Timing
    total_samples: int | None = None  # exact output length, silences included (seconds mode)
    langs: tuple[int | None, ...] | None = None  # each segment's language row (IndexTTS-2.5)

    def __len__(self) -> int:
        return len(self.text_ids)

    def lang(self, i: int) -> int | None:
        return None if self.langs is None else self.langs[i]


def _speakable(piece: str) -> bool:
    return any(ch.isalnum() for ch in piece.replace("\u2581", ""))


def text_segments(tokenizer: TextTokenizer | TextFrontend25, text: str, max_tokens: int = DEFAULT_MAX_TEXT_TOKENS,
                  language: str | None = None, normalize: bool = True) -> list[TextSegment]:
    """Text → its synthesis segments (spec §3; 2.5 §3); ValueError for empty text or text with
    nothing to say. IndexTTS-2 text is normalised block by block, so memory stays bounded for any
    length. `language`: IndexTTS-2.5's (zh, en, ja, es, ar, or "auto" when None); IndexTTS-2 reads
    Chinese and English and takes none. `normalize=False` (IndexTTS-2.5's `text_normalization`) skips
    the number/unit normaliser; IndexTTS-2 always normalises."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}")
    if not text.strip():
        raise ValueError("text is empty")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens <= 0:
        raise ValueError(f"max_text_tokens_per_segment must be a positive integer, got {max_tokens!r}")
    if isinstance(tokenizer, TextFrontend25):
        segments = tokenizer.segments(text, language or "auto", max_tokens, normalize=normalize)
        if not any(any(ch.isalnum() for ch in seg.text) for seg in segments):
            raise ValueError(f"text has no speakable content: {text[:80]!r}")
        return [TextSegment(tuple(seg.ids), seg.lang_id) for seg in segments]
    if not normalize:
        raise ValueError("IndexTTS-2 always normalises its text (text_normalization is IndexTTS-2.5's)")
    if language not in (None, "auto"):
        raise ValueError(f"IndexTTS-2 has no language setting (got {language!r}); it reads Chinese and English. "
                         "Load IndexTTS-2.5 for other languages")
    out, speakable = [], False
    for pieces in tokenizer.iter_segment_pieces(text, max_tokens):
        if not pieces:
            continue
        ids = tokenizer.convert_tokens_to_ids(pieces)
        speakable |= any(_speakable(p) and i != tokenizer.unk_id for p, i in zip(pieces, ids))
        out.append(TextSegment(tuple(ids)))
    if not speakable:
        raise ValueError(f"text has no speakable content (only punctuation, symbols or characters the "
                         f"model does not know): {text[:80]!r}")
    return out


def silence_samples(timing: Timing, interval_silence_ms: Real) -> int:
    """Samples of the silence between segments, refused outside [0, MAX_INTERVAL_SILENCE_MS]."""
    if isinstance(interval_silence_ms, bool) or not isinstance(interval_silence_ms, Real) or \
            not 0 <= interval_silence_ms <= MAX_INTERVAL_SILENCE_MS:
        raise ValueError(f"interval silence must be between 0 and {MAX_INTERVAL_SILENCE_MS} ms, "
                         f"got {interval_silence_ms!r}")
    return timing.silence_samples(interval_silence_ms)


def plan_durations(segments: Sequence[TextSegment | Sequence[int]], timing: Timing, *, seconds: Real | None = None,
                   target_tokens: int | None = None,
                   interval_silence_ms: Real = DEFAULT_INTERVAL_SILENCE_MS,
                   max_codes: int | None = None) -> DurationPlan:
    """Text ids per segment + at most one target → the plan (module docstring: what targets mean).

    `max_codes`: the GPT's codes per segment at most (its mel position table); a target that would
    need more for a segment is refused here, before anything is allocated."""
    segments = [s if isinstance(s, TextSegment) else TextSegment(tuple(s)) for s in segments]
    text_ids = tuple(tuple(int(i) for i in s.ids) for s in segments)
    langs = tuple(s.lang for s in segments) if any(s.lang is not None for s in segments) else None
    n = len(text_ids)
    if n == 0 or not all(text_ids):
        raise ValueError("nothing to plan: every text segment needs at least one token")
    if seconds is not None and target_tokens is not None:
        raise ValueError("give either seconds or target_tokens, not both")
    gap = silence_samples(timing, interval_silence_ms)
    natural = (None,) * n
    weights = [len(s) for s in text_ids]
    if target_tokens is not None:
        if isinstance(target_tokens, bool) or not isinstance(target_tokens, int) or target_tokens <= 0:
            raise ValueError(f"target tokens must be a positive integer, got {target_tokens!r}")
        if target_tokens < n:
            raise ValueError(f"target tokens {target_tokens} are fewer than the {n} text segments "
                             "(each needs at least one token)")
        tokens = tuple(split_total(target_tokens, weights))
        _check_codes(tokens, max_codes, timing, f"{target_tokens} target tokens")
        return DurationPlan(text_ids, tokens, natural, natural, gap, timing, langs=langs)
    if seconds is None:
        return DurationPlan(text_ids, natural, natural, natural, gap, timing, langs=langs)
    total = timing.samples(seconds)
    speech = total - gap * (n - 1)
    if speech < n * timing.hop_length:  # each segment needs at least one mel frame
        shortest = (n * timing.hop_length + gap * (n - 1)) / timing.sample_rate
        raise ValueError(f"{seconds} s is too short for {n} text segment(s) with {interval_silence_ms} ms of "
                         f"silence between them (at least {shortest:.3f} s)")
    samples = split_total(speech, weights, minimum=timing.hop_length)
    tokens = tuple(timing.codes_for_samples(s) for s in samples)
    _check_codes(tokens, max_codes, timing, f"{seconds} s")
    return DurationPlan(text_ids, tokens, tuple(timing.frames_for_samples(s) for s in samples), tuple(samples),
                        gap, timing, total, langs)


def _check_codes(tokens: Sequence[int], max_codes: int | None, timing: Timing, what: str) -> None:
    if max_codes is not None and max(tokens) > max_codes:
        raise ValueError(f"{what} would give one text segment {max(tokens)} semantic tokens; this model makes at "
                         f"most {max_codes} per segment ({timing.code_seconds(max_codes):.1f} s of speech): "
                         "ask for less, or split the text into more segments (max text tokens per segment)")


def replan_s2m(plan: DurationPlan, seconds: Real | None = None, frames: int | None = None) -> DurationPlan:
    """The plan with an S2M-level length: `seconds` (whole output, the plan's silences included)
    or `frames` (mel frames of the whole text's speech), shared by text tokens. Codes are kept."""
    if seconds is not None and frames is not None:
        raise ValueError("give either seconds or frames, not both")
    if seconds is not None:
        timing, n, gap = plan.timing, len(plan), plan.silence_samples
        total = timing.samples(seconds)
        if total - gap * (n - 1) < n * timing.hop_length:
            raise ValueError(f"{seconds} s is too short for {n} text segment(s) and their silences")
        samples = split_total(total - gap * (n - 1), [len(s) for s in plan.text_ids], minimum=timing.hop_length)
        return dataclasses.replace(plan, frames=tuple(timing.frames_for_samples(s) for s in samples),
                                   samples=tuple(samples), total_samples=total)
    if frames is None:
        return plan
    if isinstance(frames, bool) or not isinstance(frames, int) or frames <= 0:
        raise ValueError(f"target frames must be a positive integer, got {frames!r}")
    if frames < len(plan):
        raise ValueError(f"target frames {frames} are fewer than the {len(plan)} text segments")
    natural = (None,) * len(plan)
    return dataclasses.replace(plan, frames=tuple(split_total(frames, [len(s) for s in plan.text_ids])),
                               samples=natural, total_samples=None)
