"""A minimal stand-in for the parts of ComfyUI the node pack imports, so the nodes can be imported,
introspected and executed in CI (which has no ComfyUI):

* `comfy_api.latest` (`ComfyExtension`, `io`: Schema, ComfyNode, NodeOutput, Custom, Int, Float,
  String, Boolean, Combo, Audio, Video, Image, NumberDisplay, UploadType, Hidden);
* `folder_paths` (models_dir, folder_names_and_paths, add_model_folder_path, get_folder_paths);
* `comfy.model_management`, `comfy.model_patcher.ModelPatcher`, `comfy.utils.ProgressBar`.

`v1_info(node)` turns a schema into the dict ComfyUI's `/object_info` serves for a V3 node (the
fields the tests compare), so the same expectations are checked against the real ComfyUI when
COMFYUI_DIR is set (tests/test_comfyui_integration.py). The stand-in is installed with
`monkeypatch` (nothing global at import) and the pack is imported under a private package name,
so its `nodes` package never meets ComfyUI's own `nodes` module.
"""

from __future__ import annotations

import enum
import importlib.util
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACK_NAME = "indextts2_pack_under_test"


def _prune(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


class _Input:
    WIDGET_KEYS: tuple = ()

    def __init__(self, id, display_name=None, optional=False, tooltip=None, lazy=None, **kw):
        self.id, self.display_name, self.optional, self.tooltip, self.lazy = id, display_name, optional, tooltip, lazy
        self.kw = kw
        for k, v in kw.items():
            setattr(self, k, v)

    def as_dict(self) -> dict:
        d = _prune({"display_name": self.display_name, "tooltip": self.tooltip, "lazy": self.lazy})
        d.update(_prune({k: self.kw.get(k) for k in ("default", "socketless", "forceInput")}))
        return d


class _Output:
    def __init__(self, id=None, display_name=None, tooltip=None, is_output_list=False):
        self.id, self.display_name, self.tooltip, self.is_output_list = id, display_name, tooltip, is_output_list


def _comfytype(io_type: str, widget_keys: tuple = ()):
    class Input(_Input):
        def __init__(self, id, **kw):
            kw.setdefault("optional", False)
            super().__init__(id, **kw)
            self.io_type = io_type

        def as_dict(self):
            d = super().as_dict()
            for key in widget_keys:
                value = self.kw.get(key)
                if key == "display_mode":
                    d.update(_prune({"display": getattr(value, "value", value)}))
                elif key == "multiline":
                    d["multiline"] = bool(value)
                elif key == "upload":
                    if value is not None:
                        d[value.value] = True
                else:
                    d.update(_prune({key: value}))
            if io_type == "COMBO":
                d["multiselect"] = False
            return d

    class Output(_Output):
        pass

    Output.io_type = io_type
    return type(io_type.title(), (), {"io_type": io_type, "Input": Input, "Output": Output})


class NumberDisplay(str, enum.Enum):
    number = "number"
    slider = "slider"


class UploadType(str, enum.Enum):
    image = "image_upload"
    audio = "audio_upload"
    video = "video_upload"


class Schema:
    def __init__(self, node_id, display_name=None, category="sd", inputs=None, outputs=None, hidden=None,
                 description="", is_output_node=False, **kw):
        self.node_id, self.display_name, self.category = node_id, display_name, category
        self.inputs, self.outputs, self.hidden = inputs or [], outputs or [], hidden or []
        self.description, self.is_output_node, self.kw = description, is_output_node, kw


class ComfyNode:
    @classmethod
    def define_schema(cls):
        raise NotImplementedError

    @classmethod
    def execute(cls, **kwargs):
        raise NotImplementedError


class NodeOutput:
    def __init__(self, *args, ui=None, expand=None, block_execution=None):
        self.args, self.ui = args, ui

    @property
    def result(self):
        return self.args if self.args else None

    def __getitem__(self, index):
        return self.args[index]


class ComfyExtension:
    async def on_load(self):
        pass

    async def get_node_list(self):
        return []


class ProgressBar:
    instances: list = []

    def __init__(self, total, node_id=None):
        self.total, self.current, self.updates = total, 0, []
        ProgressBar.instances.append(self)

    def update_absolute(self, value, total=None, preview=None):
        if total is not None:
            self.total = total
        self.current = min(value, self.total)
        self.updates.append((self.current, self.total))

    def update(self, value):
        self.update_absolute(self.current + value)


class InterruptProcessingException(Exception):
    pass


def build_modules(models_dir: Path) -> dict[str, types.ModuleType]:
    """Fresh stand-in modules (state lives in the module objects, so each test gets its own)."""
    import torch

    io = types.ModuleType("comfy_api.latest.io")
    io.Schema, io.ComfyNode, io.NodeOutput, io.NumberDisplay, io.UploadType = Schema, ComfyNode, NodeOutput, NumberDisplay, UploadType
    io.Hidden = enum.Enum("Hidden", {"unique_id": "UNIQUE_ID", "prompt": "PROMPT"})
    io.Int = _comfytype("INT", ("min", "max", "step", "control_after_generate", "display_mode"))
    io.Float = _comfytype("FLOAT", ("min", "max", "step", "round", "display_mode"))
    io.String = _comfytype("STRING", ("multiline", "placeholder", "dynamic_prompts"))
    io.Boolean = _comfytype("BOOLEAN", ("label_on", "label_off"))
    io.Combo = _comfytype("COMBO", ("options", "control_after_generate", "upload"))
    io.Audio, io.Video, io.Image = _comfytype("AUDIO"), _comfytype("VIDEO"), _comfytype("IMAGE")
    io.Custom = lambda name: _comfytype(name)
    latest = types.ModuleType("comfy_api.latest")
    latest.io, latest.ComfyExtension, latest.ui = io, ComfyExtension, types.ModuleType("comfy_api.latest.ui")
    comfy_api = types.ModuleType("comfy_api")
    comfy_api.latest = latest

    fp = types.ModuleType("folder_paths")
    fp.models_dir = str(models_dir)
    fp.folder_names_and_paths = {}

    def add_model_folder_path(name, path, is_default=False):
        if name in fp.folder_names_and_paths:
            paths = fp.folder_names_and_paths[name][0]
            if path not in paths:
                paths.insert(0, path) if is_default else paths.append(path)
        else:
            fp.folder_names_and_paths[name] = ([path], set())

    fp.add_model_folder_path = add_model_folder_path
    fp.get_input_directory = lambda: str(Path(models_dir).parent / "input")
    fp.get_folder_paths = lambda name: list(fp.folder_names_and_paths[name][0])

    comfy = types.ModuleType("comfy")
    mm = types.ModuleType("comfy.model_management")
    mm.loads, mm.interrupted = [], False
    mm.get_torch_device = lambda: torch.device("cpu")
    mm.unet_offload_device = lambda: torch.device("cpu")
    mm.intermediate_device = lambda: torch.device("cpu")
    mm.should_use_fp16 = lambda device=None, **kw: False
    mm.should_use_bf16 = lambda device=None, **kw: False
    mm.InterruptProcessingException = InterruptProcessingException

    def load_models_gpu(models, memory_required=0, force_patch_weights=False, minimum_memory_required=None,
                        force_full_load=False):
        mm.loads.append(list(models))
        for m in models:
            m.model.to(m.load_device)

    def throw_exception_if_processing_interrupted():
        if mm.interrupted:
            mm.interrupted = False
            raise InterruptProcessingException()

    mm.load_models_gpu, mm.throw_exception_if_processing_interrupted = load_models_gpu, throw_exception_if_processing_interrupted
    mp = types.ModuleType("comfy.model_patcher")

    class ModelPatcher:
        def __init__(self, model, load_device, offload_device, size=0, weight_inplace_update=False):
            self.model, self.load_device, self.offload_device = model, load_device, offload_device

    mp.ModelPatcher = ModelPatcher
    cu = types.ModuleType("comfy.utils")
    ProgressBar.instances = []
    cu.ProgressBar = ProgressBar
    comfy.model_management, comfy.model_patcher, comfy.utils = mm, mp, cu
    return {"comfy_api": comfy_api, "comfy_api.latest": latest, "comfy_api.latest.io": io, "folder_paths": fp,
            "comfy": comfy, "comfy.model_management": mm, "comfy.model_patcher": mp, "comfy.utils": cu}


def load_pack(monkeypatch, models_dir: Path):
    """Install the stand-in modules and import the pack (root __init__.py, through its guard)."""
    for name, module in build_modules(models_dir).items():
        monkeypatch.setitem(sys.modules, name, module)
    for name in [n for n in sys.modules if n == PACK_NAME or n.startswith(PACK_NAME + ".")]:
        monkeypatch.delitem(sys.modules, name)
    spec = importlib.util.spec_from_file_location(PACK_NAME, ROOT / "__init__.py",
                                                  submodule_search_locations=[str(ROOT)])
    pack = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, PACK_NAME, pack)
    spec.loader.exec_module(pack)
    return pack


