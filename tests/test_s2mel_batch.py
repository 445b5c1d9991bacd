"""S2M for dubbing and the GPU path (issue 18 item 3): the CFG passes as one batch of 2B rows,
several segments of different prompt / target lengths as one batch (`sample_batch`) equal to one
by one, the WaveNet's per-row reflect padding, and a half-precision estimator within a stated
tolerance of float32."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from e2e_fixtures import e2e_kit  # noqa: F401  (fixture)
from indextts2_core.s2mel import flow_matching
from indextts2_core.s2mel.wavenet import reflect_index, reflect_pad
from test_s2mel import tiny_s2mel

pytestmark = pytest.mark.usefixtures("one_thread")

# batched vs one by one, float32, 25 Euler steps: measured <= 1e-6 on the kit S2M (max |mel| ~ 4)
BATCH_ATOL = 2e-5
# half-precision estimator vs float32 on the kit S2M, 25 steps, relative to the mel's std
# (measured: bf16 rms 1.2e-3 max 5.4e-3; fp16 rms 1.6e-4 max 6.2e-4)
HALF_TOL = {torch.bfloat16: (5e-3, 2e-2), torch.float16: (1e-3, 4e-3)}  # (rms, max abs) / std


@pytest.fixture(scope="module")
def kit_s2mel(e2e_kit):  # noqa: F811
    from indextts2_core.config import IndexTTS2Config
    from indextts2_core.s2mel.model import load_s2mel

    ck = e2e_kit / "checkpoints"
    return load_s2mel(ck / "s2mel.pth", IndexTTS2Config.from_yaml(ck / "config.yaml"))


def segments(model, sizes, seed=0):
    """(prompt_conds, conds, ref_mels, styles) for segments of (prompt, target) frame sizes."""
    g = torch.Generator().manual_seed(seed)
    c, m = model.cfm.estimator.content_dim, model.mel_bins
    return ([torch.randn(1, p, c, generator=g) for p, _ in sizes], [torch.randn(1, f, c, generator=g) for _, f in sizes],
            [torch.randn(1, m, p, generator=g) for p, _ in sizes], [torch.randn(1, 192, generator=g) for _ in sizes])


def test_cfg_runs_as_one_batch_of_two(kit_s2mel):
    """Conditional and null rows go through the DiT together: one call of 2B rows per step (B with
    guidance off)."""
    est = kit_s2mel.cfm.estimator
    rows = []
    hook = est.register_forward_pre_hook(lambda mod, args: rows.append(args[0].shape[0]))
    try:
        pc, c, rm, st = segments(kit_s2mel, [(20, 15)])
        kit_s2mel.sample(pc[0], c[0], rm[0], st[0], steps=3)
        kit_s2mel.sample(pc[0], c[0], rm[0], st[0], steps=3, cfg_rate=0.0)
        kit_s2mel.sample_batch(pc * 3, c * 3, rm * 3, st * 3, steps=2)
    finally:
        hook.remove()
    assert rows == [2, 2, 2, 1, 1, 1, 6, 6]


def test_sample_batch_equals_one_by_one_on_the_kit_s2m(kit_s2mel):
    sizes = [(60, 40), (45, 90), (60, 7), (33, 33)]  # different prompts and targets
    pcs, cs, rms, sts = segments(kit_s2mel, sizes)
    one = [kit_s2mel.sample(pc, c, rm, st, generator=torch.Generator().manual_seed(i))
           for i, (pc, c, rm, st) in enumerate(zip(pcs, cs, rms, sts))]
    steps = []
    got = kit_s2mel.sample_batch(pcs, cs, rms, sts, generators=[torch.Generator().manual_seed(i) for i in range(4)],
                                 progress=lambda i, n: steps.append(i))
    assert steps == list(range(1, 26))
    for (p, f), a, b in zip(sizes, one, got):
        assert b.shape == a.shape == (1, 80, f)
        torch.testing.assert_close(b, a, rtol=0, atol=BATCH_ATOL)
    # explicit noise takes the place of the draw, per segment
    noises = [torch.randn(1, 80, p + f, generator=torch.Generator().manual_seed(50 + i)) for i, (p, f) in enumerate(sizes)]
    one = [kit_s2mel.sample(pc, c, rm, st, steps=5, noise=n) for pc, c, rm, st, n in zip(pcs, cs, rms, sts, noises)]
    got = kit_s2mel.sample_batch(pcs, cs, rms, sts, steps=5, noises=noises)
    for a, b in zip(one, got):
        torch.testing.assert_close(b, a, rtol=0, atol=BATCH_ATOL)


def test_padded_rows_do_not_leak_into_a_segment():
    """A row's frames depend on its own frames only: changing the padding of a shorter row (or a
    longer neighbour) changes nothing before its length."""
    model = tiny_s2mel(3)
    est = model.cfm.estimator
    g = torch.Generator().manual_seed(1)
    b, t, lengths = 3, 23, torch.tensor([23, 17, 9])
    x, px = torch.randn(b, 80, t, generator=g), torch.randn(b, 80, t, generator=g)
    mu, style, tt = torch.randn(b, t, est.content_dim, generator=g), torch.randn(b, est.style_dim, generator=g), torch.rand(b)
    with torch.no_grad():
        full = est(x, px, tt, style, mu, lengths=lengths)
        x2 = x.clone()
        x2[1, :, 17:] = 5.0
        x2[2, :, 9:] = -3.0
        again = est(x2, px, tt, style, mu, lengths=lengths)
        for i, n in enumerate(lengths.tolist()):
            alone = est(x[i:i + 1, :, :n], px[i:i + 1, :, :n], tt[i:i + 1], style[i:i + 1], mu[i:i + 1, :n])
            torch.testing.assert_close(full[i:i + 1, :, :n], alone, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(again[i:i + 1, :, :n], alone, rtol=1e-5, atol=1e-5)
        assert torch.equal(est(x, px, tt, style, mu, lengths=torch.full((b,), t)), est(x, px, tt, style, mu))


@pytest.mark.parametrize("left,right", [(2, 2), (3, 2), (4, 4), (1, 0)])
def test_reflect_index_is_a_reflect_pad_per_row(left, right):
    x = torch.randn(3, 2, 12)
    lengths = torch.tensor([12, 7, right + left + 1])
    idx = reflect_index(lengths, 12, left, right)
    for i, n in enumerate(lengths.tolist()):
        got = x[i:i + 1].gather(2, idx[i][None, None].expand(1, 2, -1))[..., :n + left + right]
        assert torch.equal(got, F.pad(x[i:i + 1, :, :n], (left, right), mode="reflect"))
    with pytest.raises(ValueError, match="longer than the reflect pad"):
        reflect_index(torch.tensor([12, 2]), 12, 3, 3)
    assert torch.equal(reflect_pad(x, 0, 0), x)


def test_sample_batch_validation_names_the_segment(kit_s2mel):
    pcs, cs, rms, sts = segments(kit_s2mel, [(10, 5), (12, 6)])
    with pytest.raises(ValueError, match="segment 1: flow matching: style"):
        kit_s2mel.sample_batch(pcs, cs, rms, [sts[0], torch.randn(2, 192)], steps=2)
    with pytest.raises(ValueError, match="one prompt condition"):
        kit_s2mel.sample_batch(pcs, cs[:1], rms, sts, steps=2)
    assert flow_matching.sample_batch(kit_s2mel.cfm.estimator, [], [], [], steps=2) == []


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_estimator_within_tolerance(kit_s2mel, dtype):
    """Only the CFM estimator in half (length regulator and content stay float32, the Euler state
    float32): the mel of 25 steps stays within HALF_TOL of float32."""
    pcs, cs, rms, sts = segments(kit_s2mel, [(60, 80)], seed=4)
    noise = torch.randn(1, 80, 140, generator=torch.Generator().manual_seed(3))
    ref = kit_s2mel.sample(pcs[0], cs[0], rms[0], sts[0], noise=noise)
    half = copy.deepcopy(kit_s2mel)
    half.cfm.to(dtype)
    try:
        got = half.sample(pcs[0], cs[0], rms[0], sts[0], noise=noise)
    except RuntimeError as e:  # an op without a half CPU kernel in this torch build
        pytest.skip(f"{dtype} DiT cannot run on this CPU: {e}")
    assert got.dtype == torch.float32
    err, scale = (got - ref).abs(), ref.std()
    rms_tol, max_tol = HALF_TOL[dtype]
    assert err.pow(2).mean().sqrt() / scale < rms_tol and err.max() / scale < max_tol
    assert err.max() > 0  # it did run in half
