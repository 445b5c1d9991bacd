"""`python -m indextts2_core speak|download`: synthesis with the e2e kit's random-weight models in
both layouts, exact durations, 16-bit output, and the refusals (all before any model is loaded)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch

from conftest import ROOT
from e2e_fixtures import e2e25_kit, e2e_audio, e2e_kit, e2e_pack  # noqa: F401  (fixtures)
from indextts2_core.__main__ import main

FAST = ["--steps", "2", "--greedy", "--num-beams", "1", "--repetition-penalty", "1.0", "--max-mel-tokens", "12"]
TEXT = "The robots sang. Then they danced, and then they slept."


@pytest.fixture(scope="module")
def voice(e2e_audio, tmp_path_factory) -> Path:  # noqa: F811
    (wav, sr), _ = e2e_audio
    path = tmp_path_factory.mktemp("voice") / "voice.wav"
    sf.write(str(path), wav[0, : int(0.6 * sr)].numpy(), sr)  # short prompt: cheap encoders
    return path


def test_speak_official_layout_exact_seconds(e2e_kit, voice, tmp_path):  # noqa: F811
    out = tmp_path / "out.wav"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "indextts2_core", "speak", "--models", str(e2e_kit / "checkpoints"),
                           "--text", TEXT, "--max-segment-tokens", "8", "--silence-ms", "100", "--speaker", str(voice),
                           "--seconds", "0.6", "--seed", "1", "--device", "cpu", "--out", str(out), *FAST],
                          capture_output=True, text=True, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"wrote {out}" in proc.stderr and re.search(r"s, ([2-9]|\d\d+) segment\(s\)", proc.stderr)
    info = sf.info(str(out))  # 0.6 s exactly, the four 100 ms silences included
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (22050, 1, "PCM_16", round(0.6 * 22050))
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]  # no temporary file left


def test_speak_pack_layout_tokens_for_the_whole_text(e2e_pack, voice, tmp_path):  # noqa: F811
    from indextts2_core.model_files import ModelPaths
    from indextts2_core.text import TextTokenizer
    from indextts2_core.pipeline import plan_durations, text_segments
    from indextts2_core.timing import Timing

    plan = plan_durations(text_segments(TextTokenizer(ModelPaths.locate(e2e_pack).bpe), TEXT, 8), Timing(),
                          target_tokens=30)
    out = tmp_path / "sub" / "speech.wav"
    rc = main(["speak", "--models", str(e2e_pack), "--text", TEXT, "--speaker", str(voice), "--tokens", "30",
               "--max-segment-tokens", "8", "--emotion-vector", "0,0,0.4,0,0,0,0,0.2", "--emotion-alpha", "0.8",
               "--dtype", "bf16", "--device", "cpu", "--out", str(out), *FAST])
    assert rc == 0 and len(plan) >= 2 and sum(plan.tokens) == 30
    data, sr = sf.read(str(out), dtype="int16")
    first = int(plan.tokens[0] * 1.72) * 256
    assert sr == 22050 and len(data) == sum(int(t * 1.72) * 256 for t in plan.tokens) + (len(plan) - 1) * 4410
    assert not data[first: first + 4410].any() and data.any()


@pytest.mark.parametrize("extra, message", [
    (["--text", "  \n "], "text is empty"),
    (["--text", "!!! ???"], "no speakable content"),
    (["--text", "Hi there.", "--device", "tpu"], "unknown device"),
    (["--text", "Hi there.", "--normalize-emotion"], "--normalize-emotion"),
    (["--text", "Hi there.", "--emotion-alpha", "0.5"], "emotion_alpha needs an emotion source"),
    (["--text", "Hi there.", "--random-emotion"], "use_random"),
    (["--text", "Hi there.", "--emotion-vector", "0.5,0.5"], "needs 8 values"),
    (["--text", "Hi there.", "--seconds", "0.005"], "too short"),
    (["--text", "Hi there.", "--tokens", "0"], "target_tokens must be a positive integer"),
    (["--text", "Hi there.", "--tokens", "99999"], "at most"),
    (["--text", "Hi there.", "--seconds", "1e9"], "at most"),
    (["--text", "Hi there.", "--silence-ms", "1e8"], "interval silence"),
    (["--text", "Hi there.", "--steps", "0"], "steps"),
    (["--text", "Hi there.", "--cfg-rate", "1e30"], "cfg rate"),
    (["--text", "Hi there.", "--repetition-penalty", "1e-30"], "repetition_penalty"),
    (["--text", "Hi there.", "--emotion-vector", "1e30,0,0,0,0,0,0,0"], "emotion"),
])
def test_bad_requests(e2e_kit, voice, tmp_path, capsys, extra, message):  # noqa: F811
    out = tmp_path / "o.wav"
    rc = main(["speak", "--models", str(e2e_kit / "checkpoints"), "--speaker", str(voice), "--out", str(out), *extra])
    assert rc == 2 and message in capsys.readouterr().err and not out.exists()


def test_bad_speaker_files(e2e_kit, tmp_path, capsys):  # noqa: F811
    base = ["speak", "--models", str(e2e_kit / "checkpoints"), "--text", "Hi there.", "--out", str(tmp_path / "o.wav")]
    assert main(base + ["--speaker", str(tmp_path / "missing.wav")]) == 2
    assert "not found" in capsys.readouterr().err
    short = tmp_path / "short.wav"
    sf.write(str(short), (0.1 * torch.randn(2205)).numpy(), 22050)
    assert main(base + ["--speaker", str(short)]) == 2
    assert "too short: 0.100 s" in capsys.readouterr().err


def test_missing_models_name_every_file_and_the_download(voice, tmp_path, capsys):
    rc = main(["speak", "--models", str(tmp_path / "models"), "--text", "Hi.", "--speaker", str(voice),
               "--out", str(tmp_path / "o.wav")])
    err = capsys.readouterr().err
    assert rc == 2 and "gpt.pth" in err and "campplus_cn_common.bin" in err
    assert " download --models " in err  # model_files.download_command (works from any directory)


@pytest.mark.parametrize("extra", [
    ["--emotion-audio", "a.wav", "--emotion-vector", "1,0,0,0,0,0,0,0"],
    ["--seconds", "1", "--tokens", "5"],
    ["--emotion-vector", "happy"],
    ["--text", "a", "--text-file", "t.txt"],
])
def test_contradictory_options_are_refused(extra, tmp_path, capsys):
    argv = ["speak", "--models", "m", "--speaker", "s.wav", "--out", str(tmp_path / "o.wav")]
    if "--text" not in extra:
        argv += ["--text", "Hi."]
    with pytest.raises(SystemExit) as e:
        main(argv + extra)
    assert e.value.code == 2 and "error" in capsys.readouterr().err


def test_dub_writes_the_track_with_lines_at_exact_samples(e2e_kit, voice, tmp_path):  # noqa: F811
    srt = tmp_path / "scene.srt"
    srt.write_text("1\n00:00:00,250 --> 00:00:00,900\n[Alice] The robots sang.\n\n"
                   "2\n00:00:01,000 --> 00:00:01,500\n[Bob] They danced.\n", encoding="utf-8")
    out, report = tmp_path / "track.wav", tmp_path / "report.txt"
    rc = main(["dub", "--models", str(e2e_kit / "checkpoints"), "--script", str(srt), "--voice", f"Alice={voice}",
               "--voice", f"Bob={voice}", "--bounds", "0.1,10", "--overflow", "squeeze", "--total-seconds", "2",
               "--device", "cpu", "--report", str(report), "--out", str(out)])
    assert rc == 0
    data, sr = sf.read(str(out), dtype="int16")
    assert sr == 22050 and len(data) == 44100
    assert not data[:5513].any() and data[5513:19845].any() and not data[19845:22050].any()  # 5512.5: ties up
    text = report.read_text()
    assert "(sample 5513)" in text and "(sample 22050)" in text


@pytest.mark.parametrize("extra, message", [
    (["--voice", "Alice"], "NAME=FILE"),
    (["--voice", "Bob=x.wav"], "not found"),
    (["--bounds", "0.7"], "two numbers"),
    (["--voice", "Alice=VOICE", "--fit", "fast"], None),
])
def test_dub_refusals_before_any_model_loads(e2e_kit, voice, tmp_path, capsys, extra, message):  # noqa: F811
    script = tmp_path / "s.txt"
    script.write_text("[Carol] Hello there.\n", encoding="utf-8")
    argv = ["dub", "--models", str(tmp_path / "no-models"), "--script", str(script), "--out", str(tmp_path / "o.wav"),
            *[a.replace("VOICE", str(voice)) for a in extra]]
    if message is None:
        with pytest.raises(SystemExit):
            main(argv)
        return
    assert main(argv) == 2 and message in capsys.readouterr().err
    script.write_text("[Carol] Hello there.\n", encoding="utf-8")
    rc = main(["dub", "--models", str(tmp_path / "no-models"), "--script", str(script), "--voice", f"Alice={voice}",
               "--out", str(tmp_path / "o.wav")])
    assert rc == 2 and "no voice for [Carol]" in capsys.readouterr().err


def test_speak_indextts25_in_a_language_at_an_exact_length(e2e25_kit, voice, tmp_path):  # noqa: F811
    out = tmp_path / "ja.wav"
    rc = main(["speak", "--models", str(e2e25_kit / "checkpoints"), "--version", "2.5", "--lang", "ja",
               "--text", "こんにちは、世界。", "--speaker", str(voice), "--seconds", "0.9", "--device", "cpu",
               "--out", str(out), *FAST])
    assert rc == 0 and sf.info(str(out)).frames == round(0.9 * 22050)


def test_speak_refuses_a_language_or_version_the_folder_does_not_have(e2e_kit, e2e25_kit, voice, tmp_path,  # noqa: F811
                                                                    capsys):
    argv = ["--text", "Hola.", "--speaker", str(voice), "--out", str(tmp_path / "o.wav")]
    assert main(["speak", "--models", str(e2e_kit / "checkpoints"), "--lang", "es", *argv]) == 2
    assert "IndexTTS-2 has no language setting" in capsys.readouterr().err
    assert main(["speak", "--models", str(e2e25_kit / "checkpoints"), "--version", "2", *argv]) == 2
    assert "2.5" in capsys.readouterr().err
    both = tmp_path / "both"
    (both / "IndexTTS-2").mkdir(parents=True)
    (both / "IndexTTS-2.5").mkdir()
    assert main(["speak", "--models", str(both), *argv]) == 2
    assert "say which one to use" in capsys.readouterr().err
