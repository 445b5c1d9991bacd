"""Encoder stages against the public parity kit, each fed the kit's own upstream tensors (copied into
OUT, so the stage runs even before the audio / GPT stages exist) and compared with the kit's
expected tensors under the kit's tolerances."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from conftest import PUBLIC_KIT
from tools.conformance.kit import StageContext, load_stages
from tools.conformance.runner import stage_module


def run_stage(kit, stage_id, out):
    stage = next(s for s in load_stages(kit) if s["id"] == stage_id)
    for entry in stage["inputs"]:
        if entry["file"].startswith("expected/"):
            shutil.copy(kit / entry["file"], out)
    with torch.inference_mode():
        tensors = stage_module(stage).run(StageContext(kit, out, stage))
    return stage, tensors


def assert_matches(stage, tensors, kit):
    for spec in stage["outputs"]:
        got, want = tensors[spec["name"]], load_file(str(kit / spec["file"]))[spec["name"]]
        assert got.shape == want.shape and got.dtype == want.dtype, spec["name"]
        tol = spec["tolerance"]
        if tol.get("exact"):
            assert torch.equal(got, want), spec["name"]
            continue
        err = (got - want).abs().max().item()
        rel = err / max(want.abs().max().item(), 1e-12)
        assert err <= tol["max_abs"] or rel <= tol["max_rel"], f"{spec['name']}: abs {err:.3g} rel {rel:.3g}"


@pytest.mark.parametrize("stage_id", ["w2v_bert", "semantic_codec", "campplus"])
def test_stage_matches_kit(public_kit, tmp_path, stage_id):
    stage, tensors = run_stage(public_kit, stage_id, tmp_path)
    assert_matches(stage, tensors, public_kit)


def test_stage_ids_are_in_the_kit(public_kit):
    ids = {s["id"] for s in json.loads((PUBLIC_KIT / "stages.json").read_text())["stages"]}
    assert {"w2v_bert", "semantic_codec", "campplus"} <= ids
