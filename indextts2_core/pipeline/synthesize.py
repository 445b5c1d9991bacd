"""The whole official chain (spec §9.3), streamed segment by segment, and the WAV writer.

`stream` composes the stage functions of prompts.py, plan.py and segments.py: prompts once, then
each text segment through GPT → S2M → vocoder before the next one starts (the official order of
random draws), yielding that segment's audio with the silence before it. Memory stays bounded by
one segment; `synthesize` collects the stream, `write_wav` writes it to a file as it comes.

Shapes: N samples at 22.05 kHz, T codes and F mel frames of one segment, D GPT width.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import torch

from ..audio import fit_waveform
from ..gpt import DecodingSettings
from ..prompt_cache import FeatureCache
from .models import IndexTTS2Models, NonFiniteError, module_device, sync
from .plan import (DEFAULT_INTERVAL_SILENCE_MS, DEFAULT_MAX_TEXT_TOKENS, DurationPlan, TextSegment, plan_durations,
                   text_segments)
from .prompts import (EmotionSpec, GPTConditioning, SpeakerPrompt, choose_emotion_mode, emotion_from_audio,
                      emotion_from_speaker, emotion_from_vector, encode_speaker, gpt_conditioning)
from .segments import (NoSpeechError, Progress, S2MSettings, generate_semantic, join_waveforms, synthesize_mel,
                       vocode)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentInfo:
    index: int
    text_ids: tuple[int, ...]
    codes: torch.Tensor  # [1, T]
    generated: torch.Tensor  # [1, T'] raw GPT output
    stopped: bool
    mel_frames: int
    start_sample: int  # in the joined waveform
    num_samples: int  # 0: the GPT ended this segment at once (left out, or silence in seconds mode)
    seconds: dict = field(default_factory=dict)  # wall time per stage ("gpt", "s2mel", "vocoder")
    mel: torch.Tensor | None = None  # [1, 80, F], only with keep_mels=True


@dataclass(frozen=True)
class SegmentAudio:
    """One streamed piece: the silence before the segment (`gap` samples) then its speech."""

    info: SegmentInfo
    gap: int
    waveform: torch.Tensor  # [1, S] float32 in [-1, 1] on the CPU (S = 0 when left out)


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


@dataclass(frozen=True)
class Prepared:
    """Everything computed once per call before the segments run."""

    plan: DurationPlan
    speaker: SpeakerPrompt
    emotion: EmotionSpec
    conditioning: GPTConditioning
    seconds: dict  # wall time of the preparation stages


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


def prepare(models: IndexTTS2Models, text: str, speaker_audio: torch.Tensor, speaker_rate: int, *,
            emotion_audio: torch.Tensor | None = None, emotion_rate: int | None = None,
            emotion_alpha: float = 1.0, emotion_vector: Sequence[float] | None = None,
            normalize_emotion_vector: bool = False, emotion_text: str | None = None, use_random: bool = False,
            seconds: float | None = None, target_tokens: int | None = None,
            max_text_tokens_per_segment: int = DEFAULT_MAX_TEXT_TOKENS,
            interval_silence_ms: float = DEFAULT_INTERVAL_SILENCE_MS, seed: int | None = None,
            cache: FeatureCache | None = None, language: str | None = None,
            text_normalization: bool = True, segments: Sequence[TextSegment] | None = None) -> Prepared:
    """Plan, speaker prompt, emotion and GPT conditioning of one call (arguments: `synthesize`).
    `segments`: `text_segments` of this text with these settings when the caller already made them."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64):
        raise ValueError(f"seed must be an integer from 0 to 2**64 - 1, got {seed!r}")
    mode = choose_emotion_mode(emotion_audio, emotion_vector, emotion_text, use_random, emotion_alpha,
                               normalize_emotion_vector)
    if mode == "audio" and emotion_rate is None:
        raise ValueError("emotion_audio needs its sample rate (emotion_rate)")
    if mode == "text" and models.t2e is None:
        raise ValueError("emotion_text needs the Qwen emotion model: load_models(..., load_t2e=True)")
    if segments is None:
        segments = text_segments(models.tokenizer, text, max_text_tokens_per_segment, language, text_normalization)
    plan = plan_durations(segments, models.timing,
                          seconds=seconds, target_tokens=target_tokens, interval_silence_ms=interval_silence_ms,
                          max_codes=models.gpt.max_codes)
    timed = _Timer(module_device(models.gpt))
    if mode == "text":  # step 1, as upstream: the Qwen model's 8 scores become the emotion vector
        emotion_vector = timed("emotion_text", lambda: models.t2e.scores(emotion_text, seed=seed))
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
    return Prepared(plan, speaker, emotion, cond, timed.seconds)


