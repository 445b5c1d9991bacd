"""S2M model (`s2mel.pth`): the three sub-models of `state["net"]` and their loader, spec §6, §1.4.

`S2Mel` holds `cfm` (whose `.estimator` is the DiT), `length_regulator` and `gpt_layer`, named
exactly like the sub-dicts of the file, and offers the steps the pipeline chains:

    content = s2mel.content_features(code_emb, latent)          # S_inf = vq2emb(codes) + gpt_layer(latent)
    prompt_cond = s2mel.length_regulator(S_ref, ref_mel.shape[-1])
    cond = s2mel.length_regulator(content, frames)               # frames = mel_frames_for_content(T) or any count
    mel = s2mel.sample(prompt_cond, cond, ref_mel, style, ...)   # [1, 80, frames]

Shape legend:
    B  batch (1)
    T  semantic codes
    F  target mel frames;  P  prompt mel frames
    G  GPT latent width (1280, hard-coded in the official gpt_layer)
    Ci content width (1024 = codec hidden = length-regulator input)
    C  length-regulator channels (= DiT content_dim)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..checkpoints import SkipList, load_strict, read_checkpoint, select, strip_prefix
from ..config import S2MelConfig
from ..timing import mel_frames_for_content
from . import flow_matching
from .dit import DiT
from .length_regulator import LengthRegulator

log = logging.getLogger(__name__)

# official MyModel hard-codes gpt_layer as Linear(1280,256) -> Linear(256,128) -> Linear(128,1024),
# independent of gpt.model_dim (spec §1.2, §6.1)
GPT_LAYER_SIZES = (1280, 256, 128, 1024)

CFM_SKIP = SkipList(
    "s2mel.pth[net][cfm]",
    (r"estimator\.x_embedder\.(weight_g|weight_v|weight|bias)",
     r"estimator\.cond_embedder\.weight",
     r"estimator\.content_mask_embedder\.weight",
     r"estimator\.input_pos",
     r"estimator\.t_embedder2?\.freqs"),
    "x_embedder, cond_embedder (discrete content) and content_mask_embedder are never run by v2 "
    "inference; input_pos and the timestep freqs are deterministic tables recomputed in forward",
)
GPT_LAYER_SKIP_25 = SkipList(
    "s2mel.pth[net] (2.5)",
    (r"gpt_layer",),
    "IndexTTS-2.5 has no GPT latent: upstream builds the S2M model without gpt_layer and never loads "
    "the sub-dict the released file still carries (spec 2.5 §1.6)",
)
LENGTH_REGULATOR_SKIP = SkipList(
    "s2mel.pth[net][length_regulator]",
    (r"embedding\.weight", r"mask_token"),
    "discrete-code embedding and mask token: v2 feeds continuous features (is_discrete false)",
)


class CFM(nn.Module):
    """Container matching the `cfm` sub-dict (`estimator.*`); the sampler is flow_matching.sample."""

    def __init__(self, cfg: S2MelConfig):
        super().__init__()
        self.estimator = DiT(cfg)


def gpt_layer() -> nn.Sequential:
    a, b, c, d = GPT_LAYER_SIZES
    return nn.Sequential(nn.Linear(a, b), nn.Linear(b, c), nn.Linear(c, d))  # no activations (official)


class S2Mel(nn.Module):
    """Semantic-to-mel: content features -> length regulation -> flow-matching mel.

    Not responsible for the codec lookup (semantic/codec.py provides `vq2emb`) nor for the prompt
    mel / style extraction (audio front end, CAMPPlus).
    """

    def __init__(self, cfg: S2MelConfig, with_gpt_layer: bool = True):
        super().__init__()
        self.cfm = CFM(cfg)
        self.length_regulator = LengthRegulator(cfg.length_regulator)
        # IndexTTS-2.5 builds no gpt_layer: its content is the codec's decoded features alone
        self.gpt_layer = gpt_layer() if with_gpt_layer else None
        self.mel_bins = cfg.dit.in_channels

    def content_features(self, code_emb: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """S_inf = code_emb + gpt_layer(latent): code_emb [B, T, Ci], latent [B, T, G] -> [B, T, Ci]
        (IndexTTS-2 only; 2.5 content is `EnhancedCodec.decode(codes)` as it is)."""
        if self.gpt_layer is None:
            raise ValueError("S2Mel: this model has no gpt_layer (IndexTTS-2.5 uses the codec's features directly)")
        g_in, g_out = GPT_LAYER_SIZES[0], GPT_LAYER_SIZES[-1]
        if code_emb.dim() != 3 or code_emb.shape[-1] != g_out:
            raise ValueError(f"S2Mel: code embeddings must be [B, T, {g_out}], got {list(code_emb.shape)}")
        if latent.dim() != 3 or latent.shape[-1] != g_in:
            raise ValueError(f"S2Mel: GPT latent must be [B, T, {g_in}], got {list(latent.shape)}")
        if code_emb.shape[1] == 0:
            raise ValueError("S2Mel: no semantic codes (empty code sequence)")
        if code_emb.shape[:2] != latent.shape[:2]:
            raise ValueError(f"S2Mel: GPT latent covers {latent.shape[1]} codes but there are "
                             f"{code_emb.shape[1]} code embeddings (batch {latent.shape[0]} vs {code_emb.shape[0]})")
        return code_emb + self.gpt_layer(latent)

    def target_condition(self, content: torch.Tensor, frames: int | None = None) -> torch.Tensor:
        """Length-regulated content [B, frames, C]; frames defaults to the official floor(1.72·T)."""
        if content.dim() != 3 or content.shape[1] == 0:
            raise ValueError(f"S2Mel: content features must be [B, T, C] with T > 0, got {list(content.shape)}")
        if frames is None:
            frames = mel_frames_for_content(content.shape[1])
        return self.length_regulator(content, frames)

    def sample(self, prompt_cond: torch.Tensor, cond: torch.Tensor, ref_mel: torch.Tensor, style: torch.Tensor,
               steps: int = flow_matching.DEFAULT_STEPS, cfg_rate: float = flow_matching.DEFAULT_CFG_RATE,
               noise: torch.Tensor | None = None, generator: torch.Generator | None = None,
               progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """mu = [prompt_cond; cond] -> mel [B, M, F] with F = cond frames exactly.

        prompt_cond [B, P, C] must have one frame per ref_mel [B, M, P] frame."""
        mu = self._mu(prompt_cond, cond, ref_mel)
        return flow_matching.sample(self.cfm.estimator, mu, ref_mel, style, steps=steps, cfg_rate=cfg_rate,
                                    noise=noise, generator=generator, progress=progress)

    def sample_batch(self, prompt_conds, conds, ref_mels, styles, steps: int = flow_matching.DEFAULT_STEPS,
                     cfg_rate: float = flow_matching.DEFAULT_CFG_RATE, noises=None, generators=None,
                     progress: Callable[[int, int], None] | None = None) -> list[torch.Tensor]:
        """`sample` for several segments at once (lists of the same arguments, batch 1 each; each
        segment its own prompt, length, noise and generator): one DiT batch of 2·n rows per step.
        Segment i's mel [1, M, F_i] equals `sample` of its arguments alone to float rounding."""
        if not len(prompt_conds) == len(conds) == len(ref_mels):
            raise ValueError("S2Mel: a batch needs one prompt condition, target condition and reference mel each")
        mus = [self._mu(pc, c, rm) for pc, c, rm in zip(prompt_conds, conds, ref_mels)]
        return flow_matching.sample_batch(self.cfm.estimator, mus, ref_mels, styles, steps=steps, cfg_rate=cfg_rate,
                                          noises=noises, generators=generators, progress=progress)

    @staticmethod
    def _mu(prompt_cond: torch.Tensor, cond: torch.Tensor, ref_mel: torch.Tensor) -> torch.Tensor:
        if prompt_cond.dim() != 3 or cond.dim() != 3 or prompt_cond.shape[0::2] != cond.shape[0::2]:
            raise ValueError(f"S2Mel: prompt condition {list(prompt_cond.shape)} and target condition "
                             f"{list(cond.shape)} must both be [B, frames, C]")
        if ref_mel.dim() != 3 or ref_mel.shape[-1] != prompt_cond.shape[1]:
            raise ValueError(f"S2Mel: reference mel {list(ref_mel.shape)} must have as many frames as the prompt "
                             f"condition ({prompt_cond.shape[1]})")
        return torch.cat([prompt_cond, cond], dim=1)


