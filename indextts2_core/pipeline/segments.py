"""The three segment stages (spec §4.7–4.10, §6, §9.3 step 6): GPT codes → mels → one waveform with
the plan's silences. Each stage has a one-segment function (`generate_semantic`, `synthesize_mel`,
`vocode`) and a function over every segment of a plan (`generate_semantic_segments`,
`synthesize_mels`, `vocode_segments`); `synthesize` and the ComfyUI nodes call the latter.

Shapes: T codes of one segment, F mel frames of one segment, S samples of one segment, D GPT width.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from numbers import Real
from typing import Callable, Sequence

import torch

from ..audio import fit_waveform
from ..gpt import DecodingSettings, UnifiedVoice
from ..gpt.generate import generate_codes_batch
from ..gpt.model25 import UnifiedVoice25
from ..s2mel import S2Mel
from ..s2mel.flow_matching import DEFAULT_CFG_RATE, DEFAULT_STEPS
from ..semantic.codec import SemanticCodec
from ..semantic.codec25 import EnhancedCodec
from ..timing import mel_frames_for_content
from ..vocoder import BigVGAN
from ..vocoder.bigvgan import vocode_chunked
from .models import check_finite, gpt_autocast, module_device, moved, no_autocast
from .plan import DurationPlan, replan_s2m
from .prompts import EmotionSpec, GPTConditioning, SpeakerPrompt, gpt_conditioning

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (step, total); may raise to interrupt
MAX_S2M_FRAMES = 16384  # prompt + target frames of one S2M call: the official DiT position table


class NoSpeechError(RuntimeError):
    def __init__(self, segments: str = "every segment"):
        super().__init__(f"the model produced no speech (stop token at the first step of {segments}); try another "
                         "seed, other decoding settings or a target length")


@dataclass(frozen=True)
class S2MSettings:
    """Flow-matching settings (official defaults, spec §6.5)."""

    steps: int = DEFAULT_STEPS
    cfg_rate: float = DEFAULT_CFG_RATE
    duration_factor: float = 1.0  # natural lengths × this (the official 2.5 duration_factor; exact targets win)

    def __post_init__(self):
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or not 1 <= self.steps <= 1000:
            raise ValueError(f"flow-matching steps must be an integer between 1 and 1000, got {self.steps!r}")
        if isinstance(self.cfg_rate, bool) or not isinstance(self.cfg_rate, Real) or not 0 <= self.cfg_rate <= 100:
            raise ValueError(f"cfg rate must be between 0 and 100, got {self.cfg_rate!r}")
        if isinstance(self.duration_factor, bool) or not isinstance(self.duration_factor, Real) or \
                not 0.1 <= self.duration_factor <= 10:
            raise ValueError(f"duration_factor must be between 0.1 and 10 (official range 0.5-2), got "
                             f"{self.duration_factor!r}")


@dataclass(frozen=True)
class SemanticResult:
    """GPT output of one segment."""

    text_ids: tuple[int, ...]
    codes: torch.Tensor  # [1, T] int64, stop token removed (T = 0: the GPT stopped at once)
    latent: torch.Tensor | None  # [1, T, D] second-pass GPT latents (fp32); None: IndexTTS-2.5, or no codes
    generated: torch.Tensor  # [1, T'] raw generated tokens (incl. the stop token when emitted)
    stopped: bool  # False when max_mel_tokens was reached without a stop token
    emovec: torch.Tensor  # [1, D]
    lang: int | None = None  # the 2.5 segment's language row

    def to(self, device) -> "SemanticResult":
        return moved(self, device)


@dataclass(frozen=True)
class SemanticSegments:
    """GPT output of every text segment of one text, and the plan it followed (INDEXTTS2_SEMANTIC)."""

    segments: tuple[SemanticResult, ...]
    plan: DurationPlan

    @property
    def num_tokens(self) -> int:
        return sum(int(s.codes.shape[-1]) for s in self.segments)

    def to(self, device) -> "SemanticSegments":
        return SemanticSegments(tuple(s.to(device) for s in self.segments), self.plan)


@dataclass(frozen=True)
class MelSegments:
    """One log-mel per text segment and the plan that sizes the audio (INDEXTTS2_MEL)."""

    mels: tuple[torch.Tensor, ...]  # [1, 80, F_i]; F_i = 0 for a segment without codes
    plan: DurationPlan  # samples kept per segment, silences, exact total

    @property
    def num_frames(self) -> int:
        return sum(int(m.shape[-1]) for m in self.mels)

    def to(self, device) -> "MelSegments":
        return MelSegments(tuple(m.to(device) for m in self.mels), self.plan)


# ---- GPT ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SemanticRequest:
    """One segment to generate: its conditioning, text ids, target codes (None: the model stops)
    and the generator its draws come from."""

    conditioning: GPTConditioning
    text_ids: tuple[int, ...]
    target_tokens: int | None = None
    generator: torch.Generator | None = None
    lang: int | None = None  # the 2.5 segment's language row


def generate_semantic(gpt: UnifiedVoice | UnifiedVoice25, speaker: SpeakerPrompt, emotion: EmotionSpec | None,
                      text_ids: Sequence[int], settings: DecodingSettings = DecodingSettings(), *,
                      target_tokens: int | None = None, generator: torch.Generator | None = None,
                      progress: Progress | None = None, conditioning: GPTConditioning | None = None,
                      lang: int | None = None) -> SemanticResult:
    """One segment's text ids → semantic codes and, for IndexTTS-2, the GPT latents of the second
    pass (spec §4.7–4.10; 2.5 has no latent pass). `lang`: the 2.5 segment's language row."""
    cond = conditioning or gpt_conditioning(gpt, speaker, emotion)
    request = SemanticRequest(cond, tuple(int(i) for i in text_ids), target_tokens, generator, lang)
    return generate_semantic_batch(gpt, [request], settings, progress=progress)[0]


