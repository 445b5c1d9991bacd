"""Half-precision dtype flow of the GPT (issue 13 item 6), checked on CPU.

The official fp16 run converts the model with `.half()` and runs it under autocast: the GPT-2
residual stream between blocks and the conditioning rows stay float32, LayerNorms compute in
float32, only the matmuls run in half (so the KV cache is half). bf16 is the pack's own option for
v2 (official for 2.5) and follows the same flow.
"""

from __future__ import annotations

import copy

import pytest
import torch

from indextts2_core.gpt.generate import DecodingSettings, KVCache, generate_codes, prefill
from indextts2_core.gpt.model import UnifiedVoice
from test_gpt_model import randomize_, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")

HALF = [torch.float16, torch.bfloat16]
TEXT = torch.tensor([5, 9, 3, 17])


@pytest.fixture(scope="module")
def fp32_model():
    # small weights: the tiny 1024-wide conditioning encoders would overflow fp16 with the default 0.5
    return randomize_(UnifiedVoice(tiny_config()), 11, std=0.1)


def _half(model, dtype):
    return copy.deepcopy(model).to(dtype)


def _record(model):
    """Forward hooks: (module name, input dtype, output dtype) for each block, its branches and norms."""
    seen = []
    names = {m: n for n, m in model.named_modules()}

    def hook(mod, args, out):
        seen.append((names[mod], args[0].dtype, out.dtype))
    handles = [m.register_forward_hook(hook) for n, m in model.named_modules()
               if n.startswith("gpt.") or n in ("final_norm", "mel_head")]
    return seen, handles


@pytest.mark.parametrize("dtype", HALF)
def test_block_boundaries_are_float32_and_matmuls_half(fp32_model, dtype):
    m = _half(fp32_model, dtype)
    spk = torch.randn(1, 23, 1024)
    with torch.no_grad():
        lat = m.speaker_latents(spk)
        ev = m.merge_emovec(spk, spk, 1.0)
        conds = m.conditioning(lat, ev)
        assert ev.dtype == dtype  # emo_layer is a matmul: half, as upstream under autocast
        assert conds.dtype == torch.float32  # the 34 conditioning rows stay float32
        prompt = m.prompt_embeds(conds, TEXT)
        assert prompt.dtype == torch.float32  # float32 conds promote the whole prefix
        assert m.text_embeds(TEXT).dtype == dtype  # embedding rows themselves are half
        seen, handles = _record(m)
        cache = KVCache.for_model(m, 1, prompt.size(1) + 4)
        logits = prefill(m, prompt, cache)
        step = m.mel_embeds(torch.tensor([[3]]), torch.tensor([2]))  # a fed-back code: half input row
        assert step.dtype == dtype
        m.hidden_states(step, cache, prompt.size(1))
        for h in handles:
            h.remove()
    assert logits.dtype == torch.float32
    assert cache.k[0].dtype == dtype and cache.v[1].dtype == dtype  # keys/values come from half matmuls
    kinds = {}
    for name, din, dout in seen:
        kinds.setdefault(name, set()).add((din, dout))
    for i in range(m.cfg.layers):
        assert kinds[f"gpt.h.{i}"] == {(torch.float32, torch.float32)}, "residual stream between blocks"
        assert kinds[f"gpt.h.{i}.ln_1"] == {(torch.float32, torch.float32)}
        assert {o for _, o in kinds[f"gpt.h.{i}.attn"]} == {dtype}
        assert {o for _, o in kinds[f"gpt.h.{i}.attn.c_attn"]} == {dtype}
        assert {o for _, o in kinds[f"gpt.h.{i}.mlp.c_fc"]} == {dtype}
        assert {i_ for i_, _ in kinds[f"gpt.h.{i}.mlp.c_proj"]} == {torch.float32}  # gelu_new in float32
        assert {o for _, o in kinds[f"gpt.h.{i}.mlp"]} == {dtype}
    assert kinds["gpt.ln_f"] == {(torch.float32, torch.float32)}
    assert kinds["final_norm"] == {(torch.float32, torch.float32)}
    assert {o for _, o in kinds["mel_head"]} == {dtype}


@pytest.mark.parametrize("dtype", HALF)
def test_outer_autocast_changes_nothing(fp32_model, dtype):
    """The pipeline wraps GPT calls in autocast of the weights' dtype; results are identical."""
    m = _half(fp32_model, dtype)
    spk = torch.randn(1, 19, 1024)
    settings = DecodingSettings(do_sample=False, num_beams=1, repetition_penalty=1.0)

    def run():
        with torch.no_grad():
            conds = m.conditioning(m.speaker_latents(spk), m.emovec(spk))
            res = generate_codes(m, conds, TEXT, settings, target_tokens=6)
            return conds, m.latents(conds, TEXT, res.codes), res.codes
    plain = run()
    with torch.autocast("cpu", dtype=dtype):
        wrapped = run()
    for a, b in zip(plain, wrapped):
        assert a.dtype == b.dtype
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert plain[1].dtype == torch.float32  # the latent leaves final_norm in float32, as upstream


@pytest.mark.parametrize("dtype", HALF)
def test_half_tracks_float32_closer_than_an_all_half_residual(fp32_model, dtype):
    """With the residual stream in float32 the only rounding is in the matmuls: the hidden states of
    a long prefix stay close to the float32 model (a half residual stream drifts further)."""
    m = _half(fp32_model, dtype)
    ref = copy.deepcopy(m).float()  # the same (rounded) weights in float32
    embeds = torch.randn(1, 150, 16) * 3
    with torch.no_grad():
        want = ref.hidden_states(embeds)
        got = m.hidden_states(embeds)
        x = embeds.to(dtype)  # all-half residual for comparison
        for block in m.gpt.h:
            x = (x + block.attn(block.ln_1(x).to(dtype))).to(dtype)
            x = (x + block.mlp(block.ln_2(x).to(dtype))).to(dtype)
        all_half = m.final_norm(m.gpt.ln_f(x))
    err = (got - want).abs().max().item()
    assert err < (0.002 if dtype == torch.float16 else 0.01)
    assert err <= (all_half - want).abs().max().item()


def test_float32_is_unchanged_by_the_mixed_precision_code(fp32_model):
    """In float32 every cast is a no-op: conditioning and hidden states are plain float32 math."""
    m = fp32_model
    lat, ev = torch.randn(1, 32, 16), torch.randn(1, 16)
    with torch.no_grad():
        conds = m.conditioning(lat, ev)
        speed = m.speed_emb.weight
        torch.testing.assert_close(conds, torch.cat((lat + ev[:, None], speed[[1, 0]][None]), 1), rtol=0, atol=0)
        x = torch.randn(1, 7, 16)
        h = x
        for block in m.gpt.h:
            h = h + block.attn.c_proj(_attn(block, torch.nn.functional.layer_norm(h, (16,), block.ln_1.weight,
                                                                                   block.ln_1.bias)))
            h2 = torch.nn.functional.layer_norm(h, (16,), block.ln_2.weight, block.ln_2.bias)
            h = h + block.mlp.c_proj(torch.nn.functional.gelu(block.mlp.c_fc(h2), approximate="tanh"))
        torch.testing.assert_close(m.gpt(x), m.gpt.ln_f(h), rtol=1e-5, atol=1e-6)


def _attn(block, x):
    b, t, d = x.shape
    heads = block.attn.heads
    q, k, v = (y.view(b, t, heads, d // heads).transpose(1, 2) for y in block.attn.c_attn(x).split(d, 2))
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    return out.transpose(1, 2).reshape(b, t, d)
