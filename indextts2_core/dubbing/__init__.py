"""Timeline dubbing: subtitles or a script → one track for several voices, every line fitted to its
slot natively and placed at its exact start sample.

    script.py    SRT / WebVTT / plain script → cues (speaker, text and pauses, emotion, times)
    timeline.py  fitting a line to its slot (tokens / S2M / auto) and placing lines on the track
    engine.py    running the models over the cues, with a content-keyed cache
"""

from .engine import CueReport, DubResult, DubSettings, Voice, VoiceSet, dub, voice_set
from .script import Cue, CueEmotion, Pause, Script, ScriptError, parse_script, to_srt
from .timeline import FitError, FitSettings, fit_cue, place

__all__ = ["Cue", "CueEmotion", "CueReport", "DubResult", "DubSettings", "FitError", "FitSettings", "Pause", "Script",
           "ScriptError", "Voice", "VoiceSet", "dub", "fit_cue", "parse_script", "place", "to_srt", "voice_set"]
