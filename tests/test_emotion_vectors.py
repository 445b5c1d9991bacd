"""Emotion vectors: the kit's `emotion` stage, the real feat1/feat2 matrices, and bad input."""

import json
import math
import random

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import OFFICIAL, PUBLIC_KIT, need
from tools.conformance.kit import StageContext, load_stages
from indextts2_core.emotion import (
    EMOTIONS,
    EMOTIONS_ZH,
    WEBUI_BIASES,
    EmotionMatrices,
    blend_emovec,
    normalize_webui,
    scale_vector,
    validate_weights,
    vector_emovec,
)


def test_emotion_names():
    assert EMOTIONS == ("happy", "angry", "sad", "afraid", "disgusted", "melancholic", "surprised", "calm")
    assert EMOTIONS_ZH == ("高兴", "愤怒", "悲伤", "恐惧", "反感", "低落", "惊讶", "自然")


# ---- kit stage ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stage_outputs(tmp_path_factory):
    """Run the stage module with the upstream tensors (style, base emovec) taken from the kit's
    expected files, as if the campplus / gpt_cond stages had produced them."""
    from tools.conformance.stages import emotion

    kit = need(PUBLIC_KIT)
    stage = next(s for s in load_stages(kit) if s["id"] == "emotion")
    out = tmp_path_factory.mktemp("emotion_out")
    for entry in stage["inputs"]:
        if entry["file"].startswith("expected/"):
            t = load_file(str(kit / entry["file"]))[entry["name"]]
            save_file({entry["name"]: t}, str(out / entry["file"].split("/")[-1]))
    return stage, emotion.run(StageContext(kit, out, stage))


def test_stage_matches_kit(stage_outputs):
    stage, got = stage_outputs
    for o in stage["outputs"]:
        expected = load_file(str(PUBLIC_KIT / o["file"]))[o["name"]]
        t = got[o["name"]]
        assert list(t.shape) == o["shape"] and str(t.dtype) == f"torch.{o['dtype']}", o["name"]
        if o["tolerance"].get("exact"):
            assert torch.equal(t, expected), o["name"]
        else:
            tol = o["tolerance"]
            err = (t.double() - expected.double()).abs()
            assert (err <= tol["max_abs"] + tol["max_rel"] * expected.double().abs()).all(), (o["name"], err.max())


def test_stage_math_is_consistent(stage_outputs):
    _, got = stage_outputs
    w = got["weight_vector"]
    assert torch.allclose(got["emovec_mat"], (w[:, None] * got["emo_matrix_rows"]).sum(0, keepdim=True), atol=1e-6)


# ---- real feat1 / feat2 -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real(official_config):
    c = official_config
    return EmotionMatrices.load(need(OFFICIAL / c.spk_matrix), need(OFFICIAL / c.emo_matrix), c.emo_num,
                                model_dim=c.gpt.model_dim)


def test_real_matrices(real, official_config):
    n = sum(official_config.emo_num)
    assert real.spk_matrix.shape == (n, 192) and real.emo_matrix.shape == (n, official_config.gpt.model_dim)
    assert real.emo_num == tuple(official_config.emo_num) and len(real.emo_num) == len(EMOTIONS)


def test_real_selection_is_argmax_cosine(real):
    g = torch.Generator().manual_seed(3)
    style = torch.randn(1, 192, generator=g)
    picked = real.select_rows(style)
    start = 0
    for k, n in enumerate(real.emo_num):
        block = real.spk_matrix[start:start + n]
        cos = (block @ style[0]) / (block.norm(dim=1) * style.norm())
        assert picked[k] == int(cos.argmax())
        start += n


def test_real_selection_finds_own_row(real):
    start = sum(real.emo_num[:6])
    for j in range(real.emo_num[6]):  # a style equal to a "surprised" prototype picks that prototype
        assert real.select_rows(real.spk_matrix[start + j] * 3.0)[6] == j


def test_real_mix_and_final(real):
    style = torch.randn(1, 192, generator=torch.Generator().manual_seed(5))
    w = [0.2, 0.0, 0.0, 0.1, 0.0, 0.0, 0.3, 0.0]
    idx = real.select_rows(style)
    start = [sum(real.emo_num[:k]) for k in range(8)]
    manual = sum(w[k] * real.emo_matrix[start[k] + idx[k]] for k in range(8)).unsqueeze(0)
    assert torch.allclose(real.mix(w, idx), manual, atol=1e-6)
    spk = torch.randn(1, real.dim, generator=torch.Generator().manual_seed(6))
    final = real.emovec(w, style, spk)
    assert torch.allclose(final, manual + 0.4 * spk, atol=1e-5)


def test_random_rows_follow_python_rng(real):
    rows = real.select_rows(use_random=True, rng=random.Random(7))
    ref = random.Random(7)
    assert rows == [ref.randint(0, n - 1) for n in real.emo_num]
    assert all(0 <= r < n for r, n in zip(rows, real.emo_num))


def test_matrix_shape_errors(official_config):
    spk, emo = torch.randn(73, 192), torch.randn(73, 16)
    with pytest.raises(ValueError, match="rows but emo_num"):
        EmotionMatrices(spk, emo[:70], official_config.emo_num)
    with pytest.raises(ValueError, match="emo_num must list 8"):
        EmotionMatrices(spk, emo, (73,))
    with pytest.raises(ValueError, match="2-D"):
        EmotionMatrices(spk[0], emo, official_config.emo_num)
    m = EmotionMatrices(spk, emo, official_config.emo_num)
    with pytest.raises(ValueError, match="style must be"):
        m.select_rows(torch.randn(1, 80))
    with pytest.raises(ValueError, match="NaN"):
        m.select_rows(torch.full((1, 192), float("nan")))
    with pytest.raises(ValueError, match="outside its block"):
        m.rows([0, 0, 2, 0, 0, 0, 0, 0])  # 'sad' has 2 rows


