"""Where a long text may be cut for normalisation piece by piece (issue 16: memory of long texts).

The TN engines cost ~150 MB and ~3 s per 1 000 characters of English in one call, so a long text is
normalised in blocks of at most `max_chars` characters (longer only when a single sentence is longer).
Blocks end at sentence ends, after which the engines' output does not depend on what follows:

* in Chinese text, after `。！？` followed by whitespace or a CJK ideograph (the Chinese grammar has
  no rule across them, and the tokenizer splits there anyway: before a Latin letter it would not);
* after `.!?` followed by a space (WeTextProcessing's English grammar deletes a newline or NBSP
  there, joining the sentences into one word), unless the word before the stop may be an abbreviation
  (`Dr. Walker`, `St. Louis`, `etc. to`, `5 p.m. Then` read differently when cut): the word must be
  at least four lower-case letters, or end in `!`/`?`.

The English engines' output also depends on what came *before* (see normalizer.py); the normaliser
reads each English block behind at least CONTEXT_CHARS characters of the text before it. Blocks never cut a placeholder
or annotation (they contain no whitespace), and concatenated they are the text again.
"""

from __future__ import annotations

import re

MAX_BLOCK_CHARS = 1000
CONTEXT_CHARS = 400  # English text read again before each block (normalizer.py)

# a Chinese sentence end (before whitespace or CJK), or a sentence end followed by a space; the cut
# is after the match. The English path takes only the second kind (see the module docstring).
_CUT_ZH = re.compile(r"[。！？](?=[\s\u4e00-\u9fff])\s*|[.!?] \s*")
_CUT_EN = re.compile(r"[.!?。！？] \s*")


def cut_points(text: str, chinese: bool = True) -> list[int]:
    """Offsets where `text` may be cut (0 < offset < len(text)), in order; `chinese`: the text goes
    through the Chinese grammar (else the English one)."""
    cuts = []
    for m in (_CUT_ZH if chinese else _CUT_EN).finditer(text):
        if text[m.start()] == "." and not _plain_word_before(text, m.start()):
            continue
        if 0 < m.end() < len(text):
            cuts.append(m.end())
    return cuts


def _plain_word_before(text: str, stop: int) -> bool:
    """The word ending at `text[stop]` (a full stop) is lower-case letters only, at least four."""
    start = stop
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    word = text[start:stop].lstrip("'\"([")
    return len(word) >= 4 and word.isascii() and word.isalpha() and word.islower()


def split_blocks(text: str, max_chars: int = MAX_BLOCK_CHARS, chinese: bool = True) -> list[str]:
    """`text` cut at `cut_points` into blocks of at most `max_chars` (a block without a cut point
    inside may be longer); "".join(blocks) == text."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be positive, got {max_chars}")
    blocks, start, last = [], 0, 0
    for cut in cut_points(text, chinese):
        if cut - start > max_chars and last > start:
            blocks.append(text[start:last])
            start = last
        last = cut
    if len(text) - start > max_chars and last > start:
        blocks.append(text[start:last])
        start = last
    blocks.append(text[start:])
    return blocks
