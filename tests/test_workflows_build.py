"""The workflow templates as data, and how `example_workflows/` is produced from it.

Each template is a `Template` in `TEMPLATES`: its card title (also the file name: ComfyUI 0.3.64
shows a custom node template's file name as its title and reads no other metadata), a one-line
description (shown on the card by web/js/templates.js from web/template_cards.json), the graph in
API form (node id → class, widget values by name, links), a note, and the few nodes its thumbnail
shows. To add a template, append one `Template(...)` (a graph from `_base` or written out) and
rebuild.

`build_templates` loads each graph into the real ComfyUI frontend (headless Chromium) with the
pack's web extension, adds the note, lays the graph out, and saves `app.graph.serialize()` (the UI
format the template browser needs) as `<title>.json`; `<title>.jpg` is a square card picture of
the key nodes (titles and key settings drawn large enough to read at the card's 256 px); the
README's screenshots in docs/ are taken from the same frontend. Regenerate with a running ComfyUI
that has this pack (its Python has Pillow and selenium):

    COMFYUI_URL=http://127.0.0.1:8188 INDEXTTS2_BUILD_TEMPLATES=1 python -m pytest -q tests/test_workflows_build.py

Without those variables the test here is skipped; tests/test_workflows.py checks the committed
files without ComfyUI.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "example_workflows"
CARDS = ROOT / "web" / "template_cards.json"
DOCS = ROOT / "docs"

VOICE = "indextts2_voice.wav"
OTHER_VOICE = "indextts2_emotion_reference.wav"
CLIP = "indextts2_clip.mp4"
TEXT = "Hello! This voice was cloned from a few seconds of audio with IndexTTS2."


@dataclass(frozen=True)
class Template:
    title: str  # card title and file name: letters, digits, spaces and ( ) , . ' only
    description: str  # one line under the title on the card
    graph: dict  # API form
    note: str  # the "About this workflow" note inside the graph
    key_nodes: tuple = field(default=())  # ((node id, (widget names shown)), ...) for the thumbnail

    @property
    def name(self) -> str:
        return self.title


def _base(text=TEXT, t2s=None, s2m=None, loader=None, emotion_link=None):
    """Load voice → Load IndexTTS2 → Encode Speaker → T2S → S2M → Vocoder → Save Audio (ids 1–7)."""
    t2s_inputs = {"model": ["2", 0], "speaker": ["3", 0], "text": text, "duration_mode": "natural",
                  "target_tokens": 250, "target_seconds": 5.0, "language": "auto", "interval_silence_ms": 200,
                  "seed": 42}
    if emotion_link:
        t2s_inputs["emotion"] = emotion_link
    return {
        "1": {"class_type": "LoadAudio", "inputs": {"audio": VOICE}},
        "2": {"class_type": "IndexTTS2Loader", "inputs": {"model_folder": "models/indextts2", "device": "auto",
                                                           "precision": "auto", "download_missing": False,
                                                           "load_text_emotion": False, "glossary": "",
                                                           **(loader or {})}},
        "3": {"class_type": "IndexTTS2EncodeSpeaker", "inputs": {"model": ["2", 0], "audio": ["1", 0]}},
        "4": {"class_type": "IndexTTS2T2SGenerate", "inputs": {**t2s_inputs, **(t2s or {})}},
        "5": {"class_type": "IndexTTS2S2M", "inputs": {"model": ["2", 0], "semantic": ["4", 0], "speaker": ["3", 0],
                                                        "steps": 25, "cfg_rate": 0.7, "duration": "auto",
                                                        "target_seconds": 5.0, "duration_factor": 1.0,
                                                        "target_frames": 430, "seed": 42,
                                                        **(s2m or {})}},
        "6": {"class_type": "IndexTTS2Vocoder", "inputs": {"model": ["2", 0], "mel": ["5", 0]}},
        "7": {"class_type": "SaveAudio", "inputs": {"audio": ["6", 0], "filename_prefix": "audio/IndexTTS2"}},
    }


def _emotions(**weights):
    from indextts2_core.emotion.vectors import EMOTIONS

    return {name: float(weights.get(name, 0.0)) for name in EMOTIONS}


def _emotion_from_audio() -> dict:
    g = _base(emotion_link=["9", 0], text="I can't believe you did that. That was the best surprise ever!")
    g["8"] = {"class_type": "LoadAudio", "inputs": {"audio": OTHER_VOICE}}
    g["9"] = {"class_type": "IndexTTS2EmotionFromAudio", "inputs": {"model": ["2", 0], "audio": ["8", 0], "alpha": 0.8}}
    return g


def _emotion_vector() -> dict:
    g = _base(emotion_link=["9", 0], text="We won! We actually won the whole thing!")
    g["9"] = {"class_type": "IndexTTS2EmotionFromVector",
              "inputs": {"model": ["2", 0], "speaker": ["3", 0], **_emotions(happy=0.6, surprised=0.3), "alpha": 1.0,
                         "normalize": False}}
    return g


def _emotion_from_text() -> dict:
    line = "Please, don't go. I'm begging you, stay a little longer."
    g = _base(emotion_link=["9", 0], loader={"load_text_emotion": True}, text=line)
    g["9"] = {"class_type": "IndexTTS2EmotionFromText",
              "inputs": {"model": ["2", 0], "speaker": ["3", 0], "text": line, "alpha": 0.6,
                                                                   "seed": 42}}
    return g


def _video_dubbing() -> dict:
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
    return g


def _speak() -> dict:
    return {
        "1": {"class_type": "LoadAudio", "inputs": {"audio": VOICE}},
        "2": {"class_type": "IndexTTS2Loader", "inputs": {"model_folder": "models/indextts2", "device": "auto",
                                                           "precision": "auto", "download_missing": False,
                                                           "load_text_emotion": False, "glossary": ""}},
        "3": {"class_type": "IndexTTS2Speak", "inputs": {"model": ["2", 0], "speaker_audio": ["1", 0], "text": TEXT,
                                                          "emotion_alpha": 1.0, "target_seconds": 0.0,
                                                          "language": "auto", "interval_silence_ms": 200, "seed": 42}},
        "4": {"class_type": "SaveAudio", "inputs": {"audio": ["3", 0], "filename_prefix": "audio/IndexTTS2"}},
    }



SUBTITLES = """1
00:00:00,400 --> 00:00:02,600
Welcome back. Today we look at how this shot was made.

