"""Tier (a) for the GPT network (UnifiedVoice v2): tiny random configs, shapes, masking, loading."""

from __future__ import annotations

import math

import pytest
import torch

from indextts2_core.checkpoints import CheckpointError
from indextts2_core.config import ConditionModuleConfig, GPTConfig
from indextts2_core.gpt.conformer import ConformerEncoder, sinusoid_table
from indextts2_core.gpt.model import GPT_SKIP, UnifiedVoice, load_gpt
from tools.conformance.manifests import CONTRACTS
from indextts2_core.gpt.perceiver import PerceiverResampler


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny tensors, one intra-op thread


def tiny_config(**overrides) -> GPTConfig:
    cm = ConditionModuleConfig(output_size=8, linear_units=16, attention_heads=2, num_blocks=1,
                               input_layer="conv2d2", perceiver_mult=1)
    em = ConditionModuleConfig(output_size=6, linear_units=12, attention_heads=1, num_blocks=1,
                               input_layer="conv2d2", perceiver_mult=1)
    fields = dict(model_dim=16, max_mel_tokens=200, max_text_tokens=20, heads=2, layers=2, number_text_tokens=30,
                  number_mel_codes=26, start_mel_token=24, stop_mel_token=25, start_text_token=0,
                  stop_text_token=1, condition_module=cm, emo_condition_module=em)
    fields.update(overrides)
    return GPTConfig(**fields)


