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
the official pipeline makes. The requirements pin the versions the official lock file installs
(WeTextProcessing 1.0.4.1, wetext 0.1.0): other versions read some texts differently.

Both are called with the official options of their platform: WeTextProcessing's Chinese grammar
keeps interjections and erhua (its own defaults convert traditional → simplified and full-width →
half-width); wetext is built with only `remove_erhua=False`, so its defaults apply (no
traditional → simplified, no full-width → half-width), exactly as the official Windows/macOS path.
English uses each package's default grammar.
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
ZH_FST_FILES = ("zh_tn_tagger.fst", "zh_tn_verbalizer.fst")
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


def skips_text_without_digits(backend: str) -> bool:
    """wetext returns a text without any digit (`\\d`) unchanged, in both languages, and applies its
    whole grammar (abbreviations, symbols such as C++ → C加加, spacing before punctuation) once the
    text has one; normalising a text in parts must therefore know whether the whole text has a digit
    (normalizer.py)."""
    return resolve_backend(backend) == "wetext"


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
        # the official Windows/macOS call: only remove_erhua is given, wetext's defaults do the rest
        engine = Normalizer(lang="zh", operator="tn", remove_erhua=False)
    else:
        engine = Normalizer(lang="en", operator="tn")
    log.info("loaded wetext %s normaliser", lang)
    return engine.normalize


def zh_cache_folder(cache_dir: Path | None) -> Path | None:
    """The compiled-grammar folder for the installed WeTextProcessing and pynini, or None when a
    version cannot be read. Keyed by both versions: a cache compiled by another version reads some
    texts differently (the official code reuses any cache it finds; we do not)."""
    try:
        versions = [importlib.metadata.version(p) for p in ("WeTextProcessing", "pynini")]
    except importlib.metadata.PackageNotFoundError:
        return None
    tag = "-".join(v.replace("/", "_") for v in versions)
    return Path(cache_dir or default_cache_dir()) / f"zh-tn-{tag}-keep-interjections-erhua"


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

    options = dict(remove_interjections=False, remove_erhua=False, overwrite_cache=False)
    folder = zh_cache_folder(cache_dir)
    if folder is not None and not all((folder / f).is_file() for f in ZH_FST_FILES):
        folder = _compile_zh(folder, ZhNormalizer, options)
    if folder is None:  # unknown versions or a read-only cache location: build for this process only
        with tempfile.TemporaryDirectory() as scratch:
            return ZhNormalizer(cache_dir=scratch, **options).normalize
    return ZhNormalizer(cache_dir=str(folder), **options).normalize


def _compile_zh(folder: Path, zh_normalizer, options: dict) -> Path | None:
    """Compile the Chinese grammar into `folder` (None if it cannot be written). Built in a private
    folder and moved into place, so concurrent first runs never read a half-written FST."""
    log.info("compiling the WeTextProcessing Chinese grammar into %s (once, ~10 s)", folder)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=folder.parent))
    except OSError as e:
        log.warning("cannot write the grammar cache %s (%s); building in memory", folder, e)
        return None
    try:
        zh_normalizer(cache_dir=str(tmp), **options)
        try:
            tmp.rename(folder)
        except OSError:  # another process won the race; its result is equivalent
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
