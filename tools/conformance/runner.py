"""Run parity-kit stages with the pack's implementation and write the outputs as safetensors."""

from __future__ import annotations

import importlib
import logging
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

from .kit import StageContext, dependencies, load_stages, output_files

log = logging.getLogger(__name__)


@dataclass
class StageResult:
    id: str
    status: str  # "ran" | "not implemented" | "failed"
    detail: str = ""


def stage_module(stage: dict):
    """The runner module for a stage, or None when the pack does not implement it."""
    name = stage.get("kind") or stage["id"]
    full = f"{__package__}.stages.{name}"
    try:
        return importlib.import_module(full)
    except ModuleNotFoundError as e:
        if e.name == full:
            return None
        raise


def order(selected: list[str], stages: list[dict]) -> list[dict]:
    """`selected` plus everything they depend on, producers first, in kit order otherwise."""
    by_id = {s["id"]: s for s in stages}
    need, todo = set(), list(selected)
    while todo:
        sid = todo.pop()
        if sid in need:
            continue
        if sid not in by_id:
            raise ValueError(f"unknown stage {sid!r}; the kit has {sorted(by_id)}")
        need.add(sid)
        todo.extend(dependencies(by_id[sid], stages))
    done, out = set(), []
    while len(out) < len(need):
        progressed = False
        for s in stages:
            if s["id"] in need and s["id"] not in done and set(dependencies(s, stages)) <= done:
                out.append(s)
                done.add(s["id"])
                progressed = True
        if not progressed:
            raise ValueError("stage dependencies form a cycle")
    return out


def run_kit(kit: str | Path, out: str | Path, stage_ids: list[str] | None = None) -> list[StageResult]:
    kit, out = Path(kit), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stages = load_stages(kit)
    selected = stage_ids or [s["id"] for s in stages]
    results, failed, missing = [], set(), set()
    for stage in order(selected, stages):
        sid = stage["id"]
        deps = dependencies(stage, stages)
        if any(d in failed for d in deps):
            failed.add(sid)
            results.append(StageResult(sid, "failed", f"depends on failed stage(s) {[d for d in deps if d in failed]}"))
            continue
        module = stage_module(stage)
        if module is None or any(d in missing for d in deps):
            missing.add(sid)
            blocked = [d for d in deps if d in missing]
            why = f"needs unimplemented stage(s) {blocked}" if blocked else ""
            results.append(StageResult(sid, "not implemented", why))
            continue
        try:
            with torch.inference_mode():
                tensors = module.run(StageContext(kit, out, stage))
            _write(stage, tensors, out)
            results.append(StageResult(sid, "ran"))
        except Exception as e:  # one broken stage must not hide the others
            failed.add(sid)
            log.debug("stage %s failed", sid, exc_info=True)
            # the message first (some exceptions start theirs with a newline): the CLI shows line one
            results.append(StageResult(sid, "failed",
                                       f"{type(e).__name__}: {str(e).strip()}\n{traceback.format_exc(limit=4)}"))
    return results


def _write(stage: dict, tensors: dict, out: Path) -> None:
    outs = stage["outputs"]
    names = outs["tensors"] if isinstance(outs, dict) else [o["name"] for o in outs]
    missing = [n for n in names if n not in tensors]
    if missing:
        raise RuntimeError(f"stage produced no tensor(s) {missing}")
    files = output_files(stage)
    for f in files:
        wanted = names if isinstance(outs, dict) else [o["name"] for o in outs if o["file"] == f]
        path = out / Path(f).name
        merged = {}
        if path.is_file():  # several stages may share one output file
            from safetensors.torch import load_file
            merged = load_file(str(path))
        # own copies: a stage may return one tensor under several names (a no-op processor of the
        # sampling chain, e.g. temperature 1), and safetensors refuses tensors that share memory
        merged.update({n: tensors[n].detach().cpu().clone(memory_format=torch.contiguous_format) for n in wanted})
        tmp = path.with_suffix(".tmp")
        save_file(merged, str(tmp))
        tmp.replace(path)
