"""Fetch exactly the model files the pipeline reads, only when asked (CLI `download`, a node option).

Files come through `huggingface_hub`, one by one, honouring `HF_HUB_OFFLINE`, `HF_ENDPOINT`, tokens
and the HF cache:

* a file already in place, or a helper model found complete elsewhere (`ModelPaths` search places,
  e.g. the HF cache or TTS-Audio-Suite's folders), is never touched;
* a file of the chosen repository already in the HF cache is hard-linked (or copied) from there;
* otherwise it is downloaded into `ROOT/.indextts2-download/` (same file system as its target) and
  renamed into place when complete, so the models folder never holds a partial file. That folder
  (hub locks, `.incomplete` files) is removed when the run ends, however it ends, and a later run
  removes what a killed one left. One run at a time per folder (a lock in that folder).

Before the first download, one request with a short timeout checks that the hub answers (and asks
each file's size for the progress callback): with no network the run fails in seconds, naming every
missing file, where to put it and where to get it.

`convert_to_safetensors` optionally writes `.safetensors` copies of the pickled checkpoints next to
them (originals kept); `model_files` then prefers those.
"""

from __future__ import annotations

import dataclasses
import errno
import inspect
import logging
import os
import shutil
from pathlib import Path
from typing import Callable

from .model_files import (HELPERS, PACK_DIRS, HubFile, ModelFilesError, ModelPaths, download_command,
                          helper_complete, hub_cache_dir, prefer_safetensors, snapshot_dir)

log = logging.getLogger(__name__)

# metadata marking a safetensors file converted from a nested torch pickle (keys joined with "/")
NESTED_KEY = "indextts2.nested"
STAGING = ".indextts2-download"
DEFAULT_ENDPOINT = "https://huggingface.co"
# errors of the local disk, never taken for "no network"
LOCAL_ERRNOS = {errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EROFS, errno.EDQUOT, errno.EISDIR, errno.ENOTDIR,
                errno.EEXIST, errno.ENAMETOOLONG}
NETWORK_MODULES = ("httpx", "httpcore", "requests", "urllib3", "aiohttp", "socket", "ssl")

Progress = Callable[[int, int], None]


class DownloadError(ModelFilesError):
    """Files could not be fetched; the message lists each one with its place and its URL."""


def hub_offline() -> bool:
    """HF_HUB_OFFLINE as huggingface_hub reads it (also re-read from the environment)."""
    if _env_flag("HF_HUB_OFFLINE"):
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(constants.HF_HUB_OFFLINE)


def hub_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def file_url(f: HubFile) -> str:
    return f"{hub_endpoint()}/{f.repo}/resolve/{f.revision}/{f.filename}"


def download_models(root: str | Path | ModelPaths, include_t2e: bool = False,
                    progress: bool | Progress = True, convert_safetensors: bool = False, *,
                    version: str | None = None, search=None, timeout: float = 10.0) -> ModelPaths:
    """Make every file the pipeline needs present under `root`; return the resolved paths.

    `root`: a models folder (pack or official layout; created if absent) or a `ModelPaths` (e.g. a
    set found by `model_sources.find_model_sets`), completed in its own layout. `version`: "2"
    (default for an empty folder) or "2.5". `include_t2e`: also the Qwen emotion-from-text model.
    `progress`: True for huggingface_hub's bars on stderr, False for none, or a callback
    `(bytes_done, bytes_total)` over the files being downloaded (called from this thread; an
    exception it raises, e.g. an interrupt, stops the run and cleans up). `timeout`: seconds for
    each request to the hub before it counts as unreachable.
    Raises `DownloadError` naming every file that could not be obtained, and why.
    """
    if isinstance(root, ModelPaths):
        paths = root
        if version is not None and version != paths.version:
            raise ValueError(f"version {version} asked for an IndexTTS-{paths.version} model set")
    else:
        root = Path(root).expanduser()
        paths = ModelPaths.locate(root, version, search=search)
    if paths.layout != "hf-cache":
        paths.root.mkdir(parents=True, exist_ok=True)
    run = _Run(paths, progress, timeout)
    with _staging(paths):
        _clean_stale(paths, include_t2e)
        # config.yaml first: it names the other files of the model folder
        config = [f for f in paths.missing_files(include_t2e) if f.filename == "config.yaml"]
        if config and run.fetch(config):
            paths = _relocate(paths, search)
        run.fetch([f for f in paths.hub_files(include_t2e)
                   if not prefer_safetensors(f.local).is_file() and f.filename != "config.yaml"])
    if run.failed:
        raise DownloadError(run.report(paths, include_t2e))
    paths = _relocate(paths, search)
    if convert_safetensors:
        # BigVGAN (read by name) and 2.5's codec.pth (optimizer state beside the weights) stay as they are
        for path in (paths.gpt, paths.s2mel, paths.w2v_stats, paths.spk_matrix, paths.emo_matrix, paths.campplus):
            if path.parent.resolve().is_relative_to(paths.root.resolve()):  # never into other tools' folders
                convert_to_safetensors(path)
        paths = _relocate(paths, search)
    return paths


