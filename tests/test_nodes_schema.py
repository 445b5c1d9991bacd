"""Schema facts of every node (ids, categories, inputs, types, defaults, ranges, tooltips), read
through the ComfyUI stand-in (tests/test_nodes_comfy_stub.py). The same facts are compared with
the real ComfyUI's /object_info in tests/test_comfyui_integration.py when COMFYUI_DIR is set."""

from __future__ import annotations

import pytest

import model_trees

from test_nodes_comfy_stub import load_pack, node_list, v1_info

EXPECTED_IDS = [
    "IndexTTS2Loader", "IndexTTS2EncodeSpeaker", "IndexTTS2EmotionFromAudio", "IndexTTS2EmotionFromVector",
    "IndexTTS2EmotionFromText", "IndexTTS2EmotionRandom", "IndexTTS2T2SGenerate", "IndexTTS2T2SSettings", "IndexTTS2S2M",
    "IndexTTS2Vocoder", "IndexTTS2Speak", "IndexTTS2LoadScript", "IndexTTS2VoiceSet", "IndexTTS2DubTimeline",
    "IndexTTS2DurationFromVideo", "IndexTTS2FitAudioToDuration",
    "IndexTTS2AudioToFrameCount",
]


@pytest.fixture
def infos(monkeypatch, tmp_path):
    pack = load_pack(monkeypatch, tmp_path / "models")
    return {info["name"]: info for info in map(v1_info, node_list(pack))}


def _inp(info, name):
    merged = {**info["input"].get("required", {}), **info["input"].get("optional", {})}
    return merged[name]


def test_pack_exports_v3_only(monkeypatch, tmp_path):
    pack = load_pack(monkeypatch, tmp_path)
    assert not hasattr(pack, "NODE_CLASS_MAPPINGS")  # would send ComfyUI down the V1 branch
    assert pack.WEB_DIRECTORY == "./web"


def test_ids_category_tooltips(infos):
    assert list(infos) == EXPECTED_IDS
    for info in infos.values():
        assert info["category"] == "audio/IndexTTS2"
        assert info["display_name"].startswith(("IndexTTS2", "Load IndexTTS2"))
        assert info["description"]
        for section in info["input"].values():
            for name, (kind, opts) in section.items():
                assert opts.get("tooltip"), f"{info['name']}.{name} has no tooltip"
        assert all(info["output_name"])


def test_socket_types(infos):
    assert infos["IndexTTS2Loader"]["output"] == ["INDEXTTS2_MODEL"]
    assert _inp(infos["IndexTTS2EncodeSpeaker"], "audio")[0] == "AUDIO"
    assert infos["IndexTTS2EncodeSpeaker"]["output"] == ["INDEXTTS2_SPEAKER"]
    for node in ("IndexTTS2EmotionFromAudio", "IndexTTS2EmotionFromVector", "IndexTTS2EmotionFromText",
                 "IndexTTS2EmotionRandom"):
        assert infos[node]["output"] == ["INDEXTTS2_EMOTION"]
    t2s = infos["IndexTTS2T2SGenerate"]
    assert t2s["output"] == ["INDEXTTS2_SEMANTIC", "INT"]
    assert "emotion" in t2s["input"]["optional"] and _inp(t2s, "emotion")[0] == "INDEXTTS2_EMOTION"
    assert infos["IndexTTS2S2M"]["output"] == ["INDEXTTS2_MEL"]
    assert infos["IndexTTS2Vocoder"]["output"] == ["AUDIO"]
    assert infos["IndexTTS2Speak"]["output"] == ["AUDIO"]
    assert infos["IndexTTS2DurationFromVideo"]["output"] == ["FLOAT", "INT", "FLOAT"]
    assert _inp(t2s, "settings")[0] == infos["IndexTTS2T2SSettings"]["output"][0] == "INDEXTTS2_DECODING"
    assert _inp(infos["IndexTTS2DurationFromVideo"], "video")[0] == "VIDEO"
    assert _inp(infos["IndexTTS2DurationFromVideo"], "images")[0] == "IMAGE"
    assert infos["IndexTTS2AudioToFrameCount"]["output"] == ["INT", "FLOAT"]


def test_loader_widgets(infos):
    info = infos["IndexTTS2Loader"]
    assert info["input_order"]["required"] == ["model_folder", "device", "precision", "download_missing",
                                               "load_text_emotion"]
    assert _inp(info, "model_folder")[1]["options"][0] == "models/indextts2"
    assert _inp(info, "device")[1]["options"] == ["auto", "cpu"]
    assert _inp(info, "precision")[1]["options"] == ["auto", "fp32", "fp16", "bf16"]
    assert _inp(info, "download_missing")[1]["default"] is False  # nothing downloads unless asked