def test_load_checks_model_dim(tmp_path, official_config):
    torch.save(torch.randn(73, 192), tmp_path / "feat1.pt")
    torch.save(torch.randn(73, 64), tmp_path / "feat2.pt")
    with pytest.raises(ValueError, match="model_dim 1280"):
        EmotionMatrices.load(tmp_path / "feat1.pt", tmp_path / "feat2.pt", official_config.emo_num, model_dim=1280)


# ---- weights, alpha, normalisation --------------------------------------------------------------

def test_scale_vector_truncates():
    w = [0.99999, 0.5, 0, 0, 0, 0, 0, 0.123456]
    assert scale_vector(w, 0.5) == [0.4999, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0617]  # 0.499995 → 0.4999 (not 0.5)
    assert scale_vector(w, 1.0) == [float(x) for x in w]  # no truncation at alpha 1
    assert scale_vector(w, 3.0) == [float(x) for x in w]  # clamped to 1 as upstream
    a = 0.6
    assert scale_vector([0.3, 0, 0.1, 0, 0, 0, 0.25, 0.15], a) == [int(x * a * 10000) / 10000
                                                                  for x in [0.3, 0, 0.1, 0, 0, 0, 0.25, 0.15]]


@pytest.mark.parametrize("weights, alpha", [
    ([0.2] + [0.0] * 7, 0.0),
    ([0.2] + [0.0] * 7, -1.0),  # clamped to 0
    ([0.00001] + [0.0] * 7, 0.5),  # truncated away
])
def test_alpha_that_leaves_nothing_gives_zeros_as_upstream(weights, alpha, caplog):
    """Official: w_i <- trunc(w_i * clamp(alpha) * 1e4) / 1e4, no check, so emovec = the speaker's own."""
    with caplog.at_level("WARNING"):
        assert scale_vector(weights, alpha) == [0.0] * 8
    assert "all zeros after scaling" in caplog.text


@pytest.mark.parametrize("weights, alpha, message", [
    ([0.1] * 7, 1.0, "needs 8 values"),
    ([0.1] * 9, 1.0, "needs 8 values"),
    ([0.1, float("nan"), 0, 0, 0, 0, 0, 0], 1.0, "'angry' is not finite"),
    ([0.1, 0, 0, 0, 0, float("inf"), 0, 0], 1.0, "'melancholic' is not finite"),
    ([0.1, 0, -0.2, 0, 0, 0, 0, 0], 1.0, "'sad' must be between 0 and 2"),
    ([0.1, "x", 0, 0, 0, 0, 0, 0], 1.0, "not a number"),
    ([0.0] * 8, 1.0, "all zeros"),
    ([0.2] + [0.0] * 7, float("nan"), "emo_alpha must be a finite number"),
    ("happy", 1.0, "sequence of 8 numbers"),
])
def test_bad_weights(weights, alpha, message):
    with pytest.raises(ValueError, match=message):
        scale_vector(weights, alpha)


def test_validate_accepts_tensors_and_zero_opt_in():
    assert validate_weights(torch.tensor([0.5, 0, 0, 0, 0, 0, 0, 0.5], dtype=torch.float64))[0] == 0.5
    assert validate_weights([0] * 8, allow_all_zero=True) == [0.0] * 8
    with pytest.raises(ValueError, match="1-D"):
        validate_weights(torch.zeros(2, 8))


def test_normalize_webui():
    w = [0.5, 0.4, 0.0, 0.0, 0.0, 0.0, 0.3, 0.2]
    biased = [x * b for x, b in zip(w, WEBUI_BIASES)]
    out = normalize_webui(w)
    assert math.isclose(sum(out), 0.8) and all(math.isclose(o / b, 0.8 / sum(biased)) for o, b in zip(out, biased) if b)
    small = [0.1, 0, 0, 0, 0, 0, 0, 0.1]
    assert normalize_webui(small) == [0.1 * WEBUI_BIASES[0], 0, 0, 0, 0, 0, 0, 0.1 * WEBUI_BIASES[7]]


def test_blend_emovec():
    b, e = torch.randn(1, 12), torch.randn(1, 12)
    assert torch.equal(blend_emovec(b, e, 0.0), b)
    assert torch.allclose(blend_emovec(b, e, 1.0), e, atol=1e-6)
    assert torch.allclose(blend_emovec(b, e, 1.5), b + 1.5 * (e - b))  # not clamped in audio mode
    with pytest.raises(ValueError, match="differ in shape"):
        blend_emovec(b, torch.randn(1, 13), 0.5)
    with pytest.raises(ValueError, match="finite"):
        blend_emovec(b, e, float("inf"))


def test_vector_emovec_sum_above_one():
    mix, spk = torch.randn(1, 8), torch.randn(1, 8)
    w = [0.9, 0.6, 0, 0, 0, 0, 0, 0]  # Σw = 1.5: the speaker term gets weight −0.5 (Q10)
    assert torch.allclose(vector_emovec(mix, w, spk), mix - 0.5 * spk, atol=1e-6)
    with pytest.raises(ValueError, match="same D"):
        vector_emovec(mix, w, torch.randn(1, 9))


def test_kit_params_agree_with_config(public_kit):
    stage = next(s for s in json.loads((public_kit / "stages.json").read_text())["stages"] if s["id"] == "emotion")
    from indextts2_core.config import IndexTTS2Config

    cfg = IndexTTS2Config.from_yaml(public_kit / "checkpoints" / "config.yaml")
    assert list(cfg.emo_num) == stage["params"]["emo_num"]
    assert list(WEBUI_BIASES) == stage["params"]["emo_bias_webui"]