def _relocate(paths: ModelPaths, search) -> ModelPaths:
    """The same set after files arrived (config.yaml may rename files); complete helpers stay where they are."""
    if paths.layout == "hf-cache":
        return paths
    fresh = ModelPaths.locate(paths.root, paths.version, search=search)
    keep = {k: getattr(paths, k) for k in HELPERS
            if getattr(fresh, k) is not None and helper_complete(k, getattr(paths, k))}
    return dataclasses.replace(fresh, **keep)


class _Run:
    """One download run: where the hub stands (offline, unreachable), what failed and why, progress."""

    def __init__(self, paths: ModelPaths, progress, timeout: float):
        self.paths, self.progress, self.timeout = paths, progress, timeout
        self.failed: list[tuple[HubFile, str]] = []
        self.unreachable: str | None = None  # why the hub could not be reached
        self.offline = hub_offline()
        self.hub = hub_cache_dir()

    def fetch(self, files: list[HubFile]) -> bool:
        """Get `files` (HF cache first, then the hub); False when a required one failed."""
        before = len(self.failed)
        sizes = {}
        for f in [f for f in files if not self._from_cache(f)]:  # one metadata request each: reachable? size?
            if self._blocked():
                self._fail(f, self._blocked())
                continue
            size = self._call(lambda: _metadata_size(f, self.timeout), f)
            if size is not _FAILED:
                sizes[f] = size
        bar = _ByteProgress(self.progress, sum(s or 1 for s in sizes.values()))  # size unknown: one unit
        for f, size in sizes.items():
            if self._blocked():
                self._fail(f, self._blocked())
                continue
            log.info("%s: %s (%s)", f.repo, f.filename, _size(size))
            self._call(lambda: self._download(f, bar, size), f)
        return len(self.failed) == before

    def _fail(self, f: HubFile, why: str) -> None:
        if not f.optional:
            self.failed.append((f, why))

    def _blocked(self) -> str | None:
        if self.offline:
            return "offline"
        return self.unreachable and "unreachable"

    def _from_cache(self, f: HubFile) -> bool:
        """Link or copy `f` from the HF cache when a snapshot there has it."""
        if self.paths.layout == "hf-cache":
            return False
        snap = snapshot_dir(self.hub, f.repo)
        if snap is None or not (snap / f.filename).is_file():
            return False
        _place(snap / f.filename, f.local, self.paths)
        log.info("%s: %s taken from the Hugging Face cache", f.repo, f.filename)
        return True

    def _call(self, action, f: HubFile):
        """Run one hub request; a failure is recorded (and the hub marked offline or unreachable) and
        gives _FAILED. Errors that are not the hub's (a full disk, a bug) propagate."""
        try:
            return action()
        except Exception as e:  # noqa: BLE001 - sorted by _classify, the rest re-raised
            kind = _classify(e)
            if kind is None:
                raise
            if kind == "absent" and f.optional:
                log.info("%s: %s is not on the hub; skipped (optional)", f.repo, f.filename)
            elif kind in ("unreachable", "unserved"):
                what = "could not be reached" if kind == "unreachable" else "did not serve the files"
                self.unreachable = self.unreachable or f"{what} ({type(e).__name__}: {_first_line(e)})"
                kind = "unreachable"
            elif kind == "offline":
                self.offline = True
            reasons = {"absent": "not on the hub", "denied": "access denied", "http": f"hub error: {_first_line(e)}"}
            self._fail(f, reasons.get(kind, kind))
            return _FAILED

    def _download(self, f: HubFile, bar: "_ByteProgress", size: int | None) -> None:
        from huggingface_hub import hf_hub_download

        kwargs = {"revision": f.revision, "etag_timeout": self.timeout}
        if _accepts(hf_hub_download, "endpoint"):
            kwargs["endpoint"] = hub_endpoint()
        tqdm_class = bar.tqdm_class(self.progress)
        if tqdm_class is not None and _accepts(hf_hub_download, "tqdm_class"):
            kwargs["tqdm_class"] = tqdm_class
        if self.paths.layout == "hf-cache":  # complete the snapshot where it is
            hf_hub_download(f.repo, f.filename, cache_dir=self.paths.root, **kwargs)
        else:
            local_dir = _staging_dir(self.paths) / PACK_DIRS.get(f.repo, f.repo.replace("/", "--"))
            got = Path(hf_hub_download(f.repo, f.filename, local_dir=local_dir, **kwargs))
            f.local.parent.mkdir(parents=True, exist_ok=True)
            os.replace(got, f.local)
        bar.file_done(size)

    def report(self, paths: ModelPaths, include_t2e: bool) -> str:
        failed = [f for f, _ in self.failed]
        lines = "\n".join(f"  {f.local}\n      <- {file_url(f)}" for f in failed)
        count = f"{len(failed)} IndexTTS-{paths.version} model file(s)"
        where = f"under {paths.root} ({paths.layout} layout)"
        command = download_command(paths.root, paths.version, include_t2e)
        reasons = {why for _, why in self.failed}
        if "offline" in reasons:
            set_by = "HF_HUB_OFFLINE is set" if _env_flag("HF_HUB_OFFLINE") else "huggingface_hub is in offline mode"
            head = (f"{set_by}, so nothing was downloaded; {count} are neither {where} nor in the Hugging Face "
                    f"cache ({self.hub}):")
            tail = ("Place each file at its path by hand, or with network access and HF_HUB_OFFLINE unset run:\n"
                    f"  {command}")
        elif "unreachable" in reasons:
            head = f"The Hugging Face hub at {hub_endpoint()} {self.unreachable}; {count} are missing {where}:"
            tail = ("Place each file at its path by hand (download it from the URL shown), or when the hub is "
                    f"reachable run:\n  {command}")
        else:
            detail = "; ".join(sorted(reasons))
            head = f"{count} could not be downloaded {where} ({detail}):"
            tail = ("For a gated or private repository log in (`hf auth login`) or set HF_TOKEN; "
                    f"place the files by hand, or run again:\n  {command}")
        return f"{head}\n{lines}\n{tail}"


