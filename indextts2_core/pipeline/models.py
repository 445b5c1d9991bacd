"""The loaded stage modules, device / dtype choice, and small helpers shared by the pipeline files
(autocast policy, argument checks). Not responsible for file names (model_files.py)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..audio import W2VFeatureConfig
from ..config import IndexTTS2Config
from ..config25 import IndexTTS25Config, load_config
from ..emotion import EmotionMatrices, TextEmotionModel
from ..gpt import UnifiedVoice, load_gpt
from ..gpt.model25 import UnifiedVoice25, load_gpt25
from ..model_files import ModelPaths
from ..s2mel import S2Mel, load_s2mel
from ..semantic.codec import SemanticCodec, load_semantic_codec
from ..semantic.codec25 import EnhancedCodec, load_codec25
from ..semantic.w2v_bert import SemanticEncoder, load_semantic_encoder
from ..speaker.campplus import CAMPPlus, load_campplus
from ..text import GLOSSARY_FILE, TextFrontend25, TextNormalizer, TextTokenizer
from ..timing import Timing
from ..vocoder import BigVGAN, load_bigvgan

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
          "half": torch.float16, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class IndexTTS2Models:
    """Every loaded stage module. `t2e` (Qwen emotion model) is None unless asked for. Modules may
    live on different devices (ComfyUI moves each to the GPU right before its stage)."""

    config: IndexTTS2Config | IndexTTS25Config
    tokenizer: TextTokenizer | TextFrontend25
    semantic: SemanticEncoder  # w2v-BERT (17 layers) + stats normalisation
    codec: SemanticCodec | EnhancedCodec  # MaskGCT semantic codec (IndexTTS-2) / EnhancedCodec (2.5)
    campplus: CAMPPlus
    gpt: UnifiedVoice | UnifiedVoice25
    s2mel: S2Mel
    vocoder: BigVGAN
    emotion: EmotionMatrices
    w2v_features: W2VFeatureConfig  # feature extractor settings of the w2v-BERT folder
    t2e: TextEmotionModel | None = None

    @property
    def timing(self) -> Timing:
        return self.config.timing

    @property
    def version(self) -> str:
        """"2" (IndexTTS-2) or "2.5" (IndexTTS-2.5)."""
        return self.config.version

    @property
    def dtype(self) -> torch.dtype:
        """GPT compute dtype; every other stage runs fp32 (spec §9.5)."""
        return next(self.gpt.parameters()).dtype


def resolve_device(device) -> torch.device:
    """A usable torch device or ValueError (unknown name, or no such accelerator here)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"unknown device {device!r} (use cpu, cuda, cuda:N or mps)") from e
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise ValueError(f"device {device!r} requested but CUDA is not available here")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(f"device {device!r} requested but MPS is not available here")
    if dev.type == "xpu" and not (hasattr(torch, "xpu") and torch.xpu.is_available()):
        raise ValueError(f"device {device!r} requested but no XPU is available here")
    if dev.type not in ("cpu", "cuda", "mps", "xpu"):
        raise ValueError(f"unsupported device {device!r} (use cpu, cuda, cuda:N or mps)")
    return dev


