"""S2M length regulator (`s2mel.pth["net"]["length_regulator"]`), spec §6.2.

Maps content features at the semantic rate to the mel frame rate by nearest-neighbour
interpolation to *any* requested number of frames, then refines them with a small conv stack.

Shape legend:
    B  batch
    T  input frames (semantic codes, 50 per second)
    F  output mel frames (the requested count, exactly)
    Ci input width (`in_channels`, 1024)
    C  channels (`channels`, 512 = DiT content_dim)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import LengthRegulatorConfig


class LengthRegulator(nn.Module):
    """content_in_proj -> nearest interpolation to F frames -> N x (Conv k3, GroupNorm(1), Mish) -> Conv k1,
    one block per entry of `sampling_ratios` (the official config has four; upstream builds any count).

    Only the continuous-input path of the official `InterpolateRegulator` exists here; its discrete
    `embedding` and `mask_token` are never used by v2 inference (see `model.py`'s skip list).
    """

    def __init__(self, cfg: LengthRegulatorConfig):
        super().__init__()
        c = cfg.channels
        layers: list[nn.Module] = []
        for _ in cfg.sampling_ratios:
            layers += [nn.Conv1d(c, c, 3, 1, 1), nn.GroupNorm(1, c), nn.Mish()]
        layers.append(nn.Conv1d(c, c, 1, 1))
        self.model = nn.Sequential(*layers)  # 4 blocks: keys model.{0,3,6,9} convs, {1,4,7,10} norms, 12 output conv
        self.content_in_proj = nn.Linear(cfg.in_channels, c)
        self.in_channels = cfg.in_channels
        self.channels = c

    def forward(self, x: torch.Tensor, target_frames: int) -> torch.Tensor:
        """x [B, T, Ci] -> [B, target_frames, C]."""
        if x.dim() != 3 or x.shape[-1] != self.in_channels:
            raise ValueError(f"length regulator: expected features [B, T, {self.in_channels}], got {list(x.shape)}")
        if x.shape[1] == 0:
            raise ValueError("length regulator: empty input (0 frames)")
        if isinstance(target_frames, torch.Tensor):
            target_frames = int(target_frames.reshape(-1)[0])  # official ylens tensor of one item
        if isinstance(target_frames, bool) or not isinstance(target_frames, int) or target_frames <= 0:
            raise ValueError(f"length regulator: target_frames must be a positive integer, got {target_frames!r}")
        h = self.content_in_proj(x)  # [B, T, C]
        # PyTorch 'nearest': source frame floor(dst * T / F), as the official code uses
        h = F.interpolate(h.transpose(1, 2), size=target_frames, mode="nearest")  # [B, C, F]
        # GroupNorm(1, C) normalises over all channels *and frames* of this call, so the result
        # depends on F as a whole; that is the official behaviour.
        return self.model(h).transpose(1, 2)  # [B, F, C]
