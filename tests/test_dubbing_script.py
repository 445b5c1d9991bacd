"""Subtitles and scripts → cues: SRT, WebVTT and plain scripts, the line grammar (speakers, pauses,
emotions), and one error per bad-input class naming the line, for generated inputs of each class."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from indextts2_core.dubbing import CueEmotion, Pause, ScriptError, parse_script, to_srt
from indextts2_core.emotion import EMOTIONS

SRT = """1
00:00:01,000 --> 00:00:03,500
[Alice] Hello there,
how are you?

2
00:00:04,250 --> 00:00:06,000
[Bob] Fine. [pause:300ms] Thanks! {happy: 0.6, calm: 0.2}

3
00:01:02,5 --> 01:00:00,000
No speaker here. {emotion: "whispering, afraid"}
"""


def test_srt_cues_times_speakers_pauses_emotions():
    s = parse_script(SRT)
    assert s.kind == "srt" and s.timed and s.speakers == {"Alice", "Bob"}
    a, b, c = s.cues
    assert (a.number, a.line, a.start, a.end, a.speaker) == (1, 3, Fraction(1), Fraction(7, 2), "Alice")
    assert a.pieces == ("Hello there, how are you?",)
    assert b.pieces == ("Fine.", Pause(Fraction(3, 10)), "Thanks!") and b.text == "Fine. Thanks!"
    assert b.emotion == CueEmotion(weights=tuple(0.6 if n == "happy" else 0.2 if n == "calm" else 0.0
                                                 for n in EMOTIONS))
    assert c.start == Fraction(625, 10) and c.end == 3600 and c.speaker is None
    assert c.emotion == CueEmotion(text="whispering, afraid")


def test_webvtt_with_voice_tags_identifiers_and_notes():
    vtt = ("WEBVTT - a title\n\nNOTE a comment\nspanning lines\n\nintro\n00:01.000 --> 00:02.500 align:start\n"
           "<v Alice>Hi &amp; welcome</v>\n\n00:00:03.000 --> 00:00:04.000\n<i>[Bob]</i> Bye.\n")
    s = parse_script(vtt)
    assert s.kind == "vtt" and [c.speaker for c in s.cues] == ["Alice", "Bob"]
    assert s.cues[0].pieces == ("Hi & welcome",) and s.cues[0].start == 1 and s.cues[0].end == Fraction(5, 2)


def test_plain_script_lines_comments_and_pause_lines():
    s = parse_script("# a two-character scene\n[Alice] Where were you?\n\n[pause:1.5s]\n[Bob] Out. {emotion_audio: "
                     "angry_take}\nNarrator says this with the default voice.\n")
    assert s.kind == "script" and not s.timed
    assert [c.speaker for c in s.cues] == ["Alice", None, "Bob", None]
    assert s.cues[1].pieces == (Pause(Fraction(3, 2)),) and not s.cues[1].has_speech
    assert s.cues[2].emotion == CueEmotion(audio="angry_take") and s.cues[2].line == 5
    assert [c.number for c in s.cues] == [1, 2, 3, 4]


def test_crlf_bom_and_dot_milliseconds_are_accepted():
    s = parse_script("\ufeff1\r\n00:00:01.5 --> 00:00:02.25\r\n[A] x\r\n")
    assert s.cues[0].start == Fraction(3, 2) and s.cues[0].end == Fraction(9, 4)


def test_srt_round_trip_of_placed_times():
    text = to_srt([(1, Fraction(1), Fraction(7, 2), "Hello"), (2, Fraction(3725, 1000), Fraction(3600), "Bye")])
    s = parse_script(text)
    assert [(c.start, c.end, c.text) for c in s.cues] == [(1, Fraction(7, 2), "Hello"),
                                                          (Fraction(149, 40), 3600, "Bye")]


# ---- bad input: one class at a time, several generated inputs each --------------------------------
def _srt(*cues: tuple[str, str]) -> str:
    return "\n".join(f"{i}\n{t}\n{x}\n" for i, (t, x) in enumerate(cues, 1))


RNG = random.Random(7)
BAD_TIMES = ["00:00:01 --> 00:00:02", "0:0:1,000 -> 0:0:2,000", "00:61:00,000 --> 00:62:00,000",
             "00:00:75,000 --> 00:00:80,000", "aa:bb:cc,ddd --> 00:00:02,000", "00:00:01,000 --> later"]
REVERSED = [("00:00:05,000", "00:00:04,000"), ("00:00:05,000", "00:00:05,000"), ("01:00:00,000", "00:59:59,999")]
BAD_PAUSES = ["[pause:3]", "[pause:3min]", "[pause:-1s]", "[pause:0s]", "[pause:61s]", "[pause:fast]", "[pause:]"]
BAD_EMOTIONS = ["{joyful: 0.5}", "{happy: lots}", "{happy: 3}", "{happy: 0}", "{alpha: 0.5}", "{happy 0.5}",
                "{}", "{emotion: }", "{emotion: \"sad\", happy: 0.2}", "{happy: 0.2} {sad: 0.1}", "{happy: 0.2",
                "{happy: 0.5, happy: 0.3}", "{happy: 0.5, alpha: 1.5}", "{happy: nan}"]


@pytest.mark.parametrize("timing", BAD_TIMES)
def test_unparsable_timestamps_name_the_line(timing):
    text = _srt(("00:00:01,000 --> 00:00:02,000", "[A] Fine."), (timing, "[A] Not fine."))
    with pytest.raises(ScriptError, match=r"^line 6: "):
        parse_script(text, "srt")


@pytest.mark.parametrize("start, end", REVERSED)
def test_reversed_times_name_the_line(start, end):
    with pytest.raises(ScriptError, match=r"^line 2: .*ends .* before it starts"):
        parse_script(_srt((f"{start} --> {end}", "[A] Hi.")))


@pytest.mark.parametrize("text", ["[A]", "[A] {happy: 0.5}", "[A] [pause:1s]", "   ", "{happy: 0.5}"])
def test_empty_text_names_the_line(text):
    with pytest.raises(ScriptError, match=r"^line (2|3): "):
        parse_script(_srt(("00:00:01,000 --> 00:00:02,000", text)) if text.strip() else "1\n00:00:01,000 --> "
                     "00:00:02,000\n\n", "srt")


@pytest.mark.parametrize("pause", BAD_PAUSES)
def test_pauses_in_the_wrong_unit_name_the_line(pause):
    with pytest.raises(ScriptError, match=r"^line 2: "):
        parse_script(f"[A] Fine.\n[B] Then {pause} more.\n")


@pytest.mark.parametrize("block", BAD_EMOTIONS)
def test_unknown_or_malformed_emotions_name_the_line(block):
    with pytest.raises(ScriptError, match=r"^line 3: "):
        parse_script(f"# scene\n[A] Fine.\n[B] Hello {block}\n")


@pytest.mark.parametrize("line", ["hello [laughs] there", "[A] hello [B]", "[pause 1s] there", "[[A]] hi",
                                  "[A] a ] b"])
def test_unknown_tags_name_the_line(line):
    with pytest.raises(ScriptError, match=r"^line 1: "):
        parse_script(line + "\n")


def test_random_garbage_never_escapes_as_another_error():
    alphabet = "[]{}:,.-> 0123456789abc\n\"'"
    for _ in range(300):
        text = "".join(RNG.choice(alphabet) for _ in range(RNG.randint(1, 60)))
        try:
            parse_script(text)
        except ScriptError:
            pass


@pytest.mark.parametrize("text", ["", "# only a comment\n", "[pause:1s]\n", "WEBVTT\n"])
def test_nothing_to_say_is_an_error(text):
    with pytest.raises(ScriptError, match="nothing to say|no text"):
        parse_script(text)


def test_vtt_must_start_with_its_header_and_format_is_checked():
    with pytest.raises(ScriptError, match="WEBVTT"):
        parse_script("00:01.000 --> 00:02.000\nhi\n", "vtt")
    with pytest.raises(ValueError, match="format"):
        parse_script("hi", "docx")
