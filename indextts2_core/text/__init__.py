"""Text front ends: IndexTTS2 (normaliser, SentencePiece tokenizer, segmentation, spec §3) and
IndexTTS-2.5 (tiktoken vocabulary, per-language rules, spec 2.5 §3)."""

from .frontend25 import SUPPORTED_LANGUAGES, Segment25, TextFrontend25, detect_language
from .glossary import GLOSSARY_FILE, load_glossary
from .normalizer import TextNormalizer, check_text, use_chinese
from .segment import iter_split_segments, split_segments
from .tokenizer import UNK_ID, TextTokenizer, tokenize_by_cjk_char

__all__ = ["GLOSSARY_FILE", "SUPPORTED_LANGUAGES", "Segment25", "TextFrontend25", "TextNormalizer", "TextTokenizer",
           "UNK_ID", "check_text", "detect_language", "iter_split_segments", "load_glossary", "split_segments",
           "tokenize_by_cjk_char", "use_chinese"]
