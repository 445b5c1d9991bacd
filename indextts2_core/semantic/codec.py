"""MaskGCT semantic codec (RepCodec-style): Vocos-backbone encoder + one factorised VQ.

IndexTTS2 uses only the quantiser side: `quantize` turns normalised w2v-BERT features into codes
and their (un-normalised) codebook embeddings projected back to the feature width (the prompt's
`S_ref`), and `vq2emb` embeds GPT-generated codes the same way. The decoder half stored in the
file is never run (spec §8.2); it is declared in `SKIP`.

Shapes:
  B batch, T frames (50 Hz), H hidden_size (1024), D vocos_dim (384), I vocos_intermediate_dim,
  K codebook_dim (8), N codebook_size (8192)
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints import SkipList, load_strict, read_checkpoint
from ..config import SemanticCodecConfig

log = logging.getLogger(__name__)

# RepCodec defaults that config.yaml does not spell out (spec §8.2 / manifest notes)
NUM_QUANTIZERS = 1
VOCOS_KERNEL = 7
LN_EPS = 1e-6

SKIP = SkipList(
    "semantic_codec",
    (r"decoder\..*",),
    "the RepCodec decoder half (features re-synthesised from codes) is stored in the file for the "
    "official strict loader but never run by v2 inference, which only quantizes and embeds codes",
)


class ConvNeXtBlock(nn.Module):
    """Vocos ConvNeXt block: depthwise conv, LayerNorm, pointwise MLP, layer scale, residual."""

    def __init__(self, dim: int, intermediate_dim: int):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, VOCOS_KERNEL, padding=VOCOS_KERNEL // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(torch.empty(dim))

    def forward(self, x):  # [B, D, T] -> [B, D, T]
        y = self.dwconv(x).transpose(1, 2)  # [B, T, D]
        y = self.pwconv2(F.gelu(self.pwconv1(self.norm(y))))  # exact (erf) GELU
        return x + (self.gamma * y).transpose(1, 2)


class VocosBackbone(nn.Module):
    """Conv1d embed (H -> D, k7) -> LN -> ConvNeXt blocks -> LN; no down-sampling."""

    def __init__(self, input_channels: int, dim: int, intermediate_dim: int, num_layers: int):
        super().__init__()
        self.embed = nn.Conv1d(input_channels, dim, VOCOS_KERNEL, padding=VOCOS_KERNEL // 2)
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.convnext = nn.ModuleList(ConvNeXtBlock(dim, intermediate_dim) for _ in range(num_layers))
        self.final_layer_norm = nn.LayerNorm(dim, eps=LN_EPS)

    def forward(self, x):  # [B, H, T] -> [B, T, D]
        x = self.embed(x)
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        for block in self.convnext:
            x = block(x)
        return self.final_layer_norm(x.transpose(1, 2))


class FactorizedVQ(nn.Module):
    """Project to K dims, pick the codebook row of highest cosine similarity, project back.

    `in_project` / `out_project` are weight-normed in the file; `load_strict` folds them into plain
    convolution weights. The looked-up rows are the raw (un-normalised) codebook entries.
    """

    def __init__(self, input_dim: int, codebook_size: int, codebook_dim: int):
        super().__init__()
        self.in_project = nn.Conv1d(input_dim, codebook_dim, 1)
        self.out_project = nn.Conv1d(codebook_dim, input_dim, 1)
        self.codebook = nn.Embedding(codebook_size, codebook_dim)

    def nearest(self, z_e):  # [B, K, T] -> codes [B, T]
        b, k, t = z_e.shape
        e = F.normalize(z_e.transpose(1, 2).reshape(b * t, k))
        c = F.normalize(self.codebook.weight)
        # squared distance of unit vectors (= 2 - 2 cos), the factorised-VQ form, so near-ties round alike
        dist = e.pow(2).sum(1, keepdim=True) - 2 * e @ c.t() + c.pow(2).sum(1, keepdim=True).t()
        return dist.neg().argmax(dim=1).view(b, t)

    def embed(self, codes):  # [B, T] -> [B, H, T]
        return self.out_project(self.codebook(codes).transpose(1, 2))

    def forward(self, x):  # [B, H, T] -> (codes [B, T], emb [B, H, T])
        codes = self.nearest(self.in_project(x))
        return codes, self.embed(codes)


class ResidualVQ(nn.Module):
    """Container matching the file's `quantizer.quantizers.<i>` nesting (one stage: nothing to sum)."""

    def __init__(self, input_dim: int, codebook_size: int, codebook_dim: int, num_quantizers: int):
        super().__init__()
        self.quantizers = nn.ModuleList(
            FactorizedVQ(input_dim, codebook_size, codebook_dim) for _ in range(num_quantizers))


