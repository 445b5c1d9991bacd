"""T2S Generate: text + speaker (+ emotion) → semantic codes and GPT latents of every text segment."""

from __future__ import annotations

from comfy_api.latest import io

from . import comfy_models as cm
from .conditioning import _model, _speaker
from .types import CATEGORY, Emotion, Model, Semantic, Speaker

DURATION_MODES = ("natural", "target tokens", "target seconds")


class T2SGenerate(io.ComfyNode):
    NAME = "IndexTTS2 T2S Generate"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IndexTTS2T2SGenerate", display_name=cls.NAME, category=CATEGORY,
            description="Text → semantic tokens (the autoregressive GPT). Long texts are split into segments. "
                        "Changing only S2M or vocoder settings does not rerun this node.",
            inputs=[
                Model.Input("model", tooltip="From Load IndexTTS2."),
                Speaker.Input("speaker", tooltip="Voice, from IndexTTS2 Encode Speaker Prompt."),
                io.String.Input("text", multiline=True, default="", placeholder="Text to speak",
                                tooltip="Text to speak (Chinese and/or English)."),
                Emotion.Input("emotion", optional=True,
                              tooltip="Optional emotion (audio, vector, text or random). Unconnected: the "
                                      "speaker audio's own emotion."),
                io.Combo.Input("duration_mode", options=list(DURATION_MODES), default="natural",
                               tooltip="natural: the model decides; target tokens: exactly that many semantic "
                                       "tokens for the whole text (50 per second); target seconds: the final "
                                       "audio lasts exactly that long, silences between text segments included "
                                       "(S2M 'auto' follows it)."),
                io.Int.Input("target_tokens", default=250, min=1, max=30000, step=1,
                             tooltip="Semantic tokens of the whole text when duration_mode is 'target tokens' "
                                     "(50 ≈ 1 s), shared among its segments."),
                io.Float.Input("target_seconds", default=5.0, min=0.05, max=600.0, step=0.01,
                               tooltip="Length of the final audio, silences between text segments included, when "
                                       "duration_mode is 'target seconds'."),
                io.Boolean.Input("do_sample", default=True, tooltip="Sample tokens (official); off = greedy / beam search."),
                io.Float.Input("temperature", default=0.8, min=0.01, max=2.0, step=0.01, tooltip="Sampling temperature."),
                io.Float.Input("top_p", default=0.8, min=0.01, max=1.0, step=0.01, tooltip="Nucleus sampling threshold."),
                io.Int.Input("top_k", default=30, min=0, max=1000, tooltip="Keep the k most likely tokens (0 = off)."),
                io.Int.Input("num_beams", default=3, min=1, max=10, tooltip="Beam search width (official 3)."),
                io.Float.Input("repetition_penalty", default=10.0, min=0.1, max=20.0, step=0.1,
                               tooltip="Penalty on tokens already generated (official 10)."),
                io.Float.Input("length_penalty", default=0.0, min=-2.0, max=2.0, step=0.1,
                               tooltip="Beam score length exponent (official 0)."),
                io.Int.Input("max_mel_tokens", default=1500, min=50, max=30000,
                             tooltip="Cap on tokens per segment in natural mode (1500 ≈ 30 s)."),
                io.Int.Input("max_text_tokens_per_segment", default=120, min=20, max=600,
                             tooltip="Longer texts are split at punctuation into segments of at most this many text tokens."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="Sampling seed: the same inputs and seed give the same tokens."),
            ],
            outputs=[Semantic.Output(display_name="semantic", tooltip="Semantic tokens + GPT latents for S2M."),
                     io.Int.Output(display_name="tokens", tooltip="Number of semantic tokens generated (50 per second).")],
        )

    @classmethod
    def execute(cls, model, speaker, text, duration_mode, target_tokens, target_seconds, do_sample, temperature,
                top_p, top_k, num_beams, repetition_penalty, length_penalty, max_mel_tokens,
                max_text_tokens_per_segment, seed, emotion=None) -> io.NodeOutput:
        from ..indextts2_core.gpt import DecodingSettings
        from ..indextts2_core.pipeline import EmotionSpec, generate_semantic_segments, plan_durations, text_segments

        model, speaker = _model(cls.NAME, model), _speaker(cls.NAME, speaker)
        cm.check_choice(cls.NAME, "duration_mode", duration_mode, DURATION_MODES)
        if emotion is not None and not isinstance(emotion, EmotionSpec):
            raise cm.bad_input(cls.NAME, "emotion", f"expected an INDEXTTS2_EMOTION, got {type(emotion).__name__}")
        if not isinstance(text, str) or not text.strip():
            raise cm.bad_input(cls.NAME, "text", "empty")
        with cm.node_errors(cls.NAME):
            settings = DecodingSettings(do_sample=do_sample, num_beams=num_beams, temperature=temperature, top_k=top_k,
                                        top_p=top_p, repetition_penalty=repetition_penalty,
                                        length_penalty=length_penalty, max_mel_tokens=max_mel_tokens)
            # silences planned at the vocoder's default; another value there is resized to keep the total
            plan = plan_durations(text_segments(model.models.tokenizer, text, max_text_tokens_per_segment),
                                  seconds=target_seconds if duration_mode == "target seconds" else None,
                                  target_tokens=target_tokens if duration_mode == "target tokens" else None)
            device = model.load("gpt")
            progress = cm.Progress(len(plan), plan.tokens[0] or max_mel_tokens)
            semantic = generate_semantic_segments(
                model.models.gpt, cm.on_device(speaker, device), cm.on_device(emotion, device), plan, settings,
                generator=cm.generator(seed, device), progress=progress, segment_progress=progress.part_done)
        return io.NodeOutput(semantic, semantic.num_tokens)
