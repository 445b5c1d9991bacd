"""BigVGAN v2 generator (`bigvgan_generator.pt["generator"]` + `config.json`), spec §7.

mel [B, 80, F] -> waveform [B, 1, F·hop] in [-1, 1]. Weight norm (old-style `weight_g`/`weight_v`)
is folded into plain weights at load (checkpoints.load_strict), which is what the official
`remove_weight_norm()` does. Pure torch path only (the NVIDIA fused CUDA activation is not used;
quirk Q22: the torch path is the parity reference).

Shape legend:
    B  batch
    M  mel bins (`num_mels`)
    F  mel frames
    C  channels of a stage (`upsample_initial_channel` / 2^(i+1))
    N  samples = F · prod(upsample_rates)
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..checkpoints import load_strict, read_checkpoint, select
from ..config import BigVGANConfig
from .activations import make_activation

CONFIG_NAME = "config.json"  # file names of the hub repo nvidia/bigvgan_v2_22khz_80band_256x
WEIGHTS_NAME = "bigvgan_generator.pt"


class AMPBlock1(nn.Module):
    """Anti-aliased multi-periodicity block: per dilation d, x += conv2(act(conv1_d(act(x))))."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...], cfg: BigVGANConfig):
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=d * (kernel_size - 1) // 2)
            for d in dilations)
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, padding=(kernel_size - 1) // 2) for _ in dilations)
        # activations 0, 2, 4 precede convs1.*, 1, 3, 5 precede convs2.*
        self.activations = nn.ModuleList(
            make_activation(cfg.activation, channels, cfg.snake_logscale) for _ in range(2 * len(dilations)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, (c1, c2) in enumerate(zip(self.convs1, self.convs2)):
            y = c1(self.activations[2 * i](x))
            y = c2(self.activations[2 * i + 1](y))
            x = x + y
        return x


class BigVGAN(nn.Module):
    """Generator only (no discriminators, no training code)."""

    def __init__(self, cfg: BigVGANConfig):
        super().__init__()
        self.cfg = cfg
        c0 = cfg.upsample_initial_channel
        if c0 % (2 ** len(cfg.upsample_rates)):
            raise ValueError(f"BigVGAN: upsample_initial_channel {c0} must halve {len(cfg.upsample_rates)} times")
        if any((k - u) % 2 for u, k in zip(cfg.upsample_rates, cfg.upsample_kernel_sizes)):
            raise ValueError("BigVGAN: every upsample kernel minus its rate must be even (exact ×rate lengths)")
        self.num_kernels = len(cfg.resblock_kernel_sizes)
        self.conv_pre = nn.Conv1d(cfg.num_mels, c0, 7, 1, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes)):
            cin, cout = c0 // 2 ** i, c0 // 2 ** (i + 1)
            # one-element ModuleList: keys ups.{i}.0.*
            self.ups.append(nn.ModuleList([nn.ConvTranspose1d(cin, cout, k, u, padding=(k - u) // 2)]))
            for rk, rd in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes):
                self.resblocks.append(AMPBlock1(cout, rk, tuple(rd), cfg))
        c_last = c0 // 2 ** len(cfg.upsample_rates)
        self.activation_post = make_activation(cfg.activation, c_last, cfg.snake_logscale)
        self.conv_post = nn.Conv1d(c_last, 1, 7, 1, padding=3, bias=cfg.use_bias_at_final)

    @property
    def hop_length(self) -> int:
        return self.cfg.total_upsample

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel [B, M, F] -> waveform [B, 1, F·hop], clamped to [-1, 1] (tanh if the config says so)."""
        if mel.dim() != 3 or mel.shape[1] != self.cfg.num_mels:
            raise ValueError(f"BigVGAN: expected a mel [B, {self.cfg.num_mels}, F], got {list(mel.shape)}")
        if mel.shape[-1] == 0:
            raise ValueError("BigVGAN: empty mel (0 frames)")
        if not torch.isfinite(mel).all():
            raise ValueError("BigVGAN: mel contains NaN or Inf")
        x = self.conv_pre(mel.to(self.conv_pre.weight.dtype))
        for i, up in enumerate(self.ups):
            x = up[0](x)
            blocks = self.resblocks[i * self.num_kernels: (i + 1) * self.num_kernels]
            xs = blocks[0](x)
            for block in blocks[1:]:
                xs = xs + block(x)
            x = xs / self.num_kernels
        x = self.conv_post(self.activation_post(x))
        return torch.tanh(x) if self.cfg.use_tanh_at_final else x.clamp(-1.0, 1.0)


def to_int16(wav: torch.Tensor) -> torch.Tensor:
    """The official float -> int16 conversion: clamp(32767·x, ±32767), then truncation toward zero."""
    return torch.clamp(32767.0 * wav.float(), -32767.0, 32767.0).to(torch.int16)


def load_bigvgan(model_dir: str | Path, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32, weights: str | Path | None = None) -> BigVGAN:
    """Load `config.json` + `bigvgan_generator.pt` (`{"generator": state_dict}`) from `model_dir`.

    A `bigvgan_generator.safetensors` copy next to the .pt (download --convert-safetensors) is
    preferred; `weights` names another file explicitly."""
    model_dir = Path(model_dir)
    cfg = BigVGANConfig.from_json(model_dir / CONFIG_NAME)
    path = Path(weights) if weights is not None else model_dir / WEIGHTS_NAME
    if weights is None and path.with_suffix(".safetensors").is_file():
        path = path.with_suffix(".safetensors")
    sd = select(read_checkpoint(path), "generator", source=str(path))
    with torch.device("meta"):
        model = BigVGAN(cfg)
    load_strict(model, sd, f"{path} [generator]")
    return model.to(device=device, dtype=dtype).eval()