2
00:00:03,000 --> 00:00:05,200
The light comes from one window, [pause:200ms] nothing else.
"""

DIALOGUE = """[Alice] Did you hear that? Something moved outside. {afraid: 0.6}
[pause:0.5s]
[Bob] It's only the wind. Go back to sleep. {calm: 0.7}
[Alice] I'm not sure it was the wind. {sad: 0.3, afraid: 0.4}
"""


def _dub(script: str, total_seconds: float = 0.0, **extra) -> dict:
    """Load Subtitles / Script → Dub Timeline with a Voice Set (ids 1–5); callers add voices and output."""
    return {
        "1": {"class_type": "IndexTTS2Loader", "inputs": {"model_folder": "models/indextts2", "device": "auto",
                                                           "precision": "auto", "download_missing": False,
                                                           "load_text_emotion": False, "glossary": "",
                                                           **extra.get("loader", {})}},
        "2": {"class_type": "IndexTTS2LoadScript", "inputs": {"text": script, "file": "(the text above)",
                                                               "format": "auto"}},
        "5": {"class_type": "IndexTTS2DubTimeline", "inputs": {
            "model": ["1", 0], "script": ["2", 0], "voices": ["4", 0], "fit": "auto", "min_ratio": 0.7,
            "max_ratio": 1.4, "overflow": "extend", "overlap": "error", "total_seconds": total_seconds,
            "language": "auto", "line_gap_ms": 300, "steps": 25, "cfg_rate": 0.7, "seed": 42}},
    }


def _dub_srt_over_video() -> dict:
    g = _dub(SUBTITLES)
    g["3"] = {"class_type": "LoadAudio", "inputs": {"audio": VOICE}}
    g["6"] = {"class_type": "IndexTTS2EncodeSpeaker", "inputs": {"model": ["1", 0], "audio": ["3", 0]}}
    g["4"] = {"class_type": "IndexTTS2VoiceSet", "inputs": {"model": ["1", 0], "names": "Narrator",
                                                             "voices_folder": "(none)", "default": "",
                                                             "speaker_1": ["6", 0]}}
    g["7"] = {"class_type": "LoadVideo", "inputs": {"file": CLIP}}
    g["8"] = {"class_type": "GetVideoComponents", "inputs": {"video": ["7", 0]}}
    g["5"]["inputs"]["video"] = ["7", 0]
    g["9"] = {"class_type": "CreateVideo", "inputs": {"images": ["8", 0], "audio": ["5", 0], "fps": ["8", 2]}}
    g["10"] = {"class_type": "SaveVideo", "inputs": {"video": ["9", 0], "filename_prefix": "video/IndexTTS2_dub",
                                                      "format": "auto", "codec": "auto"}}
    return g


def _dialogue() -> dict:
    g = _dub(DIALOGUE)
    g["3"] = {"class_type": "LoadAudio", "inputs": {"audio": VOICE}}
    g["6"] = {"class_type": "IndexTTS2EncodeSpeaker", "inputs": {"model": ["1", 0], "audio": ["3", 0]}}
    g["7"] = {"class_type": "LoadAudio", "inputs": {"audio": OTHER_VOICE}}
    g["8"] = {"class_type": "IndexTTS2EncodeSpeaker", "inputs": {"model": ["1", 0], "audio": ["7", 0]}}
    g["4"] = {"class_type": "IndexTTS2VoiceSet", "inputs": {"model": ["1", 0], "names": "Alice, Bob",
                                                             "voices_folder": "(none)", "default": "",
                                                             "speaker_1": ["6", 0], "speaker_2": ["8", 0]}}
    g["9"] = {"class_type": "SaveAudio", "inputs": {"audio": ["5", 0], "filename_prefix": "audio/IndexTTS2_dialogue"}}
    return g


def _multilingual_script() -> dict:
    g = _dub("[Ana] ¡Hola a todos! Hoy hablamos de cómo se hizo esta escena.\n"
             "[Ana] مرحبا بكم جميعا، اليوم نتحدث عن هذا المشهد.\n",
             loader={"model_folder": "models/indextts2 (IndexTTS-2.5)"})
    g["3"] = {"class_type": "LoadAudio", "inputs": {"audio": VOICE}}
    g["6"] = {"class_type": "IndexTTS2EncodeSpeaker", "inputs": {"model": ["1", 0], "audio": ["3", 0]}}
    g["4"] = {"class_type": "IndexTTS2VoiceSet", "inputs": {"model": ["1", 0], "names": "Ana",
                                                             "voices_folder": "(none)", "default": "",
                                                             "speaker_1": ["6", 0]}}
    g["9"] = {"class_type": "SaveAudio", "inputs": {"audio": ["5", 0], "filename_prefix": "audio/IndexTTS2_es_ar"}}
    return g


def _indextts25(language: str, text: str) -> dict:
    return _base(text=text, loader={"model_folder": "models/indextts2 (IndexTTS-2.5)"},
                 t2s={"language": language}, s2m={"duration_factor": 1.1})


TEMPLATES = [
    Template(
        "IndexTTS2 voice clone", "Clone a voice from one short recording, one node per stage.", _base(),
        "Basic voice clone. Put a 3–15 s recording of the voice in ComfyUI/input and pick it in Load Audio, type "
        "the text in T2S Generate, and run. The model files go in ComfyUI/models/indextts2 (see the pack's "
        "README; or turn on download_missing once). Each stage is its own node, so changing S2M or the "
        "vocoder does not rerun the GPT.",
        (("1", ("audio",)), ("4", ("text",)), ("5", ("steps",)), ("7", ()))),
    Template(
        "IndexTTS2 emotion from another recording",
        "One voice, the emotion of a second recording (any speaker).", _emotion_from_audio(),
        "Cross-speaker emotion transfer. The voice comes from the first Load Audio; the emotion comes from a "
        "second recording, which may be of anyone. alpha 0 keeps the speaker's own emotion, 1 copies the "
        "reference's.",
        (("1", ("audio",)), ("8", ("audio",)), ("9", ("alpha",)), ("4", ("text",)))),
    Template(
        "IndexTTS2 emotion sliders", "Set the emotion with eight weights; the node charts the mix.",
        _emotion_vector(),
        "Emotion from eight weights (happy, angry, sad, afraid, disgusted, melancholic, surprised, calm). The "
        "chart on the node shows the mix; the rest (1 − sum) stays the speaker's own emotion. 'normalize' "
        "applies the official web UI's scaling (total capped at 0.8).",
        (("9", ("happy", "surprised")), ("4", ("text",)), ("7", ()))),
    Template(
        "IndexTTS2 emotion from text", "Describe the emotion in words; the Qwen emotion model reads it.",
        _emotion_from_text(),
        "Emotion read from text by the Qwen emotion model (turn on load_text_emotion in the loader; its files "
        "are in IndexTTS-2/qwen0.6bemo4-merge). The description can be the spoken line itself or any "
        "sentence; alpha ≈ 0.6 as the official README suggests.",
        (("2", ("load_text_emotion",)), ("9", ("text", "alpha")), ("4", ("text",)), ("7", ()))),
    Template(
        "IndexTTS2 exact duration", "Speech that lasts exactly 4 s (88200 samples), pauses included.",
        _base(t2s={"duration_mode": "target seconds", "target_seconds": 4.0},
              text="This sentence lasts exactly four seconds."),
        "Exact duration. T2S Generate in 'target seconds' mode plans every segment's tokens, mel frames and "
        "samples (the silences between segments included); S2M 'auto' follows, and the vocoder output has "
        "exactly target_seconds × 22050 samples.",
        (("4", ("duration_mode", "target_seconds")), ("5", ("duration",)), ("7", ()))),
    Template(
        "IndexTTS2 video dubbing", "Measure a clip, speak a line of exactly its length, save the video.",
        _video_dubbing(),
        "Dubbing a clip. Duration from Video measures the clip (frames / fps); T2S Generate makes speech of "
        "exactly that length; Create Video puts speech and frames together. Create Video cuts audio to the "
        "video length, so matching the length first keeps every word.",
        (("9", ("file",)), ("11", ()), ("4", ("duration_mode",)), ("13", ()))),
    Template(
        "IndexTTS2 Speak in one node", "The whole chain in one node, with the official settings.", _speak(),
        "One node: IndexTTS2 Speak runs the whole chain (speaker, optional emotion audio, GPT, S2M, vocoder) "
        "with the official settings. Use the separate nodes for emotion vectors/text and finer control.",
        (("1", ("audio",)), ("3", ("text",)), ("4", ()))),
    Template(
        "IndexTTS2 dub subtitles over a video", "Every subtitle spoken in its slot, on the clip's soundtrack.",
        _dub_srt_over_video(),
        "Subtitle dubbing. Paste SRT/WebVTT into Load Subtitles (or pick a .srt file from ComfyUI/input). Dub "
        "Timeline fits every cue to its slot natively (exact tokens at T2S, exact frames at S2M; fit 'auto' "
        "keeps the speech within 0.7–1.4× its natural pace) and places it at its exact start sample; the "
        "track lasts as long as the connected video. The report output lists every cue's decisions.",
        (("2", ("format",)), ("4", ("names",)), ("5", ("fit", "overflow")), ("10", ()))),
    Template(
        "IndexTTS2 dialogue for two voices", "A script with two voices, pauses and per-line emotions, one track.",
        _dialogue(),
        "Dialogue from a script: one [Name] line per utterance, [pause:0.5s] between lines, {afraid: 0.6} per "
        "line ({emotion: \"whispering\"} reads it from text: turn on load_text_emotion on the loader). Voice Set "
        "names the connected voices in order, or reads every file of a folder in ComfyUI/input "
        "(voices/Alice.wav is [Alice]). Editing one line regenerates only that line.",
        (("3", ("audio",)), ("7", ("audio",)), ("4", ("names",)), ("5", ("line_gap_ms",)), ("9", ()))),
    Template(
        "IndexTTS2 Japanese (2.5 model)", "IndexTTS-2.5 speaking Japanese, a touch slower (duration factor 1.1).",
        _indextts25("ja", "こんにちは。今日は新しいモデルで、日本語を話してみます。"),
        "IndexTTS-2.5 (put IndexTeam/IndexTTS-2.5 in ComfyUI/models/indextts2/IndexTTS-2.5, or turn on "
        "download_missing once). It reads Chinese, English, Japanese, Spanish and Arabic: set 'language' or "
        "leave it on auto. Japanese needs fugashi and unidic-lite (installed with the pack's requirements). "
        "duration_factor stretches the natural length as the official 2.5 does; the exact-duration modes "
        "work as with IndexTTS-2.",
        (("2", ("model_folder",)), ("4", ("language",)), ("5", ("duration_factor",)), ("7", ()))),
    Template(
        "IndexTTS2 Chinese and English (2.5 model)", "IndexTTS-2.5 reading mixed Chinese and English text.",
        _indextts25("auto", "今天我们用 IndexTTS 2.5 来试一试，English words inside a Chinese sentence 也没问题。"),
        "IndexTTS-2.5 with language on auto. Auto picks the language of the whole text by its script: kana → "
        "ja, Arabic letters → ar, Chinese characters → zh (English words inside stay English, as officially), "
        "Spanish letters (ñ, á, ¿ …) → es, else en. Set 'language' when a text is ambiguous.",
        (("2", ("model_folder",)), ("4", ("language",)), ("7", ()))),
    Template(
        "IndexTTS2 Spanish and Arabic (2.5 model)", "A script in Spanish and Arabic, each line in its language.",
        _multilingual_script(),
        "IndexTTS-2.5 through Dub Timeline: with language on auto every line's language is detected on its "
        "own (here Spanish, then Arabic), all in the one cloned voice. The same works on T2S Generate for a "
        "single language (set es or ar there).",
        (("2", ("format",)), ("4", ("names",)), ("5", ("language",)), ("9", ()))),
]

def templates() -> dict[str, Template]:
    """name (= title = file stem) → Template."""
    return {t.name: t for t in TEMPLATES}


def cards() -> dict[str, dict]:
    """What web/js/templates.js shows on each card (web/template_cards.json)."""
    return {t.name: {"title": t.title, "description": t.description} for t in TEMPLATES}


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


def open_browser(url: str, tmp_dir: Path, size=(1600, 900)):
    """Headless Debian Chromium on a fresh profile, with the console log captured."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
                 f"--window-size={size[0]},{size[1]}", f"--user-data-dir={tmp_dir}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")), options=opts)
    driver.set_script_timeout(60)
    driver.get(url)
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
    # the minimap (on by default in this frontend) would cover part of every screenshot
    driver.execute_script("const s = app.extensionManager?.setting;"
                          "if (s?.get('Comfy.Minimap.Visible')) return s.set('Comfy.Minimap.Visible', false)")
    return driver


