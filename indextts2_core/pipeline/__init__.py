"""The official IndexTTS2 inference chain as plain functions over the stage modules (spec §9.3).

    models.py      IndexTTS2Models, load_models, device / dtype, stage-boundary checks
    prompts.py     speaker prompt, emotion specs, GPT conditioning
    plan.py        text segments and their duration plan (codes, frames, samples, silences)
    segments.py    GPT / S2M / vocoder over the segments of a plan
    synthesize.py  the whole chain, streamed segment by segment, and the WAV writer

Each stage function takes only the modules it needs, so a caller (ComfyUI) can load each model
right before its stage. Results are small frozen dataclasses.
"""

from .models import (DTYPES, IndexTTS2Models, NonFiniteError, check_finite, load_models, resolve_device,
                     resolve_dtype)
from .plan import (DEFAULT_INTERVAL_SILENCE_MS, DEFAULT_MAX_TEXT_TOKENS, MAX_INTERVAL_SILENCE_MS, DurationPlan,
                   TextSegment, plan_durations, replan_s2m, text_segments)
from .prompts import (EmotionSpec, GPTConditioning, SpeakerPrompt, choose_emotion_mode, emotion_from_audio,
                      emotion_from_speaker, emotion_from_text, emotion_from_vector, emotion_random, encode_speaker,
                      gpt_conditioning)
from .segments import (MAX_S2M_FRAMES, MelRequest, MelSegments, NoSpeechError, Progress, S2MSettings,
                       SemanticRequest, SemanticResult, SemanticSegments, generate_semantic, generate_semantic_batch,
                       generate_semantic_segments, join_waveforms, synthesize_mel, synthesize_mel_batch,
                       synthesize_mels, vocode, vocode_segments)
from .synthesize import (Prepared, SegmentAudio, SegmentInfo, SynthesisResult, check_output_path, prepare, stream,
                         synthesize, write_wav)

__all__ = [
    "DEFAULT_INTERVAL_SILENCE_MS", "DEFAULT_MAX_TEXT_TOKENS", "DTYPES", "MAX_INTERVAL_SILENCE_MS", "MAX_S2M_FRAMES",
    "DurationPlan", "EmotionSpec", "GPTConditioning", "IndexTTS2Models", "MelRequest", "MelSegments", "NoSpeechError",
    "NonFiniteError", "Prepared", "Progress", "S2MSettings", "SegmentAudio", "SegmentInfo", "SemanticRequest",
    "SemanticResult",
    "SemanticSegments", "SpeakerPrompt", "SynthesisResult", "TextSegment", "check_finite", "check_output_path",
    "choose_emotion_mode", "emotion_from_audio", "emotion_from_speaker", "emotion_from_text", "emotion_from_vector",
    "emotion_random", "encode_speaker", "generate_semantic", "generate_semantic_batch", "generate_semantic_segments",
    "gpt_conditioning",
    "join_waveforms", "load_models", "plan_durations", "prepare", "replan_s2m", "resolve_device", "resolve_dtype",
    "stream", "synthesize", "synthesize_mel", "synthesize_mel_batch", "synthesize_mels", "text_segments", "vocode", "vocode_segments",
    "write_wav",
]
