"""model_files.py: both layouts, names from config.yaml, the missing-files report, safetensors
preference, and the repair of a SentencePiece model with a damaged training record."""

from __future__ import annotations

import pytest

from conftest import E2E_KIT, OFFICIAL, PUBLIC_KIT, need
from e2e_fixtures import e2e_kit, e2e_pack  # noqa: F401  (fixtures)
from indextts2_core.model_files import ModelFilesError, ModelPaths, prefer_safetensors


def test_official_layout(e2e_kit):  # noqa: F811
    root = e2e_kit / "checkpoints"
    p = ModelPaths.locate(root)
    assert p.layout == "official" and p.missing() == []
    assert p.semantic_codec == root / "hf_cache/semantic_codec_model.safetensors"
    assert p.campplus == root / "hf_cache/campplus_cn_common.bin"
    assert p.bigvgan_weights == root / "hf_cache/bigvgan/bigvgan_generator.pt"
    assert p.w2v_bert_dir == root / "hf_cache/w2v-bert-2.0" and p.gpt == root / "gpt.pth"
    assert p.missing(include_t2e=True) == [str(root / "qwen0.6bemo4-merge" / f) for f in
                                           ("config.json", "model.safetensors", "tokenizer.json",
                                            "tokenizer_config.json")]


def test_pack_layout(e2e_pack):  # noqa: F811
    p = ModelPaths.locate(e2e_pack)
    assert p.layout == "pack" and p.missing() == []
    assert p.config == e2e_pack / "IndexTTS-2/config.yaml"
    assert p.semantic_codec == e2e_pack / "MaskGCT/semantic_codec/model.safetensors"
    assert p.bigvgan_dir == e2e_pack / "bigvgan_v2_22khz_80band_256x"
    assert p.qwen_dir == e2e_pack / "IndexTTS-2/qwen0.6bemo4-merge"


def test_file_names_come_from_config(tmp_path):
    text = need(OFFICIAL / "config.yaml").read_text(encoding="utf-8")
    root = tmp_path / "m"
    (root / "IndexTTS-2").mkdir(parents=True)
    (root / "IndexTTS-2/config.yaml").write_text(text.replace("gpt_checkpoint: gpt.pth", "gpt_checkpoint: t2s.pth"))
    p = ModelPaths.locate(root)
    assert p.gpt.name == "t2s.pth" and str(p.gpt) in p.missing()


def test_every_missing_file_is_listed_with_the_command(tmp_path):
    with pytest.raises(ModelFilesError) as e:
        ModelPaths.locate(tmp_path / "empty").require()
    msg = str(e.value)
    for name in ("config.yaml", "gpt.pth", "s2mel.pth", "bpe.model", "wav2vec2bert_stats.pt", "feat1.pt",
                 "feat2.pt", "w2v-bert-2.0/model.safetensors", "preprocessor_config.json",
                 "MaskGCT/semantic_codec/model.safetensors", "campplus_cn_common.bin", "bigvgan_generator.pt"):
        assert name in msg, name
    assert "14 IndexTTS2 model file(s) missing" in msg
    assert f'python -m indextts2_core download --models "{tmp_path / "empty"}" --no-t2e' in msg
    with pytest.raises(ModelFilesError, match="18 IndexTTS2 model file"):
        ModelPaths.locate(tmp_path / "empty").require(include_t2e=True)


def test_official_layout_missing_externals(tmp_path):
    root = tmp_path / "checkpoints"
    root.mkdir()
    (root / "config.yaml").write_text(need(OFFICIAL / "config.yaml").read_text(encoding="utf-8"))
    missing = ModelPaths.locate(root).missing()
    assert str(root / "hf_cache/semantic_codec_model.safetensors") in missing
    assert str(root / "config.yaml") not in missing and len(missing) == 13


def test_safetensors_sibling_is_preferred(tmp_path):
    pth = tmp_path / "gpt.pth"
    pth.write_bytes(b"x")
    assert prefer_safetensors(pth) == pth
    (tmp_path / "gpt.safetensors").write_bytes(b"x")
    assert prefer_safetensors(pth) == tmp_path / "gpt.safetensors"
    assert prefer_safetensors(tmp_path / "config.yaml") == tmp_path / "config.yaml"
