"""The official IndexTTS2 inference chain as plain functions over the stage modules (spec §9.3).

Each stage function takes only the modules it needs, so a caller (ComfyUI) can load each model
right before its stage; `synthesize` runs the whole chain, one text segment at a time. Results are
small frozen dataclasses. Not responsible for files (model_files.py) or for writing audio.

Shapes: N samples at 22.05 kHz, T_w w2v-BERT frames (50 Hz), P prompt mel frames, T codes of one
segment, F mel frames of one segment (floor(1.72·T) unless a duration is imposed), D GPT width.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch

from .durations import CODES_PER_SECOND, HOP_LENGTH, SAMPLE_RATE, seconds_to_samples

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (step, total); may raise to interrupt

DEFAULT_MAX_TEXT_TOKENS = 120  # per segment (spec §3.5)
DEFAULT_INTERVAL_SILENCE_MS = 200  # zeros between segments (spec §3.7)
DEFAULT_CFM_STEPS = 25  # spec §6.5
DEFAULT_CFG_RATE = 0.7
MIN_PROMPT_SECONDS = 0.25  # shorter speaker / emotion audio is refused (no usable conditioning)
DTYPES = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
          "half": torch.float16, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}


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
    w2v_features: object | None = None  # audio.W2VFeatureConfig of the w2v-BERT folder
    cache: object | None = None  # prompt_cache.FeatureCache shared by calls with these models


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
    generated: torch.Tensor  # [1, T'] raw GPT output
    stopped: bool
    mel_frames: int
    start_sample: int  # in the joined waveform
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


# ---- devices, dtypes, loading -----------------------------------------------------------------
def resolve_device(device) -> torch.device:
    """A usable torch device or ValueError (unknown name, or no such accelerator here)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"unknown device {device!r} (use cpu, cuda, cuda:N or mps)") from e
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise ValueError(f"device {device!r} requested but CUDA is not available here")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(f"device {device!r} requested but MPS is not available here")
    if dev.type == "xpu" and not (hasattr(torch, "xpu") and torch.xpu.is_available()):
        raise ValueError(f"device {device!r} requested but no XPU is available here")
    if dev.type not in ("cpu", "cuda", "mps", "xpu"):
        raise ValueError(f"unsupported device {device!r} (use cpu, cuda, cuda:N or mps)")
    return dev


