"""WaveNet stack (`WN`) of the DiT's final layer, spec §6.4.

Gated dilated convolutions with a global condition (the second time embedding). Every convolution
sits inside a padding wrapper whose key path is `<name>.conv.conv`; the wrapper pads in *reflect*
mode by itself and ignores any padding argument (quirk Q13). Weight norm is folded at load time.

Shape legend:
    B  batch
    T  frames
    H  hidden channels (`wavenet.hidden_dim`)
    G  global-condition channels (= H)
    L  layers (`wavenet.num_layers`)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import WaveNetConfig


def reflect_pad(x: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """Reflect-pad the last dim, also when it is too short for a plain reflect pad.

    A signal no longer than the pad is first extended with zeros on the right (and the extension
    removed again afterwards), so one- or two-frame inputs still work.
    """
    if left == 0 and right == 0:
        return x
    length = x.shape[-1]
    need = max(left, right)
    if length <= need:
        extra = need - length + 1
        x = F.pad(x, (0, extra))
        padded = F.pad(x, (left, right), mode="reflect")
        return padded[..., : padded.shape[-1] - extra]
    return F.pad(x, (left, right), mode="reflect")


def reflect_index(lengths: torch.Tensor, total: int, left: int, right: int) -> torch.Tensor:
    """[B, total + left + right] source frames of a reflect pad of each row at its own length
    (row b: frames 0..lengths[b]-1 then the reflection; what lies beyond is clamped, never read by
    the row's own frames). Every length must exceed the pad, as a plain reflect pad needs."""
    if bool((lengths <= max(left, right)).any()):
        raise ValueError(f"WaveNet: rows of a batch must be longer than the reflect pad ({max(left, right)} frames), "
                         f"got lengths {lengths.tolist()}")
    j = torch.arange(-left, total + right, device=lengths.device)[None, :]
    last = (lengths - 1)[:, None]
    j = torch.where(j < 0, -j, torch.where(j > last, 2 * last - j, j))
    return j.clamp(0, total - 1)


class _Conv(nn.Module):
    """Holds the (weight-normed in the file) convolution: key level `.conv`."""

    def __init__(self, cin: int, cout: int, kernel_size: int, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, kernel_size, dilation=dilation)


class ReflectConv1d(nn.Module):
    """Stride-1 Conv1d with 'same' reflect padding; keys `<name>.conv.conv.{weight,bias}`."""

    def __init__(self, cin: int, cout: int, kernel_size: int, dilation: int = 1):
        super().__init__()
        self.conv = _Conv(cin, cout, kernel_size, dilation)
        total = (kernel_size - 1) * dilation
        self.pad_right = total // 2  # an odd total puts the extra frame on the left
        self.pad_left = total - self.pad_right

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, C, T]; with `lengths` [B] each row is reflect-padded at its own end (the frames
        past it are not read by the frames before it)."""
        if lengths is None or self.pad_left + self.pad_right == 0:
            return self.conv.conv(reflect_pad(x, self.pad_left, self.pad_right))
        idx = reflect_index(lengths, x.shape[-1], self.pad_left, self.pad_right).to(x.device)
        return self.conv.conv(x.gather(2, idx[:, None, :].expand(x.shape[0], x.shape[1], -1)))


class WaveNet(nn.Module):
    """Non-causal WaveNet with a global condition `g` [B, G, 1] broadcast over time."""

    def __init__(self, cfg: WaveNetConfig, gin_channels: int):
        super().__init__()
        h, n = cfg.hidden_dim, cfg.num_layers
        self.hidden = h
        self.num_layers = n
        self.cond_layer = ReflectConv1d(gin_channels, 2 * h * n, 1)
        self.in_layers = nn.ModuleList(
            ReflectConv1d(h, 2 * h, cfg.kernel_size, dilation=cfg.dilation_rate ** i) for i in range(n))
        # the last layer has no residual half: it only feeds the skip sum
        self.res_skip_layers = nn.ModuleList(
            ReflectConv1d(h, 2 * h if i < n - 1 else h, 1) for i in range(n))

    def forward(self, x: torch.Tensor, g: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, H, T], g [B, G, 1] -> [B, H, T]. (The official all-ones mask is omitted.) `lengths`
        [B]: rows of different lengths right-padded to T, each reflect-padded at its own end."""
        h = self.hidden
        gl = self.cond_layer(g)  # [B, 2·H·L, 1]
        out = torch.zeros_like(x)
        for i in range(self.num_layers):
            a = self.in_layers[i](x, lengths) + gl[:, 2 * h * i: 2 * h * (i + 1)]  # [B, 2H, T]
            z = torch.tanh(a[:, :h]) * torch.sigmoid(a[:, h:])
            r = self.res_skip_layers[i](z)
            if i < self.num_layers - 1:
                x = x + r[:, :h]
                out = out + r[:, h:]
            else:
                out = out + r
        return out
