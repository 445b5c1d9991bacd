"""Stage s2m_cfm: CFM Euler sampling with CFG on the stored initial noise, and the first DiT call."""

from __future__ import annotations

import torch

from indextts2_core.config import IndexTTS2Config
from indextts2_core.s2mel.flow_matching import cfg_batch
from indextts2_core.s2mel.model import load_s2mel


def run(ctx) -> dict[str, torch.Tensor]:
    cfg = IndexTTS2Config.from_yaml(ctx.checkpoint("config.yaml"))
    s2mel = load_s2mel(ctx.checkpoint("s2mel.pth"), cfg.s2mel, "cpu")
    mu, ref_mel, style, noise = (ctx.input(n) for n in ("cat_condition", "ref_mel", "style", "cfm_noise"))
    p = ref_mel.shape[-1]
    steps, cfg_rate = int(ctx.params["n_timesteps"]), float(ctx.params["inference_cfg_rate"])
    # the stored noise replaces torch.randn; the official start is randn * temperature
    temperature = float(ctx.params.get("temperature", 1.0))
    if temperature != 1.0:
        noise = noise * temperature

    mel = s2mel.sample(mu[:, :p], mu[:, p:], ref_mel, style, steps=steps, cfg_rate=cfg_rate, noise=noise)
    full = torch.cat([torch.zeros_like(ref_mel), mel], dim=-1)  # the prompt region stays zero

    # first guided call of the sampler, as the sampler builds it
    x0 = noise.clone()
    x0[:, :, :p] = 0
    prompt_x = torch.zeros_like(noise)
    prompt_x[:, :, :p] = ref_mel
    step0 = s2mel.cfm.estimator(*cfg_batch(x0, prompt_x, style, mu, torch.tensor(0.0)))
    return {"cfm_out_full": full, "vc_target": mel, "dit_step0_out": step0}