# ---- thumbnails: the key nodes as ComfyUI draws them (title bar, widget rows, links), sized for a card

SIZE = 512  # shown at 256 x 256 on the card (w-64 h-64, object-contain)
BG, NODE, TITLE_BG, ROW_BG = (32, 32, 32), (53, 53, 53), (40, 40, 40), (34, 34, 34)
TEXT_RGB, MUTED, LINK = (230, 230, 230), (170, 170, 170), (140, 200, 120)


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)  # Pillow's own TrueType font: the same on every machine


def _shown(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, list):
        return "(linked)"
    return str(value)


def _fit(draw, text: str, font, width: float) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text.rstrip() + "…"


def thumbnail(template: Template, titles: dict[str, str], path: Path) -> None:
    """Key nodes stacked in a zig-zag, linked in order, each with its title and chosen widget values."""
    from PIL import Image, ImageDraw

    title_font, row_font = _font(26), _font(21)
    title_h, row_h, gap, margin, width = 46, 34, 22, 18, SIZE - 2 * 18 - 48
    boxes = []
    for _node_id, rows in template.key_nodes:
        boxes.append(title_h + row_h * len(rows) + (8 if rows else 0))
    total = sum(boxes) + gap * (len(boxes) - 1)
    y = (SIZE - total) / 2
    img = Image.new("RGB", (SIZE, SIZE), BG)
    d = ImageDraw.Draw(img)
    for x in range(0, SIZE, 32):  # the canvas grid
        d.line([(x, 0), (x, SIZE)], fill=(38, 38, 38))
        d.line([(0, x), (SIZE, x)], fill=(38, 38, 38))
    placed = []
    for i, height in enumerate(boxes):
        placed.append((margin + (48 if i % 2 else 0), y, height))
        y += height + gap
    ends = []
    for (x0, y0, _h0), (x1, y1, _h1) in zip(placed, placed[1:]):  # links run under the nodes, as on the canvas
        a, b = (x0 + width, y0 + title_h / 2), (x1, y1 + title_h / 2)
        d.line([_bezier(a, (a[0] + 90, a[1]), (b[0] - 90, b[1]), b, t / 32) for t in range(33)], fill=LINK, width=4,
               joint="curve")
        ends += [a, b]
    for (x, y, height), (node_id, rows) in zip(placed, template.key_nodes):
        node = template.graph[node_id]
        d.rounded_rectangle([x, y, x + width, y + height], radius=10, fill=NODE, outline=(20, 20, 20), width=2)
        d.rounded_rectangle([x, y, x + width, y + title_h], radius=10, fill=TITLE_BG)
        d.rectangle([x, y + title_h - 10, x + width, y + title_h], fill=TITLE_BG)
        d.ellipse([x + 14, y + 17, x + 26, y + 29], fill=(120, 120, 120))
        d.text((x + 36, y + title_h / 2), _fit(d, titles[node["class_type"]], title_font, width - 46),
               font=title_font, fill=TEXT_RGB, anchor="lm")
        for j, name in enumerate(rows):
            top = y + title_h + 4 + j * row_h
            d.rounded_rectangle([x + 10, top + 2, x + width - 10, top + row_h - 2], radius=12, fill=ROW_BG)
            label = name.replace("_", " ")
            d.text((x + 22, top + row_h / 2), label, font=row_font, fill=MUTED, anchor="lm")
            room = width - 44 - d.textlength(label, font=row_font) - 16
            d.text((x + width - 22, top + row_h / 2), _fit(d, _shown(node["inputs"][name]), row_font, room),
                   font=row_font, fill=TEXT_RGB, anchor="rm")
    for p in ends:
        d.ellipse([p[0] - 7, p[1] - 7, p[0] + 7, p[1] + 7], fill=LINK)
    img.save(path, quality=90)