def resolve_dtype(dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype.lower() in DTYPES:
        return DTYPES[dtype.lower()]
    raise ValueError(f"unknown dtype {dtype!r} (use fp32, fp16 or bf16)")


def load_models(paths: ModelPaths | str | Path, device="cpu", dtype="fp32", load_t2e: bool = False,
                glossary: str | Path | None = None,
                text_front_end: TextTokenizer | TextFrontend25 | None = None) -> IndexTTS2Models:
    """Load every stage of the folder's generation (IndexTTS-2 or 2.5) from `ModelPaths` (or a
    models folder). The GPT runs in `dtype`; w2v-BERT, codec, CAMPPlus, S2M and BigVGAN stay fp32
    as the official pipeline (spec §9.5). `glossary`: a glossary.yaml for the text normaliser (by
    default the model folder's own, when it has one, as the official loader does). `text_front_end`:
    one already made by `load_text_front_end` for this folder (not built again)."""
    dev, dt = resolve_device(device), resolve_dtype(dtype)
    if not isinstance(paths, ModelPaths):
        paths = ModelPaths.locate(paths)
    paths.require(include_t2e=load_t2e)
    cfg = load_config(paths.config, paths.version)
    t0 = time.perf_counter()
    if cfg.version == "2.5":
        codec, gpt = load_codec25(paths.codec, cfg, dev), load_gpt25(paths.gpt, cfg, dev, dt)
    else:
        codec = load_semantic_codec(paths.semantic_codec, cfg.semantic_codec, dev)
        gpt = load_gpt(paths.gpt, cfg, dev, dt)
    models = IndexTTS2Models(
        config=cfg, tokenizer=text_front_end or load_text_front_end(paths, cfg, glossary),
        semantic=load_semantic_encoder(paths.w2v_bert_dir, paths.w2v_stats, dev),
        codec=codec, campplus=load_campplus(paths.campplus, dev), gpt=gpt,
        s2mel=load_s2mel(paths.s2mel, cfg, dev),
        vocoder=load_bigvgan(paths.bigvgan_dir, dev),
        emotion=EmotionMatrices.load(paths.spk_matrix, paths.emo_matrix, cfg.emo_num,
                                     model_dim=cfg.gpt.model_dim).to(dev),
        w2v_features=W2VFeatureConfig.from_json(paths.w2v_bert_dir / "preprocessor_config.json"),
        t2e=TextEmotionModel.load(paths.qwen_dir, dev) if load_t2e else None,
    )
    log.info("IndexTTS-%s models loaded from %s (%s layout) on %s, GPT %s, in %.1f s", cfg.version,
             paths.root, paths.layout, dev, dt, time.perf_counter() - t0)
    return models


def load_text_front_end(paths: ModelPaths, cfg: IndexTTS2Config | IndexTTS25Config,
                        glossary: str | Path | None = None) -> TextTokenizer | TextFrontend25:
    """The text front end of the folder's generation; the normaliser takes `glossary`, else the
    model folder's glossary.yaml when there is one (read once here, errors name the file)."""
    if glossary is None and (paths.indextts2_dir / GLOSSARY_FILE).is_file():
        glossary = paths.indextts2_dir / GLOSSARY_FILE
    normalizer = TextNormalizer(glossary=glossary)
    if cfg.version == "2.5":
        return TextFrontend25(paths.tokenizer, normalizer, capacity=cfg.gpt.max_text_tokens + 2)
    return TextTokenizer(paths.bpe, normalizer)


# ---- helpers shared by the pipeline files ---------------------------------------------------------
def gpt_autocast(gpt):
    """fp16/bf16 GPT: autocast as the official use_fp16 path (norms and softmax in fp32)."""
    p = next(gpt.parameters())
    if p.dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(p.device.type, dtype=p.dtype)


def no_autocast(device: torch.device):
    return torch.autocast(device.type, enabled=False) if device.type in ("cuda", "cpu") else contextlib.nullcontext()


def module_device(module) -> torch.device:
    return next(module.parameters()).device


def moved(payload, device):
    """A frozen dataclass with each of its tensor fields on `device` (the same object when none moves)."""
    device = torch.device(device)
    changes = {f.name: v.to(device) for f in dataclasses.fields(payload)
               if isinstance(v := getattr(payload, f.name), torch.Tensor) and v.device != device}
    return dataclasses.replace(payload, **changes) if changes else payload


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so wall times belong to the stage that queued it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class NonFiniteError(RuntimeError):
    """A stage produced NaN or Inf (broken weights, overflow): nothing is written as audio."""


def check_finite(x: torch.Tensor, stage: str) -> torch.Tensor:
    """`x`, or NonFiniteError naming the stage when it holds NaN or Inf."""
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        raise NonFiniteError(f"{stage} produced NaN or Inf values; the model files may be damaged (the loader "
                             "checks weights once), or the input drives the model out of range")
    return x


def finite(x, what: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        raise ValueError(f"{what} must be a finite number, got {x!r}")
    return float(x)


def positive_int(x, what: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int) or x <= 0:
        raise ValueError(f"{what} must be a positive integer, got {x!r}")
    return x
