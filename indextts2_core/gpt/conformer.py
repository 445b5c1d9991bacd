"""Conformer encoder of the GPT conditioning branches (WeNet-style, as IndexTTS2 v2 uses it; spec §4.2).

conv2d2 subsampling (time / 2) -> x·√d + sinusoidal relative positions -> N pre-norm blocks
(rel-pos self-attention *without* relative shift, convolution module, one FFN, final norm) ->
`after_norm`. Attribute names are the checkpoint keys (`embed.conv.0`, `encoders.{i}.self_attn...`).

Shape legend:
    B batch, T input frames, F input features (1024), T' = (T - 1) // 2 subsampled frames,
    C = d = output_size, H heads, Dk = C / H.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConditionModuleConfig


def sinusoid_table(length: int, dim: int, device, dtype) -> torch.Tensor:
    """PE[p, 2i] = sin(p·10000^(-2i/d)), PE[p, 2i+1] = cos(...): the checkpoint's `embed.pos_enc.pe`
    rows 0..length-1, computed in float32 the way the official constructor does."""
    position = torch.arange(length, dtype=torch.float32, device=device).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=device) * -(math.log(10000.0) / dim))
    pe = torch.zeros(length, dim, dtype=torch.float32, device=device)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe.unsqueeze(0).to(dtype)  # [1, length, C]


class Conv2dSubsampling2(nn.Module):
    """[B, T, F] -> [B, T', C]: Conv2d(1->C, k3, s2) + ReLU over (time, feature), then a Linear over
    the channel-major flattened (C, F') axis."""

    def __init__(self, idim: int, odim: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, odim, 3, 2), nn.ReLU())
        self.out = nn.Sequential(nn.Linear(odim * ((idim - 1) // 2), odim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv(x.unsqueeze(1))  # [B, C, T', F']
        b, c, t, f = x.shape
        x = self.out(x.transpose(1, 2).reshape(b, t, c * f))
        return x, mask[:, :, 2::2]  # frame j of the output is centred on input frame 2j+1


class RelPositionAttention(nn.Module):
    """Multi-head attention with the Transformer-XL position term, as WeNet computes it when the
    relative shift is disabled: scores = ((q+u)·kᵀ + (q+v)·pᵀ) / √Dk."""

    def __init__(self, n_head: int, n_feat: int):
        super().__init__()
        self.h = n_head
        self.d_k = n_feat // n_head
        self.linear_q = nn.Linear(n_feat, n_feat)
        self.linear_k = nn.Linear(n_feat, n_feat)
        self.linear_v = nn.Linear(n_feat, n_feat)
        self.linear_out = nn.Linear(n_feat, n_feat)
        self.linear_pos = nn.Linear(n_feat, n_feat, bias=False)
        self.pos_bias_u = nn.Parameter(torch.empty(self.h, self.d_k))
        self.pos_bias_v = nn.Parameter(torch.empty(self.h, self.d_k))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, pos_emb: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.linear_q(x).view(b, t, self.h, self.d_k)  # [B, T', H, Dk]
        k = self.linear_k(x).view(b, t, self.h, self.d_k).transpose(1, 2)  # [B, H, T', Dk]
        v = self.linear_v(x).view(b, t, self.h, self.d_k).transpose(1, 2)
        p = self.linear_pos(pos_emb).view(pos_emb.size(0), -1, self.h, self.d_k).transpose(1, 2)  # [1, H, T', Dk]
        q_u = (q + self.pos_bias_u).transpose(1, 2)
        q_v = (q + self.pos_bias_v).transpose(1, 2)
        scores = (q_u @ k.transpose(-2, -1) + q_v @ p.transpose(-2, -1)) / math.sqrt(self.d_k)  # [B, H, T', T']
        keep = mask.unsqueeze(1)  # [B, 1, 1, T'] over keys
        scores = scores.masked_fill(~keep, float("-inf"))
        attn = torch.softmax(scores, dim=-1).masked_fill(~keep, 0.0)  # fully masked rows -> 0, not NaN
        out = (attn @ v).transpose(1, 2).reshape(b, t, self.h * self.d_k)
        return self.linear_out(out)


class ConvolutionModule(nn.Module):
    """Pointwise conv C->2C, GLU, depthwise conv (k15), LayerNorm over channels, SiLU, pointwise C->C."""

    def __init__(self, channels: int, kernel_size: int = 15):
        super().__init__()
        self.pointwise_conv1 = nn.Conv1d(channels, 2 * channels, 1)
        self.depthwise_conv = nn.Conv1d(channels, channels, kernel_size, padding=(kernel_size - 1) // 2,
                                        groups=channels)
        self.norm = nn.LayerNorm(channels, eps=1e-5)
        self.pointwise_conv2 = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor, mask_pad: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2).masked_fill(~mask_pad, 0.0)  # [B, C, T']; padded frames must not leak
        x = F.glu(self.pointwise_conv1(x), dim=1)
        x = self.depthwise_conv(x)
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        x = self.pointwise_conv2(F.silu(x))
        return x.masked_fill(~mask_pad, 0.0).transpose(1, 2)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w_1 = nn.Linear(dim, hidden)
        self.w_2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_2(F.silu(self.w_1(x)))


class ConformerBlock(nn.Module):
    """Pre-norm: x += MHA(LN(x)); x += Conv(LN(x)); x += FFN(LN(x)) (no macaron, scale 1); LN_final."""

    def __init__(self, dim: int, heads: int, linear_units: int):
        super().__init__()
        self.self_attn = RelPositionAttention(heads, dim)
        self.feed_forward = FeedForward(dim, linear_units)
        self.conv_module = ConvolutionModule(dim)
        self.norm_ff = nn.LayerNorm(dim, eps=1e-5)
        self.norm_mha = nn.LayerNorm(dim, eps=1e-5)
        self.norm_conv = nn.LayerNorm(dim, eps=1e-5)
        self.norm_final = nn.LayerNorm(dim, eps=1e-5)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, pos_emb: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.norm_mha(x), mask, pos_emb)
        x = x + self.conv_module(self.norm_conv(x), mask)
        x = x + self.feed_forward(self.norm_ff(x))
        return self.norm_final(x)


class ConformerEncoder(nn.Module):
    """[B, T, F] features + lengths [B] -> ([B, T', C], mask [B, 1, T'])."""

    def __init__(self, input_size: int, cfg: ConditionModuleConfig):
        super().__init__()
        # the two refusals of the official constructor (WeNet asserts the first; its sinusoid
        # table, built at construction, cannot be filled for an odd width)
        if cfg.output_size % cfg.attention_heads:
            raise ValueError(f"conformer output_size {cfg.output_size} is not divisible by "
                             f"attention_heads {cfg.attention_heads}")
        if cfg.output_size % 2:
            raise ValueError(f"conformer output_size {cfg.output_size} must be even (sinusoidal position table)")
        self.output_size = cfg.output_size
        self.embed = Conv2dSubsampling2(input_size, cfg.output_size)
        self.encoders = nn.ModuleList(
            ConformerBlock(cfg.output_size, cfg.attention_heads, cfg.linear_units) for _ in range(cfg.num_blocks))
        self.after_norm = nn.LayerNorm(cfg.output_size, eps=1e-5)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 3 or x.size(1) < 3:
            raise ValueError(f"conformer input must be [B, T>=3, F], got {list(x.shape)}")
        frames = torch.arange(x.size(1), device=x.device)
        mask = (frames.unsqueeze(0) < lengths.to(x.device).unsqueeze(1)).unsqueeze(1)  # [B, 1, T]
        x, mask = self.embed(x, mask)
        pos_emb = sinusoid_table(x.size(1), self.output_size, x.device, x.dtype)
        x = x * math.sqrt(self.output_size)
        for block in self.encoders:
            x = block(x, mask, pos_emb)
        return self.after_norm(x), mask
