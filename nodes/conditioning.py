"""Speaker and emotion conditioning nodes. Speaker and emotion come from separate nodes, so an
emotion taken from one voice can be given to another (cross-speaker transfer is wiring)."""

from __future__ import annotations

import random

from comfy_api.latest import io

from ..indextts2_core.emotion import EMOTIONS, validate_weights
from ..indextts2_core.pipeline import SpeakerPrompt

from . import comfy_models as cm
from .model import IndexTTS2Model
from .types import CATEGORY, Emotion, Model, Speaker, audio_parts, seed_input


def _model(node: str, model) -> IndexTTS2Model:
    model = cm.require(node, "model", model, "Load IndexTTS2")
    if not isinstance(model, IndexTTS2Model):
        raise cm.bad_input(node, "model", f"expected an INDEXTTS2_MODEL, got {type(model).__name__}")
    return model


def _speaker(node: str, speaker) -> SpeakerPrompt:
    speaker = cm.require(node, "speaker", speaker, "IndexTTS2 Encode Speaker Prompt")
    if not isinstance(speaker, SpeakerPrompt):
        raise cm.bad_input(node, "speaker", f"expected an INDEXTTS2_SPEAKER, got {type(speaker).__name__}")
    return speaker


def _alpha(default: float, top: float, what: str) -> io.Float.Input:
    return io.Float.Input("alpha", default=default, min=0.0, max=top, step=0.01, tooltip=what)


class EncodeSpeaker(io.ComfyNode):
    NAME = "IndexTTS2 Encode Speaker Prompt"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IndexTTS2EncodeSpeaker", display_name=cls.NAME, category=CATEGORY,
            description="Reference voice → speaker conditioning (w2v-BERT features, semantic codes, CAMPPlus "
                        "style, prompt mel). Up to 15 s of the audio are used.",
            inputs=[
                Model.Input("model", tooltip="From Load IndexTTS2."),
                io.Audio.Input("audio", tooltip="Reference voice (any rate, mono or stereo; 3–15 s of clean speech works best)."),
            ],
            outputs=[Speaker.Output(display_name="speaker", tooltip="Voice conditioning for T2S and S2M.")],
        )

    @classmethod
    def execute(cls, model, audio) -> io.NodeOutput:
        model = _model(cls.NAME, model)
        wav, rate = audio_parts(cls.NAME, "audio", audio)
        with cm.node_errors(cls.NAME):
            return io.NodeOutput(model.encode_speaker(wav, rate))


class EmotionFromAudio(io.ComfyNode):
    NAME = "IndexTTS2 Emotion from Audio"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IndexTTS2EmotionFromAudio", display_name=cls.NAME, category=CATEGORY,
            description="Emotion of a reference recording (any voice); alpha blends it with the speaker's own.",
            inputs=[
                Model.Input("model", tooltip="From Load IndexTTS2."),
                io.Audio.Input("audio", tooltip="Recording whose emotion to copy; the voice does not matter."),
                _alpha(1.0, 2.0, "0 = the speaker's own emotion, 1 = the reference's emotion (above 1 exaggerates)."),
            ],
            outputs=[Emotion.Output(display_name="emotion", tooltip="Emotion for T2S Generate.")],
        )

    @classmethod
    def execute(cls, model, audio, alpha) -> io.NodeOutput:
        model = _model(cls.NAME, model)
        wav, rate = audio_parts(cls.NAME, "audio", audio)
        with cm.node_errors(cls.NAME):
            return io.NodeOutput(model.emotion_from_audio(wav, rate, alpha))


