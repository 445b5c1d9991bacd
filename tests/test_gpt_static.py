"""The static decode step (issue 18 item 2): a fixed-shape KV cache written at device-tensor
positions, the whole cache read under a mask, the same codes as the eager step; torch.compile of
that step equals eager on the e2e kits' GPTs (IndexTTS-2 and 2.5); the CUDA-graph modes fall back
to their graph-less form off CUDA."""

from __future__ import annotations

import dataclasses
import logging

import pytest
import torch

import test_gpt_model as tiny_v2
from indextts2_core.gpt.generate import (DecodingSettings, KVCache, _StaticStep, decode_one_token, generate_codes,
                                         prefill, static_decode_step)
from kit_gpts import e2e_kit, kit_gpt_25, kit_gpt_v2, kit_requests  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("one_thread")

TEXT = torch.tensor([5, 9, 3, 17])


@pytest.fixture(scope="module")
def model():
    return tiny_v2.tiny_model(7)


def _conds(seed=0):
    return torch.randn(1, 34, 16, generator=torch.Generator().manual_seed(seed))


def test_static_step_equals_the_eager_step_with_fixed_buffers(model):
    """Same logits per step; the cache buffers are written in place (same storage, same shape)."""
    fed = [3, 7, 7, 1, 20]
    with torch.no_grad():
        prompt = model.prompt_embeds(_conds(), TEXT)
        p = prompt.size(1)
        eager = KVCache.for_model(model, 2, p + len(fed))
        static = KVCache.for_model(model, 2, 256, zeros=True)
        static.set_padding([0, 0], static=True)
        prefill(model, prompt, eager)
        prefill(model, prompt, static.rows(slice(0, 2)))
        ptrs = [b.data_ptr() for b in static.k + static.v]
        pos, mel_pos = torch.zeros(1, dtype=torch.long), torch.zeros(1, dtype=torch.long)
        for step, code in enumerate(fed):
            tokens = torch.tensor([code, (code + 5) % 24])
            want = decode_one_token(model, tokens, step, p, eager)
            pos.fill_(p + step)
            mel_pos.fill_(step + 2)
            got = static_decode_step(model, static, tokens, pos, mel_pos)
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert [b.data_ptr() for b in static.k + static.v] == ptrs
    assert all(b.shape == (2, 2, 256, 8) for b in static.k + static.v)


def test_static_cache_is_zero_filled_and_bucketed(model):
    """The static step reads every row under its mask: unwritten rows must be finite (zeros)."""
    step = _StaticStep.get(model, 3, 256, "static")
    assert all(torch.count_nonzero(b) == 0 for b in step.cache.k + step.cache.v)
    seen = []
    s = DecodingSettings(do_sample=False, num_beams=1, max_mel_tokens=30, decode_step="static")
    generate_codes(model, _conds(), TEXT, s, on_step=lambda lg, sc: seen.append(lg.clone()))
    assert torch.isfinite(torch.stack(seen)).all()


@pytest.mark.parametrize("method", ["greedy", "sampling", "beam_search", "beam_sampling"])
def test_static_mode_gives_the_eager_codes(model, method):
    settings = {
        "greedy": DecodingSettings(do_sample=False, num_beams=1, max_mel_tokens=40),
        "sampling": DecodingSettings(num_beams=1, max_mel_tokens=40),
        "beam_search": DecodingSettings(do_sample=False, num_beams=3, max_mel_tokens=40),
        "beam_sampling": DecodingSettings(max_mel_tokens=40),
    }[method]
    runs = {}
    for mode in ("eager", "static"):
        logits = []
        runs[mode] = (generate_codes(model, _conds(3), TEXT, dataclasses.replace(settings, decode_step=mode),
                                     generator=torch.Generator().manual_seed(4),
                                     on_step=lambda lg, sc: logits.append(lg.clone())), torch.stack(logits))
    (a, la), (b, lb) = runs["eager"], runs["static"]
    assert torch.equal(a.sequence, b.sequence) and a.stopped == b.stopped and a.beam_indices == b.beam_indices
    torch.testing.assert_close(lb, la, atol=1e-5, rtol=1e-5)


def test_graph_modes_fall_back_off_cuda(model, caplog):
    s = DecodingSettings(do_sample=False, num_beams=1, max_mel_tokens=20)
    want = generate_codes(model, _conds(), TEXT, s)
    with caplog.at_level(logging.WARNING, logger="indextts2_core.gpt.generate"):
        got = generate_codes(model, _conds(), TEXT, dataclasses.replace(s, decode_step="cuda_graph"))
    assert torch.equal(got.sequence, want.sequence)
    assert "needs a CUDA model" in caplog.text


def test_decode_step_is_validated():
    with pytest.raises(ValueError, match="decode_step must be one of"):
        DecodingSettings(decode_step="fast")


def _compile_works() -> str | None:
    """None if torch.compile (inductor) runs here, else the reason it does not."""
    try:
        f = torch.compile(lambda x: torch.nn.functional.gelu(x) * 2 + 1, dynamic=False)
        x = torch.randn(8)
        torch.testing.assert_close(f(x), torch.nn.functional.gelu(x) * 2 + 1)
    except Exception as e:  # noqa: BLE001  (any failure means: no compiler here)
        return f"torch.compile cannot run on this machine: {type(e).__name__}: {str(e)[:200]}"
    return None


@pytest.mark.parametrize("version", ["2", "2.5"])
def test_compiled_step_equals_eager_on_the_kit_gpts(request, version):
    """The official default decoding (3-beam sampling) with the compiled static step: the codes,
    stop and beam rows of eager decoding, the logits to float rounding. One compilation per
    model (minutes on a busy 2-core machine the first time, seconds with inductor's cache)."""
    reason = _compile_works()
    if reason:
        pytest.skip(reason)
    model = request.getfixturevalue("kit_gpt_v2" if version == "2" else "kit_gpt_25")
    conds, texts, langs = kit_requests(model, 2, seed=1)
    base = DecodingSettings(max_mel_tokens=model.max_codes)
    runs = {}
    for mode in ("eager", "compile"):
        logits = []
        res = generate_codes(model, conds[1], texts[1], dataclasses.replace(base, decode_step=mode),
                             target_tokens=None, generator=torch.Generator().manual_seed(9), lang=langs[1],
                             on_step=lambda lg, sc: logits.append(lg.clone()))
        runs[mode] = res, torch.stack(logits)
    (a, la), (b, lb) = runs["eager"], runs["compile"]
    assert torch.equal(a.sequence, b.sequence) and a.stopped == b.stopped and a.beam_indices == b.beam_indices
    assert a.steps > 3
    torch.testing.assert_close(lb, la, atol=1e-4, rtol=1e-4)
