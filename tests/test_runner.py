"""The runner's machinery on a synthetic kit: ordering, refusal to read expected/, statuses."""

import json

import pytest
import torch
from safetensors.torch import save_file

from tools.conformance.kit import KitError, StageContext
from tools.conformance.runner import order, run_kit


def make_kit(tmp_path):
    (tmp_path / "inputs").mkdir()
    (tmp_path / "expected").mkdir()
    save_file({"x": torch.ones(2)}, str(tmp_path / "inputs" / "inputs.safetensors"))
    stages = [
        {"id": "zz_consumer", "file_group": "b", "inputs": [{"file": "expected/a.safetensors", "name": "y"}],
         "outputs": [{"file": "expected/b.safetensors", "name": "z"}]},
        {"id": "zz_producer", "file_group": "a", "inputs": [{"file": "inputs/inputs.safetensors", "name": "x"}],
         "outputs": [{"file": "expected/a.safetensors", "name": "y"}]},
    ]
    (tmp_path / "stages.json").write_text(json.dumps({"stages": stages}))
    return stages


def test_order_puts_producers_first(tmp_path):
    stages = make_kit(tmp_path)
    assert [s["id"] for s in order(["zz_consumer"], stages)] == ["zz_producer", "zz_consumer"]


def test_unimplemented_and_dependent_stages(tmp_path):
    make_kit(tmp_path)
    res = {r.id: r for r in run_kit(tmp_path, tmp_path / "out")}
    assert res["zz_producer"].status == "not implemented"
    assert res["zz_consumer"].status == "not implemented" and "zz_producer" in res["zz_consumer"].detail


def test_context_never_reads_expected(tmp_path):
    stages = make_kit(tmp_path)
    save_file({"y": torch.zeros(1)}, str(tmp_path / "expected" / "a.safetensors"))
    ctx = StageContext(tmp_path, tmp_path / "out", stages[0])
    (tmp_path / "out").mkdir()
    with pytest.raises(KitError, match="earlier stage"):
        ctx.input("y")  # the kit's expected/a.safetensors exists but must not be used
    with pytest.raises(KitError, match="may not read"):
        ctx.path("expected/a.safetensors")
    save_file({"y": torch.full((1,), 3.0)}, str(tmp_path / "out" / "a.safetensors"))
    assert ctx.input("y").item() == 3.0
    ctx2 = StageContext(tmp_path, tmp_path / "out", stages[1])
    assert torch.equal(ctx2.input("x"), torch.ones(2))
