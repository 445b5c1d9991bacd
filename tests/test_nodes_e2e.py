"""The node chain on the public e2e kit's random-weight models in the pack layout, through the
ComfyUI stand-in (no ComfyUI needed): Load → Speaker → Emotion(vector) → T2S (target seconds) →
S2M → Vocoder gives AUDIO of exactly the requested length; Speak agrees on the length. The same
nodes on the IndexTTS-2.5 kit: Japanese and Spanish, exact lengths at 25 codes per second, and
duration_factor."""

from __future__ import annotations

import sys

import pytest
import torch

from test_nodes_comfy_stub import load_pack, node_list

e2e_fixtures = pytest.importorskip("e2e_fixtures", reason="tests/e2e_fixtures.py (kit materialisation) is missing")
e2e_kit, e2e_pack = e2e_fixtures.e2e_kit, e2e_fixtures.e2e_pack
e2e25_kit, e2e25_pack = e2e_fixtures.e2e25_kit, e2e_fixtures.e2e25_pack


@pytest.mark.slow
def test_node_chain_on_kit_models(e2e_pack, e2e_kit, monkeypatch):
    import soundfile as sf

    pack = load_pack(monkeypatch, e2e_pack.parent)  # models_dir/indextts2 = the pack-layout folder
    n = {c.define_schema().node_id: c for c in node_list(pack)}
    model = n["IndexTTS2Loader"].execute("models/indextts2", "auto", "auto", False, False)[0]
    wav, rate = sf.read(e2e_kit / "inputs" / "spk_prompt_22k.wav", dtype="float32")
    audio = {"waveform": torch.from_numpy(wav).reshape(1, 1, -1), "sample_rate": rate}
    speaker = n["IndexTTS2EncodeSpeaker"].execute(model, audio)[0]
    emotion = n["IndexTTS2EmotionFromVector"].execute(model, speaker, 0.6, False, happy=0.3, sad=0.1,
                                                       surprised=0.25, calm=0.15)[0]
    sem, tokens = n["IndexTTS2T2SGenerate"].execute(
        model, speaker, "The 3 little robots sang 27 songs today.", emotion=emotion, duration_mode="target seconds",
        target_tokens=1, target_seconds=1.2, language="auto", interval_silence_ms=200, seed=0,
        settings=n["IndexTTS2T2SSettings"].execute(True, 0.8, 0.8, 1, 1, 1.0, 0.0, 48, 120)[0]).args
    assert tokens == 60
    mel = n["IndexTTS2S2M"].execute(model, sem, speaker, 3, 0.7, "auto", 5.0, 1.0, 1, 0)[0]
    out = n["IndexTTS2Vocoder"].execute(model, mel)[0]
    assert out["sample_rate"] == 22050 and out["waveform"].shape == (1, 1, 26460)  # 1.2 s exactly
    assert torch.isfinite(out["waveform"]).all() and out["waveform"].abs().max() > 0
    mm = sys.modules["comfy.model_management"]
    assert len(mm.loads) >= 4  # one load per stage, right before use
    spoken = n["IndexTTS2Speak"].execute(model, audio, "The 3 little robots sang 27 songs today.", 1.0, 0.5, "auto", 200, 0)[0]
    assert spoken["waveform"].shape == (1, 1, 11025)


@pytest.mark.slow
def test_node_chain_on_indextts25_kit_models(e2e25_pack, e2e25_kit, monkeypatch):
    import soundfile as sf

    pack = load_pack(monkeypatch, e2e25_pack.parent)
    n = {c.define_schema().node_id: c for c in node_list(pack)}
    loader = n["IndexTTS2Loader"]
    choice = next(c for c in loader.define_schema().inputs[0].options if "IndexTTS-2.5" in c)
    model = loader.execute(choice, "auto", "auto", False, False)[0]
    assert model.version == "IndexTTS-2.5"
    wav, rate = sf.read(e2e25_kit / "inputs" / "spk_prompt_22k.wav", dtype="float32")
    audio = {"waveform": torch.from_numpy(wav).reshape(1, 1, -1), "sample_rate": rate}
    speaker = n["IndexTTS2EncodeSpeaker"].execute(model, audio)[0]
    greedy = n["IndexTTS2T2SSettings"].execute(False, 1.0, 1.0, 0, 1, 10.0, 0.0, 60, 120)[0]
    t2s = dict(target_tokens=1, target_seconds=1.23, interval_silence_ms=200, seed=0, settings=greedy)
    sem, tokens = n["IndexTTS2T2SGenerate"].execute(model, speaker, "こんにちは、今日はいい天気ですね。",
                                                    duration_mode="target seconds", language="ja", **t2s).args
    assert tokens == 31  # 1.23 s at 25 codes per second, the nearest count
    mel = n["IndexTTS2S2M"].execute(model, sem, speaker, 3, 0.7, "auto", 5.0, 1.0, 1, 0)[0]
    out = n["IndexTTS2Vocoder"].execute(model, mel)[0]
    assert out["waveform"].shape == (1, 1, round(1.23 * 22050))  # sample-exact on 2.5 too
    assert torch.isfinite(out["waveform"]).all() and out["waveform"].abs().max() > 0

    # natural length, then duration_factor 1.5 in S2M: the same codes, 1.5 × the mel frames
    sem, tokens = n["IndexTTS2T2SGenerate"].execute(model, speaker, "¿Dónde está la estación?",
                                                    duration_mode="natural", language="auto", **t2s).args
    plain = n["IndexTTS2S2M"].execute(model, sem, speaker, 2, 0.7, "auto", 5.0, 1.0, 1, 0)[0]
    slower = n["IndexTTS2S2M"].execute(model, sem, speaker, 2, 0.7, "auto", 5.0, 1.5, 1, 0)[0]
    assert slower.num_frames == pytest.approx(1.5 * plain.num_frames, abs=2)
    with pytest.raises(ValueError, match="T2S Generate.*language"):
        n["IndexTTS2T2SGenerate"].execute(model, speaker, "Bonjour", duration_mode="natural", language="fr", **t2s)
    spoken = n["IndexTTS2Speak"].execute(model, audio, "Hola a todos.", 1.0, 0.5, "es", 200, 0)[0]
    assert spoken["waveform"].shape == (1, 1, 11025)