def randomize_(module: torch.nn.Module, seed: int = 0, std: float = 0.5) -> torch.nn.Module:
    """Every parameter ~ N(0, std²) (norm gains around 1) so the tiny model is far from uniform."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=g) * std
            gain = name.endswith(("norm.weight", "ln_1.weight", "ln_2.weight", "ln_f.weight", "gamma")) or \
                (".norm_" in name and name.endswith("weight"))
            p.copy_(1 + 0.1 * noise if gain else noise)
    return module.eval()


def tiny_model(seed: int = 0, **overrides) -> UnifiedVoice:
    return randomize_(UnifiedVoice(tiny_config(**overrides)), seed)


def test_shapes_of_the_public_api():
    m = tiny_model()
    spk, emo = torch.randn(1, 41, 1024), torch.randn(1, 29, 1024)
    with torch.no_grad():
        lat = m.speaker_latents(spk)
        assert lat.shape == (1, 32, 16)
        assert m.emo_conditioning(emo).shape == (1, 1024)
        ev = m.emovec(emo)
        assert ev.shape == (1, 16)
        merged = m.merge_emovec(spk, emo, 0.3)
        base = m.emovec(spk)
        torch.testing.assert_close(merged, base + 0.3 * (ev - base))
        torch.testing.assert_close(m.merge_emovec(spk, emo, 1.0), ev, atol=1e-4, rtol=1e-5)  # b + (e - b)
        conds = m.conditioning(lat, ev)
        assert conds.shape == (1, 34, 16)
        torch.testing.assert_close(conds[:, :32], lat + ev[:, None])
        torch.testing.assert_close(conds[0, 32], m.speed_emb.weight[1])  # "duration_emb_half" first
        torch.testing.assert_close(conds[0, 33], m.speed_emb.weight[0])
        latent = m.latents(conds, torch.tensor([5, 6, 7]), torch.tensor([[3, 4, 9, 9]]))
        assert latent.shape == (1, 4, 16)


def test_latent_pass_layout_and_contiguous_positions():
    """Row j of the latent pass is final_norm(GPT) at the input [start, c_0..][j] with mel position j."""
    m = tiny_model(1)
    conds, ids, codes = torch.randn(1, 34, 16), torch.tensor([4, 1, 7]), torch.tensor([[2, 3, 5]])
    with torch.no_grad():
        got = m.latents(conds, ids, codes)
        text_seq = torch.tensor([0, 4, 1, 7, 1])  # the latent pass keeps ids 0/1 inside the text
        text = m.text_embedding(text_seq) + m.text_pos_embedding.emb(torch.arange(5))
        mel_seq = torch.tensor([24, 2, 3, 5, 25])
        mel = m.mel_embedding(mel_seq) + m.mel_pos_embedding.emb(torch.arange(5))
        full = m.final_norm(m.gpt(torch.cat((conds[0], text, mel))[None]))
    torch.testing.assert_close(got, full[:, 34 + 5:34 + 5 + 3])


def test_conformer_subsampling_and_masking():
    cfg = tiny_config().condition_module
    enc = randomize_(ConformerEncoder(1024, cfg), 2)
    x = torch.randn(2, 23, 1024)
    with torch.no_grad():
        out, mask = enc(x, torch.tensor([23, 15]))
        assert out.shape == (2, 11, 8) and mask.shape == (2, 1, 11)
        assert mask[0].all() and mask[1, 0].sum() == 7  # output j is valid when input frame 2j+2 is
        # frames past a sequence's length must not change its valid outputs
        y = x.clone()
        y[1, 15:] = torch.randn(8, 1024) * 10
        out2, _ = enc(y, torch.tensor([23, 15]))
    torch.testing.assert_close(out2[1, :7], out[1, :7])
    torch.testing.assert_close(out2[0], out[0])


def test_sinusoid_table_matches_formula():
    pe = sinusoid_table(7, 8, "cpu", torch.float32)[0]
    p, i = 5, 3
    assert math.isclose(pe[p, 2 * i].item(), math.sin(p * 10000 ** (-2 * i / 8)), rel_tol=1e-5)
    assert math.isclose(pe[p, 2 * i + 1].item(), math.cos(p * 10000 ** (-2 * i / 8)), rel_tol=1e-5)


def test_perceiver_ignores_masked_context():
    per = randomize_(PerceiverResampler(16, 8, 4, heads=2, ff_mult=2), 3)
    ctx = torch.randn(1, 9, 8)
    mask = torch.tensor([[True] * 6 + [False] * 3])
    with torch.no_grad():
        a = per(ctx, mask)
        ctx2 = ctx.clone()
        ctx2[:, 6:] = 100.0
        b = per(ctx2, mask)
        c = per(ctx2)
    assert a.shape == (1, 4, 16)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_bad_inputs_raise_value_errors():
    m = tiny_model()
    with pytest.raises(ValueError, match="1024"):
        m.speaker_latents(torch.randn(1, 20, 512))
    with pytest.raises(ValueError, match="NaN"):
        m.emovec(torch.full((1, 20, 1024), float("nan")))
    with pytest.raises(ValueError, match="empty"):
        m.text_embeds(torch.tensor([], dtype=torch.long))
    with pytest.raises(ValueError, match="text position table"):
        m.text_embeds(torch.full((21,), 5))
    with pytest.raises(ValueError, match="text_ids must lie"):
        m.text_embeds(torch.tensor([31]))
    conds = torch.randn(1, 34, 16)
    with pytest.raises(ValueError, match="mel position table"):
        m.latents(conds, torch.tensor([3]), torch.zeros(1, 201, dtype=torch.long))
    with pytest.raises(ValueError, match="codes must lie"):
        m.latents(conds, torch.tensor([3]), torch.tensor([[26]]))
    with pytest.raises(ValueError, match="emovec"):
        m.conditioning(torch.randn(1, 32, 16), torch.randn(1, 15))


def _state_dict_like_official(m: UnifiedVoice) -> dict:
    sd = {k: v.clone() for k, v in m.state_dict().items()}
    for prefix, enc in (("conditioning_encoder", m.conditioning_encoder),
                        ("emo_conditioning_encoder", m.emo_conditioning_encoder)):
        sd[f"{prefix}.embed.pos_enc.pe"] = sinusoid_table(5000, enc.output_size, "cpu", torch.float32)
    return sd


def test_load_gpt_flat_wrapped_and_legacy_buffers(tmp_path):
    cfg = tiny_config()
    ref = tiny_model(4)
    sd = _state_dict_like_official(ref)
    flat, wrapped = tmp_path / "flat.pth", tmp_path / "wrapped.pth"
    torch.save(sd, flat)
    legacy = dict(sd)
    for i in range(cfg.layers):  # buffers of older transformers GPT-2 checkpoints
        legacy[f"gpt.h.{i}.attn.bias"] = torch.ones(1, 1, 8, 8, dtype=torch.bool).tril()
        legacy[f"gpt.h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    del legacy["conditioning_encoder.embed.pos_enc.pe"]  # recomputed, so absence is fine
    torch.save({"model": legacy}, wrapped)
    spk = torch.randn(1, 30, 1024)
    with torch.no_grad():
        want = ref.speaker_latents(spk)
        for path in (flat, wrapped):
            m = load_gpt(path, cfg)
            assert not any(t.is_meta for t in m.state_dict().values())
            torch.testing.assert_close(m.speaker_latents(spk), want)
    assert GPT_SKIP.matches("gpt.h.3.attn.masked_bias") and not GPT_SKIP.matches("gpt.h.3.attn.c_attn.weight")


def test_load_gpt_fails_loudly_on_missing_or_misshaped_keys(tmp_path):
    cfg = tiny_config()
    sd = _state_dict_like_official(tiny_model())
    broken = dict(sd)
    del broken["gpt.h.1.mlp.c_fc.weight"]
    broken["mel_head.bias"] = torch.zeros(27)
    path = tmp_path / "broken.pth"
    torch.save(broken, path)
    with pytest.raises(CheckpointError) as e:
        load_gpt(path, cfg)
    assert "gpt.h.1.mlp.c_fc.weight" in str(e.value) and "mel_head.bias" in str(e.value)


def test_conv1d_layout_matches_checkpoint_convention():
    """c_attn is stored [in, out] and its output columns are q | k | v."""
    m = tiny_model()
    attn = m.gpt.h[0].attn
    assert attn.c_attn.weight.shape == (16, 48)
    x = torch.randn(1, 3, 16)
    with torch.no_grad():
        torch.testing.assert_close(attn.c_attn(x), x @ attn.c_attn.weight + attn.c_attn.bias)


def test_contract_uses_the_config_widths(official_config):
    with torch.device("meta"):
        (part,) = CONTRACTS["gpt.pth.json"](official_config, {})
    sd = part.module.state_dict()
    assert sd["gpt.h.23.attn.c_attn.weight"].shape == (1280, 3840)
    assert sd["mel_pos_embedding.emb.weight"].shape == (1818, 1280)
    assert sd["perceiver_encoder.layers.1.1.0.weight"].shape == (3412, 1280)
    assert sd["emo_perceiver_encoder.layers.0.0.to_q.weight"].shape == (256, 1024)
    assert all(t.is_meta for t in sd.values())


# ---- every config the official constructors build (issue 13 item 1) -----------------------------
@pytest.mark.parametrize("dim,heads,cond,emo", [
    (21, 3, (6, 5, 3, 7), (10, 7, 5, 3)),  # odd model width, odd conformer FFN, 3 and 5 heads
    (15, 5, (6, 3, 2, 1), (2, 9, 1, 2)),  # one-head emotion conformer of width 2, perceiver_mult 2
])
def test_odd_widths_build_and_run(dim, heads, cond, emo):
    """Only what upstream cannot build is refused (model_dim % heads, conformer width % heads, odd
    conformer width); odd model widths, FFN sizes, head counts and multipliers build and run."""
    def module(v):
        return ConditionModuleConfig(output_size=v[0], linear_units=v[1], attention_heads=v[2], num_blocks=1,
                                     input_layer="conv2d2", perceiver_mult=v[3])
    m = tiny_model(model_dim=dim, heads=heads, condition_module=module(cond), emo_condition_module=module(emo))
    spk = torch.randn(1, 13, 1024)
    with torch.no_grad():
        conds = m.conditioning(m.speaker_latents(spk), m.merge_emovec(spk, spk, 1.0))
        assert conds.shape == (1, 34, dim)
        h = m.hidden_states(m.prompt_embeds(conds, torch.tensor([3, 4, 5])))
    assert h.shape == (1, 34 + 5 + 1, dim) and torch.isfinite(h).all()


def test_indivisible_widths_are_refused_as_upstream():
    with pytest.raises(ValueError, match="divisible"):
        UnifiedVoice(tiny_config(model_dim=16, heads=3))
    with pytest.raises(ValueError, match="divisible"):
        ConformerEncoder(1024, ConditionModuleConfig(output_size=9, linear_units=4, attention_heads=2, num_blocks=1,
                                                     input_layer="conv2d2", perceiver_mult=1))
    with pytest.raises(ValueError, match="even"):
        ConformerEncoder(1024, ConditionModuleConfig(output_size=9, linear_units=4, attention_heads=3, num_blocks=1,
                                                     input_layer="conv2d2", perceiver_mult=1))
