"""Reading checkpoint files safely and loading them strictly into modules.

* `.safetensors` through safetensors; `.pth/.pt/.bin` through `torch.load(weights_only=True)`
  (memory-mapped when the file is in torch's zip format). A pickle that tries to build anything
  but tensors and plain containers is refused.
* `load_strict` compares a state dict with a module key by key and shape by shape and raises one
  report naming every missing, unexpected and mis-shaped key. The only keys it lets through
  unloaded are those matched by an explicit `SkipList` that the model file declares and documents.
* Old-style weight norm (`weight_g` / `weight_v`) is folded into a plain `weight` at load time, so
  modules hold ordinary convolutions.
"""

from __future__ import annotations

import logging
import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

PICKLE_PROTO = b"\x80"  # PROTO opcode that opens every pickle of protocol 2 or later


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupt, unsafe, or does not match its module."""


@dataclass(frozen=True)
class SkipList:
    """Keys of one checkpoint file that the pack deliberately does not load.

    `patterns` are regular expressions matched against the full key (`re.fullmatch`). Every entry
    must be justified in `reason`: weights the v2 inference never runs, or deterministic buffers the
    module recomputes itself. Skipped keys may be present or absent in a file.
    """

    name: str
    patterns: tuple[str, ...]
    reason: str

    def matches(self, key: str) -> bool:
        return any(re.fullmatch(p, key) for p in self.patterns)


def read_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint file into a (possibly nested) dict of tensors without executing code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors import safe_open
        from safetensors.torch import load_file

        try:
            flat = load_file(str(path))
            with safe_open(str(path), "pt") as f:
                meta = f.metadata() or {}
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from e
        # copies of nested torch pickles (download --convert-safetensors) join the levels with "/"
        return _unflatten(flat) if meta.get("indextts2.nested") == "/" else flat
    try:
        mmap = zipfile.is_zipfile(path)  # torch's zip format can be memory-mapped, legacy pickles cannot
    except zipfile.BadZipFile as e:  # is_zipfile lets some damaged end records through as this
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint (a damaged zip archive: {e})") from e
    if not mmap:
        with open(path, "rb") as f:
            head = f.read(16)
        if head.startswith(b"PK"):
            raise CheckpointError(f"{path}: corrupt or truncated checkpoint (a damaged zip archive)")
        if not head.startswith(PICKLE_PROTO):  # torch writes pickle protocol 2 or later
            what = "an empty file" if not head else f"a file starting with {head!r}"
            raise CheckpointError(f"{path}: not a PyTorch checkpoint (refused: neither torch's zip format nor a "
                                  f"pickle; found {what})")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{path}: refused to load: the file asks for Python objects other than tensors and plain "
            f"containers (a damaged file, or one whose loading would execute code). Details: {e}") from e
    except RecursionError as e:
        raise CheckpointError(f"{path}: corrupt checkpoint (nested too deeply to read)") from e
    except Exception as e:  # noqa: BLE001 - a damaged pickle fails in many ways (KeyError, IndexError, struct...)
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({type(e).__name__}: {e})") from e
    if isinstance(obj, torch.Tensor):
        return {"": obj}  # bare tensor files (feat1.pt / feat2.pt)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors, found {type(obj).__name__}")
    return obj


def _unflatten(flat: dict) -> dict:
    out: dict = {}
    for key, value in flat.items():
        *levels, leaf = key.split("/")
        node = out
        for level in levels:
            node = node.setdefault(level, {})
        node[leaf] = value
    return out


def read_tensor(path: str | Path) -> torch.Tensor:
    """A file holding one bare tensor (feat1.pt, feat2.pt)."""
    obj = read_checkpoint(path)
    if list(obj) != [""]:
        raise CheckpointError(f"{path}: expected a single tensor, found a dict with keys {sorted(obj)[:5]}")
    t = obj[""].detach()
    if not t.is_floating_point():
        raise CheckpointError(f"{path}: expected a floating-point tensor, found {t.dtype}")
    if not torch.isfinite(t).all():
        raise CheckpointError(f"{path}: the tensor holds NaN or Inf values")
    return t


def select(ckpt: dict, *path: str, source: str = "checkpoint") -> dict:
    """Walk nested dicts (`select(ckpt, "net", "cfm")`), naming the missing level on error."""
    node = ckpt
    for i, key in enumerate(path):
        if not isinstance(node, dict) or key not in node:
            where = "/".join(path[:i]) or "top level"
            have = sorted(node)[:8] if isinstance(node, dict) else type(node).__name__
            raise CheckpointError(f"{source}: no entry '{key}' at {where} (found {have})")
        node = node[key]
    if not isinstance(node, dict):
        raise CheckpointError(f"{source}: '{'/'.join(path)}' is not a dict of tensors")
    return node


def strip_prefix(sd: dict, prefix: str) -> dict:
    """Remove `prefix` from every key that has it (e.g. DDP's `module.`)."""
    if prefix and all(k.startswith(prefix) for k in sd):
        return {k[len(prefix):]: v for k, v in sd.items()}
    return dict(sd)


def fold_weight_norm(sd: dict) -> dict:
    """Replace every `x.weight_g` / `x.weight_v` pair by `x.weight = g * v / ||v||` (norm over all dims but 0)."""
    out = {}
    for key, value in sd.items():
        if key.endswith(".weight_g"):
            stem = key[: -len("_g")]
            v = sd.get(stem + "_v")
            if v is None:
                raise CheckpointError(f"weight norm: '{key}' has no matching '{stem}_v'")
            g = value
            dims = tuple(range(1, v.dim()))
            norm = v.float().norm(dim=dims, keepdim=True) if dims else v.float().abs()
            out[stem] = (g.float() * v.float() / norm).to(v.dtype)
        elif key.endswith(".weight_v"):
            if key[: -len("_v")] + "_g" not in sd:
                raise CheckpointError(f"weight norm: '{key}' has no matching '{key[:-2]}_g'")
        else:
            out[key] = value
    return out


@dataclass
class KeyReport:
    """Outcome of matching a state dict against a module."""

    matched: list[str]
    missing: list[str]
    unexpected: list[str]
    mismatched: list[tuple[str, tuple, tuple]]  # key, expected shape, found shape
    skipped: list[str]

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self, name: str, limit: int = 20) -> str:
        lines = [f"{name}: {len(self.matched)} matched, {len(self.missing)} missing, "
                 f"{len(self.unexpected)} unexpected, {len(self.mismatched)} wrongly shaped"]
        for label, keys in (("missing", self.missing), ("unexpected", self.unexpected)):
            for k in keys[:limit]:
                lines.append(f"  {label}: {k}")
            if len(keys) > limit:
                lines.append(f"  ... and {len(keys) - limit} more {label}")
        for k, want, got in self.mismatched[:limit]:
            lines.append(f"  wrong shape: {k} expected {list(want)} found {list(got)}")
        return "\n".join(lines)