def node_list(pack) -> list:
    import asyncio

    extension = asyncio.run(pack.comfy_entrypoint())
    return asyncio.run(extension.get_node_list())


def v1_info(node) -> dict:
    """The `/object_info` entry of a node, limited to the fields the tests compare (JSON-like)."""
    schema = node.define_schema()
    inputs: dict = {"required": {}}
    for i in schema.inputs:
        inputs.setdefault("optional" if i.optional else "required", {})[i.id] = [
            i.io_type, i.as_dict()]
    return {
        "name": schema.node_id, "display_name": schema.display_name, "category": schema.category,
        "description": schema.description, "input": inputs,
        "input_order": {k: list(v) for k, v in inputs.items()},
        "output": [o.io_type for o in schema.outputs],
        "output_name": [o.display_name or o.io_type for o in schema.outputs],
        "output_node": schema.is_output_node,
    }


def test_stub_schema_roundtrip(monkeypatch, tmp_path):
    """The stand-in itself: a pack node's schema becomes an /object_info-like entry."""
    pack = load_pack(monkeypatch, tmp_path)
    info = v1_info(node_list(pack)[0])
    assert info["name"] == "IndexTTS2Loader"
    assert info["input"]["required"]["model_folder"][0] == "COMBO"
    assert info["input"]["required"]["download_missing"][1]["default"] is False
