"""The official IndexTTS2 inference chain as plain functions over the stage modules (spec §9.3).

    models.py      IndexTTS2Models, load_models, device / dtype
    prompts.py     speaker prompt, emotion specs, GPT conditioning
    segments.py    text segments, the duration plan, GPT / S2M / vocoder over every segment
    synthesize.py  the whole chain in one call, write_wav

Each stage function takes only the modules it needs, so a caller (ComfyUI) can load each model
right before its stage. Results are small frozen dataclasses.
"""

from .models import DTYPES, IndexTTS2Models, load_models, resolve_device, resolve_dtype
from .prompts import (MIN_PROMPT_SECONDS, EmotionSpec, GPTConditioning, SpeakerPrompt, check_prompt_audio,
                      choose_emotion_mode, emotion_from_audio, emotion_from_speaker, emotion_from_text,
                      emotion_from_vector, emotion_random, encode_speaker, gpt_conditioning)
from .segments import (DEFAULT_CFG_RATE, DEFAULT_CFM_STEPS, DEFAULT_INTERVAL_SILENCE_MS, DEFAULT_MAX_TEXT_TOKENS,
                       DurationPlan, MelResult, MelSegments, Progress, SemanticResult, SemanticSegments,
                       generate_semantic, generate_semantic_segments, join_waveforms, plan_durations,
                       synthesize_mel, synthesize_mels, text_segments, vocode, vocode_segments)
from .synthesize import SegmentInfo, SynthesisResult, synthesize, write_wav

__all__ = [
    "DEFAULT_CFG_RATE", "DEFAULT_CFM_STEPS", "DEFAULT_INTERVAL_SILENCE_MS", "DEFAULT_MAX_TEXT_TOKENS", "DTYPES",
    "MIN_PROMPT_SECONDS", "DurationPlan", "EmotionSpec", "GPTConditioning", "IndexTTS2Models", "MelResult",
    "MelSegments", "Progress", "SegmentInfo", "SemanticResult", "SemanticSegments", "SpeakerPrompt",
    "SynthesisResult", "check_prompt_audio", "choose_emotion_mode", "emotion_from_audio", "emotion_from_speaker",
    "emotion_from_text", "emotion_from_vector", "emotion_random", "encode_speaker", "generate_semantic",
    "generate_semantic_segments", "gpt_conditioning", "join_waveforms", "load_models", "plan_durations",
    "resolve_device", "resolve_dtype", "synthesize", "synthesize_mel", "synthesize_mels", "text_segments", "vocode",
    "vocode_segments", "write_wav",
]
