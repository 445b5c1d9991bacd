"""CAMPPlus speaker embedding (3D-Speaker, `feat_dim=80, embedding_size=192`): the S2M "style".

Input is a mean-normalised 80-bin Kaldi fbank of the 16 kHz prompt (audio front end); output one
192-d vector per utterance. Every BatchNorm runs in eval mode on the file's running statistics.

Shapes:
  B batch, T fbank frames (100 Hz), F fbank bins (80), M head channels (32),
  C channels of the D-TDNN trunk, E embedding size (192)
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints import load_strict, read_checkpoint

log = logging.getLogger(__name__)

# Published CAMPPlus(feat_dim=80, embedding_size=192) structure (hard-coded in the official code)
FEAT_DIM = 80
EMBEDDING_SIZE = 192
BLOCKS = ((12, 1), (24, 2), (16, 2))  # (CAM-dense layers, dilation) of block1..3, kernel 3 each
SEG_LEN = 100  # frames per segment of the CAM segment pooling
MIN_FRAMES = 3  # the stride-2 TDNN must leave >= 2 frames for the (Bessel-corrected) std pooling


def bn_relu(channels: int) -> nn.Sequential:
    """The file's `<name>.batchnorm.*` nesting: BatchNorm1d then ReLU."""
    return nn.Sequential(OrderedDict(batchnorm=nn.BatchNorm1d(channels), relu=nn.ReLU()))


