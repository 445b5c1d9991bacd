"""model_files.py: both layouts and both versions, names from config.yaml (and the names it may not
use), version detection, helpers taken from other places, the missing-files report."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import model_trees as mt
from conftest import OFFICIAL, need
from e2e_fixtures import e2e_kit, e2e_pack  # noqa: F401  (fixtures)
from indextts2_core.config import ConfigError
from indextts2_core.model_files import (ModelFilesError, ModelPaths, ModelVersionError, detect_version,
                                        download_command, file_names, prefer_safetensors)


@pytest.fixture(autouse=True)
def empty_hub_cache(tmp_path, monkeypatch):
    """No test sees the machine's Hugging Face cache."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return tmp_path / "hub"


def test_official_layout(e2e_kit):  # noqa: F811
    root = e2e_kit / "checkpoints"
    p = ModelPaths.locate(root)
    assert (p.layout, p.version) == ("official", "2") and p.missing() == []
    assert p.semantic_codec == root / "hf_cache/semantic_codec_model.safetensors"
    assert p.campplus == root / "hf_cache/campplus_cn_common.bin"
    assert p.bigvgan_weights == root / "hf_cache/bigvgan/bigvgan_generator.pt"
    assert p.w2v_bert_dir == root / "hf_cache/w2v-bert-2.0" and p.gpt == root / "gpt.pth"
    assert p.codec is None and p.tokenizer is None and p.bpe == root / "bpe.model"
    assert p.missing(include_t2e=True) == [str(root / "qwen0.6bemo4-merge" / f) for f in
                                           ("config.json", "model.safetensors", "tokenizer.json",
                                            "tokenizer_config.json")]


def test_pack_layout(e2e_pack):  # noqa: F811
    p = ModelPaths.locate(e2e_pack)
    assert (p.layout, p.version) == ("pack", "2") and p.missing() == []
    assert p.config == e2e_pack / "IndexTTS-2/config.yaml"
    assert p.semantic_codec == e2e_pack / "MaskGCT/semantic_codec/model.safetensors"
    assert p.bigvgan_dir == e2e_pack / "bigvgan_v2_22khz_80band_256x"
    assert p.qwen_dir == e2e_pack / "IndexTTS-2/qwen0.6bemo4-merge"


def test_file_names_come_from_config(tmp_path):
    text = need(OFFICIAL / "config.yaml").read_text(encoding="utf-8")
    root = tmp_path / "m"
    mt.write(root / "IndexTTS-2/config.yaml", text.replace("gpt_checkpoint: gpt.pth", "gpt_checkpoint: t2s.pth"))
    p = ModelPaths.locate(root)
    assert p.gpt.name == "t2s.pth" and str(p.gpt) in p.missing()


@pytest.mark.parametrize("key,name", [
    ("gpt_checkpoint", "../gpt.pth"), ("gpt_checkpoint", "../../../../etc/evil.pth"),
    ("s2mel_checkpoint", "/etc/passwd"), ("w2v_stat", "sub/../../stats.pt"), ("spk_matrix", "..\\..\\feat1.pt"),
    ("emo_matrix", "C:\\Windows\\feat2.pt"), ("emo_matrix", "C:feat2.pt"),
    ("gpt_checkpoint", "\\\\server\\share\\g.pth"),
    ("qwen_emo_path", "../qwen/"), ("qwen_emo_path", "/opt/qwen"), ("gpt_checkpoint", "~/gpt.pth"),
    ("gpt_checkpoint", ""), ("gpt_checkpoint", 5), ("s2mel_checkpoint", "a\0b"), ("bpe_model", "../bpe.model"),
])
def test_config_file_names_must_stay_in_the_folder(tmp_path, key, name):
    import yaml

    raw = yaml.safe_load(mt.CONFIG_V2)
    if key == "bpe_model":
        raw["dataset"]["bpe_model"] = name
    else:
        raw[key] = name
    folder = mt.write(tmp_path / "m" / "IndexTTS-2" / "config.yaml", yaml.safe_dump(raw)).parent
    with pytest.raises(ConfigError, match=key):
        ModelPaths.locate(tmp_path / "m")
    with pytest.raises(ConfigError, match=key):
        file_names(folder / "config.yaml")


@pytest.mark.parametrize("text,problem", [
    ("[" * 5000 + "]" * 5000, "nested too deeply|not valid YAML"),
    ("!!python/object/apply:os.system ['true']", "not valid YAML"),
    ("- a\n- b\n", "mapping"),
    ("gpt: [\n", "not valid YAML"),
])
def test_bad_config_is_a_config_error(tmp_path, text, problem):
    mt.write(tmp_path / "config.yaml", text)
    with pytest.raises(ConfigError, match=problem):
        ModelPaths.locate(tmp_path)


