"""The web extension and the templates in the real ComfyUI frontend (headless Debian Chromium via
selenium + chromedriver; skipped unless COMFYUI_DIR is set).

Checked: the extension loads without console errors; the emotion sliders change the node's values
and chart, whose labels are whole words that fit; the T2S / S2M expected-length readout is drawn
inside its node, below every widget and under no other element (templates, new nodes, resized
nodes); only the duration inputs of the chosen mode are shown, hidden ones take no room, and their
values are still saved and sent; node titles fit their nodes; the frontend turns every template
into the same API prompt as tests/test_workflows.py; the template browser shows each template once
with its title, one-line description and thumbnail. Screenshots are saved as artifacts
(INDEXTTS2_ARTIFACTS, default the test's tmp folder)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from test_comfyui_integration import start_server, stop_server
from test_nodes_schema import EXPECTED_IDS
from test_workflows import FILES, WORKFLOWS, to_api
from test_workflows_build import cards, open_browser, templates

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
        driver.execute_script(HELPERS)
        yield driver
    finally:
        if driver is not None:
            driver.quit()
        stop_server(proc)


@pytest.fixture
def artifacts(tmp_path) -> Path:
    out = Path(os.environ.get("INDEXTTS2_ARTIFACTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    return out


def _errors(driver) -> list[str]:
    severe = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    return [m for m in severe if not any(h in m for h in HARMLESS)]


# In-page helpers: it2.set (a widget change as the UI makes it), it2.add (a new node), it2.show (the
# node at scale 1 near the top left, drawn, DOM widgets placed), it2.readout (where the readout is
# and what is on top of it), it2.layout (visible widgets and their rows).
HELPERS = """
window.it2 = {
  set(n, name, v) { const w = n.widgets.find(w => w.name === name); w.value = v; w.callback?.(v); },
  add(type) { const n = LiteGraph.createNode(type); n.pos = [0, 0]; app.graph.add(n); return n; },
  find(cls) { return app.graph._nodes.find(n => n.comfyClass === cls); },
  async show(n) {
    const scale = Math.min(1, (window.innerHeight - 260) / n.size[1]);  // the whole node in the window
    app.canvas.ds.scale = scale; app.canvas.ds.offset = [160 / scale - n.pos[0], 160 / scale - n.pos[1]];
    app.graph.setDirtyCanvas(true, true); app.canvas.draw(true, true);
    for (let i = 0; i < 3; i++) { await new Promise(r => requestAnimationFrame(r)); app.canvas.draw(true, true); }
  },
  async readout(n) {
    await it2.show(n);
    const w = n.widgets.find(w => w.name === "indextts2_readout");
    const box = n.indextts2ReadoutBox, rect = app.canvas.canvas.getBoundingClientRect(), ds = app.canvas.ds;
    const visible = n.widgets.filter(x => !x.hidden && x !== w);
    const above = Math.max(...visible.map(x => x.y + (x.computedHeight ?? 0)));
    const at = (gx, gy) => { const e = document.elementFromPoint(rect.left + (n.pos[0] + gx + ds.offset[0]) * ds.scale,
                                                              rect.top + (n.pos[1] + gy + ds.offset[1]) * ds.scale);
                             return e === app.canvas.canvas ? "canvas" : (e ? e.tagName + "." + e.className : "none"); };
    const points = box.lines.flatMap((l, i) => [at(box.x + 3, box.y + 8 + 15 * i), at(box.x + l.width - 3, box.y + 8 + 15 * i)]);
    return {text: n.indextts2Readout, hidden: !!w.hidden, y: w.y, height: w.computedHeight, above,
            nodeWidth: n.size[0], nodeHeight: n.size[1], box, onTop: points};
  },
  layout(n) {
    const shown = n.widgets.filter(w => !w.hidden);
    return {shown: shown.map(w => w.name), rows: shown.map(w => [w.y, w.computedHeight]), height: n.size[1]};
  },
};
"""


def _readout_ok(r: dict, where: str) -> None:
    assert not r["hidden"] and r["text"], f"{where}: no readout"
    assert r["y"] >= r["above"] - 0.5, f"{where}: readout at {r['y']} overlaps the widgets above ({r['above']})"
    assert r["y"] + r["height"] <= r["nodeHeight"] + 0.5, f"{where}: readout ends below the node: {r}"
    box = r["box"]
    assert box["x"] >= 0 and box["x"] + box["width"] <= r["nodeWidth"], f"{where}: {box}"
    assert len(box["lines"]) * 15 <= r["height"], f"{where}: {len(box['lines'])} lines in {r['height']} px"
    for line in box["lines"]:
        assert line["width"] <= box["width"] + 0.5, f"{where}: line wider than the node: {line}"
    assert " ".join(l["text"] for l in box["lines"]) == r["text"], where
    assert set(r["onTop"]) == {"canvas"}, f"{where}: covered by {r['onTop']}"


def _load(driver, path: Path) -> dict:
    """Load a UI-format workflow; returns the prompt the frontend makes from it."""
    return json.loads(driver.execute_async_script("""
        const [workflow, done] = arguments;
        (async () => {
          await app.loadGraphData(workflow);
          app.graph.setDirtyCanvas(true, true); app.canvas.draw(true, true);
          done(JSON.stringify((await app.graphToPrompt()).output));
        })();""", json.loads(path.read_text())))


def _run(driver, body: str, *args):
    """Run an async snippet (`return` a JSON-able value) with it2 in scope."""
    return json.loads(driver.execute_async_script(
        "const done = arguments[arguments.length - 1], args = [...arguments].slice(0, -1);"
        f"(async () => {{ {body} }})().then(v => done(JSON.stringify(v)), e => done(JSON.stringify({{error: String(e.stack || e)}})));",
        *args))


def test_extension_loads_without_console_errors(browser):
    assert "IndexTTS2.ui" in browser.execute_script("return app.extensions.map(e => e.name)")
    assert not _errors(browser)
    registered = browser.execute_script("return Object.keys(LiteGraph.registered_node_types)")
    assert {"IndexTTS2Loader", "IndexTTS2EmotionFromVector", "IndexTTS2T2SGenerate"} <= set(registered)


def test_sliders_change_widget_values_and_chart(browser):
    _load(browser, WORKFLOWS / "IndexTTS2 emotion sliders.json")
    result = _run(browser, """
        const node = it2.find("IndexTTS2EmotionFromVector");
        await it2.show(node);
        const before = node.indextts2Mix();
        it2.set(node, "angry", 0.9); it2.set(node, "alpha", 0.5);
        await it2.show(node);
        const after = node.indextts2Mix(), chart = node.indextts2Chart;
        it2.set(node, "normalize", true); await it2.show(node);
        const w = node.widgets.find(w => w.name === "indextts2_chart");
        return {before, after, weights: chart.weights, labels: chart.labels, summary: chart.summary,
                normalized: node.indextts2Chart.normalized, values: node.serialize().widgets_values,
                chart: [w.y, w.computedHeight, node.size[1]]};""")
    assert result["before"][:2] == [0.6, 0]
    assert result["after"][:2] == [0.3, 0.45] and result["weights"][1] == 0.45
    assert result["values"][1] == 0.9 and result["values"][8] == 0.5 and result["values"][9] is True
    assert len(result["values"]) == 10  # the chart is not saved
    assert sum(result["normalized"]) <= 0.8 * 0.5 + 1e-9  # normalised (capped at 0.8) then scaled by alpha
    labels = result["labels"]
    assert [l["text"] for l in labels] == ["happy", "angry", "sad", "afraid", "disgusted", "melancholic",
                                           "surprised", "calm"]  # whole words
    assert all(l["width"] <= l["room"] for l in labels), labels
    assert result["summary"]["width"] <= result["summary"]["room"], result["summary"]
    y, h, height = result["chart"]
    assert y + h <= height + 0.5
    assert not _errors(browser)


@pytest.mark.parametrize("template", ["IndexTTS2 exact duration", "IndexTTS2 voice clone", "IndexTTS2 video dubbing"])
def test_readout_visible_in_templates(browser, template):
    _load(browser, WORKFLOWS / f"{template}.json")
    for cls, mode_widget, mode in (("IndexTTS2T2SGenerate", "duration_mode", "target tokens"),
                                   ("IndexTTS2T2SGenerate", "duration_mode", "target seconds"),
                                   ("IndexTTS2S2M", "duration", "target frames"),
                                   ("IndexTTS2S2M", "duration", "target seconds")):
        r = _run(browser, "const n = it2.find(args[0]); it2.set(n, args[1], args[2]); return await it2.readout(n);",
                 cls, mode_widget, mode)
        _readout_ok(r, f"{template} {cls} {mode}")


def test_readout_visible_in_new_and_resized_nodes(browser, artifacts):
    browser.execute_script("app.graph.clear()")
    cases = {"IndexTTS2T2SGenerate": ("duration_mode", "target tokens", "exactly 5 s = 110250 samples"),
             "IndexTTS2S2M": ("duration", "target frames", "exactly 5 s = 110250 samples")}
    for cls, (mode_widget, mode, seconds_text) in cases.items():
        r = _run(browser, "const n = it2.add(args[0]); it2.set(n, args[1], 'target seconds'); return await it2.readout(n);",
                 cls, mode_widget)
        _readout_ok(r, f"new {cls}")
        assert r["text"].startswith(seconds_text)
        r = _run(browser, "const n = it2.find(args[0]); it2.set(n, args[1], args[2]); return await it2.readout(n);",
                 cls, mode_widget, mode)
        _readout_ok(r, f"new {cls} {mode}")
        for size in ("min", [700, 700], [250, 100]):  # smallest the UI allows, large, a drag below the minimum
            r = _run(browser, """
                const n = it2.find(args[0]);
                const s = args[1] === "min" ? n.computeSize() : args[1];
                n.setSize([Math.max(s[0], n.computeSize()[0]), s[1]]);
                return await it2.readout(n);""", cls, size)
            _readout_ok(r, f"{cls} resized to {size}")
    r = _run(browser, "const n = it2.find('IndexTTS2T2SGenerate'); return await it2.readout(n);")
    assert r["text"].startswith("250 tokens ≈ 5.00 s of speech") and len(r["box"]["lines"]) >= 2  # wrapped
    r = _run(browser, "const n = it2.find('IndexTTS2S2M'); return await it2.readout(n);")
    assert r["text"].startswith("430 frames = 110080 samples = 4.992 s")
    assert browser.save_screenshot(str(artifacts / "readouts.png"))


def modes_first(modes) -> str:
    return next(iter(modes))  # natural / auto: no readout (nothing exact to show)


def test_only_the_inputs_of_the_mode_are_shown(browser):
    browser.execute_script("app.graph.clear()")
    expect = {
        "IndexTTS2T2SGenerate": ("duration_mode", {"natural": set(), "target tokens": {"target_tokens"},
                                                   "target seconds": {"target_seconds"}}),
        "IndexTTS2S2M": ("duration", {"auto": {"duration_factor"}, "target seconds": {"target_seconds"},
                                      "target frames": {"target_frames"}}),
    }
    for cls, (mode_widget, modes) in expect.items():
        optional = set().union(*modes.values())
        result = _run(browser, """
            const [cls, modeWidget, modes] = args, n = it2.add(cls), out = {};
            for (const mode of modes) { it2.set(n, modeWidget, mode); await it2.show(n); out[mode] = it2.layout(n); }
            it2.set(n, "target_seconds", 6.5);
            if (n.widgets.some(w => w.name === "target_tokens")) it2.set(n, "target_tokens", 321);
            if (n.widgets.some(w => w.name === "target_frames")) it2.set(n, "target_frames", 432);
            it2.set(n, modeWidget, modes[0]);
            const names = n.widgets.map(w => w.name), values = n.serialize().widgets_values;
            const saved = Object.fromEntries(names.map((k, i) => [k, values[i]]));
            const prompt = (await app.graphToPrompt()).output[String(n.id)].inputs;
            return {out, saved, prompt, hidden: n.widgets.filter(w => w.hidden).map(w => w.name)};""",
                      cls, mode_widget, list(modes))
        for mode, wanted in modes.items():
            layout = result["out"][mode]
            assert optional & set(layout["shown"]) == wanted, f"{cls} {mode}: {layout['shown']}"
            assert ("indextts2_readout" in layout["shown"]) == (mode != modes_first(modes)), f"{cls} {mode}"
            for (y0, h0), (y1, _) in zip(layout["rows"], layout["rows"][1:]):  # hidden widgets take no room
                assert abs(y1 - (y0 + h0)) < 0.5, f"{cls} {mode}: rows {layout['rows']}"
        heights = {mode: result["out"][mode]["height"] for mode in modes}
        first = next(iter(modes))
        assert all(heights[m] >= heights[first] + 24 for m in modes if m != first), heights  # it grows and shrinks
        assert set(result["hidden"]) == (optional - modes[first]) | {"indextts2_readout"}
        for name, v in (("target_seconds", 6.5), ("target_tokens", 321), ("target_frames", 432)):
            if name in optional:  # hidden, yet saved in the workflow and sent in the prompt
                assert result["saved"][name] == v and result["prompt"][name] == v, name
    # a linked input stays visible whatever the mode (the dubbing template links target_seconds)
    _load(browser, WORKFLOWS / "IndexTTS2 video dubbing.json")
    shown = _run(browser, """const n = it2.find("IndexTTS2T2SGenerate"); it2.set(n, "duration_mode", "natural");
                             await it2.show(n); return it2.layout(n).shown;""")
    assert "target_seconds" in shown and "target_tokens" not in shown
    # a template saved in natural mode opens with the targets hidden
    _load(browser, WORKFLOWS / "IndexTTS2 voice clone.json")
    shown = _run(browser, "const n = it2.find('IndexTTS2T2SGenerate'); await it2.show(n); return it2.layout(n).shown;")
    assert not {"target_tokens", "target_seconds", "indextts2_readout"} & set(shown)


def test_node_titles_fit_their_width(browser):
    measure = """
        const ctx = app.canvas.ctx, out = [];
        for (const n of nodes) {
          ctx.font = n.titleFontStyle;
          out.push({type: n.comfyClass, title: n.getTitle(), text: ctx.measureText(n.getTitle()).width,
                    room: n.size[0] - 2 * LiteGraph.NODE_TITLE_HEIGHT});  // what the frontend leaves the title
        }
        return out;"""
    browser.execute_script("app.graph.clear()")
    fresh = _run(browser, "const nodes = Object.keys(LiteGraph.registered_node_types)"
                          ".filter(t => t.startsWith('IndexTTS2')).map(t => it2.add(t));" + measure)
    assert sorted(f["type"] for f in fresh) == sorted(EXPECTED_IDS)
    loaded = []
    for path in FILES:
        _load(browser, path)
        loaded += _run(browser, "const nodes = app.graph._nodes.filter(n => n.comfyClass?.startsWith('IndexTTS2'));"
                       + measure)
    for t in fresh + loaded:
        assert t["text"] <= t["room"], f"{t['title']!r} ({t['type']}) is cut: {t['text']:.0f} px in {t['room']:.0f}"


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


def open_template_browser(driver) -> list[dict]:
    """Templates → Custom Nodes → the pack; returns what each of its cards shows once the images load."""
    driver.execute_script("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape'}))")
    return _run(driver, """
        await app.extensionManager.command.execute("Comfy.BrowseTemplates");
        const wait = async (f) => { for (let i = 0; i < 100; i++) { const v = f(); if (v) return v;
                                                                  await new Promise(r => setTimeout(r, 100)); } };
        const item = await wait(() => [...document.querySelectorAll("li.p-listbox-option")]
                                          .find(e => e.textContent.trim() === "comfyui-indextts2"));
        item.click();
        const cards = () => [...document.querySelectorAll('[data-testid^="template-workflow-"]')];
        await wait(() => cards().length);
        const images = {};
        for (const c of cards()) {  // a card's image loads while the card is in view (and unloads after)
          c.scrollIntoView({block: "nearest"});
          const img = await wait(() => { const i = c.querySelector("img");
                                          return i?.complete && i.naturalWidth && i.clientWidth && i; });
          images[c.dataset.testid] = img ? {size: [img.naturalWidth, img.naturalHeight],
                                           shown: [img.clientWidth, img.clientHeight]} : null;
        }
        cards()[0].scrollIntoView({block: "nearest"});
        await new Promise(r => setTimeout(r, 300));
        return cards().map(c => {
          const h3 = c.querySelector("h3"), p = c.querySelector("p");
          return {name: c.dataset.testid.slice("template-workflow-".length), title: h3.textContent.trim(),
                  description: p.textContent.trim(), titleCut: h3.scrollHeight > h3.clientHeight + 1,
                  descriptionCut: p.scrollHeight > p.clientHeight + 1, image: images[c.dataset.testid]};
        });""")


def test_template_cards_show_title_description_and_thumbnail(browser, artifacts):
    shown = open_template_browser(browser)
    try:
        assert browser.save_screenshot(str(artifacts / "template_browser.png"))
    finally:
        browser.execute_script("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape'}))")
    assert sorted(c["name"] for c in shown) == sorted(templates())  # each once
    want = cards()
    for c in shown:
        assert c["title"] == want[c["name"]]["title"] and not c["titleCut"], c
        assert c["description"] == want[c["name"]]["description"] and not c["descriptionCut"], c
        assert c["image"] == {"size": [512, 512], "shown": [256, 256]}, c  # the square thumbnail fills the card


def test_screenshot_of_basic_template(browser, artifacts):
    _load(browser, WORKFLOWS / "IndexTTS2 voice clone.json")
    browser.execute_script("""
        app.graph.arrange(60);
        app.canvas.ds.offset = [20, 120]; app.canvas.ds.scale = 0.66;
        app.graph.setDirtyCanvas(true, true); app.canvas.draw(true, true);""")
    time.sleep(0.3)
    png = artifacts / "voice_clone_template.png"
    assert browser.save_screenshot(str(png))
    assert png.stat().st_size > 20000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
