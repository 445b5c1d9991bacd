"""The IndexTTS-2.5 text front end (spec 2.5 §3): text + language → segments of token ids.

    punctuation map → normalisation by language → case by language → <word|pron> annotations
    → Japanese morpheme spacing (ja) → special-token re-casing → split_text_by_tokens
    → per segment: ids of "<|lang|> " + segment, then id 1 appended

| language | normalisation (when `normalize`) | case |
|---|---|---|
| zh, en (and zhen) | TextNormalizer (zh or en grammar chosen by content, glossary) | lower |
| ja | none | lower, then MeCab spacing (japanese.py) |
| es | none (the official NeMo normaliser is absent from the official install) | upper |
| ar, other codes | none | unchanged |

`language` is one of zh, en, ja, es, ar (any case) or "auto". The official code takes the language
as given and has no detection; "auto" is ours and goes by script (`detect_language`). Other codes
are refused unless `allow_any_language` (the conformance tools use it to reproduce the official
handling: special-token codes keep their tag, others become literal text with the `common` row).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .japanese import JapaneseSegmenter
from .normalizer import PRONUNCIATION, PUNCTUATION, TextNormalizer, check_text
from .segment25 import segment_budget, split_text_by_tokens
from .tiktoken_tokenizer import SPECIAL_TOKEN_1, SPECIAL_TOKEN_2, TiktokenTokenizer, language_index

SUPPORTED_LANGUAGES = ("zh", "en", "ja", "es", "ar")
TEXT_CAPACITY = 602  # rows of the 2.5 GPT's text position table (max_text_tokens + 2)
STOP_ID = 1  # appended to every segment, as the official code does (dropped again by the GPT input builder)

_PUNCT_RE = re.compile("|".join(re.escape(k) for k in PUNCTUATION))
_SPECIAL = re.compile(r"<\|([^|]+)\|>")
_HIRAGANA = re.compile(r"[\u3040-\u309f]+")
_KATAKANA = re.compile(r"[\u30a0-\u30ff]+")
_KANA = re.compile(r"[\u3040-\u30ff]")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_ARABIC = re.compile(r"[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff]")
_SPANISH = re.compile(r"[ñÑ¿¡áéíóúÁÉÍÓÚ]")


@dataclass(frozen=True)
class Segment25:
    text: str  # the segment as the splitter cut it (without the language prefix)
    ids: list[int]  # tokens of "<|lang|> " + text, then STOP_ID: the official int32 row
    lang_id: int  # the language embedding row


@dataclass(frozen=True)
class Prepared25:
    """Every intermediate of the front end (what the conformance cases record)."""

    language: str  # the code as used (lower case)
    prefix: str
    lang_id: int
    after_char_rep: str
    normalized: str | None  # None: no normaliser ran (text_normalization off, ar and other codes)
    cased: str
    annotated: str
    ja_segmented: str | None
    final_text: str


def detect_language(text: str) -> str:
    """Ours, by script: kana → ja, Arabic → ar, CJK ideographs → zh, Spanish letters → es, else en."""
    if _KANA.search(text):
        return "ja"
    if _ARABIC.search(text):
        return "ar"
    if _CJK.search(text):
        return "zh"
    return "es" if _SPANISH.search(text) else "en"


def annotate(text: str) -> str:
    """`<word|pron>` → the pronunciation only: plain kana (spaced), else pinyin (the word has a CJK
    ideograph) or ARPAbet between SPECIAL_TOKEN_2 / SPECIAL_TOKEN_1; the word is dropped (R7)."""
    def replace(m: re.Match) -> str:
        word, pron = m.group(1), m.group(2).upper()
        if _HIRAGANA.fullmatch(pron) or _KATAKANA.fullmatch(pron):
            return f" {pron} "
        mark = SPECIAL_TOKEN_2 if _CJK.search(word) else SPECIAL_TOKEN_1
        return f"{mark}{pron}{mark}"

    return PRONUNCIATION.sub(replace, text)


def recase_special_tokens(text: str) -> str:
    """Every `<|name|>` gets its name upper-cased (R9: only upper-case specials survive)."""
    return _SPECIAL.sub(lambda m: f"<|{m.group(1).upper()}|>", text)


class TextFrontend25:
    """`segments(text, language)` of the official 2.5 front end over a `.tiktoken` vocabulary."""

    def __init__(self, tiktoken_path: str | Path, normalizer: TextNormalizer | None = None,
                 japanese: JapaneseSegmenter | None = None, capacity: int = TEXT_CAPACITY):
        self.tokenizer = TiktokenTokenizer(tiktoken_path)
        self.normalizer = normalizer if normalizer is not None else TextNormalizer()
        self.japanese = japanese if japanese is not None else JapaneseSegmenter()
        self.capacity = capacity

    def resolve_language(self, language: str, text: str, allow_any_language: bool = False) -> str:
        if not isinstance(language, str) or not language.strip():
            raise ValueError(f"language must be a language code or 'auto', got {language!r}")
        code = language.strip().lower()
        if code == "auto":
            return detect_language(text)
        if code not in SUPPORTED_LANGUAGES and not allow_any_language:
            raise ValueError(f"unsupported language {language!r} for IndexTTS-2.5; "
                             f"choose one of {', '.join(SUPPORTED_LANGUAGES)} or auto")
        return code

    def prepare(self, text: str, language: str = "auto", normalize: bool = True,
                allow_any_language: bool = False) -> Prepared25:
        text = check_text(text)
        code = self.resolve_language(language, text, allow_any_language)
        after = _PUNCT_RE.sub(lambda m: PUNCTUATION[m.group(0)], text)
        normalized = None
        if normalize and code in ("zh", "zhen", "en"):
            normalized = self.normalizer.normalize(after)
        elif normalize and code in ("ja", "es"):
            normalized = after  # the official NeMo step: ja unmapped, es not installed
        cased = after if normalized is None else normalized
        if code in ("ja", "zh", "zhen", "en"):
            cased = cased.lower()
        elif code == "es":
            cased = cased.upper()
        annotated = annotate(cased)
        ja_segmented = self.japanese.segment(annotated) if code == "ja" else None
        final = recase_special_tokens(annotated if ja_segmented is None else ja_segmented)
        return Prepared25(code, f"<|{code}|> ", language_index(code), after, normalized, cased, annotated,
                          ja_segmented, final)

    def split(self, prepared: Prepared25, max_tokens: int = 120) -> list[str]:
        """The segment texts of `prepared` for a limit of `max_tokens` tokens per segment."""
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ValueError(f"max_tokens must be a positive integer, got {max_tokens!r}")
        budget = segment_budget(max_tokens, self.tokenizer.count(prepared.prefix), self.capacity)
        return split_text_by_tokens(prepared.final_text, self.tokenizer.count, budget)

    def segments(self, text: str, language: str = "auto", max_tokens: int = 120, normalize: bool = True,
                 allow_any_language: bool = False) -> list[Segment25]:
        """Token ids per segment, each with the language prefix and the official trailing STOP_ID."""
        prepared = self.prepare(text, language, normalize, allow_any_language)
        return [Segment25(seg, self.tokenizer.encode(prepared.prefix + seg) + [STOP_ID], prepared.lang_id)
                for seg in self.split(prepared, max_tokens)]
