"""Text segments, their duration plan, and the three segment stages (spec §3.5–3.7, §4.7–4.10, §6,
§9.3 step 6): text → segments → plan → GPT codes → mels → one waveform with interval silences.

Each stage has a one-segment function (`generate_semantic`, `synthesize_mel`, `vocode`) and a
function over every segment of a plan (`generate_semantic_segments`, `synthesize_mels`,
`vocode_segments`); `synthesize` and the ComfyUI nodes call the latter.

Durations mean the same everywhere (CLI, nodes, `synthesize`):
* `seconds`: the length of the whole output, interval silences included, exact to the sample;
  the speech (seconds minus the silences) is shared among the segments in proportion to their
  text tokens, each segment gets exactly its share (S2M length, then a final cut).
* `target_tokens`: semantic codes of the whole text, shared the same way; mel frames then follow
  the official rule floor(1.72·T) and the silences are added.

Shapes: T codes of one segment, F mel frames of one segment, S samples of one segment, D GPT width.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from ..durations import CODES_PER_SECOND, HOP_LENGTH, SAMPLE_RATE
from ..video_timing import fit_waveform, seconds_to_samples, silence_samples, split_total
from .models import gpt_autocast, module_device, no_autocast, positive_int
from .prompts import EmotionSpec, GPTConditioning, SpeakerPrompt, gpt_conditioning

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (step, total); may raise to interrupt

DEFAULT_MAX_TEXT_TOKENS = 120  # per segment (spec §3.5)
DEFAULT_INTERVAL_SILENCE_MS = 200  # zeros between segments (spec §3.7)
DEFAULT_CFM_STEPS = 25  # spec §6.5
DEFAULT_CFG_RATE = 0.7


@dataclass(frozen=True)
class DurationPlan:
    """What each text segment says and how long it lasts (None: the model decides)."""

    text_ids: tuple[tuple[int, ...], ...]
    tokens: tuple[int | None, ...]  # GPT target codes per segment
    frames: tuple[int | None, ...]  # S2M mel frames per segment (None: floor(1.72·T))
    samples: tuple[int | None, ...]  # samples kept of each vocoded segment (None: all 256·F)
    interval_silence_ms: float = DEFAULT_INTERVAL_SILENCE_MS
    total_samples: int | None = None  # exact output length, silences included (seconds mode)

    def __len__(self) -> int:
        return len(self.text_ids)

    @property
    def gap_samples(self) -> int:
        return silence_samples(self.interval_silence_ms)

    def part(self, i: int) -> "DurationPlan":
        """Segment i alone: what `synthesize` runs at a time."""
        return DurationPlan((self.text_ids[i],), (self.tokens[i],), (self.frames[i],), (self.samples[i],),
                            self.interval_silence_ms, self.samples[i])


@dataclass(frozen=True)
class SemanticResult:
    """GPT output of one segment."""

    text_ids: tuple[int, ...]
    codes: torch.Tensor  # [1, T] int64, stop token removed (T = 0: the GPT stopped at once)
    latent: torch.Tensor  # [1, T, D] second-pass GPT latents (fp32)
    generated: torch.Tensor  # [1, T'] raw generated tokens (incl. the stop token when emitted)
    stopped: bool  # False when max_mel_tokens was reached without a stop token
    emovec: torch.Tensor  # [1, D]


@dataclass(frozen=True)
class SemanticSegments:
    """GPT output of every text segment of one text, and the plan it followed (INDEXTTS2_SEMANTIC)."""

    segments: tuple[SemanticResult, ...]
    plan: DurationPlan

    @property
    def total_samples(self) -> int | None:
        return self.plan.total_samples

    @property
    def num_tokens(self) -> int:
        return sum(int(s.codes.shape[-1]) for s in self.segments)


@dataclass(frozen=True)
class MelResult:
    mel: torch.Tensor  # [1, 80, F] log-mel, prompt frames removed
    frames: int


@dataclass(frozen=True)
class MelSegments:
    """One log-mel per text segment and the lengths to cut the audio to (INDEXTTS2_MEL)."""

    mels: tuple[torch.Tensor, ...]  # [1, 80, F_i]; F_i = 0 for a segment without codes
    samples: tuple[int | None, ...]  # samples kept of each vocoded segment (None: all 256·F_i)
    total_samples: int | None  # exact length of the joined waveform, silences included

    @property
    def num_frames(self) -> int:
        return sum(int(m.shape[-1]) for m in self.mels)


# ---- text and plan ------------------------------------------------------------------------------
def _speakable(piece: str) -> bool:
    return any(ch.isalnum() for ch in piece.replace("\u2581", ""))


def text_segments(tokenizer, text: str, max_tokens: int = DEFAULT_MAX_TEXT_TOKENS) -> list[list[int]]:
    """Text → ids per segment (spec §3); ValueError for empty text or text with nothing to say."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}")
    if not text.strip():
        raise ValueError("text is empty")
    positive_int(max_tokens, "max_text_tokens_per_segment")
    pieces = tokenizer.tokenize(text)
    ids = tokenizer.convert_tokens_to_ids(pieces)
    if not any(_speakable(p) and i != tokenizer.unk_id for p, i in zip(pieces, ids)):
        raise ValueError(f"text has no speakable content (only punctuation, symbols or characters the "
                         f"model does not know): {text[:80]!r}")
    segments = [s for s in tokenizer.split_segments(pieces, max_tokens) if s]
    return [tokenizer.convert_tokens_to_ids(s) for s in segments]


