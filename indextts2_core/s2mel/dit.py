"""DiT velocity estimator of the S2M flow matching (`s2mel.pth["net"]["cfm"]`, key prefix
`estimator.`), spec §6.3.

v = DiT(x, prompt_x, t, style, mu): a non-causal transformer (gpt-fast-style blocks, RMSNorm
with adaptive scale/shift from the time embedding, interleaved RoPE, U-ViT long skips), then a
WaveNet final layer. Deterministic tables (RoPE angles, timestep frequencies) are computed in
`forward`; the checkpoint's `input_pos` / `*.freqs` copies are skipped at load (model.py).

Shape legend:
    B  batch (2 per CFG call: conditional, unconditional)
    T  frames (prompt + target)
    M  mel bins (`DiT.in_channels`, 80)
    D  transformer width (`DiT.hidden_dim`, 512); nh heads of hd = D / nh
    Cc content width (`DiT.content_dim`, 512 = length-regulator channels)
    S  style width (`style_encoder.dim`, 192)
    W  WaveNet width (`wavenet.hidden_dim`, 512)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import S2MelConfig
from .wavenet import WaveNet

ROPE_BASE = 10000.0  # gpt-fast default, used by the official DiT
TIME_FREQ_DIM = 256  # sinusoidal timestep embedding width (official TimestepEmbedder)
TIME_SCALE = 1000.0  # t in [0, 1] is scaled by 1000 before the sinusoid
NORM_EPS = 1e-5  # RMSNorm eps of the transformer
FINAL_NORM_EPS = 1e-6  # LayerNorm eps of the final layer


def ffn_width(dim: int) -> int:
    """gpt-fast's SwiGLU width: int(2·4·dim/3) rounded up to a multiple of 256 (512 -> 1536)."""
    n = int(2 * 4 * dim / 3)
    return n + (-n) % 256