class BasicResBlock(nn.Module):
    """2-D residual block; strides only the frequency axis."""

    def __init__(self, channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, stride=(stride, 1), padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = nn.Sequential()
        if stride != 1:
            self.shortcut = nn.Sequential(nn.Conv2d(channels, channels, 1, stride=(stride, 1), bias=False),
                                          nn.BatchNorm2d(channels))

    def forward(self, x):  # [B, M, F', T] -> [B, M, F'/stride, T]
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class FCM(nn.Module):
    """Front-end convolution module: 2-D ResNet over (freq, time), freq reduced 8x, then flattened."""

    def __init__(self, feat_dim: int = FEAT_DIM, channels: int = 32):
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.layer1 = nn.Sequential(BasicResBlock(channels, 2), BasicResBlock(channels, 1))
        self.layer2 = nn.Sequential(BasicResBlock(channels, 2), BasicResBlock(channels, 1))
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=(2, 1), padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.out_channels = channels * ((feat_dim + 7) // 8)

    def forward(self, x):  # [B, F, T] -> [B, M * F/8, T]
        x = F.relu(self.bn1(self.conv1(x.unsqueeze(1))))
        x = self.layer2(self.layer1(x))
        x = F.relu(self.bn2(self.conv2(x)))
        return x.flatten(1, 2)


def segment_mean(x, seg_len: int = SEG_LEN):
    """Mean of non-overlapping `seg_len`-frame windows, broadcast back to each window's frames.
    The last window may be partial and is averaged over its real frames only."""
    t = x.shape[-1]
    seg = F.avg_pool1d(x, seg_len, seg_len, ceil_mode=True)  # partial window divides by its length
    return seg.repeat_interleave(seg_len, dim=-1)[..., :t]


class CAMLayer(nn.Module):
    """Context-aware masking: a local dilated conv gated by utterance + segment context."""

    def __init__(self, bn_channels: int, out_channels: int, kernel_size: int, dilation: int):
        super().__init__()
        pad = (kernel_size - 1) // 2 * dilation
        self.linear_local = nn.Conv1d(bn_channels, out_channels, kernel_size, padding=pad, dilation=dilation,
                                      bias=False)
        self.linear1 = nn.Conv1d(bn_channels, bn_channels // 2, 1)
        self.linear2 = nn.Conv1d(bn_channels // 2, out_channels, 1)

    def forward(self, x):  # [B, C, T] -> [B, G, T]
        y = self.linear_local(x)
        context = x.mean(-1, keepdim=True) + segment_mean(x)
        return y * torch.sigmoid(self.linear2(F.relu(self.linear1(context))))


class CAMDenseTDNNLayer(nn.Module):
    """BN-ReLU -> 1x1 bottleneck -> BN-ReLU -> CAM; its G output channels are appended to the input."""

    def __init__(self, in_channels: int, growth: int, bn_channels: int, kernel_size: int, dilation: int):
        super().__init__()
        self.nonlinear1 = bn_relu(in_channels)
        self.linear1 = nn.Conv1d(in_channels, bn_channels, 1, bias=False)
        self.nonlinear2 = bn_relu(bn_channels)
        self.cam_layer = CAMLayer(bn_channels, growth, kernel_size, dilation)

    def forward(self, x):  # [B, C, T] -> [B, G, T]
        return self.cam_layer(self.nonlinear2(self.linear1(self.nonlinear1(x))))


class CAMDenseTDNNBlock(nn.ModuleDict):
    """Densely connected CAM layers `tdnnd1..tdnndN`."""

    def __init__(self, num_layers: int, in_channels: int, growth: int, bn_channels: int, dilation: int):
        super().__init__({f"tdnnd{i + 1}": CAMDenseTDNNLayer(in_channels + i * growth, growth, bn_channels, 3,
                                                            dilation) for i in range(num_layers)})

    def forward(self, x):  # [B, C, T] -> [B, C + N*G, T]
        for layer in self.values():
            x = torch.cat([x, layer(x)], dim=1)
        return x


class TDNNLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int):
        super().__init__()
        self.linear = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride,
                                padding=(kernel_size - 1) // 2, bias=False)
        self.nonlinear = bn_relu(out_channels)

    def forward(self, x):
        return self.nonlinear(self.linear(x))


class TransitLayer(nn.Module):
    """BN-ReLU then a 1x1 conv halving the channels."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.nonlinear = bn_relu(in_channels)
        self.linear = nn.Conv1d(in_channels, out_channels, 1, bias=False)

    def forward(self, x):
        return self.linear(self.nonlinear(x))


class StatsPool(nn.Module):
    def forward(self, x):  # [B, C, T] -> [B, 2C]: mean and Bessel-corrected std over time
        return torch.cat([x.mean(dim=-1), x.std(dim=-1, unbiased=True)], dim=-1)


class DenseLayer(nn.Module):
    """1x1 projection to the embedding, then a BatchNorm without affine parameters."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.linear = nn.Conv1d(in_channels, out_channels, 1, bias=False)
        self.nonlinear = nn.Sequential(OrderedDict(batchnorm=nn.BatchNorm1d(out_channels, affine=False)))

    def forward(self, x):  # [B, 2C] -> [B, E]
        return self.nonlinear(self.linear(x.unsqueeze(-1)).squeeze(-1))


class CAMPPlus(nn.Module):
    """FCM head + D-TDNN trunk with CAM layers + statistics pooling -> speaker embedding.
    Not responsible for computing the fbank (audio front end)."""

    def __init__(self, feat_dim: int = FEAT_DIM, embedding_size: int = EMBEDDING_SIZE, growth_rate: int = 32,
                 bn_size: int = 4, init_channels: int = 128, head_channels: int = 32, blocks=BLOCKS):
        super().__init__()
        self.feat_dim = feat_dim
        self.head = FCM(feat_dim, head_channels)
        xvector = {"tdnn": TDNNLayer(self.head.out_channels, init_channels, 5, stride=2)}
        channels = init_channels
        for i, (num_layers, dilation) in enumerate(blocks, start=1):
            xvector[f"block{i}"] = CAMDenseTDNNBlock(num_layers, channels, growth_rate, bn_size * growth_rate,
                                                     dilation)
            channels += num_layers * growth_rate
            xvector[f"transit{i}"] = TransitLayer(channels, channels // 2)
            channels //= 2
        xvector["out_nonlinear"] = bn_relu(channels)
        xvector["stats"] = StatsPool()
        xvector["dense"] = DenseLayer(2 * channels, embedding_size)
        self.xvector = nn.Sequential(OrderedDict(xvector))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """feats [B, T, F] (mean-normalised fbank) -> [B, E]."""
        feats = self._check(feats)
        return self.xvector(self.head(feats.transpose(1, 2)))

    def _check(self, feats) -> torch.Tensor:
        if not isinstance(feats, torch.Tensor) or not feats.dtype.is_floating_point:
            raise ValueError("CAMPPlus: features must be a floating-point tensor")
        if feats.dim() != 3 or feats.shape[-1] != self.feat_dim or feats.shape[0] == 0:
            raise ValueError(f"CAMPPlus: features must be [B, T, {self.feat_dim}], got shape {list(feats.shape)}")
        if feats.shape[1] < MIN_FRAMES:
            raise ValueError(f"CAMPPlus: need at least {MIN_FRAMES} fbank frames, got {feats.shape[1]}")
        if not torch.isfinite(feats).all():
            raise ValueError("CAMPPlus: features contain NaN or Inf")
        w = self.head.conv1.weight
        return feats.to(device=w.device, dtype=w.dtype)


def load_campplus(path: str | Path, device="cpu", dtype: torch.dtype = torch.float32) -> CAMPPlus:
    """Strictly load `campplus_cn_common.bin` (flat state dict incl. BatchNorm running statistics)."""
    with torch.device("meta"):
        model = CAMPPlus()
    load_strict(model, read_checkpoint(path), f"CAMPPlus ({path})")
    log.info("CAMPPlus loaded from %s", path)
    return model.to(device=device, dtype=dtype).eval()
