"""S2M unit tests with tiny random configs: length regulator, DiT pieces, WaveNet padding, CFM
sampler (CFG packing, guidance off, noise, progress), input validation and the s2mel.pth loader."""

from __future__ import annotations

import dataclasses

import math

import pytest
import torch

from indextts2_core.checkpoints import CheckpointError
from indextts2_core.config import (DiTConfig, LengthRegulatorConfig, MelConfig, S2MelConfig,
                                   WaveNetConfig)
from indextts2_core.timing import Timing
from indextts2_core.s2mel import flow_matching
from indextts2_core.s2mel.dit import DiT, apply_rope, ffn_width, rope_angles
from indextts2_core.s2mel.length_regulator import LengthRegulator
from indextts2_core.s2mel.model import (CFM_SKIP, LENGTH_REGULATOR_SKIP, GPT_LAYER_SIZES, S2Mel,
                                        load_s2mel)
from indextts2_core.s2mel.wavenet import ReflectConv1d, reflect_pad

MELS = 80


def tiny_s2mel_config(lr_in: int = 1024, channels: int = 8, hidden: int = 16, heads: int = 2, depth: int = 3,
                      wn_layers: int = 2, style: int = 6) -> S2MelConfig:
    return S2MelConfig(
        mel=MelConfig(sr=22050, n_fft=1024, win_length=1024, hop_length=256, n_mels=MELS, fmin=0.0, fmax=None),
        style_dim=style,
        length_regulator=LengthRegulatorConfig(channels=channels, in_channels=lr_in, content_codebook_size=4,
                                               sampling_ratios=(1, 1, 1, 1)),
        dit=DiTConfig(hidden_dim=hidden, num_heads=heads, depth=depth, in_channels=MELS, content_dim=channels,
                      style_condition=True, final_layer_type="wavenet", long_skip_connection=True,
                      uvit_skip_connection=True),
        wavenet=WaveNetConfig(hidden_dim=hidden, num_layers=wn_layers, kernel_size=5, dilation_rate=1),
    )


def tiny_s2mel(seed: int = 0, **kw) -> S2Mel:
    torch.manual_seed(seed)
    return S2Mel(tiny_s2mel_config(**kw)).eval()


# ---------------------------------------------------------------- length regulator

def lr_config(channels: int, in_channels: int, blocks: int = 4) -> LengthRegulatorConfig:
    return LengthRegulatorConfig(channels=channels, in_channels=in_channels, content_codebook_size=4,
                                 sampling_ratios=(1,) * blocks)


@pytest.mark.parametrize("blocks", [0, 1, 3, 6])
def test_length_regulator_builds_one_block_per_sampling_ratio(blocks):
    """Upstream builds one (Conv k3, GroupNorm, Mish) block per sampling_ratios entry, then a k1 conv."""
    lr = LengthRegulator(lr_config(5, 7, blocks)).eval()
    convs = [m for m in lr.model if isinstance(m, torch.nn.Conv1d)]
    assert len(convs) == blocks + 1 and convs[-1].kernel_size == (1,)
    assert f"model.{3 * blocks}.weight" in lr.state_dict()
    with torch.no_grad():
        assert lr(torch.randn(1, 4, 7), 9).shape == (1, 9, 5)


def test_length_regulator_gives_every_requested_count(one_thread):
    torch.manual_seed(0)
    lr = LengthRegulator(lr_config(2, 3)).eval()
    x = torch.randn(1, 5, 3)
    with torch.inference_mode():
        for frames in range(1, 4001):
            assert lr(x, frames).shape == (1, frames, 2), frames


def test_length_regulator_is_nearest_interpolation_then_conv_stack():
    torch.manual_seed(1)
    lr = LengthRegulator(lr_config(4, 6)).eval()
    x = torch.randn(1, 7, 6)
    with torch.no_grad():
        for frames in (1, 3, 7, 12, 100):
            src = torch.div(torch.arange(frames) * 7, frames, rounding_mode="floor")  # floor(dst·T/F)
            h = lr.content_in_proj(x)[:, src].transpose(1, 2)
            torch.testing.assert_close(lr(x, frames), lr.model(h).transpose(1, 2), rtol=1e-5, atol=1e-6)


