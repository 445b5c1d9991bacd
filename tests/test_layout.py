"""The shape of the code: the library never imports test or conformance tooling, its import graph
points only downward (networks below the pipeline, the pipeline below the command line), and the
ComfyUI nodes sit on top of the library, never the other way round."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "indextts2_core"

# lower layers first; a module may import its own layer or any layer below it
LAYERS = [
    {"timing", "checkpoints"},
    {"config", "config25", "prompt_cache"},
    {"audio", "text", "emotion", "gpt", "s2mel", "semantic", "speaker", "vocoder", "model_files"},
    {"download", "model_sources"},
    {"pipeline"},
    {"dubbing"},
    {"__main__"},
]


def _layer(top: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if top in names)


def _core_imports(path: Path) -> set[str]:
    """Top-level core packages/modules that `path` imports (relative or absolute)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    rel = path.relative_to(CORE).parts
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(rel[:-1])[: len(rel) - node.level]
                parts = base + (node.module.split(".") if node.module else [])
                if parts:
                    out.add(parts[0])
                else:  # "from .. import x": x are top-level modules
                    out.update(a.name for a in node.names)
            elif node.module and node.module.startswith("indextts2_core."):
                out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("indextts2_core."))
    return out


def test_every_core_module_belongs_to_a_layer():
    tops = {p.relative_to(CORE).parts[0].removesuffix(".py") for p in CORE.rglob("*.py")} - {"__init__"}
    assert tops == set().union(*LAYERS)


def test_core_imports_point_only_downward():
    upward = []
    for path in CORE.rglob("*.py"):
        rel = path.relative_to(CORE)
        own = rel.parts[0].removesuffix(".py")
        if own == "__init__":
            continue
        for target in _core_imports(path) - {own}:
            if _layer(target) > _layer(own):
                upward.append(f"{rel} imports {target}")
    assert not upward, upward


def test_importing_the_whole_library_loads_no_tooling_and_no_comfyui():
    code = (
        "import importlib, pkgutil, sys\n"
        "import indextts2_core\n"
        "for m in pkgutil.walk_packages(indextts2_core.__path__, 'indextts2_core.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
        "importlib.import_module('indextts2_core.__main__')\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('tools', 'tests', 'conftest', 'nodes', 'comfy',\n"
        "                                                             'comfy_api', 'folder_paths'))\n"
        "print(len([n for n in sys.modules if n.startswith('indextts2_core')]), bad)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    count, bad = proc.stdout.strip().split(" ", 1)
    assert int(count) > 40 and bad == "[]"


def test_nodes_use_the_library_and_the_library_never_uses_nodes():
    for path in CORE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "comfy" not in {n.split(".")[0] for n in _imports(text)}, path
    for path in (ROOT / "nodes").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 2:
                assert node.module.startswith("indextts2_core"), f"{path.name}: from ..{node.module}"


def _imports(text: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names
