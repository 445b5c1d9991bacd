"""Kaldi-style filter banks at 16 kHz: CAMPPlus input (torchaudio `compliance.kaldi.fbank`
defaults, waveform kept in [-1, 1], quirk Q21) and w2v-BERT input features (SeamlessM4T feature
extractor: fbank of wave * 2^15, per-bin normalisation, odd frame counts padded with 1.0 and
frame pairs stacked, quirk Q8).

Per frame (25 ms window, 10 ms shift, snip_edges): remove DC, pre-emphasis 0.97, Povey window,
zero-pad to a power of two, power spectrum, 80 triangular filters on the Kaldi mel scale
(1127 ln(1 + f/700)) from 20 Hz to Nyquist, ln(max(x, float32 eps)).

Shapes: M samples, F = 1 + (M - win) // shift frames, K = n_fft // 2 + 1 bins, D mel bins,
B clips, T = ceil(F / stride) stacked frames.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .io import check_signal

_LOG_FLOOR = torch.finfo(torch.float32).eps  # 1.1920928955078125e-07, used by both paths
_PREEMPHASIS = 0.97
_LOW_FREQ = 20.0


def _frame_sizes(sample_rate: int) -> tuple[int, int, int]:
    """(window, shift, fft size) for 25 ms / 10 ms frames."""
    win, shift = sample_rate * 25 // 1000, sample_rate * 10 // 1000
    return win, shift, 1 << (win - 1).bit_length()


def fbank_frames(n_samples: int, sample_rate: int = 16000) -> int:
    """Frame count F for M samples (snip_edges: only whole windows)."""
    win, shift, _ = _frame_sizes(sample_rate)
    return 0 if n_samples < win else 1 + (n_samples - win) // shift


def kaldi_mel_banks(num_bins: int, n_fft: int, sample_rate: float, low_freq: float = _LOW_FREQ,
                    high_freq: float | None = None, dtype=torch.float32, device=None) -> torch.Tensor:
    """[D, K] triangles in Kaldi mel space, no area normalisation; the Nyquist column is zero."""
    high_freq = sample_rate / 2 if high_freq is None else high_freq
    f64 = torch.float64

    def mel(f):
        return 1127.0 * torch.log1p(torch.as_tensor(f, dtype=f64) / 700.0)

    lo, hi = mel(low_freq), mel(high_freq)
    edges = lo + torch.arange(num_bins + 2, dtype=f64) * ((hi - lo) / (num_bins + 1))
    bins = mel(torch.arange(n_fft // 2, dtype=f64) * (sample_rate / n_fft))[None]
    left, center, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    tri = torch.clamp(torch.minimum((bins - left) / (center - left), (right - bins) / (right - center)), min=0)
    tri = torch.nn.functional.pad(tri, (0, 1))
    return tri.to(device=device, dtype=dtype)


def _fbank(x: torch.Tensor, sample_rate: int, num_mel_bins: int) -> torch.Tensor:
    """[R, M] -> log mel energies [R, F, D] in x's dtype."""
    win, shift, n_fft = _frame_sizes(sample_rate)
    frames = x.unfold(-1, win, shift)  # [R, F, win]
    frames = frames - frames.mean(dim=-1, keepdim=True)
    prev = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)  # Kaldi repeats the first sample
    frames = frames - _PREEMPHASIS * prev
    povey = torch.hann_window(win, periodic=False, device=x.device, dtype=x.dtype).pow(0.85)
    power = torch.fft.rfft(frames * povey, n=n_fft).abs().pow(2)  # [R, F, K]
    banks = kaldi_mel_banks(num_mel_bins, n_fft, sample_rate, dtype=x.dtype, device=x.device)
    energies = torch.matmul(power, banks.T)
    return torch.clamp(energies, min=_LOG_FLOOR).log()


def _mono_rows(audio: torch.Tensor, what: str) -> torch.Tensor:
    if not isinstance(audio, torch.Tensor) or audio.dim() not in (1, 2) or (audio.dim() == 2 and audio.shape[0] != 1):
        shape = tuple(audio.shape) if isinstance(audio, torch.Tensor) else type(audio).__name__
        raise ValueError(f"{what}: expected one mono clip [M] or [1, M], got {shape}")
    return audio.reshape(1, -1)


def kaldi_fbank(audio_16k: torch.Tensor, num_mel_bins: int = 80, sample_rate: int = 16000) -> torch.Tensor:
    """[M] or [1, M] in [-1, 1] -> [F, D] (torchaudio kaldi.fbank(num_mel_bins, dither=0,
    sample_frequency) on the unscaled float waveform)."""
    x = _mono_rows(audio_16k, "kaldi_fbank")
    check_signal(x, "kaldi_fbank input", min_samples=_frame_sizes(sample_rate)[0])
    return _fbank(x, sample_rate, num_mel_bins)[0]


