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
from ..indextts2_core.model_files import ModelPaths, detect_version
from ..indextts2_core.model_sources import find_model_set, find_model_sets
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


DOWNLOAD_TARGETS = {DEFAULT_FOLDER: "2", f"{DEFAULT_FOLDER} (IndexTTS-2.5)": "2.5"}


def _bases() -> list[Path]:
    """Where model sets are looked for: the registered `indextts2` folders and ComfyUI's models folder."""
    register_model_folder()
    return [Path(p) for p in folder_paths.get_folder_paths(FOLDER_KEY)] + [Path(folder_paths.models_dir)]


def model_folder_choices() -> list[str]:
    """The pack folder for each version (the download targets), then every complete model set
    found where users keep them (model_sources: official checkouts, TTS-Audio-Suite, the HF cache)."""
    names = list(DOWNLOAD_TARGETS)
    for found in find_model_sets(_bases()):
        if _download_target(found.paths.version).resolve() != found.paths.root.resolve() and found.label not in names:
            names.append(found.label)
    return names


def _download_target(version: str) -> Path:
    """The first registered `indextts2` folder (ComfyUI/models/indextts2 unless extra_model_paths says
    otherwise) that already holds this version, else the first one."""
    bases = [Path(p) for p in folder_paths.get_folder_paths(FOLDER_KEY)]
    if not bases:
        raise ValueError(f"no '{FOLDER_KEY}' model folder is registered with ComfyUI")
    for base in bases:
        if detect_version(base) == version:
            return base
    return bases[0]


def resolve_model_choice(choice: str) -> ModelPaths:
    """A combo value → the model files (whether or not they are all present yet)."""
    register_model_folder()
    if choice in DOWNLOAD_TARGETS:
        version = DOWNLOAD_TARGETS[choice]
        return ModelPaths.locate(_download_target(version), version)
    return find_model_set(_bases(), choice).paths


def choose_devices(device: str) -> tuple[torch.device, torch.device]:
    """(load device, offload device) for the `device` widget: auto = ComfyUI's choice."""
    if device == "cpu":
        return torch.device("cpu"), torch.device("cpu")
    return mm.get_torch_device(), mm.unet_offload_device()


def choose_gpt_dtype(precision: str, load_device: torch.device, version: str = "2") -> str:
    """`auto`: the official fast mode where ComfyUI would run it on that device (IndexTTS-2: fp16,
    IndexTTS-2.5: bf16), else fp32 (the other stages always run fp32, as the official pipeline)."""
    if precision != "auto" or load_device.type == "cpu":
        return "fp32" if precision == "auto" else precision
    if version == "2.5" and mm.should_use_bf16(load_device):
        return "bf16"
    return "fp16" if mm.should_use_fp16(load_device) else "fp32"


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


class NestedProgress:
    """A ProgressBar over `parts` (e.g. subtitle lines) whose current part advances with its inner
    steps (tokens, flow-matching steps): `part_done(i, n)` and the per-step callback; both check
    /interrupt."""

    UNITS = 1000

    def __init__(self, parts: int):
        self.parts, self.part = max(1, parts), 0
        self.bar = comfy.utils.ProgressBar(self.parts * self.UNITS)

    def __call__(self, step: int, total: int) -> None:
        mm.throw_exception_if_processing_interrupted()
        inner = self.UNITS * min(step, total) // max(1, total)
        self.bar.update_absolute(min(self.part * self.UNITS + inner, self.parts * self.UNITS), self.parts * self.UNITS)

    def part_done(self, done: int, total: int) -> None:
        mm.throw_exception_if_processing_interrupted()
        self.part = done
        self.bar.update_absolute(done * self.UNITS, self.parts * self.UNITS)


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
        if e.args and not str(e.args[0]).startswith(f"{node}: "):
            e.args = (f"{node}: {e}",) + e.args[1:]  # same error, its message prefixed (any constructor)
        raise
