"""Segmentation of a piece list into synthesis segments (spec §3.5, quirk Q9).

Reproduces the official algorithm including its quirks: an apostrophe right after a sentence end
is appended to the closing segment *and* starts the next one; a sentence end only closes a run
longer than 2 pieces; over-long runs are hard-cut every `max_tokens` pieces (which can leave
1-piece segments); neighbours are then merged greedily up to `max_tokens`.
"""

from __future__ import annotations

import logging
import numbers
from typing import Iterable, Iterator

log = logging.getLogger(__name__)

SENTENCE_ENDS = frozenset({".", "!", "?", "▁.", "▁?", "▁..."})  # "▁..." never occurs (Q9)
COMMAS = frozenset({",", "▁,"})
HYPHENS = frozenset({"-"})
APOSTROPHES = frozenset({"'", "▁'"})
_END = object()


def split_segments(pieces: list[str], max_tokens: int = 120, quick_streaming_tokens: int = 0) -> list[list[str]]:
    """Split `pieces` into segments of at most `max_tokens` pieces, the official way."""
    return list(iter_split_segments(pieces, max_tokens, quick_streaming_tokens))


def iter_split_segments(pieces: Iterable[str], max_tokens: int = 120,
                        quick_streaming_tokens: int = 0) -> Iterator[list[str]]:
    """`split_segments` on a stream of pieces: each segment is yielded as soon as it is final, so the
    pieces of a long text need not exist all at once (the algorithm only ever looks one piece ahead
    and one segment back)."""
    if not _is_int(max_tokens) or max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive integer, got {max_tokens!r}")
    if not _is_int(quick_streaming_tokens) or quick_streaming_tokens < 0:
        raise ValueError(f"quick_streaming_tokens must be a non-negative integer, got {quick_streaming_tokens!r}")
    limit, quick = int(max_tokens), int(quick_streaming_tokens)
    return _merge(_split(iter(pieces), SENTENCE_ENDS, limit, quick), limit, quick)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _split(pieces: Iterator[str], stops: frozenset, limit: int, quick: int) -> Iterator[list[str]]:
    """The official splitting loop (before the merge), one piece of look-ahead."""
    cur: list[str] = []
    piece = next(pieces, _END)
    while piece is not _END:
        following = next(pieces, _END)
        cur.append(piece)
        if not stops & COMMAS and any(p in COMMAS for p in cur):
            sub = _merge(_split(iter(cur), COMMAS, limit, quick), limit, quick)  # flush at the comma
        elif "-" not in stops and "-" in cur:
            sub = _merge(_split(iter(cur), HYPHENS, limit, quick), limit, quick)  # flush at the hyphen
        elif len(cur) <= limit:
            if piece in stops and len(cur) > 2:
                if following is not _END and following in APOSTROPHES:
                    cur.append(following)  # official quirk: the apostrophe is visited again
                yield cur
                cur = []
            piece = following
            continue
        else:
            log.warning("a segment of %d tokens exceeds the limit %d; cutting it hard", len(cur), limit)
            sub = [cur[j:j + limit] for j in range(0, len(cur), limit)]
        yield from sub
        cur = []
        piece = following
    if cur:
        yield cur


def _merge(segments: Iterable[list[str]], limit: int, quick: int) -> Iterator[list[str]]:
    """Greedy merge of neighbours; the first `quick` pieces are kept in small segments (streaming)."""
    last: list[str] | None = None
    seen = 0
    for seg in segments:
        seen += len(seg)
        if not seg:
            continue
        if last is None:
            last = seg
        elif len(last) + len(seg) <= limit and seen > quick:
            last = last + seg
        elif len(last) + len(seg) <= limit / 2:
            last = last + seg
        else:
            yield last
            last = seg
    if last is not None:
        yield last
