"""Checkpoint contract: the pack's modules, built on the meta device from the real config, must
match the official checkpoint manifests key for key and shape for shape.

Each model file provides `checkpoint_contract(cfg, manifest) -> list[ContractPart]`; the manifest
is passed so models configured by a file of their own (BigVGAN `config.json`, w2v-BERT
`config.json`) can read the published values recorded in it.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..checkpoints import KeyReport, SkipList, compare_keys, module_shapes
from ..config import IndexTTS2Config


@dataclass
class ContractPart:
    prefix: str  # nesting inside the file ("" for a flat state dict, "cfm" for s2mel.pth["net"]["cfm"])
    module: nn.Module  # built on the meta device
    skip: SkipList | None = None


# manifest file -> "module:function" providing the contract parts
CONTRACTS = {
    "gpt.pth.json": "indextts2_core.gpt.model:checkpoint_contract",
    "s2mel.pth.json": "indextts2_core.s2mel.model:checkpoint_contract",
    "semantic_codec.safetensors.json": "indextts2_core.semantic.codec:checkpoint_contract",
    "campplus_cn_common.bin.json": "indextts2_core.speaker.campplus:checkpoint_contract",
    "bigvgan_generator.pt.json": "indextts2_core.vocoder.bigvgan:checkpoint_contract",
    "w2v-bert-2.0.json": "indextts2_core.semantic.w2v_bert:checkpoint_contract",
}


def manifest_shapes(manifest: dict) -> dict[str, dict[str, tuple]]:
    """{sub-dict name ('' when flat): {key: shape}}, weight-norm pairs folded to `weight`."""
    tensors = manifest["tensors"]
    groups = tensors if isinstance(tensors, dict) else {"": tensors}
    out = {}
    for group, entries in groups.items():
        shapes = {e["key"]: tuple(e["shape"]) for e in entries}
        folded = {}
        for k, s in shapes.items():
            if k.endswith(".weight_g"):
                continue
            if k.endswith(".weight_v"):
                folded[k[:-2]] = s
            else:
                folded[k] = s
        out[group] = folded
    return out


def load_contract(manifest_name: str):
    target = CONTRACTS[manifest_name]
    mod_name, fn = target.split(":")
    try:
        module = importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        if mod_name.startswith(e.name or "\0"):
            return None
        raise
    return getattr(module, fn, None)


def check_manifest(manifest_path: Path, cfg: IndexTTS2Config) -> dict[str, KeyReport] | None:
    """One report per contract part, or None when the pack has no module for this file yet."""
    manifest = json.loads(Path(manifest_path).read_text(encoding="utf-8"))
    contract = load_contract(Path(manifest_path).name)
    if contract is None:
        return None
    groups = manifest_shapes(manifest)
    parts = contract(cfg, manifest)
    reports = {}
    for part in parts:
        found = groups.pop(part.prefix, None)
        if found is None:
            raise KeyError(f"{manifest_path.name}: manifest has no group {part.prefix!r}")
        reports[part.prefix or "(flat)"] = compare_keys(module_shapes(part.module), found, part.skip)
    for group, found in groups.items():  # sub-dicts no module claims
        reports[group] = KeyReport([], [], sorted(found), [], [])
    return reports


def check_dir(manifest_dir: Path, cfg: IndexTTS2Config) -> tuple[list[str], bool]:
    """Lines to print and overall success for every contract manifest in `manifest_dir`."""
    lines, ok = [], True
    for name in CONTRACTS:
        path = Path(manifest_dir) / name
        if not path.is_file():
            lines.append(f"{name}: manifest not found in {manifest_dir}")
            ok = False
            continue
        reports = check_manifest(path, cfg)
        if reports is None:
            lines.append(f"{name}: not implemented")
            ok = False
            continue
        for part, r in reports.items():
            lines.append(f"{name} [{part}]: matched {len(r.matched)} / missing {len(r.missing)} / "
                         f"unexpected {len(r.unexpected)} / mismatched {len(r.mismatched)} "
                         f"(skipped {len(r.skipped)})")
            if not r.ok:
                ok = False
                lines.extend("    " + ln for ln in r.describe(name).splitlines()[1:])
    return lines, ok
