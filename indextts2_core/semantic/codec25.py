"""EnhancedCodec of IndexTTS-2.5 (`codec.pth`), decode path only (spec 2.5 §6).

2.5 inference calls one method of the codec: `decode(codes)`, which turns the GPT's 25 Hz codes
into 50 Hz features in the space of the normalised w2v-BERT layer-17 features (the S2M content):

    codes [B, T] -> codebook rows (raw, 8-dim) -> out_project (k1 conv, weight norm folded)  [B, H, T]
      -> decoder (Vocos backbone + Linear)                                                 [B, T, H]
      -> nearest x2 upsample -> up (Conv1d k3 p1)                                          [B, 2T, H]

The encoder path stored in the file (`down`, `encoder`, `in_project`: quantizing features into
codes) is never run by 2.5 inference and is declared in `SKIP`; entries of `codec.pth` beside
`"model"` (training state) are declared in `FILE_SKIP`.

Shapes: B batch, T codes (25 Hz), H hidden_size (1024), D vocos_dim (384), K codebook_dim (8).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints import CheckpointError, SkipList, load_strict, read_checkpoint, select, strip_prefix
from ..config25 import EnhancedCodecConfig, IndexTTS25Config
from .codec import VocosBackbone

log = logging.getLogger(__name__)

UPSAMPLE = 2  # decode's nearest upsampling; fixed upstream (codes at 25 Hz -> features at 50 Hz)

SKIP = SkipList(
    "codec.pth[model]",
    (r"down\..*", r"encoder\..*", r"quantizer\.quantizers\.\d+\.in_project\..*"),
    "the encoder path (strided `down` conv, Vocos encoder, VQ `in_project`) turns features into codes; "
    "2.5 inference only decodes the GPT's codes (spec 2.5 §1.5, §6.3)",
)
FILE_SKIP = SkipList(
    "codec.pth (top level)",
    (r"(?!model$).*",),
    "training state saved beside the weights (optimizer moments, schedulers, counters; about twice the "
    "weights' size in the released file); inference reads only 'model' (spec 2.5 §1.5)",
)


class CodeEmbedder(nn.Module):
    """Decode side of one factorised VQ stage: codebook lookup (raw rows) + out_project (k1 conv).
    Keys `codebook.weight`, `out_project.weight/bias` (weight norm folded at load)."""

    def __init__(self, hidden: int, codebook_size: int, codebook_dim: int):
        super().__init__()
        self.codebook = nn.Embedding(codebook_size, codebook_dim)
        self.out_project = nn.Conv1d(codebook_dim, hidden, 1)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, H, T]
        return self.out_project(self.codebook(codes).transpose(1, 2))


class QuantizerStack(nn.Module):
    """Key level `quantizer.quantizers.<i>`; decode of one code stream uses stage 0 only."""

    def __init__(self, cfg: EnhancedCodecConfig):
        super().__init__()
        self.quantizers = nn.ModuleList(CodeEmbedder(cfg.hidden_size, cfg.codebook_size, cfg.codebook_dim)
                                        for _ in range(cfg.num_quantizers))


class EnhancedCodec(nn.Module):
    """Decoder half of the 2.5 semantic codec. Not responsible for producing codes (the GPT does)."""

    def __init__(self, cfg: EnhancedCodecConfig):
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden_size
        self.quantizer = QuantizerStack(cfg)
        self.decoder = nn.Sequential(
            VocosBackbone(h, cfg.vocos_dim, cfg.vocos_intermediate_dim, cfg.vocos_num_layers),
            nn.Linear(cfg.vocos_dim, h),
        )
        self.up = nn.Conv1d(h, h, 3, 1, 1)

    def check_codes(self, codes) -> torch.Tensor:
        if not isinstance(codes, torch.Tensor) or codes.dtype.is_floating_point or codes.dtype == torch.bool:
            raise ValueError("codec: codes must be an integer tensor")
        if codes.dim() == 1:
            codes = codes.unsqueeze(0)
        if codes.dim() != 2 or codes.numel() == 0:
            raise ValueError(f"codec: codes must be [B, T] with T > 0, got shape {list(codes.shape)}")
        n = self.cfg.codebook_size
        if int(codes.min()) < 0 or int(codes.max()) >= n:  # e.g. the start token would index past the table
            raise ValueError(f"codec: codes must lie in [0, {n}), got [{int(codes.min())}, {int(codes.max())}]")
        return codes.long().to(self.up.weight.device)

    def vq2emb(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, T] -> [B, H, T] (stage 0 of the quantizer)."""
        return self.quantizer.quantizers[0](self.check_codes(codes))

    def decode_steps(self, codes: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every intermediate of `decode`: vq2emb [B, H, T], decoder_out [B, T, H],
        upsampled [B, H, 2T] (input of `up`), features [B, 2T, H]."""
        emb = self.vq2emb(codes)
        dec = self.decoder(emb)
        upsampled = F.interpolate(dec.transpose(1, 2), scale_factor=UPSAMPLE, mode="nearest")
        return {"vq2emb": emb, "decoder_out": dec, "upsampled": upsampled,
                "features": self.up(upsampled).transpose(1, 2)}

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """25 Hz codes [B, T] -> 50 Hz S2M content features [B, 2T, H] (float32, as upstream)."""
        return self.decode_steps(codes)["features"]


def _codec_config(cfg: EnhancedCodecConfig | IndexTTS25Config) -> EnhancedCodecConfig:
    return cfg.semantic_codec if isinstance(cfg, IndexTTS25Config) else cfg


def load_codec25(path: str | Path, cfg: EnhancedCodecConfig | IndexTTS25Config, device="cpu",
                 dtype: torch.dtype = torch.float32) -> EnhancedCodec:
    """Strictly load `codec.pth` (`{"model": state_dict, ...}`, weights_only) into the decode path."""
    ckpt = read_checkpoint(path)
    extra = sorted(k for k in ckpt if k != "model")
    unknown = [k for k in extra if not FILE_SKIP.matches(k)]
    if unknown:  # cannot happen with FILE_SKIP's pattern; kept so a narrowed list stays strict
        raise CheckpointError(f"{path}: unexpected top-level entries {unknown[:5]}")
    if extra:
        log.debug("%s: skipped top-level entries %s (%s)", path, extra, FILE_SKIP.name)
    sd = strip_prefix(select(ckpt, "model", source=str(path)), "module.")
    with torch.device("meta"):
        model = EnhancedCodec(_codec_config(cfg))
    load_strict(model, sd, f"codec ({path})", skip=SKIP)
    log.info("2.5 codec loaded from %s (codebook %d x %d)", path, model.cfg.codebook_size, model.cfg.codebook_dim)
    return model.to(device=device, dtype=dtype).eval()
