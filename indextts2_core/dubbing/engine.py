"""Timeline dubbing: a script + named voices → one track, every line fitted to its slot natively
(exact codes at T2S, exact frames at S2M) and placed at its exact start sample.

Per line: its text pieces become segments; every segment is first generated at its natural
length (the GPT decides), which measures the line; timeline.fit_cue decides codes and frames;
segments whose codes change are generated again with exactly that many codes; S2M makes exactly
the planned frames; the vocoded segments are cut to their planned samples and joined with the
line's silences and pauses. Lines are placed by timeline.place.

Results are cached by content (explicit `cache`, bounded in bytes, CPU tensors): a line's natural
codes by (model, voice, emotion, text, decoding settings, seed), its audio additionally by slot
and fit settings, so editing one line regenerates that line only, and moving a line in time
redoes its fit but not its natural run. Each line's seed is derived from the run's seed and the
line's content, not from its position.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Sequence

import torch

from ..audio import fit_waveform
from ..gpt import DecodingSettings
from ..pipeline import (DEFAULT_INTERVAL_SILENCE_MS, DEFAULT_MAX_TEXT_TOKENS, EmotionSpec, IndexTTS2Models,
                        MelRequest, S2MSettings, SemanticRequest, SemanticResult, SpeakerPrompt, TextSegment,
                        check_finite, emotion_from_audio, emotion_from_speaker, emotion_from_text, emotion_from_vector,
                        generate_semantic_batch, gpt_conditioning, synthesize_mel_batch, text_segments, vocode)
from ..pipeline.models import module_device
from ..prompt_cache import FeatureCache
from ..text.tiktoken_tokenizer import LANGUAGES
from .script import Cue, CueEmotion, Pause, Script, to_srt
from .timeline import CueFit, FitError, FitSettings, fit_cue, natural_samples, place

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Voice:
    name: str
    speaker: SpeakerPrompt
    audio: tuple[torch.Tensor, int] | None = None  # the clip, for {emotion_audio: name}


@dataclass(frozen=True)
class VoiceSet:
    """Named voices (names match case-insensitively); `default` speaks lines without [Name]."""

    voices: tuple[Voice, ...]
    default: str | None = None

    def __post_init__(self):
        names = [v.name.casefold() for v in self.voices]
        if len(set(names)) != len(names):
            raise ValueError(f"voice names must be unique (ignoring case): {[v.name for v in self.voices]}")
        if self.default is not None and self.default.casefold() not in names:
            raise ValueError(f"the default voice {self.default!r} is not in the set {[v.name for v in self.voices]}")

    def find(self, name: str | None) -> Voice | None:
        key = (name or self.default or (self.voices[0].name if len(self.voices) == 1 else "")).casefold()
        return next((v for v in self.voices if v.name.casefold() == key), None)

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.voices]


@dataclass(frozen=True)
class DubSettings:
    fit: FitSettings = FitSettings()
    overlap: str = "error"
    total_seconds: float | None = None  # the track's length (e.g. the video's); None: until the last line ends
    line_gap_ms: float = 300  # between script lines (no times)
    interval_silence_ms: float = DEFAULT_INTERVAL_SILENCE_MS  # between segments of one line
    max_text_tokens_per_segment: int = DEFAULT_MAX_TEXT_TOKENS
    language: str | None = None  # IndexTTS-2.5: the script's language ("auto" when None)
    decoding: DecodingSettings = DecodingSettings()
    s2m: S2MSettings = S2MSettings()
    seed: int = 0
    batch_size: int = 8  # lines decoded and synthesised together (the same results as one by one)

    def __post_init__(self):
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or not 1 <= self.batch_size <= 64:
            raise ValueError(f"batch_size must be an integer from 1 to 64, got {self.batch_size!r}")


@dataclass(frozen=True)
class CueReport:
    number: int
    line: int
    speaker: str
    text: str
    slot: tuple[float, float] | None  # seconds, as written
    start_sample: int  # where the line starts on the track
    end_sample: int
    natural_seconds: float
    seconds: float
    tokens: int
    frames: int
    ratio: float
    decision: str
    warnings: tuple[str, ...] = ()
    cached: bool = False
    language: str | None = None  # IndexTTS-2.5: the language the line was read in (auto detects it per line)


@dataclass(frozen=True)
class DubResult:
    waveform: torch.Tensor  # [1, N] float32 in [-1, 1] on the CPU
    sample_rate: int
    cues: tuple[CueReport, ...]
    cue_audio: tuple[torch.Tensor, ...]  # each line's audio [1, S_i]
    srt: str | None  # the placed times as SRT when any line moved or left its slot

    def report(self) -> str:
        rows = [f"{len(self.cues)} line(s), {self.waveform.shape[-1] / self.sample_rate:.3f} s "
                f"({self.waveform.shape[-1]} samples at {self.sample_rate} Hz)"]
        for c in self.cues:
            slot = f"{c.slot[0]:.3f}–{c.slot[1]:.3f}" if c.slot else "—"
            placed = f"{c.start_sample / self.sample_rate:.3f}–{c.end_sample / self.sample_rate:.3f}"
            rows.append(f"#{c.number} (line {c.line}) [{c.speaker}] slot {slot} → {placed} "
                        f"(sample {c.start_sample}); natural {c.natural_seconds:.3f} s, ratio {c.ratio:.3f}; "
                        f"{c.tokens} tokens, {c.frames} frames; {c.decision}" + (" [cached]" if c.cached else "")
                        + (f" [{c.language}]" if c.language else ""))
            rows.extend(f"    ! {w}" for w in c.warnings)
        return "\n".join(rows)


def _language(segments) -> str | None:
    rows = {s.lang for s in segments if s.lang is not None}
    return "/".join(LANGUAGES[r] for r in sorted(rows)) if rows else None


@dataclass
class _Line:
    """A cue on its way through the engine."""

    cue: Cue
    voice: Voice | None  # None: a line holding only pauses
    emotion: EmotionSpec
    segments: list[TextSegment]  # in order
    gaps: list[int]  # samples before each segment (0 for the first unless the line opens with a pause)
    tail: int  # samples after the last segment (a closing pause)
    seed: int
    slot: int | None = None  # the cue's samples (None: a script line, natural length)
    natural_key: str = ""  # the natural runs: voice, text, emotion, decoding, seed
    cue_key: str = ""  # the finished audio: + slot, fit and S2M settings

    def generator(self, device, phase: int, segment: int) -> torch.Generator:
        """Each segment's own draws, by phase (natural run, forced run, S2M noise): a segment gets the
        same codes and noise whatever it is batched with."""
        return torch.Generator(device).manual_seed((self.seed + 1000003 * phase + 7919 * segment) % 2**63)


def dub(models: IndexTTS2Models, script: Script, voices: VoiceSet, settings: DubSettings = DubSettings(), *,
        default_emotion: EmotionSpec | None = None, cache: FeatureCache | None = None,
        line_progress: Progress | None = None, step_progress: Progress | None = None) -> DubResult:
    """The whole track (module docstring). Every line is checked before anything is generated."""
    timing = models.timing
    lines = [_prepare(models, cue, voices, settings, default_emotion, script.timed) for cue in script.cues]
    spoken = [ln for ln in lines if ln.segments]
    audio: dict[int, _LineAudio] = {}
    for ln in spoken:  # finished lines come from the cache as they are
        made = None if cache is None else cache.get(ln.cue_key)
        if made is not None:
            audio[id(ln)] = dataclasses.replace(made, cached=True)
    if line_progress is not None:
        line_progress(len(audio), len(spoken))
    todo = [ln for ln in spoken if id(ln) not in audio]
    for start in range(0, len(todo), settings.batch_size):  # a batch of lines through every stage
        group = todo[start:start + settings.batch_size]
        for ln, made in zip(group, _make_lines(models, group, settings, cache, step_progress)):
            audio[id(ln)] = made
            if cache is not None:
                cache.put(ln.cue_key, made)
        if line_progress is not None:
            line_progress(len(audio), len(spoken))

    wanted, lengths, wheres, clips = [], [], [], []
    for ln in lines:
        where = f"cue {ln.cue.number} (line {ln.cue.line})"
        if ln.segments:
            wav = audio[id(ln)].waveform
        else:  # a script line holding only pauses: a silence between lines
            wav = torch.zeros(1, ln.tail)
        wanted.append(None if ln.cue.start is None else timing.samples(ln.cue.start))
        lengths.append(wav.shape[-1])
        wheres.append(where)
        clips.append(wav)
    placements = place(wanted, lengths, wheres, settings.overlap, gap=timing.silence_samples(settings.line_gap_ms))
    end = max(p.start + p.length for p in placements)
    if script.timed:
        end = max(end, max(timing.samples(c.end) for c in script.cues))
    total = timing.samples(settings.total_seconds) if settings.total_seconds is not None else end
    track = torch.zeros(1, total)
    reports, moved = [], False
    for ln, p, wav in zip(lines, placements, clips):
        stop = min(total, p.start + p.length)
        if stop > p.start:
            track[:, p.start:stop] += wav[:, : stop - p.start]
        if not ln.segments:
            continue
        made = audio[id(ln)]
        fit = made.fit
        notes = list(fit.warnings) + p.notes
        if p.start + p.length > total:
            notes.append(f"cut at the end of the track ({(p.start + p.length - total) / timing.sample_rate:.3f} s lost)")
        slot = (float(ln.cue.start), float(ln.cue.end)) if ln.cue.start is not None else None
        moved |= p.moved or (slot is not None and (fit.length != timing.samples(ln.cue.end) - timing.samples(ln.cue.start)))
        reports.append(CueReport(ln.cue.number, ln.cue.line, ln.voice.name, ln.cue.text, slot, p.start,
                                 p.start + p.length, made.natural_seconds, p.length / timing.sample_rate, made.tokens,
                                 sum(fit.frames), fit.ratio, fit.decision, tuple(notes), made.cached,
                                 _language(ln.segments)))
    track = track.clamp(-1.0, 1.0)  # overlaid lines may add up past full scale
    srt = None
    if moved or not script.timed:
        srt = to_srt([(r.number, Fraction(r.start_sample, timing.sample_rate), Fraction(r.end_sample, timing.sample_rate),
                       r.text) for r in reports])
    return DubResult(track, timing.sample_rate, tuple(reports), tuple(audio[id(ln)].waveform for ln in spoken), srt)


# ---- preparation (every check happens here, before any generation) --------------------------------
def _prepare(models: IndexTTS2Models, cue: Cue, voices: VoiceSet, settings: DubSettings,
             default_emotion: EmotionSpec | None, timed: bool) -> _Line:
    where = f"cue {cue.number} (line {cue.line})"
    timing = models.timing
    if not cue.has_speech:
        tail = sum(timing.samples(p.seconds) for p in cue.pieces)
        return _Line(cue, None, emotion_from_speaker(), [], [], tail, 0)
    voice = voices.find(cue.speaker)
    if voice is None:
        who = f"[{cue.speaker}]" if cue.speaker else "a line without [Name] (no default voice)"
        raise FitError(f"{where}: no voice for {who}; the voice set has {voices.names}")
    segments, gaps, pending = [], [], 0
    silence = timing.silence_samples(settings.interval_silence_ms)
    for piece in cue.pieces:
        if isinstance(piece, Pause):
            pending += timing.samples(piece.seconds)
            continue
        try:
            ids = text_segments(models.tokenizer, piece, settings.max_text_tokens_per_segment, settings.language)
        except ValueError as e:
            raise FitError(f"{where}: {e}") from None
        for k, seg in enumerate(ids):
            gaps.append(pending if k == 0 else silence)
            segments.append(seg)
            pending = 0
    emotion = _emotion(models, cue.emotion, voice, voices, default_emotion, where, settings.seed)
    content = _digest(voice.speaker.key, repr(cue.pieces), _emotion_key(emotion), settings.decoding,
                      settings.max_text_tokens_per_segment, settings.interval_silence_ms, id(models.gpt))
    seed = int(_digest(settings.seed, content)[:15], 16)
    slot = timing.samples(cue.end) - timing.samples(cue.start) if timed else None
    natural_key = f"natural:{content}:{seed}"
    return _Line(cue, voice, emotion, segments, gaps, pending, seed, slot, natural_key,
                 f"cue:{natural_key}:{slot}:{settings.fit}:{settings.s2m}")


def _emotion(models: IndexTTS2Models, spec: CueEmotion | None, voice: Voice, voices: VoiceSet,
             default: EmotionSpec | None, where: str, seed: int) -> EmotionSpec:
    try:
        if spec is None:
            return default if default is not None else emotion_from_speaker()
        if spec.weights is not None:
            return emotion_from_vector(models.emotion, voice.speaker, spec.weights, spec.alpha)
        if spec.text is not None:
            if models.t2e is None:
                raise ValueError("{emotion: ...} needs the text-emotion model (load it with the models)")
            return emotion_from_text(models.t2e, models.emotion, voice.speaker, spec.text, 1.0, seed=seed)
        source = voices.find(spec.audio)
        if source is None or source.audio is None:
            raise ValueError(f"no recording named {spec.audio!r} in the voice set ({voices.names})")
        return emotion_from_audio(models.semantic, *source.audio, 1.0, w2v_features=models.w2v_features)
    except ValueError as e:
        raise FitError(f"{where}: {e}") from None


# ---- a batch of lines -----------------------------------------------------------------------------
@dataclass(frozen=True)
class _LineAudio:
    waveform: torch.Tensor  # [1, S] on the CPU
    fit: CueFit
    natural_seconds: float
    tokens: int  # codes behind the audio
    cached: bool = False


def _make_lines(models: IndexTTS2Models, lines: list[_Line], settings: DubSettings, cache: FeatureCache | None,
                progress: Progress | None) -> list[_LineAudio]:
    """Natural runs (cached by content), fits, forced runs, S2M and the vocoder for a batch of lines;
    the GPT and S2M each run once per phase over every segment of the batch."""
    timing, device = models.timing, module_device(models.gpt)
    conds = [gpt_conditioning(models.gpt, ln.voice.speaker, ln.emotion) for ln in lines]

    def requests(rows):  # rows: (line index, segment index, target codes or None, phase)
        return [SemanticRequest(conds[k], lines[k].segments[i].ids, target, lines[k].generator(device, phase, i),
                                lines[k].segments[i].lang) for k, i, target, phase in rows]

    naturals: list[tuple[SemanticResult, ...] | None] = [None if cache is None else cache.get(ln.natural_key)
                                                          for ln in lines]
    missing = [(k, i, None, 0) for k, ln in enumerate(lines) if naturals[k] is None for i in range(len(ln.segments))]
    made = iter(generate_semantic_batch(models.gpt, requests(missing), settings.decoding, progress=progress))
    for k, ln in enumerate(lines):
        if naturals[k] is None:
            naturals[k] = tuple(next(made).to("cpu") for _ in ln.segments)
            if cache is not None:
                cache.put(ln.natural_key, naturals[k])

    fits = []
    for ln, natural in zip(lines, naturals):
        codes = [r.codes.shape[-1] for r in natural]
        fits.append(fit_cue(codes, sum(ln.gaps) + ln.tail, ln.slot, timing, settings.fit,
                            f"cue {ln.cue.number} (line {ln.cue.line})", [len(seg.ids) for seg in ln.segments]))
    forced = [(k, i, fit.tokens[i], 1) for k, fit in enumerate(fits) for i in range(len(fit.tokens))
              if fit.tokens[i] is not None]
    finals = [list(natural) for natural in naturals]
    for (k, i, _, _), sem in zip(forced, generate_semantic_batch(models.gpt, requests(forced), settings.decoding,
                                                                 progress=progress)):
        finals[k][i] = sem

    rows = [(k, i) for k, ln in enumerate(lines) for i in range(len(ln.segments))]
    mels = synthesize_mel_batch(models.s2mel, models.codec, [MelRequest(
        lines[k].voice.speaker, finals[k][i], fits[k].frames[i], generator=lines[k].generator(device, 2, i))
        for k, i in rows], settings.s2m, progress=progress)
    waves: dict[tuple[int, int], torch.Tensor] = {}
    for (k, i), mel in zip(rows, mels):
        samples = fits[k].samples[i]  # a segment the GPT said nothing for keeps its time, silent
        waves[k, i] = fit_waveform(vocode(models.vocoder, mel).cpu(), samples) if mel.shape[-1] else torch.zeros(1, samples)
    out = []
    for k, ln in enumerate(lines):
        parts = []
        for i in range(len(ln.segments)):
            parts += [torch.zeros(1, ln.gaps[i]), waves[k, i]]
        parts.append(torch.zeros(1, ln.tail))
        codes = [r.codes.shape[-1] for r in naturals[k]]
        natural_seconds = (sum(natural_samples(codes, timing)) + sum(ln.gaps) + ln.tail) / timing.sample_rate
        out.append(_LineAudio(check_finite(torch.cat(parts, dim=-1), f"cue {ln.cue.number} (line {ln.cue.line})"),
                              fits[k], natural_seconds, sum(sem.codes.shape[-1] for sem in finals[k])))
    return out


def _emotion_key(spec: EmotionSpec) -> str:
    parts = [spec.mode, spec.alpha, spec.weights, spec.rows]
    parts += [_tensor_digest(t) for t in (spec.emo_cond_emb, spec.mix) if t is not None]
    return repr(parts)


def _tensor_digest(t: torch.Tensor) -> str:
    data = t.detach().float().cpu().contiguous().reshape(-1)
    return hashlib.sha256(data.numpy().tobytes()).hexdigest()[:16]


def _digest(*parts) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def voice_set(named: Sequence[tuple[str, SpeakerPrompt, tuple[torch.Tensor, int] | None]],
              default: str | None = None) -> VoiceSet:
    """A VoiceSet from (name, speaker prompt, clip) rows."""
    return VoiceSet(tuple(Voice(n, s, a) for n, s, a in named), default)


__all__ = ["CueReport", "DubResult", "DubSettings", "Voice", "VoiceSet", "dub", "voice_set"]