def _bezier(p0, p1, p2, p3, t):
    u = 1 - t
    return tuple(u ** 3 * a + 3 * u * u * t * b + 3 * u * t * t * c + t ** 3 * e for a, b, c, e in zip(p0, p1, p2, p3))


# ---- README screenshots, from the same frontend

SHOT_JS = """
const [kind, done] = arguments;
(async () => {
  const set = (n, name, v) => { const w = n.widgets.find(w => w.name === name); w.value = v; w.callback?.(v); };
  const find = (c) => app.graph._nodes.find(n => n.comfyClass === c);
  if (kind === "nodes") {  // T2S with its readout beside the emotion chart, at full size
    app.graph.clear();
    const add = (type, pos) => { const n = LiteGraph.createNode(type); n.pos = pos; app.graph.add(n); return n; };
    const e = add("IndexTTS2EmotionFromVector", [20, 20]);
    set(e, "happy", 0.6); set(e, "surprised", 0.3); set(e, "alpha", 0.9);
    const t = add("IndexTTS2T2SGenerate", [400, 20]);
    t.widgets.find(w => w.name === "text").value = "We won! We actually won the whole thing!";
    set(t, "duration_mode", "target seconds"); set(t, "target_seconds", 4.0);
    const s = add("IndexTTS2S2M", [840, 20]);
    app.graph.getNodeById(t.id).connect(0, s, 1);
    e.connect(0, t, 2);
    app.canvas.ds.scale = 1.0; app.canvas.ds.offset = [30, 40];
  } else {
    app.graph.arrange(60);
    const notes = app.graph._nodes.filter(n => n.type === "Note");
    for (const n of notes) n.pos = [40, -220];
    app.canvas.ds.scale = 0.66; app.canvas.ds.offset = [20, 280];
  }
  app.graph.setDirtyCanvas(true, true); app.canvas.draw(true, true);
  requestAnimationFrame(() => requestAnimationFrame(() => done("ok")));
})();
"""


