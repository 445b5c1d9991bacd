"""Stage bigvgan: BigVGAN v2 on the reference mel and on the S2M output, plus int16 conversion."""

from __future__ import annotations

import torch

from indextts2_core.vocoder.bigvgan import load_bigvgan, to_int16


def run(ctx) -> dict[str, torch.Tensor]:
    model = load_bigvgan(ctx.checkpoint("bigvgan_generator.pt").parent, "cpu")
    if bool(ctx.params.get("use_tanh_at_final", False)) != model.cfg.use_tanh_at_final:
        raise ValueError("stage bigvgan: kit params and config.json disagree on use_tanh_at_final")
    wav_ref = model(ctx.input("bigvgan_mel"))
    wav_vc = model(ctx.input("vc_target"))
    # official output: squeeze the channel axis, int16, transposed to (samples, 1)
    return {"wav_from_ref_mel": wav_ref, "wav_from_vc_target": wav_vc,
            "wav_int16_from_vc_target": to_int16(wav_vc[:, 0]).T.contiguous()}
