"""Tier (c): the conformance runner over ../shared/parity/public, compared with the kit's
expected tensors by the kit's own compare_outputs.py and tolerances."""

import json
import subprocess
import sys

import pytest

from conftest import PUBLIC_KIT, SHARED
from tools.conformance.runner import run_kit

STAGE_IDS = ([s["id"] for s in json.loads((PUBLIC_KIT / "stages.json").read_text())["stages"]]
             if (PUBLIC_KIT / "stages.json").is_file() else [])


@pytest.fixture(scope="session")
def kit_run(tmp_path_factory):
    if not PUBLIC_KIT.is_dir():
        pytest.skip(f"parity kit {PUBLIC_KIT} absent")
    out = tmp_path_factory.mktemp("parity_out")
    return out, {r.id: r for r in run_kit(PUBLIC_KIT, out)}


@pytest.mark.parametrize("stage_id", STAGE_IDS)
def test_stage_matches_official(stage_id, kit_run):
    out, results = kit_run
    r = results[stage_id]
    assert r.status == "ran", f"{stage_id} {r.status}: {r.detail}"
    proc = subprocess.run([sys.executable, str(SHARED / "parity" / "compare_outputs.py"), str(PUBLIC_KIT),
                           str(out), "--stage", stage_id], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
