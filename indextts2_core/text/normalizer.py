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

import bisect
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterator
from pathlib import Path

from .chunks import CONTEXT_CHARS, MAX_BLOCK_CHARS, cut_points, split_blocks
from .engines import BACKENDS, DEFAULT_BACKEND, get_engine, skips_text_without_digits
from .glossary import check_glossary, load_glossary

log = logging.getLogger(__name__)

RECENT_TEXTS = 32  # normalised texts remembered (the tokenizer and the caller often ask twice)

DIGIT = re.compile(r"\d")
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


SURROGATE = re.compile("[\ud800-\udfff]")


def check_text(text: str) -> str:
    """`text` with UTF-16 surrogate pairs joined; a ValueError for anything else than a string and
    for a lone surrogate (SentencePiece cannot encode it)."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}")
    if SURROGATE.search(text) is None:
        return text
    lone, i = [], 0
    while i < len(text):
        if "\ud800" <= text[i] <= "\udbff" and i + 1 < len(text) and "\udc00" <= text[i + 1] <= "\udfff":
            i += 2  # a high + low pair: one character written as two
            continue
        if SURROGATE.match(text[i]):
            lone.append(i)
        i += 1
    if lone:
        where = ", ".join(f"U+{ord(text[i]):04X} at character {i}" for i in lone[:5])
        more = ", ..." if len(lone) > 5 else ""
        raise ValueError(f"text contains {len(lone)} lone UTF-16 surrogate(s) ({where}{more}): half of a character,"
                         " e.g. a broken emoji or text decoded with the wrong encoding; "
                         "remove it or fix the source")
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")


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


@dataclass
class _Prepared:
    chinese: bool  # the branch taken
    tn_input: str  # what the TN engine gets
    fallback: str  # the result when the engine raises
    restore: list[tuple[str, str]]  # placeholder → text, in this order, on the engine's output
    pronunciations: list[tuple[str, str]]  # restored last


def _after_words(text: str, words: list[str]) -> str | None:
    """`text` after its first len(words) whitespace-separated words, if those are `words` (the
    engines space the same words differently at the end of a text and inside it)."""
    end = 0
    for word, match in zip(words, re.finditer(r"\S+", text)):
        if match.group(0) != word:
            return None
        end = match.end()
    return text[end:] if len(words) <= len(re.findall(r"\S+", text[:end])) else None


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
        text = check_text(text)
        if text in self._recent:
            self._recent.move_to_end(text)
            return self._recent[text]
        result = self._normalize(text)
        self._recent[text] = result
        if len(self._recent) > RECENT_TEXTS:
            self._recent.popitem(last=False)
        return result

    def normalize_blocks(self, text: str, max_chars: int = MAX_BLOCK_CHARS,
                         context_chars: int = CONTEXT_CHARS) -> Iterator[str]:
        """`normalize(text)` in blocks of about `max_chars` characters, so the TN engines' memory is
        bounded by the longest block (plus `context_chars` for English), not by the text (chunks.py
        says where blocks end). The blocks' token pieces are those of `normalize(text)` (spacing
        may differ: a block's output lacks the space the whole text's output has before the next).
        Every decision the official normaliser takes on the whole text (branch, protected spans)
        is taken on the whole text; an English block is read behind at least `context_chars`
        characters of the text before it (`_english_after`).

        A TN failure is official for the whole text (zh: "", en: the text as it was); here it
        applies to the failing block only, with the same warning."""
        prepared = self._prepare(check_text(text))
        blocks = split_blocks(prepared.tn_input, max_chars, prepared.chinese)
        if len(blocks) == 1:
            yield self.normalize(text)
            return
        force = skips_text_without_digits(self.backend) and DIGIT.search(prepared.tn_input) is not None
        cuts = [0] + cut_points(prepared.tn_input, prepared.chinese)
        start = 0
        for block in blocks:
            if prepared.chinese:  # the Chinese grammars do not look across sentence ends
                out = self._forced(block, True, force)
            else:  # English: behind at least `context_chars` of the text before, from a cut point
                context_start = cuts[max(0, bisect.bisect_right(cuts, start - context_chars) - 1)]
                out = self._english_after(prepared.tn_input[context_start:start], block, force)
            start += len(block)
            fallback = "" if prepared.chinese else block.replace(TECH_HYPHEN, "-")  # as `_prepare`'s
            yield self._finish(out, _Prepared(prepared.chinese, block, fallback, prepared.restore,
                                              prepared.pronunciations))

    def _english_after(self, context: str, block: str, force: bool) -> str | None:
        """English TN output of `block` as it reads after `context`. The English engines read a
        number after more than ~20 words differently ("one thirty eight" instead of "one hundred and
        thirty eight": equal grammar weights decided by rounding of the accumulated path weight), so
        `block` is normalised behind its context and the context's own output is cut off (the
        output up to a cut point never depends on what follows it). `force`: see `_forced`."""
        if not context:
            return self._forced(block, False, force)
        if force and not DIGIT.search(context + block):
            context = "0 " + context  # a digit in front: both runs below read it the same way
        both = self._run_engine(context + block, False)
        alone = self._forced(context, False, force)
        if both is None:
            return None
        rest = None if alone is None else _after_words(both, alone.split())
        if rest is None:
            log.warning("English text normalisation of a block could not be aligned with its context; "
                        "normalising the block on its own")
            return self._run_engine(block, False)
        return rest

    def _forced(self, block: str, chinese: bool, force: bool) -> str | None:
        """The engine's output of `block` (ending at a cut point) as part of a text with digits:
        wetext returns a text without digits unchanged (engines.skips_text_without_digits), so then
        a digit is read with it and its reading cut off again (after the block in English, before it
        in Chinese, which does not look across a sentence end)."""
        if not force or DIGIT.search(block):
            return self._run_engine(block, chinese)
        out = self._run_engine("0。 " + block if chinese else block + " 0", chinese)
        if out is not None:
            head, _, last = out.rstrip().rpartition(" ")
            rest = _after_words(out, ["零。"]) if chinese else (head if last == "zero" else None)
            if rest is not None:
                return rest
        log.warning("text normalisation: a block could not be read as part of a text with digits; "
                    "normalising it on its own")
        return self._run_engine(block, chinese)

    def _normalize(self, text: str) -> str:
        prepared = self._prepare(text)
        return self._finish(self._run_engine(prepared.tn_input, prepared.chinese), prepared)

    def _prepare(self, text: str) -> _Prepared:
        """Everything before the TN engine, on the whole text: these steps decide for the whole text
        (the branch, the protected spans), so chunked normalisation must take them from here."""
        # annotations are protected first and the branch is chosen on the protected text, as the
        # official front end does: "<行|xing2> 25 apples" is English (the annotation is not content)
        text, pronunciations = protect_annotations(text)
        chinese = use_chinese(text)
        text = CONTRACTION.sub(r"\1 is", text)
        if not chinese:
            text = self.apply_glossary(text, "en")
            return _Prepared(False, self._protect_tech_terms(text)[0], text, [], pronunciations)
        text = self.apply_glossary(text, "zh").rstrip()
        text, _ = self._protect_tech_terms(text)
        text, pinyin = self._protect(PINYIN_TONE, text, "<pinyin_{}>")
        text, names = self._protect(NAME, text, "<n_{}>")
        restore = names + [(placeholder, correct_pinyin(original)) for placeholder, original in pinyin]
        return _Prepared(True, text, "", restore, pronunciations)

    def _run_engine(self, text: str, chinese: bool) -> str | None:
        """The TN engine's output, or None when it raised (the official code catches everything)."""
        engine = get_engine(self.backend, "zh" if chinese else "en", self.cache_dir)  # missing package: error
        try:
            return engine(text)
        except Exception:
            log.warning("%s text normalisation failed; %s", "Chinese" if chinese else "English",
                        "using an empty result" if chinese else "keeping the text as is", exc_info=True)
            return None

    def _finish(self, result: str | None, prepared: _Prepared) -> str:
        """TN output (None: it failed) → normalised text: restore spans, map punctuation."""
        failed = result is None
        if failed:  # official: zh gives "", en keeps the text from before protection
            result = prepared.fallback
        for placeholder, original in prepared.restore:
            result = result.replace(placeholder, original)
        if not failed:
            result = TECH_RESTORE.sub("-", result)
        table, pattern = (PUNCTUATION_ZH, _PUNCT_ZH_RE) if prepared.chinese else (PUNCTUATION, _PUNCT_RE)
        result = pattern.sub(lambda m: table[m.group(0)], result)
        for placeholder, original in prepared.pronunciations:
            result = result.replace(placeholder, original)
        return result

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
