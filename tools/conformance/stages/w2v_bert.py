"""Stage w2v_bert: w2v-BERT hidden_states[17] and the normalised conditioning features (single
prompts and a padded batch with its attention mask)."""

from __future__ import annotations

import torch

from indextts2_core.semantic.w2v_bert import HIDDEN_STATE_INDEX, load_semantic_encoder


def run(ctx) -> dict[str, torch.Tensor]:
    if int(ctx.params.get("hidden_state_index", HIDDEN_STATE_INDEX)) != HIDDEN_STATE_INDEX:
        raise ValueError(f"stage w2v_bert: kit reads hidden state {ctx.params['hidden_state_index']}, "
                         f"the pack {HIDDEN_STATE_INDEX}")
    encoder = load_semantic_encoder(ctx.checkpoint("w2v-bert-2.0/config.json").parent,
                                    ctx.checkpoint("wav2vec2bert_stats.pt"))
    h17 = encoder.hidden_state(ctx.input("w2v_input_features"), ctx.input("w2v_attention_mask"))
    return {
        "w2v_hidden_states_17": h17,
        "spk_cond_emb": encoder.normalise(h17),
        "emo_cond_emb": encoder(ctx.input("emo_w2v_input_features"), ctx.input("emo_w2v_attention_mask")),
        "batch_cond_emb": encoder(ctx.input("w2v_batch_input_features"), ctx.input("w2v_batch_attention_mask")),
    }
