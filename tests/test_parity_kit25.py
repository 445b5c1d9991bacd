"""Tier (b)/(c) for IndexTTS-2.5: the manifest contracts of spec/manifests/v2_5 and the network
stages of ../shared/parity/public25, compared by the kit's own compare_outputs.py."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from conftest import SHARED, need
from tools.conformance.__main__ import main as conformance_main
from tools.conformance.runner import run_kit

KIT25 = SHARED / "parity" / "public25"
V25_MANIFESTS = SHARED / "spec" / "manifests" / "v2_5"
STAGES = ["gpt25_cond", "gpt25_forward", "gpt25_greedy", "gpt25_beam", "codec25_decode", "s2m25"]
# Known defect of the public25 kit (reported): its duration_factor 1.0 CFM reference equals
# x0 + v0, i.e. every Euler step reused the first DiT output that the kit recorded for
# dit_step0_out_df1, while the 0.7 and 1.3 references (same code, same kit) are the real 25-step
# Euler integration the README describes. These two tensors are checked against that artifact.
KIT_ARTIFACT = {"cfm_out_full_df1", "vc_target_df1"}


def test_manifests_v2_5_pass(capsys):
    need(V25_MANIFESTS / "config.yaml")
    rc = conformance_main(["manifests", "--dir", str(V25_MANIFESTS)])
    out = capsys.readouterr().out
    assert rc == 0, out
    for name in ("gpt.pth.json [(flat)]", "codec.pth.json [(flat)]", "s2mel.pth.json [cfm]",
                 "s2mel.pth.json [length_regulator]", "s2mel.pth.json [gpt_layer]"):
        assert name in out
    assert "matched 455 / missing 0 / unexpected 0 / mismatched 0 (skipped 1)" in out  # gpt.pth: pe recomputed
    assert "matched 121 / missing 0 / unexpected 0 / mismatched 0 (skipped 120)" in out  # codec: encoder half


@pytest.fixture(scope="module")
def kit25_run(tmp_path_factory):
    need(KIT25 / "stages.json")
    out = tmp_path_factory.mktemp("parity25_out")
    return out, {r.id: r for r in run_kit(KIT25, out, STAGES)}


def _compare(out, stage_id):
    proc = subprocess.run([sys.executable, str(KIT25 / "compare_outputs.py"), str(KIT25), str(out),
                           "--stage", stage_id], capture_output=True, text=True)
    return proc.returncode, proc.stdout


@pytest.mark.parametrize("stage_id", STAGES)
def test_stage_matches_official(stage_id, kit25_run):
    out, results = kit25_run
    r = results[stage_id]
    assert r.status == "ran", f"{stage_id} {r.status}: {r.detail}"
    rc, text = _compare(out, stage_id)
    if rc == 0:
        return
    failed = {ln.split(":")[1].split()[0] for ln in text.splitlines() if ln.startswith(("FAIL", "MISSING"))}
    assert stage_id == "s2m25" and failed <= KIT_ARTIFACT, text
    # the failing references are the constant-velocity artifact, to float noise
    expected = load_file(str(KIT25 / "expected" / "e_s2m25.safetensors"))
    noise = load_file(str(KIT25 / "inputs" / "inputs.safetensors"))["cfm_noise_df1"]
    step0 = expected["dit_step0_out_df1"]
    plen = noise.shape[-1] - expected["vc_target_df1"].shape[-1]
    x = noise.clone()
    x[:, :, :plen] = 0
    x = x + (1.7 * step0[:1] - 0.7 * step0[1:])
    torch.testing.assert_close(expected["vc_target_df1"], x[:, :, plen:], rtol=0, atol=1e-4)
