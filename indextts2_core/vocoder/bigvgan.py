"""BigVGAN v2 generator (`bigvgan_generator.pt["generator"]` + `config.json`), spec §7.

mel [B, 80, F] -> waveform [B, 1, F·hop] in [-1, 1]. Weight norm (old-style `weight_g`/`weight_v`)
is folded into plain weights at load (checkpoints.load_strict), which is what the official
`remove_weight_norm()` does. Pure torch path only (the NVIDIA fused CUDA activation is not used;
quirk Q22: the torch path is the parity reference).

Shape legend:
    B  batch
    M  mel bins (`num_mels`)
    F  mel frames
    C  channels of a stage (`upsample_initial_channel // 2**(i+1)`, floor division as upstream)
    N  samples = F · prod(upsample_rates) when every (kernel − rate) is even (all published
       configs); each stage with an odd difference adds one sample (see `output_samples`)

Every config the official constructor builds and runs is built here the same way; refused are only
configs whose official forward cannot run (see `_check_runnable`).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from ..checkpoints import load_strict, read_checkpoint, select
from ..config import BigVGANConfig
from .activations import Activation1d, make_activation

CONFIG_NAME = "config.json"  # file names of the hub repo nvidia/bigvgan_v2_22khz_80band_256x
WEIGHTS_NAME = "bigvgan_generator.pt"
DEFAULT_CHUNK_FRAMES = 512  # ~6 s of 22.05 kHz audio per chunk (hop 256)
ACTIVATION_CONTEXT = 7  # samples each side an anti-aliased activation reads (12-tap ×2 up and down: 6, +1 spare)


def _conv_padding(kernel_size: int, dilation: int) -> int:
    return dilation * (kernel_size - 1) // 2  # official get_padding: int((k·d − d) / 2)


class AMPBlock1(nn.Module):
    """Anti-aliased multi-periodicity block: per dilation d, x += conv2(act(conv1_d(act(x))))."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...], cfg: BigVGANConfig):
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=_conv_padding(kernel_size, d))
            for d in dilations)
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, padding=_conv_padding(kernel_size, 1)) for _ in dilations)
        # activations 0, 2, 4 precede convs1.*, 1, 3, 5 precede convs2.*
        self.activations = nn.ModuleList(
            make_activation(cfg.activation, channels, cfg.snake_logscale) for _ in range(2 * len(dilations)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, (c1, c2) in enumerate(zip(self.convs1, self.convs2)):
            y = c1(self.activations[2 * i](x))
            y = c2(self.activations[2 * i + 1](y))
            x = x + y
        return x


class AMPBlock2(nn.Module):
    """The lighter AMP block (`resblock: "2"`): per dilation d, x += conv_d(act(x))."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...], cfg: BigVGANConfig):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=_conv_padding(kernel_size, d))
            for d in dilations)
        self.activations = nn.ModuleList(
            make_activation(cfg.activation, channels, cfg.snake_logscale) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, act in zip(self.convs, self.activations):
            x = x + conv(act(x))
        return x


RESBLOCKS = {"1": AMPBlock1, "2": AMPBlock2}


def _check_runnable(cfg: BigVGANConfig) -> None:
    """Refuse the configs the official generator cannot build, or builds but cannot run."""
    if cfg.resblock not in RESBLOCKS:
        raise ValueError(f"BigVGAN: resblock must be \"1\" or \"2\", got {cfg.resblock!r}")
    if len(cfg.resblock_dilation_sizes) < len(cfg.resblock_kernel_sizes):  # forward indexes missing blocks
        raise ValueError("BigVGAN: resblock_dilation_sizes has fewer entries than resblock_kernel_sizes")
    for u, k in zip(cfg.upsample_rates, cfg.upsample_kernel_sizes):
        if k < u:  # padding (k − u) // 2 < 0: ConvTranspose1d refuses negative padding when run
            raise ValueError(f"BigVGAN: upsample kernel {k} is smaller than its rate {u} (negative padding; "
                             "the official generator cannot run it)")
    for k, ds in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes):
        for d in (*ds, 1) if cfg.resblock == "1" else ds:  # AMPBlock1's second convolutions: dilation 1
            if d * (k - 1) % 2:  # the convolution shortens the signal and the residual sum fails
                raise ValueError(f"BigVGAN: resblock kernel {k} with dilation {d} does not keep the length "
                                 "(d·(k−1) must be even; the official residual sum fails otherwise)")


class BigVGAN(nn.Module):
    """Generator only (no discriminators, no training code)."""

    def __init__(self, cfg: BigVGANConfig):
        super().__init__()
        self.cfg = cfg
        _check_runnable(cfg)
        c0 = cfg.upsample_initial_channel
        resblock = RESBLOCKS[cfg.resblock]
        self.num_kernels = len(cfg.resblock_kernel_sizes)
        self.conv_pre = nn.Conv1d(cfg.num_mels, c0, 7, 1, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes)):
            cin, cout = c0 // 2 ** i, c0 // 2 ** (i + 1)
            # one-element ModuleList: keys ups.{i}.0.*
            self.ups.append(nn.ModuleList([nn.ConvTranspose1d(cin, cout, k, u, padding=(k - u) // 2)]))
            for rk, rd in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes):
                self.resblocks.append(resblock(cout, rk, tuple(rd), cfg))
        c_last = c0 // 2 ** len(self.ups)  # the last stage's width (floor division, as upstream)
        self.activation_post = make_activation(cfg.activation, c_last, cfg.snake_logscale)
        self.conv_post = nn.Conv1d(c_last, 1, 7, 1, padding=3, bias=cfg.use_bias_at_final)

    @property
    def hop_length(self) -> int:
        """Nominal samples per mel frame (prod(upsample_rates))."""
        return self.cfg.total_upsample

    def output_samples(self, frames: int) -> int:
        """Exact output length for `frames` mel frames: each stage gives (n−1)·u − 2·((k−u)//2) + k
        samples, i.e. n·u, plus one when k − u is odd."""
        n = frames
        for u, k in zip(self.cfg.upsample_rates, self.cfg.upsample_kernel_sizes):
            n = (n - 1) * u - 2 * ((k - u) // 2) + k
        return n

    def fuse_activations(self, enabled: bool = True) -> "BigVGAN":
        """Run every anti-aliased activation as one compiled kernel (`anti_aliased_snake` through
        torch.compile); off by default, the reference path is the parity one. Off again with False."""
        for m in self.modules():
            if isinstance(m, Activation1d):
                m.fused = enabled
        return self

    def receptive_field_frames(self) -> int:
        """Mel frames on each side of a frame that can change its samples (an upper bound, from
        the kernels, dilations and rates; the tests check it against the network): what a chunk
        needs around it for chunked vocoding to equal the whole."""
        cfg, half = self.cfg, ACTIVATION_CONTEXT
        frames, rate = 3.0, 1  # conv_pre, kernel 7
        for u, k in zip(cfg.upsample_rates, cfg.upsample_kernel_sizes):
            frames += math.ceil(k / u) / rate  # the transposed convolution, in its input samples
            rate *= u
            side = 0
            for rk, ds in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes):
                if cfg.resblock == "1":
                    ctx = sum(2 * half + (rk - 1) // 2 * (d + 1) for d in ds)
                else:
                    ctx = sum(half + (rk - 1) // 2 * d for d in ds)
                side = max(side, ctx)
            frames += side / rate
        frames += (half + 3) / rate  # activation_post, conv_post (kernel 7)
        return math.ceil(frames)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel [B, M, F] -> waveform [B, 1, output_samples(F)] (F·hop for published configs), clamped
        to [-1, 1] (tanh if the config says so)."""
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


@torch.no_grad()
def vocode_chunked(model: BigVGAN, mel: torch.Tensor, chunk_frames: int = DEFAULT_CHUNK_FRAMES,
                   context_frames: int | None = None) -> torch.Tensor:
    """`model(mel)` computed chunk by chunk: frames [a, b) are vocoded with `context_frames` on
    each side (default: the receptive field, so each chunk's kept samples see all they would see
    in the whole) and only their own samples kept. Equals the whole to float rounding; memory grows
    with chunk_frames + 2·context, not with the length. Returns [B, 1, F·hop]; a config whose output
    is not F·hop (none published) is vocoded whole."""
    frames = mel.shape[-1]
    hop = model.hop_length
    if isinstance(chunk_frames, bool) or not isinstance(chunk_frames, int) or chunk_frames <= 0:
        raise ValueError(f"chunk_frames must be a positive integer, got {chunk_frames!r}")
    ctx = model.receptive_field_frames() if context_frames is None else int(context_frames)
    if ctx < 0:
        raise ValueError(f"context_frames must be >= 0, got {context_frames!r}")
    if mel.dim() != 3 or frames <= chunk_frames or model.output_samples(frames) != frames * hop:
        return model(mel)
    pieces = []
    for a in range(0, frames, chunk_frames):
        b = min(frames, a + chunk_frames)
        lo, hi = max(0, a - ctx), min(frames, b + ctx)
        wav = model(mel[..., lo:hi])
        pieces.append(wav[..., (a - lo) * hop:(b - lo) * hop])
    return torch.cat(pieces, dim=-1)


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
