"""Subtitles and scripts → cues: who says what, when, with which pauses and emotion.

Three inputs, one line grammar for the spoken text:

* SRT: blocks of `number`, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, one or more text lines.
* WebVTT: `WEBVTT` header, optional cue identifiers, `[HH:]MM:SS.mmm --> [HH:]MM:SS.mmm [settings]`,
  text lines; NOTE / STYLE / REGION blocks are skipped, `<v Name>` names the speaker, other tags
  are dropped.
* Script: one utterance per line, no times (lines follow each other); `#` starts a comment line.

Spoken text, in any of them: an optional `[Speaker]` prefix, inline pauses `[pause:0.8s]` /
`[pause:300ms]`, and at most one emotion block: weights `{happy: 0.6, calm: 0.2}` (optionally
`alpha: 0.8`), text emotion `{emotion: "whispering, afraid"}`, or an emotion recording by name
`{emotion_audio: name}`. A script line holding only pauses is a silence between lines.

Every problem is a `ScriptError` naming the line and what is wrong; nothing is half-parsed.
Times are exact fractions of a second (milliseconds as written).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from fractions import Fraction

from ..emotion import EMOTIONS

MAX_PAUSE_SECONDS = 60
FORMATS = ("auto", "srt", "vtt", "script")


class ScriptError(ValueError):
    """A subtitle or script problem; the message starts with the line number."""

    def __init__(self, line: int, message: str):
        super().__init__(f"line {line}: {message}")
        self.line = line


@dataclass(frozen=True)
class Pause:
    seconds: Fraction


@dataclass(frozen=True)
class CueEmotion:
    """One of: 8 weights (+ alpha), a text for the text-emotion model, a recording's name."""

    weights: tuple[float, ...] | None = None
    alpha: float = 1.0
    text: str | None = None
    audio: str | None = None

    def describe(self) -> str:
        if self.weights is not None:
            mix = ", ".join(f"{n} {w:g}" for n, w in zip(EMOTIONS, self.weights) if w)
            return mix + (f" (alpha {self.alpha:g})" if self.alpha != 1.0 else "")
        return f'text "{self.text}"' if self.text is not None else f"audio {self.audio}"


@dataclass(frozen=True)
class Cue:
    number: int  # the SRT cue number, else the cue's position (1-based)
    line: int  # source line of the cue's text
    start: Fraction | None  # seconds; None for a script line
    end: Fraction | None
    speaker: str | None  # None: the voice set's default voice
    pieces: tuple[str | Pause, ...]  # text and pauses in order (no empty text, no two texts in a row)
    emotion: CueEmotion | None = None

    @property
    def text(self) -> str:
        return " ".join(p for p in self.pieces if isinstance(p, str))

    @property
    def has_speech(self) -> bool:
        return any(isinstance(p, str) for p in self.pieces)


@dataclass(frozen=True)
class Script:
    cues: tuple[Cue, ...]
    kind: str  # "srt", "vtt" or "script"

    @property
    def speakers(self) -> set[str]:
        return {c.speaker for c in self.cues if c.speaker is not None and c.has_speech}

    @property
    def timed(self) -> bool:
        return self.kind != "script"


def parse_script(text: str, kind: str = "auto") -> Script:
    """Parse subtitles or a script (`kind` auto-detects: WEBVTT header → vtt, a timing line → srt)."""
    if not isinstance(text, str):
        raise ValueError(f"script must be text, got {type(text).__name__}")
    if kind not in FORMATS:
        raise ValueError(f"script format must be one of {FORMATS}, got {kind!r}")
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if kind == "auto":
        kind = "vtt" if text.lstrip().startswith("WEBVTT") else "srt" if TIMING.search(text) else "script"
    cues = {"srt": _parse_srt, "vtt": _parse_vtt, "script": _parse_lines}[kind](text.split("\n"))
    if not any(c.has_speech for c in cues):
        raise ScriptError(1, "nothing to say: the script holds no spoken text")
    return Script(tuple(cues), kind)


# ---- timings --------------------------------------------------------------------------------------
TIME = r"(?:(\d+):)?(\d{1,2}):(\d{1,2})[,.](\d{1,3})"
TIMING = re.compile(rf"^\s*{TIME}\s*-->\s*{TIME}(?:\s+.*)?$", re.M)


def _seconds(groups: tuple, line: int) -> Fraction:
    hours, minutes, secs, ms = groups
    if int(minutes) > 59 or int(secs) > 59:
        raise ScriptError(line, f"timestamp {minutes}:{secs} has minutes or seconds above 59")
    return (int(hours or 0) * 3600 + int(minutes) * 60 + int(secs)) + Fraction(int(ms.ljust(3, "0")), 1000)


