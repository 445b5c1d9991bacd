"""Shared, once-per-session helpers for the tests that need real (random-weight) model files: the
public e2e kits (IndexTTS-2 ~850 MB, IndexTTS-2.5 ~700 MB) copied to a temporary folder and
materialised (seconds), their models loaded once, and the same files rearranged into the pack
layout with symlinks.

Import the fixtures into a test module (`from e2e_fixtures import e2e_kit, e2e_models`); the
materialisation and the loaded models are cached in this module, so every module shares them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import E2E25_KIT, E2E_KIT, SHARED, need
from tools.conformance.kit_files import materialize_copy

_STATE: dict = {}


def _once(key: str, make):
    """`make()` once per session, shared by every module that imports these fixtures."""
    if key not in _STATE:
        _STATE[key] = make()
    return _STATE[key]


def materialize(tmp_root: Path, kit_dir: Path = E2E_KIT) -> Path:
    """Copy the kit without checkpoints into tmp_root/kit and write its checkpoints there."""
    need(kit_dir)
    return materialize_copy(kit_dir, tmp_root, need(SHARED / "parity" / "materialize_kit.py"))


def pack_layout(checkpoints: Path, root: Path) -> Path:
    """The official-layout files of `checkpoints` as a pack-layout models folder (symlinks); an
    IndexTTS-2.5 kit goes to root/IndexTTS-2.5 and has no MaskGCT codec."""
    ext = checkpoints / "hf_cache"
    v25 = (checkpoints / "codec.pth").exists()
    main = ("config.yaml", "gpt.pth", "s2mel.pth", "wav2vec2bert_stats.pt", "feat1.pt", "feat2.pt",
            *(("codec.pth", "multilingual_zh_ja_yue_char_del.tiktoken") if v25 else ("bpe.model",)))
    links = {
        "IndexTTS-2.5" if v25 else "IndexTTS-2": [checkpoints / n for n in main],
        "w2v-bert-2.0": sorted((ext / "w2v-bert-2.0").iterdir()),
        "campplus": [ext / "campplus_cn_common.bin"],
        "bigvgan_v2_22khz_80band_256x": sorted((ext / "bigvgan").iterdir()),
    }
    for folder, files in links.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for f in files:
            (root / folder / f.name).symlink_to(f)
    if not v25:
        (root / "MaskGCT" / "semantic_codec").mkdir(parents=True)
        (root / "MaskGCT" / "semantic_codec" / "model.safetensors").symlink_to(ext / "semantic_codec_model.safetensors")
    return root


@pytest.fixture(scope="session")
def e2e_kit(tmp_path_factory) -> Path:
    """A materialised copy of the public e2e kit (its `checkpoints/` is an official model folder)."""
    return _once("kit", lambda: materialize(tmp_path_factory.mktemp("e2e")))


@pytest.fixture(scope="session")
def e2e_pack(e2e_kit, tmp_path_factory) -> Path:
    """The kit's model files in the pack layout (symlinks into the kit)."""
    return _once("pack", lambda: pack_layout(e2e_kit / "checkpoints", tmp_path_factory.mktemp("pack") / "indextts2"))


@pytest.fixture(scope="session")
def e2e_models(e2e_kit):
    """`load_models` of the kit's checkpoints on the CPU, fp32 (loaded once)."""
    from indextts2_core.pipeline import load_models

    return _once("models", lambda: load_models(e2e_kit / "checkpoints", device="cpu", dtype="fp32"))


@pytest.fixture(scope="session")
def e2e_audio(e2e_kit):
    """(speaker waveform, rate), (emotion waveform, rate) of the kit."""
    from indextts2_core.audio import load_audio

    return load_audio(e2e_kit / "inputs" / "spk_prompt_22k.wav"), load_audio(e2e_kit / "inputs" / "emo_prompt_16k.wav")


@pytest.fixture(scope="session")
def e2e25_kit(tmp_path_factory) -> Path:
    """A materialised copy of the public IndexTTS-2.5 e2e kit."""
    return _once("kit25", lambda: materialize(tmp_path_factory.mktemp("e2e25"), E2E25_KIT))


@pytest.fixture(scope="session")
def e2e25_pack(e2e25_kit, tmp_path_factory) -> Path:
    """The 2.5 kit's model files in the pack layout (root/IndexTTS-2.5, symlinks into the kit)."""
    return _once("pack25", lambda: pack_layout(e2e25_kit / "checkpoints",
                                               tmp_path_factory.mktemp("pack25") / "indextts2"))
