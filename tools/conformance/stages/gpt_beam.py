"""Stage gpt_beam: KV-cached deterministic beam search (do_sample=False) with the repetition penalty
over the fake-prefix ids, official beam scorer and finalisation (spec §4.8)."""

from __future__ import annotations

import torch

from indextts2_core.config import IndexTTS2Config
from indextts2_core.gpt.generate import DecodingSettings, generate_codes
from indextts2_core.gpt.model import load_gpt


def run(ctx) -> dict[str, torch.Tensor]:
    cfg = IndexTTS2Config.from_yaml(ctx.checkpoint("config.yaml"))
    model = load_gpt(ctx.checkpoint("gpt.pth"), cfg.gpt)
    p = ctx.params
    if p.get("num_return_sequences", 1) != 1 or p.get("early_stopping", False) is not False:
        raise ValueError("only num_return_sequences=1 and early_stopping=False are implemented (official values)")
    settings = DecodingSettings(do_sample=p["do_sample"], num_beams=p["num_beams"],
                                repetition_penalty=float(p["repetition_penalty"]),
                                length_penalty=float(p["length_penalty"]), max_mel_tokens=p["max_generate_length"])
    conds = model.conditioning(model.speaker_latents(ctx.input("cond_emb_spk_1024")), ctx.input("emovec"))
    logits, scores = [], []
    result = generate_codes(model, conds, ctx.input("text_ids"), settings,
                            on_step=lambda lg, sc: (logits.append(lg.clone()), scores.append(sc)))
    return {
        "beam_sequence": result.sequence,
        "beam_sequence_score": torch.tensor([result.score], dtype=torch.float32),
        "beam_step_scores": torch.stack(scores),  # [steps, beams, V]
        "beam_step_logits": torch.stack(logits),
    }
