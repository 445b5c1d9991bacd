"""Timeline dubbing in a real ComfyUI (skipped unless COMFYUI_DIR is set; see
tests/test_comfyui_integration.py): a 10-cue, two-speaker SRT from the input folder, voices from
input/voices, every cue placed at its exact start sample in the saved track; editing one line
reruns that line only (measured). The shipped "dub subtitles over a video" template runs on a
generated 6 s clip and saves a video whose soundtrack lasts as long as the clip."""

from __future__ import annotations

import re
import shutil
import time
import uuid
from fractions import Fraction

import pytest

from test_comfyui_integration import _Events, _history, start_server, stop_server
from test_workflows import template_prompt
from test_workflows_build import CLIP

pytestmark = pytest.mark.comfyui
CUES = [(0.30, 1.10, "Alice", "The robots sang."), (1.25, 2.00, "Bob", "Then they danced."),
        (2.20, 2.90, "Alice", "Where did they go?"), (3.05, 3.60, "Bob", "Out to the river."),
        (3.80, 4.70, "Alice", "Then they slept [pause:150ms] all night."), (4.90, 5.40, "Bob", "Good night."),
        (5.55, 6.30, "Alice", "The sun came up."), (6.45, 7.20, "Bob", "They woke and sang."),
        (7.40, 8.00, "Alice", "Again?"), (8.20, 9.00, "Bob", "Again, and again.")]


def srt(cues) -> str:
    def clock(t):
        ms = round(t * 1000)
        return f"00:00:{ms // 1000:02d},{ms % 1000:03d}"
    return "\n".join(f"{i}\n{clock(a)} --> {clock(b)}\n[{who}] {text}\n" for i, (a, b, who, text) in enumerate(cues, 1))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("comfyui_dub")
    proc, url = start_server(base, with_models=True)
    voices = base / "input" / "voices"
    voices.mkdir()
    shutil.copy(base / "input" / "indextts2_voice.wav", voices / "Alice.wav")
    shutil.copy(base / "input" / "indextts2_emotion_reference.wav", voices / "Bob.wav")
    try:
        yield {"url": url, "base": base}
    finally:
        stop_server(proc)


def graph(script_file: str, prefix: str) -> dict:
    return {
        "1": {"class_type": "IndexTTS2Loader", "inputs": {"model_folder": "models/indextts2", "device": "auto",
                                                           "precision": "auto", "download_missing": False,
                                                           "load_text_emotion": False}},
        "2": {"class_type": "IndexTTS2LoadScript", "inputs": {"text": "", "file": script_file, "format": "auto"}},
        "3": {"class_type": "IndexTTS2VoiceSet", "inputs": {"model": ["1", 0], "names": "", "voices_folder": "voices",
                                                             "default": ""}},
        "4": {"class_type": "IndexTTS2T2SSettings", "inputs": {
            "do_sample": False, "temperature": 1.0, "top_p": 1.0, "top_k": 0, "num_beams": 1, "repetition_penalty": 1.0,
            "length_penalty": 0.0, "max_mel_tokens": 50, "max_text_tokens_per_segment": 120}},
        "5": {"class_type": "IndexTTS2DubTimeline", "inputs": {
            "model": ["1", 0], "script": ["2", 0], "voices": ["3", 0], "settings": ["4", 0], "fit": "auto",
            "min_ratio": 0.1, "max_ratio": 10.0, "overflow": "squeeze", "overlap": "error", "total_seconds": 9.5,
            "language": "auto", "line_gap_ms": 300, "steps": 2, "cfg_rate": 0.7, "seed": 5}},
        "6": {"class_type": "SaveAudio", "inputs": {"audio": ["5", 0], "filename_prefix": prefix}},
    }


def run(server, name: str, cues) -> tuple[dict, float]:
    (server["base"] / "input" / name).write_text(srt(cues), encoding="utf-8")
    events = _Events(server["url"])
    try:
        t0 = time.time()
        pid = events.queue(server["url"], graph(name, f"audio/dub_{uuid.uuid4().hex[:6]}"))
        end = events.until(pid)
        assert end["type"] == "execution_success", str(end)[:3000]
        return _history(server["url"], pid), time.time() - t0
    finally:
        events.close()


def test_ten_cues_two_voices_at_exact_samples_and_one_edit_reruns_one_line(server):
    import soundfile as sf

    history, first_s = run(server, "scene.srt", CUES)
    saved = history["outputs"]["6"]["audio"][0]
    wav, rate = sf.read(server["base"] / "output" / saved["subfolder"] / saved["filename"], dtype="float32")
    report = history["outputs"]["5"]["text"][0]
    assert rate == 22050 and len(wav) == round(9.5 * 22050)
    starts = [int(m) for m in re.findall(r"\(sample (\d+)\)", report)]
    expected = [int(Fraction(str(a)) * 22050 + Fraction(1, 2)) for a, _, _, _ in CUES]
    assert starts == expected
    ends = [int(Fraction(str(b)) * 22050 + Fraction(1, 2)) for _, b, _, _ in CUES]
    previous = 0
    for start, end in zip(starts, ends):
        assert not wav[previous:start].any()  # silence up to the exact start sample
        assert abs(wav[start:end]).max() > 0  # the line fills its slot
        previous = end
    assert [w for w in re.findall(r"\[(Alice|Bob)\]", report)] == [c[2] for c in CUES]

    edited = list(CUES)
    edited[4] = (3.80, 4.70, "Alice", "Then they rested [pause:150ms] all night.")
    history, second_s = run(server, "scene_edited.srt", edited)
    report = history["outputs"]["5"]["text"][0]
    marks = ["[cached]" in row for row in report.splitlines() if row.startswith("#")]
    assert marks == [i != 4 for i in range(10)]  # one line generated again, nine from the line cache
    print(f"\n10-cue dub: first run {first_s:.1f} s, after editing one line {second_s:.1f} s")
    assert second_s < first_s


def test_subtitles_over_a_video_template_gives_a_soundtrack_as_long_as_the_clip(server):
    av = pytest.importorskip("av")  # ComfyUI's own video library
    import numpy as np

    clip = av.open(str(server["base"] / "input" / CLIP), "w")  # 6 s, 25 fps
    stream = clip.add_stream("mpeg4", rate=25)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    for i in range(150):
        for packet in stream.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), i, np.uint8), format="rgb24")):
            clip.mux(packet)
    for packet in stream.encode():
        clip.mux(packet)
    clip.close()
    prompt = template_prompt("IndexTTS2 dub subtitles over a video")
    for node in prompt.values():
        if node["class_type"] == "IndexTTS2DubTimeline":
            node["inputs"]["steps"] = 2  # the CPU's patience
        if node["class_type"] == "SaveVideo":
            node["inputs"]["filename_prefix"] = prefix = f"video/dub_{uuid.uuid4().hex[:6]}"
    events = _Events(server["url"])
    try:
        pid = events.queue(server["url"], prompt)
        end = events.until(pid)
        assert end["type"] == "execution_success", str(end)[:3000]
        history = _history(server["url"], pid)
    finally:
        events.close()
    report = next(v["text"][0] for v in history["outputs"].values() if "text" in v and "line(s)" in v["text"][0])
    assert report.startswith("2 line(s), 6.000 s (132300 samples at 22050 Hz)"), report
    saved = next((server["base"] / "output").glob(prefix + "*"))
    with av.open(str(saved)) as video:
        audio = video.streams.audio[0]
        assert abs(float(audio.duration * audio.time_base) - 6.0) < 0.05
        assert video.streams.video[0].frames == 150