_FAILED = object()


def _metadata_size(f: HubFile, timeout: float) -> int | None:
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    url = hf_hub_url(f.repo, f.filename, revision=f.revision, endpoint=hub_endpoint())
    kwargs = {"timeout": timeout}
    if _accepts(get_hf_file_metadata, "endpoint"):
        kwargs["endpoint"] = hub_endpoint()
    return getattr(get_hf_file_metadata(url, **kwargs), "size", None)


def _classify(e: BaseException) -> str | None:
    """'unreachable' (no answer) | 'unserved' (an answer that is not the file) | 'offline' | 'absent' |
    'denied' | 'http' (another HTTP error), or None for errors that are not the hub's (a full disk)."""
    try:
        from huggingface_hub import errors as hf
    except ImportError:  # pragma: no cover - huggingface_hub < 0.24 keeps them in utils
        from huggingface_hub import utils as hf
    offline = getattr(hf, "OfflineModeIsEnabled", ())
    if offline and isinstance(e, offline):
        return "offline"
    if isinstance(e, hf.LocalEntryNotFoundError):  # the hub did not answer and no local copy exists
        return "unreachable"
    if isinstance(e, hf.GatedRepoError):
        return "denied"
    if isinstance(e, (hf.EntryNotFoundError, hf.RepositoryNotFoundError, hf.RevisionNotFoundError)):
        return "absent"
    if isinstance(e, hf.HfHubHTTPError):
        status = getattr(getattr(e, "response", None), "status_code", None)
        if status in (401, 403):
            return "denied"
        if status == 404 or status == 429 or (status or 0) >= 500:
            return "unserved"  # a bare 404 is not the hub's answer for a missing file (a proxy, a wrong
        return "http"  # HF_ENDPOINT); 429 and 5xx: the hub is not serving now, the next files would fail too
    if isinstance(e, (ConnectionError, TimeoutError)):
        return "unreachable"
    if any(c.__module__.split(".")[0].startswith(NETWORK_MODULES) for c in type(e).__mro__):
        return "unreachable"  # httpx / requests / urllib3 transport errors (also renamed builds: httpx2)
    if isinstance(e, OSError) and e.errno not in LOCAL_ERRNOS and not isinstance(e, FileNotFoundError):
        return "unreachable"
    return None


