"""Checkpoint contract: the pack's modules, built on the meta device from the real config, must
match the official checkpoint manifests key for key and shape for shape.

`CONTRACTS` builds, per manifest, the pack's modules with their strict-loading skip lists; the
model files know nothing of this tooling.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from indextts2_core.checkpoints import KeyReport, SkipList, compare_keys, module_shapes
from indextts2_core.config import BigVGANConfig, IndexTTS2Config
from indextts2_core.config25 import IndexTTS25Config
from indextts2_core.gpt.model import GPT_SKIP, UnifiedVoice
from indextts2_core.gpt.model25 import GPT25_SKIP, UnifiedVoice25
from indextts2_core.s2mel.model import CFM_SKIP, GPT_LAYER_SKIP_25, LENGTH_REGULATOR_SKIP, S2Mel
from indextts2_core.semantic.codec import SKIP as CODEC_SKIP, SemanticCodec
from indextts2_core.semantic.codec25 import SKIP as CODEC25_SKIP, EnhancedCodec
from indextts2_core.semantic.w2v_bert import SKIP as W2V_BERT_SKIP, truncated_config
from indextts2_core.speaker.campplus import CAMPPlus
from indextts2_core.vocoder.bigvgan import BigVGAN


@dataclass
class ContractPart:
    prefix: str  # nesting inside the file ("" for a flat state dict, "cfm" for s2mel.pth["net"]["cfm"])
    module: nn.Module | None  # built on the meta device; None: the whole group is skipped by `skip`
    skip: SkipList | None = None


def _gpt(cfg: IndexTTS2Config, manifest: dict) -> list[ContractPart]:
    return [ContractPart("", UnifiedVoice(cfg.gpt), GPT_SKIP)]


def _s2mel(cfg: IndexTTS2Config, manifest: dict) -> list[ContractPart]:
    model = S2Mel(cfg.s2mel)
    return [ContractPart("cfm", model.cfm, CFM_SKIP),
            ContractPart("length_regulator", model.length_regulator, LENGTH_REGULATOR_SKIP),
            ContractPart("gpt_layer", model.gpt_layer, None)]


def _semantic_codec(cfg: IndexTTS2Config, manifest: dict) -> list[ContractPart]:
    return [ContractPart("", SemanticCodec(cfg.semantic_codec), CODEC_SKIP)]


def _campplus(cfg: IndexTTS2Config, manifest: dict) -> list[ContractPart]:
    return [ContractPart("", CAMPPlus(), None)]


def _bigvgan(cfg: IndexTTS2Config, manifest: dict) -> list[ContractPart]:
    return [ContractPart("", BigVGAN(BigVGANConfig.from_dict(manifest["config_json"])), None)]


def _w2v_bert(cfg: IndexTTS2Config, manifest: dict) -> list[ContractPart]:
    """The truncated model built from the published config values recorded in the manifest."""
    from transformers import Wav2Vec2BertConfig, Wav2Vec2BertModel

    config = truncated_config(Wav2Vec2BertConfig.from_dict(dict(manifest["config_json_values_used"])))
    return [ContractPart("", Wav2Vec2BertModel(config), W2V_BERT_SKIP)]


# manifest file -> the pack's modules for it, built from the config (and the manifest, for models
# configured by a file of their own: BigVGAN and w2v-BERT config.json)
CONTRACTS: dict[str, Callable[[IndexTTS2Config, dict], list[ContractPart]]] = {
    "gpt.pth.json": _gpt,
    "s2mel.pth.json": _s2mel,
    "semantic_codec.safetensors.json": _semantic_codec,
    "campplus_cn_common.bin.json": _campplus,
    "bigvgan_generator.pt.json": _bigvgan,
    "w2v-bert-2.0.json": _w2v_bert,
}


def _gpt25(cfg: IndexTTS25Config, manifest: dict) -> list[ContractPart]:
    return [ContractPart("", UnifiedVoice25(cfg.gpt), GPT25_SKIP)]


def _codec25(cfg: IndexTTS25Config, manifest: dict) -> list[ContractPart]:
    """The flat listing is `codec.pth["model"]`."""
    return [ContractPart("", EnhancedCodec(cfg.semantic_codec), CODEC25_SKIP)]


def _s2mel25(cfg: IndexTTS25Config, manifest: dict) -> list[ContractPart]:
    model = S2Mel(cfg.s2mel, with_gpt_layer=False)
    whole = SkipList(GPT_LAYER_SKIP_25.name, (r".*",), GPT_LAYER_SKIP_25.reason)
    return [ContractPart("cfm", model.cfm, CFM_SKIP),
            ContractPart("length_regulator", model.length_regulator, LENGTH_REGULATOR_SKIP),
            ContractPart("gpt_layer", None, whole)]


# IndexTTS-2.5 manifests (spec/manifests/v2_5); the unchanged auxiliary models keep their v2 manifests
CONTRACTS25: dict[str, Callable[[IndexTTS25Config, dict], list[ContractPart]]] = {
    "gpt.pth.json": _gpt25,
    "codec.pth.json": _codec25,
    "s2mel.pth.json": _s2mel25,
}


def contracts_for(cfg) -> dict:
    return CONTRACTS25 if getattr(cfg, "version", "2") == "2.5" else CONTRACTS


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


def check_manifest(manifest_path: Path, cfg: IndexTTS2Config | IndexTTS25Config) -> dict[str, KeyReport]:
    """One report per contract part (modules built on the meta device); the config's version picks
    the contracts."""
    manifest = json.loads(Path(manifest_path).read_text(encoding="utf-8"))
    groups = manifest_shapes(manifest)
    with torch.device("meta"):
        parts = contracts_for(cfg)[Path(manifest_path).name](cfg, manifest)
    reports = {}
    for part in parts:
        found = groups.pop(part.prefix, None)
        if found is None:
            raise KeyError(f"{manifest_path.name}: manifest has no group {part.prefix!r}")
        expected = module_shapes(part.module) if part.module is not None else {}
        reports[part.prefix or "(flat)"] = compare_keys(expected, found, part.skip)
    for group, found in groups.items():  # sub-dicts no module claims
        reports[group] = KeyReport([], [], sorted(found), [], [])
    return reports


def check_dir(manifest_dir: Path, cfg: IndexTTS2Config | IndexTTS25Config) -> tuple[list[str], bool]:
    """Lines to print and overall success for every contract manifest (of the config's version) in
    `manifest_dir`."""
    lines, ok = [], True
    for name in contracts_for(cfg):
        path = Path(manifest_dir) / name
        if not path.is_file():
            lines.append(f"{name}: manifest not found in {manifest_dir}")
            ok = False
            continue
        reports = check_manifest(path, cfg)
        for part, r in reports.items():
            lines.append(f"{name} [{part}]: matched {len(r.matched)} / missing {len(r.missing)} / "
                         f"unexpected {len(r.unexpected)} / mismatched {len(r.mismatched)} "
                         f"(skipped {len(r.skipped)})")
            if not r.ok:
                ok = False
                lines.extend("    " + ln for ln in r.describe(name).splitlines()[1:])
    return lines, ok
