"""BigVGAN v2 activations, spec §7: Snake / SnakeBeta and the anti-aliased wrapper
(×2 upsample -> activation -> ×2 downsample), pure torch.

The low-pass filters are persistent buffers of the checkpoint (`*.upsample.filter`,
`*.downsample.lowpass.filter`) and are loaded from it; `kaiser_sinc_filter` computes the same
values so that randomly initialised models (tests, benchmarks) work too.

Shape legend:
    B  batch
    C  channels
    T  samples
    K  filter taps (12)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

RATIO = 2  # anti-aliasing up/down factor
KERNEL = 12  # int(6 · ratio / 2) · 2 taps
SNAKE_EPS = 1e-9


def kaiser_sinc_filter(cutoff: float, half_width: float, kernel_size: int) -> torch.Tensor:
    """Kaiser-windowed sinc low-pass [1, 1, K] normalised to sum 1 (even K: taps at -K/2..K/2-1 + 0.5)."""
    half = kernel_size // 2
    attenuation = 2.285 * (half - 1) * math.pi * (4 * half_width) + 7.95
    if attenuation > 50.0:
        beta = 0.1102 * (attenuation - 8.7)
    elif attenuation >= 21.0:
        beta = 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel_size, periodic=False, beta=beta)
    if kernel_size % 2 == 0:
        time = torch.arange(-half, half) + 0.5
    else:
        time = torch.arange(kernel_size) - half
    taps = 2 * cutoff * window * torch.sinc(2 * cutoff * time)
    return (taps / taps.sum()).view(1, 1, kernel_size)


class Snake(nn.Module):
    """x + sin²(αx) / α, per channel; α stored as log α when `logscale`."""

    def __init__(self, channels: int, logscale: bool = True):
        super().__init__()
        self.logscale = logscale
        self.alpha = nn.Parameter(torch.zeros(channels) if logscale else torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha[None, :, None]
        if self.logscale:
            alpha = torch.exp(alpha)
        return x + torch.sin(x * alpha).pow(2) / (alpha + SNAKE_EPS)

    def params(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(α, β + eps) as [1, C, 1] (β = α for Snake)."""
        alpha = self.alpha[None, :, None]
        if self.logscale:
            alpha = torch.exp(alpha)
        return alpha, alpha + SNAKE_EPS