def test_emotion_vector_sliders_follow_core_order(infos):
    from indextts2_core.emotion.vectors import EMOTIONS

    info = infos["IndexTTS2EmotionFromVector"]
    assert info["input_order"]["required"] == ["model", "speaker", *EMOTIONS, "alpha", "normalize"]
    for name in EMOTIONS:
        opts = _inp(info, name)[1]
        assert (opts["default"], opts["min"], opts["max"], opts["display"]) == (0.0, 0.0, 1.2, "slider")
    assert _inp(info, "normalize")[1]["default"] is False


def test_t2s_defaults_are_the_official_decoding_settings(infos):
    from indextts2_core.gpt import DecodingSettings
    from indextts2_core.pipeline import DEFAULT_INTERVAL_SILENCE_MS, DEFAULT_MAX_TEXT_TOKENS

    settings, info = infos["IndexTTS2T2SSettings"], infos["IndexTTS2T2SGenerate"]
    official = DecodingSettings()
    for name in ("do_sample", "temperature", "top_p", "top_k", "num_beams", "repetition_penalty", "length_penalty",
                 "max_mel_tokens"):
        assert _inp(settings, name)[1]["default"] == getattr(official, name), name
    assert _inp(settings, "max_text_tokens_per_segment")[1]["default"] == DEFAULT_MAX_TEXT_TOKENS
    assert "settings" in info["input"]["optional"]  # unconnected: the official settings
    t2s_inputs = set(info["input_order"]["required"]) | set(info["input_order"]["optional"])
    assert not t2s_inputs & {"do_sample", "temperature", "top_p", "top_k", "num_beams", "repetition_penalty",
                             "length_penalty", "max_mel_tokens", "max_text_tokens_per_segment"}  # behind `settings`
    assert _inp(info, "language")[1]["options"][0] == "auto"
    assert _inp(info, "duration_mode")[1]["options"] == ["natural", "target tokens", "target seconds"]
    assert _inp(info, "interval_silence_ms")[1]["default"] == DEFAULT_INTERVAL_SILENCE_MS
    seed = _inp(info, "seed")[1]
    assert seed["control_after_generate"] is True and seed["min"] == 0
    assert _inp(info, "text")[1]["multiline"] is True


def test_s2m_and_vocoder_defaults_match_core(infos):
    from indextts2_core import pipeline

    s2m = infos["IndexTTS2S2M"]
    assert _inp(s2m, "steps")[1]["default"] == pipeline.S2MSettings().steps
    assert _inp(s2m, "cfg_rate")[1]["default"] == pipeline.S2MSettings().cfg_rate
    assert _inp(s2m, "duration")[1]["options"] == ["auto", "target seconds", "target frames"]
    assert _inp(s2m, "seed")[1]["control_after_generate"] is True
    voc = infos["IndexTTS2Vocoder"]
    assert voc["input_order"]["required"] == ["model", "mel"]  # the silences come from the T2S plan


def test_video_nodes(infos):
    from indextts2_core import timing

    a2f = infos["IndexTTS2AudioToFrameCount"]
    assert _inp(a2f, "frame_rule")[1]["options"] == list(timing.FRAME_RULES)
    assert _inp(a2f, "rounding")[1]["options"] == list(timing.ROUNDING)
    assert set(infos["IndexTTS2DurationFromVideo"]["input"]["optional"]) == {"video", "images"}


def test_model_folder_registration_merges_with_extra_paths(monkeypatch, tmp_path):
    import sys

    pack = load_pack(monkeypatch, tmp_path / "models")
    fp = sys.modules["folder_paths"]
    extra = str(tmp_path / "elsewhere")
    fp.folder_names_and_paths["indextts2"] = ([extra], set())  # as extra_model_paths.yaml leaves it
    node_list(pack)  # comfy_entrypoint registers the folder
    paths, exts = fp.folder_names_and_paths["indextts2"]
    assert paths == [extra, str(tmp_path / "models" / "indextts2")]
    assert {".safetensors", ".pth", ".yaml", ".model"} <= exts  # explicit set, never "everything"
    # complete sets found elsewhere are offered by label; the pack folder for each version comes first
    cm = sys.modules[pack.__name__ + ".nodes.comfy_models"]
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no-hub"))
    official = tmp_path / "elsewhere" / "my-indextts2"
    model_trees.main_folder(official)
    model_trees.official_helpers(official)
    tts = tmp_path / "models" / "TTS" / "IndexTTS"
    model_trees.main_folder(tts / "IndexTTS-2.5", version="2.5")
    model_trees.pack_helpers(tts)
    choices = cm.model_folder_choices()
    assert choices[:2] == ["models/indextts2", "models/indextts2 (IndexTTS-2.5)"] and len(choices) == 4
    found = {c: cm.resolve_model_choice(c) for c in choices[2:]}
    assert {p.version for p in found.values()} == {"2", "2.5"}
    assert {p.root for p in found.values()} >= {official}
    assert cm.resolve_model_choice("models/indextts2").root == tmp_path / "elsewhere"  # the first registered folder
    with pytest.raises(ValueError):
        cm.resolve_model_choice("../etc")
