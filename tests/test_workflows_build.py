"""The workflow templates as data, and how `workflows/*.json` are produced from it.

Each template is written here in API form (node id → class, widget values by name, links) plus a
note. `build_templates` loads each into the real ComfyUI frontend (headless Chromium), adds the
note, lays the graph out, and saves `app.graph.serialize()` (the UI format ComfyUI's template
browser needs) with a JPEG thumbnail. Regenerate with a running ComfyUI:

    COMFYUI_URL=http://127.0.0.1:8188 INDEXTTS2_BUILD_TEMPLATES=1 python -m pytest -q tests/test_workflows_build.py

Without those variables the test here is skipped; tests/test_workflows.py checks the committed
files without ComfyUI.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "workflows"

VOICE = "indextts2_voice.wav"
OTHER_VOICE = "indextts2_emotion_reference.wav"
CLIP = "indextts2_clip.mp4"
TEXT = "Hello! This voice was cloned from a few seconds of audio with IndexTTS2."


def _base(text=TEXT, t2s=None, s2m=None, loader=None, emotion_link=None):
    """Load voice → Load IndexTTS2 → Encode Speaker → T2S → S2M → Vocoder → Save Audio."""
    t2s_inputs = {"model": ["2", 0], "speaker": ["3", 0], "text": text, "duration_mode": "natural",
                  "target_tokens": 250, "target_seconds": 5.0, "interval_silence_ms": 200, "seed": 42}
    if emotion_link:
        t2s_inputs["emotion"] = emotion_link
    return {
        "1": {"class_type": "LoadAudio", "inputs": {"audio": VOICE}},
        "2": {"class_type": "IndexTTS2Loader", "inputs": {"model_folder": "models/indextts2", "device": "auto",
                                                           "precision": "auto", "download_missing": False,
                                                           "load_text_emotion": False, **(loader or {})}},
        "3": {"class_type": "IndexTTS2EncodeSpeaker", "inputs": {"model": ["2", 0], "audio": ["1", 0]}},
        "4": {"class_type": "IndexTTS2T2SGenerate", "inputs": {**t2s_inputs, **(t2s or {})}},
        "5": {"class_type": "IndexTTS2S2M", "inputs": {"model": ["2", 0], "semantic": ["4", 0], "speaker": ["3", 0],
                                                        "steps": 25, "cfg_rate": 0.7, "duration": "auto",
                                                        "target_seconds": 5.0, "target_frames": 430, "seed": 42,
                                                        **(s2m or {})}},
        "6": {"class_type": "IndexTTS2Vocoder", "inputs": {"model": ["2", 0], "mel": ["5", 0]}},
        "7": {"class_type": "SaveAudio", "inputs": {"audio": ["6", 0], "filename_prefix": "audio/IndexTTS2"}},
    }


def _emotions(**weights):
    from indextts2_core.emotion.vectors import EMOTIONS

    return {name: float(weights.get(name, 0.0)) for name in EMOTIONS}


def templates() -> dict[str, tuple[dict, str]]:
    """name → (API-form graph, note text)."""
    out = {}
    out["indextts2_basic_voice_clone"] = (_base(), (
        "Basic voice clone. Put a 3–15 s recording of the voice in ComfyUI/input and pick it in Load Audio, type "
        "the text in T2S Generate, and run. The model files go in ComfyUI/models/indextts2 (see the pack's "
        "README; or turn on download_missing once). Each stage is its own node, so changing S2M or the "
        "vocoder does not rerun the GPT."))
    g = _base(emotion_link=["9", 0], text="I can't believe you did that. That was the best surprise ever!")
    g["8"] = {"class_type": "LoadAudio", "inputs": {"audio": OTHER_VOICE}}
    g["9"] = {"class_type": "IndexTTS2EmotionFromAudio", "inputs": {"model": ["2", 0], "audio": ["8", 0], "alpha": 0.8}}
    out["indextts2_emotion_from_audio"] = (g, (
        "Cross-speaker emotion transfer. The voice comes from the first Load Audio; the emotion comes from a "
        "second recording, which may be of anyone. alpha 0 keeps the speaker's own emotion, 1 copies the "
        "reference's."))
    g = _base(emotion_link=["9", 0], text="We won! We actually won the whole thing!")
    g["9"] = {"class_type": "IndexTTS2EmotionFromVector",
              "inputs": {"model": ["2", 0], "speaker": ["3", 0], **_emotions(happy=0.6, surprised=0.3), "alpha": 1.0,
                         "normalize": False}}
    out["indextts2_emotion_vector"] = (g, (
        "Emotion from eight weights (happy, angry, sad, afraid, disgusted, melancholic, surprised, calm). The "
        "chart on the node shows the mix; the rest (1 − sum) stays the speaker's own emotion. 'normalize' "
        "applies the official web UI's scaling (total capped at 0.8)."))
    g = _base(emotion_link=["9", 0], loader={"load_text_emotion": True},
              text="Please, don't go. I'm begging you, stay a little longer.")
    g["9"] = {"class_type": "IndexTTS2EmotionFromText",
              "inputs": {"model": ["2", 0], "speaker": ["3", 0],
                         "text": "Please, don't go. I'm begging you, stay a little longer.", "alpha": 0.6}}
    out["indextts2_emotion_from_text"] = (g, (
        "Emotion read from text by the Qwen emotion model (turn on load_text_emotion in the loader; its files "
        "are in IndexTTS-2/qwen0.6bemo4-merge). The description can be the spoken line itself or any "
        "sentence; alpha ≈ 0.6 as the official README suggests."))
    out["indextts2_exact_duration"] = (_base(t2s={"duration_mode": "target seconds", "target_seconds": 4.0},
                                             text="This sentence lasts exactly four seconds."), (
        "Exact duration. T2S Generate in 'target seconds' mode plans every segment's tokens, mel frames and "
        "samples (the silences between segments included); S2M 'auto' follows, and the vocoder output has "
        "exactly target_seconds × 22050 samples."))
    g = _base(t2s={"duration_mode": "target seconds", "target_seconds": ["11", 0]},
              text="Welcome back. Today we look at how this shot was made.")
    del g["7"]
    g["9"] = {"class_type": "LoadVideo", "inputs": {"file": CLIP}}
    g["10"] = {"class_type": "GetVideoComponents", "inputs": {"video": ["9", 0]}}
    g["11"] = {"class_type": "IndexTTS2DurationFromVideo", "inputs": {"images": ["10", 0], "fps": ["10", 2],
                                                                       "frame_count": 81}}
    g["12"] = {"class_type": "CreateVideo", "inputs": {"images": ["10", 0], "audio": ["6", 0], "fps": ["10", 2]}}
    g["13"] = {"class_type": "SaveVideo", "inputs": {"video": ["12", 0], "filename_prefix": "video/IndexTTS2",
                                                      "format": "auto", "codec": "auto"}}
    out["indextts2_video_dubbing"] = (g, (
        "Dubbing a clip. Duration from Video measures the frames (count / fps); T2S Generate makes speech of "
        "exactly that length; Create Video puts speech and frames together. Create Video cuts audio to the "
        "video length, so matching the length first keeps every word."))
    out["indextts2_speak_one_node"] = ({
        "1": {"class_type": "LoadAudio", "inputs": {"audio": VOICE}},
        "2": {"class_type": "IndexTTS2Loader", "inputs": {"model_folder": "models/indextts2", "device": "auto",
                                                           "precision": "auto", "download_missing": False,
                                                           "load_text_emotion": False}},
        "3": {"class_type": "IndexTTS2Speak", "inputs": {"model": ["2", 0], "speaker_audio": ["1", 0], "text": TEXT,
                                                          "emotion_alpha": 1.0, "target_seconds": 0.0,
                                                          "interval_silence_ms": 200, "seed": 42}},
        "4": {"class_type": "SaveAudio", "inputs": {"audio": ["3", 0], "filename_prefix": "audio/IndexTTS2"}},
    }, ("One node: IndexTTS2 Speak runs the whole chain (speaker, optional emotion audio, GPT, S2M, vocoder) "
        "with the official settings. Use the separate nodes for emotion vectors/text and finer control."))
    return out


BUILD_JS = """
const [graph, name, note, done] = arguments;
(async () => {
  try {
    app.graph.clear();
    await app.loadApiJson(graph, name + ".json");
    const n = LiteGraph.createNode("Note");
    n.widgets[0].value = note;
    n.title = "About this workflow";
    n.size = [420, 160];
    app.graph.add(n);
    for (const node of app.graph._nodes)  // fixed seeds: reruns hit ComfyUI's cache
      for (const w of node.widgets ?? []) if (w.name === "control_after_generate") w.value = "fixed";
    app.graph.arrange(60);
    n.pos = [40, -220];
    app.canvas.ds.offset = [30, 250]; app.canvas.ds.scale = 0.62;
    app.graph.setDirtyCanvas(true, true);
    const prompt = await app.graphToPrompt();
    done(JSON.stringify({workflow: app.graph.serialize(), api: prompt.output}));
  } catch (e) { done(JSON.stringify({error: String(e && e.stack || e)})); }
})();
"""


def open_browser(url: str, tmp_dir: Path):
    """Headless Debian Chromium on a fresh profile, with the console log captured."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage", "--window-size=1600,900",
                 f"--user-data-dir={tmp_dir}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")), options=opts)
    driver.set_script_timeout(60)
    driver.get(url)
    import time

    deadline = time.time() + 60
    while time.time() < deadline:
        if driver.execute_script("return !!(window.app && window.app.graph && window.LiteGraph)"):
            break
        time.sleep(0.5)
    else:
        driver.quit()
        raise RuntimeError("ComfyUI frontend did not start")
    time.sleep(1.5)
    driver.execute_script("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape'}))")
    return driver


