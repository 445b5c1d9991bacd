"""Stage sampling_chain: the logits-processor chain of one official beam-sampling step, stage by stage."""

from __future__ import annotations

import torch

from ...gpt.generate import DecodingSettings, process_scores


def run(ctx) -> dict[str, torch.Tensor]:
    p = ctx.params
    logits, histories = ctx.input("chain_logits"), ctx.input("chain_histories")
    # the official chain keeps min_tokens_to_keep = 2 exactly when it decodes with several beams
    # (one eos id); with beams it also starts from log_softmax
    min_keep = int(p.get("min_tokens_to_keep", 2))
    if min_keep not in (1, 2):
        raise ValueError(f"min_tokens_to_keep {min_keep}: the official chain uses 1 (one beam) or 2 (beams)")
    beams = min(max(logits.size(0), 2), 16) if min_keep == 2 else 1
    settings = DecodingSettings(do_sample=True, num_beams=beams, temperature=float(p["temperature"]),
                                top_k=int(p["top_k"]), top_p=float(p["top_p"]),
                                repetition_penalty=float(p["repetition_penalty"]))
    trace = {}
    process_scores(logits, histories.long(), settings, trace=trace)
    return {
        "scores_log_softmax": trace["log_softmax"],
        "scores_after_repetition_penalty": trace["repetition_penalty"],
        "scores_after_temperature": trace["temperature"],
        "scores_after_top_k": trace["top_k"],
        "scores_processed": trace["top_p"],
    }
