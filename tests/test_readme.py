"""The README's set-up and reference parts agree with the repository: two set-up commands (the main
job and the tests) that leave the user's torch alone, a torch line for CPU that matches CI's
version, every image and folder it names present, every node and template listed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from test_nodes_comfy_stub import load_pack, node_list
from test_workflows_build import templates

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 3)
    return README[start:end if end > 0 else None]


def test_set_up_is_two_commands_that_keep_the_users_torch():
    block = re.search(r"```bash\n(.*?)```", _section("Set-up on a fresh machine"), re.S).group(1)
    lines = [l for l in block.splitlines() if l.strip()]
    assert len(lines) == 2
    main, tests = lines
    assert "indextts2_core download" in main and "indextts2_core speak" in main
    assert tests.endswith("python -m pytest -q tests")
    for line in lines:
        assert not re.search(r"\btorch(audio|vision)?\b", line.replace("-r requirements", "")), line
    ci = (ROOT / ".ci" / "run").read_text()
    version = re.search(r"torch==([\d.]+)", ci).group(1)  # the CPU line of the table is CI's torch
    assert f"torch=={version} --index-url https://download.pytorch.org/whl/cpu" in _section("Set-up on a fresh machine")


def test_named_files_and_folders_exist():
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README):
        assert (ROOT / image).is_file(), image
    for folder in re.findall(r"`((?:tests|docs|web|locales|example_workflows)/[\w./-]*)`", README):
        assert (ROOT / folder).exists(), folder
    assert "spec/manifests" not in README


def test_nodes_and_templates_are_listed():
    mp = pytest.MonkeyPatch()
    try:
        names = [c.define_schema().display_name for c in node_list(load_pack(mp, Path("/nonexistent")))]
    finally:
        mp.undo()
    rows = re.findall(r"^\| ([^|]+?) \|", _section("Nodes"), re.M)
    assert sorted(rows[1:]) == sorted(names)  # after the header row
    rows = re.findall(r"^\| ([^|]+?) \|", _section("Workflows"), re.M)
    assert sorted(rows[1:]) == sorted(templates())


def test_troubleshooting_covers_the_first_run_problems():
    text = _section("Troubleshooting").lower()
    for topic in ("no network", "cuda", "windows", "wetext", "wetextprocessing", "out of memory"):
        assert topic in text, topic
