"""IndexTTS-2.5 in a real ComfyUI (skipped unless COMFYUI_DIR is set; see
tests/test_comfyui_integration.py): the public 2.5 e2e kit's random-weight files in
models/indextts2/IndexTTS-2.5; the shipped 2.5 templates run as the frontend sends them (Japanese;
Chinese and English; a Spanish and Arabic script through Dub Timeline, each line's language
detected), and Japanese switched to an exact 1.5 s gives exactly 1.5 × 22050 samples."""

from __future__ import annotations

import json
import uuid

import pytest

from conftest import E2E25_KIT
from test_comfyui_integration import _Events, _history, start_server, stop_server
from test_workflows import template_prompt

pytestmark = pytest.mark.comfyui


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("comfyui25")
    proc, url = start_server(base, with_models=True, kit=E2E25_KIT)
    try:
        yield {"url": url, "base": base}
    finally:
        stop_server(proc)


def _prompt(template: str, **t2s) -> dict:
    prompt = template_prompt(template)
    for node in prompt.values():
        if node["class_type"] == "IndexTTS2T2SGenerate":
            node["inputs"].update(t2s)
        if node["class_type"] in ("IndexTTS2S2M", "IndexTTS2DubTimeline"):
            node["inputs"]["steps"] = 4  # the CPU's patience; the template's other values stay
        if node["class_type"] == "SaveAudio":
            node["inputs"]["filename_prefix"] = f"audio/it25_{uuid.uuid4().hex[:6]}"
    return prompt


def _run(server, prompt) -> tuple[dict, str]:
    events = _Events(server["url"])
    try:
        pid = events.queue(server["url"], prompt)
        end = events.until(pid)
        assert end["type"] == "execution_success", json.dumps(end)[:3000]
        history = _history(server["url"], pid)
    finally:
        events.close()
    save = next(k for k, v in prompt.items() if v["class_type"] == "SaveAudio")
    return history, history["outputs"][save]["audio"][0]


def test_japanese_template_runs_and_exact_duration_is_sample_exact(server):
    import soundfile as sf

    history, saved = _run(server, _prompt("IndexTTS2 Japanese (2.5 model)"))
    loader = next(v for v in history["outputs"].values() if "text" in v and "IndexTTS-2.5" in v["text"][0])
    assert "IndexTTS-2.5" in loader["text"][0]
    wav, rate = sf.read(server["base"] / "output" / saved["subfolder"] / saved["filename"], dtype="float32")
    assert rate == 22050 and len(wav) > 0 and abs(wav).max() > 0

    _, saved = _run(server, _prompt("IndexTTS2 Japanese (2.5 model)", duration_mode="target seconds",
                                    target_seconds=1.5))
    wav, rate = sf.read(server["base"] / "output" / saved["subfolder"] / saved["filename"], dtype="float32")
    assert rate == 22050 and len(wav) == round(1.5 * 22050)  # 37.5 codes at 25 Hz, yet exact samples


def test_chinese_and_english_template_runs(server):
    import soundfile as sf

    # random weights stop at once on texts the kit did not calibrate: an exact length makes speech
    _, saved = _run(server, _prompt("IndexTTS2 Chinese and English (2.5 model)", duration_mode="target seconds",
                                    target_seconds=2.0))
    wav, rate = sf.read(server["base"] / "output" / saved["subfolder"] / saved["filename"], dtype="float32")
    assert rate == 22050 and len(wav) == 44100 and abs(wav).max() > 0


def test_spanish_and_arabic_script_runs_each_line_in_its_language(server):
    import soundfile as sf

    history, saved = _run(server, _prompt("IndexTTS2 Spanish and Arabic (2.5 model)"))
    wav, rate = sf.read(server["base"] / "output" / saved["subfolder"] / saved["filename"], dtype="float32")
    assert rate == 22050 and len(wav) > 0 and abs(wav).max() > 0
    report = next(v["text"][0] for v in history["outputs"].values() if "text" in v and "line(s)" in v["text"][0])
    assert "[es]" in report and "[ar]" in report, report
