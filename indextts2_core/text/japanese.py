"""Japanese morpheme spacing of the IndexTTS-2.5 front end (spec 2.5 §3.7).

The text is split on runs of ASCII spaces (kept as they are); every other part is analysed by MeCab
(fugashi with the unidic-lite dictionary) and replaced by its morpheme surfaces joined by single
spaces. With the official `g2p_ratio = 0` no morpheme is replaced by its reading, so readings are
not needed; the official code's one `random.random()` call per part with a kanji is not reproduced
(it only moves Python's global RNG).

fugashi and unidic-lite are needed for Japanese only (the official code needs them for every
language): `pip install fugashi unidic-lite`; without them a Japanese text is a clear ImportError.
"""

from __future__ import annotations

import re
import threading

INSTALL_HINT = "pip install fugashi unidic-lite"
_SPACES = re.compile(r"( +)")


class JapaneseSegmenter:
    """`segment(text) -> text` with spaces between morphemes; the tagger is built on first use."""

    def __init__(self):
        self._tagger = None
        self._lock = threading.Lock()

    def _get_tagger(self):
        with self._lock:
            if self._tagger is None:
                self._tagger = build_tagger()
        return self._tagger

    def segment(self, text: str) -> str:
        tagger = self._get_tagger()
        parts = _SPACES.split(text)
        return "".join(part if not part.strip() else " ".join(w.surface for w in tagger(part)) for part in parts)


def build_tagger():
    """fugashi's Tagger on unidic-lite (its default dictionary), or an ImportError saying what to install."""
    try:
        import fugashi
    except ImportError as e:
        raise ImportError(f"Japanese text needs the MeCab analyser fugashi and its dictionary: {INSTALL_HINT}") from e
    try:
        import unidic_lite  # noqa: F401  (fugashi finds it by itself; imported to name it when missing)
    except ImportError as e:
        raise ImportError(f"Japanese text needs the unidic-lite dictionary for fugashi: {INSTALL_HINT}") from e
    try:
        return fugashi.Tagger()
    except RuntimeError as e:  # a broken dictionary install
        raise ImportError(f"fugashi could not load its dictionary ({e}); reinstall: {INSTALL_HINT}") from e