def generate_semantic_batch(gpt: UnifiedVoice | UnifiedVoice25, requests: Sequence[SemanticRequest],
                            settings: DecodingSettings = DecodingSettings(), *,
                            progress: Progress | None = None) -> list[SemanticResult]:
    """Several segments (each its own conditioning, text, target and generator) decoded as one
    batch; request i gets exactly the codes it gets alone (each draws from its own generator)."""
    if settings.max_mel_tokens > gpt.max_codes:  # the official default 1500 exceeds a small model's table
        settings = dataclasses.replace(settings, max_mel_tokens=gpt.max_codes)
    ids = [torch.as_tensor(list(r.text_ids), dtype=torch.long) for r in requests]
    langs = None if all(r.lang is None for r in requests) else [r.lang for r in requests]
    out = []
    with torch.inference_mode():
        with gpt_autocast(gpt):
            results = generate_codes_batch(gpt, [r.conditioning.conds for r in requests], ids, settings,
                                           [r.target_tokens for r in requests], [r.generator for r in requests],
                                           progress=progress, langs=langs)
        for r, text, res in zip(requests, ids, results):
            latent = None
            if res.codes.shape[-1] == 0:  # stop token first: nothing to say for this segment
                log.warning("the GPT stopped before any code for a segment of %d text tokens", len(text))
            elif isinstance(gpt, UnifiedVoice):
                with gpt_autocast(gpt):
                    latent = check_finite(gpt.latents(r.conditioning.conds, text, res.codes),
                                          "the GPT (latent pass)").float()
            if not res.stopped:
                log.warning("segment reached max_mel_tokens=%d without a stop token; all codes kept",
                            settings.max_mel_tokens)
            out.append(SemanticResult(r.text_ids, res.codes, latent, res.sequence, bool(res.stopped),
                                      r.conditioning.emovec, r.lang))
    return out


