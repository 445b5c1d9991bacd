"""Every template in example_workflows/ is checked against the pack's node schemas (through the ComfyUI
stand-in) and the committed list of core nodes the templates use (tests/data/comfy_core_nodes.json,
taken from ComfyUI 0.3.64): node types, widget names and values, links and their types. Each is
converted to API format; with COMFYUI_DIR set, the real ComfyUI validates those prompts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_nodes_comfy_stub import load_pack, node_list, v1_info
from test_workflows_build import CARDS, CLIP, OTHER_VOICE, VOICE, cards, templates

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "example_workflows"
CORE = json.loads((ROOT / "tests" / "data" / "comfy_core_nodes.json").read_text())
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
CONTROL_VALUES = {"fixed", "increment", "decrement", "randomize"}
UI_WIDGETS = {"audioUI", "upload", "videoUI"}  # frontend-only widgets (previews, upload buttons)
FILES = sorted(WORKFLOWS.glob("*.json"))


def all_schemas() -> dict:
    """The pack's node schemas (through the stand-in) and the core nodes the templates use."""
    mp = pytest.MonkeyPatch()
    try:
        pack = load_pack(mp, Path("/nonexistent-models"))
        infos = {i["name"]: i for i in map(v1_info, node_list(pack))}
    finally:
        mp.undo()
    return {**CORE["nodes"], **infos}


@pytest.fixture(scope="module")
def schemas():
    return all_schemas()


def template_prompt(name: str) -> dict:
    """The committed template `name` in API form, as the frontend queues it."""
    return to_api(json.loads((WORKFLOWS / f"{name}.json").read_text()), all_schemas())


def _inputs(info) -> dict:
    return {**info["input"].get("required", {}), **info["input"].get("optional", {})}


def _check_value(where, kind, opts, value):
    if isinstance(kind, list) or kind == "COMBO":
        options = kind if isinstance(kind, list) else opts.get("options", [])
        if options:
            assert value in options, f"{where}: {value!r} not in {options}"
        else:
            assert isinstance(value, str) and value, f"{where}: expected a file name"
    elif kind == "INT":
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: {value!r} is not an int"
    elif kind == "FLOAT":
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{where}: {value!r} is not a number"
    elif kind == "BOOLEAN":
        assert isinstance(value, bool), f"{where}: {value!r} is not a bool"
    elif kind == "STRING":
        assert isinstance(value, str), f"{where}: {value!r} is not a string"
    if kind in ("INT", "FLOAT"):
        assert opts.get("min", value) <= value <= opts.get("max", value), f"{where}: {value} out of range"


def to_api(workflow: dict, schemas: dict) -> dict:
    """UI format → API format, failing on any unknown node, widget or badly typed link."""
    links = {l[0]: l for l in workflow["links"]}
    nodes = {n["id"]: n for n in workflow["nodes"]}
    prompt = {}
    for node in workflow["nodes"]:
        kind = node["type"]
        if kind in CORE["ui_only"]:
            continue
        assert kind in schemas, f"unknown node type {kind}"
        info, where = schemas[kind], f"node {node['id']} ({kind})"
        spec = _inputs(info)
        inputs, values = {}, list(node.get("widgets_values") or [])
        seen_widgets = []
        for slot in node.get("inputs", []):
            name = slot["name"]
            if name not in spec:
                assert name in UI_WIDGETS, f"{where}: unknown input {name!r}"
                values.pop(0) if "widget" in slot and values else None
                continue
            kind_, opts = spec[name][0], (spec[name][1] if len(spec[name]) > 1 else {})
            if "widget" in slot:
                seen_widgets.append(name)
                assert values, f"{where}: no value for widget {name!r}"
                value = values.pop(0)
                if opts.get("control_after_generate"):
                    assert values and values.pop(0) in CONTROL_VALUES, f"{where}: {name} control value"
                if slot.get("link") is None:
                    _check_value(f"{where}.{name}", kind_, opts, value)
                    inputs[name] = value
            if slot.get("link") is not None:
                link = links[slot["link"]]
                src = nodes[link[1]]
                out_type = schemas[src["type"]]["output"][link[2]]
                want = "COMBO" if isinstance(kind_, list) else kind_
                assert link[5] == want == out_type, f"{where}.{name}: link type {link[5]} / {out_type} vs {want}"
                inputs[name] = [str(link[1]), link[2]]
        assert not values, f"{where}: {len(values)} unexpected widget values left: {values}"
        widgets = [n for n, v in spec.items() if isinstance(v[0], list) or v[0] in WIDGET_TYPES]
        assert sorted(seen_widgets) == sorted(widgets), f"{where}: widgets {seen_widgets} vs schema {widgets}"
        for name in info["input"].get("required", {}):
            assert name in inputs, f"{where}: required input {name!r} is neither set nor linked"
        prompt[str(node["id"])] = {"class_type": kind, "inputs": inputs}
    return prompt


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a baseline or progressive JPEG's SOF marker."""
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    i = 2
    while i < len(data):
        marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):
            return int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big")
        i += 2 + length
    raise AssertionError("no SOF marker")


def test_every_template_is_there_once_with_a_square_thumbnail():
    assert [p.stem for p in FILES] == sorted(templates())
    for p in FILES:
        assert p.with_suffix(".jpg").is_file(), f"{p.name} has no thumbnail"
        # shown at 256 x 256 (object-contain): a square picture uses the whole card
        assert _jpeg_size(p.with_suffix(".jpg").read_bytes()) == (512, 512), p.stem
    assert sorted(x.name for x in WORKFLOWS.iterdir()) == sorted([p.name for p in FILES] +
                                                                 [p.stem + ".jpg" for p in FILES])
    # ComfyUI 0.3.64 scans every accepted folder name: a second one lists each template twice
    for other in ("workflows", "example", "examples", "workflow"):
        assert not (ROOT / other).exists(), f"{other}/ would list the templates twice"


