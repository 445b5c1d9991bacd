"""S2M and BigVGAN stages against the public parity kit on their own: the outputs of the stages
they depend on (audio, semantic codec, CAMPPlus, GPT) are taken from the kit's expected files, so
these stages are checked even while those are absent or failing. test_parity_kit.py runs the
whole chain."""

import shutil
import subprocess
import sys

import torch

from conftest import PUBLIC_KIT, SHARED, need
from tools.conformance.kit import StageContext, load_stages
from tools.conformance.runner import _write, stage_module

UPSTREAM = ("a_audio", "b2_semantic_codec", "c_campplus", "d3_gpt_greedy")
STAGES = ("s2m_length_regulator", "s2m_cfm", "bigvgan")


def test_s2m_and_vocoder_stages_match_official(tmp_path):
    need(PUBLIC_KIT / "stages.json")
    for name in UPSTREAM:
        shutil.copy(PUBLIC_KIT / "expected" / f"{name}.safetensors", tmp_path)
    stages = {s["id"]: s for s in load_stages(PUBLIC_KIT)}
    for sid in STAGES:  # kit order: each reads the previous one's output from tmp_path
        with torch.inference_mode():
            _write(stages[sid], stage_module(stages[sid]).run(StageContext(PUBLIC_KIT, tmp_path, stages[sid])),
                   tmp_path)
    args = [a for sid in STAGES for a in ("--stage", sid)]
    proc = subprocess.run([sys.executable, str(SHARED / "parity" / "compare_outputs.py"), str(PUBLIC_KIT),
                           str(tmp_path), *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    n_outputs = sum(len(stages[sid]["outputs"]) for sid in STAGES)
    assert sum(line.startswith("PASS ") for line in proc.stdout.splitlines()) == n_outputs, proc.stdout
