"""Access to one parity kit stage: its files, parameters and input tensors."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file


class KitError(RuntimeError):
    pass


def load_stages(kit: Path) -> list[dict]:
    path = Path(kit) / "stages.json"
    if not path.is_file():
        raise KitError(f"{kit}: no stages.json")
    return json.loads(path.read_text(encoding="utf-8"))["stages"]


def output_files(stage: dict) -> list[str]:
    """Kit-relative output files of a stage (`expected/x.safetensors`)."""
    outs = stage["outputs"]
    if isinstance(outs, dict):
        return [outs["file"]]
    return sorted({o["file"] for o in outs})


@dataclass
class StageContext:
    """What a stage runner may see: the kit's checkpoints and inputs, and earlier stages' outputs
    from OUT (never the kit's expected files)."""

    kit: Path
    out: Path
    stage: dict
    _cache: dict = field(default_factory=dict)

    @property
    def params(self) -> dict:
        return self.stage.get("params", {})

    def path(self, rel: str) -> Path:
        """A kit file (checkpoints, inputs); `expected/` is off limits."""
        if rel.startswith("expected/") or rel.startswith("expected\\"):
            raise KitError(f"stage {self.stage['id']}: runners may not read the kit's {rel}")
        p = self.kit / rel
        if not p.exists():
            raise KitError(f"stage {self.stage['id']}: kit file missing: {rel}")
        return p

    def checkpoint(self, suffix: str) -> Path:
        """The stage checkpoint whose kit path ends with `suffix` (e.g. 'gpt.pth')."""
        for rel in self.stage.get("checkpoints", []):
            if rel.endswith(suffix):
                return self.path(rel)
        raise KitError(f"stage {self.stage['id']}: no checkpoint ending in {suffix!r} in {self.stage.get('checkpoints')}")

    @property
    def checkpoint_dir(self) -> Path:
        """The kit's model folder (official layout)."""
        return self.kit / "checkpoints"

    def tensors(self, rel: str) -> dict[str, torch.Tensor]:
        if rel.startswith("expected/"):
            p = self.out / Path(rel).name  # an earlier stage's output, as this pack computed it
            if not p.is_file():
                raise KitError(f"stage {self.stage['id']}: needs {Path(rel).name} from an earlier stage, not in {self.out}")
        else:
            p = self.path(rel)
        if p not in self._cache:
            self._cache[p] = load_file(str(p))
        return self._cache[p]

    def input(self, name: str) -> torch.Tensor:
        """A stage input tensor by name, from the file the stage lists for it."""
        for entry in self.stage.get("inputs", []):
            if entry["name"] == name:
                return self.tensors(entry["file"])[name]
        raise KitError(f"stage {self.stage['id']}: no input named {name!r}")

    def text(self, rel: str = "inputs/text.json") -> dict:
        return json.loads(self.path(rel).read_text(encoding="utf-8"))


def dependencies(stage: dict, stages: list[dict]) -> list[str]:
    """Ids of the stages whose outputs `stage` reads."""
    producers = {}
    for s in stages:
        for f in output_files(s):
            producers[f] = s["id"]
    deps = []
    for entry in stage.get("inputs", []):
        f = entry.get("file", "")
        if f.startswith("expected/") and producers.get(f) not in (None, stage["id"]):
            deps.append(producers[f])
    return sorted(set(deps))
