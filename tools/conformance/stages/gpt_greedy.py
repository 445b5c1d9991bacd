"""Stage gpt_greedy: KV-cached greedy decoding (do_sample=False, one beam) from the speaker features."""

from __future__ import annotations

import torch

from indextts2_core.config import IndexTTS2Config
from indextts2_core.gpt.generate import DecodingSettings, generate_codes
from indextts2_core.gpt.model import load_gpt


def run(ctx) -> dict[str, torch.Tensor]:
    cfg = IndexTTS2Config.from_yaml(ctx.checkpoint("config.yaml"))
    model = load_gpt(ctx.checkpoint("gpt.pth"), cfg.gpt)
    p = ctx.params
    settings = DecodingSettings(do_sample=p["do_sample"], num_beams=p["num_beams"],
                                repetition_penalty=float(p.get("repetition_penalty", 1.0)),
                                max_mel_tokens=p["max_generate_length"])
    latents = model.speaker_latents(ctx.input("cond_emb_spk_1024"))
    conds = model.conditioning(latents, ctx.input("emovec"))
    logits, scores = [], []
    result = generate_codes(model, conds, ctx.input("text_ids"), settings,
                            on_step=lambda lg, sc: (logits.append(lg.clone()), scores.append(sc)))
    return {
        "greedy_sequence": result.sequence,
        "greedy_step_logits": torch.stack(logits, dim=1),  # [1, K, V]
        "greedy_conditioning_latent": latents,
        "codes": result.codes,
        "code_lens": torch.tensor([result.codes.size(1)], dtype=torch.int64),
    }
