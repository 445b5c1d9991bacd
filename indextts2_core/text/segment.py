"""Segmentation of a piece list into synthesis segments (spec §3.5, quirk Q9).

Reproduces the official algorithm including its quirks: an apostrophe right after a sentence end
is appended to the closing segment *and* starts the next one; a sentence end only closes a run
longer than 2 pieces; over-long runs are hard-cut every `max_tokens` pieces (which can leave
1-piece segments); neighbours are then merged greedily up to `max_tokens`.
"""

from __future__ import annotations

import logging
import numbers

log = logging.getLogger(__name__)

SENTENCE_ENDS = frozenset({".", "!", "?", "▁.", "▁?", "▁..."})  # "▁..." never occurs (Q9)
COMMAS = frozenset({",", "▁,"})
HYPHENS = frozenset({"-"})
APOSTROPHES = frozenset({"'", "▁'"})


def split_segments(pieces: list[str], max_tokens: int = 120, quick_streaming_tokens: int = 0) -> list[list[str]]:
    """Split `pieces` into segments of at most `max_tokens` pieces, the official way."""
    if not _is_int(max_tokens) or max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive integer, got {max_tokens!r}")
    if not _is_int(quick_streaming_tokens) or quick_streaming_tokens < 0:
        raise ValueError(f"quick_streaming_tokens must be a non-negative integer, got {quick_streaming_tokens!r}")
    return _split(list(pieces), SENTENCE_ENDS, int(max_tokens), int(quick_streaming_tokens))


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _split(pieces: list[str], stops: frozenset, limit: int, quick: int) -> list[list[str]]:
    if not pieces:
        return []
    out: list[list[str]] = []
    cur: list[str] = []
    for i, piece in enumerate(pieces):
        cur.append(piece)
        if not stops & COMMAS and any(p in COMMAS for p in cur):
            sub = _split(cur, COMMAS, limit, quick)  # flush at the comma
        elif "-" not in stops and "-" in cur:
            sub = _split(cur, HYPHENS, limit, quick)  # flush at the hyphen
        elif len(cur) <= limit:
            if piece in stops and len(cur) > 2:
                if i + 1 < len(pieces) and pieces[i + 1] in APOSTROPHES:
                    cur.append(pieces[i + 1])  # official quirk: the apostrophe is visited again
                out.append(cur)
                cur = []
            continue
        else:
            log.warning("a segment of %d tokens exceeds the limit %d; cutting it hard", len(cur), limit)
            sub = [cur[j:j + limit] for j in range(0, len(cur), limit)]
        out.extend(sub)
        cur = []
    if cur:
        out.append(cur)
    return _merge(out, limit, quick)


def _merge(segments: list[list[str]], limit: int, quick: int) -> list[list[str]]:
    """Greedy merge of neighbours; the first `quick` pieces are kept in small segments (streaming)."""
    merged: list[list[str]] = []
    seen = 0
    for seg in segments:
        seen += len(seg)
        if not seg:
            continue
        if not merged:
            merged.append(seg)
        elif len(merged[-1]) + len(seg) <= limit and seen > quick:
            merged[-1] = merged[-1] + seg
        elif len(merged[-1]) + len(seg) <= limit / 2:
            merged[-1] = merged[-1] + seg
        else:
            merged.append(seg)
    return merged
