"""IndexTTS2 text front end: normaliser, tokenizer, segmentation (spec §3)."""

from .normalizer import TextNormalizer, use_chinese
from .segment import split_segments
from .tokenizer import UNK_ID, TextTokenizer, tokenize_by_cjk_char

__all__ = ["TextNormalizer", "TextTokenizer", "UNK_ID", "split_segments", "tokenize_by_cjk_char", "use_chinese"]
