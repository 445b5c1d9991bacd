"""Stage gpt25_greedy: KV-cached greedy decoding with the 2.5 conditioning and language rows."""

from __future__ import annotations

import torch

from indextts2_core.gpt.generate import DecodingSettings, generate_codes

from . import _v25


def run(ctx) -> dict[str, torch.Tensor]:
    model = _v25.gpt(ctx)
    p = ctx.params
    settings = DecodingSettings(do_sample=p["do_sample"], num_beams=p["num_beams"],
                                repetition_penalty=float(p.get("repetition_penalty", 1.0)),
                                length_penalty=float(p.get("length_penalty", 0.0)),
                                max_mel_tokens=p["max_generate_length"])
    logits, scores = [], []
    result = generate_codes(model, _v25.conds(ctx, model), ctx.input("text_ids"), settings, lang=ctx.input("lang"),
                            on_step=lambda lg, sc: (logits.append(lg.clone()), scores.append(sc)))
    return {
        "greedy_sequence": result.sequence,
        "greedy_step_logits": torch.stack(logits, dim=1),  # [1, K, V]
        "greedy_step_scores": torch.stack(scores, dim=1),
        "greedy_conditioning_latent": model.speaker_latent(ctx.input("style")),
        "codes": result.codes,
        "code_lens": torch.tensor([result.codes.size(1)], dtype=torch.int64),
    }
