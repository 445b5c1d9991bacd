"""Speaker and emotion prompts from a waveform at any rate and channel count, in the official
order (spec §2.2, quirk Q6):

speaker: mono -> soxr-HQ to 22 050 Hz (whole clip) -> keep the first 15 s -> sinc resample to
         16 kHz (torchaudio-equivalent) for w2v-BERT and CAMPPlus.
emotion: mono -> soxr-HQ straight to 16 kHz -> keep the first 15 s.

So when the emotion prompt is the speaker clip, its 16 kHz signal differs slightly from the
speaker's: two resampling chains, as upstream.

Shapes: C channels, T input samples, N samples at 22.05 kHz, M samples at 16 kHz.
"""

from __future__ import annotations

import logging
import math

import torch

from .fbank import fbank_frames
from .io import check_sample_rate, check_signal, to_mono, validate_waveform
from .resample import resample, resample_hq

log = logging.getLogger(__name__)

MEL_RATE = 22050  # S2M mel / vocoder domain
SEMANTIC_RATE = 16000  # w2v-BERT and CAMPPlus
MAX_PROMPT_SECONDS = 15.0
MIN_PROMPT_SECONDS = 0.25  # shorter speaker / emotion audio is refused: too little for usable conditioning
MIN_PROMPT_RATE = 4000  # below this a recording cannot carry speech (a corrupt header, say)
# Front-end floor (below MIN_PROMPT_SECONDS, for the stage functions): two 25 ms / 10 ms fbank frames
# at 16 kHz, since w2v-BERT normalises each bin by its variance over frames.
MIN_FEATURE_FRAMES = 2


def check_prompt_audio(waveform, sample_rate, what: str) -> None:
    """ValueError unless `waveform` is a usable prompt: a finite, non-silent clip of at least
    MIN_PROMPT_SECONDS at a rate of at least MIN_PROMPT_RATE."""
    if waveform is None:
        raise ValueError(f"{what}: no audio given")
    _, sr = _mono_checked(waveform, sample_rate, what)
    seconds = waveform.shape[-1] / sr
    if seconds < MIN_PROMPT_SECONDS:
        raise ValueError(f"{what} is too short: {seconds:.3f} s; at least {MIN_PROMPT_SECONDS} s is needed "
                         "(3-15 s of clean speech works best)")


def _mono_checked(waveform: torch.Tensor, sample_rate, what: str) -> tuple[torch.Tensor, float]:
    sr = check_sample_rate(sample_rate, what)
    if sr < MIN_PROMPT_RATE:
        raise ValueError(f"{what}: sample rate {sample_rate} Hz is too low for speech (at least {MIN_PROMPT_RATE} "
                         "Hz); is the file's header right?")
    if not isinstance(waveform, torch.Tensor):
        raise ValueError(f"{what}: expected a torch.Tensor waveform, got {type(waveform).__name__}")
    check_signal(waveform, what, allow_silence=True)  # empty / dtype / NaN before mixing
    # the official chains resample the whole clip, then keep 15 s; a second more of input than that
    # is far beyond the resamplers' filter support, so cutting here keeps a long file cheap
    head = math.ceil((MAX_PROMPT_SECONDS + 1.0) * sr)
    mono = to_mono(waveform[..., :head]).to(torch.float32)
    validate_waveform(mono, sr, what)  # silence after mixing (L = -R)
    if fbank_frames(round(mono.shape[-1] * SEMANTIC_RATE / sr), SEMANTIC_RATE) < MIN_FEATURE_FRAMES:
        raise ValueError(f"{what}: too short ({mono.shape[-1] / sr:.3f} s) for any features")
    return mono, sr


def cut_seconds(wav: torch.Tensor, sample_rate: int, max_seconds: float, what: str) -> torch.Tensor:
    """Keep the first int(max_seconds * sample_rate) samples of [1, T], logging when it cuts."""
    limit = int(max_seconds * sample_rate)
    if wav.shape[-1] > limit:
        log.info("%s is %.2f s long; using its first %g s", what, wav.shape[-1] / sample_rate, max_seconds)
        wav = wav[..., :limit]
    return wav


def prepare_speaker_prompt(waveform: torch.Tensor, sample_rate, *, max_seconds: float = MAX_PROMPT_SECONDS,
                           mel_rate: int = MEL_RATE, semantic_rate: int = SEMANTIC_RATE
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """[T], [C, T] or [1, C, T] at any rate -> (audio_22k [1, N], audio_16k [1, M]) float32 on the
    input's device."""
    if not max_seconds > 0:
        raise ValueError(f"speaker prompt: max_seconds must be positive, got {max_seconds}")
    mono, sr = _mono_checked(waveform, sample_rate, "speaker prompt")
    audio_22k = cut_seconds(resample_hq(mono, sr, mel_rate), mel_rate, max_seconds, "speaker prompt")
    audio_16k = resample(audio_22k, mel_rate, semantic_rate)
    return audio_22k, audio_16k


def prepare_emotion_prompt(waveform: torch.Tensor, sample_rate, *, max_seconds: float = MAX_PROMPT_SECONDS,
                           semantic_rate: int = SEMANTIC_RATE) -> torch.Tensor:
    """[T], [C, T] or [1, C, T] at any rate -> audio_16k [1, M] float32 on the input's device."""
    if not max_seconds > 0:
        raise ValueError(f"emotion prompt: max_seconds must be positive, got {max_seconds}")
    mono, sr = _mono_checked(waveform, sample_rate, "emotion prompt")
    return cut_seconds(resample_hq(mono, sr, semantic_rate), semantic_rate, max_seconds, "emotion prompt")
