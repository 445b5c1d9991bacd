"""Pairing speech with video: measure a clip, fit audio to a length, count frames for audio.
All arithmetic is in indextts2_core.timing (sample-exact, the pack's one rounding rule)."""

from __future__ import annotations

from comfy_api.latest import io

from ..indextts2_core import timing as tm
from ..indextts2_core.audio import fit_waveform

from . import comfy_models as cm
from .types import CATEGORY, audio_parts


class DurationFromVideo(io.ComfyNode):
    NAME = "IndexTTS2 Duration from Video"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IndexTTS2DurationFromVideo", display_name=cls.NAME, category=CATEGORY,
            description="Length of a clip (a VIDEO, or IMAGE frames + fps, or a frame count + fps) in seconds, "
                        "for T2S 'target seconds' (exact, silences included) or Fit Audio to Duration.",
            inputs=[
                io.Video.Input("video", optional=True, tooltip="A VIDEO (e.g. from Load Video); takes precedence."),
                io.Image.Input("images", optional=True, tooltip="Frames (IMAGE batch); their count is used with fps."),
                io.Float.Input("fps", default=25.0, min=0.01, max=1000.0, step=0.001,
                               tooltip="Frame rate for images / frame_count (ignored with a VIDEO)."),
                io.Int.Input("frame_count", default=81, min=1, max=1000000,
                             tooltip="Number of frames when neither video nor images is connected."),
            ],
            outputs=[
                io.Float.Output(display_name="seconds", tooltip="Clip length in seconds (frames / fps)."),
                io.Int.Output(display_name="frame_count", tooltip="Number of frames."),
                io.Float.Output(display_name="fps", tooltip="Frame rate used."),
            ],
        )

    @classmethod
    def execute(cls, fps, frame_count, video=None, images=None) -> io.NodeOutput:
        if video is not None:
            try:
                components = video.get_components()
            except AttributeError:
                raise cm.bad_input(cls.NAME, "video", f"expected a VIDEO, got {type(video).__name__}") from None
            frame_count, fps = int(components.images.shape[0]), components.frame_rate
        elif images is not None:
            if not hasattr(images, "shape") or images.ndim != 4:
                raise cm.bad_input(cls.NAME, "images", "expected an IMAGE batch [frames, H, W, C]")
            frame_count = int(images.shape[0])
        if frame_count < 1:
            raise cm.bad_input(cls.NAME, "frame_count" if video is None and images is None else "video", "no frames")
        with cm.node_errors(cls.NAME):
            seconds = tm.video_seconds(frame_count, fps)
        return io.NodeOutput(seconds, frame_count, float(fps),
                             ui={"text": (f"{frame_count} frames @ {float(fps):g} fps = {seconds:g} s",)})


class FitAudioToDuration(io.ComfyNode):
    NAME = "IndexTTS2 Fit Audio to Duration"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IndexTTS2FitAudioToDuration", display_name=cls.NAME, category=CATEGORY,
            description="Pads with silence or trims the end so the audio lasts exactly the given seconds "
                        "(at sample precision, at the audio's own rate).",
            inputs=[
                io.Audio.Input("audio", tooltip="Any AUDIO."),
                io.Float.Input("seconds", default=5.0, min=0.001, max=36000.0, step=0.001,
                               tooltip="Exact length wanted (e.g. from Duration from Video)."),
            ],
            outputs=[io.Audio.Output(display_name="audio", tooltip="The audio, exactly that long.")],
        )

    @classmethod
    def execute(cls, audio, seconds) -> io.NodeOutput:
        wav, rate = audio_parts(cls.NAME, "audio", audio)
        with cm.node_errors(cls.NAME):
            samples = tm.Timing(sample_rate=rate).samples(seconds)
            if samples < 1:
                raise ValueError(f"{seconds} s is less than one sample at {rate} Hz")
            waveform = fit_waveform(wav, samples)
        return io.NodeOutput({"waveform": waveform.unsqueeze(0), "sample_rate": rate})


class AudioToFrameCount(io.ComfyNode):
    NAME = "IndexTTS2 Audio to Frame Count"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IndexTTS2AudioToFrameCount", display_name=cls.NAME, category=CATEGORY,
            description="Video frames needed to cover an audio clip at a frame rate, optionally snapped to a "
                        "video model's frame rule (4n+1 for Wan, 8n+1 for LTX).",
            inputs=[
                io.Audio.Input("audio", tooltip="Any AUDIO."),
                io.Float.Input("fps", default=25.0, min=0.01, max=1000.0, step=0.001, tooltip="Video frame rate."),
                io.Combo.Input("frame_rule", options=list(tm.FRAME_RULES), default="none",
                               tooltip="Snap the count to 4n+1 or 8n+1 frames."),
                io.Combo.Input("rounding", options=list(tm.ROUNDING), default="up",
                               tooltip="up: the video is at least as long as the audio; down: at most; nearest."),
            ],
            outputs=[io.Int.Output(display_name="frame_count", tooltip="Number of video frames."),
                     io.Float.Output(display_name="seconds", tooltip="Length of those frames in seconds.")],
        )

    @classmethod
    def execute(cls, audio, fps, frame_rule, rounding) -> io.NodeOutput:
        wav, rate = audio_parts(cls.NAME, "audio", audio)
        cm.check_choice(cls.NAME, "frame_rule", frame_rule, tm.FRAME_RULES)
        cm.check_choice(cls.NAME, "rounding", rounding, tm.ROUNDING)
        with cm.node_errors(cls.NAME):
            frames = tm.frame_rule(tm.Timing(sample_rate=rate).video_frames(int(wav.shape[-1]), fps, rounding),
                                   frame_rule, rounding)
        return io.NodeOutput(frames, tm.video_seconds(frames, fps))
