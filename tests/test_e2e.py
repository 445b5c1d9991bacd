"""The whole pipeline against the public e2e kit (official `infer` on random weights): the kit is
copied to a temporary folder, materialised, run through the conformance runner (which loads the
checkpoints through model_files + load_models) and compared by the kit's own compare script."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import SHARED
from e2e_fixtures import e2e_kit  # noqa: F401  (fixture)


@pytest.mark.slow
def test_public_e2e_kit_passes(e2e_kit, tmp_path):  # noqa: F811
    from tools.conformance.kit import load_stages
    from tools.conformance.runner import run_kit

    stages = [s["id"] for s in load_stages(e2e_kit) if s.get("kind") == "e2e"]
    assert len(stages) == 3
    out = tmp_path / "out"
    results = run_kit(e2e_kit, out, stages)
    assert [(r.id, r.status) for r in results] == [(s, "ran") for s in stages], [r.detail for r in results]
    cmp = subprocess.run([sys.executable, str(SHARED / "parity" / "compare_outputs.py"), str(e2e_kit), str(out)],
                         capture_output=True, text=True)
    assert cmp.returncode == 0, cmp.stdout + cmp.stderr
    lines = cmp.stdout.splitlines()
    assert not [ln for ln in lines if ln.startswith(("FAIL", "MISSING"))]
    assert sum(ln.startswith("PASS") for ln in lines) == 6 * len(stages)