def resolve_dtype(dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype.lower() in DTYPES:
        return DTYPES[dtype.lower()]
    raise ValueError(f"unknown dtype {dtype!r} (use fp32, fp16 or bf16)")


def load_models(paths, device="cpu", dtype="fp32", load_t2e: bool = False) -> IndexTTS2Models:
    """Load every stage from `ModelPaths` (or a models folder). The GPT runs in `dtype`;
    w2v-BERT, codec, CAMPPlus, S2M and BigVGAN stay fp32 as the official pipeline (spec §9.5)."""
    from .audio import W2VFeatureConfig
    from .config import IndexTTS2Config
    from .emotion import EmotionMatrices
    from .gpt import load_gpt
    from .model_files import ModelPaths, load_tokenizer
    from .prompt_cache import FeatureCache
    from .s2mel import load_s2mel
    from .semantic.codec import load_semantic_codec
    from .semantic.w2v_bert import load_semantic_encoder
    from .speaker.campplus import load_campplus
    from .vocoder import load_bigvgan

    dev, dt = resolve_device(device), resolve_dtype(dtype)
    if not isinstance(paths, ModelPaths):
        paths = ModelPaths.locate(paths)
    paths.require(include_t2e=load_t2e)
    cfg = IndexTTS2Config.from_yaml(paths.config)
    t0 = time.perf_counter()
    t2e = None
    if load_t2e:
        from .emotion import TextEmotionModel

        t2e = TextEmotionModel.load(paths.qwen_dir, dev)
    models = IndexTTS2Models(
        config=cfg, tokenizer=load_tokenizer(paths.bpe),
        semantic=load_semantic_encoder(paths.w2v_bert_dir, paths.w2v_stats, dev),
        codec=load_semantic_codec(paths.semantic_codec, cfg.semantic_codec, dev),
        campplus=load_campplus(paths.campplus, dev),
        gpt=load_gpt(paths.gpt, cfg, dev, dt),
        s2mel=load_s2mel(paths.s2mel, cfg, dev),
        vocoder=load_bigvgan(paths.bigvgan_dir, dev),
        emotion=EmotionMatrices.load(paths.spk_matrix, paths.emo_matrix, cfg.emo_num,
                                     model_dim=cfg.gpt.model_dim).to(dev),
        t2e=t2e, device=dev, dtype=dt,
        w2v_features=W2VFeatureConfig.from_json(paths.w2v_bert_dir / "preprocessor_config.json"),
        cache=FeatureCache(max_items=8),
    )
    log.info("IndexTTS2 models loaded from %s (%s layout) on %s, GPT %s, in %.1f s",
             paths.root, paths.layout, dev, dt, time.perf_counter() - t0)
    return models


def _gpt_autocast(gpt):
    """fp16/bf16 GPT: autocast as the official use_fp16 path (norms and softmax in fp32)."""
    p = next(gpt.parameters())
    if p.dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(p.device.type, dtype=p.dtype)


def _no_autocast(device: torch.device):
    return torch.autocast(device.type, enabled=False) if device.type in ("cuda", "cpu") else contextlib.nullcontext()


def _module_device(module) -> torch.device:
    return next(module.parameters()).device


# ---- prompts ----------------------------------------------------------------------------------
def check_prompt_audio(waveform, sample_rate, what: str) -> None:
    """ValueError unless `waveform` is a usable prompt (finite, not silent, >= MIN_PROMPT_SECONDS)."""
    from .audio import to_mono, validate_waveform
    from .audio.io import check_sample_rate

    if waveform is None:
        raise ValueError(f"{what}: no audio given")
    if not isinstance(waveform, torch.Tensor):
        raise ValueError(f"{what}: expected a waveform tensor, got {type(waveform).__name__}")
    mono = to_mono(waveform)
    seconds = mono.shape[-1] / check_sample_rate(sample_rate, what)
    if seconds < MIN_PROMPT_SECONDS:
        raise ValueError(f"{what} is too short: {seconds:.3f} s; at least {MIN_PROMPT_SECONDS} s is needed "
                         "(3-15 s of clean speech works best)")
    validate_waveform(mono, sample_rate, what)


def _semantic_features(semantic, audio_16k: torch.Tensor, w2v_features=None) -> torch.Tensor:
    from .audio import w2v_bert_features

    feats, mask = w2v_bert_features(audio_16k, w2v_features)
    return semantic(feats, mask)


def _cached(cache, key: str, fn):
    return fn() if cache is None else cache.get_or_compute(key, fn)


def encode_speaker(semantic, codec, campplus, s2mel, waveform: torch.Tensor, sample_rate: int, *,
                   mel_config=None, w2v_features=None, cache=None) -> SpeakerPrompt:
    """Speaker audio ([T], [C, T] or [1, C, T] at any rate) → its conditioning (spec §9.3 step 2).

    `mel_config`: the S2M `MelConfig` (config.s2mel.mel; official values when None)."""
    from .audio import campplus_features, mel_spectrogram, prepare_emotion_prompt, prepare_speaker_prompt
    from .prompt_cache import audio_key

    check_prompt_audio(waveform, sample_rate, "speaker audio")
    if mel_config is None:
        from .config import MelConfig

        mel_config = MelConfig(sr=22050, n_fft=1024, win_length=1024, hop_length=256, n_mels=80, fmin=0.0,
                               fmax=None)  # from the official config.yaml
    key = audio_key(waveform, sample_rate)
    modules = (id(semantic), id(codec), id(campplus), id(s2mel), mel_config)

    def compute() -> SpeakerPrompt:
        audio_22k, audio_16k = prepare_speaker_prompt(waveform, sample_rate)
        spk_cond_emb = _semantic_features(semantic, audio_16k, w2v_features)
        _, s_ref = codec.quantize(spk_cond_emb)
        dev = _module_device(s2mel)
        ref_mel = mel_spectrogram(audio_22k, mel_config).to(dev)
        style = campplus(campplus_features(audio_16k)[None]).to(dev)
        with _no_autocast(dev):
            prompt_cond = s2mel.length_regulator(s_ref.to(dev), ref_mel.shape[-1])
        emo_cond_emb = _cached(cache, _emotion_key(key, semantic), lambda: _semantic_features(
            semantic, prepare_emotion_prompt(waveform, sample_rate), w2v_features))  # shared with emotion_from_audio
        return SpeakerPrompt(key, spk_cond_emb, s_ref, ref_mel, style, prompt_cond, emo_cond_emb)

    return _cached(cache, f"speaker:{key}:{hash(modules)}", compute)


def _emotion_key(audio: str, semantic) -> str:
    return f"emotion:{audio}:{id(semantic)}"


def emotion_from_speaker() -> EmotionSpec:
    """The default: the speaker audio's own emotion (α = 1, spec §5.1)."""
    return EmotionSpec(mode="speaker")


def emotion_from_audio(semantic, waveform: torch.Tensor, sample_rate: int, alpha: float = 1.0, *,
                       w2v_features=None, cache=None) -> EmotionSpec:
    """Emotion reference audio blended with the speaker's by `alpha` (not clamped, spec §5.1)."""
    from .audio import prepare_emotion_prompt
    from .prompt_cache import audio_key

    alpha = _finite(alpha, "emotion alpha")
    check_prompt_audio(waveform, sample_rate, "emotion audio")
    key = _emotion_key(audio_key(waveform, sample_rate), semantic)
    emb = _cached(cache, key, lambda: _semantic_features(semantic, prepare_emotion_prompt(waveform, sample_rate),
                                                         w2v_features))
    return EmotionSpec(mode="audio", alpha=alpha, emo_cond_emb=emb)


def emotion_from_vector(matrices, speaker: SpeakerPrompt, weights: Sequence[float], alpha: float = 1.0,
                        normalize: bool = False, use_random: bool = False, seed: int | None = None,
                        mode: str = "vector") -> EmotionSpec:
    """8 weights (happy, angry, sad, afraid, disgusted, melancholic, surprised, calm) → prototype mix.

    `normalize`: the web UI's bias + cap at 0.8 first; then the official α scaling (clamped to
    [0, 1], 4-decimal truncation); rows picked by the speaker's style, or at random (`use_random`,
    seeded by `seed`)."""
    from .emotion import normalize_webui, scale_vector

    w = normalize_webui(weights) if normalize else list(weights)
    w = scale_vector(w, _finite(alpha, "emotion alpha"))
    rng = random.Random(seed) if use_random else None
    rows = matrices.select_rows(speaker.style, use_random=use_random, rng=rng)
    return EmotionSpec(mode=mode, alpha=1.0, weights=tuple(w), rows=tuple(rows), mix=matrices.mix(w, rows))


def emotion_from_text(t2e, matrices, speaker: SpeakerPrompt, text: str, alpha: float = 1.0,
                      use_random: bool = False, seed: int | None = None) -> EmotionSpec:
    """Qwen text → 8 scores → vector mode (spec §5.3); the README suggests α ≈ 0.6 here."""
    if t2e is None:
        raise ValueError("emotion from text needs the Qwen emotion model: load_models(..., load_t2e=True)")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("emotion text is empty")
    scores = t2e.scores(text)
    return emotion_from_vector(matrices, speaker, scores, alpha, use_random=use_random, seed=seed, mode="text")


def emotion_random(matrices, speaker: SpeakerPrompt, weights: Sequence[float], alpha: float = 1.0,
                   seed: int | None = None) -> EmotionSpec:
    """Vector mode with random prototype rows (official use_random=True)."""
    return emotion_from_vector(matrices, speaker, weights, alpha, use_random=True, seed=seed, mode="random")


def gpt_conditioning(gpt, speaker: SpeakerPrompt, emotion: EmotionSpec) -> GPTConditioning:
    """Speaker latents + emotion vector → the GPT's 34 conditioning rows (spec §4.6, §9.3 step 6a)."""
    from .emotion import vector_emovec

    emotion = emotion or emotion_from_speaker()
    with torch.inference_mode(), _gpt_autocast(gpt):
        latents = gpt.speaker_latents(speaker.spk_cond_emb)
        if emotion.mode == "audio":
            emovec = gpt.merge_emovec(speaker.spk_cond_emb, emotion.emo_cond_emb, emotion.alpha)
        else:  # the speaker audio's own emotion (emotion prompt = speaker prompt, α = 1)
            emovec = gpt.merge_emovec(speaker.spk_cond_emb, speaker.emo_cond_emb, 1.0)
            if emotion.mode != "speaker":
                emovec = vector_emovec(emotion.mix, emotion.weights, emovec)
        conds = gpt.conditioning(latents, emovec)
    return GPTConditioning(conds, emovec)


# ---- text ---------------------------------------------------------------------------------------
def _speakable(piece: str) -> bool:
    return any(ch.isalnum() for ch in piece.replace("\u2581", ""))


def text_segments(tokenizer, text: str, max_tokens: int = DEFAULT_MAX_TEXT_TOKENS) -> list[list[int]]:
    """Text → ids per segment (spec §3); ValueError for empty text or text with nothing to say."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}")
    if not text.strip():
        raise ValueError("text is empty")
    _positive_int(max_tokens, "max_text_tokens_per_segment")
    pieces = tokenizer.tokenize(text)
    ids = tokenizer.convert_tokens_to_ids(pieces)
    if not any(_speakable(p) and i != tokenizer.unk_id for p, i in zip(pieces, ids)):
        raise ValueError(f"text has no speakable content (only punctuation, symbols or characters the "
                         f"model does not know): {text[:80]!r}")
    segments = [s for s in tokenizer.split_segments(pieces, max_tokens) if s]
    return [tokenizer.convert_tokens_to_ids(s) for s in segments]


# ---- GPT, S2M, vocoder ----------------------------------------------------------------------------
def generate_semantic(gpt, speaker: SpeakerPrompt, emotion: EmotionSpec | None, text_ids: Sequence[int],
                      settings=None, *, target_tokens: int | None = None,
                      generator: torch.Generator | None = None, progress: Progress | None = None,
                      conditioning: GPTConditioning | None = None) -> SemanticResult:
    """One segment's text ids → semantic codes and GPT latents (spec §4.7–4.10)."""
    from .gpt import DecodingSettings, generate_codes

    settings = settings if settings is not None else DecodingSettings()
    cond = conditioning or gpt_conditioning(gpt, speaker, emotion)
    ids = torch.as_tensor(list(text_ids), dtype=torch.long)
    with torch.inference_mode():
        with _gpt_autocast(gpt):
            res = generate_codes(gpt, cond.conds, ids, settings, target_tokens=target_tokens, generator=generator,
                                 progress=progress)
        if res.codes.shape[-1] == 0:  # stop token first: nothing to say for this segment
            latent = torch.zeros(1, 0, cond.conds.shape[-1])
        else:
            with _gpt_autocast(gpt):
                latent = gpt.latents(cond.conds, ids, res.codes)
    if not res.stopped:
        log.warning("segment reached max_mel_tokens=%d without a stop token; all codes kept",
                    settings.max_mel_tokens)
    return SemanticResult(tuple(int(i) for i in text_ids), res.codes, latent.float(), res.sequence,
                          bool(res.stopped), cond.emovec)


def synthesize_mel(s2mel, codec, speaker: SpeakerPrompt, semantic: SemanticResult, *,
                   target_frames: int | None = None, steps: int = DEFAULT_CFM_STEPS,
                   cfg_rate: float = DEFAULT_CFG_RATE, noise: torch.Tensor | None = None,
                   generator: torch.Generator | None = None, progress: Progress | None = None) -> MelResult:
    """Codes + latents → mel (spec §6), fp32 with autocast off; `target_frames` imposes the length."""
    dev = _module_device(s2mel)
    with torch.inference_mode(), _no_autocast(dev):
        code_emb = codec.vq2emb(semantic.codes).to(dev)
        content = s2mel.content_features(code_emb, semantic.latent.to(dev, torch.float32))
        cond = s2mel.target_condition(content, target_frames)
        mel = s2mel.sample(speaker.prompt_cond, cond, speaker.ref_mel, speaker.style, steps=steps,
                           cfg_rate=cfg_rate, noise=None if noise is None else noise.to(dev),
                           generator=generator, progress=progress)
    return MelResult(mel, mel.shape[-1])


def vocode(vocoder, mel: torch.Tensor) -> torch.Tensor:
    """mel [1, 80, F] → waveform [1, 256·F] float32 clamped to [-1, 1]."""
    dev = _module_device(vocoder)
    with torch.inference_mode(), _no_autocast(dev):
        wav = vocoder(mel.to(dev, torch.float32))
    return wav[:, 0].float().clamp(-1.0, 1.0)


# ---- the whole chain ------------------------------------------------------------------------------
def _finite(x, what: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        raise ValueError(f"{what} must be a finite number, got {x!r}")
    return float(x)


def _positive_int(x, what: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int) or x <= 0:
        raise ValueError(f"{what} must be a positive integer, got {x!r}")
    return x


def _emotion_choice(emotion_audio, emotion_vector, emotion_text, use_random, emotion_alpha,
                    normalize_emotion_vector) -> str:
    """Exactly one emotion source (or none); contradictory options are refused."""
    given = [n for n, v in (("emotion_audio", emotion_audio), ("emotion_vector", emotion_vector),
                            ("emotion_text", emotion_text)) if v is not None]
    if len(given) > 1:
        raise ValueError(f"give at most one emotion source, got {' and '.join(given)}")
    mode = {"emotion_audio": "audio", "emotion_vector": "vector", "emotion_text": "text"}.get(
        given[0] if given else "", "speaker")
    _finite(emotion_alpha, "emotion_alpha")
    if mode == "speaker" and emotion_alpha != 1.0:
        raise ValueError("emotion_alpha needs an emotion source (emotion audio, vector or text); without one "
                         "the speaker audio's own emotion is used as is")
    if use_random and mode not in ("vector", "text"):
        raise ValueError("use_random (random emotion prototypes) applies to an emotion vector or emotion text only")
    if normalize_emotion_vector and mode != "vector":
        raise ValueError("normalize_emotion_vector applies to an emotion vector only")
    return mode


def plan_durations(segments: list[list[int]], seconds: float | None,
                   target_tokens: int | Sequence[int] | None) -> list[tuple[int | None, int | None, int | None]]:
    """Per segment (GPT target tokens, S2M target frames, exact samples), all None for natural length.

    `seconds`: total speech (silences excluded), shared among segments in proportion to their text
    tokens; each segment gets exactly its share of samples (S2M length + a final trim). `target_tokens`:
    codes per segment (one number for all, or one per segment), then the official 1.72 frames rule."""
    n = len(segments)
    if seconds is not None and target_tokens is not None:
        raise ValueError("give either seconds or target_tokens, not both")
    if target_tokens is not None:
        tokens = [target_tokens] * n if isinstance(target_tokens, int) else list(target_tokens)
        if len(tokens) != n:
            raise ValueError(f"target_tokens lists {len(tokens)} values for {n} text segment(s)")
        return [(_positive_int(t, "target_tokens"), None, None) for t in tokens]
    if seconds is None:
        return [(None, None, None)] * n
    total = seconds_to_samples(_finite(seconds, "seconds"))
    if total < n * HOP_LENGTH:
        raise ValueError(f"{seconds} s is too short for {n} segment(s) (at least {n * HOP_LENGTH / SAMPLE_RATE:.3f} s)")
    weights = [len(s) for s in segments]
    exact = [total * w / sum(weights) for w in weights]
    samples = [int(x) for x in exact]
    for i in sorted(range(n), key=lambda i: samples[i] - exact[i])[: total - sum(samples)]:
        samples[i] += 1  # largest remainders: the shares add up to the total exactly
    plan = []
    for s in samples:
        s = max(s, HOP_LENGTH)
        plan.append((max(1, round(s * CODES_PER_SECOND / SAMPLE_RATE)), -(-s // HOP_LENGTH), s))
    excess = sum(p[2] for p in plan) - total  # only when a tiny share was raised to one frame
    for i in sorted(range(n), key=lambda i: -plan[i][2]):
        if excess <= 0:
            break
        take = min(excess, plan[i][2] - HOP_LENGTH)
        plan[i] = (plan[i][0], -(-(plan[i][2] - take) // HOP_LENGTH), plan[i][2] - take)
        excess -= take
    return plan


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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
               segment_progress: Progress | None = None, keep_mels: bool = False) -> SynthesisResult:
    """Text + speaker audio (+ at most one emotion source) → waveform at 22.05 kHz (spec §9.3).

    Emotion: `emotion_audio` (+ `emotion_rate`, `emotion_alpha`), or `emotion_vector` (8 weights,
    `emotion_alpha` scales them, `normalize_emotion_vector` applies the web UI's normalisation), or
    `emotion_text` (Qwen; `models.t2e` must be loaded); `use_random` picks random prototype rows.
    Duration: natural, `seconds` (total speech, exact), or `target_tokens` (codes per segment).
    `seed` drives GPT sampling and the CFM noise; `cfm_noise` (one tensor per segment) replaces the
    noise draw. Segments are synthesised one at a time; only their waveforms are kept.
    """
    from .gpt import DecodingSettings

    mode = _emotion_choice(emotion_audio, emotion_vector, emotion_text, use_random, emotion_alpha,
                           normalize_emotion_vector)
    if settings is None:  # official defaults, capped by a small model's mel position table
        settings = DecodingSettings(max_mel_tokens=min(DecodingSettings.max_mel_tokens, models.gpt.max_codes))
    settings.validate()
    _positive_int(cfm_steps, "cfm_steps")
    _finite(cfg_rate, "cfg_rate")
    silence_ms = _finite(interval_silence_ms, "interval_silence_ms")
    if silence_ms < 0:
        raise ValueError(f"interval_silence_ms must be >= 0, got {interval_silence_ms}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if speaker_audio is None:
        raise ValueError("speaker audio is required")
    if mode == "audio" and emotion_rate is None:
        raise ValueError("emotion_audio needs its sample rate (emotion_rate)")
    if mode == "text" and models.t2e is None:
        raise ValueError("emotion_text needs the Qwen emotion model: load_models(..., load_t2e=True)")
    segments = text_segments(models.tokenizer, text, max_text_tokens_per_segment)
    plan = plan_durations(segments, seconds, target_tokens)
    if cfm_noise is not None and len(cfm_noise) != len(segments):
        raise ValueError(f"cfm_noise holds {len(cfm_noise)} tensor(s) for {len(segments)} segment(s)")
    cache = cache if cache is not None else models.cache
    dev = models.device
    timings: dict[str, float] = {}

    def timed(name: str, fn):
        _sync(dev)
        t0 = time.perf_counter()
        out = fn()
        _sync(dev)
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0
        return out

    scores = None
    if mode == "text":  # step 1: the Qwen model runs before anything else, as upstream
        scores = timed("emotion_text", lambda: models.t2e.scores(emotion_text))
    speaker = timed("speaker", lambda: encode_speaker(
        models.semantic, models.codec, models.campplus, models.s2mel, speaker_audio, speaker_rate,
        mel_config=models.config.s2mel.mel, w2v_features=models.w2v_features, cache=cache))
    if mode == "audio":
        emotion = timed("emotion", lambda: emotion_from_audio(
            models.semantic, emotion_audio, emotion_rate, emotion_alpha, w2v_features=models.w2v_features,
            cache=cache))
    elif mode in ("vector", "text"):
        weights = emotion_vector if mode == "vector" else scores
        emotion = emotion_from_vector(models.emotion, speaker, weights, emotion_alpha,
                                      normalize=normalize_emotion_vector, use_random=use_random, seed=seed,
                                      mode="random" if use_random else mode)
    else:
        emotion = emotion_from_speaker()
    cond = timed("gpt_conditioning", lambda: gpt_conditioning(models.gpt, speaker, emotion))

    generator = torch.Generator(dev)
    if seed is not None:
        generator.manual_seed(seed)
    else:
        generator.seed()
    silence = torch.zeros(1, int(SAMPLE_RATE * silence_ms / 1000))
    pieces, infos, start = [], [], 0
    for i, (ids, (tokens, frames, exact)) in enumerate(zip(segments, plan)):
        seg_t: dict[str, float] = {}
        t0 = time.perf_counter()
        sem = generate_semantic(models.gpt, speaker, emotion, ids, settings, target_tokens=tokens,
                                generator=generator, progress=token_progress, conditioning=cond)
        _sync(dev)
        seg_t["gpt"] = time.perf_counter() - t0
        if sem.codes.shape[-1] == 0:
            log.warning("segment %d: the GPT stopped before any code; the segment is left out", i + 1)
            mel, wav = MelResult(torch.zeros(1, models.s2mel.mel_bins, 0), 0), torch.zeros(1, 0)
        else:
            t0 = time.perf_counter()
            mel = synthesize_mel(models.s2mel, models.codec, speaker, sem, target_frames=frames, steps=cfm_steps,
                                 cfg_rate=cfg_rate, noise=None if cfm_noise is None else cfm_noise[i],
                                 generator=generator, progress=cfm_progress)
            _sync(dev)
            seg_t["s2mel"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            wav = vocode(models.vocoder, mel.mel).cpu()
            seg_t["vocoder"] = time.perf_counter() - t0
            if exact is not None:
                wav = wav[:, :exact]
        if pieces and silence.shape[-1] and wav.shape[-1]:
            pieces.append(silence)
            start += silence.shape[-1]
        if wav.shape[-1]:
            pieces.append(wav)
        infos.append(SegmentInfo(i, tuple(ids), sem.codes.cpu(), sem.generated.cpu(), sem.stopped, mel.frames,
                                 start, wav.shape[-1], seg_t, mel.mel.cpu() if keep_mels else None))
        start += wav.shape[-1]
        for k, v in seg_t.items():
            timings[k] = timings.get(k, 0.0) + v
        log.info("segment %d/%d: %d text tokens -> %d codes -> %d frames (%.2f s audio) in %.2f s",
                 i + 1, len(segments), len(ids), sem.codes.shape[-1], mel.frames, wav.shape[-1] / SAMPLE_RATE,
                 sum(seg_t.values()))
        del sem, mel  # keep memory bounded by one segment
        if segment_progress is not None:
            segment_progress(i + 1, len(segments))
    if not pieces:
        raise RuntimeError("the model produced no speech for this text (stop token at the first step of every "
                           "segment); try another seed or other decoding settings")
    waveform = torch.cat(pieces, dim=-1).float()
    return SynthesisResult(waveform, SAMPLE_RATE, tuple(infos), cond.emovec.float().cpu(), timings)


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
