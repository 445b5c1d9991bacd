"""Fetch exactly the model files the pipeline reads, only when asked (CLI `download`, a node option).

Files come through `huggingface_hub.hf_hub_download`, one by one, so downloads resume, show
progress bars and honour `HF_HUB_OFFLINE`, `HF_ENDPOINT`, tokens and the HF cache:

* a file already at its place in the models folder is never touched (idempotent, no network);
* a file already in the HF cache is hard-linked (or copied) from there;
* otherwise, in the pack layout, it is downloaded straight into the models folder (`local_dir`);
  in the official layout (renamed `hf_cache/` paths) into the HF cache, then linked or copied.

`convert_to_safetensors` optionally writes `.safetensors` copies of the pickled checkpoints next to
them (originals kept); `model_files` then prefers those.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Callable

from .model_files import PACK_DIRS, HubFile, ModelFilesError, ModelPaths

log = logging.getLogger(__name__)

# metadata marking a safetensors file converted from a nested torch pickle (keys joined with "/")
NESTED_KEY = "indextts2.nested"


def hub_offline() -> bool:
    """HF_HUB_OFFLINE as huggingface_hub reads it (also re-read from the environment)."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")
    return bool(constants.HF_HUB_OFFLINE) or env


def download_models(root: str | Path, include_t2e: bool = True,
                    progress: bool | Callable[[int, int], None] = True,
                    convert_safetensors: bool = False) -> ModelPaths:
    """Make every file `ModelPaths.locate(root)` needs present; return the resolved paths.

    `progress`: True for huggingface_hub's progress bars, or a callback `(files_done, total)`.
    Raises `ModelFilesError` naming every file that could not be obtained (e.g. offline).
    """
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    paths = ModelPaths.locate(root)
    # config.yaml first: it names the other IndexTTS-2 files
    failed = _fetch_all([f for f in paths.hub_files(include_t2e) if f.filename == "config.yaml"], paths, progress)
    if not failed:
        paths = ModelPaths.locate(root)
        failed = _fetch_all(paths.hub_files(include_t2e), paths, progress)
    if failed:
        lines = "\n".join(f"  {f.repo}: {f.filename} -> {f.local}" for f in failed)
        why = ("HF_HUB_OFFLINE is set and these files are neither in the models folder nor in the "
               "Hugging Face cache" if hub_offline() else "these files could not be downloaded")
        raise ModelFilesError(f"{why}:\n{lines}\nUnset HF_HUB_OFFLINE (or copy the files there) and run "
                              f'python -m indextts2_core download --models "{root}"')
    if convert_safetensors:
        # BigVGAN is left as is: its loader reads bigvgan_generator.pt by name
        for path in (paths.gpt, paths.s2mel, paths.w2v_stats, paths.spk_matrix, paths.emo_matrix, paths.campplus):
            convert_to_safetensors(path)
        paths = ModelPaths.locate(root)
    return paths


def _fetch_all(files: list[HubFile], paths: ModelPaths, progress) -> list[HubFile]:
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    callback = progress if callable(progress) else None
    failed = []
    if progress is not True:
        disable_progress_bars()
    try:
        for i, f in enumerate(files):
            if not _present(f.local):
                log.info("[%d/%d] %s: %s", i + 1, len(files), f.repo, f.filename)
                if not _fetch(f, paths) and not f.optional:
                    failed.append(f)
            if callback is not None:
                callback(i + 1, len(files))
    finally:
        if progress is not True:
            enable_progress_bars()
    return failed


def _present(path: Path) -> bool:
    from .model_files import prefer_safetensors

    return prefer_safetensors(path).is_file()


def _fetch(f: HubFile, paths: ModelPaths) -> bool:
    """Put one file in place; False when it cannot be had (offline, or an optional file the hub lacks)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import EntryNotFoundError, LocalEntryNotFoundError

    try:  # already in the HF cache: no network
        _place(Path(hf_hub_download(f.repo, f.filename, local_files_only=True)), f.local)
        return True
    except LocalEntryNotFoundError:
        pass
    if hub_offline():
        return False
    local_dir = paths.root / PACK_DIRS[f.repo]
    try:
        if paths.layout == "pack" and f.local == local_dir / f.filename:
            hf_hub_download(f.repo, f.filename, local_dir=local_dir)  # resumable, straight into place
        else:
            _place(Path(hf_hub_download(f.repo, f.filename)), f.local)
        return True
    except LocalEntryNotFoundError:  # offline after all (network unreachable)
        log.warning("%s: %s could not be downloaded (offline?)", f.repo, f.filename)
        return False
    except EntryNotFoundError:
        if f.optional:
            log.info("%s: %s is not on the hub; skipped (optional)", f.repo, f.filename)
        else:
            log.error("%s: %s is not on the hub", f.repo, f.filename)
        return False


def _place(src: Path, dst: Path) -> None:
    """Hard-link `src` to `dst` (same file system), else copy atomically."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".part")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src.resolve(), tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    tmp.replace(dst)


def convert_to_safetensors(path: Path) -> Path:
    """Write `path.with_suffix('.safetensors')` once (nested dicts flattened with '/'); keep the original."""
    from safetensors.torch import save_file

    from .checkpoints import read_checkpoint

    path = Path(path)
    out = path.with_suffix(".safetensors")
    if path.suffix == ".safetensors" or out.is_file():
        return out
    flat, nested = {}, False

    def walk(prefix: str, node) -> None:
        nonlocal nested
        for key, value in node.items():
            name = f"{prefix}/{key}" if prefix else key
            if isinstance(value, dict):
                nested = True
                walk(name, value)
            elif hasattr(value, "contiguous"):
                flat[name] = value.detach().contiguous()
            else:
                log.debug("%s: non-tensor entry %s dropped in the safetensors copy", path.name, name)

    walk("", read_checkpoint(path))
    flat = _unshare(flat)
    tmp = out.with_name(out.name + ".part")
    save_file(flat, str(tmp), metadata={"format": "pt", NESTED_KEY: "/" if nested else ""})
    tmp.replace(out)
    log.info("wrote %s", out)
    return out


def _unshare(tensors: dict) -> dict:
    """safetensors refuses tensors sharing storage: clone the second and later views."""
    seen, out = set(), {}
    for k, t in tensors.items():
        ptr = t.untyped_storage().data_ptr() if t.numel() else None
        out[k] = t.clone() if ptr in seen else t
        if ptr is not None:
            seen.add(ptr)
    return out
