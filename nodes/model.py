"""INDEXTTS2_MODEL: the loaded IndexTTS2 models behind ComfyUI's model management.

Like ComfyUI's own audio-encoder wrapper, each method loads the stage modules it needs through
`comfy.model_management` (one ModelPatcher per module, so ComfyUI schedules VRAM and "Unload
models" frees them), moves its inputs to the load device, runs the core stage and returns the
result on `intermediate_device()`. Node `execute` bodies are a few lines calling these methods.
Across runs ComfyUI caches node outputs; the one cache kept here is explicit and bounded:
`line_cache`, the timeline dubbing's finished lines (CPU tensors, at most LINE_CACHE_BYTES), so
that editing one subtitle line regenerates that line only.
"""

from __future__ import annotations

import dataclasses
from numbers import Real
from typing import Sequence

import torch

import comfy.model_management as mm
import comfy.model_patcher

from ..indextts2_core.gpt import DecodingSettings
from ..indextts2_core.pipeline import (DurationPlan, EmotionSpec, IndexTTS2Models, MelSegments, NoSpeechError,
                                       S2MSettings, SemanticSegments, SpeakerPrompt, emotion_from_audio,
                                       emotion_from_text, emotion_from_vector, emotion_random, encode_speaker,
                                       generate_semantic_segments, plan_durations, prepare, stream, synthesize_mels,
                                       text_segments, vocode_segments, join_waveforms)
from ..indextts2_core.dubbing import DubResult, DubSettings, Script, VoiceSet, dub
from ..indextts2_core.prompt_cache import FeatureCache
from ..indextts2_core.timing import Timing

STAGE_MODULES = ("semantic", "codec", "campplus", "gpt", "s2mel", "vocoder")
LINE_CACHE_BYTES = 512 * 2**20


