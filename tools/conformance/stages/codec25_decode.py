"""Stage codec25_decode: EnhancedCodec.decode, 25 Hz codes -> 50 Hz features (spec 2.5 §6.2)."""

from __future__ import annotations

import torch

from indextts2_core.semantic.codec25 import load_codec25

from . import _v25


def run(ctx) -> dict[str, torch.Tensor]:
    codec = load_codec25(ctx.checkpoint("codec.pth"), _v25.config(ctx))
    steps = codec.decode_steps(ctx.input("codes"))
    return {"vq2emb": steps["vq2emb"], "decoder_out": steps["decoder_out"], "upsampled": steps["upsampled"],
            "S_infer": steps["features"], "S_infer_b": codec.decode(ctx.input("codec_codes_b"))}
