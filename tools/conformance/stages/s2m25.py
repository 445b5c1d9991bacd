"""Stage s2m25: 2.5 S2M: the length regulator on the raw prompt features and on the decoded codec
features, target length int(2T·1.72·duration_factor) for each factor (through the 2.5 timing), CFM
on the stored noise, and the first guided DiT call (spec 2.5 §7)."""

from __future__ import annotations

import torch

from indextts2_core.s2mel.flow_matching import cfg_batch
from indextts2_core.s2mel.model import load_s2mel

from . import _v25


def run(ctx) -> dict[str, torch.Tensor]:
    cfg = _v25.config(ctx)
    s2mel = load_s2mel(ctx.checkpoint("s2mel.pth"), cfg)
    p = ctx.params
    if p.get("f0") is not None:
        raise ValueError("f0 conditioning is not part of 2.5 inference")
    prompt_feat, ref_mel, style, content = (ctx.input(n) for n in ("s2m_prompt_feat", "ref_mel", "style", "S_infer"))
    steps, cfg_rate = int(p["n_timesteps"]), float(p["inference_cfg_rate"])
    temperature = float(p.get("temperature", 1.0))
    plen = ref_mel.shape[-1]
    prompt_cond = s2mel.length_regulator(prompt_feat, plen)
    codes = content.shape[1] // cfg.timing.content_per_code  # S_infer holds 2 frames per 25 Hz code
    out = {"prompt_condition": prompt_cond}
    for i, df in enumerate(p["duration_factors"]):
        frames = cfg.timing.frames_for_codes(codes, df)
        cond = s2mel.target_condition(content, frames)
        noise = ctx.input(f"cfm_noise_df{i}") * temperature  # the official start: randn * temperature
        mel = s2mel.sample(prompt_cond, cond, ref_mel, style, steps=steps, cfg_rate=cfg_rate, noise=noise)
        mu = torch.cat([prompt_cond, cond], dim=1)
        out.update({f"target_lengths_df{i}": torch.tensor([frames], dtype=torch.int64), f"cond_df{i}": cond,
                    f"cat_condition_df{i}": mu, f"vc_target_df{i}": mel,
                    f"cfm_out_full_df{i}": torch.cat([torch.zeros_like(ref_mel), mel], dim=-1)})
        if df == 1.0:
            x0 = noise.clone()
            x0[:, :, :plen] = 0
            prompt_x = torch.zeros_like(noise)
            prompt_x[:, :, :plen] = ref_mel
            out[f"dit_step0_out_df{i}"] = s2mel.cfm.estimator(*cfg_batch(x0, prompt_x, style, mu, torch.tensor(0.0)))
    return out
