"""Stage s2m_length_regulator: length regulator (prompt, standalone, generated) and gpt_layer."""

from __future__ import annotations

import torch

from indextts2_core.config import IndexTTS2Config
from indextts2_core.timing import mel_frames_for_content
from indextts2_core.s2mel.model import load_s2mel


def run(ctx) -> dict[str, torch.Tensor]:
    cfg = IndexTTS2Config.from_yaml(ctx.checkpoint("config.yaml"))
    s2mel = load_s2mel(ctx.checkpoint("s2mel.pth"), cfg.s2mel, "cpu")
    s_ref, ref_mel = ctx.input("S_ref"), ctx.input("ref_mel")
    code_len = int(ctx.input("code_lens").reshape(-1)[0])

    prompt_condition = s2mel.length_regulator(s_ref, ref_mel.shape[-1])
    lr_out = s2mel.length_regulator(ctx.input("lr_x"), int(ctx.input("lr_ylens")[0]))
    latent, code_emb = ctx.input("s2m_gpt_latent_1280"), ctx.input("S_infer_codebook")
    gpt_layer_out = s2mel.gpt_layer(latent)
    s_infer = s2mel.content_features(code_emb, latent)
    frames = mel_frames_for_content(code_len)  # v2: one content frame per code
    cond = s2mel.target_condition(s_infer, frames)
    return {
        "prompt_condition": prompt_condition,
        "lr_out": lr_out,
        "gpt_layer_out": gpt_layer_out,
        "S_infer": s_infer,
        "target_lengths": torch.tensor([frames], dtype=torch.int64),
        "cond": cond,
        "cat_condition": torch.cat([prompt_condition, cond], dim=1),
    }
