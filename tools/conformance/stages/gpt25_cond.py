"""Stage gpt25_cond: 2.5 speaker row (spk_emb_proj of the CAMPPlus vector), emotion branch and
the 3 conditioning rows, also on the emotion-vector path (spec 2.5 §4.2–4.3, §5)."""

from __future__ import annotations

import torch

from indextts2_core.emotion import vector_emovec

from . import _v25


def run(ctx) -> dict[str, torch.Tensor]:
    model = _v25.gpt(ctx)
    style = ctx.input("style")
    spk, emo, emo2 = (ctx.input(n) for n in ("cond_emb_spk_1024", "cond_emb_emo_1024", "cond_emb_emo2_1024"))
    emovec = model.merge_emovec(spk, emo, ctx.input("emo_alpha_audio").item())
    base_vecpath = model.merge_emovec(spk, emo2, ctx.params.get("emo_alpha_vecpath_base", 1.0))
    emovec_vecpath = vector_emovec(ctx.input("emovec_mat"), ctx.input("emo_weight_vector"), base_vecpath)
    latent = model.speaker_latent(style)
    return {
        "spk_emb_proj_out": latent[:, 0],
        "speech_conditioning_latent": latent,
        "emo_conditioning_spk": model.emo_conditioning(spk),
        "emo_conditioning_emo": model.emo_conditioning(emo),
        "emovec_from_spk": model.emovec(spk),
        "emovec_from_emo": model.emovec(emo),
        "emovec": emovec,
        "emovec_base_vecpath": base_vecpath,
        "emovec_vecpath": emovec_vecpath,
        "conds_latent": model.conditioning(style, emovec),
        "conds_latent_vecpath": model.conditioning(style, emovec_vecpath),
    }
