"""locales/zh/nodeDefs.json (ComfyUI's /i18n, frontend keys nodeDefs.<id>.display_name / description /
inputs.<name>.name|tooltip / outputs.<index>.name|tooltip) covers every node, input and output of
the pack, in Chinese, and names nothing that no longer exists. tests/test_comfyui_integration.py
checks that the real server serves it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from test_nodes_comfy_stub import load_pack, node_list

ROOT = Path(__file__).resolve().parents[1]
ZH = json.loads((ROOT / "locales" / "zh" / "nodeDefs.json").read_text(encoding="utf-8"))
CJK = re.compile(r"[\u4e00-\u9fff]")
KEPT = {"alpha", "top_p", "top_k"}  # parameter names kept as they are in the papers and the official UI


@pytest.fixture(scope="module")
def schemas():
    mp = pytest.MonkeyPatch()
    try:
        return {c.define_schema().node_id: c.define_schema() for c in node_list(load_pack(mp, Path("/nonexistent")))}
    finally:
        mp.undo()


def test_every_node_input_and_output_is_translated(schemas):
    assert set(ZH) == set(schemas), "locales/zh/nodeDefs.json and the pack's nodes differ"
    for node_id, schema in schemas.items():
        zh = ZH[node_id]
        assert CJK.search(zh["display_name"]) and CJK.search(zh["description"]), node_id
        assert set(zh["inputs"]) == {i.id for i in schema.inputs}, f"{node_id} inputs"
        for inp in schema.inputs:
            t = zh["inputs"][inp.id]
            assert t["name"] in KEPT or CJK.search(t["name"]), f"{node_id}.{inp.id} name"
            assert bool(inp.tooltip) == bool(t.get("tooltip")), f"{node_id}.{inp.id} tooltip"
            assert not t.get("tooltip") or CJK.search(t["tooltip"]), f"{node_id}.{inp.id} tooltip"
        assert set(zh["outputs"]) == {str(i) for i in range(len(schema.outputs))}, f"{node_id} outputs"
        for i, out in enumerate(schema.outputs):
            t = zh["outputs"][str(i)]
            assert CJK.search(t["name"]) and bool(out.tooltip) == bool(t.get("tooltip")), f"{node_id} output {i}"


def test_display_names_are_distinct():
    names = [v["display_name"] for v in ZH.values()]
    assert len(set(names)) == len(names)
