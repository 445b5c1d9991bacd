"""The dubbing nodes through the ComfyUI stand-in on the public e2e kit's random-weight models: a
script from text or from a file in input/, voices from connected speaker prompts and from an
input/voices folder, and Dub Timeline's track with every cue at its exact sample; refusals name
the node and the input."""

from __future__ import annotations

import shutil

import pytest
import soundfile as sf
import torch

from test_nodes_comfy_stub import load_pack, node_list

e2e_fixtures = pytest.importorskip("e2e_fixtures", reason="tests/e2e_fixtures.py (kit materialisation) is missing")
e2e_kit, e2e_pack = e2e_fixtures.e2e_kit, e2e_fixtures.e2e_pack

SRT = """1
00:00:00,200 --> 00:00:00,900
[Alice] The robots sang.

2
00:00:01,000 --> 00:00:01,600
[bob] Then they danced. {happy: 0.4}
"""
DUB = dict(fit="auto", min_ratio=0.1, max_ratio=10.0, overflow="squeeze", overlap="error", total_seconds=2.0,
           language="auto", line_gap_ms=300, steps=2, cfg_rate=0.7, seed=1)


@pytest.fixture
def nodes(e2e_pack, e2e_kit, monkeypatch, tmp_path):
    models_dir = e2e_pack.parent
    pack = load_pack(monkeypatch, models_dir)
    n = {c.define_schema().node_id: c for c in node_list(pack)}
    inputs = models_dir.parent / "input"
    (inputs / "voices").mkdir(parents=True, exist_ok=True)
    shutil.copy(e2e_kit / "inputs" / "spk_prompt_22k.wav", inputs / "voices" / "Alice.wav")
    shutil.copy(e2e_kit / "inputs" / "emo_prompt_16k.wav", inputs / "voices" / "Bob.wav")
    (inputs / "scene.srt").write_text(SRT, encoding="utf-8")
    model = n["IndexTTS2Loader"].execute("models/indextts2", "auto", "auto", False, False)[0]
    settings = n["IndexTTS2T2SSettings"].execute(False, 1.0, 1.0, 0, 1, 1.0, 0.0, 12, 120)[0]
    return n, model, settings, inputs


@pytest.mark.slow
def test_dub_an_srt_with_a_voices_folder(nodes):
    n, model, settings, inputs = nodes
    script_out = n["IndexTTS2LoadScript"].execute("", "scene.srt", "auto")
    script = script_out[0]
    assert "2 cue(s), srt" in script_out.ui["text"][0] and "[Alice] The robots sang." in script_out.ui["text"][0]
    voices = n["IndexTTS2VoiceSet"].execute(model, "", "voices", "")[0]
    assert voices.names == ["Alice", "Bob"]
    audio, report, srt, lines = n["IndexTTS2DubTimeline"].execute(model, script, voices, settings=settings, **DUB).args
    wav = audio["waveform"]
    assert audio["sample_rate"] == 22050 and wav.shape == (1, 1, 44100)
    for (start, end), line in zip([(4410, 19845), (22050, 35280)], lines):  # round(t * 22050)
        assert line["waveform"].shape[-1] == end - start
        assert torch.equal(wav[..., start:end], line["waveform"])
    assert not wav[..., :4410].any() and not wav[..., 19845:22050].any() and not wav[..., 35280:].any()
    assert "#1 (line 3) [Alice]" in report and "#2 (line 7) [Bob]" in report and srt == ""
    again = n["IndexTTS2DubTimeline"].execute(model, script, voices, settings=settings, **DUB).args
    assert torch.equal(again[0]["waveform"], wav) and report.count("[cached]") == 0
    assert again[1].count("[cached]") == 2  # the model's line cache: nothing generated twice


@pytest.mark.slow
def test_connected_speakers_and_a_typed_script(nodes):
    n, model, settings, inputs = nodes
    wav, sr = sf.read(str(inputs / "voices" / "Alice.wav"), dtype="float32")
    speaker = n["IndexTTS2EncodeSpeaker"].execute(model, {"waveform": torch.from_numpy(wav).reshape(1, 1, -1),
                                                          "sample_rate": sr})[0]
    voices = n["IndexTTS2VoiceSet"].execute(model, "Narrator", "(none)", "", speaker_1=speaker)[0]
    script = n["IndexTTS2LoadScript"].execute("The robots sang.\n[pause:0.2s]\n[Narrator] They slept.", "(the text "
                                              "above)", "script")[0]
    audio, report, srt, lines = n["IndexTTS2DubTimeline"].execute(model, script, voices, settings=settings,
                                                                  **{**DUB, "total_seconds": 0.0}).args
    assert len(lines) == 2 and srt.startswith("1\n00:00:00,000 --> ")
    gap = 6615  # 300 ms line gap
    first = lines[0]["waveform"].shape[-1]
    assert audio["waveform"].shape[-1] == first + gap + 4410 + gap + lines[1]["waveform"].shape[-1]


def test_refusals_name_node_and_input(nodes):
    n, model, settings, inputs = nodes
    with pytest.raises(ValueError, match="Load Subtitles / Script: line 2: cannot read the timing"):
        n["IndexTTS2LoadScript"].execute("1\n00:00:01 --> 00:00:02\nHi\n", "(the text above)", "srt")
    with pytest.raises(ValueError, match="Load Subtitles / Script: input 'file'"):
        n["IndexTTS2LoadScript"].execute("", "../outside.srt", "auto")
    with pytest.raises(ValueError, match="Voice Set: input 'speaker_1': no voices"):
        n["IndexTTS2VoiceSet"].execute(model, "", "(none)", "")
    with pytest.raises(ValueError, match="Voice Set: input 'names'"):
        n["IndexTTS2VoiceSet"].execute(model, "", "(none)", "", speaker_1=object())
    script = n["IndexTTS2LoadScript"].execute("[Carol] Hi there.", "(the text above)", "auto")[0]
    voices = n["IndexTTS2VoiceSet"].execute(model, "", "voices", "")[0]
    with pytest.raises(ValueError, match=r"Dub Timeline: cue 1 \(line 1\): no voice for \[Carol\]"):
        n["IndexTTS2DubTimeline"].execute(model, script, voices, settings=settings, **DUB)