class SnakeBeta(nn.Module):
    """x + sin²(αx) / β, per channel; α and β stored as logs when `logscale`."""

    def __init__(self, channels: int, logscale: bool = True):
        super().__init__()
        self.logscale = logscale
        init = torch.zeros(channels) if logscale else torch.ones(channels)
        self.alpha = nn.Parameter(init.clone())
        self.beta = nn.Parameter(init.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha, beta = self.alpha[None, :, None], self.beta[None, :, None]
        if self.logscale:
            alpha, beta = torch.exp(alpha), torch.exp(beta)
        return x + torch.sin(x * alpha).pow(2) / (beta + SNAKE_EPS)

    def params(self) -> tuple[torch.Tensor, torch.Tensor]:
        alpha, beta = self.alpha[None, :, None], self.beta[None, :, None]
        if self.logscale:
            alpha, beta = torch.exp(alpha), torch.exp(beta)
        return alpha, beta + SNAKE_EPS


class UpSample1d(nn.Module):
    """×2: replicate-pad, depthwise transposed conv with the filter, ×2 gain, crop."""

    def __init__(self):
        super().__init__()
        self.register_buffer("filter", kaiser_sinc_filter(0.5 / RATIO, 0.6 / RATIO, KERNEL))
        self.pad = KERNEL // RATIO - 1  # 5
        self.crop_left = self.pad * RATIO + (KERNEL - RATIO) // 2  # 15
        self.crop_right = self.pad * RATIO + (KERNEL - RATIO + 1) // 2  # 15

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        x = F.pad(x, (self.pad, self.pad), mode="replicate")
        x = RATIO * F.conv_transpose1d(x, self.filter.expand(c, -1, -1), stride=RATIO, groups=c)
        return x[..., self.crop_left: x.shape[-1] - self.crop_right]  # [B, C, 2T]


class LowPassFilter1d(nn.Module):
    """Depthwise low-pass with stride 2 after replicate padding (left K/2−1, right K/2)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("filter", kaiser_sinc_filter(0.5 / RATIO, 0.6 / RATIO, KERNEL))
        even = KERNEL % 2 == 0
        self.pad_left = KERNEL // 2 - int(even)
        self.pad_right = KERNEL // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        x = F.pad(x, (self.pad_left, self.pad_right), mode="replicate")
        return F.conv1d(x, self.filter.expand(c, -1, -1), stride=RATIO, groups=c)


class DownSample1d(nn.Module):
    def __init__(self):
        super().__init__()
        self.lowpass = LowPassFilter1d()  # key level `downsample.lowpass.filter`

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lowpass(x)  # [B, C, ceil(T/2)]


def anti_aliased_snake(x: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor, up: torch.Tensor,
                       down: torch.Tensor) -> torch.Tensor:
    """The whole anti-aliased activation in polyphase form: x [B, C, T] -> [B, C, T], equal to
    `DownSample1d(snake(UpSample1d(x)))` (the reference) to float rounding. The ×2 signal is never
    built: its even and odd samples are 6-tap sums of shifted x, and the low-pass reads them back,
    so under torch.compile the whole activation becomes one loop over x (what NVIDIA's fused CUDA
    kernel does). alpha, beta [1, C, 1] (beta with its eps); up, down: the 12-tap filters [1, 1, 12]
    (KERNEL and RATIO as above; replicate padding at both ends, as the reference)."""
    t = x.shape[-1]
    fu, fd = up.reshape(-1).to(x.dtype), down.reshape(-1).to(x.dtype)
    xr = F.pad(x, (3, 3), mode="replicate")  # xr[i] = x[clamp(i - 3)]
    # ×2 upsample: even samples use the odd taps, odd samples the even taps (gain 2)
    u_even = sum(fu[2 * j + 1] * xr[..., 5 - j: 5 - j + t] for j in range(6)) * RATIO
    u_odd = sum(fu[2 * j] * xr[..., 6 - j: 6 - j + t] for j in range(6)) * RATIO
    a_even = u_even + torch.sin(u_even * alpha).pow(2) / beta
    a_odd = u_odd + torch.sin(u_odd * alpha).pow(2) / beta
    # low-pass, stride 2, over the ×2 signal replicate-padded 5 left / 6 right: a[clamp(2n + k − 5)]
    first, last = a_even[..., :1], a_odd[..., -1:]
    ev = torch.cat([first, first, a_even, last, last, last], dim=-1)  # a_even[m], m in [-2, T+3)
    od = torch.cat([first, first, first, a_odd, last, last], dim=-1)  # a_odd[m], m in [-3, T+2)
    return sum(fd[2 * j + 1] * ev[..., j: j + t] + fd[2 * j] * od[..., j: j + t] for j in range(6))


_FUSED: dict = {}


def _fused_fn():
    if "fn" not in _FUSED:
        _FUSED["fn"] = torch.compile(anti_aliased_snake, dynamic=True)
    return _FUSED["fn"]


class Activation1d(nn.Module):
    """Anti-aliased activation: keys `act.*`, `upsample.filter`, `downsample.lowpass.filter`.

    `fused` (off by default; `BigVGAN.fuse_activations`) runs `anti_aliased_snake` through
    torch.compile instead of the reference up -> act -> down."""

    def __init__(self, act: nn.Module):
        super().__init__()
        self.act = act
        self.upsample = UpSample1d()
        self.downsample = DownSample1d()
        self.fused = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, C, T] -> [B, C, T]."""
        if self.fused:
            alpha, beta = self.act.params()
            return _fused_fn()(x, alpha, beta, self.upsample.filter, self.downsample.lowpass.filter)
        return self.downsample(self.act(self.upsample(x)))


def make_activation(kind: str, channels: int, logscale: bool) -> Activation1d:
    if kind == "snakebeta":
        return Activation1d(SnakeBeta(channels, logscale))
    if kind == "snake":
        return Activation1d(Snake(channels, logscale))
    raise ValueError(f"BigVGAN: unknown activation {kind!r} (expected 'snake' or 'snakebeta')")
