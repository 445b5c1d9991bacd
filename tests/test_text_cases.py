"""The text front end against the official parity cases (../shared/parity/text/public), on both
official normaliser paths: WeTextProcessing 1.0.4.1 (Linux) and wetext 0.1.0 (Windows/macOS, the
`*_wetext` fields; runs on any platform with `--normaliser wetext`).

The CLI (`python -m tools.conformance text`) runs each path and the kit's own checker
compare_text.py judges it. Cases a path cannot match would be listed in KNOWN_DEVIATIONS with the
reason (and in README "Text normalisation"); every other case must agree on every field, and a
listed case that starts agreeing fails the test so the list stays true.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time

import pytest

from conftest import OFFICIAL, ROOT, SHARED, TEXT_CASES, need

CHECKER = SHARED / "parity" / "text" / "compare_text.py"

# With the locked versions both paths reproduce every public case.
KNOWN_DEVIATIONS: dict[str, dict[str, str]] = {"wetextprocessing": {}, "wetext": {}}
PLATFORM = {"wetextprocessing": "linux", "wetext": "wetext"}  # compare_text.py --platform
PACKAGE = {"wetextprocessing": "tn", "wetext": "wetext"}


def _load_checker():
    spec = importlib.util.spec_from_file_location("compare_text", CHECKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _expected(case: dict, backend: str) -> list[dict]:
    """The official value-sets a result may equal: the case itself and its hash-seed variants; for
    wetext the `*_wetext` fields under the plain names."""
    if backend == "wetext":
        sets = [case] + list(case.get("variants_wetext") or [])
        return [{k: v[f"{k}_wetext"] for k in ("normalized", "pieces", "ids")} for v in sets]
    return [case] + list(case.get("variants") or []) if case.get("hash_seed_sensitive") else [case]


def _disagreements(backend: str, cases: list[dict], results: dict[str, dict]) -> dict[str, list[str]]:
    """case id -> fields that differ from every recorded official variant."""
    checker = _load_checker()
    fields = checker.WETEXT_FIELDS if backend == "wetext" else checker.DEFAULT_FIELDS
    bad = {}
    for case in cases:
        res = results[case["id"]]
        variants = _expected(case, backend)
        differ = [f for f in fields if all(checker.get(res, f) != checker.get(v, f) for v in variants)]
        if differ:
            bad[case["id"]] = differ
    return bad


def _check(backend: str, cases: list[dict], results: dict[str, dict]) -> None:
    bad = _disagreements(backend, cases, results)
    known = KNOWN_DEVIATIONS[backend]
    unexpected = {k: v for k, v in bad.items() if k not in known}
    assert not unexpected, f"{backend}: cases that disagree with the official output: {unexpected}"
    fixed = sorted(set(known) - set(bad))
    assert not fixed, f"{backend}: listed as deviations but now agree (remove them): {fixed}"


def _run_cli(cases_file, out, *extra) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.conformance", "text", "--cases", str(cases_file),
                           "--out", str(out), *map(str, extra)], cwd=ROOT, capture_output=True, text=True)


@pytest.fixture(scope="module")
def cases() -> list[dict]:
    need(TEXT_CASES)
    return [json.loads(line) for line in TEXT_CASES.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("backend", ["wetextprocessing", "wetext"])
def test_cli_matches_official_cases(cases, tmp_path, backend):
    pytest.importorskip(PACKAGE[backend], reason=f"the {backend} normaliser is not installed")
    bpe = need(OFFICIAL / "bpe.model")
    out = tmp_path / "results.jsonl"
    start = time.perf_counter()
    proc = _run_cli(TEXT_CASES, out, "--bpe", bpe, "--normaliser", backend)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert f"normaliser {backend}" in proc.stdout
    print(f"text CLI ({backend}) on {len(cases)} cases: {time.perf_counter() - start:.1f} s")

    results = {r["id"]: r for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    assert set(results) == {c["id"] for c in cases}
    _check(backend, cases, results)
    check = subprocess.run([sys.executable, str(need(CHECKER)), str(TEXT_CASES), str(out),
                            "--platform", PLATFORM[backend]], capture_output=True, text=True)
    print(check.stdout)
    assert ("ALL FIELDS AGREE" in check.stdout) == (check.returncode == 0)
    assert (check.returncode == 0) == (not KNOWN_DEVIATIONS[backend]), check.stdout


def test_the_two_paths_really_differ(cases):
    """The paths are told apart by the cases (else the wetext run above would prove nothing)."""
    assert sum(c["normalized"] != c["normalized_wetext"] for c in cases) > 20


def test_cli_never_reads_expected_fields(cases, tmp_path):
    """Stripped of everything but id and text, the cases give the same results."""
    from indextts2_core.text.engines import resolve_backend

    bpe = need(OFFICIAL / "bpe.model")
    sample = [c for c in cases if c["category"] in ("empty_whitespace_only", "zh_pinyin")]
    stripped = tmp_path / "cases.jsonl"
    stripped.write_text("".join(json.dumps({"id": c["id"], "text": c["text"]}, ensure_ascii=False) + "\n"
                                for c in sample), encoding="utf-8")
    out = tmp_path / "results.jsonl"
    proc = _run_cli(stripped, out, "--bpe", bpe)
    assert proc.returncode == 0, proc.stderr[-3000:]
    backend = resolve_backend("auto")
    results = {r["id"]: r for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    bad = _disagreements(backend, sample, results)
    assert set(bad) <= set(KNOWN_DEVIATIONS[backend]), bad


def test_cli_without_bpe_fails_clearly(tmp_path):
    cases = tmp_path / "cases.jsonl"
    cases.write_text(json.dumps({"id": "x", "text": "hi"}) + "\n", encoding="utf-8")
    proc = _run_cli(cases, tmp_path / "r.jsonl")
    assert proc.returncode != 0
    assert "bpe.model" in proc.stdout + proc.stderr
    proc = _run_cli(cases, tmp_path / "r.jsonl", "--normaliser", "nope")
    assert proc.returncode != 0 and "--normaliser" in proc.stderr
