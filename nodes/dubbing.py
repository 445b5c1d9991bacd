"""Timeline dubbing nodes: Load Subtitles / Script → Voice Set → Dub Timeline (one track, every
line in its slot). The work is indextts2_core.dubbing's; these nodes read inputs and files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from comfy_api.latest import io

import folder_paths

from ..indextts2_core.audio import load_audio
from ..indextts2_core.dubbing import (DubSettings, FitSettings, Script, Voice, VoiceSet, parse_script)
from ..indextts2_core.dubbing.script import FORMATS
from ..indextts2_core.dubbing.timeline import OVERFLOW, OVERLAP, POLICIES
from ..indextts2_core.pipeline import EmotionSpec, S2MSettings, SpeakerPrompt

from . import comfy_models as cm
from .conditioning import _model
from .generate import T2SSettings
from .types import CATEGORY, LANGUAGES, Decoding, Emotion, Model, Speaker, audio_dict, language_input, seed_input

ScriptType = io.Custom("INDEXTTS2_SCRIPT")
Voices = io.Custom("INDEXTTS2_VOICES")
TEXT_INPUT = "(the text above)"
NO_FOLDER = "(none)"
SCRIPT_SUFFIXES = (".srt", ".vtt", ".txt")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
SPEAKER_SLOTS = 4
EXAMPLE = """1
00:00:00,500 --> 00:00:02,800
[Alice] Did you hear that? Something moved outside.

