"""Exact durations through the whole S2M -> BigVGAN chain (tiny random models): any requested
frame count F gives a mel of exactly F frames and exactly 256·F samples."""

from __future__ import annotations

import pytest
import torch

from indextts2_core.timing import Timing
from indextts2_core.vocoder.bigvgan import to_int16
from test_bigvgan import tiny_bigvgan
from test_s2mel import MELS, tiny_s2mel

CODES = 5
PROMPT = 7


@pytest.fixture(scope="module")
def chain():
    s2mel, vocoder = tiny_s2mel(seed=11), tiny_bigvgan(seed=12)
    g = torch.Generator().manual_seed(13)
    code_emb, latent = torch.randn(1, CODES, 1024, generator=g), torch.randn(1, CODES, 1280, generator=g)
    s_ref = torch.randn(1, 9, 1024, generator=g)
    ref_mel, style = torch.randn(1, MELS, PROMPT, generator=g), torch.randn(1, 6, generator=g)
    with torch.inference_mode():
        content = s2mel.content_features(code_emb, latent)
        prompt_cond = s2mel.length_regulator(s_ref, PROMPT)

    def run(frames):
        with torch.inference_mode():
            cond = s2mel.target_condition(content, frames)
            mel = s2mel.sample(prompt_cond, cond, ref_mel, style, steps=1, generator=torch.Generator().manual_seed(0))
            return mel, vocoder(mel)

    return run


@pytest.mark.parametrize("frames", [1, 2, 3, 4, 86, 257, 1000, 4000])
def test_requested_frames_are_exact(chain, frames):
    mel, wav = chain(frames)
    assert mel.shape == (1, MELS, frames)
    assert wav.shape == (1, 1, Timing().frames_to_samples(frames)) == (1, 1, 256 * frames)
    assert torch.isfinite(wav).all() and wav.abs().max() <= 1.0
    assert to_int16(wav[:, 0]).shape == (1, 256 * frames)


def test_default_length_is_the_official_rule(chain):
    mel, wav = chain(None)
    assert mel.shape[-1] == Timing().frames_for_codes(CODES) == 8
    assert wav.shape[-1] == 8 * 256
