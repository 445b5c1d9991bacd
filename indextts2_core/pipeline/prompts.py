"""Speaker and emotion conditioning (spec §2, §5, §9.3 steps 1–2): prompt audio → `SpeakerPrompt`,
one of five emotion sources → `EmotionSpec`, and both → the GPT's conditioning rows.

Shapes: T_w w2v-BERT frames (50 Hz), P prompt mel frames, C S2M content width, D GPT width.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

import torch

from ..audio import (W2VFeatureConfig, campplus_features, mel_spectrogram, prepare_emotion_prompt,
                     prepare_speaker_prompt, w2v_bert_features)
from ..audio.prompt import check_prompt_audio
from ..config import MelConfig
from ..emotion import EmotionMatrices, TextEmotionModel, normalize_webui, scale_vector, vector_emovec
from ..gpt import UnifiedVoice
from ..gpt.model25 import UnifiedVoice25
from ..prompt_cache import FeatureCache, audio_key
from ..s2mel import S2Mel
from ..semantic.codec import SemanticCodec
from ..semantic.codec25 import EnhancedCodec
from ..semantic.w2v_bert import SemanticEncoder
from ..speaker.campplus import CAMPPlus
from .models import check_finite, finite, gpt_autocast, module_device, moved, no_autocast


@dataclass(frozen=True)
class SpeakerPrompt:
    """Conditioning computed once per distinct speaker audio (spec §2.2–2.6, §9.4)."""

    key: str  # content hash of the input audio
    spk_cond_emb: torch.Tensor  # [1, T_w, 1024] normalised w2v-BERT layer 17 (22.05→16 kHz chain)
    s_ref: torch.Tensor | None  # [1, T_w, 1024] semantic-codec quantised embedding (IndexTTS-2 only)
    ref_mel: torch.Tensor  # [1, 80, P]
    style: torch.Tensor  # [1, 192] CAMPPlus
    prompt_cond: torch.Tensor  # [1, P, C] length-regulated S_ref (IndexTTS-2) or spk_cond_emb (2.5)
    emo_cond_emb: torch.Tensor  # [1, T_w', 1024] the same audio through the emotion chain (soxr → 16 kHz)

    def to(self, device) -> "SpeakerPrompt":
        return moved(self, device)


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

    def to(self, device) -> "EmotionSpec":
        return moved(self, device)


@dataclass(frozen=True)
class GPTConditioning:
    conds: torch.Tensor  # [1, 34, D] (32 speaker latents + emotion vector, 2 speed rows)
    emovec: torch.Tensor  # [1, D] emotion vector given to the GPT


def _semantic_features(semantic: SemanticEncoder, audio_16k: torch.Tensor,
                       w2v_features: W2VFeatureConfig | None) -> torch.Tensor:
    feats, mask = w2v_bert_features(audio_16k, w2v_features)
    return semantic(feats, mask)


def _cached(cache: FeatureCache | None, key: str, fn, device: torch.device):
    """`fn()` computed without autograd; with a cache, kept there on the CPU and returned on `device`."""
    with torch.no_grad():
        if cache is None:
            return fn()
        return _to(cache.get_or_compute(key, lambda: _to(fn(), torch.device("cpu"))), device)


def _to(value, device: torch.device):
    return value.to(device) if isinstance(value, (torch.Tensor, SpeakerPrompt)) else value


def _emotion_key(audio: str, semantic) -> str:
    return f"emotion:{audio}:{id(semantic)}"


def encode_speaker(semantic: SemanticEncoder, codec: SemanticCodec | EnhancedCodec, campplus: CAMPPlus, s2mel: S2Mel,
                   waveform: torch.Tensor, sample_rate: int, *, mel_config: MelConfig,
                   w2v_features: W2VFeatureConfig | None = None, cache: FeatureCache | None = None) -> SpeakerPrompt:
    """Speaker audio ([T], [C, T] or [1, C, T] at any rate) → its conditioning (spec §9.3 step 2;
    2.5 §7.1: no codec quantisation, the S2M prompt condition comes from the w2v-BERT features), on
    the S2M module's device. `mel_config`: the S2M `MelConfig` (config.s2mel.mel)."""
    check_prompt_audio(waveform, sample_rate, "speaker audio")
    key = audio_key(waveform, sample_rate)
    modules = (id(semantic), id(codec), id(campplus), id(s2mel), mel_config)

    def compute() -> SpeakerPrompt:
        audio_22k, audio_16k = prepare_speaker_prompt(waveform, sample_rate)
        spk_cond_emb = check_finite(_semantic_features(semantic, audio_16k, w2v_features), "w2v-BERT (speaker prompt)")
        s_ref = None if isinstance(codec, EnhancedCodec) else codec.quantize(spk_cond_emb)[1]
        dev = module_device(s2mel)
        ref_mel = mel_spectrogram(audio_22k, mel_config).to(dev)
        style = campplus(campplus_features(audio_16k)[None]).to(dev)
        with no_autocast(dev):
            content = spk_cond_emb if s_ref is None else s_ref
            prompt_cond = s2mel.length_regulator(content.to(dev), ref_mel.shape[-1])
        emo_cond_emb = _cached(cache, _emotion_key(key, semantic), lambda: _semantic_features(
            semantic, prepare_emotion_prompt(waveform, sample_rate), w2v_features), dev)  # shared with emotion_from_audio
        prompt = SpeakerPrompt(key, spk_cond_emb.to(dev), None if s_ref is None else s_ref.to(dev), ref_mel, style,
                               prompt_cond, emo_cond_emb)
        for name, stage in (("s_ref", "the semantic codec"), ("style", "CAMPPlus"),
                            ("prompt_cond", "the S2M length regulator")):
            if getattr(prompt, name) is not None:
                check_finite(getattr(prompt, name), f"{stage} (speaker prompt)")
        return prompt

    return _cached(cache, f"speaker:{key}:{hash(modules)}", compute, module_device(s2mel))


