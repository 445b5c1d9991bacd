"""ComfyUI side of the pack apart from the model wrapper (model.py): the `indextts2` models
folder, the device/dtype policy, progress bars that honour /interrupt, and errors naming the node."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import torch

import comfy.model_management as mm
import comfy.utils
import folder_paths

from ..indextts2_core.checkpoints import CheckpointError
from ..indextts2_core.config import ConfigError
from ..indextts2_core.model_files import PACK_DIRS
from ..indextts2_core.pipeline import NonFiniteError, NoSpeechError

log = logging.getLogger(__name__)

FOLDER_KEY = "indextts2"
# every file type the pack's model folders hold (weights, configs, the BPE model)
EXTENSIONS = {".pth", ".pt", ".bin", ".safetensors", ".yaml", ".json", ".model", ".txt", ".jinja"}
DEFAULT_FOLDER = "models/indextts2"


def register_model_folder() -> None:
    """Add `models/indextts2` with an explicit extension set, merging with extra_model_paths.yaml."""
    folder_paths.add_model_folder_path(FOLDER_KEY, os.path.join(folder_paths.models_dir, FOLDER_KEY))
    folder_paths.folder_names_and_paths[FOLDER_KEY][1].update(EXTENSIONS)  # in place: keep yaml paths


def _is_model_root(path: Path) -> bool:
    """Official layout (config.yaml / hf_cache) or pack layout (an IndexTTS-2 sub-folder)."""
    return (path / "config.yaml").is_file() or (path / "hf_cache").is_dir() or (path / "IndexTTS-2").is_dir()


def model_folder_choices() -> list[str]:
    """`models/indextts2` itself plus every sub-folder holding a complete model tree."""
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


class Progress:
    """A ProgressBar for one node; every callback first checks /interrupt (one decode / ODE step).

    `steps(i, total)` is the core's per-step callback: the bar shows the real total of the part
    being run (the segment's target tokens, or the cap, or the flow-matching steps), and parts
    run one after another (`part_done`)."""

    def __init__(self, parts: int, steps_per_part: int | None = None):
        self.parts, self.part = max(1, parts), 0
        self.per_part = steps_per_part
        self.bar = comfy.utils.ProgressBar(self.parts * (steps_per_part or 1))

    def __call__(self, step: int, total: int) -> None:
        mm.throw_exception_if_processing_interrupted()
        if self.per_part is None:  # each part has its own total (e.g. tokens of the segment being decoded)
            self.bar.update_absolute(min(step, total), total)
        else:
            self.bar.update_absolute(self.part * self.per_part + min(step, self.per_part), self.parts * self.per_part)

    def part_done(self, done: int, total: int) -> None:
        self.part = done
        mm.throw_exception_if_processing_interrupted()


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


# errors of the core that carry a message for the user; anything else (a bug, ComfyUI's interrupt) passes as is
PACK_ERRORS = (ValueError, FileNotFoundError, CheckpointError, ConfigError, NoSpeechError, NonFiniteError)


@contextlib.contextmanager
def node_errors(node: str):
    """Every message of the pack starts with the node's name (core messages name the parameter)."""
    try:
        yield
    except NodeInputError:
        raise
    except PACK_ERRORS as e:
        if str(e).startswith(f"{node}: "):
            raise
        raise type(e)(f"{node}: {e}") from e
