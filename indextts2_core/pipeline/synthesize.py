"""The whole official chain in one call (spec §9.3), and the WAV writer.

`synthesize` composes the stage functions of prompts.py and segments.py: prompts once, then each
text segment through GPT → S2M → vocoder before the next one starts (the official order of random
draws; only the segment's waveform is kept), then the join.

Shapes: N samples at 22.05 kHz, T codes and F mel frames of one segment, D GPT width.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from ..durations import SAMPLE_RATE
from .models import IndexTTS2Models, finite, positive_int, sync
from .prompts import (choose_emotion_mode, emotion_from_audio, emotion_from_speaker, emotion_from_vector,
                      encode_speaker, gpt_conditioning)
from .segments import (DEFAULT_CFG_RATE, DEFAULT_CFM_STEPS, DEFAULT_INTERVAL_SILENCE_MS, DEFAULT_MAX_TEXT_TOKENS,
                       Progress, generate_semantic_segments, join_waveforms, plan_durations, synthesize_mels,
                       text_segments, vocode_segments)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentInfo:
    index: int
    text_ids: tuple[int, ...]
    codes: torch.Tensor  # [1, T]
    generated: torch.Tensor  # [1, T'] raw GPT output
    stopped: bool
    mel_frames: int
    start_sample: int  # in the joined waveform (an empty segment: where it would have started)
    num_samples: int
    seconds: dict = field(default_factory=dict)  # wall time per stage ("gpt", "s2mel", "vocoder")
    mel: torch.Tensor | None = None  # [1, 80, F], only with synthesize(keep_mels=True)


@dataclass(frozen=True)
class SynthesisResult:
    waveform: torch.Tensor  # [1, N] float32 in [-1, 1] on the CPU (silences included)
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


class _Timer:
    """Wall time per stage name, GPU work included (synchronised before and after)."""

    def __init__(self, device: torch.device):
        self.device, self.seconds = device, {}

    def __call__(self, name: str, fn):
        sync(self.device)
        t0 = time.perf_counter()
        out = fn()
        sync(self.device)
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0
        return out


def synthesize(models: IndexTTS2Models, text: str, speaker_audio: torch.Tensor, speaker_rate: int, *,
               emotion_audio: torch.Tensor | None = None, emotion_rate: int | None = None,
               emotion_alpha: float = 1.0, emotion_vector: Sequence[float] | None = None,
               normalize_emotion_vector: bool = False, emotion_text: str | None = None,
               use_random: bool = False, seconds: float | None = None, target_tokens: int | None = None,
               settings=None, cfm_steps: int = DEFAULT_CFM_STEPS, cfg_rate: float = DEFAULT_CFG_RATE,
               max_text_tokens_per_segment: int = DEFAULT_MAX_TEXT_TOKENS,
               interval_silence_ms: float = DEFAULT_INTERVAL_SILENCE_MS, seed: int | None = None,
               cfm_noise: Sequence[torch.Tensor] | None = None, cache=None,
               token_progress: Progress | None = None, cfm_progress: Progress | None = None,
               segment_progress: Progress | None = None, keep_mels: bool = False) -> SynthesisResult:
    """Text + speaker audio (+ at most one emotion source) → waveform at 22.05 kHz (spec §9.3).

    Emotion: `emotion_audio` (+ `emotion_rate`, `emotion_alpha`), or `emotion_vector` (8 weights,
    `emotion_alpha` scales them, `normalize_emotion_vector` applies the web UI's normalisation), or
    `emotion_text` (Qwen; `models.t2e` must be loaded); `use_random` picks random prototype rows.
    Duration: natural, `seconds` (the whole output, silences included, exact), or `target_tokens`
    (codes of the whole text); see segments.py. `seed` drives GPT sampling and the CFM noise;
    `cfm_noise` (one tensor per segment) replaces the noise draw.
    """
    from ..gpt import DecodingSettings

    mode = choose_emotion_mode(emotion_audio, emotion_vector, emotion_text, use_random, emotion_alpha,
                               normalize_emotion_vector)
    if settings is None:  # official defaults, capped by a small model's mel position table
        settings = DecodingSettings(max_mel_tokens=min(DecodingSettings.max_mel_tokens, models.gpt.max_codes))
    settings.validate()
    positive_int(cfm_steps, "cfm_steps")
    finite(cfg_rate, "cfg_rate")
    if finite(interval_silence_ms, "interval_silence_ms") < 0:
        raise ValueError(f"interval_silence_ms must be >= 0, got {interval_silence_ms}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if speaker_audio is None:
        raise ValueError("speaker audio is required")
    if mode == "audio" and emotion_rate is None:
        raise ValueError("emotion_audio needs its sample rate (emotion_rate)")
    if mode == "text" and models.t2e is None:
        raise ValueError("emotion_text needs the Qwen emotion model: load_models(..., load_t2e=True)")
    plan = plan_durations(text_segments(models.tokenizer, text, max_text_tokens_per_segment), seconds,
                          target_tokens, interval_silence_ms)
    if cfm_noise is not None and len(cfm_noise) != len(plan):
        raise ValueError(f"cfm_noise holds {len(cfm_noise)} tensor(s) for {len(plan)} segment(s)")
    cache = cache if cache is not None else models.cache
    timed = _Timer(models.device)

    if mode == "text":  # step 1, as upstream: the Qwen model's 8 scores become the emotion vector
        emotion_vector = timed("emotion_text", lambda: models.t2e.scores(emotion_text))
    speaker = timed("speaker", lambda: encode_speaker(
        models.semantic, models.codec, models.campplus, models.s2mel, speaker_audio, speaker_rate,
        mel_config=models.config.s2mel.mel, w2v_features=models.w2v_features, cache=cache))
    if mode == "audio":
        emotion = timed("emotion", lambda: emotion_from_audio(
            models.semantic, emotion_audio, emotion_rate, emotion_alpha, w2v_features=models.w2v_features,
            cache=cache))
    elif mode in ("vector", "text"):
        emotion = emotion_from_vector(models.emotion, speaker, emotion_vector, emotion_alpha,
                                      normalize=normalize_emotion_vector, use_random=use_random, seed=seed,
                                      mode="random" if use_random else mode)
    else:
        emotion = emotion_from_speaker()
    cond = timed("gpt_conditioning", lambda: gpt_conditioning(models.gpt, speaker, emotion))

    generator = torch.Generator(models.device)
    if seed is not None:
        generator.manual_seed(seed)
    else:
        generator.seed()
    waves, infos = [], []
    for i in range(len(plan)):
        seg = _Timer(models.device)
        sem = seg("gpt", lambda: generate_semantic_segments(
            models.gpt, speaker, emotion, plan.part(i), settings, generator=generator, progress=token_progress,
            conditioning=cond))
        mel, wav = torch.zeros(1, models.s2mel.mel_bins, 0), torch.zeros(1, 0)
        if sem.num_tokens:  # a segment the GPT ends at once is left out
            mels = seg("s2mel", lambda: synthesize_mels(
                models.s2mel, models.codec, speaker, sem, steps=cfm_steps, cfg_rate=cfg_rate,
                noise=None if cfm_noise is None else cfm_noise[i:i + 1], generator=generator, progress=cfm_progress))
            wav = seg("vocoder", lambda: vocode_segments(models.vocoder, mels))
            (mel,) = mels.mels
        (res,) = sem.segments
        infos.append(SegmentInfo(i, res.text_ids, res.codes.cpu(), res.generated.cpu(), res.stopped, mel.shape[-1],
                                 0, wav.shape[-1], seg.seconds, mel.cpu() if keep_mels else None))
        waves.append(wav)
        for k, v in seg.seconds.items():
            timed.seconds[k] = timed.seconds.get(k, 0.0) + v
        log.info("segment %d/%d: %d text tokens -> %d codes -> %d frames (%.2f s audio) in %.2f s", i + 1,
                 len(plan), len(res.text_ids), sem.num_tokens, mel.shape[-1], wav.shape[-1] / SAMPLE_RATE,
                 sum(seg.seconds.values()))
        sem = mels = res = mel = None  # keep memory bounded by one segment: only its waveform stays
        if segment_progress is not None:
            segment_progress(i + 1, len(plan))
    waveform, starts = join_waveforms(waves, plan.gap_samples, plan.total_samples)
    infos = tuple(dataclasses.replace(info, start_sample=start) for info, start in zip(infos, starts))
    return SynthesisResult(waveform, SAMPLE_RATE, infos, cond.emovec.float().cpu(), timed.seconds)


def write_wav(path: str | Path, result: SynthesisResult) -> Path:
    """16-bit PCM WAV (official int16 conversion), written to a temporary file then renamed."""
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{id(result)}.part")
    try:
        sf.write(str(tmp), result.int16()[0].numpy(), result.sample_rate, subtype="PCM_16", format="WAV")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