class EmotionFromVector(io.ComfyNode):
    NAME = "IndexTTS2 Emotion from Vector"

    @classmethod
    def define_schema(cls) -> io.Schema:
        sliders = [io.Float.Input(name, default=0.0, min=0.0, max=1.2, step=0.01, display_mode=io.NumberDisplay.slider,
                                  tooltip=f"Weight of '{name}' (0–1.2; the weights are mixed with the speaker's "
                                          "own emotion, which keeps 1 − sum).")
                   for name in EMOTIONS]
        return io.Schema(
            node_id="IndexTTS2EmotionFromVector", display_name=cls.NAME, category=CATEGORY,
            description="Eight emotion weights mixed from the model's emotion prototypes (the prototype rows "
                        "closest to the speaker's voice are used).",
            inputs=[
                Model.Input("model", tooltip="From Load IndexTTS2."),
                Speaker.Input("speaker", tooltip="Voice whose style picks the emotion prototypes (the T2S speaker)."),
                *sliders,
                _alpha(1.0, 1.0, "Scales every weight (official: clamped to 0–1, truncated to 4 decimals)."),
                io.Boolean.Input("normalize", default=False,
                                 tooltip="Apply the official web UI's normalisation (per-emotion biases, total capped at 0.8)."),
            ],
            outputs=[Emotion.Output(display_name="emotion", tooltip="Emotion for T2S Generate.")],
        )

    @classmethod
    def execute(cls, model, speaker, alpha, normalize, **weights) -> io.NodeOutput:
        model, speaker = _model(cls.NAME, model), _speaker(cls.NAME, speaker)
        vector = [weights.get(name, 0.0) for name in EMOTIONS]
        if not any(vector):
            raise cm.bad_input(cls.NAME, "happy…calm", "all eight emotion weights are 0; raise at least one")
        with cm.node_errors(cls.NAME):
            validate_weights(vector)
            return io.NodeOutput(model.emotion_from_vector(speaker, vector, alpha, normalize))


class EmotionFromText(io.ComfyNode):
    NAME = "IndexTTS2 Emotion from Text"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IndexTTS2EmotionFromText", display_name=cls.NAME, category=CATEGORY,
            description="A description or line of text → emotion weights by the Qwen emotion model "
                        "(load it with 'load_text_emotion' on the loader).",
            inputs=[
                Model.Input("model", tooltip="From Load IndexTTS2 with load_text_emotion on."),
                Speaker.Input("speaker", tooltip="Voice whose style picks the emotion prototypes (the T2S speaker)."),
                io.String.Input("text", multiline=True, default="",
                                placeholder="e.g. You scared me! Don't sneak up on me like that!",
                                tooltip="Text whose emotion to use (often the line being spoken)."),
                _alpha(0.6, 1.0, "Scales the detected weights; the official README suggests about 0.6."),
                seed_input("The emotion model samples as the official one does; the same seed gives the same "
                           "emotion."),
            ],
            outputs=[Emotion.Output(display_name="emotion", tooltip="Emotion for T2S Generate.")],
        )

    @classmethod
    def execute(cls, model, speaker, text, alpha, seed) -> io.NodeOutput:
        model, speaker = _model(cls.NAME, model), _speaker(cls.NAME, speaker)
        if not isinstance(text, str) or not text.strip():
            raise cm.bad_input(cls.NAME, "text", "empty")
        with cm.node_errors(cls.NAME):
            return io.NodeOutput(model.emotion_from_text(speaker, text, alpha, seed))


class EmotionRandom(io.ComfyNode):
    NAME = "IndexTTS2 Emotion Random"
    ANY = "any (from seed)"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IndexTTS2EmotionRandom", display_name=cls.NAME, category=CATEGORY,
            description="One emotion at full weight, rendered with randomly chosen emotion prototypes "
                        "(official use_random) instead of the ones closest to the voice.",
            inputs=[
                Model.Input("model", tooltip="From Load IndexTTS2."),
                Speaker.Input("speaker", tooltip="The T2S speaker."),
                io.Combo.Input("emotion", options=[cls.ANY, *EMOTIONS], default=cls.ANY,
                               tooltip="Which emotion; 'any' lets the seed pick one."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFF, control_after_generate=True,
                             tooltip="Seed of the random choices."),
                _alpha(0.8, 1.0, "Strength of the emotion (scales its weight)."),
            ],
            outputs=[Emotion.Output(display_name="emotion", tooltip="Emotion for T2S Generate.")],
        )

    @classmethod
    def execute(cls, model, speaker, emotion, seed, alpha) -> io.NodeOutput:
        model, speaker = _model(cls.NAME, model), _speaker(cls.NAME, speaker)
        cm.check_choice(cls.NAME, "emotion", emotion, [cls.ANY, *EMOTIONS])
        index = random.Random(seed).randrange(len(EMOTIONS)) if emotion == cls.ANY else EMOTIONS.index(emotion)
        weights = [1.0 if i == index else 0.0 for i in range(len(EMOTIONS))]
        with cm.node_errors(cls.NAME):
            return io.NodeOutput(model.emotion_random(speaker, weights, alpha, seed))
