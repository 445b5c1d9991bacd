"""Socket types of the pack and the AUDIO conventions. Every payload is a core dataclass, unchanged:

INDEXTTS2_MODEL     model.IndexTTS2Model (the core models behind ComfyUI's model management)
INDEXTTS2_SPEAKER   pipeline.SpeakerPrompt
INDEXTTS2_EMOTION   pipeline.EmotionSpec
INDEXTTS2_DECODING  gpt.DecodingSettings (+ segment size), from IndexTTS2 T2S Settings
INDEXTTS2_SEMANTIC  pipeline.SemanticSegments (every text segment's codes + latents, and the plan)
INDEXTTS2_MEL       pipeline.MelSegments (a mel per segment, and the plan that sizes the audio)

AUDIO inputs: one clip ([1, C, T]); a batch of several clips is refused (say which one to use
with core nodes first). Any channel count (mixed to mono) and any rate (resampled) are accepted;
integer PCM is scaled to [-1, 1]. AUDIO outputs: mono, 22050 Hz, float32 [1, 1, N].
"""

from __future__ import annotations

import torch

from comfy_api.latest import io

from ..indextts2_core.pipeline import DEFAULT_INTERVAL_SILENCE_MS, MAX_INTERVAL_SILENCE_MS
from ..indextts2_core.text import SUPPORTED_LANGUAGES

from .comfy_models import bad_input

Model = io.Custom("INDEXTTS2_MODEL")
Speaker = io.Custom("INDEXTTS2_SPEAKER")
Emotion = io.Custom("INDEXTTS2_EMOTION")
Decoding = io.Custom("INDEXTTS2_DECODING")
Semantic = io.Custom("INDEXTTS2_SEMANTIC")
Mel = io.Custom("INDEXTTS2_MEL")

CATEGORY = "audio/IndexTTS2"
LANGUAGES = ("auto", *SUPPORTED_LANGUAGES)


def seed_input(tooltip: str) -> io.Int.Input:
    return io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True, tooltip=tooltip)


def language_input(what: str, detected: str) -> io.Combo.Input:
    return io.Combo.Input("language", options=list(LANGUAGES), default="auto",
                          tooltip=f"IndexTTS-2.5: {what}'s language ({', '.join(SUPPORTED_LANGUAGES)}; auto detects "
                                  f"it {detected}). IndexTTS-2 reads Chinese and English: keep auto.")


def silence_input(tooltip: str) -> io.Int.Input:
    return io.Int.Input("interval_silence_ms", default=DEFAULT_INTERVAL_SILENCE_MS, min=0, max=MAX_INTERVAL_SILENCE_MS,
                        step=10, tooltip=tooltip)


def audio_dict(waveform: torch.Tensor, sample_rate: int) -> dict:
    """ComfyUI AUDIO from a mono [1, T] / [T] waveform: {"waveform": [1, 1, T] float32 CPU, "sample_rate"}."""
    wav = waveform.detach().float().cpu().reshape(1, 1, -1)
    return {"waveform": wav, "sample_rate": int(sample_rate)}


def audio_parts(node: str, name: str, audio) -> tuple[torch.Tensor, int]:
    """AUDIO → (waveform [C, T] float32 on the CPU, rate) or an error naming node and input."""
    if audio is None:
        raise bad_input(node, name, "no audio connected")
    if not isinstance(audio, dict) or "waveform" not in audio or "sample_rate" not in audio:
        raise bad_input(node, name, "expected an AUDIO value ({'waveform', 'sample_rate'})")
    wav, rate = audio["waveform"], audio["sample_rate"]
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0 or rate != int(rate):
        raise bad_input(node, name, f"sample rate must be a positive whole number of Hz, got {rate!r}")
    if not isinstance(wav, torch.Tensor) or wav.ndim not in (2, 3) or wav.shape[-1] == 0 or wav.shape[-2] == 0:
        raise bad_input(node, name, f"waveform must be [B, C, T] with C, T > 0, got {getattr(wav, 'shape', None)}")
    if wav.ndim == 3:
        if wav.shape[0] != 1:
            raise bad_input(node, name, f"a batch of {wav.shape[0]} clips; give one clip (pick it with a core audio "
                                        "node first)")
        wav = wav[0]
    if not wav.is_floating_point():
        if wav.dtype == torch.bool:
            raise bad_input(node, name, "waveform is boolean, not audio")
        if wav.dtype == torch.uint8:  # 8-bit PCM is unsigned, centred on 128
            wav = wav.float() - 128.0
            scale = 128.0
        else:
            scale = float(torch.iinfo(wav.dtype).max + 1)
        wav = wav.float() / scale  # integer PCM -> [-1, 1)
    return wav.float().cpu(), int(rate)
