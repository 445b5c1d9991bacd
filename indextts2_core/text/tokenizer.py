"""Text → SentencePiece pieces → ids, and segments of ids (spec §3.1, §3.3–3.5).

    text -> TextNormalizer -> CJK split + upper-case -> bpe.model pieces -> ids (unknown -> unk id 2)

A text whose strip() is one character skips normalisation and case folding (raw SentencePiece);
an empty text gives no tokens (the pipeline refuses it later, Q16).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from ..checkpoints import CheckpointError
from .normalizer import TextNormalizer
from .segment import split_segments

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
        if not isinstance(text, str):
            raise ValueError(f"text must be a string, got {type(text).__name__}")
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