def screenshot(driver, path: Path, crop=None) -> None:
    from PIL import Image

    png = path.with_suffix(".tmp.png")
    driver.save_screenshot(str(png))
    img = Image.open(png).convert("RGB")
    png.unlink()
    (img.crop(crop) if crop else img).save(path, optimize=True)


def object_titles(url: str) -> dict[str, str]:
    with urllib.request.urlopen(url + "/object_info", timeout=60) as r:
        return {k: v["display_name"] for k, v in json.loads(r.read()).items()}


def build_templates(url: str, out_dir: Path, tmp_dir: Path, docs_dir: Path | None = None) -> dict[str, dict]:
    """Write <title>.json (UI format) and <title>.jpg for every template, web/template_cards.json and
    (with docs_dir) the README screenshots; return the API prompts the frontend made."""
    titles = object_titles(url)
    driver = open_browser(url, tmp_dir)
    prompts = {}
    try:
        for old in [*out_dir.glob("*.json"), *out_dir.glob("*.jpg")]:
            old.unlink()
        for t in TEMPLATES:
            result = json.loads(driver.execute_async_script(BUILD_JS, t.graph, t.name, t.note))
            if "error" in result:
                raise RuntimeError(f"{t.name}: {result['error']}")
            (out_dir / f"{t.name}.json").write_text(json.dumps(result["workflow"], indent=2, ensure_ascii=False) + "\n")
            thumbnail(t, titles, out_dir / f"{t.name}.jpg")
            prompts[t.name] = result["api"]
        CARDS.write_text(json.dumps(cards(), indent=2, ensure_ascii=False) + "\n")
    finally:
        driver.quit()
    if docs_dir is not None:  # a fresh page: no tabs left over from the templates
        driver = open_browser(url, tmp_dir / "docs")
        try:
            first = json.loads((out_dir / f"{TEMPLATES[0].name}.json").read_text())
            driver.execute_async_script("const [w, done] = arguments; app.loadGraphData(w).then(() => done());", first)
            driver.execute_async_script(SHOT_JS, "graph")
            screenshot(driver, docs_dir / "basic_graph.png", crop=(64, 80, 1600, 600))
            dialogue = json.loads((out_dir / "IndexTTS2 dialogue for two voices.json").read_text())
            driver.execute_async_script("const [w, done] = arguments; app.loadGraphData(w).then(() => done());",
                                        dialogue)
            driver.execute_async_script(SHOT_JS, "graph")
            screenshot(driver, docs_dir / "dubbing_graph.png", crop=(64, 80, 1600, 700))
            driver.execute_async_script(SHOT_JS, "nodes")
            screenshot(driver, docs_dir / "t2s_readout_and_emotion_chart.png", crop=(64, 80, 1230, 560))
            from test_web_browser import open_template_browser

            open_template_browser(driver)
            screenshot(driver, docs_dir / "template_browser.png", crop=(80, 40, 1520, 720))
        finally:
            driver.quit()
    return prompts


@pytest.mark.comfyui
def test_build_templates(tmp_path):
    url = os.environ.get("COMFYUI_URL")
    if not (url and os.environ.get("INDEXTTS2_BUILD_TEMPLATES")):
        pytest.skip("set COMFYUI_URL (a running ComfyUI with this pack) and INDEXTTS2_BUILD_TEMPLATES=1 to rebuild "
                    "example_workflows/")
    prompts = build_templates(url, WORKFLOWS, tmp_path, DOCS)
    assert set(prompts) == set(templates())
