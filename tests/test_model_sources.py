"""model_sources.find_model_sets: complete sets in every layout other tools use, built as small fake
trees (resolution reads names only), with labels, versions and per-file sources."""

from __future__ import annotations

import pytest

import model_trees as mt
from hub_server import HubServer
from indextts2_core import download as dl
from indextts2_core.model_sources import find_model_set, find_model_sets


@pytest.fixture(autouse=True)
def hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    for name in ("HF_HUB_OFFLINE", "HF_ENDPOINT", "HF_HOME"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "hub"


@pytest.fixture
def models(tmp_path):
    return tmp_path / "ComfyUI" / "models"


def labels(sets) -> list[str]:
    return [s.label for s in sets]


def test_pack_layout_in_comfyui_models(models):
    root = mt.pack_helpers(models / "indextts2")
    mt.main_folder(root / "IndexTTS-2")
    (s,) = find_model_sets([models])
    assert s.label == "IndexTTS-2 · models/indextts2" and (s.version, s.layout) == ("2", "pack")
    assert s.folder == root / "IndexTTS-2" and s.paths.require() is s.paths
    assert s.paths.w2v_bert_dir == root / "w2v-bert-2.0"


def test_registered_folder_given_directly(tmp_path):
    root = mt.pack_helpers(tmp_path / "elsewhere" / "tts")
    mt.main_folder(root / "IndexTTS-2")
    assert labels(find_model_sets([root])) == ["IndexTTS-2 · tts"]


def test_official_checkpoints_with_hf_cache(tmp_path):
    repo = tmp_path / "index-tts"
    mt.official_helpers(mt.main_folder(repo / "checkpoints", qwen=True))
    (s,) = find_model_sets([repo])
    assert s.label == "IndexTTS-2 · index-tts/checkpoints (official layout)" and s.layout == "official"
    assert s.paths.campplus == repo / "checkpoints/hf_cache/campplus_cn_common.bin"
    assert find_model_sets([repo], include_t2e=True)[0].paths.missing(include_t2e=True) == []


def test_official_hf_cache_as_a_hub_cache(tmp_path):
    """The first official release passed hf_cache/ to huggingface_hub as its cache folder."""
    ckpt = mt.main_folder(tmp_path / "checkpoints")
    for repo, names in mt.HELPER_FILES.items():
        mt.snapshot(ckpt / "hf_cache", repo, names)
    (s,) = find_model_sets([tmp_path])
    assert s.paths.semantic_codec.parts[-5:] == ("models--amphion--MaskGCT", "snapshots", "a" * 40,
                                                "semantic_codec", "model.safetensors")


def test_tts_audio_suite_organised(models):
    base = mt.pack_helpers(models / "TTS" / "IndexTTS")
    mt.main_folder(base / "IndexTTS-2", qwen=True)
    mt.main_folder(base / "IndexTTS-2.5", "2.5")
    sets = find_model_sets([models])
    assert labels(sets) == ["IndexTTS-2 · models/TTS/IndexTTS (TTS-Audio-Suite)",
                            "IndexTTS-2.5 · models/TTS/IndexTTS (TTS-Audio-Suite)"]
    v2, v25 = sets
    assert v25.paths.codec == base / "IndexTTS-2.5/codec.pth" and v25.paths.semantic_codec is None
    assert v2.paths.bigvgan_dir == v25.paths.bigvgan_dir == base / "bigvgan_v2_22khz_80band_256x"
    assert labels(find_model_sets([models], include_t2e=True)) == [sets[0].label]


def test_tts_audio_suite_older_layout(models):
    """models/TTS/IndexTTS-2 beside models/TTS/w2v-bert-2.0; the other helpers in models/TTS/IndexTTS/."""
    tts = models / "TTS"
    mt.main_folder(tts / "IndexTTS-2")
    mt.pack_helpers(tts, skip=(mt.MASKGCT, mt.CAMPPLUS, mt.BIGVGAN))
    mt.pack_helpers(tts / "IndexTTS", skip=(mt.W2V,))
    (s,) = find_model_sets([models])
    assert s.label == "IndexTTS-2 · models/TTS (TTS-Audio-Suite)" and s.folder == tts / "IndexTTS-2"
    assert s.paths.w2v_bert_dir == tts / "w2v-bert-2.0"
    assert s.paths.campplus == tts / "IndexTTS/campplus/campplus_cn_common.bin"


def test_hf_cache_snapshots(models, hub):
    mt.cache_all(hub, "2")
    (s,) = find_model_sets([models])
    assert s.label == "IndexTTS-2 · Hugging Face cache" and s.layout == "hf-cache"
    assert s.folder == hub / "models--IndexTeam--IndexTTS-2" / "snapshots" / ("a" * 40)
    assert s.paths.w2v_bert_dir == hub / "models--facebook--w2v-bert-2.0" / "snapshots" / ("b" * 40)
    assert find_model_sets([models], hf_cache=False) == []
    assert labels(find_model_sets([], hf_cache=hub)) == [s.label]


def test_hf_home_is_honoured(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hfhome"))
    mt.cache_all(tmp_path / "hfhome" / "hub", "2.5")
    assert labels(find_model_sets([])) == ["IndexTTS-2.5 · Hugging Face cache"]


def test_sources_combine_across_tools(models, hub):
    """IndexTTS-2 in TTS-Audio-Suite's folder; w2v-BERT only in the HF cache; the rest in the pack folder."""
    mt.main_folder(models / "TTS" / "IndexTTS" / "IndexTTS-2")
    mt.pack_helpers(models / "indextts2", skip=(mt.W2V,))
    snap = mt.snapshot(hub, mt.W2V, mt.HELPER_FILES[mt.W2V])
    (s,) = find_model_sets([models])
    assert s.folder == models / "TTS/IndexTTS/IndexTTS-2" and s.paths.w2v_bert_dir == snap
    assert s.paths.bigvgan_dir == models / "indextts2/bigvgan_v2_22khz_80band_256x" and s.paths.missing() == []


def test_incomplete_sets_are_not_listed(models, hub):
    root = mt.pack_helpers(models / "indextts2", skip=(mt.BIGVGAN,))
    mt.main_folder(root / "IndexTTS-2")
    assert find_model_sets([models]) == []
    mt.write(root / "bigvgan_v2_22khz_80band_256x/config.json")
    assert find_model_sets([models]) == []  # still no generator
    mt.write(root / "bigvgan_v2_22khz_80band_256x/bigvgan_generator.safetensors")  # a converted copy counts
    assert labels(find_model_sets([models])) == ["IndexTTS-2 · models/indextts2"]


def test_sub_folders_and_duplicates(models):
    """Official folders under models/indextts2 are listed by name; the same folder reached twice once."""
    root = mt.pack_helpers(models / "indextts2")
    mt.main_folder(root / "IndexTTS-2")
    mt.official_helpers(mt.main_folder(root / "my-official"))
    mt.official_helpers(mt.main_folder(root / "v25", "2.5"), skip=(mt.MASKGCT,))
    sets = find_model_sets([models, models / "indextts2", models])
    assert labels(sets) == ["IndexTTS-2 · models/indextts2",
                            "IndexTTS-2 · models/indextts2/my-official (official layout)",
                            "IndexTTS-2.5 · models/indextts2/v25 (official layout)"]
    assert find_model_set([models], sets[2].label).paths.version == "2.5"
    with pytest.raises(ValueError, match="found: 'IndexTTS-2 · models/indextts2'"):
        find_model_set([models], "IndexTTS-2 · nowhere")


def test_broken_folders_are_skipped_not_fatal(models, caplog):
    root = mt.pack_helpers(models / "indextts2")
    mt.main_folder(root / "IndexTTS-2")
    mt.official_helpers(mt.main_folder(root / "evil", config=mt.CONFIG_V2.replace("gpt.pth", "../../x.pth")))
    mt.official_helpers(mt.main_folder(root / "mixed"))
    mt.write(root / "mixed" / "codec.pth")  # both versions' files, a v2 config: ambiguous
    assert labels(find_model_sets([models])) == ["IndexTTS-2 · models/indextts2"]
    assert "gpt_checkpoint" in caplog.text and "both versions" in caplog.text


def test_same_label_twice_gets_the_folder(tmp_path):
    for name in ("a", "b"):
        root = mt.pack_helpers(tmp_path / name / "models")
        mt.main_folder(root / "IndexTTS-2")
    sets = find_model_sets([tmp_path / "a" / "models", tmp_path / "b" / "models"])
    assert len({s.label for s in sets}) == 2 and all(s.label.endswith("IndexTTS-2]") for s in sets)


def test_download_completes_a_found_set_with_only_what_it_lacks(models, hub, monkeypatch):
    """A set found in the HF cache gets the Qwen model into the same snapshot; nothing else is fetched."""
    mt.cache_all(hub, "2")
    (s,) = find_model_sets([models])
    with HubServer(mt.hub_files("2", qwen=True)) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        paths = dl.download_models(s.paths, include_t2e=True, progress=False)
        fetched = {server.parse(p) for m, p in server.requests if m == "GET" and "/resolve/" in p}
    assert {f for _, f in fetched} == {f"qwen0.6bemo4-merge/{f}" for f in mt.QWEN_FILES}
    assert paths.missing(include_t2e=True) == [] and paths.qwen_dir.parent == s.folder
    assert labels(find_model_sets([models], include_t2e=True)) == [s.label]
