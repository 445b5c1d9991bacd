"""ComfyUI side of the models: the `indextts2` models folder, device/dtype policy, one ModelPatcher
per stage module, progress callbacks that honour /interrupt, and error messages naming the node.

Not responsible for building or running networks (indextts2_core does that). Each stage module
is wrapped in a ModelPatcher (load device = ComfyUI's torch device, offload device = its offload
device) and loaded with `comfy.model_management.load_models_gpu` right before its stage, so
ComfyUI schedules VRAM and "Unload models" frees them. Model reuse comes from ComfyUI caching the
loader node's output; nothing is kept at module level.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from pathlib import Path

import torch

import comfy.model_management as mm
import comfy.model_patcher
import comfy.utils
import folder_paths

log = logging.getLogger(__name__)

FOLDER_KEY = "indextts2"
# every file type the pack's model folders hold (weights, configs, the BPE model)
EXTENSIONS = {".pth", ".pt", ".bin", ".safetensors", ".yaml", ".json", ".model", ".txt", ".jinja"}
DEFAULT_FOLDER = "models/indextts2"
STAGE_MODULES = ("semantic", "codec", "campplus", "gpt", "s2mel", "vocoder")


def register_model_folder() -> None:
    """Add `models/indextts2` with an explicit extension set, merging with extra_model_paths.yaml."""
    folder_paths.add_model_folder_path(FOLDER_KEY, os.path.join(folder_paths.models_dir, FOLDER_KEY))
    folder_paths.folder_names_and_paths[FOLDER_KEY][1].update(EXTENSIONS)  # in place: keep yaml paths


def _is_model_root(path: Path) -> bool:
    """Official layout (config.yaml / hf_cache) or pack layout (an IndexTTS-2 sub-folder)."""
    return (path / "config.yaml").is_file() or (path / "hf_cache").is_dir() or (path / "IndexTTS-2").is_dir()


def model_folder_choices() -> list[str]:
    """`models/indextts2` itself plus every sub-folder holding a complete model tree."""
    from ..indextts2_core.model_files import PACK_DIRS

    register_model_folder()
    names = [DEFAULT_FOLDER]
    for base in folder_paths.get_folder_paths(FOLDER_KEY):
        base = Path(base)
        if not base.is_dir():
            continue
        for sub in sorted(base.iterdir()):
            if sub.is_dir() and sub.name not in PACK_DIRS.values() and _is_model_root(sub) and sub.name not in names:
                names.append(sub.name)
    return names


def resolve_model_folder(choice: str) -> Path:
    """A combo value → the folder to load (or download into)."""
    register_model_folder()
    bases = [Path(p) for p in folder_paths.get_folder_paths(FOLDER_KEY)]
    if not bases:
        raise ValueError(f"no '{FOLDER_KEY}' model folder is registered with ComfyUI")
    if choice == DEFAULT_FOLDER:
        for base in bases:  # the first registered folder that already holds models; else the first one
            if base.is_dir() and _is_model_root(base):
                return base
        return bases[0]
    if not choice or "/" in choice or "\\" in choice or choice in (".", ".."):
        raise ValueError(f"bad model folder name {choice!r}")
    for base in bases:
        if (base / choice).is_dir():
            return base / choice
    raise ValueError(f"model folder {choice!r} not found under {', '.join(map(str, bases))}")


def choose_devices(device: str) -> tuple[torch.device, torch.device]:
    """(load device, offload device) for the `device` widget: auto = ComfyUI's choice."""
    if device == "cpu":
        return torch.device("cpu"), torch.device("cpu")
    return mm.get_torch_device(), mm.unet_offload_device()


def choose_gpt_dtype(precision: str, load_device: torch.device) -> str:
    """`auto`: fp16 where ComfyUI would run fp16 on that device, else fp32 (stages other than the
    GPT always run fp32, as the official pipeline)."""
    if precision != "auto":
        return precision
    if load_device.type != "cpu" and mm.should_use_fp16(load_device):
        return "fp16"
    return "fp32"


