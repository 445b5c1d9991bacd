"""Text normaliser of the official IndexTTS2 front end (spec §3.2).

    text -> [zh or en path] -> protected spans -> WeTextProcessing TN -> restored spans -> punctuation map

Chinese path: contractions, glossary, right-strip, protect technical terms / tonal pinyin / hyphenated
Chinese names, Chinese TN (an exception yields ""), restore, punctuation map (with `$` → `.`).
English path: contractions, glossary, protect technical terms, English TN (an exception keeps the
text as it was before protection), restore, punctuation map.

Deliberate deviation (Q24): protected pinyin syllables and names are replaced longest first instead
of in Python `set` order, so the output no longer depends on PYTHONHASHSEED; it equals one of the
official outcomes.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from pathlib import Path

from .engines import BACKENDS, DEFAULT_BACKEND, get_engine
from .glossary import check_glossary, load_glossary

log = logging.getLogger(__name__)

RECENT_TEXTS = 32  # normalised texts remembered (the tokenizer and the caller often ask twice)

CJK_IDEOGRAPH = re.compile(r"[\u4e00-\u9fff]")
ASCII_LETTER = re.compile(r"[a-zA-Z]")
EMAIL = re.compile(r"^[a-zA-Z0-9]+@[a-zA-Z0-9]+\.[a-zA-Z]+$")
PINYIN_TONE = re.compile(
    r"(?<![a-z])((?:[bpmfdtnlgkhjqxzcsryw]|[zcs]h)?(?:[aeiouüv]|[ae]i|u[aio]|ao|ou|i[aue]|[uüv]e|[uvü]ang?"
    r"|uai|[aeiuv]n|[aeio]ng|ia[no]|i[ao]ng)|ng|er)([1-5])",
    re.IGNORECASE,
)
NAME = re.compile(r"[\u4e00-\u9fff]+(?:[-·—][\u4e00-\u9fff]+){1,2}")
TECH_TERM = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)+")
TECH_HYPHEN = "<H>"
TECH_RESTORE = re.compile(r"\s*<H>\s*")
CONTRACTION = re.compile(r"(what|where|who|which|how|t?here|it|s?he|that|this)'s", re.IGNORECASE)
PRONUNCIATION = re.compile(r"<([^|>\n]+)\|([^>\n]+)>")
JQX_U = re.compile(r"([jqx])[uü](n|e|an)*(\d)", re.IGNORECASE)

# Official replacement table; one regex alternation in this order (so "，" wins over "，，，").
PUNCTUATION = {
    "：": ",", "；": ",", ";": ",", "，": ",", "。": ".", "！": "!", "？": "?", "\n": " ",
    "·": "-", "、": ",", "...": "…", ",,,": "…", "，，，": "…", "……": "…",
    "“": "'", "”": "'", '"': "'", "‘": "'", "’": "'", "（": "'", "）": "'", "(": "'", ")": "'",
    "《": "'", "》": "'", "【": "'", "】": "'", "[": "'", "]": "'", "—": "-", "～": "-", "~": "-",
    "「": "'", "」": "'", ":": ",",
}
PUNCTUATION_ZH = {"$": ".", **PUNCTUATION}


def _alternation(table: dict[str, str]) -> re.Pattern:
    return re.compile("|".join(re.escape(k) for k in table))


_PUNCT_RE = _alternation(PUNCTUATION)
_PUNCT_ZH_RE = _alternation(PUNCTUATION_ZH)


def placeholder_tag(i: int) -> str:
    """a, b, …, z, aa, ab, …: placeholder tags made of letters only."""
    tag = ""
    i += 1
    while i > 0:
        i, r = divmod(i - 1, 26)
        tag = chr(ord("a") + r) + tag
    return tag


def use_chinese(text: str) -> bool:
    """The branch the official normaliser takes for `text`."""
    return bool(CJK_IDEOGRAPH.search(text) or not ASCII_LETTER.search(text)
                or EMAIL.match(text) or PINYIN_TONE.search(text))


def protect_annotations(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Each `<word|pron>` → `PRONPLACEHOLDER{tag}PRONPLACEHOLDER` (tags a, b, … in match order)."""
    spans: list[tuple[str, str]] = []

    def placeholder(match: re.Match) -> str:
        spans.append((f"PRONPLACEHOLDER{placeholder_tag(len(spans))}PRONPLACEHOLDER", match.group(0)))
        return spans[-1][0]

    return PRONUNCIATION.sub(placeholder, text), spans


def _unique_longest_first(matches: list[str]) -> list[str]:
    return sorted(dict.fromkeys(matches), key=len, reverse=True)


def correct_pinyin(syllable: str) -> str:
    """j/q/x + u/ü → v and upper-case (xue2 → XVE2); other syllables unchanged."""
    if syllable[0].lower() not in "jqx":
        return syllable
    return JQX_U.sub(r"\1v\2\3", syllable).upper()