class SemanticCodec(nn.Module):
    """Quantiser half of the MaskGCT semantic codec. Not responsible for feature extraction
    (w2v_bert.py) nor for decoding codes back to features (never needed by IndexTTS2)."""

    def __init__(self, cfg: SemanticCodecConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = nn.Sequential(
            VocosBackbone(cfg.hidden_size, cfg.vocos_dim, cfg.vocos_intermediate_dim, cfg.vocos_num_layers),
            nn.Linear(cfg.vocos_dim, cfg.hidden_size),
        )
        self.quantizer = ResidualVQ(cfg.hidden_size, cfg.codebook_size, cfg.codebook_dim, NUM_QUANTIZERS)

    def quantize(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, T, H] normalised w2v-BERT features -> (codes [B, T] int64, emb [B, T, H])."""
        x = self._check_features(x)
        h = self.encoder(x.transpose(1, 2)).transpose(1, 2)  # [B, H, T]
        codes, emb = self.quantizer.quantizers[0](h)  # the shipped codec has a single VQ stage
        return codes, emb.transpose(1, 2)

    def vq2emb(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, T] -> [B, T, H]. A plain codebook lookup per batch row (spec quirk Q12: the
        official call only works for batch 1; this is identical there and correct for any batch)."""
        if not isinstance(codes, torch.Tensor) or codes.dtype.is_floating_point or codes.dtype == torch.bool:
            raise ValueError("semantic codec: codes must be an integer tensor")
        if codes.dim() != 2 or codes.numel() == 0:
            raise ValueError(f"semantic codec: codes must be [B, T] with T > 0, got shape {list(codes.shape)}")
        n = self.cfg.codebook_size
        if int(codes.min()) < 0 or int(codes.max()) >= n:
            raise ValueError(f"semantic codec: codes must lie in [0, {n}), got range "
                             f"[{int(codes.min())}, {int(codes.max())}]")
        return self.quantizer.quantizers[0].embed(codes.to(self._device()).long()).transpose(1, 2)

    def _device(self) -> torch.device:
        return self.quantizer.quantizers[0].codebook.weight.device

    def _check_features(self, x) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point:
            raise ValueError("semantic codec: features must be a floating-point tensor")
        if x.dim() != 3 or x.shape[-1] != self.cfg.hidden_size or x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"semantic codec: features must be [B, T, {self.cfg.hidden_size}] with B, T > 0, "
                             f"got shape {list(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("semantic codec: features contain NaN or Inf")
        w = self.quantizer.quantizers[0].codebook.weight
        return x.to(device=w.device, dtype=w.dtype)


def load_semantic_codec(path: str | Path, cfg: SemanticCodecConfig, device="cpu",
                        dtype: torch.dtype = torch.float32) -> SemanticCodec:
    """Strictly load `semantic_codec/model.safetensors` (official: hf_cache/semantic_codec_model.safetensors)."""
    with torch.device("meta"):
        model = SemanticCodec(cfg)
    load_strict(model, read_checkpoint(path), f"semantic codec ({path})", skip=SKIP)
    log.info("semantic codec loaded from %s (codebook %d x %d)", path, cfg.codebook_size, cfg.codebook_dim)
    return model.to(device=device, dtype=dtype).eval()