def generate_semantic_segments(gpt: UnifiedVoice | UnifiedVoice25, speaker: SpeakerPrompt, emotion: EmotionSpec | None,
                               plan: DurationPlan, settings: DecodingSettings = DecodingSettings(), *, generator: torch.Generator | None = None,
                               progress: Progress | None = None, segment_progress: Progress | None = None,
                               conditioning: GPTConditioning | None = None) -> SemanticSegments:
    """Every segment of `plan` → codes and latents (its target tokens, if any). The conditioning is
    computed once; `progress` gets the decode steps, `segment_progress(i, n)` each finished segment."""
    cond = conditioning or gpt_conditioning(gpt, speaker, emotion)
    results = []
    for i, (ids, tokens) in enumerate(zip(plan.text_ids, plan.tokens)):
        results.append(generate_semantic(gpt, speaker, emotion, ids, settings, target_tokens=tokens,
                                         generator=generator, progress=progress, conditioning=cond,
                                         lang=plan.lang(i)))
        if segment_progress is not None:
            segment_progress(i + 1, len(plan))
    return SemanticSegments(tuple(results), plan)


# ---- S2M ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MelRequest:
    """One segment for S2M: its voice, codes (+ latents), length (None: the official rule for its
    codes, stretched by the settings' duration_factor), starting noise or the generator to draw it."""

    speaker: SpeakerPrompt
    semantic: SemanticResult
    target_frames: int | None = None
    noise: torch.Tensor | None = None
    generator: torch.Generator | None = None


def synthesize_mel(s2mel: S2Mel, codec: SemanticCodec | EnhancedCodec, speaker: SpeakerPrompt,
                   semantic: SemanticResult, *, target_frames: int | None = None,
                   settings: S2MSettings = S2MSettings(), noise: torch.Tensor | None = None,
                   generator: torch.Generator | None = None, progress: Progress | None = None) -> torch.Tensor:
    """One segment's codes (+ latents) → mel [1, 80, F] (spec §6; 2.5 §7), fp32 with autocast off;
    `target_frames` imposes the length (else the official rule for its codes, stretched by
    `settings.duration_factor`). A segment without codes gives an empty mel. `noise` [1, 80, P + F]
    replaces the draw of the starting noise."""
    request = MelRequest(speaker, semantic, target_frames, noise, generator)
    return synthesize_mel_batch(s2mel, codec, [request], settings, progress=progress)[0]


def synthesize_mel_batch(s2mel: S2Mel, codec: SemanticCodec | EnhancedCodec, requests: Sequence[MelRequest],
                         settings: S2MSettings = S2MSettings(), *, progress: Progress | None = None) -> list[torch.Tensor]:
    """Several segments (each its own voice, length and noise) through S2M as one batch; segment i
    gets its `synthesize_mel` alone, to float rounding."""
    dev = module_device(s2mel)
    mels: list[torch.Tensor | None] = [None] * len(requests)
    batch, conds = [], []
    with torch.inference_mode(), no_autocast(dev):
        for i, r in enumerate(requests):
            if r.semantic.codes.shape[-1] == 0:
                mels[i] = torch.zeros(1, s2mel.mel_bins, 0, device=dev)
                continue
            prompt_frames = r.speaker.ref_mel.shape[-1]
            if r.target_frames is not None and prompt_frames + r.target_frames > MAX_S2M_FRAMES:
                raise ValueError(f"a segment of {r.target_frames} mel frames with a {prompt_frames}-frame voice prompt "
                                 f"exceeds what S2M can make at once ({MAX_S2M_FRAMES} frames); split the text into "
                                 "more segments")
            codes = r.semantic.codes.to(module_device(codec))
            if isinstance(codec, EnhancedCodec):  # IndexTTS-2.5: the codec decodes 25 Hz codes to 50 Hz features
                content = codec.decode(codes).to(dev, torch.float32)
            else:
                content = s2mel.content_features(codec.vq2emb(codes).to(dev), r.semantic.latent.to(dev, torch.float32))
            frames = r.target_frames or mel_frames_for_content(content.shape[1], settings.duration_factor)
            batch.append(i)
            conds.append(s2mel.target_condition(content, frames))
        if batch:
            spk = [requests[i].speaker.to(dev) for i in batch]
            noises = [None if requests[i].noise is None else requests[i].noise.to(dev) for i in batch]
            made = s2mel.sample_batch([s.prompt_cond for s in spk], conds, [s.ref_mel for s in spk],
                                      [s.style for s in spk], steps=settings.steps, cfg_rate=settings.cfg_rate,
                                      noises=noises, generators=[requests[i].generator for i in batch],
                                      progress=progress)
            for i, mel in zip(batch, made):
                mels[i] = check_finite(mel, "S2M (flow matching)")
    return mels


