"""IndexTTS2 text front end: normaliser, tokenizer, segmentation (spec §3)."""

from .glossary import GLOSSARY_FILE, load_glossary
from .normalizer import TextNormalizer, use_chinese
from .segment import split_segments
from .tokenizer import UNK_ID, TextTokenizer, tokenize_by_cjk_char

__all__ = ["GLOSSARY_FILE", "TextNormalizer", "TextTokenizer", "UNK_ID", "load_glossary", "split_segments", "tokenize_by_cjk_char", "use_chinese"]
