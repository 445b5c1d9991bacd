"""BigVGAN v2 unit tests with tiny random configs: filters, anti-aliased activations, exact
output lengths, clamp/tanh, int16 conversion, input validation and the checkpoint loader."""

from __future__ import annotations

import json

import pytest
import torch

from indextts2_core.checkpoints import CheckpointError, read_checkpoint
from indextts2_core.config import BigVGANConfig
from indextts2_core.vocoder.activations import (Activation1d, DownSample1d, SnakeBeta, UpSample1d,
                                                kaiser_sinc_filter)
from indextts2_core.config import BigVGANConfig
from indextts2_core.vocoder.bigvgan import BigVGAN, load_bigvgan, to_int16

# spec §7 (values of the 12-tap Kaiser sinc the official code builds)
SPEC_FILTER = [0.0020290, 0.0093895, -0.0255435, -0.0576574, 0.1285726, 0.4432098,
               0.4432098, 0.1285726, -0.0576574, -0.0255435, 0.0093895, 0.0020290]


def tiny_bigvgan_config(**kw) -> BigVGANConfig:
    """Two ×16 stages (hop 256) with one small AMP block each (cheap even for a million samples)."""
    base = dict(num_mels=80, upsample_rates=(16, 16), upsample_kernel_sizes=(32, 32), upsample_initial_channel=4,
                resblock="1", resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1,),),
                activation="snakebeta", snake_logscale=True, use_tanh_at_final=False, use_bias_at_final=False)
    base.update(kw)
    return BigVGANConfig(**base)


def tiny_bigvgan(seed: int = 0, **kw) -> BigVGAN:
    torch.manual_seed(seed)
    model = BigVGAN(tiny_bigvgan_config(**kw)).eval()
    with torch.no_grad():  # non-trivial Snake parameters
        for name, p in model.named_parameters():
            if name.endswith((".alpha", ".beta")):
                p.normal_(0.0, 0.3)
    return model


def test_filter_matches_spec_and_kit_buffers():
    f = kaiser_sinc_filter(0.25, 0.3, 12)
    assert f.shape == (1, 1, 12)
    torch.testing.assert_close(f.flatten(), torch.tensor(SPEC_FILTER), rtol=0, atol=1e-6)
    from conftest import PUBLIC_KIT

    path = PUBLIC_KIT / "checkpoints" / "hf_cache" / "bigvgan" / "bigvgan_generator.pt"
    if path.is_file():
        sd = read_checkpoint(path)["generator"]
        for key in ("activation_post.upsample.filter", "resblocks.0.activations.3.downsample.lowpass.filter"):
            torch.testing.assert_close(sd[key], f, rtol=0, atol=1e-7)