2
00:00:03,200 --> 00:00:05,000
[Bob] It's only the wind. [pause:300ms] Go back to sleep. {calm: 0.6}
"""


def _input_files(suffixes: tuple[str, ...]) -> list[str]:
    base = Path(folder_paths.get_input_directory())
    if not base.is_dir():
        return []
    return sorted(str(p.relative_to(base)).replace(os.sep, "/") for p in base.rglob("*")
                  if p.is_file() and p.suffix.lower() in suffixes)


def _input_path(node: str, name: str, value: str) -> Path:
    base = Path(folder_paths.get_input_directory()).resolve()
    path = (base / value).resolve()
    if base not in path.parents or not path.exists():
        raise cm.bad_input(node, name, f"{value!r} is not in ComfyUI's input folder")
    return path


def _folders() -> list[str]:
    base = Path(folder_paths.get_input_directory())
    subs = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    return [NO_FOLDER, *subs]


def _digest(paths) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        st = p.stat()
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()


class LoadScript(io.ComfyNode):
    NAME = "IndexTTS2 Load Subtitles / Script"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IndexTTS2LoadScript", display_name=cls.NAME, category=CATEGORY,
            description="Subtitles (SRT, WebVTT) or a script (one [Speaker] line per utterance) with optional "
                        "[pause:0.8s] and {happy: 0.6} / {emotion: \"afraid\"} / {emotion_audio: name} per line.",
            inputs=[
                io.String.Input("text", multiline=True, default=EXAMPLE,
                                tooltip="The subtitles or script, used when 'file' is '(the text above)'."),
                io.Combo.Input("file", options=[TEXT_INPUT, *_input_files(SCRIPT_SUFFIXES)], default=TEXT_INPUT,
                               tooltip="An .srt / .vtt / .txt file from ComfyUI's input folder."),
                io.Combo.Input("format", options=list(FORMATS), default="auto",
                               tooltip="auto: WEBVTT header → WebVTT, timing lines → SRT, else a script."),
            ],
            outputs=[ScriptType.Output(display_name="script", tooltip="Cues for IndexTTS2 Dub Timeline.")],
        )

    @classmethod
    def fingerprint_inputs(cls, text, file, format):
        if file == TEXT_INPUT:
            return ""
        try:
            return _digest([_input_path(cls.NAME, "file", file)])
        except ValueError:
            return file

    @classmethod
    def execute(cls, text, file, format) -> io.NodeOutput:
        cm.check_choice(cls.NAME, "format", format, FORMATS)
        if file != TEXT_INPUT:
            path = _input_path(cls.NAME, "file", file)
            try:
                text = path.read_text(encoding="utf-8-sig")
            except UnicodeDecodeError as e:
                raise cm.bad_input(cls.NAME, "file", f"{file} is not UTF-8 text ({e.reason})") from None
        with cm.node_errors(cls.NAME):
            script = parse_script(text, format)
        return io.NodeOutput(script, ui={"text": (_preview(script),)})


def _preview(script: Script) -> str:
    rows = [f"{len(script.cues)} cue(s), {script.kind}; speakers: {', '.join(sorted(script.speakers)) or 'default'}"]
    for c in script.cues:
        when = f"{float(c.start):8.3f}–{float(c.end):8.3f}" if c.start is not None else "   (next)"
        emo = f"  {{{c.emotion.describe()}}}" if c.emotion else ""
        rows.append(f"{c.number:>3} {when} [{c.speaker or 'default'}] {c.text or '(pause)'}{emo}")
    return "\n".join(rows)


class VoiceSetNode(io.ComfyNode):
    NAME = "IndexTTS2 Voice Set"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IndexTTS2VoiceSet", display_name=cls.NAME, category=CATEGORY,
            description="Names → voices for a script: connected speaker prompts named by 'names', and/or every "
                        "audio file of a folder in ComfyUI's input folder (input/voices/Alice.wav is [Alice]).",
            inputs=[
                Model.Input("model", tooltip="From Load IndexTTS2 (encodes the folder's voices)."),
                io.String.Input("names", default="Alice, Bob",
                                tooltip="Comma-separated names of speaker_1, speaker_2, ... in order."),
                io.Combo.Input("voices_folder", options=_folders(), default=NO_FOLDER,
                               tooltip="A sub-folder of ComfyUI's input folder; each audio file is a voice named "
                                       "after the file (and usable as {emotion_audio: name})."),
                io.String.Input("default", default="",
                                tooltip="Voice for lines without [Name] (empty: the first voice)."),
                *[Speaker.Input(f"speaker_{i}", optional=True, tooltip=f"Voice number {i} of 'names'.")
                  for i in range(1, SPEAKER_SLOTS + 1)],
            ],
            outputs=[Voices.Output(display_name="voices", tooltip="For IndexTTS2 Dub Timeline.")],
        )

    @classmethod
    def fingerprint_inputs(cls, model, names, voices_folder, default, **speakers):
        if voices_folder == NO_FOLDER:
            return ""
        folder = Path(folder_paths.get_input_directory()) / voices_folder
        return _digest([p for p in folder.glob("*") if p.suffix.lower() in AUDIO_SUFFIXES]) if folder.is_dir() else ""

    @classmethod
    def execute(cls, model, names, voices_folder, default, **speakers) -> io.NodeOutput:
        model = _model(cls.NAME, model)
        given = [n.strip() for n in names.split(",") if n.strip()]
        connected = [(i, s) for i in range(1, SPEAKER_SLOTS + 1) if (s := speakers.get(f"speaker_{i}")) is not None]
        if len(given) < len(connected):
            raise cm.bad_input(cls.NAME, "names", f"{len(connected)} speaker input(s) connected but {len(given)} "
                                                  "name(s) given")
        voices = []
        for name, (i, speaker) in zip(given, connected):
            if not isinstance(speaker, SpeakerPrompt):
                raise cm.bad_input(cls.NAME, f"speaker_{i}", f"expected INDEXTTS2_SPEAKER, got {type(speaker).__name__}")
            voices.append(Voice(name, speaker))
        if voices_folder != NO_FOLDER:
            folder = _input_path(cls.NAME, "voices_folder", voices_folder)
            with cm.node_errors(cls.NAME):
                for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES):
                    if any(v.name.casefold() == path.stem.casefold() for v in voices):
                        continue  # a connected speaker of that name wins
                    wav, rate = load_audio(path)
                    voices.append(Voice(path.stem, model.encode_speaker(wav, rate), (wav, rate)))
        if not voices:
            raise cm.bad_input(cls.NAME, "speaker_1", "no voices: connect speaker prompts or choose a voices folder")
        with cm.node_errors(cls.NAME):
            voice_set = VoiceSet(tuple(voices), default.strip() or None)
        return io.NodeOutput(voice_set, ui={"text": (f"voices: {', '.join(voice_set.names)}",)})


class DubTimeline(io.ComfyNode):
    NAME = "IndexTTS2 Dub Timeline"

    @classmethod
    def define_schema(cls) -> io.Schema:
        fit, dub, s2m = FitSettings(), DubSettings(), S2MSettings()
        return io.Schema(
            node_id="IndexTTS2DubTimeline", display_name=cls.NAME, category=CATEGORY,
            description="Every line of the script spoken by its voice and fitted to its slot natively (exact "
                        "tokens at T2S, exact frames at S2M), placed at its exact start sample on one track.",
            inputs=[
                Model.Input("model", tooltip="From Load IndexTTS2."),
                ScriptType.Input("script", tooltip="From IndexTTS2 Load Subtitles / Script."),
                Voices.Input("voices", tooltip="From IndexTTS2 Voice Set."),
                io.Combo.Input("fit", options=list(POLICIES), default=fit.policy,
                               tooltip="auto: the GPT makes most of the length change (within 0.85–1.15×), S2M the "
                                       "rest; tokens: exact token counts; s2m: natural tokens, S2M stretch."),
                io.Float.Input("min_ratio", default=fit.bounds[0], min=0.1, max=1.0, step=0.05,
                               tooltip="Fastest accepted speed change (slot / natural length)."),
                io.Float.Input("max_ratio", default=fit.bounds[1], min=1.0, max=10.0, step=0.05,
                               tooltip="Slowest accepted speed change (slot / natural length)."),
                io.Combo.Input("overflow", options=list(OVERFLOW), default=fit.overflow,
                               tooltip="A line outside those bounds: extend (keep the bound; it runs into the "
                                       "next silence or ends early), squeeze (fit anyway), fail (stop and say which)."),
                io.Combo.Input("overlap", options=list(OVERLAP), default=dub.overlap,
                               tooltip="Lines that overlap on the track: error, overlay (mixed), shift (later)."),
                io.Float.Input("total_seconds", default=0.0, min=0.0, max=36000.0, step=0.01,
                               tooltip="Length of the track (0: until the last line ends; a connected video wins)."),
                language_input("the script", "per line"),
                io.Int.Input("line_gap_ms", default=int(dub.line_gap_ms), min=0, max=10000, step=10,
                             tooltip="Silence between script lines (scripts without times)."),
                io.Int.Input("steps", default=s2m.steps, min=1, max=200, tooltip="Flow-matching steps (official 25)."),
                io.Float.Input("cfg_rate", default=s2m.cfg_rate, min=0.0, max=10.0, step=0.05,
                               tooltip="Classifier-free guidance (official 0.7)."),
                seed_input("Base seed; each line's seed follows from it and the line's content."),
                Emotion.Input("emotion", optional=True, tooltip="Default emotion for lines without {...}."),
                Decoding.Input("settings", optional=True, tooltip="Optional T2S decoding settings."),
                io.Video.Input("video", optional=True, tooltip="Optional: the track lasts exactly as long as this video."),
            ],
            outputs=[io.Audio.Output(display_name="audio", tooltip="The whole track, mono."),
                     io.String.Output(display_name="report", tooltip="Per line: slot, natural length, tokens, "
                                                                     "frames, ratio, decisions, warnings."),
                     io.String.Output(display_name="srt", tooltip="The placed times as SRT (when lines moved or "
                                                                  "came from a script; else empty)."),
                     io.Audio.Output(display_name="lines", tooltip="Each line's audio, one by one.",
                                     is_output_list=True)],
        )

    @classmethod
    def execute(cls, model, script, voices, fit, min_ratio, max_ratio, overflow, overlap, total_seconds, language,
                line_gap_ms, steps, cfg_rate, seed, emotion=None, settings=None, video=None) -> io.NodeOutput:
        model = _model(cls.NAME, model)
        if not isinstance(cm.require(cls.NAME, "script", script, "IndexTTS2 Load Subtitles / Script"), Script):
            raise cm.bad_input(cls.NAME, "script", f"expected INDEXTTS2_SCRIPT, got {type(script).__name__}")
        if not isinstance(cm.require(cls.NAME, "voices", voices, "IndexTTS2 Voice Set"), VoiceSet):
            raise cm.bad_input(cls.NAME, "voices", f"expected INDEXTTS2_VOICES, got {type(voices).__name__}")
        if emotion is not None and not isinstance(emotion, EmotionSpec):
            raise cm.bad_input(cls.NAME, "emotion", f"expected INDEXTTS2_EMOTION, got {type(emotion).__name__}")
        t2s = settings if settings is not None else T2SSettings()
        if not isinstance(t2s, T2SSettings):
            raise cm.bad_input(cls.NAME, "settings", f"expected INDEXTTS2_DECODING, got {type(t2s).__name__}")
        total = None
        if video is not None:
            try:
                total = float(video.get_duration())
            except AttributeError:
                raise cm.bad_input(cls.NAME, "video", f"expected a VIDEO, got {type(video).__name__}") from None
        elif total_seconds > 0:
            total = total_seconds
        with cm.node_errors(cls.NAME):
            dub_settings = DubSettings(
                fit=FitSettings(policy=cm.check_choice(cls.NAME, "fit", fit, POLICIES), bounds=(min_ratio, max_ratio),
                                overflow=cm.check_choice(cls.NAME, "overflow", overflow, OVERFLOW)),
                overlap=cm.check_choice(cls.NAME, "overlap", overlap, OVERLAP), total_seconds=total,
                line_gap_ms=line_gap_ms, max_text_tokens_per_segment=t2s.max_text_tokens_per_segment,
                language=cm.check_choice(cls.NAME, "language", language, LANGUAGES),
                decoding=t2s.decoding, s2m=S2MSettings(steps=steps, cfg_rate=cfg_rate), seed=seed)
            lines = cm.NestedProgress(sum(c.has_speech for c in script.cues))
            result = model.dub(script, voices, dub_settings, emotion, line_progress=lines.part_done,
                               step_progress=lines)
        rate = result.sample_rate
        return io.NodeOutput(audio_dict(result.waveform, rate), result.report(), result.srt or "",
                             [audio_dict(w, rate) for w in result.cue_audio], ui={"text": (result.report(),)})