def plan_durations(segments: Sequence[Sequence[int]], seconds: float | None = None,
                   target_tokens: int | None = None,
                   interval_silence_ms: float = DEFAULT_INTERVAL_SILENCE_MS) -> DurationPlan:
    """Text ids per segment + at most one target → the plan (module docstring: what targets mean).

    `seconds`: the whole output, `interval_silence_ms` between segments included; `target_tokens`:
    semantic codes of the whole text, at least one per segment."""
    text_ids = tuple(tuple(int(i) for i in s) for s in segments)
    n = len(text_ids)
    if n == 0 or not all(text_ids):
        raise ValueError("nothing to plan: every text segment needs at least one token")
    if seconds is not None and target_tokens is not None:
        raise ValueError("give either seconds or target_tokens, not both")
    gap = silence_samples(interval_silence_ms)
    natural = (None,) * n
    weights = [len(s) for s in text_ids]
    if target_tokens is not None:
        positive_int(target_tokens, "target_tokens")
        if target_tokens < n:
            raise ValueError(f"target_tokens={target_tokens} is fewer than the {n} text segments "
                             "(each needs at least one token)")
        return DurationPlan(text_ids, tuple(split_total(target_tokens, weights)), natural, natural,
                            interval_silence_ms)
    if seconds is None:
        return DurationPlan(text_ids, natural, natural, natural, interval_silence_ms)
    total = seconds_to_samples(seconds)
    if total - gap * (n - 1) < n * HOP_LENGTH:  # each segment needs at least one mel frame
        shortest = (n * HOP_LENGTH + gap * (n - 1)) / SAMPLE_RATE
        raise ValueError(f"{seconds} s is too short for {n} text segment(s) with {interval_silence_ms} ms of "
                         f"silence between them (at least {shortest:.3f} s)")
    samples = split_total(total - gap * (n - 1), weights, minimum=HOP_LENGTH)
    return DurationPlan(text_ids, tuple(max(1, round(s * CODES_PER_SECOND / SAMPLE_RATE)) for s in samples),
                        tuple(-(-s // HOP_LENGTH) for s in samples), tuple(samples), interval_silence_ms, total)


# ---- GPT ------------------------------------------------------------------------------------------
def generate_semantic(gpt, speaker: SpeakerPrompt, emotion: EmotionSpec | None, text_ids: Sequence[int],
                      settings=None, *, target_tokens: int | None = None,
                      generator: torch.Generator | None = None, progress: Progress | None = None,
                      conditioning: GPTConditioning | None = None) -> SemanticResult:
    """One segment's text ids → semantic codes and GPT latents (spec §4.7–4.10)."""
    from ..gpt import DecodingSettings, generate_codes

    settings = settings if settings is not None else DecodingSettings()
    cond = conditioning or gpt_conditioning(gpt, speaker, emotion)
    ids = torch.as_tensor(list(text_ids), dtype=torch.long)
    with torch.inference_mode():
        with gpt_autocast(gpt):
            res = generate_codes(gpt, cond.conds, ids, settings, target_tokens=target_tokens, generator=generator,
                                 progress=progress)
        if res.codes.shape[-1] == 0:  # stop token first: nothing to say for this segment
            log.warning("the GPT stopped before any code for a segment of %d text tokens; it is left out",
                        len(ids))
            latent = torch.zeros(1, 0, cond.conds.shape[-1])
        else:
            with gpt_autocast(gpt):
                latent = gpt.latents(cond.conds, ids, res.codes)
    if not res.stopped:
        log.warning("segment reached max_mel_tokens=%d without a stop token; all codes kept",
                    settings.max_mel_tokens)
    return SemanticResult(tuple(int(i) for i in text_ids), res.codes, latent.float(), res.sequence,
                          bool(res.stopped), cond.emovec)


def generate_semantic_segments(gpt, speaker: SpeakerPrompt, emotion: EmotionSpec | None, plan: DurationPlan,
                               settings=None, *, generator: torch.Generator | None = None,
                               progress: Progress | None = None, segment_progress: Progress | None = None,
                               conditioning: GPTConditioning | None = None) -> SemanticSegments:
    """Every segment of `plan` → codes and latents (its target tokens, if any). The conditioning is
    computed once; `progress` gets the decode steps, `segment_progress(i, n)` each finished segment."""
    cond = conditioning or gpt_conditioning(gpt, speaker, emotion)
    results = []
    for i, (ids, tokens) in enumerate(zip(plan.text_ids, plan.tokens)):
        results.append(generate_semantic(gpt, speaker, emotion, ids, settings, target_tokens=tokens,
                                         generator=generator, progress=progress, conditioning=cond))
        if segment_progress is not None:
            segment_progress(i + 1, len(plan))
    return SemanticSegments(tuple(results), plan)


# ---- S2M ------------------------------------------------------------------------------------------
def synthesize_mel(s2mel, codec, speaker: SpeakerPrompt, semantic: SemanticResult, *,
                   target_frames: int | None = None, steps: int = DEFAULT_CFM_STEPS,
                   cfg_rate: float = DEFAULT_CFG_RATE, noise: torch.Tensor | None = None,
                   generator: torch.Generator | None = None, progress: Progress | None = None) -> MelResult:
    """One segment's codes + latents → mel (spec §6), fp32 with autocast off; `target_frames`
    imposes the length (else floor(1.72·T)). A segment without codes gives an empty mel."""
    dev = module_device(s2mel)
    if semantic.codes.shape[-1] == 0:
        return MelResult(torch.zeros(1, s2mel.mel_bins, 0, device=dev), 0)
    with torch.inference_mode(), no_autocast(dev):
        code_emb = codec.vq2emb(semantic.codes.to(module_device(codec))).to(dev)
        content = s2mel.content_features(code_emb, semantic.latent.to(dev, torch.float32))
        cond = s2mel.target_condition(content, target_frames)
        mel = s2mel.sample(speaker.prompt_cond, cond, speaker.ref_mel, speaker.style, steps=steps,
                           cfg_rate=cfg_rate, noise=None if noise is None else noise.to(dev),
                           generator=generator, progress=progress)
    return MelResult(mel, mel.shape[-1])


def _s2m_plan(plan: DurationPlan, seconds: float | None, frames: int | None) -> DurationPlan:
    """The semantic plan, or the S2M override: `seconds` (whole output, the plan's silences
    included) or `frames` (mel frames of the whole text's speech), shared by text tokens."""
    if seconds is not None and frames is not None:
        raise ValueError("give either seconds or frames, not both")
    if seconds is not None:
        return plan_durations(plan.text_ids, seconds=seconds, interval_silence_ms=plan.interval_silence_ms)
    if frames is None:
        return plan
    positive_int(frames, "target frames")
    if frames < len(plan):
        raise ValueError(f"target frames {frames} are fewer than the {len(plan)} text segments")
    natural = (None,) * len(plan)
    return dataclasses.replace(plan, frames=tuple(split_total(frames, [len(s) for s in plan.text_ids])),
                               samples=natural, total_samples=None)


def synthesize_mels(s2mel, codec, speaker: SpeakerPrompt, semantic: SemanticSegments, *,
                    seconds: float | None = None, frames: int | None = None, steps: int = DEFAULT_CFM_STEPS,
                    cfg_rate: float = DEFAULT_CFG_RATE, noise: Sequence[torch.Tensor] | None = None,
                    generator: torch.Generator | None = None, progress: Progress | None = None,
                    segment_progress: Progress | None = None) -> MelSegments:
    """Every segment's codes + latents → mel. Length: the semantic plan's (exact when it had target
    seconds, else floor(1.72·T) per segment), unless `seconds` or `frames` override it here.
    `noise`: one CFM starting noise [1, 80, P + F_i] per segment instead of a draw."""
    plan = _s2m_plan(semantic.plan, seconds, frames)
    if noise is not None and len(noise) != len(plan):
        raise ValueError(f"cfm noise holds {len(noise)} tensor(s) for {len(plan)} segment(s)")
    mels = []
    for i, (sem, target) in enumerate(zip(semantic.segments, plan.frames)):
        mels.append(synthesize_mel(s2mel, codec, speaker, sem, target_frames=target, steps=steps, cfg_rate=cfg_rate,
                                   noise=None if noise is None else noise[i], generator=generator,
                                   progress=progress).mel)
        if segment_progress is not None:
            segment_progress(i + 1, len(plan))
    return MelSegments(tuple(mels), plan.samples, plan.total_samples)


# ---- vocoder --------------------------------------------------------------------------------------
def vocode(vocoder, mel: torch.Tensor) -> torch.Tensor:
    """mel [1, 80, F] → waveform [1, 256·F] float32 clamped to [-1, 1]."""
    dev = module_device(vocoder)
    with torch.inference_mode(), no_autocast(dev):
        wav = vocoder(mel.to(dev, torch.float32))
    return wav[:, 0].float().clamp(-1.0, 1.0)


def join_waveforms(waves: Sequence[torch.Tensor], gap_samples: int,
                   total_samples: int | None = None) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Segments [1, S_i] → ([1, N] with `gap_samples` zeros between spoken segments, start of each).

    Empty segments (no codes) are left out, without a gap. With `total_samples` the result has
    exactly that length: the silences take what the speech leaves (equal to `gap_samples` when the
    segments follow a seconds plan), then the end is padded or cut."""
    spoken = [w for w in waves if w.shape[-1]]
    if not spoken:
        raise RuntimeError("the model produced no speech for this text (stop token at the first step of every "
                           "segment); try another seed or other decoding settings")
    gaps = [gap_samples] * (len(spoken) - 1)
    if total_samples is not None and gaps:
        room = total_samples - sum(int(w.shape[-1]) for w in spoken)
        gaps = [g - 1 for g in split_total(room + len(gaps), [1.0] * len(gaps))] if room >= 0 else [0] * len(gaps)
    parts, starts, pos = [], [], 0
    for w in waves:
        if w.shape[-1] and parts:  # a silence before every spoken segment but the first
            gap = gaps.pop(0)
            parts.append(w.new_zeros(*w.shape[:-1], gap))
            pos += gap
        starts.append(pos)
        if w.shape[-1]:
            parts.append(w)
            pos += w.shape[-1]
    joined = torch.cat(parts, dim=-1).float()
    return (joined if total_samples is None else fit_waveform(joined, total_samples)), tuple(starts)


def vocode_segments(vocoder, mels: MelSegments, interval_silence_ms: float = DEFAULT_INTERVAL_SILENCE_MS, *,
                    progress: Progress | None = None) -> torch.Tensor:
    """Every mel → audio, each cut to its planned samples, joined with `interval_silence_ms` of
    silence between spoken segments → [1, N] float32 on the CPU. With a target length
    (`mels.total_samples`) the silences are sized so that the total is exact."""
    waves = []
    for i, (mel, keep) in enumerate(zip(mels.mels, mels.samples)):
        wav = vocode(vocoder, mel).cpu() if mel.shape[-1] else torch.zeros(1, 0)
        waves.append(fit_waveform(wav, keep) if keep is not None and wav.shape[-1] else wav)
        if progress is not None:
            progress(i + 1, len(mels.mels))
    return join_waveforms(waves, silence_samples(interval_silence_ms), mels.total_samples)[0]
