"""The Chinese and English text-normalisation (TN) engines, loaded lazily and cached per process.

Two interchangeable backends implement the same WeTextProcessing grammars (spec §3.2, Q23):

* ``"wetext"``: the `wetext` package (kaldifst runtime, FSTs shipped inside the wheel). Wheels
  exist for Linux, Windows and macOS; nothing is compiled or downloaded at run time.
* ``"wetextprocessing"``: the `tn` package of WeTextProcessing (pynini; Linux wheels only). Its
  Chinese grammar must be compiled for the options the official pipeline uses (the FSTs shipped
  in the package are built with other options); that takes ~8 s and ~0.9 GB once, the result is
  kept in a cache folder.

"auto" (the default) picks WeTextProcessing where it is installed (the requirements install it on
Linux x86-64, the only platform with pynini wheels) and wetext elsewhere, which is also the split
the official pipeline makes. On the 279 public parity cases WeTextProcessing 1.2.0 reproduces every
field; wetext 0.1.8 differs in 7 cases (its English grammar is a newer build: "one hundred and
thirty eight" vs "one thirty eight", "COVID-nineteen" vs "COVID-one nine", ...).

Both are called with the official options: Chinese keeps interjections and erhua, converts
traditional → simplified and full-width → half-width; English uses the default grammar.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

BACKENDS = ("auto", "wetextprocessing", "wetext")
DEFAULT_BACKEND = "auto"

_lock = threading.Lock()
_engines: dict[tuple, Callable[[str], str]] = {}


class EngineUnavailable(RuntimeError):
    """The requested normalisation backend is not installed."""


def default_cache_dir() -> Path:
    """Where compiled WeTextProcessing grammars are kept (only that backend compiles anything)."""
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    return Path(base) / "indextts2_comfy" / "tn"


def resolve_backend(backend: str) -> str:
    """"auto" → "wetextprocessing" if `tn` and pynini are importable, else "wetext" (no import)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown text normalisation backend {backend!r}; choose one of {BACKENDS}")
    if backend != "auto":
        return backend
    if importlib.util.find_spec("tn") is not None and importlib.util.find_spec("pynini") is not None:
        return "wetextprocessing"
    return "wetext"


def get_engine(backend: str, lang: str, cache_dir: Path | None = None) -> Callable[[str], str]:
    """`normalize(text) -> str` of one backend/language, built on first use and then reused."""
    backend = resolve_backend(backend)
    if lang not in ("zh", "en"):
        raise ValueError(f"unknown normalisation language {lang!r}")
    key = (backend, lang, str(cache_dir) if backend == "wetextprocessing" else None)
    with _lock:
        fn = _engines.get(key)
        if fn is None:
            build = _wetext if backend == "wetext" else _wetextprocessing
            fn = build(lang, cache_dir)
            _engines[key] = fn
    return fn


def _wetext(lang: str, cache_dir: Path | None) -> Callable[[str], str]:
    try:
        from wetext import Normalizer
    except ImportError as e:
        raise EngineUnavailable("text normalisation needs the 'wetext' package: pip install wetext") from e
    if lang == "zh":
        # wetext's defaults differ from WeTextProcessing's; these are the TN options the
        # official Linux pipeline runs with.
        engine = Normalizer(lang="zh", operator="tn", remove_erhua=False, remove_interjections=False,
                            traditional_to_simple=True, full_to_half=True)
    else:
        engine = Normalizer(lang="en", operator="tn")
    log.info("loaded wetext %s normaliser", lang)
    return engine.normalize


def _wetextprocessing(lang: str, cache_dir: Path | None) -> Callable[[str], str]:
    try:
        import tn  # noqa: F401
    except ImportError as e:
        raise EngineUnavailable("the 'wetextprocessing' backend needs: pip install WeTextProcessing "
                                "(Linux only: it depends on pynini)") from e
    if lang == "en":
        from tn.english.normalizer import Normalizer as EnNormalizer

        return EnNormalizer().normalize  # the grammar shipped in the package
    from tn.chinese.normalizer import Normalizer as ZhNormalizer

    try:
        version = importlib.metadata.version("WeTextProcessing")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    folder = Path(cache_dir or default_cache_dir()) / f"zh-tn-{version}-keep-interjections-erhua"
    options = dict(remove_interjections=False, remove_erhua=False, overwrite_cache=False)
    if not (folder / "zh_tn_tagger.fst").is_file() or not (folder / "zh_tn_verbalizer.fst").is_file():
        log.info("compiling the WeTextProcessing Chinese grammar into %s (once, ~10 s)", folder)
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            # Build in a private folder and move it into place, so concurrent first runs never
            # read a half-written FST.
            tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=folder.parent))
        except OSError as e:  # read-only cache location: build for this process only
            log.warning("cannot write the grammar cache %s (%s); building in memory", folder, e)
            with tempfile.TemporaryDirectory() as scratch:
                return ZhNormalizer(cache_dir=scratch, **options).normalize
        try:
            ZhNormalizer(cache_dir=str(tmp), **options)
            try:
                tmp.rename(folder)
            except OSError:  # another process won the race; its result is equivalent
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return ZhNormalizer(cache_dir=str(folder), **options).normalize
