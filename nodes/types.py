"""Socket types of the pack. Every payload is a core dataclass, unchanged:

INDEXTTS2_MODEL    comfy_models.LoadedIndexTTS2 (the core models + one ModelPatcher per stage)
INDEXTTS2_SPEAKER  pipeline.SpeakerPrompt
INDEXTTS2_EMOTION  pipeline.EmotionSpec
INDEXTTS2_SEMANTIC pipeline.SemanticSegments (every text segment's codes + latents, and the plan)
INDEXTTS2_MEL      pipeline.MelSegments (a mel per segment, and the lengths to cut the audio to)
"""

from __future__ import annotations

import torch

from comfy_api.latest import io

Model = io.Custom("INDEXTTS2_MODEL")
Speaker = io.Custom("INDEXTTS2_SPEAKER")
Emotion = io.Custom("INDEXTTS2_EMOTION")
Semantic = io.Custom("INDEXTTS2_SEMANTIC")
Mel = io.Custom("INDEXTTS2_MEL")

CATEGORY = "audio/IndexTTS2"


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
