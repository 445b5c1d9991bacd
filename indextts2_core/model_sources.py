"""Find the complete IndexTTS model sets a user already has, wherever other tools put them.

Given base folders (ComfyUI passes its models folder and the folders registered for `indextts2`;
the CLI passes `--models`), these places are looked at:

* `B`, `B/indextts2` and their sub-folders: the pack layout (`IndexTTS-2/`, `IndexTTS-2.5/` beside
  `w2v-bert-2.0/`, `MaskGCT/`, `campplus/`, `bigvgan_v2_22khz_80band_256x/`) or an official folder
  (`config.yaml` + `hf_cache/`);
* `B/checkpoints`: the official repository's folder;
* `B/TTS/IndexTTS` and `B/TTS`: TTS-Audio-Suite (`models/TTS/IndexTTS/IndexTTS-2/` beside its helper
  folders, or the older `models/TTS/IndexTTS-2/` beside `models/TTS/w2v-bert-2.0/`);
* the Hugging Face hub cache (`HF_HUB_CACHE`, `HF_HOME`, ...): `models--IndexTeam--IndexTTS-2/...`.

A helper model missing from a set's own layout is taken from any of these places that holds it
complete, so a set may combine folders (e.g. IndexTTS-2 from TTS-Audio-Suite and w2v-BERT from the
HF cache). Only complete sets are returned; nothing is read beyond file names and config.yaml.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .config import ConfigError
from .model_files import (MAIN_REPOS, PACK_DIRS, VERSIONS, HELPER_REPOS, ModelPaths, ModelVersionError,
                          cache_helpers, default_search, helper_places, hub_cache_dir, snapshot_dir)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSet:
    """One complete model set: a short human label (unique in one listing) and its resolved paths."""

    label: str  # e.g. "IndexTTS-2 · models/TTS/IndexTTS (TTS-Audio-Suite)"
    paths: ModelPaths

    @property
    def version(self) -> str:
        return self.paths.version

    @property
    def layout(self) -> str:
        return self.paths.layout

    @property
    def folder(self) -> Path:
        """The IndexTeam model folder (config.yaml, gpt.pth, ...)."""
        return self.paths.indextts2_dir


def find_model_sets(bases: Iterable[str | Path], *, hf_cache: bool | str | Path = True,
                    include_t2e: bool = False) -> list[ModelSet]:
    """Every complete IndexTTS-2 / IndexTTS-2.5 set under `bases` (and in the HF cache when
    `hf_cache` is True, or in that hub cache folder when it is a path). `include_t2e`: only sets
    that also hold the Qwen emotion-from-text model. Order: bases in order, the HF cache last."""
    candidates = _candidate_roots(bases)
    hub = hub_cache_dir() if hf_cache is True else Path(hf_cache).expanduser() if hf_cache else None
    places = [place for root, _ in candidates for place in helper_places(root)]
    if hub is not None:
        places.append(cache_helpers(hub))
    found: list[ModelSet] = []
    seen: set[Path] = set()

    def add(label: str, make) -> None:
        try:
            paths = make()
        except (ConfigError, ModelVersionError, OSError) as e:
            log.warning("IndexTTS model folder skipped: %s", e)
            return
        key = paths.indextts2_dir.resolve()
        if key in seen or paths.missing(include_t2e):
            return
        seen.add(key)
        found.append(ModelSet(label, paths))

    for root, base in candidates:
        where = _where(root, base)
        if (root / "config.yaml").is_file() or (root / "hf_cache").is_dir():
            add(f"{where} (official layout)",
                lambda: ModelPaths.locate(root, search=default_search(root, hub) + places))
            continue
        for version in VERSIONS:
            main = root / PACK_DIRS[MAIN_REPOS[version]]
            if main.is_dir():
                add(where, lambda: ModelPaths.locate(root, version, search=default_search(main, hub) + places))
    if hub is not None:
        for version in VERSIONS:
            snap = snapshot_dir(hub, MAIN_REPOS[version])
            if snap is not None:
                add("Hugging Face cache", lambda: _cache_set(hub, snap, version, places))
    return _labelled(found)


def find_model_set(bases: Iterable[str | Path], label: str, **kwargs) -> ModelSet:
    """The set `find_model_sets(bases, **kwargs)` lists under `label`; ValueError naming the choices."""
    sets = find_model_sets(bases, **kwargs)
    for s in sets:
        if s.label == label:
            return s
    choices = ", ".join(repr(s.label) for s in sets) or "none"
    raise ValueError(f"no complete IndexTTS model set {label!r} was found (found: {choices})")


def _cache_set(hub: Path, snap: Path, version: str, places: list[dict]) -> ModelPaths:
    revisions = {MAIN_REPOS[version]: snap.name}
    for repo in HELPER_REPOS.values():
        helper = snapshot_dir(hub, repo)
        if helper is not None:
            revisions[repo] = helper.name
    return ModelPaths.build(snap, root=hub, layout="hf-cache", own=cache_helpers(hub), version=version,
                            search=places, revisions=revisions)


def _candidate_roots(bases: Iterable[str | Path]) -> list[tuple[Path, Path]]:
    """(folder, the base it came from) for every place a set may start, each folder once."""
    out, seen = [], set()

    def add(folder: Path, base: Path) -> None:
        try:
            if not folder.is_dir() or folder.name.startswith("."):
                return
            key = folder.resolve()
        except OSError:
            return
        if key not in seen:
            seen.add(key)
            out.append((folder, base))

    for base in bases:
        base = Path(base).expanduser()
        fixed = [base, base / "indextts2", base / "checkpoints", base / "TTS" / "IndexTTS", base / "TTS"]
        for folder in fixed:
            add(folder, base)
        for parent in (base, base / "indextts2"):
            if parent.is_dir():
                for sub in sorted(parent.iterdir()):
                    if sub.name not in PACK_DIRS.values():  # a pack root's own folders are not roots
                        add(sub, base)
    return out


def _where(root: Path, base: Path) -> str:
    try:
        rel = root.relative_to(base)
    except ValueError:
        rel = None
    text = "/".join((base.name or str(base),) + rel.parts) if rel is not None else str(root)
    if root.name == "TTS" or (root.name == "IndexTTS" and root.parent.name == "TTS"):
        text += " (TTS-Audio-Suite)"
    return text


def _labelled(found: list[ModelSet]) -> list[ModelSet]:
    """Prefix the version; where two labels still coincide, add the folder."""
    out = [ModelSet(f"IndexTTS-{s.version} · {s.label}", s.paths) for s in found]
    labels = [s.label for s in out]
    return [ModelSet(f"{s.label} [{s.folder}]", s.paths) if labels.count(s.label) > 1 else s for s in out]
