"""The IndexTTS-2.5 segmenter `split_text_by_tokens` (spec 2.5 §3.9, quirk R10).

Counts are token counts of the exact string (`count(s)`), so BPE merges across the joins count.

1. A text within the budget is one segment.
2. Otherwise: annotation spans `<|SPECIAL_TOKEN_n|>…<|SPECIAL_TOKEN_n|>` are atomic chunks (even
   when longer than the budget); the free text between them is split after each of
   `，。！？、；：,.!?;:` and newline; a part over the budget is cut character by character
   (growing a piece while it stays within the budget; this can cut inside a word).
3. Chunks are merged greedily while the merged string stays within the budget.
"""

from __future__ import annotations

import re
from typing import Callable

ANNOTATION_SPAN = re.compile(r"(<\|SPECIAL_TOKEN_\d+\|>.*?<\|SPECIAL_TOKEN_\d+\|>)")
BREAK_AFTER = re.compile(r"(?<=[，。！？、；：,.!?;:\n])")


def segment_budget(max_tokens: int, prefix_tokens: int, capacity: int) -> int:
    """Tokens per segment: the limit (at most the position table's capacity - 2) minus the prefix."""
    return max(1, min(max_tokens, capacity - 2) - prefix_tokens)


def split_text_by_tokens(text: str, count: Callable[[str], int], budget: int) -> list[str]:
    if count(text) <= budget:
        return [text]
    chunks: list[str] = []
    for i, span in enumerate(ANNOTATION_SPAN.split(text)):
        if i % 2:  # an annotation span
            chunks.append(span)
            continue
        for part in BREAK_AFTER.split(span):
            if not part:
                continue
            if count(part) <= budget:
                chunks.append(part)
            else:
                chunks.extend(_pack(part, count, budget))  # character by character
    return _pack(chunks, count, budget) or [text]


def _pack(units, count: Callable[[str], int], budget: int) -> list[str]:
    """Consecutive `units` (strings) joined greedily while the joined text fits `budget` tokens."""
    pieces, piece = [], ""
    for unit in units:
        if piece and count(piece + unit) > budget:
            pieces.append(piece)
            piece = unit
        else:
            piece += unit
    if piece:
        pieces.append(piece)
    return pieces
