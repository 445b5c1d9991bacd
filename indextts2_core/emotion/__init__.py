"""Emotion control: reference-audio blending, 8-weight vectors over the feat1/feat2 prototypes,
and the Qwen text → emotion classifier (loaded lazily, only when used)."""

from .text_emotion import TextEmotionModel, parse_emotion_output
from .vectors import (
    EMOTIONS,
    EMOTIONS_ZH,
    WEBUI_BIASES,
    EmotionMatrices,
    blend_emovec,
    normalize_webui,
    scale_vector,
    validate_weights,
    vector_emovec,
)

__all__ = [
    "EMOTIONS",
    "EMOTIONS_ZH",
    "WEBUI_BIASES",
    "EmotionMatrices",
    "TextEmotionModel",
    "blend_emovec",
    "normalize_webui",
    "parse_emotion_output",
    "scale_vector",
    "validate_weights",
    "vector_emovec",
]