def emotion_from_speaker() -> EmotionSpec:
    """The default: the speaker audio's own emotion (α = 1, spec §5.1)."""
    return EmotionSpec(mode="speaker")


def emotion_from_audio(semantic: SemanticEncoder, waveform: torch.Tensor, sample_rate: int, alpha: float = 1.0, *,
                       w2v_features: W2VFeatureConfig | None = None, cache: FeatureCache | None = None) -> EmotionSpec:
    """Emotion reference audio blended with the speaker's by `alpha` (not clamped, spec §5.1)."""
    alpha = finite(alpha, "emotion alpha")
    check_prompt_audio(waveform, sample_rate, "emotion audio")
    key = _emotion_key(audio_key(waveform, sample_rate), semantic)
    emb = _cached(cache, key, lambda: check_finite(_semantic_features(
        semantic, prepare_emotion_prompt(waveform, sample_rate), w2v_features), "w2v-BERT (emotion audio)"),
        module_device(semantic))
    return EmotionSpec(mode="audio", alpha=alpha, emo_cond_emb=emb)


def emotion_from_vector(matrices: EmotionMatrices, speaker: SpeakerPrompt, weights: Sequence[float], alpha: float = 1.0,
                        normalize: bool = False, use_random: bool = False, seed: int | None = None,
                        mode: str = "vector") -> EmotionSpec:
    """8 weights (happy, angry, sad, afraid, disgusted, melancholic, surprised, calm) → prototype mix.

    `normalize`: the web UI's bias + cap at 0.8 first; then the official α scaling (clamped to
    [0, 1], 4-decimal truncation); rows picked by the speaker's style, or at random (`use_random`,
    seeded by `seed`)."""
    w = normalize_webui(weights) if normalize else list(weights)
    w = scale_vector(w, finite(alpha, "emotion alpha"))
    rng = random.Random(seed) if use_random else None
    rows = matrices.select_rows(speaker.style, use_random=use_random, rng=rng)
    return EmotionSpec(mode=mode, alpha=1.0, weights=tuple(w), rows=tuple(rows), mix=matrices.mix(w, rows))


