"""S2M (semantic → mel by flow matching), BigVGAN vocoder (mel → AUDIO), and the one-node Speak."""

from __future__ import annotations

import dataclasses

from comfy_api.latest import io

from ..indextts2_core.pipeline import MelSegments, S2MSettings, SemanticSegments

from . import comfy_models as cm
from .conditioning import _model, _speaker
from .types import (CATEGORY, LANGUAGES, Mel, Model, Semantic, Speaker, audio_dict, audio_parts, language_input,
                    seed_input, silence_input)

S2M = S2MSettings()  # official defaults

S2M_DURATIONS = ("auto", "target seconds", "target frames")


class S2MGenerate(io.ComfyNode):
    NAME = "IndexTTS2 S2M"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IndexTTS2S2M", display_name=cls.NAME, category=CATEGORY,
            description="Semantic tokens → mel spectrogram in the speaker's voice (DiT flow matching).",
            inputs=[
                Model.Input("model", tooltip="From Load IndexTTS2."),
                Semantic.Input("semantic", tooltip="From IndexTTS2 T2S Generate."),
                Speaker.Input("speaker", tooltip="Voice (normally the same speaker as in T2S)."),
                io.Int.Input("steps", default=S2M.steps, min=1, max=200, tooltip="Flow-matching (Euler) steps (official 25)."),
                io.Float.Input("cfg_rate", default=S2M.cfg_rate, min=0.0, max=10.0, step=0.05,
                               tooltip="Classifier-free guidance strength (official 0.7; 0 = off)."),
                io.Combo.Input("duration", options=list(S2M_DURATIONS), default="auto",
                               tooltip="auto: T2S's target seconds if it had them, else 1.72 mel frames per token; "
                                       "target seconds / target frames: stretch or squeeze to exactly that length."),
                io.Float.Input("target_seconds", default=5.0, min=0.05, max=3600.0, step=0.01,
                               tooltip="Exact length of the final audio, silences between text segments included, "
                                       "when duration is 'target seconds'."),
                io.Float.Input("duration_factor", default=S2M.duration_factor, min=0.5, max=2.0, step=0.01,
                               tooltip="'auto' without a T2S target: every segment's natural length × this (the "
                                       "official IndexTTS-2.5 duration_factor, a mel-level stretch; works with "
                                       "IndexTTS-2 too)."),
                io.Int.Input("target_frames", default=430, min=1, max=60000,
                             tooltip="Mel frames of the whole text's speech (silences not included) when duration "
                                     "is 'target frames' (1 frame = 256 samples ≈ 11.6 ms)."),
                seed_input("Seed of the flow-matching noise."),
            ],
            outputs=[Mel.Output(display_name="mel", tooltip="Mel spectrogram for the BigVGAN vocoder.")],
        )

    @classmethod
    def execute(cls, model, semantic, speaker, steps, cfg_rate, duration, target_seconds, duration_factor,
                target_frames, seed) -> io.NodeOutput:
        model, speaker = _model(cls.NAME, model), _speaker(cls.NAME, speaker)
        semantic = cm.require(cls.NAME, "semantic", semantic, "IndexTTS2 T2S Generate")
        if not isinstance(semantic, SemanticSegments):
            raise cm.bad_input(cls.NAME, "semantic", f"expected an INDEXTTS2_SEMANTIC, got {type(semantic).__name__}")
        cm.check_choice(cls.NAME, "duration", duration, S2M_DURATIONS)
        with cm.node_errors(cls.NAME):
            settings = S2MSettings(steps=steps, cfg_rate=cfg_rate, duration_factor=duration_factor)
            progress = cm.Progress(len(semantic.segments), steps)
            mels = model.mels(speaker, semantic, seconds=target_seconds if duration == "target seconds" else None,
                              frames=target_frames if duration == "target frames" else None, settings=settings,
                              seed=seed, progress=progress, segment_progress=progress.part_done)
        return io.NodeOutput(mels, ui={"indextts2_timing": (dataclasses.asdict(model.timing),)})


