"""Load IndexTTS2: model folder → every stage module, each behind its own ModelPatcher."""

from __future__ import annotations

import logging

from comfy_api.latest import io

import comfy.utils

from ..indextts2_core.download import download_models
from ..indextts2_core.pipeline import load_models

from . import comfy_models as cm
from .model import IndexTTS2Model
from .types import CATEGORY, Model

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")


class LoadIndexTTS2(io.ComfyNode):
    NAME = "Load IndexTTS2"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IndexTTS2Loader",
            display_name=cls.NAME,
            category=CATEGORY,
            description="Loads the IndexTTS2 stage models (w2v-BERT, semantic codec, CAMPPlus, GPT, S2M, "
                        "BigVGAN) from ComfyUI/models/indextts2. Each stage is loaded to the GPU only while it runs.",
            inputs=[
                io.Combo.Input("model_folder", options=cm.model_folder_choices(), default=cm.DEFAULT_FOLDER,
                               tooltip="models/indextts2 itself (pack layout: IndexTTS-2/, w2v-bert-2.0/, MaskGCT/, "
                                       "campplus/, bigvgan_v2_22khz_80band_256x/) or a sub-folder with an official "
                                       "IndexTTS-2 download (config.yaml + hf_cache/)."),
                io.Combo.Input("device", options=list(DEVICES), default="auto",
                               tooltip="auto: the device ComfyUI computes on (models are offloaded between stages); "
                                       "cpu: everything on the CPU."),
                io.Combo.Input("precision", options=list(PRECISIONS), default="auto",
                               tooltip="GPT precision (the other stages always run fp32, as the official pipeline). "
                                       "auto: fp16 on a GPU that supports it, else fp32."),
                io.Boolean.Input("download_missing", default=False,
                                 tooltip="Download missing model files from Hugging Face into the model folder "
                                         "(several GB). Off: missing files are reported with the download command."),
                io.Boolean.Input("load_text_emotion", default=False,
                                 tooltip="Also load the Qwen text-emotion model (qwen0.6bemo4-merge) needed by "
                                         "'IndexTTS2 Emotion from Text'."),
                io.String.Input("glossary", default="", optional=True,
                                tooltip="Optional glossary.yaml for the text normaliser (term: reading, or term: "
                                        "{zh: ..., en: ...}). Empty: the model folder's glossary.yaml, if it has one."),
            ],
            outputs=[Model.Output(display_name="model", tooltip="All IndexTTS2 stage models.")],
        )

    @classmethod
    def execute(cls, model_folder, device, precision, download_missing, load_text_emotion,
                glossary="") -> io.NodeOutput:
        cm.check_choice(cls.NAME, "device", device, DEVICES)
        cm.check_choice(cls.NAME, "precision", precision, PRECISIONS)
        with cm.node_errors(cls.NAME):
            paths = cm.resolve_model_choice(model_folder)
            if download_missing and paths.missing(include_t2e=load_text_emotion):
                bar = comfy.utils.ProgressBar(1)
                paths = download_models(paths, include_t2e=load_text_emotion,
                                        progress=lambda done, total: bar.update_absolute(done, max(total, 1)))
            load_device, offload_device = cm.choose_devices(device)
            models = load_models(paths, device=offload_device, dtype=cm.choose_gpt_dtype(precision, load_device, paths.version),
                                 load_t2e=load_text_emotion, glossary=glossary.strip() or None)
            model = IndexTTS2Model(models, str(paths.root), load_device, offload_device)
        return io.NodeOutput(model, ui={"text": (f"{model.version} ({paths.layout} layout) from {paths.root}",)})