class _ByteProgress:
    """Byte counts of one batch for a `(done, total)` callback."""

    def __init__(self, progress, total: int):
        self.callback = progress if callable(progress) else None
        self.total, self.done, self.file_start = total, 0, 0
        if self.callback is not None and total:
            self.callback(0, total)

    def tqdm_class(self, progress):
        """A tqdm class for huggingface_hub: forwards bytes to the callback, or stays silent."""
        if progress is True:
            return None
        from tqdm.auto import tqdm

        owner = self

        class Bytes(tqdm):
            def __init__(self, *args, **kwargs):
                kwargs.pop("name", None)
                kwargs["disable"] = True
                super().__init__(*args, **kwargs)
                owner.done = owner.file_start + int(kwargs.get("initial") or 0)

            def update(self, n=1):
                owner.advance(int(n or 0))

        return Bytes

    def advance(self, n: int) -> None:
        self.done += n
        if self.callback is not None and self.total:
            self.callback(min(self.done, self.total), self.total)

    def file_done(self, size: int | None) -> None:
        self.file_start += size or 1
        self.done = self.file_start
        if self.callback is not None and self.total:
            self.callback(min(self.done, self.total), self.total)


def _staging_dir(paths: ModelPaths) -> Path:
    return paths.root / STAGING


class _staging:
    """Hold `ROOT/.indextts2-download/lock` for the run (one run per folder); empty the folder before
    (what a killed run left) and remove it after, however the run ends."""

    def __init__(self, paths: ModelPaths):
        self.paths, self.lock = paths, None

    def __enter__(self):
        if self.paths.layout == "hf-cache":
            return self
        from filelock import FileLock, Timeout

        folder = _staging_dir(self.paths)
        folder.mkdir(parents=True, exist_ok=True)
        self.lock = FileLock(str(folder / "lock"), timeout=0)
        try:
            self.lock.acquire()
        except Timeout:
            self.lock = None
            raise DownloadError(f"another download into {self.paths.root} is running (it holds {folder / 'lock'}); "
                                f"wait for it to finish or stop it") from None
        _empty(folder, keep="lock")
        return self

    def __exit__(self, *exc):
        if self.lock is None:
            return False
        folder = _staging_dir(self.paths)
        _empty(folder, keep="lock")
        self.lock.release()
        for p in (folder / "lock", folder):
            try:
                p.unlink() if p.is_file() else p.rmdir()
            except OSError:  # another run took the folder meanwhile
                pass
        return False


def _empty(folder: Path, keep: str) -> None:
    for p in folder.iterdir():
        if p.name == keep:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def _clean_stale(paths: ModelPaths, include_t2e: bool) -> None:
    """Remove temporary files that older or killed runs left next to the model files: `x.part` and
    `.x.part`, and huggingface_hub's `.cache/huggingface/` (locks, `.incomplete`) inside pack folders."""
    if paths.layout == "hf-cache":
        return
    root = paths.root.resolve()
    for f in paths.hub_files(include_t2e=True):
        if not f.local.parent.resolve().is_relative_to(root):
            continue
        for target in {f.local, f.local.with_suffix(".safetensors")}:
            for tmp in (target.with_name(target.name + ".part"), target.with_name(f".{target.name}.part")):
                if tmp.is_file():
                    log.info("removing %s, left by an interrupted run", tmp)
                    tmp.unlink(missing_ok=True)
    for folder in set(PACK_DIRS.values()):
        leftovers = paths.root / folder / ".cache" / "huggingface"
        if leftovers.is_dir():
            _remove_hub_leftovers(leftovers)


def _remove_hub_leftovers(folder: Path) -> None:
    from filelock import FileLock, Timeout

    for lock_path in folder.rglob("*.lock"):
        lock = FileLock(str(lock_path), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise DownloadError(f"a download is writing into {folder.parent.parent} ({lock_path} is held); "
                                f"wait for it to finish or stop it") from None
        lock.release()
    log.info("removing %s, left by an interrupted download", folder)
    shutil.rmtree(folder, ignore_errors=True)
    cache = folder.parent
    if cache.is_dir() and not any(cache.iterdir()):
        cache.rmdir()


def _place(src: Path, dst: Path, paths: ModelPaths) -> None:
    """Hard-link `src` to `dst` (same file system), else copy it through the staging folder."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = _staging_dir(paths) / f"place-{os.getpid()}-{dst.name}"
    tmp.unlink(missing_ok=True)
    try:
        os.link(src.resolve(), tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _accepts(fn, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in ("1", "ON", "YES", "TRUE")


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


def _size(n: int | None) -> str:
    if not n:
        return "size unknown"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


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
    tmp = out.with_name(f".{out.name}.part")  # a killed run's leftover is removed by the next download
    try:
        save_file(flat, str(tmp), metadata={"format": "pt", NESTED_KEY: "/" if nested else ""})
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
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