def campplus_features(audio_16k: torch.Tensor, num_mel_bins: int = 80, sample_rate: int = 16000) -> torch.Tensor:
    """CAMPPlus input: kaldi_fbank minus its per-bin mean over time -> [F, D]."""
    feats = kaldi_fbank(audio_16k, num_mel_bins, sample_rate)
    return feats - feats.mean(dim=0, keepdim=True)


@dataclass(frozen=True)
class W2VFeatureConfig:
    """The fields of w2v-BERT's `preprocessor_config.json` that the features depend on
    (defaults = facebook/w2v-bert-2.0)."""

    sampling_rate: int = 16000
    num_mel_bins: int = 80
    stride: int = 2  # frames stacked per output row (also the pad-to multiple)
    padding_value: float = 1.0

    @classmethod
    def from_json(cls, path: str | Path) -> "W2VFeatureConfig":
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        kind = raw.get("feature_extractor_type", "SeamlessM4TFeatureExtractor")
        if kind != "SeamlessM4TFeatureExtractor":
            raise ValueError(f"{path}: unsupported feature extractor {kind!r}")
        cfg = cls(sampling_rate=int(raw.get("sampling_rate", cls.sampling_rate)),
                  num_mel_bins=int(raw.get("num_mel_bins", cls.num_mel_bins)),
                  stride=int(raw.get("stride", cls.stride)),
                  padding_value=float(raw.get("padding_value", cls.padding_value)))
        if cfg.stride < 1 or cfg.num_mel_bins < 1 or cfg.sampling_rate < 1:
            raise ValueError(f"{path}: stride, num_mel_bins and sampling_rate must be positive: {cfg}")
        return cfg


def _work_dtype(device: torch.device) -> torch.dtype:
    # the reference extractor computes in float64 numpy; MPS has no float64
    return torch.float32 if device.type == "mps" else torch.float64


def w2v_bert_features(audio_16k: list[torch.Tensor] | torch.Tensor,
                      cfg: W2VFeatureConfig | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips at cfg.sampling_rate (a list of [M_i], or a tensor [M] / [B, M]) ->
    (input_features float32 [B, T, stride*D], attention_mask int32 [B, T]).

    Each clip is normalised over its own frames; the frame axis is padded to a common length
    that is a multiple of `stride` with `padding_value`; a stacked row keeps the mask of its
    last frame, so a half-real row of an odd-length clip is masked but still present (Q8)."""
    cfg = cfg or W2VFeatureConfig()
    if isinstance(audio_16k, torch.Tensor):
        if audio_16k.dim() not in (1, 2):
            raise ValueError(f"w2v_bert_features: expected [M] or [B, M], got {tuple(audio_16k.shape)}")
        clips = list(audio_16k.reshape(-1, audio_16k.shape[-1]))
    else:
        clips = list(audio_16k)
    if not clips:
        raise ValueError("w2v_bert_features: no clips given")
    win, shift, _ = _frame_sizes(cfg.sampling_rate)
    feats = []
    for i, clip in enumerate(clips):
        # the per-bin variance (ddof 1) needs two frames
        check_signal(clip, f"w2v_bert_features clip {i}", min_samples=win + shift)
        if clip.dim() != 1:
            raise ValueError(f"w2v_bert_features clip {i}: expected a 1-D waveform, got {tuple(clip.shape)}")
        x = clip.to(_work_dtype(clip.device))[None] * 32768.0
        f = _fbank(x, cfg.sampling_rate, cfg.num_mel_bins)[0].to(torch.float32)  # [F, D]
        f = f.to(_work_dtype(clip.device))
        f = (f - f.mean(dim=0, keepdim=True)) / torch.sqrt(f.var(dim=0, keepdim=True, correction=1) + 1e-7)
        feats.append(f)
    n_max = max(f.shape[0] for f in feats)
    n_pad = -(-n_max // cfg.stride) * cfg.stride
    device = clips[0].device
    out = torch.full((len(feats), n_pad, cfg.num_mel_bins), cfg.padding_value, dtype=torch.float32, device=device)
    mask = torch.zeros(len(feats), n_pad, dtype=torch.int32, device=device)
    for i, f in enumerate(feats):
        out[i, :f.shape[0]] = f.to(device, torch.float32)
        mask[i, :f.shape[0]] = 1
    out = out.reshape(len(feats), n_pad // cfg.stride, cfg.stride * cfg.num_mel_bins)
    return out, mask[:, cfg.stride - 1::cfg.stride].contiguous()