class StageModule(torch.nn.Module):
    """Container that ModelPatcher moves; it holds one core module under `.inner` (ModelPatcher
    writes bookkeeping attributes such as `.device` on the object it manages)."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner


@dataclasses.dataclass(frozen=True)
class LoadedIndexTTS2:
    """INDEXTTS2_MODEL payload: the core models plus one ModelPatcher per stage module."""

    models: object  # indextts2_core.pipeline.IndexTTS2Models (modules live on the offload device)
    patchers: dict  # stage name -> ModelPatcher
    folder: str
    load_device: torch.device
    offload_device: torch.device

    def load(self, *stages: str) -> torch.device:
        """Load these stage modules onto the load device (may evict other models); returns it."""
        patchers = [self.patchers[s] for s in stages if s in self.patchers]
        if patchers:
            mm.load_models_gpu(patchers, force_full_load=True)
        return self.load_device


def wrap_models(models, folder: str, load_device: torch.device, offload_device: torch.device) -> LoadedIndexTTS2:
    patchers = {}
    for name in STAGE_MODULES:
        patchers[name] = comfy.model_patcher.ModelPatcher(
            StageModule(getattr(models, name)), load_device=load_device, offload_device=offload_device)
    t2e = getattr(models, "t2e", None)
    if t2e is not None and getattr(t2e, "model", None) is not None:
        patchers["t2e"] = comfy.model_patcher.ModelPatcher(
            StageModule(t2e.model), load_device=load_device, offload_device=offload_device)
        t2e.device = load_device  # where it sends its inputs once the patcher has loaded it
    return LoadedIndexTTS2(models, patchers, folder, load_device, offload_device)


def on_device(payload, device: torch.device):
    """A frozen dataclass with its tensor fields (and tuples of them) moved to `device`."""
    if payload is None or not dataclasses.is_dataclass(payload):
        return payload
    changes = {}
    for f in dataclasses.fields(payload):
        value = getattr(payload, f.name)
        if isinstance(value, torch.Tensor) and value.device != device:
            changes[f.name] = value.to(device)
        elif dataclasses.is_dataclass(value):
            changes[f.name] = on_device(value, device)
        elif isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
            changes[f.name] = tuple(on_device(v, device) for v in value)
    return dataclasses.replace(payload, **changes) if changes else payload


def generator(seed: int, device: torch.device) -> torch.Generator:
    """A generator on the device that samples (CUDA sampling needs a CUDA generator)."""
    return torch.Generator(device=device).manual_seed(int(seed))


class Progress:
    """ProgressBar over `parts` × `steps`; each call checks /interrupt first (one decode / ODE step).
    `part_done` is the core's `segment_progress` callback."""

    def __init__(self, parts: int, steps: int):
        self.parts, self.steps = max(1, parts), max(1, steps)
        self.bar = comfy.utils.ProgressBar(self.parts * self.steps)
        self.part = 0

    def __call__(self, step: int, total: int) -> None:
        mm.throw_exception_if_processing_interrupted()
        if total != self.steps and total > 0:
            self.steps = total
        self.bar.update_absolute(self.part * self.steps + min(step, self.steps), self.parts * self.steps)

    def part_done(self, done: int, total: int) -> None:
        self.part = done


class NodeInputError(ValueError):
    """Bad wiring or a bad value, reported with the node and the input."""


def bad_input(node: str, name: str, message: str) -> NodeInputError:
    return NodeInputError(f"{node}: input '{name}': {message}")


def require(node: str, name: str, value, kind: str):
    """A required custom-type input that arrived empty (or of another type) → a named error."""
    if value is None:
        raise bad_input(node, name, f"nothing connected; connect a {kind} output")
    return value


def check_choice(node: str, name: str, value, options) -> str:
    """ComfyUI does not check V3 combo values: do it here."""
    if value not in options:
        raise bad_input(node, name, f"{value!r} is not one of {list(options)}")
    return value


@contextlib.contextmanager
def node_errors(node: str):
    """Prefix core ValueErrors with the node's name (core messages name the parameter)."""
    try:
        yield
    except NodeInputError:
        raise
    except ValueError as e:
        raise ValueError(f"{node}: {e}") from e
