"""Stage gpt_latent: the second (latent) pass over the greedy codes (spec §4.10)."""

from __future__ import annotations

import torch

from indextts2_core.config import IndexTTS2Config
from indextts2_core.gpt.model import load_gpt


def run(ctx) -> dict[str, torch.Tensor]:
    cfg = IndexTTS2Config.from_yaml(ctx.checkpoint("config.yaml"))
    model = load_gpt(ctx.checkpoint("gpt.pth"), cfg.gpt)
    conds = model.conditioning(ctx.input("greedy_conditioning_latent"), ctx.input("emovec"))
    return {"gpt_latent": model.latents(conds, ctx.input("text_ids"), ctx.input("codes"))}
