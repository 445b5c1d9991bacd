"""Registry and packaging conventions: LICENSE matches the declared licence, pyproject.toml carries
what the ComfyUI registry reads (and the same dependencies as requirements.txt, never torch),
.comfyignore keeps development files out of the published archive, .gitignore keeps model files
and generated audio out of git."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT, COMFY = PYPROJECT["project"], PYPROJECT["tool"]["comfy"]


def _requirements() -> list[str]:
    lines = [l.split("#")[0].strip() for l in (ROOT / "requirements.txt").read_text().splitlines()]
    return [l for l in lines if l]


def test_license_file_is_the_declared_licence():
    text = (ROOT / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"] and "END OF TERMS AND CONDITIONS" in text
    assert PROJECT["license"] == {"file": "LICENSE"}
    assert "License :: OSI Approved :: Apache Software License" in PROJECT["classifiers"]
    assert not any("License ::" in c and "Apache" not in c for c in PROJECT["classifiers"])


def test_project_metadata_for_the_registry():
    name = PROJECT["name"]
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]{0,98}", name) and "comfyui" not in name.lower()
    assert re.fullmatch(r"\d+\.\d+\.\d+", PROJECT["version"])
    assert 40 <= len(PROJECT["description"]) <= 200 and PROJECT["requires-python"].startswith(">=3.")
    assert PROJECT["urls"]["Repository"].startswith("https://github.com/")
    assert COMFY["PublisherId"] and COMFY["DisplayName"]
    assert isinstance(COMFY.get("includes"), list)


def test_icon_is_in_the_repository_and_small_enough():
    icon = COMFY["Icon"]
    path = ROOT / icon.split("/main/", 1)[1]
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width <= 800 and height <= 400, (width, height)  # the registry's limit


def test_dependencies_are_requirements_txt_without_torch():
    assert PROJECT["dependencies"] == _requirements()
    names = {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower() for r in _requirements()}
    assert not names & {"torch", "torchaudio", "torchvision", "torchsde"}  # ComfyUI's own; never replaced


def _git_files() -> list[str]:
    if not shutil.which("git") or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    return subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()


def _published(files: list[str]) -> list[str]:
    """git's files minus .comfyignore ("dir/" = everything below it, else a glob on the path)."""
    patterns = [l.strip() for l in (ROOT / ".comfyignore").read_text().splitlines() if l.strip()[:1] not in ("", "#")]

    def ignored(f: str) -> bool:
        return any(f.startswith(p) if p.endswith("/") else fnmatch.fnmatch(f, p) for p in patterns)

    return [f for f in files if not ignored(f)]


def test_comfyignore_leaves_out_development_files_only():
    files = _git_files()
    published = _published(files)
    assert not [f for f in published if f.split("/")[0] in ("tests", "benchmarks", "tools", ".ci")]
    for needed in ("__init__.py", "LICENSE", "pyproject.toml", "requirements.txt", "README.md"):
        assert needed in published
    for folder in ("nodes/", "indextts2_core/", "web/", "example_workflows/", "locales/"):
        assert [f for f in files if f.startswith(folder)] == [f for f in published if f.startswith(folder)], folder


def test_gitignore_covers_models_and_generated_audio():
    _git_files()
    paths = ["models/indextts2/IndexTTS-2/gpt.pth", "hello.wav", "out/take.flac", "speech.mp3",
             "example_workflows/x.json", "nodes/generate.py"]
    run = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=ROOT, capture_output=True, text=True)
    assert set(run.stdout.split()) == set(paths[:4])


def test_comfyui_reads_the_registry_fields():
    """ComfyUI's own pyproject reader (comfy_config, as used for [tool.comfy]) sees what the registry needs."""
    import json
    import os
    import sys

    comfy_dir = os.environ.get("COMFYUI_DIR")
    if not comfy_dir:
        pytest.skip("COMFYUI_DIR is not set (a checkout of Comfy-Org/ComfyUI a125cd84)")
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); from comfy_config import config_parser as c; "
            "cfg = c.extract_node_configuration(sys.argv[2]); "
            "print(json.dumps([cfg.project.name, cfg.project.license.file, cfg.project.urls.repository, "
            "cfg.project.urls.issues, cfg.tool_comfy.publisher_id, cfg.tool_comfy.display_name, cfg.tool_comfy.icon]))")
    run = subprocess.run([os.environ.get("COMFYUI_PYTHON", sys.executable), "-c", code, comfy_dir, str(ROOT)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got == [PROJECT["name"], "LICENSE", PROJECT["urls"]["Repository"], PROJECT["urls"]["Issues"],
                   COMFY["PublisherId"], COMFY["DisplayName"], COMFY["Icon"]]
