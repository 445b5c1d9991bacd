"""IndexTTS-2.5 networks on tiny random configs: the typed config, UnifiedVoice25 (conditioning
rows, language rows, input layout), strict loading round trips and skip-list reasons for gpt.pth,
codec.pth and s2mel.pth, the codec's decode, the 2.5 S2M length and exact-N generation."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
import torch.nn.functional as F
import yaml

from conftest import SHARED, need
from indextts2_core.checkpoints import CheckpointError
from indextts2_core.config import ConditionModuleConfig, ConfigError, IndexTTS2Config
from indextts2_core.config25 import (EnhancedCodecConfig, GPT25Config, IndexTTS25Config, config_version,
                                     load_config)
from indextts2_core.gpt.generate import DecodingSettings, generate_codes
from indextts2_core.gpt.model25 import GPT25_SKIP, LANGUAGES, STYLE_DIM, UnifiedVoice25, load_gpt25
from indextts2_core.s2mel.model import GPT_LAYER_SKIP_25, S2Mel, load_s2mel
from indextts2_core.semantic.codec25 import FILE_SKIP, SKIP as CODEC_SKIP, EnhancedCodec, load_codec25
from test_gpt_model import randomize_
from test_s2mel import tiny_s2mel_config

pytestmark = pytest.mark.usefixtures("one_thread")

KIT25 = SHARED / "parity" / "public25"
V25_MANIFESTS = SHARED / "spec" / "manifests" / "v2_5"
STOP = 25


def tiny_config(**overrides) -> GPT25Config:
    em = ConditionModuleConfig(output_size=6, linear_units=12, attention_heads=1, num_blocks=1,
                               input_layer="conv2d2", perceiver_mult=1)
    fields = dict(model_dim=16, max_mel_tokens=60, max_text_tokens=20, heads=2, layers=2, number_text_tokens=300,
                  number_mel_codes=26, start_mel_token=24, stop_mel_token=STOP, start_text_token=0,
                  stop_text_token=1, emo_condition_module=em)
    fields.update(overrides)
    return GPT25Config(**fields)


def tiny_model(seed: int = 0, **overrides) -> UnifiedVoice25:
    return randomize_(UnifiedVoice25(tiny_config(**overrides)), seed, std=0.3)


def style(seed: int = 1) -> torch.Tensor:
    return torch.randn(1, STYLE_DIM, generator=torch.Generator().manual_seed(seed))


TEXT = torch.tensor([[58, 220, 7, 0, 13, 42, 1]])  # lang prefix-like ids, a "!" (0), the appended 1


# ---- config -----------------------------------------------------------------------------------------
def test_recovered_and_kit_configs_parse():
    full = IndexTTS25Config.from_yaml(need(V25_MANIFESTS / "config.yaml"))
    assert (full.gpt.model_dim, full.gpt.number_text_tokens, full.gpt.max_mel_tokens) == (1280, 60509, 1815)
    assert full.semantic_codec.downsample_scale == 2 and full.semantic_codec.num_quantizers == 1  # defaults
    assert full.timing.codes_per_second == 25 and full.timing.content_per_code == 2
    assert full.version == "2.5" and IndexTTS2Config.version == "2"
    kit = load_config(need(KIT25 / "checkpoints" / "config.yaml"))
    assert isinstance(kit, IndexTTS25Config) and kit.gpt.model_dim == 32


@pytest.mark.parametrize("df,codes", [(1.0, 100), (0.7, 22), (1.3, 17), (0.5, 1), (2.0, 907)])
def test_25_target_length_is_int_2t_172_df(df, codes):
    timing = IndexTTS25Config.from_yaml(need(V25_MANIFESTS / "config.yaml")).timing
    assert timing.frames_for_codes(codes, df) == int(2 * codes * 1.72 * df)
    assert timing.frames_for_codes(100) == 344  # spec 2.5 §9.4


def _raw25() -> dict:
    return yaml.safe_load(need(V25_MANIFESTS / "config.yaml").read_text())


def test_version_detection():
    raw = _raw25()
    assert config_version(raw) == "2.5"
    raw["version"] = 2.0  # the released file has been reported to say 2.0: no dataset block decides
    assert config_version(raw) == "2.5"
    raw["dataset"] = {"bpe_model": "bpe.model"}
    assert config_version(raw) is None  # undecidable from the config alone
    v2 = yaml.safe_load(need(SHARED / "parity" / "public" / "checkpoints" / "config.yaml").read_text())
    assert config_version(v2) == "2"  # bpe.model and a vocoder `type`
    assert isinstance(load_config(SHARED / "parity" / "public" / "checkpoints" / "config.yaml"), IndexTTS2Config)


def test_ambiguous_config_needs_an_explicit_version(tmp_path):
    raw = _raw25()
    raw.update(version=2.0, dataset={"bpe_model": "bpe.model"})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="cannot tell IndexTTS-2 from 2.5"):
        load_config(path)
    assert isinstance(load_config(path, version="2.5"), IndexTTS25Config)


@pytest.mark.parametrize("edit,needle", [
    (lambda r: r["gpt"].pop("heads"), r"missing key 'gpt\.heads'"),
    (lambda r: r["gpt"].update(spk_dim=3), r"unknown key\(s\) gpt\.spk_dim"),
    (lambda r: r["semantic_codec"].update(downsample_scale=1), r"downsample_scale: 1"),
    (lambda r: r["semantic_codec"].update(num_quantizers=0), r"num_quantizers: must be a positive"),
    (lambda r: r["gpt"].update(condition_type="campplus_x"), r"gpt\.condition_type"),
    (lambda r: r["gpt"]["emo_condition_module"].update(attention_heads=0), r"attention_heads: must be"),
    (lambda r: r.pop("emo_num"), r"missing key 'emo_num'"),
])
def test_bad_25_configs_name_the_key(edit, needle):
    raw = _raw25()
    edit(raw)
    with pytest.raises(ConfigError, match=needle):
        IndexTTS25Config.from_dict(raw)


def test_condition_module_is_present_but_not_built():
    raw = _raw25()
    raw["gpt"].pop("condition_module")  # unused in campplus mode: absent is fine too
    cfg = IndexTTS25Config.from_dict(raw)
    with torch.device("meta"):
        keys = set(UnifiedVoice25(cfg.gpt).state_dict())
    assert not any(k.startswith(("conditioning_encoder.", "perceiver_encoder.", "speed_emb")) for k in keys)
    assert {"spk_emb_proj.weight", "lang_embedding.weight"} <= keys


# ---- GPT ---------------------------------------------------------------------------------------------
def test_conditioning_rows():
    m = tiny_model()
    ev = torch.randn(1, 16)
    with torch.no_grad():
        conds = m.conditioning(style(), ev)
        proj = F.linear(style(), m.spk_emb_proj.weight, m.spk_emb_proj.bias)
    assert conds.shape == (1, 3, 16) and conds.dtype == torch.float32
    torch.testing.assert_close(conds[:, 0], proj + ev)
    assert torch.equal(conds[:, 1:], torch.zeros(1, 2, 16))  # two literal zero rows, no speed_emb


def test_language_row_on_every_text_position():
    m = tiny_model()
    ids = torch.tensor([5, 9, 3])
    with torch.no_grad():
        a, b = m.text_embeds(ids, 3), m.text_embeds(ids, 50)
        plain = m.text_embedding(torch.tensor([0, 5, 9, 3, 1])) + m.text_pos_embedding.emb(torch.arange(5))
    assert a.shape == (1, 5, 16)
    torch.testing.assert_close(a[0], plain + m.lang_embedding.weight[3])  # framing rows included
    torch.testing.assert_close(a - b, (m.lang_embedding.weight[3] - m.lang_embedding.weight[50]).expand(1, 5, 16))


def test_input_layout_drops_ids_0_and_1_and_pads_left():
    m = tiny_model()
    with torch.no_grad():
        conds = m.conditioning(style(), torch.randn(1, 16))
        prompt = m.prompt_embeds(conds, TEXT, 2)
        fake, embeds, mask = m.official_inputs(conds, TEXT, 2)
    kept = 5  # 58, 220, 7, 13, 42
    assert prompt.shape == (1, 3 + kept + 2 + 1, 16)
    L = TEXT.numel()
    assert fake.shape == (1, L + 6) and embeds.shape == (1, L + 5, 16) and mask.shape == (1, L + 6)
    assert fake[0, :-1].eq(1).all() and fake[0, -1] == m.cfg.start_mel_token
    assert mask[0].tolist() == [0, 0] + [1] * (L + 4)  # one 0 and the appended 1 -> two padding rows
    assert torch.equal(embeds[:, :2], torch.zeros(1, 2, 16))
    torch.testing.assert_close(embeds[:, 2:], prompt[:, :-1])


def test_text_limit_counts_the_ids_that_reach_the_model():
    """Upstream needs M + 2 <= text table rows (M = ids kept); the appended 1 and "!" ids do not count."""
    m = tiny_model()  # max_text_tokens 20
    conds = m.conditioning(style(), torch.zeros(1, 16))
    ok = torch.tensor([5] * 20 + [0, 0, 1])
    assert m.prompt_embeds(conds, ok, 1).shape[1] == 3 + 22 + 1
    with pytest.raises(ValueError, match="keep 21 tokens"):
        m.prompt_embeds(conds, torch.tensor([5] * 21 + [1]), 1)
    with pytest.raises(ValueError, match=r"lie in \[0, 300\]"):
        m.prompt_embeds(conds, torch.tensor([301, 1]), 1)


def test_empty_text_after_the_filter_keeps_the_framing_rows():
    m = tiny_model()
    with torch.no_grad():
        prompt = m.prompt_embeds(m.conditioning(style(), torch.zeros(1, 16)), torch.tensor([0, 1]), 0)
    assert prompt.shape == (1, 3 + 2 + 1, 16)


@pytest.mark.parametrize("lang,needle", [(LANGUAGES, "lang must lie"), (-1, "lang must lie"), (1.5, "one integer"),
                                         (torch.tensor([1, 2]), "one integer")])
def test_bad_language_index(lang, needle):
    m = tiny_model()
    with pytest.raises(ValueError, match=needle):
        m.text_embeds(torch.tensor([3]), lang)


@pytest.mark.parametrize("bad,needle", [(torch.randn(1, 191), r"\[B, 192\]"), (torch.full((1, 192), float("nan")), "NaN")])
def test_bad_style(bad, needle):
    with pytest.raises(ValueError, match=needle):
        tiny_model().conditioning(bad, torch.zeros(1, 16))


def _official_file(model: UnifiedVoice25) -> dict:
    """The tensors an official 2.5 gpt.pth holds: the module's plus the emotion conformer's sinusoid
    buffer, which the pack recomputes (skipped)."""
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    sd["emo_conditioning_encoder.embed.pos_enc.pe"] = torch.zeros(1, 50, 6)
    return sd


def test_gpt25_strict_round_trip(tmp_path):
    model = tiny_model(3)
    torch.save(_official_file(model), tmp_path / "gpt.pth")
    loaded = load_gpt25(tmp_path / "gpt.pth", tiny_config())
    conds = model.conditioning(style(), torch.randn(1, 16))
    with torch.no_grad():
        torch.testing.assert_close(loaded.hidden_states(loaded.prompt_embeds(conds, TEXT, 4)),
                                   model.hidden_states(model.prompt_embeds(conds, TEXT, 4)), rtol=0, atol=0)
    torch.save({"model": _official_file(model)}, tmp_path / "wrapped.pth")  # {"model": sd} is accepted
    load_gpt25(tmp_path / "wrapped.pth", tiny_config())


def test_gpt25_strictness_and_skip_reasons(tmp_path):
    sd = _official_file(tiny_model())
    for key in ("emo_conditioning_encoder.embed.pos_enc.pe", "gpt.h.0.attn.bias", "inference_model.lm_head.weight"):
        assert GPT25_SKIP.matches(key)
    assert "recomputed" in GPT25_SKIP.reason and "post-init" in GPT25_SKIP.reason
    bad = dict(sd)
    del bad["lang_embedding.weight"]
    bad["speed_emb.weight"] = torch.zeros(2, 16)  # a v2 key
    torch.save(bad, tmp_path / "gpt.pth")
    with pytest.raises(CheckpointError, match=r"(?s)missing: lang_embedding\.weight.*unexpected: speed_emb\.weight"):
        load_gpt25(tmp_path / "gpt.pth", tiny_config())
    bad = dict(sd, **{"spk_emb_proj.weight": torch.zeros(16, 80)})
    torch.save(bad, tmp_path / "gpt.pth")
    with pytest.raises(CheckpointError, match=r"wrong shape: spk_emb_proj\.weight expected \[16, 192\]"):
        load_gpt25(tmp_path / "gpt.pth", tiny_config())


def test_v2_gpt_file_is_refused_by_the_25_loader(tmp_path):
    from test_gpt_model import tiny_model as tiny_v2

    torch.save(tiny_v2().state_dict(), tmp_path / "gpt.pth")
    cfg = tiny_config(number_text_tokens=30, max_mel_tokens=200)
    with pytest.raises(CheckpointError, match=r"(?s)missing: lang_embedding.*unexpected: conditioning_encoder"):
        load_gpt25(tmp_path / "gpt.pth", cfg)


@pytest.fixture(scope="module")
def stop_loving():
    m = tiny_model(8)
    with torch.no_grad():
        m.mel_head.bias[STOP] = 50.0
    return m


METHODS = {
    "greedy": DecodingSettings(do_sample=False, num_beams=1, max_mel_tokens=60),
    "sampling": DecodingSettings(num_beams=1, max_mel_tokens=60),
    "beam_search": DecodingSettings(do_sample=False, num_beams=3, max_mel_tokens=60),
    "beam_sampling": DecodingSettings(max_mel_tokens=60),
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n", [1, 7, 40])
def test_exact_target_count_for_every_method(stop_loving, method, n):
    conds = stop_loving.conditioning(style(), torch.zeros(1, 16))
    res = generate_codes(stop_loving, conds, TEXT, METHODS[method], target_tokens=n, lang=5,
                         generator=torch.Generator().manual_seed(0))
    assert res.codes.shape == (1, n) and not (res.codes == STOP).any() and res.stopped


def test_natural_stop_and_target_tokens_at_25_codes_per_second(stop_loving):
    from indextts2_core.timing import Timing

    conds = stop_loving.conditioning(style(), torch.zeros(1, 16))
    res = generate_codes(stop_loving, conds, TEXT, METHODS["greedy"], lang=5)
    assert res.codes.shape == (1, 0) and res.stopped  # the stop-loving model stops at once
    tokens = Timing(codes_per_second=25, content_per_code=2).codes(1.2)
    res = generate_codes(stop_loving, conds, TEXT, METHODS["greedy"], lang=5, target_tokens=tokens)
    assert res.codes.shape == (1, 30)


def test_generation_needs_the_language_for_25_and_refuses_it_for_v2(stop_loving):
    from test_gpt_model import tiny_model as tiny_v2

    conds = stop_loving.conditioning(style(), torch.zeros(1, 16))
    with pytest.raises(TypeError):
        generate_codes(stop_loving, conds, TEXT, METHODS["greedy"], target_tokens=2)
    with pytest.raises(TypeError):
        generate_codes(tiny_v2(), torch.zeros(1, 34, 16), torch.tensor([3, 4]), METHODS["greedy"], target_tokens=2,
                       lang=1)


def test_beam_indices_follow_the_chosen_rows(stop_loving):
    m = tiny_model(5)
    conds = m.conditioning(style(), torch.randn(1, 16))
    res = generate_codes(m, conds, TEXT, METHODS["beam_search"], target_tokens=9, lang=1)
    assert len(res.beam_indices) == res.sequence.size(1) and set(res.beam_indices) <= {0, 1, 2}
    assert res.beam_indices[0] == 0  # step 0 expands beam 0 only


def test_half_precision_flow_of_the_25_gpt():
    m = copy.deepcopy(tiny_model(2)).to(torch.bfloat16)
    with torch.no_grad():
        conds = m.conditioning(style(), torch.randn(1, 16))
        prompt = m.prompt_embeds(conds, TEXT, 3)
        h = m.hidden_states(prompt)
    assert conds.dtype == prompt.dtype == h.dtype == torch.float32
    assert m.speaker_latent(style()).dtype == torch.bfloat16


# ---- codec -------------------------------------------------------------------------------------------
CODEC = EnhancedCodecConfig(codebook_size=16, hidden_size=12, codebook_dim=4, vocos_dim=8,
                            vocos_intermediate_dim=16, vocos_num_layers=2)
Q = "quantizer.quantizers.0."


def codec_file(seed: int = 0, optimizer: bool = True) -> dict:
    """An official-format codec.pth: every key of the full codec (encoder half included, weight-normed
    projections) under "model", plus optimizer state beside it."""
    g = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in EnhancedCodec(CODEC).state_dict().items()}
    h = CODEC.hidden_size
    shapes.update({"down.weight": (h, h, 3), "down.bias": (h,), Q + "in_project.weight": (CODEC.codebook_dim, h, 1),
                   Q + "in_project.bias": (CODEC.codebook_dim,)})
    shapes.update({"encoder." + k[len("decoder."):]: s for k, s in shapes.items() if k.startswith("decoder.")})
    sd = {}
    for k, shape in shapes.items():
        if k.endswith("_project.weight"):
            sd[k + "_v"] = torch.randn(shape, generator=g)
            sd[k + "_g"] = torch.rand(shape[0], 1, 1, generator=g) + 0.5
        else:
            sd[k] = torch.randn(shape, generator=g) * 0.3
    out = {"model": sd}
    if optimizer:
        out["optimizer"] = {"state": {0: {"exp_avg": torch.zeros(3)}}, "param_groups": [{"lr": 1e-4}]}
        out["step"] = 1200
    return out


def test_codec_decode_formula_and_round_trip(tmp_path):
    ckpt = codec_file()
    torch.save(ckpt, tmp_path / "codec.pth")
    codec = load_codec25(tmp_path / "codec.pth", CODEC)
    sd = ckpt["model"]
    codes = torch.tensor([[3, 0, 15, 7, 7]])
    v, g = sd[Q + "out_project.weight_v"], sd[Q + "out_project.weight_g"]
    with torch.no_grad():
        emb = F.conv1d(sd[Q + "codebook.weight"][codes].transpose(1, 2), g * v / v.norm(dim=(1, 2), keepdim=True),
                       sd[Q + "out_project.bias"])
        dec = codec.decoder(emb)
        up = dec.transpose(1, 2).repeat_interleave(2, dim=-1)  # nearest x2
        want = F.conv1d(up, sd["up.weight"], sd["up.bias"], padding=1).transpose(1, 2)
        got = codec.decode(codes)
    assert got.shape == (1, 10, CODEC.hidden_size)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(codec.vq2emb(codes), emb, rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # batch rows are independent
        torch.testing.assert_close(codec.decode(torch.cat([codes, codes.flip(1)]))[0], got[0], rtol=1e-5, atol=1e-6)


def test_codec_skip_reasons_and_strictness(tmp_path):
    for key in ("encoder.0.embed.weight", "down.weight", Q + "in_project.weight_g"):
        assert CODEC_SKIP.matches(key)
    assert not CODEC_SKIP.matches("decoder.0.embed.weight") and not CODEC_SKIP.matches("up.weight")
    assert FILE_SKIP.matches("optimizer") and FILE_SKIP.matches("step") and not FILE_SKIP.matches("model")
    assert "optimizer" in FILE_SKIP.reason and "decodes" in CODEC_SKIP.reason
    ckpt = codec_file()
    del ckpt["model"]["up.bias"]
    torch.save(ckpt, tmp_path / "codec.pth")
    with pytest.raises(CheckpointError, match=r"missing: up\.bias"):
        load_codec25(tmp_path / "codec.pth", CODEC)
    torch.save(codec_file()["model"], tmp_path / "flat.pth")  # the official loader reads ["model"] only
    with pytest.raises(CheckpointError, match="no entry 'model'"):
        load_codec25(tmp_path / "flat.pth", CODEC)
    torch.save(codec_file(optimizer=False), tmp_path / "plain.pth")
    assert load_codec25(tmp_path / "plain.pth", CODEC).decode(torch.tensor([[1]])).shape == (1, 2, 12)


@pytest.mark.parametrize("codes,needle", [(torch.tensor([[16]]), r"\[0, 16\)"), (torch.tensor([[-1]]), r"\[0, 16\)"),
                                          (torch.zeros(1, 0, dtype=torch.long), "T > 0"), (torch.ones(1, 2), "integer")])
def test_codec_bad_codes(codes, needle, tmp_path):
    codec = EnhancedCodec(CODEC)
    with pytest.raises(ValueError, match=needle):
        codec.decode(codes)


# ---- S2M ----------------------------------------------------------------------------------------------
def test_s2mel_25_has_no_gpt_layer_and_skips_it_by_name(tmp_path):
    s2cfg = tiny_s2mel_config(lr_in=12)
    cfg = dataclasses.replace(IndexTTS25Config.from_yaml(need(V25_MANIFESTS / "config.yaml")), s2mel=s2cfg)
    torch.manual_seed(0)
    full = S2Mel(s2cfg)  # an official file still carries gpt_layer
    net = {name: {k: v.clone() for k, v in getattr(full, name).state_dict().items()}
           for name in ("cfm", "length_regulator", "gpt_layer")}
    torch.save({"net": net}, tmp_path / "s2mel.pth")
    model = load_s2mel(tmp_path / "s2mel.pth", cfg)
    assert model.gpt_layer is None and GPT_LAYER_SKIP_25.matches("gpt_layer")
    assert "no GPT latent" in GPT_LAYER_SKIP_25.reason
    with pytest.raises(ValueError, match="no gpt_layer"):
        model.content_features(torch.zeros(1, 3, 1024), torch.zeros(1, 3, 1280))
    del net["gpt_layer"]
    torch.save({"net": net}, tmp_path / "without.pth")
    model = load_s2mel(tmp_path / "without.pth", cfg)
    content = torch.randn(1, 2 * 9, 12)  # decoded features of 9 codes
    frames = cfg.timing.frames_for_codes(9, 1.3)
    with torch.no_grad():
        cond = model.target_condition(content, frames)
    assert frames == int(18 * 1.72 * 1.3) and cond.shape == (1, frames, s2cfg.length_regulator.channels)
    with pytest.raises(CheckpointError, match="no entry 'gpt_layer'"):  # an IndexTTS-2 config still needs it
        load_s2mel(tmp_path / "without.pth", s2cfg)