def test_every_missing_file_is_listed_with_the_command(tmp_path):
    with pytest.raises(ModelFilesError) as e:
        ModelPaths.locate(tmp_path / "empty").require()
    msg = str(e.value)
    for name in ("config.yaml", "gpt.pth", "s2mel.pth", "bpe.model", "wav2vec2bert_stats.pt", "feat1.pt",
                 "feat2.pt", "w2v-bert-2.0/model.safetensors", "preprocessor_config.json",
                 "MaskGCT/semantic_codec/model.safetensors", "campplus_cn_common.bin", "bigvgan_generator.pt"):
        assert name in msg, name
    assert "14 IndexTTS-2 model file(s) missing" in msg and "qwen" not in msg
    assert download_command(tmp_path / "empty") in msg and "--t2e" not in msg
    with pytest.raises(ModelFilesError, match="18 IndexTTS-2 model file") as e:
        ModelPaths.locate(tmp_path / "empty").require(include_t2e=True)
    assert download_command(tmp_path / "empty", include_t2e=True) in str(e.value)


def test_download_command_works_from_any_directory(tmp_path):
    """The command the error prints, run by a shell from another folder, is the pack's CLI."""
    cmd = download_command(tmp_path / "models", version="2.5", include_t2e=True)
    assert cmd.startswith(sys.executable) or cmd.startswith(f'"{sys.executable}"') or sys.executable in cmd
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub"), "PYTHONPATH": ""}
    run = subprocess.run(cmd, shell=True, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert "HF_HUB_OFFLINE is set" in run.stderr
    assert str(tmp_path / "models" / "IndexTTS-2.5" / "codec.pth") in run.stderr
    assert "qwen0.6bemo4-merge" in run.stderr  # --t2e reached the command
    assert not (elsewhere / "models").exists() and list(elsewhere.iterdir()) == []


def test_official_layout_missing_externals(tmp_path):
    root = mt.main_folder(tmp_path / "checkpoints")
    missing = ModelPaths.locate(root).missing()
    assert str(root / "hf_cache/semantic_codec_model.safetensors") in missing
    assert str(root / "config.yaml") not in missing and len(missing) == 7


def test_safetensors_sibling_is_preferred(tmp_path):
    pth = tmp_path / "gpt.pth"
    pth.write_bytes(b"x")
    assert prefer_safetensors(pth) == pth
    (tmp_path / "gpt.safetensors").write_bytes(b"x")
    assert prefer_safetensors(pth) == tmp_path / "gpt.safetensors"
    assert prefer_safetensors(tmp_path / "config.yaml") == tmp_path / "config.yaml"


# --- IndexTTS-2.5 ---------------------------------------------------------------------------------

def test_v25_official_folder(tmp_path):
    root = mt.official_helpers(mt.main_folder(tmp_path / "checkpoints", "2.5"), skip=(mt.MASKGCT,))
    p = ModelPaths.locate(root)
    assert (p.version, p.layout) == ("2.5", "official") and p.missing() == []
    assert p.codec == root / "codec.pth" and p.tokenizer == root / "multilingual_zh_ja_yue_char_del.tiktoken"
    assert p.bpe is None and p.semantic_codec is None  # 2.5 reads neither
    assert (p.w2v_stats, p.spk_matrix, p.emo_matrix) == (root / "wav2vec2bert_stats.pt", root / "feat1.pt",
                                                         root / "feat2.pt")
    assert p.campplus == root / "hf_cache/campplus_cn_common.bin" and p.bigvgan_dir == root / "hf_cache/bigvgan"
    assert p.w2v_bert_dir == root / "hf_cache/w2v-bert-2.0" and p.qwen_dir == root / "qwen0.6bemo4-merge"
    assert all("MaskGCT" not in f.repo for f in p.hub_files(include_t2e=True))


def test_v25_names_come_from_its_config(tmp_path):
    root = tmp_path / "m"
    mt.main_folder(root / "IndexTTS-2.5", "2.5", config=mt.CONFIG_V25.replace("s2mel.pth", "s2m_v25.pth"))
    p = ModelPaths.locate(root)
    assert p.version == "2.5" and p.s2mel.name == "s2m_v25.pth" and p.codec.name == "codec.pth"


def test_v25_pack_missing_list(tmp_path):
    p = ModelPaths.locate(tmp_path / "m", "2.5")
    missing = p.missing()
    assert p.config == tmp_path / "m/IndexTTS-2.5/config.yaml" and len(missing) == 14
    assert str(tmp_path / "m/IndexTTS-2.5/codec.pth") in missing and not any("MaskGCT" in m for m in missing)
    with pytest.raises(ModelFilesError, match="--version 2.5"):
        p.require()


def test_real_25_kit_static_files_say_25(tmp_path):
    static = need(OFFICIAL.parent / "parity" / "public25-e2e" / "static")
    folder = tmp_path / "c"
    for name in ("config.yaml", "multilingual_zh_ja_yue_char_del.tiktoken"):
        mt.write(folder / name, (static / name).read_bytes())
    assert detect_version(folder) == "2.5"
    (folder / "multilingual_zh_ja_yue_char_del.tiktoken").unlink()
    assert detect_version(folder) == "2.5"  # the config alone (60 509 text tokens, version 2.5)


@pytest.mark.parametrize("files,config,expected", [
    (("bpe.model",), mt.CONFIG_V2, "2"),
    (("codec.pth",), mt.CONFIG_V2, "2.5"),  # the HF 2.5 config has been seen saying version 2.0
    (("multilingual_zh_ja_yue_char_del.tiktoken",), None, "2.5"),
    (("bpe.model", "codec.pth", "multilingual_zh_ja_yue_char_del.tiktoken"), mt.CONFIG_V25, "2.5"),  # 2.5 over 2
    ((), mt.CONFIG_V25, "2.5"),
    ((), None, None),
    (("gpt.pth",), mt.CONFIG_V2, None),
])
def test_detect_version(tmp_path, files, config, expected):
    for f in files:
        mt.write(tmp_path / f)
    if config is not None:
        mt.write(tmp_path / "config.yaml", config)
    assert detect_version(tmp_path) == expected


@pytest.mark.parametrize("files,config,problem", [
    (("bpe.model", "codec.pth"), mt.CONFIG_V2, "both versions"),
    (("bpe.model",), mt.CONFIG_V25, "describes IndexTTS-2.5"),
])
def test_ambiguous_folder_is_an_error(tmp_path, files, config, problem):
    for f in files:
        mt.write(tmp_path / f)
    mt.write(tmp_path / "config.yaml", config)
    with pytest.raises(ModelVersionError, match=problem):
        detect_version(tmp_path)
    with pytest.raises(ModelVersionError, match=problem):
        ModelPaths.locate(tmp_path)


def test_version_choice_in_a_pack_root(tmp_path):
    root = mt.pack_helpers(tmp_path / "m")
    mt.main_folder(root / "IndexTTS-2", "2")
    assert ModelPaths.locate(root).version == "2"
    mt.main_folder(root / "IndexTTS-2.5", "2.5")
    with pytest.raises(ModelVersionError, match="both IndexTTS-2/ and IndexTTS-2.5/"):
        ModelPaths.locate(root)
    p2, p25 = ModelPaths.locate(root, "2"), ModelPaths.locate(root, "2.5")
    assert p2.missing() == [] and p25.missing() == [] and p2.w2v_bert_dir == p25.w2v_bert_dir
    with pytest.raises(ModelVersionError, match="holds IndexTTS-2.5, not IndexTTS-2"):
        ModelPaths.locate(root / "IndexTTS-2.5", "2")
    with pytest.raises(ValueError, match="unknown IndexTTS version"):
        ModelPaths.locate(root, "3")


# --- helpers found elsewhere -----------------------------------------------------------------------

def test_helpers_from_the_hub_cache(tmp_path, empty_hub_cache):
    root = mt.pack_helpers(tmp_path / "m", skip=(mt.W2V,))
    mt.main_folder(root / "IndexTTS-2")
    assert ModelPaths.locate(root).missing() == [str(root / "w2v-bert-2.0" / f) for f in
                                                 ("config.json", "preprocessor_config.json", "model.safetensors")]
    snap = mt.snapshot(empty_hub_cache, mt.W2V, ("config.json", "preprocessor_config.json"))  # incomplete
    assert ModelPaths.locate(root).w2v_bert_dir == root / "w2v-bert-2.0"
    mt.write(snap / "model.safetensors")
    p = ModelPaths.locate(root)
    assert p.w2v_bert_dir == snap and p.missing() == []
    assert ModelPaths.locate(root, search=()).w2v_bert_dir == root / "w2v-bert-2.0"  # no search, no cache


def test_main_folder_beside_helper_folders(tmp_path):
    """TTS-Audio-Suite's older layout: models/TTS/IndexTTS-2 (given directly) beside models/TTS/w2v-bert-2.0,
    the other helpers under models/TTS/IndexTTS/."""
    tts = tmp_path / "models" / "TTS"
    main = mt.main_folder(tts / "IndexTTS-2")
    mt.pack_helpers(tts, skip=(mt.MASKGCT, mt.CAMPPLUS, mt.BIGVGAN))
    mt.pack_helpers(tts / "IndexTTS", skip=(mt.W2V,))
    p = ModelPaths.locate(main)
    assert p.layout == "official" and p.missing() == []
    assert p.w2v_bert_dir == tts / "w2v-bert-2.0" and p.campplus == tts / "IndexTTS/campplus/campplus_cn_common.bin"
    assert p.semantic_codec == tts / "IndexTTS/MaskGCT/semantic_codec/model.safetensors"
