"""Stage semantic_codec: quantize the prompt features (codes + S_ref) and embed the GPT's greedy
codes (S_infer before the length regulator)."""

from __future__ import annotations

import torch

from indextts2_core.config import IndexTTS2Config
from indextts2_core.semantic.codec import load_semantic_codec


def run(ctx) -> dict[str, torch.Tensor]:
    cfg = IndexTTS2Config.from_yaml(ctx.checkpoint("config.yaml")).semantic_codec
    codec = load_semantic_codec(ctx.checkpoint("semantic_codec_model.safetensors"), cfg)
    codes, s_ref = codec.quantize(ctx.input("cond_emb_spk_1024"))
    return {"semantic_codes": codes, "S_ref": s_ref, "S_infer_codebook": codec.vq2emb(ctx.input("codes"))}
