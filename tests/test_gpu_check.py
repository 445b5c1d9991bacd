"""`benchmarks/gpu_check.py` stays alive: its CPU smoke run (small sizes) goes through every section
(correctness, half precision, speed, VRAM with stage offloading), fails nothing and writes its JSON. On a CUDA machine the same
script is the GPU check of issue 18; this test only keeps it runnable."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT, SHARED, need


def test_gpu_check_cpu_smoke_runs_every_section(tmp_path):
    need(SHARED / "parity" / "public-e2e" / "static")
    need(SHARED / "official-data" / "config.yaml")
    out = tmp_path / "gpu_check.json"
    run = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--cpu-smoke", "--budget-s", "1200",
                          "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=1500,
                         env={**os.environ, "INDEXTTS2_SHARED": str(SHARED)})
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert report["failed"] == 0 and report["smoke"] and report["device"] == "cpu"
    assert {r["section"] for r in rows} >= {"a", "b", "c", "d"}
    assert not [r for r in rows if r["item"] in ("(error)", "(skipped)")]
    items = " | ".join(r["item"] for r in rows)
    for needle in ("greedy codes, every segment", "batched decode", "S2M sample_batch", "chunked vocoding",
                   "GPT bfloat16", "speaker features", "GPT greedy, decode_step=eager",
                   "S2M batch of 4", "BigVGAN chunked", "RTF", "cached prompt",
                   "speaker prompt, 1 s (semantic + codec + campplus + s2mel)", "3-beam sampling, 8 codes (gpt)"):
        assert needle in items, needle
    assert "rows, 0 failed" in run.stdout  # the printed table's last line