def test_length_regulator_rejects_bad_input():
    lr = LengthRegulator(lr_config(2, 3))
    for bad in (0, -4, 2.5, True):
        with pytest.raises(ValueError, match="target_frames"):
            lr(torch.randn(1, 4, 3), bad)
    with pytest.raises(ValueError, match="empty"):
        lr(torch.randn(1, 0, 3), 5)
    with pytest.raises(ValueError, match=r"\[B, T, 3\]"):
        lr(torch.randn(1, 4, 5), 5)


# ---------------------------------------------------------------- DiT pieces

def test_ffn_width_matches_official_sizes():
    assert ffn_width(512) == 1536 and ffn_width(48) == 256


def test_rope_rotates_interleaved_pairs_and_is_relative():
    angles = rope_angles(9, 8, "cpu")
    assert angles.dtype == torch.float32 and angles.shape == (9, 4)
    torch.testing.assert_close(angles[3, 1], torch.tensor(3 * 10000 ** (-2 / 8)))
    cos, sin = angles.cos(), angles.sin()
    x = torch.zeros(1, 9, 1, 8)
    x[..., 2] = 1.0  # pair 1 = (x[2], x[3])
    y = apply_rope(x, cos, sin)
    torch.testing.assert_close(y[0, :, 0, 2], cos[:, 1])
    torch.testing.assert_close(y[0, :, 0, 3], sin[:, 1])
    assert torch.count_nonzero(y[..., [0, 1, 4, 5, 6, 7]]) == 0
    # <rope(q)_i, rope(k)_j> depends on i - j only
    q, k = torch.randn(8), torch.randn(8)
    rq = apply_rope(q.expand(1, 9, 1, 8), cos, sin)[0, :, 0]
    rk = apply_rope(k.expand(1, 9, 1, 8), cos, sin)[0, :, 0]
    torch.testing.assert_close(rq[5] @ rk[2], rq[7] @ rk[4], rtol=1e-5, atol=1e-5)


def test_timestep_embedding_starts_with_cosines():
    model = tiny_s2mel()
    te = model.cfm.estimator.t_embedder
    seen = {}
    te.mlp[0].register_forward_hook(lambda m, inp, out: seen.update(emb=inp[0]))
    te(torch.tensor([0.0, 0.5]))
    emb = seen["emb"]
    torch.testing.assert_close(emb[0], torch.cat([torch.ones(128), torch.zeros(128)]))
    torch.testing.assert_close(emb[1, 0], torch.cos(torch.tensor(500.0)))  # f_0 = 1, a = 1000·t
    torch.testing.assert_close(emb[1, 128 + 1], torch.sin(torch.tensor(500.0 * math.exp(-math.log(1e4) / 128))))


def test_uvit_skips_pair_lifo():
    model = tiny_s2mel(depth=5)
    layers = model.cfm.estimator.transformer.layers
    used = []
    for i, layer in enumerate(layers):
        layer.skip_in_linear.register_forward_hook(lambda m, inp, out, i=i: used.append(i))
    model.cfm.estimator(torch.randn(1, MELS, 6), torch.randn(1, MELS, 6), torch.tensor([0.3]),
                        torch.randn(1, 6), torch.randn(1, 6, 8))
    assert used == [3, 4]  # depth 5: blocks 0, 1 push, 2 is the middle, 3 <- 1 and 4 <- 0 pop


