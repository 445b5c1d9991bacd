"""Stage `emotion`: the emo_vector path of the official pipeline (spec §5.2).

Inputs: the 8 weights and their α, the speaker's CAMPPlus `style` (stage campplus) and the speaker
audio's own emotion vector `emovec_base_vecpath` (stage gpt_cond). feat1/feat2 are read through the
same loader the pipeline uses; emo_num comes from the kit's config.yaml.
"""

from __future__ import annotations

import random

import torch

from indextts2_core.config import IndexTTS2Config
from indextts2_core.emotion import EmotionMatrices, normalize_webui, scale_vector, vector_emovec


def run(ctx) -> dict[str, torch.Tensor]:
    cfg = IndexTTS2Config.from_yaml(ctx.checkpoint("config.yaml"))
    matrices = EmotionMatrices.load(ctx.checkpoint(cfg.spk_matrix), ctx.checkpoint(cfg.emo_matrix), cfg.emo_num)
    weights = ctx.input("emo_vector").tolist()
    alpha = ctx.input("emo_alpha_vector").item()

    scaled = scale_vector(weights, alpha)
    biases = ctx.params.get("emo_bias_webui")
    webui = normalize_webui(weights, biases) if biases is not None else normalize_webui(weights)
    use_random = bool(ctx.params.get("use_random", False))
    rng = random.Random(ctx.params.get("seed")) if use_random else None
    indices = matrices.select_rows(ctx.input("style"), use_random=use_random, rng=rng)
    mix = matrices.mix(scaled, indices)
    final = vector_emovec(mix, scaled, ctx.input("emovec_base_vecpath"))
    return {
        "emo_vector_scaled": torch.tensor(scaled, dtype=torch.float64),
        "normalize_emo_vec_webui": torch.tensor(webui, dtype=torch.float64),
        "weight_vector": torch.tensor(scaled, dtype=torch.float32),
        "random_index": torch.tensor(indices, dtype=torch.int64),
        "emo_matrix_rows": matrices.rows(indices),
        "emovec_mat": mix,
        "emovec_final": final,
    }
