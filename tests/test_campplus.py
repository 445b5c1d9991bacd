"""CAMPPlus: a tiny random configuration for behaviour, the full-size file layout for loading."""

import pytest
import torch

from indextts2_core.checkpoints import CheckpointError
from indextts2_core.speaker.campplus import CAMPPlus, load_campplus, segment_mean

TINY = dict(feat_dim=16, embedding_size=8, growth_rate=4, bn_size=2, init_channels=8, head_channels=4,
            blocks=((2, 1), (2, 2)))


def calibrate_bn(model, feat_dim, seed=0):
    """Running statistics measured on random input (cumulative average), as training would leave them:
    arbitrary statistics make the ReLUs die out or the activations blow up in a random network."""
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        model(fbank(4, 120, feat_dim, seed=seed))
    return model.eval()


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return calibrate_bn(CAMPPlus(**TINY), 16)


def fbank(b, t, f=16, seed=1):
    return torch.randn(b, t, f, generator=torch.Generator().manual_seed(seed))


def test_segment_mean_matches_window_loop():
    x = torch.randn(2, 3, 250)
    out = segment_mean(x, 100)
    for start in range(0, 250, 100):
        window = x[..., start:start + 100]  # the last window has 50 real frames
        torch.testing.assert_close(out[..., start:start + 100], window.mean(-1, keepdim=True).expand_as(window))
    short = torch.randn(1, 2, 7)
    torch.testing.assert_close(segment_mean(short, 100), short.mean(-1, keepdim=True).expand_as(short))


def test_shapes_and_batch_independence(tiny):
    x = fbank(3, 230)  # > 2 x 100 frames: several CAM segments after the stride-2 TDNN
    with torch.inference_mode():
        out = tiny(x)
        assert out.shape == (3, 8)
        for i in range(3):
            torch.testing.assert_close(tiny(x[i:i + 1]), out[i:i + 1], atol=1e-5, rtol=1e-5)
    assert torch.isfinite(out).all()


def test_output_depends_on_late_frames(tiny):
    x = fbank(1, 420)
    y = x.clone()
    y[:, 300:] += 1.0  # only the last CAM segments see this directly
    with torch.inference_mode():
        assert (tiny(x) - tiny(y)).abs().max() > 1e-3


def test_eval_uses_running_stats(tiny):
    bn = tiny.xvector.dense.nonlinear.batchnorm
    assert bn.weight is None and bn.bias is None  # affine-free final BatchNorm
    x = fbank(2, 50)
    with torch.inference_mode():
        a = tiny(x)
        saved = bn.running_mean.clone()
        bn.running_mean.add_(1.0)
        b = tiny(x)
        bn.running_mean.copy_(saved)
    torch.testing.assert_close(a - b, torch.ones_like(a) / bn.running_var.add(bn.eps).sqrt())


@pytest.mark.parametrize("x, match", [
    (torch.randn(50, 16), r"\[B, T, 16\]"),
    (torch.randn(1, 50, 15), r"\[B, T, 16\]"),
    (torch.randn(1, 2, 16), "at least 3"),
    (torch.full((1, 20, 16), float("nan")), "NaN"),
    (torch.ones(1, 20, 16, dtype=torch.int32), "floating"),
])
def test_bad_inputs(tiny, x, match):
    with pytest.raises(ValueError, match=match):
        tiny(x)


@pytest.fixture(scope="module")
def full_file(tmp_path_factory):
    torch.manual_seed(0)
    model = CAMPPlus()
    g = torch.Generator().manual_seed(2)
    sd = {k: (torch.rand(v.shape, generator=g) + 0.5 if v.is_floating_point() else v + 3)
          for k, v in model.state_dict().items()}  # distinct values, incl. BN buffers
    path = tmp_path_factory.mktemp("campplus") / "campplus_cn_common.bin"
    torch.save(sd, path)
    return path, sd


def test_full_size_load_is_strict_and_complete(full_file, tmp_path):
    path, sd = full_file
    assert len(sd) == 937  # spec B.5: parameters + BatchNorm buffers incl. num_batches_tracked
    model = load_campplus(path)
    assert not model.training
    loaded = model.state_dict()
    assert sorted(loaded) == sorted(sd)
    assert all(torch.equal(loaded[k], v) for k, v in sd.items())
    bad = dict(sd)
    bad.pop("xvector.block3.tdnnd16.nonlinear2.batchnorm.running_mean")
    bad["xvector.extra.weight"] = torch.zeros(1)
    torch.save(bad, tmp_path / "bad.bin")
    with pytest.raises(CheckpointError, match="(?s)missing: xvector.block3.tdnnd16.*unexpected: xvector.extra"):
        load_campplus(tmp_path / "bad.bin")
