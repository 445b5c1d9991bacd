"""Socket types of the pack and the two payloads that span several text segments.

INDEXTTS2_MODEL carries `comfy_models.LoadedIndexTTS2`; INDEXTTS2_SPEAKER and INDEXTTS2_EMOTION
carry the core's `SpeakerPrompt` / `EmotionSpec` unchanged. A text is split into segments by the
T2S node, so the semantic and mel payloads hold one core result per segment plus the duration
plan (per segment: GPT tokens, mel frames, exact samples; and the exact total, when a target is set).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from comfy_api.latest import io

Model = io.Custom("INDEXTTS2_MODEL")
Speaker = io.Custom("INDEXTTS2_SPEAKER")
Emotion = io.Custom("INDEXTTS2_EMOTION")
Semantic = io.Custom("INDEXTTS2_SEMANTIC")
Mel = io.Custom("INDEXTTS2_MEL")

CATEGORY = "audio/IndexTTS2"


@dataclass(frozen=True)
class SemanticSegments:
    """INDEXTTS2_SEMANTIC: GPT output for every text segment of one text."""

    segments: tuple  # indextts2_core.pipeline.SemanticResult per segment
    plan: tuple  # per segment (target tokens | None, mel frames | None, exact samples | None)
    total_samples: int | None  # exact output length when a target was set, else None
    speaker_key: str  # content hash of the speaker audio the codes were generated for

    @property
    def num_tokens(self) -> int:
        return sum(int(s.codes.shape[-1]) for s in self.segments)


@dataclass(frozen=True)
class MelSegments:
    """INDEXTTS2_MEL: one log-mel [1, 80, F_i] per segment, and the sample lengths to cut them to."""

    mels: tuple  # torch.Tensor [1, 80, F_i]
    exact_samples: tuple  # per segment: int (cut the vocoded segment to it) or None
    total_samples: int | None  # exact length of the joined waveform, or None

    def frames(self) -> int:
        return sum(int(m.shape[-1]) for m in self.mels)


def audio_dict(waveform: torch.Tensor, sample_rate: int) -> dict:
    """ComfyUI AUDIO from a mono [1, T] / [T] waveform: {"waveform": [1, 1, T] float32 CPU, "sample_rate"}."""
    wav = waveform.detach().float().cpu().reshape(1, 1, -1)
    return {"waveform": wav, "sample_rate": int(sample_rate)}


def audio_parts(node: str, name: str, audio) -> tuple[torch.Tensor, int]:
    """AUDIO → (waveform [C, T] of the first batch item, rate) or an error naming node and input."""
    from .comfy_models import bad_input

    if audio is None:
        raise bad_input(node, name, "no audio connected")
    if not isinstance(audio, dict) or "waveform" not in audio or "sample_rate" not in audio:
        raise bad_input(node, name, "expected an AUDIO value ({'waveform', 'sample_rate'})")
    wav = audio["waveform"]
    if not isinstance(wav, torch.Tensor) or wav.ndim not in (2, 3) or wav.shape[-1] == 0:
        raise bad_input(node, name, f"waveform must be [B, C, T] with T > 0, got {getattr(wav, 'shape', None)}")
    if wav.ndim == 3:
        wav = wav[0]  # one prompt: the first item of a batch
    return wav.float().cpu(), int(audio["sample_rate"])