class TextNormalizer:
    """`normalize(text) -> str`, the official TextNormalizer with the glossary feature.

    backend: "auto" (WeTextProcessing if installed, else wetext), "wetextprocessing" or "wetext";
    see engines.py. cache_dir: where WeTextProcessing's compiled Chinese grammar is kept.
    glossary: {term: reading} or {term: {"zh": reading, "en": reading}}, or the path of such a YAML
    file (glossary.py). The TN engines load on first use.
    """

    def __init__(self, backend: str = DEFAULT_BACKEND, glossary: dict | str | Path | None = None,
                 cache_dir: Path | None = None):
        if backend not in BACKENDS:
            raise ValueError(f"unknown text normalisation backend {backend!r}; choose one of {BACKENDS}")
        self.backend = backend
        self.cache_dir = cache_dir
        self.glossary: dict = {}
        self._recent: OrderedDict[str, str] = OrderedDict()  # normalising a long text takes ~0.5 s
        if glossary is not None:
            self.load_glossary(glossary)

    # -- glossary ---------------------------------------------------------------------------
    def load_glossary(self, glossary: dict | str | Path) -> None:
        """Use `glossary` (a mapping, or the path of a glossary.yaml) from now on (glossary.py)."""
        self.glossary = check_glossary(glossary) if isinstance(glossary, dict) else load_glossary(glossary)
        self._recent.clear()

    def apply_glossary(self, text: str, lang: str) -> str:
        for term in sorted(self.glossary, key=len, reverse=True):
            value = self.glossary[term]
            if isinstance(value, dict) and lang not in value:
                continue  # no reading for this language: the term stays as written
            reading = value[lang] if isinstance(value, dict) else value
            text = re.sub(re.escape(term), lambda _m, r=reading: r, text, flags=re.IGNORECASE)
        return text

    # -- main entry --------------------------------------------------------------------------
    def normalize(self, text: str) -> str:
        if not isinstance(text, str):
            raise ValueError(f"text must be a string, got {type(text).__name__}")
        if text in self._recent:
            self._recent.move_to_end(text)
            return self._recent[text]
        result = self._normalize(text)
        self._recent[text] = result
        if len(self._recent) > RECENT_TEXTS:
            self._recent.popitem(last=False)
        return result

    def _normalize(self, text: str) -> str:
        # annotations are protected first and the branch is chosen on the protected text, as the
        # official front end does: "<行|xing2> 25 apples" is English (the annotation is not content)
        text, pronunciations = protect_annotations(text)
        chinese = use_chinese(text)
        text = CONTRACTION.sub(r"\1 is", text)
        if chinese:
            text = self._normalize_zh(text)
        else:
            text = self._normalize_en(text)
        for placeholder, original in pronunciations:
            text = text.replace(placeholder, original)
        return text

    def _normalize_zh(self, text: str) -> str:
        text = self.apply_glossary(text, "zh").rstrip()
        text, terms = self._protect_tech_terms(text)
        text, pinyin = self._protect(PINYIN_TONE, text, "<pinyin_{}>")
        text, names = self._protect(NAME, text, "<n_{}>")
        engine = get_engine(self.backend, "zh", self.cache_dir)  # a missing package is an error
        try:
            result = engine(text)
        except Exception:  # official behaviour: any TN failure gives an empty result
            log.warning("Chinese text normalisation failed; using an empty result", exc_info=True)
            result = ""
        for placeholder, original in names:
            result = result.replace(placeholder, original)
        for placeholder, original in pinyin:
            result = result.replace(placeholder, correct_pinyin(original))
        result = TECH_RESTORE.sub("-", result)
        return _PUNCT_ZH_RE.sub(lambda m: PUNCTUATION_ZH[m.group(0)], result)

    def _normalize_en(self, text: str) -> str:
        text = self.apply_glossary(text, "en")
        protected, _ = self._protect_tech_terms(text)
        engine = get_engine(self.backend, "en", self.cache_dir)
        try:
            result = TECH_RESTORE.sub("-", engine(protected))
        except Exception:  # official behaviour: keep the text from before the TN step
            log.warning("English text normalisation failed; keeping the text as is", exc_info=True)
            result = text
        return _PUNCT_RE.sub(lambda m: PUNCTUATION[m.group(0)], result)

    # -- protection helpers ------------------------------------------------------------------
    @staticmethod
    def _protect(pattern: re.Pattern, text: str, template: str) -> tuple[str, list[tuple[str, str]]]:
        """Replace each distinct match (longest first) by a placeholder without digits, which the
        TN grammars pass through unchanged and which no protection pattern matches again."""
        spans = []
        for i, match in enumerate(_unique_longest_first([m.group(0) for m in pattern.finditer(text)])):
            placeholder = template.format(placeholder_tag(i))
            text = text.replace(match, placeholder)
            spans.append((placeholder, match))
        return text, spans

    @staticmethod
    def _protect_tech_terms(text: str) -> tuple[str, list[str]]:
        terms = _unique_longest_first(TECH_TERM.findall(text))
        for term in terms:
            text = text.replace(term, term.replace("-", TECH_HYPHEN))
        return text, terms
