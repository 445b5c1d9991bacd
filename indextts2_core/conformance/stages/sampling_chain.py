"""Stage sampling_chain: the logits-processor chain of one official beam-sampling step, stage by stage."""

from __future__ import annotations

import torch

from ...gpt.generate import DecodingSettings, process_scores


def run(ctx) -> dict[str, torch.Tensor]:
    p = ctx.params
    logits, histories = ctx.input("chain_logits"), ctx.input("chain_histories")
    # the chain's min_tokens_to_keep is 2 exactly when there is more than one beam
    beams = logits.size(0) if int(p.get("min_tokens_to_keep", 2)) > 1 else 1
    settings = DecodingSettings(do_sample=True, num_beams=max(beams, 2) if beams > 1 else 1,
                                temperature=float(p["temperature"]), top_k=int(p["top_k"]),
                                top_p=float(p["top_p"]), repetition_penalty=float(p["repetition_penalty"]))
    trace = {}
    process_scores(logits, histories.long(), settings, trace=trace)
    return {
        "scores_log_softmax": trace["log_softmax"],
        "scores_after_repetition_penalty": trace["repetition_penalty"],
        "scores_after_temperature": trace["temperature"],
        "scores_after_top_k": trace["top_k"],
        "scores_processed": trace["top_p"],
    }
