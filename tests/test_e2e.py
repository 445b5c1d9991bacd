"""The whole pipeline against the public e2e kits (official `infer` of IndexTTS-2 and of
IndexTTS-2.5 on random weights): each kit is copied to a temporary folder, materialised, run
through the conformance runner (which loads the checkpoints through model_files + load_models) and
compared by the kits' compare script."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import SHARED
from e2e_fixtures import e2e25_kit, e2e_kit  # noqa: F401  (fixtures)


def _run_and_compare(kit, out, expected_stages: int) -> None:
    from tools.conformance.kit import load_stages
    from tools.conformance.runner import run_kit

    listed = [s for s in load_stages(kit) if s.get("kind") == "e2e"]
    stages = [s["id"] for s in listed]
    assert len(stages) == expected_stages
    results = run_kit(kit, out, stages)
    assert [(r.id, r.status) for r in results] == [(s, "ran") for s in stages], [r.detail for r in results]
    cmp = subprocess.run([sys.executable, str(SHARED / "parity" / "compare_outputs.py"), str(kit), str(out)],
                         capture_output=True, text=True)
    assert cmp.returncode == 0, cmp.stdout + cmp.stderr
    lines = cmp.stdout.splitlines()
    assert not [ln for ln in lines if ln.startswith(("FAIL", "MISSING"))]
    assert sum(ln.startswith("PASS") for ln in lines) == sum(len(s["outputs"]["tensors"]) for s in listed)


@pytest.mark.slow
def test_public_e2e_kit_passes(e2e_kit, tmp_path):  # noqa: F811
    _run_and_compare(e2e_kit, tmp_path / "out", 3)


@pytest.mark.slow
def test_public25_e2e_kit_passes(e2e25_kit, tmp_path):  # noqa: F811
    """zh, en, ja, es, an emotion vector, three segments and duration_factor, on IndexTTS-2.5."""
    _run_and_compare(e2e25_kit, tmp_path / "out", 7)