class StageModule(torch.nn.Module):
    """Container that ModelPatcher moves; it holds one core module under `.inner` (ModelPatcher
    writes bookkeeping attributes such as `.device` on the object it manages)."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner


class IndexTTS2Model:
    """The INDEXTTS2_MODEL payload (see the module docstring)."""

    def __init__(self, models: IndexTTS2Models, folder: str, load_device: torch.device,
                 offload_device: torch.device):
        self.models, self.folder = models, folder
        self.load_device, self.offload_device = load_device, offload_device
        modules = {name: getattr(models, name) for name in STAGE_MODULES}
        if models.t2e is not None and models.t2e.model is not None:
            modules["t2e"] = models.t2e.model
            models.t2e.device = load_device  # where it sends its inputs once its patcher has loaded it
        self.patchers = {name: comfy.model_patcher.ModelPatcher(StageModule(m), load_device=load_device,
                                                                offload_device=offload_device)
                         for name, m in modules.items()}
        self.line_cache = FeatureCache(max_bytes=LINE_CACHE_BYTES, max_items=4096)

    @property
    def timing(self) -> Timing:
        return self.models.timing

    @property
    def version(self) -> str:
        return f"IndexTTS-{self.models.version}"

    def _load(self, *stages: str) -> torch.device:
        mm.load_models_gpu([self.patchers[s] for s in stages], force_full_load=True)
        return self.load_device

    def _generator(self, seed: int) -> torch.Generator:
        return torch.Generator(device=self.load_device).manual_seed(int(seed))

    # ---- prompts -------------------------------------------------------------------------------
    def encode_speaker(self, waveform: torch.Tensor, sample_rate: int) -> SpeakerPrompt:
        self._load("semantic", "codec", "campplus", "s2mel")
        m = self.models
        prompt = encode_speaker(m.semantic, m.codec, m.campplus, m.s2mel, waveform, sample_rate,
                                mel_config=m.config.s2mel.mel, w2v_features=m.w2v_features)
        return prompt.to(mm.intermediate_device())

    def emotion_from_audio(self, waveform: torch.Tensor, sample_rate: int, alpha: float) -> EmotionSpec:
        self._load("semantic")
        spec = emotion_from_audio(self.models.semantic, waveform, sample_rate, alpha,
                                  w2v_features=self.models.w2v_features)
        return spec.to(mm.intermediate_device())

    def emotion_from_vector(self, speaker: SpeakerPrompt, weights: Sequence[float], alpha: float,
                            normalize: bool) -> EmotionSpec:
        return emotion_from_vector(self.models.emotion, speaker.to(self.offload_device), weights, alpha,
                                   normalize=normalize).to(mm.intermediate_device())

    def emotion_random(self, speaker: SpeakerPrompt, weights: Sequence[float], alpha: float, seed: int) -> EmotionSpec:
        return emotion_random(self.models.emotion, speaker.to(self.offload_device), weights, alpha,
                              seed=seed).to(mm.intermediate_device())

    def emotion_from_text(self, speaker: SpeakerPrompt, text: str, alpha: float, seed: int) -> EmotionSpec:
        if self.models.t2e is None:
            raise ValueError("the text-emotion model is not loaded: turn on 'load_text_emotion' in Load IndexTTS2")
        self._load("t2e")
        return emotion_from_text(self.models.t2e, self.models.emotion, speaker.to(self.offload_device), text,
                                 alpha, seed=seed).to(mm.intermediate_device())

    # ---- T2S / S2M / vocoder -------------------------------------------------------------------
    def plan(self, text: str, *, seconds: Real | None, target_tokens: int | None, interval_silence_ms: Real,
             max_text_tokens: int, language: str = "auto") -> DurationPlan:
        return plan_durations(text_segments(self.models.tokenizer, text, max_text_tokens, language), self.timing,
                              seconds=seconds, target_tokens=target_tokens, interval_silence_ms=interval_silence_ms,
                              max_codes=self.models.gpt.max_codes)

    def generate(self, speaker: SpeakerPrompt, emotion: EmotionSpec | None, plan: DurationPlan,
                 settings: DecodingSettings, seed: int, progress=None, segment_progress=None) -> SemanticSegments:
        device = self._load("gpt")
        semantic = generate_semantic_segments(
            self.models.gpt, speaker.to(device), None if emotion is None else emotion.to(device), plan, settings,
            generator=self._generator(seed), progress=progress, segment_progress=segment_progress)
        if semantic.num_tokens == 0:
            raise NoSpeechError(f"all {len(plan)} text segment(s)")
        return semantic.to(mm.intermediate_device())

    def mels(self, speaker: SpeakerPrompt, semantic: SemanticSegments, *, seconds: Real | None, frames: int | None,
             settings: S2MSettings, seed: int, progress=None, segment_progress=None) -> MelSegments:
        device = self._load("s2mel", "codec")
        mels = synthesize_mels(self.models.s2mel, self.models.codec, speaker.to(device), semantic.to(device),
                               seconds=seconds, frames=frames, settings=settings, generator=self._generator(seed),
                               progress=progress, segment_progress=segment_progress)
        return mels.to(mm.intermediate_device())

    def vocode(self, mels: MelSegments, progress=None) -> torch.Tensor:
        """[1, N] float32 on the CPU (ComfyUI AUDIO lives there)."""
        self._load("vocoder")
        return vocode_segments(self.models.vocoder, mels, progress=progress)

    def speak(self, text: str, speaker_audio: tuple[torch.Tensor, int],
              emotion_audio: tuple[torch.Tensor, int] | None, *, emotion_alpha: float, seconds: Real | None,
              interval_silence_ms: Real, seed: int, language: str = "auto", token_progress=None,
              cfm_progress=None) -> torch.Tensor:
        """The whole chain, segment by segment, every stage module loaded at once."""
        self._load(*STAGE_MODULES)
        request = {} if emotion_audio is None else dict(emotion_audio=emotion_audio[0],
                                                        emotion_rate=emotion_audio[1], emotion_alpha=emotion_alpha)
        prepared = prepare(self.models, text, *speaker_audio, seconds=seconds, interval_silence_ms=interval_silence_ms,
                           seed=seed, language=language, **request)
        waves = [piece.waveform for piece in stream(self.models, prepared, seed=seed, token_progress=token_progress,
                                                    cfm_progress=cfm_progress)]
        return join_waveforms(waves, prepared.plan.silence_samples, prepared.plan.total_samples)[0]

    def dub(self, script: Script, voices: VoiceSet, settings: DubSettings, default_emotion: EmotionSpec | None,
            line_progress=None, step_progress=None) -> DubResult:
        """Timeline dubbing with every stage module loaded; finished lines stay in `line_cache`."""
        needed = STAGE_MODULES + (("t2e",) if "t2e" in self.patchers else ())
        device = self._load(*needed)
        voices = VoiceSet(tuple(dataclasses.replace(v, speaker=v.speaker.to(device)) for v in voices.voices),
                          voices.default)
        return dub(self.models, script, voices, settings,
                   default_emotion=None if default_emotion is None else default_emotion.to(device),
                   cache=self.line_cache, line_progress=line_progress, step_progress=step_progress)