def emotion_from_text(t2e: TextEmotionModel | None, matrices: EmotionMatrices, speaker: SpeakerPrompt, text: str,
                      alpha: float = 1.0, use_random: bool = False, seed: int | None = None) -> EmotionSpec:
    """Qwen text → 8 scores → vector mode (spec §5.3); the README suggests α ≈ 0.6 here. The model
    samples as the official one does (its generation_config.json); `seed` makes that reproducible."""
    if t2e is None:
        raise ValueError("emotion from text needs the Qwen emotion model: load_models(..., load_t2e=True)")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("emotion text is empty")
    scores = t2e.scores(text, seed=seed)
    return emotion_from_vector(matrices, speaker, scores, alpha, use_random=use_random, seed=seed, mode="text")


def emotion_random(matrices: EmotionMatrices, speaker: SpeakerPrompt, weights: Sequence[float], alpha: float = 1.0,
                   seed: int | None = None) -> EmotionSpec:
    """Vector mode with random prototype rows (official use_random=True)."""
    return emotion_from_vector(matrices, speaker, weights, alpha, use_random=True, seed=seed, mode="random")


def choose_emotion_mode(emotion_audio, emotion_vector, emotion_text, use_random: bool, emotion_alpha: float,
                        normalize_emotion_vector: bool) -> str:
    """The emotion mode of a `synthesize` call: exactly one source or none ("speaker");
    contradictory options are refused (the CLI checks them before loading any model)."""
    given = [n for n, v in (("emotion_audio", emotion_audio), ("emotion_vector", emotion_vector),
                            ("emotion_text", emotion_text)) if v is not None]
    if len(given) > 1:
        raise ValueError(f"give at most one emotion source, got {' and '.join(given)}")
    mode = {"emotion_audio": "audio", "emotion_vector": "vector", "emotion_text": "text"}.get(
        given[0] if given else "", "speaker")
    finite(emotion_alpha, "emotion_alpha")
    if mode == "speaker" and emotion_alpha != 1.0:
        raise ValueError("emotion_alpha needs an emotion source (emotion audio, vector or text); without one "
                         "the speaker audio's own emotion is used as is")
    if use_random and mode not in ("vector", "text"):
        raise ValueError("use_random (random emotion prototypes) applies to an emotion vector or emotion text only")
    if normalize_emotion_vector and mode != "vector":
        raise ValueError("normalize_emotion_vector applies to an emotion vector only")
    return mode


def gpt_conditioning(gpt: UnifiedVoice | UnifiedVoice25, speaker: SpeakerPrompt,
                     emotion: EmotionSpec | None) -> GPTConditioning:
    """Speaker + emotion vector → the GPT's conditioning rows: 32 speaker latents + emovec and two
    speed rows for IndexTTS-2 (spec §4.6, §9.3 step 6a); the CAMPPlus row + emovec and two zero
    rows for 2.5 (2.5 §4.2–4.3)."""
    emotion = emotion or emotion_from_speaker()
    dev = module_device(gpt)
    speaker, emotion = speaker.to(dev), emotion.to(dev)
    with torch.inference_mode(), gpt_autocast(gpt):
        if emotion.mode == "audio":
            emovec = gpt.merge_emovec(speaker.spk_cond_emb, emotion.emo_cond_emb, emotion.alpha)
        else:  # the speaker audio's own emotion (emotion prompt = speaker prompt, α = 1)
            emovec = gpt.merge_emovec(speaker.spk_cond_emb, speaker.emo_cond_emb, 1.0)
            if emotion.mode != "speaker":
                emovec = vector_emovec(emotion.mix, emotion.weights, emovec)
        check_finite(emovec, "the GPT emotion conditioning")
        if isinstance(gpt, UnifiedVoice25):
            conds = gpt.conditioning(speaker.style, emovec)
        else:
            conds = gpt.conditioning(check_finite(gpt.speaker_latents(speaker.spk_cond_emb),
                                                  "the GPT speaker conditioning"), emovec)
        conds = check_finite(conds, "the GPT conditioning")
    return GPTConditioning(conds, emovec)
