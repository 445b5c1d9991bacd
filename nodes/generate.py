"""T2S Generate (text + speaker (+ emotion) → semantic codes and GPT latents of every text segment)
and its optional advanced settings node."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from comfy_api.latest import io

from ..indextts2_core.gpt import DecodingSettings
from ..indextts2_core.pipeline import DEFAULT_MAX_TEXT_TOKENS, EmotionSpec

from . import comfy_models as cm
from .conditioning import _model, _speaker
from .types import (CATEGORY, LANGUAGES, Decoding, Emotion, Model, Semantic, Speaker, language_input, seed_input,
                    silence_input)

DURATION_MODES = ("natural", "target tokens", "target seconds")
OFFICIAL = DecodingSettings()


@dataclass(frozen=True)
class T2SSettings:
    """INDEXTTS2_DECODING: decoding settings and the text segment size."""

    decoding: DecodingSettings = OFFICIAL
    max_text_tokens_per_segment: int = DEFAULT_MAX_TEXT_TOKENS


class T2SSettingsNode(io.ComfyNode):
    NAME = "IndexTTS2 T2S Settings"

    @classmethod
    def define_schema(cls) -> io.Schema:
        d = OFFICIAL
        return io.Schema(
            node_id="IndexTTS2T2SSettings", display_name=cls.NAME, category=CATEGORY,
            description="Advanced decoding settings for IndexTTS2 T2S Generate (defaults: the official ones). "
                        "Leave T2S's 'settings' input unconnected to use the official settings.",
            inputs=[
                io.Boolean.Input("do_sample", default=d.do_sample, tooltip="Sample tokens (official); off = greedy / beam search."),
                io.Float.Input("temperature", default=d.temperature, min=0.01, max=2.0, step=0.01, tooltip="Sampling temperature."),
                io.Float.Input("top_p", default=d.top_p, min=0.01, max=1.0, step=0.01, tooltip="Nucleus sampling threshold."),
                io.Int.Input("top_k", default=d.top_k, min=0, max=1000, tooltip="Keep the k most likely tokens (0 = off)."),
                io.Int.Input("num_beams", default=d.num_beams, min=1, max=10, tooltip="Beam search width (official 3)."),
                io.Float.Input("repetition_penalty", default=d.repetition_penalty, min=1.0, max=20.0, step=0.1,
                               tooltip="Penalty on tokens already generated (official 10; 1 = none)."),
                io.Float.Input("length_penalty", default=d.length_penalty, min=-2.0, max=2.0, step=0.1,
                               tooltip="Beam score length exponent (official 0)."),
                io.Int.Input("max_mel_tokens", default=d.max_mel_tokens, min=50, max=30000,
                             tooltip="Cap on tokens per segment in natural mode (1500 ≈ 30 s; capped at the model's table)."),
                io.Int.Input("max_text_tokens_per_segment", default=DEFAULT_MAX_TEXT_TOKENS, min=20, max=600,
                             tooltip="Longer texts are split at punctuation into segments of at most this many text tokens."),
            ],
            outputs=[Decoding.Output(display_name="settings", tooltip="For IndexTTS2 T2S Generate.")],
        )

    @classmethod
    def execute(cls, do_sample, temperature, top_p, top_k, num_beams, repetition_penalty, length_penalty,
                max_mel_tokens, max_text_tokens_per_segment) -> io.NodeOutput:
        with cm.node_errors(cls.NAME):
            decoding = DecodingSettings(do_sample=do_sample, num_beams=num_beams, temperature=temperature, top_k=top_k,
                                        top_p=top_p, repetition_penalty=repetition_penalty,
                                        length_penalty=length_penalty, max_mel_tokens=max_mel_tokens)
            return io.NodeOutput(T2SSettings(decoding, max_text_tokens_per_segment))


class T2SGenerate(io.ComfyNode):
    NAME = "IndexTTS2 T2S Generate"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IndexTTS2T2SGenerate", display_name=cls.NAME, category=CATEGORY,
            description="Text → semantic tokens (the autoregressive GPT). Long texts are split into segments with "
                        "silences between them. Changing only S2M or vocoder settings does not rerun this node.",
            inputs=[
                Model.Input("model", tooltip="From Load IndexTTS2."),
                Speaker.Input("speaker", tooltip="Voice, from IndexTTS2 Encode Speaker Prompt."),
                io.String.Input("text", multiline=True, default="", placeholder="Text to speak",
                                tooltip="Text to speak."),
                Emotion.Input("emotion", optional=True,
                              tooltip="Optional emotion (audio, vector, text or random). Unconnected: the "
                                      "speaker audio's own emotion."),
                io.Combo.Input("duration_mode", options=list(DURATION_MODES), default="natural",
                               tooltip="natural: the model decides; target tokens: exactly that many semantic "
                                       "tokens of speech for the whole text; target seconds: the final audio lasts "
                                       "exactly that long, silences between text segments included."),
                io.Int.Input("target_tokens", default=250, min=1, max=100000, step=1,
                             tooltip="Semantic tokens of the whole text's speech (silences not included), shared "
                                     "among its segments; 'target tokens' mode."),
                io.Float.Input("target_seconds", default=5.0, min=0.05, max=3600.0, step=0.01,
                               tooltip="Length of the final audio, silences between text segments included; "
                                       "'target seconds' mode."),
                language_input("the text", "from the script"),
                silence_input("Silence between text segments (official 200 ms); part of target seconds."),
                seed_input("Sampling seed: the same inputs and seed give the same tokens."),
                Decoding.Input("settings", optional=True,
                               tooltip="Optional advanced decoding settings (IndexTTS2 T2S Settings); unconnected: "
                                       "the official ones."),
            ],
            outputs=[Semantic.Output(display_name="semantic", tooltip="Semantic tokens + GPT latents for S2M."),
                     io.Int.Output(display_name="tokens",
                                   tooltip="Semantic tokens generated for the whole text (what 'target tokens' sets).")],
        )

    @classmethod
    def execute(cls, model, speaker, text, duration_mode, target_tokens, target_seconds, language, interval_silence_ms,
                seed, emotion=None, settings=None) -> io.NodeOutput:
        model, speaker = _model(cls.NAME, model), _speaker(cls.NAME, speaker)
        cm.check_choice(cls.NAME, "duration_mode", duration_mode, DURATION_MODES)
        cm.check_choice(cls.NAME, "language", language, LANGUAGES)
        if emotion is not None and not isinstance(emotion, EmotionSpec):
            raise cm.bad_input(cls.NAME, "emotion", f"expected an INDEXTTS2_EMOTION, got {type(emotion).__name__}")
        settings = settings if settings is not None else T2SSettings()
        if not isinstance(settings, T2SSettings):
            raise cm.bad_input(cls.NAME, "settings", f"expected INDEXTTS2_DECODING, got {type(settings).__name__}")
        if not isinstance(text, str) or not text.strip():
            raise cm.bad_input(cls.NAME, "text", "empty")
        with cm.node_errors(cls.NAME):
            plan = model.plan(text, seconds=target_seconds if duration_mode == "target seconds" else None,
                              target_tokens=target_tokens if duration_mode == "target tokens" else None,
                              interval_silence_ms=interval_silence_ms,
                              max_text_tokens=settings.max_text_tokens_per_segment, language=language)
            progress = cm.Progress(len(plan))
            semantic = model.generate(speaker, emotion, plan, settings.decoding, seed, progress=progress,
                                      segment_progress=progress.part_done)
        return io.NodeOutput(semantic, semantic.num_tokens,
                             ui={"text": (f"{semantic.num_tokens} tokens in {len(plan)} segment(s)",),
                                 "indextts2_timing": (dataclasses.asdict(model.timing),)})
