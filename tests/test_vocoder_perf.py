"""BigVGAN on the GPU path (issue 18 item 3): the polyphase anti-aliased activation equals the
reference up -> snake -> down, its compiled (fused) form equals it too, the receptive field bound
holds, chunked vocoding equals the whole (seams within tolerance) and half precision stays within
a stated tolerance of float32."""

from __future__ import annotations

import copy

import pytest
import torch

from e2e_fixtures import e2e_kit  # noqa: F401  (fixture)
from indextts2_core.vocoder.activations import anti_aliased_snake, make_activation
from indextts2_core.vocoder.bigvgan import vocode_chunked
from test_bigvgan import tiny_bigvgan
from test_gpt_static import _compile_works

pytestmark = pytest.mark.usefixtures("one_thread")

# the official 22 kHz 256x kernel structure (channels shrunk): the receptive field depends on it only
OFFICIAL_SHAPE = dict(upsample_rates=(4, 4, 2, 2, 2, 2), upsample_kernel_sizes=(8, 8, 4, 4, 4, 4),
                      upsample_initial_channel=64, resblock_kernel_sizes=(3, 7, 11),
                      resblock_dilation_sizes=((1, 3, 5),) * 3)
SEAM_ATOL = 1e-5  # chunked vs whole (float32): measured ~6e-7 on the kit BigVGAN and here
# half-precision BigVGAN vs float32 on the kit vocoder, relative to the waveform's rms
# (measured: bf16 rms 6.0%, max 24%; fp16 rms 0.74%, max 3.1%)
HALF_TOL = {torch.bfloat16: (0.10, 0.40), torch.float16: (0.015, 0.06)}


@pytest.fixture(scope="module")
def vocoder():
    return tiny_bigvgan(3, **OFFICIAL_SHAPE)


@pytest.mark.parametrize("kind", ["snakebeta", "snake"])
def test_polyphase_activation_equals_the_reference(kind):
    torch.manual_seed(0)
    act = make_activation(kind, 5, True)
    with torch.no_grad():
        act.act.alpha.normal_(0, 0.5)
        if kind == "snakebeta":
            act.act.beta.normal_(0, 0.5)
        for t in [1, 2, 3, 5, 6, 7, 12, 41]:
            x = 3 * torch.randn(2, 5, t)
            alpha, beta = act.act.params()
            got = anti_aliased_snake(x, alpha, beta, act.upsample.filter, act.downsample.lowpass.filter)
            torch.testing.assert_close(got, act(x), rtol=1e-5, atol=2e-6)


def test_fused_activations_equal_the_reference(vocoder):
    reason = _compile_works()
    if reason:
        pytest.skip(reason)
    mel = torch.randn(1, 80, 24, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = vocoder(mel)
        try:
            got = vocoder.fuse_activations(True)(mel)
            assert all(m.fused for m in vocoder.modules() if hasattr(m, "fused"))
        finally:
            vocoder.fuse_activations(False)
        assert torch.equal(vocoder(mel), ref)  # back on the reference path
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_receptive_field_bound_holds(vocoder):
    """A change of one mel frame reaches no sample farther than `receptive_field_frames` frames."""
    bound = vocoder.receptive_field_frames()
    frames, at, hop = 110, 55, vocoder.hop_length
    mel = torch.randn(1, 80, frames, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        base = vocoder(mel)
        mel[..., at] += 4.0
        changed = ((vocoder(mel) - base)[0, 0] != 0).nonzero().flatten()
    reach_left, reach_right = at - changed.min().item() / hop, (changed.max().item() + 1) / hop - (at + 1)
    assert max(reach_left, reach_right) <= bound
    assert max(reach_left, reach_right) > bound / 2  # a bound, but not a loose one (measured ~29 of 44)


@pytest.mark.parametrize("chunk", [17, 40, 64])
def test_chunked_vocoding_equals_the_whole(vocoder, chunk):
    mel = torch.randn(1, 80, 130, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        whole = vocoder(mel)
        got = vocode_chunked(vocoder, mel, chunk)
    assert got.shape == whole.shape
    torch.testing.assert_close(got, whole, rtol=0, atol=SEAM_ATOL)


def test_too_little_context_shows_at_the_seams(vocoder):
    """What the receptive field is for: 4 frames of context leave audible seams."""
    mel = torch.randn(1, 80, 130, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        whole = vocoder(mel)
        err = (vocode_chunked(vocoder, mel, 40, context_frames=4) - whole).abs()
        full = (vocode_chunked(vocoder, mel, 40) - whole).abs()
    assert err.max() > 0.01 * whole.std() and err.max() > 100 * full.max()
    hop = vocoder.hop_length
    seam = err[0, 0].view(-1, hop).amax(dim=1)  # per frame
    assert seam.argmax().item() in {39, 40, 79, 80, 119, 120}  # the worst frame sits at a seam


def test_chunked_vocoding_arguments(vocoder):
    mel = torch.randn(1, 80, 30)
    with torch.no_grad():
        assert torch.equal(vocode_chunked(vocoder, mel, 64), vocoder(mel))  # shorter than a chunk: whole
    with pytest.raises(ValueError, match="chunk_frames"):
        vocode_chunked(vocoder, mel, 0)
    with pytest.raises(ValueError, match="context_frames"):
        vocode_chunked(vocoder, mel, 8, context_frames=-1)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_vocoder_within_tolerance(e2e_kit, dtype):  # noqa: F811
    from indextts2_core.vocoder.bigvgan import load_bigvgan

    ref_model = load_bigvgan(e2e_kit / "checkpoints" / "hf_cache" / "bigvgan")
    mel = torch.randn(1, 80, 40, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = ref_model(mel)
        try:
            got = copy.deepcopy(ref_model).to(dtype)(mel)
        except RuntimeError as e:
            pytest.skip(f"{dtype} BigVGAN cannot run on this CPU: {e}")
    assert got.dtype == dtype
    err, scale = (got.float() - ref).abs(), ref.pow(2).mean().sqrt()
    rms_tol, max_tol = HALF_TOL[dtype]
    assert err.pow(2).mean().sqrt() / scale < rms_tol and err.max() / scale < max_tol