def compare_keys(expected: dict[str, tuple], found: dict[str, tuple], skip: SkipList | None = None) -> KeyReport:
    """Compare `{key: shape}` of a module (`expected`) with those of a file (`found`)."""
    skipped = sorted(k for k in found if skip is not None and skip.matches(k))
    found = {k: s for k, s in found.items() if k not in skipped}
    matched, mismatched = [], []
    for k, shape in expected.items():
        if k in found:
            if tuple(found[k]) == tuple(shape):
                matched.append(k)
            else:
                mismatched.append((k, tuple(shape), tuple(found[k])))
    missing = sorted(k for k in expected if k not in found)
    unexpected = sorted(k for k in found if k not in expected)
    return KeyReport(matched, missing, unexpected, mismatched, skipped)


def module_shapes(module: nn.Module) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _folded(key: str) -> str:
    """The module key a file key loads into (`x.weight_g` / `x.weight_v` -> `x.weight`)."""
    return key[: -len("_g")] if key.endswith((".weight_g", ".weight_v")) else key


def check_values(module: nn.Module, sd: dict, name: str, limit: int = 5) -> None:
    """Each tensor of `sd` must have the kind of its module tensor (a floating-point one where the
    module has a float: integer or bool weights are a broken file) and hold only finite values."""
    own = dict(module.state_dict(keep_vars=True))
    wrong_kind, non_finite = [], []
    for key, value in sd.items():
        want = own[_folded(key)]
        if want.is_floating_point() != value.is_floating_point() or value.is_complex():
            wrong_kind.append(f"{key} ({value.dtype}, expected {'floating point' if want.is_floating_point() else want.dtype})")
        elif value.is_floating_point() and value.numel() and not torch.isfinite(value).all():
            non_finite.append(key)
    if wrong_kind:
        raise CheckpointError(f"{name}: tensors of the wrong type: {', '.join(wrong_kind[:limit])}"
                              + (f" and {len(wrong_kind) - limit} more" if len(wrong_kind) > limit else ""))
    if non_finite:
        raise CheckpointError(f"{name}: NaN or Inf values in {', '.join(non_finite[:limit])}"
                              + (f" and {len(non_finite) - limit} more" if len(non_finite) > limit else ""))


def load_strict(module: nn.Module, sd: dict, name: str, skip: SkipList | None = None) -> nn.Module:
    """Load `sd` into `module` (typically built on the meta device) strictly.

    Weight norm pairs are folded first. Anything missing, unexpected or mis-shaped, a tensor of the
    wrong kind (integer / bool where the module has a float) or one holding NaN / Inf raises a
    `CheckpointError` listing the keys; tensors are assigned (no copy into meta storage).
    """
    not_tensors = sorted(k for k, v in sd.items() if not isinstance(v, torch.Tensor)
                         and not (skip is not None and skip.matches(k)))
    if not_tensors:
        raise CheckpointError(f"{name}: entries that are not tensors: {not_tensors[:5]}")
    raw = {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    sd = fold_weight_norm(raw)
    report = compare_keys(module_shapes(module), {k: tuple(v.shape) for k, v in sd.items()}, skip)
    if not report.ok:
        raise CheckpointError(report.describe(name))
    if report.skipped:
        log.debug("%s: skipped %d keys (%s)", name, len(report.skipped), skip.name)
    skipped = set(report.skipped)
    check_values(module, {k: v for k, v in raw.items() if _folded(k) not in skipped}, name)  # the file's names
    sd = {k: v for k, v in sd.items() if k not in skipped}
    module.load_state_dict(sd, strict=True, assign=True)
    leftover = [n for n, t in list(module.named_parameters()) + list(module.named_buffers()) if t.is_meta]
    if leftover:
        raise CheckpointError(f"{name}: tensors left uninitialised after loading: {leftover[:10]}")
    return module.eval()
