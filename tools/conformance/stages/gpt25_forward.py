"""Stage gpt25_forward: the official 2.5 input layout (padding rows, conds, text + language rows,
fake ids, mask) and teacher-forced logits along the KV-cached generation path (code k fed at mel
position k+2) and one uncached pass (mel positions 0..K), for two languages (spec 2.5 §4.4–4.5)."""

from __future__ import annotations

import torch

from indextts2_core.gpt.generate import KVCache, decode_one_token, prefill

from . import _v25


def _cached_logits(model, prompt: torch.Tensor, forced: torch.Tensor) -> torch.Tensor:
    """Logits [1, K+1, V]: step 0 after the prefix, step k after feeding forced[k-1]."""
    cache = KVCache.for_model(model, 1, prompt.size(1) + forced.numel())
    rows = [prefill(model, prompt, cache)]
    for step, token in enumerate(forced[:-1].tolist()):
        rows.append(decode_one_token(model, torch.tensor([token]), step, prompt.size(1), cache))
    return torch.stack(rows, dim=1)


def run(ctx) -> dict[str, torch.Tensor]:
    model = _v25.gpt(ctx)
    conds = _v25.conds(ctx, model)
    text, codes = ctx.input("text_ids"), ctx.input("fwd_codes")
    forced = torch.cat((codes[0], codes.new_tensor([model.cfg.stop_mel_token])))
    out = {}
    for suffix, lang in (("", ctx.input("lang")), ("_lang_b", ctx.input("lang_b"))):
        fake, embeds, mask = model.official_inputs(conds, text, lang)
        out[f"prep_inputs_embeds{suffix}"] = embeds
        out[f"fwd_logits_cached{suffix}"] = _cached_logits(model, model.prompt_embeds(conds, text, lang), forced)
        if not suffix:
            out["prep_fake_input_ids"], out["prep_attention_mask"] = fake, mask
            prompt = model.prompt_embeds(conds, text, lang)  # ends with the start token at mel position 0
            mel = model.mel_embeds(codes, torch.arange(1, codes.size(1) + 1))
            hidden = model.hidden_states(torch.cat((prompt, mel.to(prompt.dtype)), dim=1))
            out["fwd_logits_uncached"] = model.logits(hidden[:, -(codes.size(1) + 1):]).float()
    return out
