"""Stage campplus: the CAMPPlus speaker style of the mean-normalised fbank."""

from __future__ import annotations

import torch

from indextts2_core.speaker.campplus import load_campplus


def run(ctx) -> dict[str, torch.Tensor]:
    model = load_campplus(ctx.checkpoint("campplus_cn_common.bin"))
    return {"style": model(ctx.input("campplus_fbank").unsqueeze(0))}