def load_s2mel(path: str | Path, cfg, device: str | torch.device = "cpu",
               dtype: torch.dtype = torch.float32) -> S2Mel:
    """Build on meta, load each sub-dict of `state["net"]` strictly, move to device/dtype.

    `cfg` is an IndexTTS2Config, an IndexTTS25Config (no gpt_layer: the file's `net.gpt_layer` is
    skipped by name, `GPT_LAYER_SKIP_25`) or a bare S2MelConfig (IndexTTS-2 layout). The official
    pipeline runs S2M in float32; other dtypes are for experiments.
    """
    with_gpt_layer = getattr(cfg, "version", "2") != "2.5"  # a bare S2MelConfig: IndexTTS-2
    s2cfg = cfg if isinstance(cfg, S2MelConfig) else cfg.s2mel
    ckpt = read_checkpoint(path)
    net = select(ckpt, "net", source=str(path))
    with torch.device("meta"):
        model = S2Mel(s2cfg, with_gpt_layer=with_gpt_layer)
    skips = {"cfm": CFM_SKIP, "length_regulator": LENGTH_REGULATOR_SKIP}
    if with_gpt_layer:
        skips["gpt_layer"] = None
    for name, skip in skips.items():
        sd = strip_prefix(select(net, name, source=f"{path} [net]"), "module.")  # DDP prefix, if any
        load_strict(getattr(model, name), sd, f"{path} [net][{name}]", skip)
    extra = sorted(set(net) - set(skips))
    if extra:
        why = GPT_LAYER_SKIP_25.reason if not with_gpt_layer else "sub-models not used by inference"
        log.debug("%s: ignoring %s (%s)", path, extra, why)
    return model.to(device=device, dtype=dtype).eval()
