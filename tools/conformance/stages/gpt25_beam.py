"""Stage gpt25_beam: the official default decoding of 2.5 (beam sampling: 2·beams multinomial
candidates per step, drawn here from a CPU generator seeded like the kit's torch.manual_seed) and
deterministic beam search, with the chosen beam of every token (HF `beam_indices`)."""

from __future__ import annotations

import contextlib

import torch

from indextts2_core.gpt.generate import DecodingSettings, generate_codes

from . import _v25


@contextlib.contextmanager
def recorded_draws(into: list):
    """Pass-through recorder of torch.multinomial (what the kit records as beam_sample_draws)."""
    original = torch.multinomial

    def multinomial(*args, **kwargs):
        out = original(*args, **kwargs)
        into.append(out.clone())
        return out
    torch.multinomial = multinomial
    try:
        yield
    finally:
        torch.multinomial = original


def _run(model, ctx, settings, generator=None):
    logits, scores = [], []
    result = generate_codes(model, _v25.conds(ctx, model), ctx.input("text_ids"), settings, lang=ctx.input("lang"),
                            generator=generator, on_step=lambda lg, sc: (logits.append(lg.clone()), scores.append(sc)))
    return result, torch.stack(logits), torch.stack(scores)


def run(ctx) -> dict[str, torch.Tensor]:
    model = _v25.gpt(ctx)
    p = ctx.params
    if p.get("num_return_sequences", 1) != 1 or p.get("early_stopping", False) is not False:
        raise ValueError("only num_return_sequences=1 and early_stopping=False are implemented (official values)")
    common = dict(num_beams=p["num_beams"], repetition_penalty=float(p["repetition_penalty"]),
                  length_penalty=float(p["length_penalty"]), max_mel_tokens=p["max_gen"])
    sampling = DecodingSettings(do_sample=True, temperature=float(p["temperature"]), top_k=int(p["top_k"]),
                                top_p=float(p["top_p"]), **common)
    draws: list[torch.Tensor] = []
    generator = torch.Generator().manual_seed(int(p["torch_manual_seed"]))
    with recorded_draws(draws):
        sampled, s_logits, s_scores = _run(model, ctx, sampling, generator)
    searched, b_logits, b_scores = _run(model, ctx, DecodingSettings(do_sample=False, **common))
    # HF pads beam_indices with -1 to the full sequence width (fake prompt ids + generated tokens)
    width = model.check_text_ids(ctx.input("text_ids")).numel() + 6 + sampled.sequence.size(1)
    indices = torch.full((1, width), -1, dtype=torch.int64)
    indices[0, :len(sampled.beam_indices)] = torch.tensor(sampled.beam_indices, dtype=torch.int64)
    return {
        "beam_sample_sequence": sampled.sequence,
        "beam_sample_sequence_score": torch.tensor([sampled.score], dtype=torch.float32),
        "beam_sample_step_logits": s_logits,
        "beam_sample_step_scores": s_scores,
        "beam_sample_draws": torch.stack(draws),  # [steps, 1, 2·beams]
        "beam_sample_beam_indices": indices,
        "beam_search_sequence": searched.sequence,
        "beam_search_sequence_score": torch.tensor([searched.score], dtype=torch.float32),
        "beam_search_step_scores": b_scores,
        "beam_search_step_logits": b_logits,
    }