def stream(models: IndexTTS2Models, prepared: Prepared, *, decoding: DecodingSettings = DecodingSettings(),
           s2m: S2MSettings = S2MSettings(), seed: int | None = None, token_progress: Progress | None = None,
           cfm_progress: Progress | None = None, keep_mels: bool = False) -> Iterator[SegmentAudio]:
    """Each segment of `prepared.plan` through GPT → S2M → vocoder, in order (segment i's audio is
    final before segment i+1 starts). `seed` drives GPT sampling and the flow-matching noise."""
    plan = prepared.plan
    device = module_device(models.gpt)
    generator = torch.Generator(device)
    if seed is not None:
        generator.manual_seed(seed)
    else:
        generator.seed()
    spoken = 0
    for i in range(len(plan)):  # the same silences as join_waveforms
        timed = _Timer(device)
        sem = timed("gpt", lambda: generate_semantic(
            models.gpt, prepared.speaker, prepared.emotion, plan.text_ids[i], decoding, target_tokens=plan.tokens[i],
            generator=generator, progress=token_progress, conditioning=prepared.conditioning, lang=plan.lang(i)))
        mel, wav = torch.zeros(1, models.s2mel.mel_bins, 0), torch.zeros(1, 0)
        if sem.codes.shape[-1]:  # a segment the GPT ends at once is left out
            mel = timed("s2mel", lambda: synthesize_mel(
                models.s2mel, models.codec, prepared.speaker, sem, target_frames=plan.frames[i], settings=s2m,
                generator=generator, progress=cfm_progress))
            wav = timed("vocoder", lambda: vocode(models.vocoder, mel).cpu())
            if plan.samples[i] is not None:
                wav = fit_waveform(wav, plan.samples[i])
        elif plan.samples[i] is not None:  # seconds mode: its planned time stays, as silence
            wav = torch.zeros(1, plan.samples[i])
        gap = plan.silence_samples if spoken and wav.shape[-1] else 0
        info = SegmentInfo(i, plan.text_ids[i], sem.codes.cpu(), sem.generated.cpu(), sem.stopped, mel.shape[-1], 0,
                           wav.shape[-1], timed.seconds, mel.cpu() if keep_mels else None)
        log.info("segment %d/%d: %d text tokens -> %d codes -> %d frames (%.2f s audio) in %.2f s", i + 1,
                 len(plan), len(sem.text_ids), sem.codes.shape[-1], mel.shape[-1],
                 models.timing.seconds(wav.shape[-1]), sum(timed.seconds.values()))
        spoken += bool(wav.shape[-1])
        yield SegmentAudio(info, gap, wav)
    if not spoken:
        raise NoSpeechError()


