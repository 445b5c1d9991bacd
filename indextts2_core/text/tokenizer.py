"""Text → SentencePiece pieces → ids, and segments of ids (spec §3.1, §3.3–3.5).

    text -> TextNormalizer -> CJK split + upper-case -> bpe.model pieces -> ids (unknown -> unk id 2)

A text whose strip() is one character skips normalisation and case folding (raw SentencePiece);
an empty text gives no tokens (the pipeline refuses it later, Q16). A lone UTF-16 surrogate (half
of a broken emoji, text decoded with the wrong codec) is refused with a ValueError naming it;
surrogate pairs are joined into their character.

`segments` follows the official order (whole text → pieces → segments); `iter_segments` gives the
same segments one at a time with memory bounded by the longest sentence block (issue 16).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Iterator

from ..checkpoints import CheckpointError
from .chunks import MAX_BLOCK_CHARS
from .normalizer import TextNormalizer, check_text
from .segment import iter_split_segments, split_segments

log = logging.getLogger(__name__)

UNK_ID = 2
# Every character of these ranges (CJK, kana, Hangul, full-width forms) becomes its own word.
CJK_CHAR = re.compile(
    "([\u1100-\u11ff\u2e80-\ua4cf\ua840-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff65-\uffdc\U00020000-\U0002ffff])"
)


def tokenize_by_cjk_char(text: str) -> str:
    """Space-separate CJK characters, upper-case everything else, join with single spaces."""
    return " ".join(w.strip().upper() for w in CJK_CHAR.split(text.strip()) if w.strip())


def _load_sentencepiece(path: Path):
    """The SentencePiece model of `path`; a missing, empty or unreadable file is refused here, not
    at the first tokenize."""
    import sentencepiece as spm

    if not path.is_file():
        raise FileNotFoundError(f"SentencePiece model not found: {path}")
    try:
        sp = spm.SentencePieceProcessor(model_proto=path.read_bytes())  # bytes: any path encoding works
    except (RuntimeError, OSError) as e:
        raise CheckpointError(f"{path}: not a readable SentencePiece model ({str(e).strip() or type(e).__name__})") from e
    if sp.GetPieceSize() <= UNK_ID:
        raise CheckpointError(f"{path}: SentencePiece model with only {sp.GetPieceSize()} pieces")
    return sp


class TextTokenizer:
    """Tokenizer of the official v2 pipeline around a SentencePiece `bpe.model`."""

    def __init__(self, bpe_path: str | Path, normalizer: TextNormalizer | None = None):
        self.sp = _load_sentencepiece(Path(bpe_path))
        self.normalizer = normalizer if normalizer is not None else TextNormalizer()

    @property
    def vocab_size(self) -> int:
        return self.sp.GetPieceSize()

    @property
    def unk_id(self) -> int:
        return self.sp.unk_id()

    def tokenize(self, text: str) -> list[str]:
        """SentencePiece pieces of `text` after normalisation and CJK splitting."""
        text = check_text(text)
        if len(text) == 0:
            return []
        if len(text.strip()) == 1:  # official shortcut: raw text, no normalisation, no upper-casing
            return self.sp.Encode(text, out_type=str)
        return self.sp.Encode(tokenize_by_cjk_char(self.normalizer.normalize(text)), out_type=str)

    def convert_tokens_to_ids(self, pieces: list[str]) -> list[int]:
        ids = [self.sp.PieceToId(p) for p in pieces]
        unknown = [p for p, i in zip(pieces, ids) if i == self.unk_id]
        if unknown:
            log.warning("%d piece(s) are not in the vocabulary and map to <unk>: %s", len(unknown), unknown[:10])
        return ids

    def encode(self, text: str) -> list[int]:
        return self.convert_tokens_to_ids(self.tokenize(text))

    def split_segments(self, pieces: list[str], max_tokens: int = 120,
                       quick_streaming_tokens: int = 0) -> list[list[str]]:
        return split_segments(pieces, max_tokens, quick_streaming_tokens)

    def segments(self, text: str, max_tokens: int = 120, quick_streaming_tokens: int = 0) -> list[list[int]]:
        """Ids per synthesis segment (empty list for a text without tokens)."""
        pieces = self.tokenize(text)
        return [self.convert_tokens_to_ids(s) for s in split_segments(pieces, max_tokens, quick_streaming_tokens)]

    def iter_segments(self, text: str, max_tokens: int = 120, quick_streaming_tokens: int = 0,
                      max_block_chars: int = MAX_BLOCK_CHARS) -> Iterator[list[int]]:
        """The ids of `segments(text, ...)`, yielded one segment at a time: the text is normalised
        and tokenised block by block (TextNormalizer.normalize_blocks) and segmented as a stream, so
        memory is bounded by the longest block instead of the text. Arguments are checked here, not
        at the first segment."""
        pieces = self.iter_segment_pieces(text, max_tokens, quick_streaming_tokens, max_block_chars)
        return (self.convert_tokens_to_ids(s) for s in pieces)

    def iter_segment_pieces(self, text: str, max_tokens: int = 120, quick_streaming_tokens: int = 0,
                            max_block_chars: int = MAX_BLOCK_CHARS) -> Iterator[list[str]]:
        """`iter_segments` as SentencePiece pieces."""
        text = check_text(text)
        if isinstance(max_block_chars, bool) or not isinstance(max_block_chars, int) or max_block_chars < 1:
            raise ValueError(f"max_block_chars must be a positive integer, got {max_block_chars!r}")
        return iter_split_segments(self._iter_pieces(text, max_block_chars), max_tokens, quick_streaming_tokens)

    def _iter_pieces(self, text: str, max_block_chars: int) -> Iterator[str]:
        if len(text.strip()) <= 1:  # "", or the raw single-character path of `tokenize`
            yield from self.tokenize(text)
            return
        for block in self.normalizer.normalize_blocks(text, max_block_chars):
            # blocks end at whitespace or before a CJK character, where the pieces split anyway
            yield from self.sp.Encode(tokenize_by_cjk_char(block), out_type=str)
