"""The official IndexTTS2 inference chain as plain functions over the stage modules (spec §9.3).

Each stage function takes only the modules it needs, so a caller (ComfyUI) can load each model
right before its stage; `synthesize` runs the whole chain. Results are small frozen dataclasses.

Shapes: N samples at 22.05 kHz, T_w w2v-BERT frames (50 Hz), P prompt mel frames, T codes of one
segment, F mel frames of one segment (floor(1.72·T) unless a duration is imposed), D GPT width.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (step, total); may raise to interrupt

SAMPLE_RATE = 22050
DEFAULT_MAX_TEXT_TOKENS = 120  # per segment (spec §3.5)
DEFAULT_INTERVAL_SILENCE_MS = 200  # zeros between segments (spec §3.7)
DEFAULT_CFM_STEPS = 25  # spec §6.5
DEFAULT_CFG_RATE = 0.7


@dataclass(frozen=True)
class IndexTTS2Models:
    """Every loaded stage module. `t2e` (Qwen emotion model) is None unless asked for."""

    config: object  # IndexTTS2Config
    tokenizer: object  # text.TextTokenizer
    semantic: torch.nn.Module  # w2v-BERT (17 layers) + stats normalisation
    codec: torch.nn.Module  # MaskGCT semantic codec
    campplus: torch.nn.Module
    gpt: torch.nn.Module  # UnifiedVoice
    s2mel: torch.nn.Module
    vocoder: torch.nn.Module  # BigVGAN
    emotion: object  # emotion.EmotionMatrices
    t2e: object | None = None  # emotion.text_emotion.TextEmotionModel
    device: torch.device = torch.device("cpu")
    dtype: torch.dtype = torch.float32  # GPT compute dtype; everything else is fp32


@dataclass(frozen=True)
class SpeakerPrompt:
    """Conditioning computed once per distinct speaker audio (spec §2.2–2.6, §9.4)."""

    key: str  # content hash of the input audio
    spk_cond_emb: torch.Tensor  # [1, T_w, 1024] normalised w2v-BERT layer 17 (22.05→16 kHz chain)
    s_ref: torch.Tensor  # [1, T_w, 1024] semantic-codec quantised embedding
    ref_mel: torch.Tensor  # [1, 80, P]
    style: torch.Tensor  # [1, 192] CAMPPlus
    prompt_cond: torch.Tensor  # [1, P, C] length-regulated S_ref
    emo_cond_emb: torch.Tensor  # [1, T_w', 1024] the same audio through the emotion chain (soxr → 16 kHz)


@dataclass(frozen=True)
class EmotionSpec:
    """How the emotion vector of the GPT is formed (spec §5).

    mode "speaker": the speaker audio's own emotion; "audio": blend towards `emo_cond_emb` by
    `alpha`; "vector"/"text"/"random": `mix` (Σ w_k · prototype rows) + (1 − Σw) · speaker emotion.
    """

    mode: str
    alpha: float = 1.0
    emo_cond_emb: torch.Tensor | None = None  # [1, T_e, 1024] (mode "audio")
    weights: tuple[float, ...] | None = None  # 8 weights after α scaling (vector modes)
    rows: tuple[int, ...] | None = None  # chosen prototype row per emotion block
    mix: torch.Tensor | None = None  # [1, D]


@dataclass(frozen=True)
class GPTConditioning:
    conds: torch.Tensor  # [1, 34, D] (32 speaker latents + emotion vector, 2 speed rows)
    emovec: torch.Tensor  # [1, D] emotion vector given to the GPT


@dataclass(frozen=True)
class SemanticResult:
    """GPT output of one segment."""

    text_ids: tuple[int, ...]
    codes: torch.Tensor  # [1, T] int64, stop token removed
    latent: torch.Tensor  # [1, T, D] second-pass GPT latents (fp32)
    generated: torch.Tensor  # [1, T'] raw generated tokens (incl. the stop token when emitted)
    stopped: bool  # False when max_mel_tokens was reached without a stop token
    emovec: torch.Tensor  # [1, D]


@dataclass(frozen=True)
class MelResult:
    mel: torch.Tensor  # [1, 80, F] log-mel, prompt frames removed
    frames: int


@dataclass(frozen=True)
class SegmentInfo:
    index: int
    text_ids: tuple[int, ...]
    codes: torch.Tensor  # [1, T]
    stopped: bool
    mel_frames: int
    start_sample: int  # in the joined waveform
    num_samples: int
    seconds: dict = field(default_factory=dict)  # wall time per stage ("gpt", "s2mel", "vocoder")


@dataclass(frozen=True)
class SynthesisResult:
    waveform: torch.Tensor  # [1, N] float32 in [-1, 1] (silences included)
    sample_rate: int
    segments: tuple[SegmentInfo, ...]
    emovec: torch.Tensor | None = None  # [1, D] emotion vector used for every segment
    seconds: dict = field(default_factory=dict)  # wall time per stage, whole call

    def pcm(self) -> torch.Tensor:
        """Official int16-scale float: clamp(32767·x) (spec §9.3 step 6f)."""
        return self.waveform * 32767.0

    def int16(self) -> torch.Tensor:
        """What the official pipeline writes (truncation toward zero)."""
        return self.pcm().to(torch.int16)


def load_models(paths, device="cpu", dtype="fp32", load_t2e: bool = False) -> IndexTTS2Models:
    """Load every stage from resolved `ModelPaths` (GPT in `dtype`, all other stages fp32)."""
    raise NotImplementedError


def encode_speaker(semantic, codec, campplus, s2mel, waveform: torch.Tensor, sample_rate: int,
                   cache=None) -> SpeakerPrompt:
    raise NotImplementedError


def emotion_from_speaker() -> EmotionSpec:
    return EmotionSpec(mode="speaker")


def emotion_from_audio(semantic, waveform: torch.Tensor, sample_rate: int, alpha: float = 1.0,
                       cache=None) -> EmotionSpec:
    raise NotImplementedError


def emotion_from_vector(matrices, speaker: SpeakerPrompt, weights: Sequence[float], alpha: float = 1.0,
                        normalize: bool = False, use_random: bool = False, seed: int | None = None) -> EmotionSpec:
    raise NotImplementedError


def emotion_from_text(t2e, matrices, speaker: SpeakerPrompt, text: str, alpha: float = 1.0,
                      use_random: bool = False, seed: int | None = None) -> EmotionSpec:
    raise NotImplementedError


def emotion_random(matrices, speaker: SpeakerPrompt, weights: Sequence[float], alpha: float = 1.0,
                   seed: int | None = None) -> EmotionSpec:
    raise NotImplementedError


def gpt_conditioning(gpt, speaker: SpeakerPrompt, emotion: EmotionSpec) -> GPTConditioning:
    raise NotImplementedError


def text_segments(tokenizer, text: str, max_tokens: int = DEFAULT_MAX_TEXT_TOKENS) -> list[list[int]]:
    raise NotImplementedError


def generate_semantic(gpt, speaker: SpeakerPrompt, emotion: EmotionSpec, text_ids: Sequence[int],
                      settings=None, *, target_tokens: int | None = None,
                      generator: torch.Generator | None = None, progress: Progress | None = None,
                      conditioning: GPTConditioning | None = None) -> SemanticResult:
    raise NotImplementedError


def synthesize_mel(s2mel, codec, speaker: SpeakerPrompt, semantic: SemanticResult, *,
                   target_frames: int | None = None, steps: int = DEFAULT_CFM_STEPS,
                   cfg_rate: float = DEFAULT_CFG_RATE, noise: torch.Tensor | None = None,
                   generator: torch.Generator | None = None, progress: Progress | None = None) -> MelResult:
    raise NotImplementedError


def vocode(vocoder, mel: torch.Tensor) -> torch.Tensor:
    """mel [1, 80, F] → waveform [1, 256·F] float32 clamped to [-1, 1]."""
    raise NotImplementedError


def synthesize(models: IndexTTS2Models, text: str, speaker_audio: torch.Tensor, speaker_rate: int, *,
               emotion_audio: torch.Tensor | None = None, emotion_rate: int | None = None,
               emotion_alpha: float = 1.0, emotion_vector: Sequence[float] | None = None,
               normalize_emotion_vector: bool = False, emotion_text: str | None = None,
               use_random: bool = False, seconds: float | None = None,
               target_tokens: int | Sequence[int] | None = None, settings=None,
               cfm_steps: int = DEFAULT_CFM_STEPS, cfg_rate: float = DEFAULT_CFG_RATE,
               max_text_tokens_per_segment: int = DEFAULT_MAX_TEXT_TOKENS,
               interval_silence_ms: int = DEFAULT_INTERVAL_SILENCE_MS, seed: int | None = None,
               cfm_noise: Sequence[torch.Tensor] | None = None, cache=None,
               token_progress: Progress | None = None, cfm_progress: Progress | None = None,
               segment_progress: Progress | None = None) -> SynthesisResult:
    """Text + speaker audio (+ one emotion source) → waveform at 22.05 kHz (spec §9.3)."""
    raise NotImplementedError