def synthesize(models: IndexTTS2Models, text: str, speaker_audio: torch.Tensor, speaker_rate: int, *,
               decoding: DecodingSettings = DecodingSettings(), s2m: S2MSettings = S2MSettings(),
               seed: int | None = None, token_progress: Progress | None = None, cfm_progress: Progress | None = None,
               segment_progress: Progress | None = None, keep_mels: bool = False, **request) -> SynthesisResult:
    """Text + speaker audio (+ at most one emotion source) → waveform at 22.05 kHz (spec §9.3).

    `request` (see `prepare`): emotion from `emotion_audio` (+ `emotion_rate`, `emotion_alpha`), or
    `emotion_vector` (8 weights scaled by `emotion_alpha`; `normalize_emotion_vector` applies the web
    UI's normalisation), or `emotion_text` (Qwen; `models.t2e` must be loaded); `use_random` picks
    random prototype rows. Duration: natural, `seconds` (the whole output, silences included,
    exact) or `target_tokens` (codes of the whole text); see plan.py. `cache` reuses prompt features.
    """
    prepared = prepare(models, text, speaker_audio, speaker_rate, seed=seed, **request)
    waves, infos, seconds = [], [], dict(prepared.seconds)
    for piece in stream(models, prepared, decoding=decoding, s2m=s2m, seed=seed, token_progress=token_progress,
                        cfm_progress=cfm_progress, keep_mels=keep_mels):
        waves.append(piece.waveform)
        infos.append(piece.info)
        for k, v in piece.info.seconds.items():
            seconds[k] = seconds.get(k, 0.0) + v
        if segment_progress is not None:
            segment_progress(piece.info.index + 1, len(prepared.plan))
    waveform, starts = join_waveforms(waves, prepared.plan.silence_samples, prepared.plan.total_samples)
    return SynthesisResult(waveform, models.timing.sample_rate,
                           tuple(dataclasses.replace(info, start_sample=s) for info, s in zip(infos, starts)),
                           prepared.conditioning.emovec.float().cpu(), seconds)


# ---- output file -----------------------------------------------------------------------------------
def check_output_path(path: str | Path, create_folder: bool = False) -> Path:
    """Refuse, before any synthesis, what `write_wav` must not replace or cannot write: a folder, a
    special file (device, FIFO, socket), a missing (unless `create_folder`) or read-only folder."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"output {path} is a folder; give a .wav file name")
    if path.exists() or path.is_symlink():
        mode = path.stat().st_mode if path.exists() else 0
        if not stat.S_ISREG(mode):
            raise ValueError(f"output {path} exists and is not a regular file (a device, FIFO, socket or broken "
                             "link); give a regular .wav file path")
    folder = path.parent if str(path.parent) else Path(".")
    if create_folder and not folder.exists():
        folder.mkdir(parents=True)
    if not folder.is_dir():
        raise ValueError(f"output folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"output folder {folder} is not writable")
    return path


def write_wav(path: str | Path, audio: SynthesisResult | Iterable[SegmentAudio], sample_rate: int | None = None,
              total_samples: int | None = None) -> int:
    """16-bit PCM WAV with the official int16 conversion (clamp(32767·x), truncation), from a result or
    streamed as the segments come (padded or cut to `total_samples` when given). Written to a
    temporary file in the same folder, renamed at the end; returns the samples written.
    Non-finite audio is refused: nothing is written."""
    import soundfile as sf

    path = check_output_path(path)
    if isinstance(audio, SynthesisResult):
        sample_rate, pieces = audio.sample_rate, [audio.waveform]
    else:
        if sample_rate is None:
            raise ValueError("write_wav: give the sample rate of streamed audio")
        pieces = (w for piece in audio for w in (torch.zeros(1, piece.gap), piece.waveform))
    tmp = path.with_name(f".indextts2-{os.getpid()}-{secrets.token_hex(4)}.part")  # short: any valid name fits
    written = 0
    try:
        with sf.SoundFile(str(tmp), "w", samplerate=sample_rate, channels=1, subtype="PCM_16", format="WAV") as f:
            for wav in pieces:
                if total_samples is not None:
                    wav = wav[..., :max(0, total_samples - written)]
                if wav.shape[-1]:
                    f.write(_int16(wav).numpy())
                    written += wav.shape[-1]
            if total_samples is not None and written < total_samples:
                f.write(torch.zeros(total_samples - written, dtype=torch.int16).numpy())
                written = total_samples
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)
        except OSError as cleanup:  # never hide the real error behind this one
            log.warning("could not remove the temporary file %s: %s", tmp, cleanup)
        raise
    return written


def _int16(waveform: torch.Tensor) -> torch.Tensor:
    if not bool(torch.isfinite(waveform).all()):
        raise NonFiniteError("the audio holds NaN or Inf samples; nothing was written")
    return (waveform.reshape(-1).float().clamp(-1.0, 1.0) * 32767.0).to(torch.int16)