def test_titles_descriptions_and_key_nodes():
    import re

    assert json.loads(CARDS.read_text()) == cards(), "web/template_cards.json is stale: rebuild the templates"
    for name, t in templates().items():
        # the file name is the card title in ComfyUI 0.3.64; it goes in URLs and on every file system
        assert re.fullmatch(r"IndexTTS2 [A-Za-z0-9 (),.']+", name) and len(name) <= 44, name
        assert 20 <= len(t.description) <= 70 and t.description != name and "\n" not in t.description, name
        assert 2 <= len(t.key_nodes) <= 5, name
        for node_id, rows in t.key_nodes:
            assert node_id in t.graph, f"{name}: key node {node_id} not in the graph"
            for row in rows:
                assert row in t.graph[node_id]["inputs"], f"{name}: {node_id}.{row} not set"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_template_matches_schemas(path, schemas):
    workflow = json.loads(path.read_text())
    assert {"nodes", "links", "version"} <= set(workflow)
    notes = [n for n in workflow["nodes"] if n["type"] == "Note"]
    assert len(notes) == 1 and len(notes[0]["widgets_values"][0]) > 40, "each template explains itself in a note"
    prompt = to_api(workflow, schemas)
    assert any(v["class_type"] in ("SaveAudio", "SaveVideo") for v in prompt.values())
    # the template is the graph written in test_workflows_build.py (same nodes and values)
    graph = templates()[path.stem].graph
    assert sorted(v["class_type"] for v in prompt.values()) == sorted(v["class_type"] for v in graph.values())
    by_class = {v["class_type"]: v["inputs"] for v in graph.values()}
    for node in prompt.values():
        for name, value in node["inputs"].items():
            if not isinstance(value, list):
                expected = by_class[node["class_type"]].get(name)
                if node["class_type"] != "LoadAudio":  # two LoadAudio nodes in one template
                    assert value == expected, f"{node['class_type']}.{name}: {value!r} != {expected!r}"


def test_unknown_widget_or_node_fails(schemas):
    workflow = json.loads((WORKFLOWS / "IndexTTS2 voice clone.json").read_text())
    broken = json.loads(json.dumps(workflow))
    broken["nodes"][0]["type"] = "NoSuchNode"
    with pytest.raises(AssertionError, match="unknown node type"):
        to_api(broken, schemas)
    broken = json.loads(json.dumps(workflow))
    t2s = next(n for n in broken["nodes"] if n["type"] == "IndexTTS2T2SGenerate")
    t2s["widgets_values"].append(1)
    with pytest.raises(AssertionError, match="unexpected widget values"):
        to_api(broken, schemas)
    broken = json.loads(json.dumps(workflow))
    t2s = next(n for n in broken["nodes"] if n["type"] == "IndexTTS2T2SGenerate")
    t2s["widgets_values"][1] = "fastest"  # duration_mode
    with pytest.raises(AssertionError, match="not in"):
        to_api(broken, schemas)


VALIDATE = r"""
import asyncio, json, os, sys
comfy_dir, pack_parent, input_dir, prompts_file = sys.argv[1:5]
sys.path.insert(0, comfy_dir); os.chdir(comfy_dir)
from comfy.cli_args import args
args.cpu = True; args.disable_api_nodes = True
import folder_paths
import utils.extra_config  # noqa: F401  (before nodes: see COMFYUI.md 12.4)
folder_paths.add_model_folder_path("custom_nodes", pack_parent)
folder_paths.set_input_directory(input_dir)
import execution, nodes
asyncio.run(nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False))
out = {}
for name, prompt in json.load(open(prompts_file)).items():
    ok, error, outputs, node_errors = asyncio.run(execution.validate_prompt(name, prompt, None))
    out[name] = {"ok": ok, "error": error, "node_errors": node_errors}
print("RESULT " + json.dumps(out, default=str))
"""


@pytest.mark.comfyui
def test_templates_validate_in_real_comfyui(schemas, tmp_path):
    comfy_dir = os.environ.get("COMFYUI_DIR")
    if not comfy_dir:
        pytest.skip("COMFYUI_DIR is not set (a checkout of Comfy-Org/ComfyUI a125cd84)")
    pack_parent = tmp_path / "custom_nodes"
    pack_parent.mkdir()
    (pack_parent / "comfyui-indextts2").symlink_to(ROOT)
    inputs = tmp_path / "input"
    inputs.mkdir()
    for name in (VOICE, OTHER_VOICE, CLIP):
        (inputs / name).write_bytes(b"")  # validation only checks that the file exists
    prompts = {p.stem: to_api(json.loads(p.read_text()), schemas) for p in FILES}
    (tmp_path / "prompts.json").write_text(json.dumps(prompts))
    (tmp_path / "validate.py").write_text(VALIDATE)
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    run = subprocess.run([python, str(tmp_path / "validate.py"), comfy_dir, str(pack_parent), str(inputs),
                          str(tmp_path / "prompts.json")], capture_output=True, text=True, timeout=300)
    lines = [l for l in run.stdout.splitlines() if l.startswith("RESULT ")]
    assert lines, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.loads(lines[-1][len("RESULT "):])
    assert set(results) == set(prompts)
    for name, res in results.items():
        assert res["ok"], f"{name}: {res['error']} {res['node_errors']}"
