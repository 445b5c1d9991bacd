"""IndexTTS2 text-to-semantic GPT (UnifiedVoice v2): network in `model.py`, decoding in `generate.py`."""

from .generate import DecodingSettings, GenerationResult, KVCache, generate_codes, generate_codes_batch
from .model import UnifiedVoice, load_gpt

__all__ = ["DecodingSettings", "GenerationResult", "KVCache", "UnifiedVoice", "generate_codes",
           "generate_codes_batch", "load_gpt"]