def build_templates(url: str, out_dir: Path, tmp_dir: Path) -> dict[str, dict]:
    """Write <name>.json (UI format) and <name>.jpg for every template; return the API prompts."""
    from PIL import Image

    driver = open_browser(url, tmp_dir)
    prompts = {}
    try:
        for name, (graph, note) in templates().items():
            result = json.loads(driver.execute_async_script(BUILD_JS, graph, name, note))
            if "error" in result:
                raise RuntimeError(f"{name}: {result['error']}")
            (out_dir / f"{name}.json").write_text(json.dumps(result["workflow"], indent=2, ensure_ascii=False) + "\n")
            png = tmp_dir / f"{name}.png"
            driver.save_screenshot(str(png))
            Image.open(png).convert("RGB").resize((800, 450)).save(out_dir / f"{name}.jpg", quality=85)
            prompts[name] = result["api"]
    finally:
        driver.quit()
    return prompts


@pytest.mark.comfyui
def test_build_templates(tmp_path):
    url = os.environ.get("COMFYUI_URL")
    if not (url and os.environ.get("INDEXTTS2_BUILD_TEMPLATES")):
        pytest.skip("set COMFYUI_URL (a running ComfyUI with this pack) and INDEXTTS2_BUILD_TEMPLATES=1 to rebuild workflows/")
    prompts = build_templates(url, WORKFLOWS, tmp_path)
    assert set(prompts) == set(templates())
