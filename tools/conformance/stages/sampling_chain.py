"""Stage sampling_chain: the logits-processor chain of one official beam-sampling step, stage by stage."""

from __future__ import annotations

import torch

from indextts2_core.gpt.generate import DecodingSettings, score_processors


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
    steps, scores, after = dict(score_processors(settings, histories.long())), logits.float(), {}
    for name in ("log_softmax", "repetition_penalty", "temperature", "top_k", "top_p"):
        if name in steps:  # a step that would change nothing (e.g. temperature 1) is not in the chain
            scores = steps[name](scores)
        after[name] = scores
    return {
        "scores_log_softmax": after["log_softmax"],
        "scores_after_repetition_penalty": after["repetition_penalty"],
        "scores_after_temperature": after["temperature"],
        "scores_after_top_k": after["top_k"],
        "scores_processed": after["top_p"],
    }