def test_dit_output_shape_and_batch_independence():
    dit = tiny_s2mel().cfm.estimator
    args = (torch.randn(2, MELS, 11), torch.randn(2, MELS, 11), torch.tensor([0.1, 0.9]), torch.randn(2, 6),
            torch.randn(2, 11, 8))
    with torch.no_grad():
        both = dit(*args)
        one = dit(*(a[1:] for a in args))
    assert both.shape == (2, MELS, 11)
    torch.testing.assert_close(both[1:], one, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- WaveNet padding

@pytest.mark.parametrize("hidden,heads,depth,wn_hidden,channels,style", [
    (12, 3, 4, 7, 5, 3),  # head width 4, even depth, odd WaveNet / content / style widths
    (10, 1, 1, 9, 3, 1),  # one head of width 10, one block
])
def test_dit_builds_every_width_upstream_runs(hidden, heads, depth, wn_hidden, channels, style, one_thread):
    torch.manual_seed(0)
    base = tiny_s2mel_config(lr_in=6, channels=channels, style=style)
    cfg = S2MelConfig(mel=base.mel, style_dim=style, length_regulator=base.length_regulator,
                      dit=dataclasses.replace(base.dit, hidden_dim=hidden, num_heads=heads, depth=depth),
                      wavenet=dataclasses.replace(base.wavenet, hidden_dim=wn_hidden))
    model = S2Mel(cfg).eval()
    with torch.no_grad():
        cond = model.target_condition(torch.randn(1, 3, 6), 5)
        mel = model.sample(model.length_regulator(torch.randn(1, 2, 6), 4), cond, torch.randn(1, MELS, 4),
                           torch.randn(1, style), steps=2, generator=torch.Generator().manual_seed(0))
    assert mel.shape == (1, MELS, 5) and torch.isfinite(mel).all()
    with pytest.raises(ValueError, match="heads of even size"):  # RoPE needs pairs: upstream fails too
        DiT(dataclasses.replace(cfg, dit=dataclasses.replace(cfg.dit, hidden_dim=9, num_heads=3)))


def test_reflect_padding_of_wavenet_convs():
    conv = ReflectConv1d(1, 1, 5)
    with torch.no_grad():
        conv.conv.conv.weight.zero_()
        conv.conv.conv.weight[0, 0, 0] = 1.0  # output t = padded input t = x[t - 2] reflected
        conv.conv.conv.bias.zero_()
    x = torch.arange(1.0, 7.0).view(1, 1, 6)
    assert conv(x).flatten().tolist() == [3.0, 2.0, 1.0, 2.0, 3.0, 4.0]
    for n in (1, 2):  # shorter than the pad: still 'same' length, no error
        assert conv(torch.randn(1, 1, n)).shape == (1, 1, n)
    # zero-extended to [5, 7, 0] first, reflected, the extension removed again
    assert reflect_pad(torch.tensor([[[5.0, 7.0]]]), 2, 2).flatten().tolist() == [0.0, 7.0, 5.0, 7.0, 0.0, 7.0]


# ---------------------------------------------------------------- flow matching

def _inputs(model: S2Mel, prompt: int = 4, target: int = 9, seed: int = 3):
    g = torch.Generator().manual_seed(seed)
    c = model.length_regulator.channels
    return (torch.randn(1, prompt + target, c, generator=g), torch.randn(1, MELS, prompt, generator=g),
            torch.randn(1, 6, generator=g), torch.randn(1, MELS, prompt + target, generator=g))


def _euler(estimator, mu, prompt, style, noise, steps, velocity):
    p = prompt.shape[-1]
    x = noise.clone()
    x[..., :p] = 0
    px = torch.zeros_like(noise)
    px[..., :p] = prompt
    t, ts = torch.tensor(0.0), torch.linspace(0, 1, steps + 1)
    for i in range(1, steps + 1):
        dt = ts[i] - ts[i - 1]
        x = x + dt * velocity(x, px, t)
        t = t + dt
        x[..., :p] = 0
    return x[..., p:]


def test_cfg_rate_zero_is_the_conditional_path_alone():
    model = tiny_s2mel()
    mu, prompt, style, noise = _inputs(model)
    est = model.cfm.estimator
    with torch.no_grad():
        got = flow_matching.sample(est, mu, prompt, style, steps=3, cfg_rate=0.0, noise=noise)
        want = _euler(est, mu, prompt, style, noise, 3, lambda x, px, t: est(x, px, t.reshape(1), style, mu))
    assert got.shape == (1, MELS, 9)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_cfg_combines_conditional_and_null_branches():
    model = tiny_s2mel()
    mu, prompt, style, noise = _inputs(model)
    est = model.cfm.estimator

    def guided(x, px, t):
        vc = est(x, px, t.reshape(1), style, mu)
        vu = est(x, torch.zeros_like(px), t.reshape(1), torch.zeros_like(style), torch.zeros_like(mu))
        return 1.4 * vc - 0.4 * vu

    with torch.no_grad():
        got = flow_matching.sample(est, mu, prompt, style, steps=4, cfg_rate=0.4, noise=noise)
        want = _euler(est, mu, prompt, style, noise, 4, guided)
        plain = flow_matching.sample(est, mu, prompt, style, steps=4, cfg_rate=0.0, noise=noise)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(got, plain, atol=1e-4)


def test_noise_generator_and_progress():
    model = tiny_s2mel()
    mu, prompt, style, _ = _inputs(model)
    est = model.cfm.estimator
    calls = []
    a = flow_matching.sample(est, mu, prompt, style, steps=3, generator=torch.Generator().manual_seed(7),
                             progress=lambda i, n: calls.append((i, n)))
    b = model.sample(mu[:, :4], mu[:, 4:], prompt, style, steps=3, generator=torch.Generator().manual_seed(7))
    c = model.sample(mu[:, :4], mu[:, 4:], prompt, style, steps=3, generator=torch.Generator().manual_seed(8))
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert torch.equal(a, b) and not torch.equal(a, c)

    class Stop(Exception):
        pass

    def interrupt(i, n):
        calls.append(i)
        if i == 2:
            raise Stop

    calls.clear()
    with pytest.raises(Stop):
        flow_matching.sample(est, mu, prompt, style, steps=25, progress=interrupt)
    assert calls == [1, 2]


@pytest.mark.parametrize("kwargs, match", [
    ({"steps": 0}, "steps"), ({"steps": -3}, "steps"), ({"steps": 2.0}, "steps"),
    ({"cfg_rate": float("nan")}, "cfg_rate"), ({"cfg_rate": float("inf")}, "cfg_rate"),
    ({"cfg_rate": None}, "cfg_rate"), ({"noise": torch.randn(1, MELS, 5)}, "noise"),
])
def test_sampler_rejects_bad_parameters(kwargs, match):
    model = tiny_s2mel()
    mu, prompt, style, _ = _inputs(model)
    with pytest.raises(ValueError, match=match):
        flow_matching.sample(model.cfm.estimator, mu, prompt, style, **kwargs)


def test_sampler_rejects_bad_tensors():
    model = tiny_s2mel()
    mu, prompt, style, _ = _inputs(model)
    est = model.cfm.estimator
    with pytest.raises(ValueError, match="no target frames"):
        flow_matching.sample(est, mu[:, :4], prompt, style)
    with pytest.raises(ValueError, match="mel bins"):
        flow_matching.sample(est, mu, prompt[:, :40], style)
    bad = mu.clone()
    bad[0, 2, 1] = float("nan")
    with pytest.raises(ValueError, match="mu contains NaN"):
        flow_matching.sample(est, bad, prompt, style)
    with pytest.raises(ValueError, match="reference mel"):
        model.sample(mu[:, :4], mu[:, 4:], prompt[..., :3], style)


# ---------------------------------------------------------------- S2Mel steps

def test_content_features_and_official_target_length():
    model = tiny_s2mel()
    code_emb, latent = torch.randn(1, 21, GPT_LAYER_SIZES[-1]), torch.randn(1, 21, GPT_LAYER_SIZES[0])
    with torch.no_grad():
        content = model.content_features(code_emb, latent)
        torch.testing.assert_close(content, code_emb + model.gpt_layer(latent))
        assert model.target_condition(content).shape == (1, Timing().frames_for_codes(21), 8)  # 36
        assert model.target_condition(content, 1234).shape == (1, 1234, 8)


def test_content_features_reject_bad_inputs():
    model = tiny_s2mel()
    with pytest.raises(ValueError, match="empty"):
        model.content_features(torch.randn(1, 0, 1024), torch.randn(1, 0, 1280))
    with pytest.raises(ValueError, match="covers 20 codes but there are 21"):
        model.content_features(torch.randn(1, 21, 1024), torch.randn(1, 20, 1280))
    with pytest.raises(ValueError, match="1280"):
        model.content_features(torch.randn(1, 21, 1024), torch.randn(1, 21, 1024))
    with pytest.raises(ValueError):
        model.target_condition(torch.randn(1, 0, 1024))


# ---------------------------------------------------------------- loader

def _official_file(model: S2Mel) -> dict:
    """The module's weights in the official s2mel.pth layout: weight norm split into g/v, `module.`
    prefixes, the unused / deterministic entries present, an extra top-level optimizer entry."""
    def split_wn(sd, names):
        out = {}
        for k, v in sd.items():
            if any(k == n + ".weight" for n in names):
                dims = tuple(range(1, v.dim()))
                out[k + "_g"] = v.norm(dim=dims, keepdim=True)
                out[k + "_v"] = v * 2.0  # g·v/|v| is scale invariant in v
            else:
                out[k] = v.clone()
        return out

    cfm = model.cfm.state_dict()
    wn = [k[: -len(".weight")] for k in cfm if ".wavenet." in k and k.endswith(".weight")]
    wn.append("estimator.final_layer.linear")
    cfm = split_wn(cfm, wn)
    hidden = model.cfm.estimator.cond_projection.out_features
    cfm.update({"estimator.input_pos": torch.arange(16384), "estimator.t_embedder.freqs": torch.ones(128),
                "estimator.t_embedder2.freqs": torch.ones(128),
                "estimator.x_embedder.weight_g": torch.ones(hidden, 1),
                "estimator.x_embedder.weight_v": torch.ones(hidden, MELS),
                "estimator.x_embedder.bias": torch.ones(hidden),
                "estimator.cond_embedder.weight": torch.ones(1024, hidden),
                "estimator.content_mask_embedder.weight": torch.ones(1, hidden)})
    lr = dict(model.length_regulator.state_dict(), **{"embedding.weight": torch.ones(2048, 8),
                                                      "mask_token": torch.ones(1, 8)})
    return {"net": {"cfm": {"module." + k: v for k, v in cfm.items()}, "length_regulator": lr,
                    "gpt_layer": model.gpt_layer.state_dict()},
            "optimizer": {"state": {}}}


def test_load_s2mel_roundtrip_and_strictness(tmp_path):
    model = tiny_s2mel(seed=5)
    cfg = tiny_s2mel_config()
    path = tmp_path / "s2mel.pth"
    torch.save(_official_file(model), path)
    loaded = load_s2mel(path, cfg, "cpu")
    mu, prompt, style, noise = _inputs(model)
    with torch.no_grad():
        torch.testing.assert_close(loaded.sample(mu[:, :4], mu[:, 4:], prompt, style, steps=2, noise=noise),
                                   model.sample(mu[:, :4], mu[:, 4:], prompt, style, steps=2, noise=noise),
                                   rtol=1e-5, atol=1e-5)
    from indextts2_core.download import convert_to_safetensors  # nested levels joined with "/"

    with torch.no_grad():
        x = torch.randn(1, 3, 1024)
        copy = load_s2mel(convert_to_safetensors(path), cfg, "cpu")
        torch.testing.assert_close(copy.length_regulator(x, 5), model.length_regulator(x, 5))
    broken = _official_file(model)
    del broken["net"]["cfm"]["module.estimator.conv2.bias"]
    broken["net"]["length_regulator"]["model.12.weight"] = torch.zeros(8, 8, 3)
    torch.save(broken, path)
    with pytest.raises(CheckpointError, match="missing: estimator.conv2.bias"):
        load_s2mel(path, cfg, "cpu")
    del broken["net"]["cfm"]
    torch.save(broken, path)
    with pytest.raises(CheckpointError, match="no entry 'cfm'"):
        load_s2mel(path, cfg, "cpu")


def test_skip_lists_hold_only_unused_or_recomputed_entries():
    import json

    from conftest import MANIFESTS, need

    manifest = json.loads(need(MANIFESTS / "s2mel.pth.json").read_text())
    unused = {k.split(".", 2)[-1] for k in manifest["unused_parameters_by_trace"]}  # drop "models.<part>."
    for part, skip in (("cfm", CFM_SKIP), ("length_regulator", LENGTH_REGULATOR_SKIP)):
        for entry in manifest["tensors"][part]:
            if skip.matches(entry["key"]):
                assert entry["key"] in unused or "buffer" in str(entry["used_in_v2_inference"]), entry