class BigVGANVocoder(io.ComfyNode):
    NAME = "IndexTTS2 BigVGAN Vocoder"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IndexTTS2Vocoder", display_name=cls.NAME, category=CATEGORY,
            description="Mel spectrogram → 22.05 kHz mono audio (BigVGAN v2), segments joined with silence.",
            inputs=[
                Model.Input("model", tooltip="From Load IndexTTS2."),
                Mel.Input("mel", tooltip="From IndexTTS2 S2M (the silences between segments come from T2S)."),
            ],
            outputs=[io.Audio.Output(display_name="audio", tooltip="22050 Hz mono AUDIO.")],
        )

    @classmethod
    def execute(cls, model, mel) -> io.NodeOutput:
        model = _model(cls.NAME, model)
        mel = cm.require(cls.NAME, "mel", mel, "IndexTTS2 S2M")
        if not isinstance(mel, MelSegments):
            raise cm.bad_input(cls.NAME, "mel", f"expected an INDEXTTS2_MEL, got {type(mel).__name__}")
        with cm.node_errors(cls.NAME):
            waveform = model.vocode(mel, progress=cm.Progress(1, len(mel.mels)))
        return io.NodeOutput(audio_dict(waveform, model.timing.sample_rate))


class Speak(io.ComfyNode):
    NAME = "IndexTTS2 Speak"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IndexTTS2Speak", display_name=cls.NAME, category=CATEGORY,
            description="The whole IndexTTS2 chain in one node: text + reference voice (+ optional emotion "
                        "reference) → audio. Official decoding settings.",
            inputs=[
                Model.Input("model", tooltip="From Load IndexTTS2."),
                io.Audio.Input("speaker_audio", tooltip="Reference voice."),
                io.String.Input("text", multiline=True, default="", placeholder="Text to speak",
                                tooltip="Text to speak (IndexTTS-2: Chinese and/or English; IndexTTS-2.5: also ja, "
                                        "es, ar)."),
                io.Audio.Input("emotion_audio", optional=True,
                               tooltip="Optional recording whose emotion to use (any voice)."),
                io.Float.Input("emotion_alpha", default=1.0, min=0.0, max=2.0, step=0.01,
                               tooltip="Blend towards the emotion audio (ignored without it)."),
                io.Float.Input("target_seconds", default=0.0, min=0.0, max=3600.0, step=0.01,
                               tooltip="0 = natural length; otherwise the audio lasts exactly this long, silences "
                                       "between text segments included."),
                language_input("the text", "from the script"),
                silence_input("Silence between text segments (part of target_seconds when that is set)."),
                seed_input("Seed of token sampling and flow-matching noise."),
            ],
            outputs=[io.Audio.Output(display_name="audio", tooltip="22050 Hz mono AUDIO.")],
        )

    @classmethod
    def execute(cls, model, speaker_audio, text, emotion_alpha, target_seconds, language, interval_silence_ms, seed,
                emotion_audio=None) -> io.NodeOutput:
        model = _model(cls.NAME, model)
        speaker = audio_parts(cls.NAME, "speaker_audio", speaker_audio)
        emotion = audio_parts(cls.NAME, "emotion_audio", emotion_audio) if emotion_audio is not None else None
        if not isinstance(text, str) or not text.strip():
            raise cm.bad_input(cls.NAME, "text", "empty")
        with cm.node_errors(cls.NAME):
            waveform = model.speak(text, speaker, emotion, emotion_alpha=emotion_alpha,
                                   seconds=target_seconds if target_seconds > 0 else None,
                                   interval_silence_ms=interval_silence_ms, seed=seed,
                                   language=cm.check_choice(cls.NAME, "language", language, LANGUAGES),
                                   token_progress=cm.Progress(1), cfm_progress=cm.Progress(1))
        return io.NodeOutput(audio_dict(waveform, model.timing.sample_rate))
