"""The pack inside a real ComfyUI server (skipped unless COMFYUI_DIR points at a checkout of
Comfy-Org/ComfyUI a125cd84 = 0.3.64; COMFYUI_PYTHON is the interpreter with ComfyUI's
requirements, default this one). The server runs on CPU with the pack linked through
extra_model_paths.yaml (`custom_nodes:`) and the public e2e kit's random-weight models in the
pack layout under `indextts2:`.

Checks: every node registered (and its /object_info equal to what the CI stand-in reads from the
schemas), the templates listed once each (from example_workflows/) with their thumbnails, the web
extension and its template descriptions served, the Chinese node translations served by /i18n, a
Load → Speaker → Emotion(vector) → T2S → S2M → Vocoder → SaveAudio run with an exact length and
progress events, S2M-only changes served from T2S's cache, and /interrupt stopping a long T2S run.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

from test_nodes_comfy_stub import load_pack, node_list, v1_info
from test_workflows_build import OTHER_VOICE, VOICE, cards, templates

ROOT = Path(__file__).resolve().parents[1]
PACK = "comfyui-indextts2"
pytestmark = pytest.mark.comfyui


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def _post(url: str, body: dict):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            data = r.read()
            return json.loads(data) if data else None
    except urllib.error.HTTPError as e:  # a refused prompt: show ComfyUI's reasons
        raise AssertionError(f"{url}: HTTP {e.code}: {e.read().decode(errors='replace')[:3000]}") from None


def start_server(base: Path, with_models: bool, kit: Path | None = None):
    """Start ComfyUI (CPU) with the pack linked in under `base`; returns (process, url). With models:
    the public e2e kit's (or `kit`'s) random-weight files in the pack layout in models/indextts2."""
    comfy_dir = os.environ.get("COMFYUI_DIR")
    if not comfy_dir:
        pytest.skip("COMFYUI_DIR is not set (a checkout of Comfy-Org/ComfyUI a125cd84)")
    (base / "custom_nodes").mkdir()
    (base / "custom_nodes" / PACK).symlink_to(ROOT)
    for sub in ("input", "output", "user/default", "models/indextts2"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    if with_models:
        e2e = pytest.importorskip("e2e_fixtures", reason="tests/e2e_fixtures.py (kit materialisation) is missing")
        kit = e2e.materialize(base, *([kit] if kit else []))
        (base / "models" / "indextts2").rmdir()
        e2e.pack_layout(kit / "checkpoints", base / "models" / "indextts2")
        shutil.copy(kit / "inputs" / "spk_prompt_22k.wav", base / "input" / VOICE)
        shutil.copy(kit / "inputs" / "emo_prompt_16k.wav", base / "input" / OTHER_VOICE)
    settings = {"Comfy.TutorialCompleted": True, "Comfy.Minimap.Visible": False}  # no first-run dialog, no minimap
    (base / "user/default/comfy.settings.json").write_text(json.dumps(settings))
    (base / "extra.yaml").write_text(f"indextts2_test:\n  base_path: {base}\n  custom_nodes: custom_nodes\n"
                                     f"  indextts2: models/indextts2\n")
    port = _free_port()
    log = open(base / "server.log", "w")
    proc = subprocess.Popen(
        [os.environ.get("COMFYUI_PYTHON", sys.executable), "main.py", "--cpu", "--listen", "127.0.0.1", "--port",
         str(port), "--disable-api-nodes", "--extra-model-paths-config", str(base / "extra.yaml"),
         "--input-directory", str(base / "input"), "--output-directory", str(base / "output"),
         "--user-directory", str(base / "user")], cwd=comfy_dir, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        if proc.poll() is not None:
            pytest.fail("ComfyUI exited: " + (base / "server.log").read_text()[-3000:])
        try:
            _get(url + "/system_stats")
            return proc, url
        except OSError:
            time.sleep(0.5)
    stop_server(proc)
    pytest.fail("ComfyUI did not answer /system_stats in 60 s")


def stop_server(proc) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("comfyui")
    proc, url = start_server(base, with_models=True)
    try:
        yield {"url": url, "base": base, "log": base / "server.log"}
    finally:
        stop_server(proc)


FOLDER_LISTINGS = {("IndexTTS2Loader", "model_folder"), ("IndexTTS2LoadScript", "file"),
                   ("IndexTTS2VoiceSet", "voices_folder")}


def test_pack_imports_and_every_node_is_registered(server, monkeypatch, tmp_path):
    assert "IMPORT FAILED" not in server["log"].read_text()
    expected = {i["name"]: i for i in map(v1_info, node_list(load_pack(monkeypatch, tmp_path)))}
    for node_id, want in expected.items():
        got = _get(f"{server['url']}/object_info/{node_id}").get(node_id)
        assert got, f"{node_id} not registered"
        for key in ("display_name", "category", "output", "output_name", "input_order", "output_node"):
            assert got[key] == want[key], f"{node_id}.{key}: {got[key]} != {want[key]}"
        for section in ("required", "optional"):
            g, w = got["input"].get(section, {}), want["input"].get(section, {})
            assert list(g) == list(w), f"{node_id} {section} inputs"
            for name in w:
                assert g[name][0] == w[name][0], f"{node_id}.{name} type"
                for opt in ("default", "min", "max", "step", "options", "tooltip", "control_after_generate",
                            "multiline", "display"):
                    if opt == "options" and (node_id, name) in FOLDER_LISTINGS:
                        continue  # lists the server's own folders
                    assert g[name][1].get(opt) == w[name][1].get(opt), f"{node_id}.{name}.{opt}"
    assert _get(f"{server['url']}/object_info/IndexTTS2Loader")["IndexTTS2Loader"]["input"]["required"][
        "model_folder"][1]["options"][0] == "models/indextts2"


def test_templates_listed_once_with_thumbnails(server):
    listed = _get(server["url"] + "/api/workflow_templates")
    assert sorted(listed[PACK]) == sorted(templates())  # each exactly once, from example_workflows/
    assert [k for k in listed if any(n in templates() for n in listed[k])] == [PACK]
    for name in templates():  # file names are the titles: spaces travel URL-encoded
        for ext, kind in ((".json", "application/json"), (".jpg", "image/jpeg")):
            with urllib.request.urlopen(f"{server['url']}/api/workflow_templates/{PACK}/"
                                        f"{urllib.parse.quote(name + ext)}") as r:
                assert r.headers["Content-Type"].startswith(kind), name + ext


def test_web_extension_is_served(server):
    listed = _get(server["url"] + "/extensions")
    assert {f"/extensions/{PACK}/js/indextts2.js", f"/extensions/{PACK}/js/templates.js"} <= set(listed)
    assert _get(f"{server['url']}/extensions/{PACK}/template_cards.json") == cards()


def test_chinese_translations_are_served(server):
    ours = json.loads((ROOT / "locales" / "zh" / "nodeDefs.json").read_text(encoding="utf-8"))
    served = _get(server["url"] + "/i18n")["zh"]["nodeDefs"]
    assert {k: served.get(k) for k in ours} == ours


def _graph(text: str, t2s: dict, s2m_steps: int = 4) -> dict:
    from indextts2_core.emotion.vectors import EMOTIONS

    segment = t2s.pop("max_text_tokens_per_segment", 120)
    t2s_inputs = {"model": ["2", 0], "speaker": ["3", 0], "emotion": ["8", 0], "settings": ["9", 0], "text": text,
                  "duration_mode": "target seconds", "target_tokens": 100, "target_seconds": 1.5,
                  "language": "auto", "interval_silence_ms": 200, "seed": 1, **t2s}
    weights = {name: 0.0 for name in EMOTIONS} | {"happy": 0.5, "surprised": 0.2}
    return {
        "1": {"class_type": "LoadAudio", "inputs": {"audio": VOICE}},
        "2": {"class_type": "IndexTTS2Loader", "inputs": {"model_folder": "models/indextts2", "device": "auto",
                                                           "precision": "auto", "download_missing": False,
                                                           "load_text_emotion": False}},
        "3": {"class_type": "IndexTTS2EncodeSpeaker", "inputs": {"model": ["2", 0], "audio": ["1", 0]}},
        "8": {"class_type": "IndexTTS2EmotionFromVector", "inputs": {"model": ["2", 0], "speaker": ["3", 0], **weights,
                                                                     "alpha": 0.8, "normalize": False}},
        "4": {"class_type": "IndexTTS2T2SGenerate", "inputs": t2s_inputs},
        "9": {"class_type": "IndexTTS2T2SSettings", "inputs": {
            "do_sample": True, "temperature": 0.8, "top_p": 0.8, "top_k": 1, "num_beams": 1, "repetition_penalty": 10.0,
            "length_penalty": 0.0, "max_mel_tokens": 200, "max_text_tokens_per_segment": segment}},
        "5": {"class_type": "IndexTTS2S2M", "inputs": {"model": ["2", 0], "semantic": ["4", 0], "speaker": ["3", 0],
                                                        "steps": s2m_steps, "cfg_rate": 0.7, "duration": "auto",
                                                        "target_seconds": 5.0, "duration_factor": 1.0, "target_frames": 430,
                                                        "seed": 3}},
        "6": {"class_type": "IndexTTS2Vocoder", "inputs": {"model": ["2", 0], "mel": ["5", 0]}},
        "7": {"class_type": "SaveAudio", "inputs": {"audio": ["6", 0], "filename_prefix": f"audio/it2_{uuid.uuid4().hex[:6]}"}},
    }


def _history(url: str, prompt_id: str) -> dict:
    for _ in range(100):  # the history entry can lag the execution_success event
        entry = _get(f"{url}/history/{prompt_id}").get(prompt_id)
        if entry and entry.get("outputs"):
            return entry
        time.sleep(0.1)
    raise AssertionError(f"no history for {prompt_id}")


class _Events:
    """Websocket events of one client (progress, cached, executing, success/error/interrupted)."""

    def __init__(self, url: str):
        import websocket  # websocket-client

        self.client_id = uuid.uuid4().hex
        self.ws = websocket.create_connection(url.replace("http", "ws") + f"/ws?clientId={self.client_id}", timeout=600)
        self.events: list[dict] = []

    def queue(self, url: str, prompt: dict) -> str:
        return _post(url + "/prompt", {"prompt": prompt, "client_id": self.client_id})["prompt_id"]

    def until(self, prompt_id: str, kinds=("execution_success", "execution_error", "execution_interrupted"),
              on_event=None) -> dict:
        while True:
            raw = self.ws.recv()
            if not isinstance(raw, str):
                continue  # binary previews
            msg = json.loads(raw)
            self.events.append(msg)
            if on_event:
                on_event(msg)
            if msg["type"] in kinds and msg["data"].get("prompt_id") == prompt_id:
                return msg

    def close(self):
        self.ws.close()


def test_graph_runs_with_exact_length_progress_and_caching(server):
    import soundfile as sf

    url, events = server["url"], _Events(server["url"])
    try:
        pid = events.queue(url, _graph("THE ROBOTS SANG.", {}))
        end = events.until(pid)
        assert end["type"] == "execution_success", json.dumps(end)[:3000]
        progress = {(e["data"]["node"]) for e in events.events if e["type"] == "progress"}
        assert {"4", "5"} <= progress  # token and CFM-step progress
        history = _history(url, pid)
        saved = history["outputs"]["7"]["audio"][0]
        wav, rate = sf.read(server["base"] / "output" / saved["subfolder"] / saved["filename"])
        assert rate == 22050 and wav.shape[0] == 33075  # 1.5 s at sample precision

        # change only an S2M setting: loader, speaker, emotion and T2S come from the cache
        events.events.clear()
        pid = events.queue(url, _graph("THE ROBOTS SANG.", {}, s2m_steps=5))
        assert events.until(pid)["type"] == "execution_success"
        cached = set().union(*[e["data"]["nodes"] for e in events.events if e["type"] == "execution_cached"])
        executed = {e["data"]["node"] for e in events.events if e["type"] == "executing" and e["data"]["node"]}
        assert {"2", "3", "4", "8", "9"} <= cached and "4" not in executed and "5" in executed
    finally:
        events.close()


def test_interrupt_stops_a_long_t2s_run(server):
    url, events = server["url"], _Events(server["url"])
    text = " ".join(f"THE ROBOTS SANG SONG {i}." for i in range(60))
    graph = _graph(text, {"duration_mode": "target tokens", "target_tokens": 60 * 80,
                          "max_text_tokens_per_segment": 20, "seed": 2})
    sent = {}

    def interrupt_on_t2s_progress(msg):
        if msg["type"] == "progress" and msg["data"]["node"] == "4" and "t" not in sent:
            sent["t"] = time.time()
            _post(url + "/interrupt", {})

    try:
        pid = events.queue(url, graph)
        end = events.until(pid, on_event=interrupt_on_t2s_progress)
        assert end["type"] == "execution_interrupted", json.dumps(end)[:2000]
        assert end["data"]["node_id"] == "4" and time.time() - sent["t"] < 10
    finally:
        events.close()
