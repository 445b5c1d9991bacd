"""Perceiver resampler: a fixed set of learned latents cross-attends to a variable-length context
(spec §4.3). The speaker branch turns the conformer output into 32 latents of the GPT width, the
emotion branch into one 1024-wide vector.

Attribute names are the checkpoint keys: `latents`, `proj_context`, `layers.{i}.0.to_q/to_kv/to_out`,
`layers.{i}.1.{0,2}` (feed-forward Linear / GEGLU / Linear), `norm.gamma`.

Shape legend:
    B batch, N latents, T context frames, Cc context width, D latent width (dim),
    H heads, Dh = 64 per head, I = H·Dh.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

DIM_HEAD = 64  # hard-coded in the official constructor


class GEGLU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, gate = x.chunk(2, dim=-1)
        return a * F.gelu(gate)  # exact erf GELU


def feed_forward(dim: int, mult: int) -> nn.Sequential:
    inner = int(dim * mult * 2 / 3)  # Python truncation, as the checkpoint widths show (1706, 1365)
    return nn.Sequential(nn.Linear(dim, inner * 2), GEGLU(), nn.Linear(inner, dim))


class RMSNorm(nn.Module):
    """L2-normalise over the last axis, times √D and a learned gain (no bias, no mean removal)."""

    def __init__(self, dim: int):
        super().__init__()
        self.scale = dim ** 0.5
        self.gamma = nn.Parameter(torch.empty(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1) * self.scale * self.gamma


class Attention(nn.Module):
    """Latents attend to [latents ; context] (queries see themselves too)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        inner = heads * DIM_HEAD
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        kv_in = torch.cat((x, context), dim=-2)  # [B, N+T, D]
        q = self.to_q(x)
        k, v = self.to_kv(kv_in).chunk(2, dim=-1)
        q, k, v = (t.reshape(b, t.size(1), self.heads, DIM_HEAD).transpose(1, 2) for t in (q, k, v))  # [B, H, *, Dh]
        sim = (q @ k.transpose(-2, -1)) * DIM_HEAD ** -0.5  # [B, H, N, N+T]
        sim = sim.masked_fill(~mask[:, None, None, :], -torch.finfo(sim.dtype).max)
        out = sim.softmax(dim=-1) @ v  # [B, H, N, Dh]
        return self.to_out(out.transpose(1, 2).reshape(b, n, self.heads * DIM_HEAD))


class PerceiverResampler(nn.Module):
    """context [B, T, Cc] + key mask [B, T] -> latents [B, N, D]."""

    def __init__(self, dim: int, dim_context: int, num_latents: int, heads: int, ff_mult: int, depth: int = 2):
        super().__init__()
        self.proj_context = nn.Linear(dim_context, dim) if dim_context != dim else nn.Identity()
        self.latents = nn.Parameter(torch.empty(num_latents, dim))
        self.layers = nn.ModuleList(
            nn.ModuleList([Attention(dim, heads), feed_forward(dim, ff_mult)]) for _ in range(depth))
        self.norm = RMSNorm(dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b = x.size(0)
        context = self.proj_context(x)
        lat = self.latents.unsqueeze(0).expand(b, -1, -1)
        if mask is None:
            mask = torch.ones(b, x.size(1), dtype=torch.bool, device=x.device)
        # the latents are keys too and are never masked
        mask = torch.cat((torch.ones(b, lat.size(1), dtype=torch.bool, device=x.device), mask.bool()), dim=1)
        for attn, ff in self.layers:
            lat = attn(lat, context, mask) + lat
            lat = ff(lat) + lat
        return self.norm(lat)