def _timing(raw: str, line: int) -> tuple[Fraction, Fraction]:
    m = TIMING.match(raw)
    if not m:
        raise ScriptError(line, f"cannot read the timing {raw.strip()!r} (expected HH:MM:SS,mmm --> HH:MM:SS,mmm)")
    start, end = _seconds(m.groups()[:4], line), _seconds(m.groups()[4:], line)
    if end <= start:
        raise ScriptError(line, f"the cue ends ({_clock(end)}) before it starts ({_clock(start)})")
    return start, end


def _clock(t: Fraction) -> str:
    ms = round(t * 1000)
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


# ---- block formats -------------------------------------------------------------------------------
def _blocks(lines: list[str]) -> list[list[tuple[int, str]]]:
    """Groups of (line number, text) separated by blank lines."""
    blocks, current = [], []
    for number, raw in enumerate(lines, 1):
        if raw.strip():
            current.append((number, raw.rstrip()))
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _parse_srt(lines: list[str]) -> list[Cue]:
    cues = []
    for block in _blocks(lines):
        (n0, first), rest = block[0], block[1:]
        if first.strip().isdigit():
            number = int(first.strip())
            if not rest:
                raise ScriptError(n0, f"cue {number} has no timing line")
            (n1, timing), rest = rest[0], rest[1:]
        else:
            number, (n1, timing) = len(cues) + 1, (n0, first)
        start, end = _timing(timing, n1)
        if not rest:
            raise ScriptError(n1, f"cue {number} has no text")
        cues.append(_cue(number, rest[0][0], " ".join(t.strip() for _, t in rest), start, end))
    return cues


VTT_TAG = re.compile(r"<(/?)([a-z]+)(?:\.[^ >]*)?(?: ([^>]*))?>|<\d+:[\d:.]+>", re.I)


def _parse_vtt(lines: list[str]) -> list[Cue]:
    blocks = _blocks(lines)
    if not blocks or not blocks[0][0][1].startswith("WEBVTT"):
        raise ScriptError(1, "a WebVTT file starts with 'WEBVTT'")
    cues = []
    for block in blocks[1:]:
        head = block[0][1]
        if head.startswith(("NOTE", "STYLE", "REGION")):
            continue
        if "-->" not in head:  # a cue identifier
            block = block[1:]
            if not block:
                raise ScriptError(len(lines), f"cue {head!r} has no timing line")
        (n1, timing), rest = block[0], block[1:]
        start, end = _timing(timing, n1)
        if not rest:
            raise ScriptError(n1, "the cue has no text")
        speaker, parts = None, []
        for _, raw in rest:
            for m in VTT_TAG.finditer(raw):
                if m.group(2) and m.group(2).lower() == "v" and not m.group(1) and m.group(3):
                    speaker = speaker or m.group(3).strip()
            parts.append(html.unescape(VTT_TAG.sub("", raw)).strip())
        text = " ".join(p for p in parts if p)
        if speaker and not SPEAKER.match(text):
            text = f"[{speaker}] {text}"
        cues.append(_cue(len(cues) + 1, rest[0][0], text, start, end))
    return cues


def _parse_lines(lines: list[str]) -> list[Cue]:
    cues = []
    for number, raw in enumerate(lines, 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        cues.append(_cue(len(cues) + 1, number, raw.strip(), None, None, pause_only_ok=True))
    return cues


# ---- the line grammar ----------------------------------------------------------------------------
SPEAKER = re.compile(r"^\s*\[(?!\s*pause\b)([^\[\]:{}]+?)\]\s*", re.I)
PAUSE = re.compile(r"\[pause\s*:\s*([^\]]*)\]", re.I)
PAUSE_VALUE = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|ms)$", re.I)
EMOTION = re.compile(r"\{([^{}]*)\}")


def _cue(number: int, line: int, text: str, start, end, pause_only_ok: bool = False) -> Cue:
    speaker = None
    m = SPEAKER.match(text)
    if m:
        speaker, text = m.group(1).strip(), text[m.end():]
    blocks = EMOTION.findall(text)
    if len(blocks) > 1:
        raise ScriptError(line, "more than one {emotion} block in one line")
    if "{" in EMOTION.sub("", text) or "}" in EMOTION.sub("", text):
        raise ScriptError(line, "unbalanced { } around an emotion")
    emotion = _emotion(blocks[0], line) if blocks else None
    text = EMOTION.sub(" ", text)
    pieces: list[str | Pause] = []
    pos = 0
    for m in PAUSE.finditer(text):
        _add_text(pieces, text[pos:m.start()], line)
        pieces.append(Pause(_pause(m.group(1), line)))
        pos = m.end()
    _add_text(pieces, text[pos:], line)
    if not any(isinstance(p, str) for p in pieces):
        if not (pause_only_ok and pieces and speaker is None and emotion is None):
            raise ScriptError(line, "no text to speak" + (f" for [{speaker}]" if speaker else ""))
    return Cue(number, line, start, end, speaker, tuple(pieces), emotion)


