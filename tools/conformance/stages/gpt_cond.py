"""Stage gpt_cond: speaker conditioning latents and emotion vectors of UnifiedVoice (spec §4.3–4.4, §5.1)."""

from __future__ import annotations

import torch

from indextts2_core.config import IndexTTS2Config
from indextts2_core.gpt.model import load_gpt


def run(ctx) -> dict[str, torch.Tensor]:
    cfg = IndexTTS2Config.from_yaml(ctx.checkpoint("config.yaml"))
    model = load_gpt(ctx.checkpoint("gpt.pth"), cfg.gpt)
    spk, emo, emo2 = (ctx.input(n) for n in ("cond_emb_spk_1024", "cond_emb_emo_1024", "cond_emb_emo2_1024"))
    alpha = ctx.input("emo_alpha_audio").item()
    return {
        "speaker_conditioning_latent": model.speaker_latents(spk),
        "emo_conditioning_spk": model.emo_conditioning(spk),
        "emo_conditioning_emo": model.emo_conditioning(emo),
        "emovec_from_spk": model.emovec(spk),
        "emovec_from_emo": model.emovec(emo),
        "emovec": model.merge_emovec(spk, emo, alpha),
        "emovec_base_vecpath": model.merge_emovec(spk, emo2, ctx.params.get("emo_alpha_vecpath_base", 1.0)),
    }