def rope_angles(length: int, head_dim: int, device) -> torch.Tensor:
    """[T, hd/2] angles pos·base^(−2i/hd), fp32."""
    inv = 1.0 / (ROPE_BASE ** (torch.arange(0, head_dim, 2, device=device)[: head_dim // 2].float() / head_dim))
    pos = torch.arange(length, device=device, dtype=torch.float32)
    return torch.outer(pos, inv)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved pairs (x[2i], x[2i+1]) of x [B, T, nh, hd] in fp32; cos/sin [T, hd/2]."""
    xs = x.float().reshape(*x.shape[:-1], -1, 2)
    x0, x1 = xs[..., 0], xs[..., 1]
    cos, sin = cos[None, :, None, :], sin[None, :, None, :]
    out = torch.stack([x0 * cos - x1 * sin, x1 * cos + x0 * sin], dim=-1)
    return out.flatten(3).type_as(x)


class TimestepEmbedder(nn.Module):
    """t [B] -> sinusoid(256) -> Linear -> SiLU -> Linear -> [B, out]. Frequencies built in forward."""

    def __init__(self, out_dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(TIME_FREQ_DIM, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = TIME_FREQ_DIM // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
        args = TIME_SCALE * t.float()[:, None] * freqs[None]
        emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # cos first
        return self.mlp(emb.to(self.mlp[0].weight.dtype))


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = NORM_EPS):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()  # normalise in fp32, cast back before the gain
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


class AdaptiveLayerNorm(nn.Module):
    """W ⊙ RMSNorm(x) + b with (W, b) = split(project_layer(cond)), W first."""

    def __init__(self, dim: int):
        super().__init__()
        self.project_layer = nn.Linear(dim, 2 * dim)
        self.norm = RMSNorm(dim)
        self.dim = dim

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        w, b = self.project_layer(cond).split(self.dim, dim=-1)  # cond [B, 1, D]
        return w * self.norm(x) + b


class Attention(nn.Module):
    def __init__(self, dim: int, n_head: int):
        super().__init__()
        if dim % n_head or (dim // n_head) % 2:
            raise ValueError(f"DiT: hidden_dim {dim} must split into {n_head} heads of even size")
        self.wqkv = nn.Linear(dim, 3 * dim, bias=False)  # rows q | k | v
        self.wo = nn.Linear(dim, dim, bias=False)
        self.n_head = n_head
        self.head_dim = dim // n_head

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """mask: [B, 1, 1, T] bool, the keys of each row (a batch of segments of different lengths)."""
        b, t, d = x.shape
        q, k, v = self.wqkv(x).split(d, dim=-1)
        q = apply_rope(q.view(b, t, self.n_head, self.head_dim), cos, sin).transpose(1, 2)  # [B, nh, T, hd]
        k = apply_rope(k.view(b, t, self.n_head, self.head_dim), cos, sin).transpose(1, 2)
        v = v.view(b, t, self.n_head, self.head_dim).transpose(1, 2)
        # the official all-true mask of x_lens = [T] is a no-op: attend everywhere, default 1/sqrt(hd) scale
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.wo(y.transpose(1, 2).reshape(b, t, d))


class FeedForward(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        hidden = ffn_width(dim)
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, n_head: int, uvit: bool):
        super().__init__()
        self.attention = Attention(dim, n_head)
        self.feed_forward = FeedForward(dim)
        self.ffn_norm = AdaptiveLayerNorm(dim)
        self.attention_norm = AdaptiveLayerNorm(dim)
        if uvit:  # every block owns one; only the blocks after the middle use it
            self.skip_in_linear = nn.Linear(2 * dim, dim)

    def forward(self, x, cond, cos, sin, skip: torch.Tensor | None = None, mask: torch.Tensor | None = None):
        if skip is not None:
            x = self.skip_in_linear(torch.cat([x, skip], dim=-1))
        x = x + self.attention(self.attention_norm(x, cond), cos, sin, mask)
        return x + self.feed_forward(self.ffn_norm(x, cond))


class Transformer(nn.Module):
    """Blocks with U-ViT skips: blocks i < depth//2 push their output, i > depth//2 pop (LIFO)."""

    def __init__(self, dim: int, n_head: int, depth: int, uvit: bool):
        super().__init__()
        self.layers = nn.ModuleList(TransformerBlock(dim, n_head, uvit) for _ in range(depth))
        self.norm = AdaptiveLayerNorm(dim)
        self.uvit = uvit
        self.head_dim = dim // n_head

    def forward(self, x: torch.Tensor, cond: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, T, D], cond [B, 1, D] -> [B, T, D]; mask [B, 1, 1, T] bool keys per row, or None (all)."""
        angles = rope_angles(x.shape[1], self.head_dim, x.device)  # positions 0..T-1, fp32
        cos, sin = torch.cos(angles), torch.sin(angles)
        middle = len(self.layers) // 2
        skips: list[torch.Tensor] = []
        for i, layer in enumerate(self.layers):
            skip = skips.pop() if self.uvit and i > middle else None
            x = layer(x, cond, cos, sin, skip, mask)
            if self.uvit and i < middle:
                skips.append(x)
        return self.norm(x, cond)


class FinalLayer(nn.Module):
    """LayerNorm (no affine) modulated by shift/scale from the time embedding, then a Linear."""

    def __init__(self, dim: int, cond_dim: int):
        super().__init__()
        self.norm_final = nn.LayerNorm(dim, elementwise_affine=False, eps=FINAL_NORM_EPS)
        self.linear = nn.Linear(dim, dim)  # weight-normed in the file (folded at load)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 2 * dim))
        self.dim = dim

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).split(self.dim, dim=-1)  # shift first
        x = self.norm_final(x) * (1 + scale[:, None]) + shift[:, None]
        return self.linear(x)


class DiT(nn.Module):
    """The velocity estimator. Knows nothing about sampling (flow_matching.py drives it)."""

    def __init__(self, cfg: S2MelConfig):
        super().__init__()
        d, wn = cfg.dit, cfg.wavenet
        if d.final_layer_type != "wavenet":
            raise ValueError(f"DiT: final_layer_type {d.final_layer_type!r} is not supported (v2 uses 'wavenet')")
        dim, w = d.hidden_dim, wn.hidden_dim
        self.in_channels = d.in_channels
        self.content_dim = d.content_dim
        self.style_dim = cfg.style_dim if d.style_condition else 0
        self.long_skip = d.long_skip_connection
        self.transformer = Transformer(dim, d.num_heads, d.depth, d.uvit_skip_connection)
        self.cond_projection = nn.Linear(d.content_dim, dim)  # continuous content (discrete embedder unused)
        self.t_embedder = TimestepEmbedder(dim)
        self.t_embedder2 = TimestepEmbedder(w)  # WaveNet's global condition
        self.cond_x_merge_linear = nn.Linear(2 * d.in_channels + dim + self.style_dim, dim)
        if self.long_skip:
            self.skip_linear = nn.Linear(dim + d.in_channels, dim)
        self.conv1 = nn.Linear(dim, w)
        self.wavenet = WaveNet(wn, gin_channels=w)
        self.res_projection = nn.Linear(dim, w)
        self.final_layer = FinalLayer(w, cond_dim=dim)
        self.conv2 = nn.Conv1d(w, d.in_channels, 1)

    def forward(self, x: torch.Tensor, prompt_x: torch.Tensor, t: torch.Tensor,
                style: torch.Tensor, mu: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """x, prompt_x [B, M, T]; t [B]; style [B, S]; mu [B, T, Cc] -> velocity [B, M, T].

        `lengths` [B] (a batch of segments, right-padded to T): row b is its first lengths[b]
        frames, as if run alone (attention keys masked, WaveNet reflect-padded at the row's own
        end); the velocity past a row's length is unspecified (finite for finite inputs)."""
        b, _, length = x.shape
        mask = None
        if lengths is not None:
            lengths = torch.as_tensor(lengths).cpu()  # host-side decisions (no sync when given on the CPU)
            if bool((lengths == length).all()):
                lengths = None
            else:
                mask = (torch.arange(length, device=x.device) < lengths.to(x.device)[:, None])[:, None, None, :]
        t1 = self.t_embedder(t)  # [B, D]
        xt = x.transpose(1, 2)  # [B, T, M]
        parts = [xt, prompt_x.transpose(1, 2), self.cond_projection(mu)]
        if self.style_dim:
            parts.append(style[:, None, :].expand(b, length, style.shape[-1]))
        h = self.cond_x_merge_linear(torch.cat(parts, dim=-1))  # [B, T, D]
        h = self.transformer(h, t1[:, None, :], mask)
        if self.long_skip:
            h = self.skip_linear(torch.cat([h, xt], dim=-1))
        w = self.conv1(h).transpose(1, 2)  # [B, W, T]
        g = self.t_embedder2(t)[:, :, None]  # [B, W, 1]
        w = self.wavenet(w, g, lengths).transpose(1, 2) + self.res_projection(h)  # [B, T, W]
        w = self.final_layer(w, t1)
        return self.conv2(w.transpose(1, 2))  # [B, M, T]