def synthesize_mels(s2mel: S2Mel, codec: SemanticCodec, speaker: SpeakerPrompt, semantic: SemanticSegments, *,
                    seconds: Real | None = None, frames: int | None = None, settings: S2MSettings = S2MSettings(),
                    noise: Sequence[torch.Tensor] | None = None, generator: torch.Generator | None = None,
                    progress: Progress | None = None, segment_progress: Progress | None = None) -> MelSegments:
    """Every segment's codes + latents → mel. Length: the semantic plan's (exact when it had target
    seconds, else the official rule per segment), unless `seconds` or `frames` override it here.
    `noise`: one CFM starting noise [1, 80, P + F_i] per segment instead of a draw."""
    plan = replan_s2m(semantic.plan, seconds, frames)
    if noise is not None and len(noise) != len(plan):
        raise ValueError(f"cfm noise holds {len(noise)} tensor(s) for {len(plan)} segment(s)")
    mels = []
    for i, (sem, target) in enumerate(zip(semantic.segments, plan.frames)):
        mels.append(synthesize_mel(s2mel, codec, speaker, sem, target_frames=target, settings=settings,
                                   noise=None if noise is None else noise[i], generator=generator,
                                   progress=progress))
        if segment_progress is not None:
            segment_progress(i + 1, len(plan))
    return MelSegments(tuple(mels), plan)


# ---- vocoder --------------------------------------------------------------------------------------
def vocode(vocoder: BigVGAN, mel: torch.Tensor) -> torch.Tensor:
    """mel [1, 80, F] → waveform [1, 256·F] float32 clamped to [-1, 1]; a long mel is vocoded in
    overlapping chunks (equal to the whole to float rounding, memory bounded by the chunk)."""
    dev = module_device(vocoder)
    with torch.inference_mode(), no_autocast(dev):
        wav = check_finite(vocode_chunked(vocoder, mel.to(dev, torch.float32)), "the BigVGAN vocoder")
    return wav[:, 0].float().clamp(-1.0, 1.0)


def join_waveforms(waves: Sequence[torch.Tensor], gap_samples: int,
                   total_samples: int | None = None) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Segments [1, S_i] → ([1, N] with `gap_samples` zeros before every non-empty segment but the
    first, start of each). Empty segments (no speech, natural or token plans) are left out with
    their silence. With `total_samples` the end is padded or cut to exactly that length."""
    if not any(w.shape[-1] for w in waves):
        raise NoSpeechError()
    parts, starts, pos = [], [], 0
    for w in waves:
        if w.shape[-1] and parts:
            parts.append(w.new_zeros(*w.shape[:-1], gap_samples))
            pos += gap_samples
        starts.append(pos)
        if w.shape[-1]:
            parts.append(w)
            pos += w.shape[-1]
    joined = torch.cat(parts, dim=-1).float()
    return (joined if total_samples is None else fit_waveform(joined, total_samples)), tuple(starts)


def vocode_segments(vocoder: BigVGAN, mels: MelSegments, *, progress: Progress | None = None) -> torch.Tensor:
    """Every mel → audio, each cut to its planned samples, joined with the plan's silences between
    spoken segments → [1, N] float32 on the CPU (exactly the plan's total when it has one)."""
    waves = []
    for i, (mel, keep) in enumerate(zip(mels.mels, mels.plan.samples)):
        wav = vocode(vocoder, mel).cpu() if mel.shape[-1] else torch.zeros(1, 0)
        if keep is not None:  # seconds plan: exactly the planned samples (silence where the GPT said nothing)
            wav = fit_waveform(wav, keep) if wav.shape[-1] else torch.zeros(1, keep)
        waves.append(wav)
        if progress is not None:
            progress(i + 1, len(mels.mels))
    return join_waveforms(waves, mels.plan.silence_samples, mels.plan.total_samples)[0]
