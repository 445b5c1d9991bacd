"""The web extension and the templates in the real ComfyUI frontend (headless Debian Chromium via
selenium + chromedriver; skipped unless COMFYUI_DIR is set). The extension loads without console
errors, the emotion sliders change the node's widget values and chart, the duration readout
follows the T2S/S2M settings, the frontend turns every template into the same API prompt as
tests/test_workflows.py, and a screenshot of the basic template is saved as an artifact
(INDEXTTS2_ARTIFACTS, default the test's tmp folder)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from test_comfyui_integration import start_server, stop_server
from test_workflows import FILES, to_api
from test_workflows_build import open_browser

pytestmark = pytest.mark.comfyui
ROOT = Path(__file__).resolve().parents[1]
# console noise of ComfyUI 0.3.64 itself on a fresh profile (COMFYUI.md 12.5)
HARMLESS = ("Failed to load resource", "reading 'id'", "ERR_NAME_NOT_RESOLVED", "favicon")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not os.environ.get("COMFYUI_DIR"):
        pytest.skip("COMFYUI_DIR is not set (a checkout of Comfy-Org/ComfyUI a125cd84)")
    pytest.importorskip("selenium")
    if not shutil.which(os.environ.get("CHROMEDRIVER", "chromedriver")):
        pytest.skip("chromedriver not installed (apt-get install chromium chromium-driver)")
    base = tmp_path_factory.mktemp("web")
    proc, url = start_server(base, with_models=False)
    driver = None
    try:
        driver = open_browser(url, tmp_path_factory.mktemp("profile"))
        yield driver
    finally:
        if driver is not None:
            driver.quit()
        stop_server(proc)


LOAD = """
const [workflow, done] = arguments;
(async () => {
  await app.loadGraphData(workflow);
  app.graph.setDirtyCanvas(true, true);
  app.canvas.draw(true, true);
  const prompt = await app.graphToPrompt();
  done(JSON.stringify(prompt.output));
})();
"""


def _load(driver, path: Path) -> dict:
    return json.loads(driver.execute_async_script(LOAD, json.loads(path.read_text())))


def test_extension_loads_without_console_errors(browser):
    assert "IndexTTS2.ui" in browser.execute_script("return app.extensions.map(e => e.name)")
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not [m for m in errors if not any(h in m for h in HARMLESS)], errors
    registered = browser.execute_script("return Object.keys(LiteGraph.registered_node_types)")
    assert {"IndexTTS2Loader", "IndexTTS2EmotionFromVector", "IndexTTS2T2SGenerate"} <= set(registered)


def test_sliders_change_widget_values_and_chart(browser):
    _load(browser, ROOT / "workflows" / "indextts2_emotion_vector.json")
    result = browser.execute_script("""
        const node = app.graph._nodes.find(n => n.comfyClass === "IndexTTS2EmotionFromVector");
        const set = (name, v) => { const w = node.widgets.find(w => w.name === name); w.value = v; w.callback?.(v); };
        const before = node.indextts2Mix();
        set("angry", 0.9); set("alpha", 0.5);
        app.canvas.draw(true, true);
        const after = node.indextts2Mix(), chart = node.indextts2Chart;
        set("normalize", true); app.canvas.draw(true, true);
        return {before, after, chart, normalized: node.indextts2Chart.normalized,
                values: node.serialize().widgets_values};
    """)
    assert result["before"][:2] == [0.6, 0]
    assert result["after"][:2] == [0.3, 0.45] and result["chart"]["weights"][1] == 0.45
    assert result["values"][1] == 0.9 and result["values"][8] == 0.5 and result["values"][9] is True
    assert sum(result["normalized"]) <= 0.8 * 0.5 + 1e-9  # normalised (capped at 0.8) then scaled by alpha
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not [m for m in errors if not any(h in m for h in HARMLESS)], errors


def test_duration_readout(browser):
    _load(browser, ROOT / "workflows" / "indextts2_exact_duration.json")
    readouts = browser.execute_script("""
        app.canvas.draw(true, true);
        const t2s = app.graph._nodes.find(n => n.comfyClass === "IndexTTS2T2SGenerate");
        const s2m = app.graph._nodes.find(n => n.comfyClass === "IndexTTS2S2M");
        const first = t2s.indextts2Readout;
        const mode = s2m.widgets.find(w => w.name === "duration"); mode.value = "target frames";
        app.canvas.draw(true, true);
        return [first, s2m.indextts2Readout];
    """)
    assert readouts[0].startswith("exactly 4.00 s = 88200 samples")
    assert readouts[1].startswith("430 frames = 4.992 s")


def test_frontend_prompts_match_the_test_converter(browser):
    from test_workflows import CORE
    from test_nodes_comfy_stub import load_pack, node_list, v1_info

    mp = pytest.MonkeyPatch()
    try:
        schemas = {**CORE["nodes"], **{i["name"]: i for i in map(v1_info, node_list(load_pack(mp, ROOT / "none")))}}
    finally:
        mp.undo()
    for path in FILES:
        frontend = _load(browser, path)
        ours = to_api(json.loads(path.read_text()), schemas)
        assert set(frontend) == set(ours), path.stem
        for node_id, node in ours.items():
            assert frontend[node_id]["class_type"] == node["class_type"]
            front_inputs = {k: v for k, v in frontend[node_id]["inputs"].items() if k not in ("upload", "audioUI")}
            assert front_inputs == node["inputs"], f"{path.stem} node {node_id}"


def test_screenshot_of_basic_template(browser, tmp_path):
    _load(browser, ROOT / "workflows" / "indextts2_basic_voice_clone.json")
    browser.execute_script("""
        app.graph.arrange(60);
        app.canvas.ds.offset = [20, 120]; app.canvas.ds.scale = 0.66;
        app.graph.setDirtyCanvas(true, true); app.canvas.draw(true, true);""")
    out = Path(os.environ.get("INDEXTTS2_ARTIFACTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    png = out / "indextts2_basic_voice_clone.png"
    assert browser.save_screenshot(str(png))
    assert png.stat().st_size > 20000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