def test_anti_aliased_resampling_lengths_and_dc(one_thread):
    up, down = UpSample1d(), DownSample1d()
    for n in range(1, 40):
        x = torch.randn(2, 3, n)
        assert up(x).shape == (2, 3, 2 * n)
        assert down(x).shape == (2, 3, (n + 1) // 2)
    # a constant passes unchanged (unit-gain filter, replicate padding)
    const = torch.full((1, 2, 25), 0.7)
    torch.testing.assert_close(up(const), torch.full((1, 2, 50), 0.7))
    torch.testing.assert_close(down(const), torch.full((1, 2, 13), 0.7))


def test_snakebeta_log_scale_formula():
    act = SnakeBeta(3, logscale=True)
    with torch.no_grad():
        act.alpha.copy_(torch.tensor([0.0, 0.5, -1.0]))
        act.beta.copy_(torch.tensor([0.2, -0.3, 0.0]))
    x = torch.randn(2, 3, 7)
    a, b = act.alpha.exp()[None, :, None], act.beta.exp()[None, :, None]
    torch.testing.assert_close(act(x), x + torch.sin(a * x) ** 2 / (b + 1e-9))
    wrapped = Activation1d(act)
    assert wrapped(x).shape == x.shape


@pytest.mark.parametrize("frames", [1, 2, 3, 5, 17, 64])
def test_output_is_exactly_frames_times_hop(frames):
    model = tiny_bigvgan()
    with torch.no_grad():
        wav = model(torch.randn(1, 80, frames))
    assert wav.shape == (1, 1, 256 * frames) and model.hop_length == 256
    assert wav.abs().max() <= 1.0


def test_clamp_or_tanh_at_final():
    for use_tanh in (False, True):
        model = tiny_bigvgan(seed=2, use_tanh_at_final=use_tanh)
        seen = {}
        model.conv_post.register_forward_hook(lambda m, inp, out: seen.update(pre=out))
        mel = torch.randn(1, 80, 4)
        with torch.no_grad():
            w = model.conv_post.weight
            w.sub_(w.mean(-1, keepdim=True))  # zero-mean taps remove the Snake DC offset
            model(mel)
            w.mul_(3.0 / seen["pre"].abs().max())  # peak at 3: part of the signal outside [-1, 1]
            wav = model(mel)
        pre = seen["pre"]
        assert (pre.abs() > 1).any() and (pre.abs() < 0.5).any()
        torch.testing.assert_close(wav, torch.tanh(pre) if use_tanh else pre.clamp(-1, 1))


def test_to_int16_is_the_official_truncation():
    x = torch.tensor([0.0, 1.9 / 32767, -1.9 / 32767, 0.5, 1.0, 1.5, -1.0, -3.0])
    got = to_int16(x)
    assert got.dtype == torch.int16
    assert got.tolist() == [0, 1, -1, 16383, 32767, 32767, -32767, -32767]


def test_bad_mels_are_rejected():
    model = tiny_bigvgan()
    with pytest.raises(ValueError, match=r"\[B, 80, F\]"):
        model(torch.randn(1, 79, 5))
    with pytest.raises(ValueError, match="empty"):
        model(torch.randn(1, 80, 0))
    bad = torch.randn(1, 80, 5)
    bad[0, 3, 2] = float("inf")
    with pytest.raises(ValueError, match="NaN or Inf"):
        model(bad)


def _save_official(model: BigVGAN, folder, raw_cfg: dict) -> None:
    """NVIDIA layout: {"generator": sd} with every conv weight split into weight_g / weight_v."""
    sd = {}
    for k, v in model.state_dict().items():
        if k.endswith(".weight") and v.dim() == 3:
            dims = tuple(range(1, v.dim()))
            sd[k + "_g"] = v.norm(dim=dims, keepdim=True)
            sd[k + "_v"] = 3.0 * v
        else:
            sd[k] = v.clone()
    folder.mkdir(exist_ok=True)
    torch.save({"generator": sd}, folder / "bigvgan_generator.pt")
    (folder / "config.json").write_text(json.dumps(raw_cfg))


def _raw(cfg: BigVGANConfig) -> dict:
    raw = {k: (list(map(list, v)) if k == "resblock_dilation_sizes" else v) for k, v in vars(cfg).items()}
    raw.update(num_gpus=0, learning_rate=1e-4)  # training keys are ignored
    return raw


def test_load_bigvgan_roundtrip_and_strictness(tmp_path):
    model = tiny_bigvgan(seed=4)
    raw = _raw(model.cfg)
    _save_official(model, tmp_path / "bigvgan", raw)
    loaded = load_bigvgan(tmp_path / "bigvgan", "cpu")
    assert BigVGANConfig.from_dict(raw) == model.cfg
    mel = torch.randn(1, 80, 6)
    with torch.no_grad():
        torch.testing.assert_close(loaded(mel), model(mel), rtol=1e-5, atol=1e-6)
    # the safetensors copy written by `download --convert-safetensors` is preferred and equivalent
    from indextts2_core.download import convert_to_safetensors

    convert_to_safetensors(tmp_path / "bigvgan" / "bigvgan_generator.pt")
    (tmp_path / "bigvgan" / "bigvgan_generator.pt").write_bytes(b"not read any more")
    with torch.no_grad():
        torch.testing.assert_close(load_bigvgan(tmp_path / "bigvgan", "cpu")(mel), model(mel), rtol=1e-5, atol=1e-6)
    (tmp_path / "bigvgan" / "bigvgan_generator.safetensors").unlink()
    _save_official(model, tmp_path / "bigvgan", raw)
    # a transposed-conv weight norm has g of shape [in, 1, 1]
    sd = torch.load(tmp_path / "bigvgan" / "bigvgan_generator.pt", weights_only=True)["generator"]
    assert sd["ups.0.0.weight_g"].shape == (4, 1, 1)
    del sd["activation_post.upsample.filter"]
    torch.save({"generator": sd}, tmp_path / "bigvgan" / "bigvgan_generator.pt")
    with pytest.raises(CheckpointError, match="missing: activation_post.upsample.filter"):
        load_bigvgan(tmp_path / "bigvgan", "cpu")
    torch.save(sd, tmp_path / "bigvgan" / "bigvgan_generator.pt")
    with pytest.raises(CheckpointError, match="no entry 'generator'"):
        load_bigvgan(tmp_path / "bigvgan", "cpu")


# ---- every config the official constructor builds (issue 13 item 1) ------------------------------
@pytest.mark.parametrize("c0,rates,kernels", [
    (100, (2, 2, 2), (4, 4, 4)),  # 100 -> 50, 25, 12 (floor division, not divisible by 8)
    (7, (2, 3), (4, 3)),  # odd width: 7 -> 3 -> 1; rate 3 with kernel 3 (k − u = 0)
    (9, (2, 2), (5, 3)),  # odd (k − u): each such stage adds one sample
])
def test_widths_and_lengths_of_configs_upstream_builds(c0, rates, kernels, one_thread):
    cfg = tiny_bigvgan_config(upsample_initial_channel=c0, upsample_rates=rates, upsample_kernel_sizes=kernels)
    model = tiny_bigvgan(upsample_initial_channel=c0, upsample_rates=rates, upsample_kernel_sizes=kernels)
    for i, up in enumerate(model.ups):
        assert (up[0].in_channels, up[0].out_channels) == (c0 // 2 ** i, c0 // 2 ** (i + 1))
    assert model.conv_post.in_channels == c0 // 2 ** len(rates)
    assert BigVGANConfig.from_dict(_raw(cfg)) == cfg  # the config loader accepts it too
    for frames in (1, 2, 5):
        with torch.no_grad():
            wav = model(torch.randn(1, 80, frames))
        assert wav.shape == (1, 1, model.output_samples(frames))
        n = frames
        for u, k in zip(rates, kernels):
            n = n * u + (k - u) % 2
        assert wav.shape[-1] == n


def test_resblock_2_is_built_and_loads(tmp_path, one_thread):
    model = tiny_bigvgan(seed=3, resblock="2", resblock_kernel_sizes=(3, 5), resblock_dilation_sizes=((1, 3), (1, 2)))
    keys = set(model.state_dict())
    assert "resblocks.0.convs.1.weight" in keys and "resblocks.0.activations.1.act.alpha" in keys
    assert not any(".convs1." in k or ".convs2." in k for k in keys)
    _save_official(model, tmp_path / "bigvgan", _raw(model.cfg))
    mel = torch.randn(1, 80, 3)
    with torch.no_grad():
        torch.testing.assert_close(load_bigvgan(tmp_path / "bigvgan")(mel), model(mel), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kw,needle", [
    (dict(upsample_rates=(16, 16), upsample_kernel_sizes=(8, 32)), "smaller than its rate"),
    (dict(resblock_kernel_sizes=(4,), resblock_dilation_sizes=((1,),)), "does not keep the length"),
    (dict(resblock_kernel_sizes=(3, 3), resblock_dilation_sizes=((1,),)), "fewer entries"),
    (dict(resblock="3"), "resblock"),
])
def test_only_configs_upstream_cannot_run_are_refused(kw, needle):
    with pytest.raises(ValueError, match=needle):
        BigVGAN(tiny_bigvgan_config(**kw))


def test_even_kernel_with_even_dilation_runs(one_thread):
    """k = 4 with dilation 2 keeps the length (d·(k−1) = 6), but AMPBlock1's dilation-1 partner does
    not; resblock 2 has no such partner and upstream runs it."""
    model = tiny_bigvgan(resblock="2", resblock_kernel_sizes=(4,), resblock_dilation_sizes=((2,),))
    with torch.no_grad():
        assert model(torch.randn(1, 80, 2)).shape == (1, 1, 512)