def _add_text(pieces: list, raw: str, line: int) -> None:
    words = " ".join(raw.split())
    if "[" in words or "]" in words:
        raise ScriptError(line, f"unknown [tag] in {words!r} (a speaker goes first as [Name]; pauses are "
                                "[pause:0.8s] or [pause:300ms])")
    if words:
        if pieces and isinstance(pieces[-1], str):
            pieces[-1] = f"{pieces[-1]} {words}"
        else:
            pieces.append(words)


def _pause(raw: str, line: int) -> Fraction:
    m = PAUSE_VALUE.match(raw.strip())
    if not m:
        raise ScriptError(line, f"pause {raw.strip()!r}: write it in seconds or milliseconds, e.g. [pause:0.8s] or "
                                "[pause:300ms]")
    value = Fraction(m.group(1)) / (1000 if m.group(2).lower() == "ms" else 1)
    if not 0 < value <= MAX_PAUSE_SECONDS:
        raise ScriptError(line, f"pause of {float(value):g} s: it must be longer than 0 and at most "
                                f"{MAX_PAUSE_SECONDS} s")
    return value


def _emotion(body: str, line: int) -> CueEmotion:
    fields = {}
    for item in _split_fields(body, line):
        if ":" not in item:
            raise ScriptError(line, f"emotion entry {item.strip()!r} needs a name and a value (name: value)")
        key, value = (s.strip() for s in item.split(":", 1))
        key = key.lower()
        if key in fields:
            raise ScriptError(line, f"emotion entry {key!r} given twice")
        fields[key] = value
    if not fields:
        raise ScriptError(line, "empty {} emotion block")
    if "emotion" in fields or "emotion_audio" in fields:
        if len(fields) != 1:
            raise ScriptError(line, "an emotion text or emotion_audio stands alone in its { } block")
        key, value = next(iter(fields.items()))
        value = value.strip().strip('"').strip("'").strip()
        if not value:
            raise ScriptError(line, f"{key} is empty")
        return CueEmotion(text=value) if key == "emotion" else CueEmotion(audio=value)
    alpha = _number(fields.pop("alpha"), "alpha", line) if "alpha" in fields else 1.0
    if not 0 <= alpha <= 1:
        raise ScriptError(line, f"alpha must be between 0 and 1, got {alpha:g}")
    unknown = sorted(set(fields) - set(EMOTIONS))
    if unknown:
        raise ScriptError(line, f"unknown emotion {unknown[0]!r}; use {', '.join(EMOTIONS)}, or "
                                '{emotion: "..."} / {emotion_audio: name}')
    weights = tuple(_number(fields.get(name, "0"), name, line) for name in EMOTIONS)
    if any(not 0 <= w <= 2 for w in weights):
        raise ScriptError(line, "emotion weights must be between 0 and 2 (1 is the emotion at full strength)")
    if not any(weights):
        raise ScriptError(line, "every emotion weight is 0")
    return CueEmotion(weights=weights, alpha=alpha)


def _split_fields(body: str, line: int) -> list[str]:
    """Comma-separated entries; commas inside quotes belong to the value."""
    out, current, quote = [], "", None
    for ch in body:
        if ch in "\"'" and (quote is None or quote == ch):
            quote = None if quote else ch
        if ch == "," and quote is None:
            out.append(current)
            current = ""
        else:
            current += ch
    if quote is not None:
        raise ScriptError(line, "unclosed quote in the emotion block")
    out.append(current)
    return [s for s in out if s.strip()]


def _number(raw: str, name: str, line: int) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ScriptError(line, f"{name}: {raw!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ScriptError(line, f"{name}: {raw!r} is not a finite number")
    return value


def to_srt(cues: list[tuple[int, Fraction, Fraction, str]]) -> str:
    """SRT text of (number, start, end, text) rows (times in seconds)."""
    return "\n".join(f"{n}\n{_clock(s)} --> {_clock(e)}\n{t}\n" for n, s, e, t in cues)
