"""`parse_emotion_output`: a table of raw model answers and the 8-vector each must give (spec §5.3
steps 4–8). Order: happy, angry, sad, afraid, disgusted, melancholic, surprised, calm."""

import logging

import pytest

from indextts2_core.emotion import parse_emotion_output
from indextts2_core.emotion.text_emotion import cut_after_think

CALM = [0, 0, 0, 0, 0, 0, 0, 1.0]


def v(**kw):
    names = ("happy", "angry", "sad", "afraid", "disgusted", "melancholic", "surprised", "calm")
    return [kw.get(n, 0.0) for n in names]


CASES = [
    # well-formed JSON
    ('{"高兴": 0.8, "愤怒": 0.0, "悲伤": 0.1, "恐惧": 0.0, '
     '"反感": 0.0, "低落": 0.0, "惊讶": 0.3, "自然": 0.0}',
     "今天太开心了", v(happy=0.8, sad=0.1, surprised=0.3)),
    ('{"愤怒": 0.9}', "x", v(angry=0.9)),
    ('\n\n  {"悲伤": 0.5}\n', "x", v(sad=0.5)),
    ('{"高兴": 0.7, "惊讶": 0.6, "自然": 0.4}', "x", v(happy=0.7, surprised=0.6, calm=0.4)),  # sum > 1 kept
    ('{"高兴": 0.1, "高兴": 0.9}', "x", v(happy=0.9)),  # duplicate keys: the last wins
    # partial / truncated → fallback pattern
    ('{"高兴": 0.6, "惊讶": 0.4, "自', "x", v(happy=0.6, surprised=0.4)),
    ('```json\n{"恐惧": 0.7}\n```', "x", v(afraid=0.7)),
    ('高兴: 0.5, 愤怒: 0.2', "x", v(happy=0.5, angry=0.2)),
    ('高兴: 0.1 then 高兴: 0.9', "x", v(happy=0.9)),
    ('{"高兴": 0.5.., "愤怒": 0.2', "x", v(angry=0.2)),  # unreadable number skipped
    ('{高兴: 0.4}', "x", CALM),  # the official pattern makes the key "{高兴"
    ('高兴：0.5', "x", CALM),  # full-width colon is not matched by the official pattern
    # garbage
    ('', "x", CALM),
    ('lorem ipsum dolor', "x", CALM),
    ('[0.1, 0.2]', "x", CALM),
    ('0.9', "x", CALM),
    ('null', "x", CALM),
    ('"excited"', "x", CALM),
    # other languages
    ('嬉しい: 0.9', "x", CALM),
    ('{"happy": 0.9, "sad": 0.1}', "x", CALM),  # English keys are not scores of the model's labels
    # extra keys, nesting
    ('{"高兴": 0.5, "confidence": 0.9, "happy": 1.0}', "x", v(happy=0.5)),
    ('{"scores": {"高兴": 0.9}}', "x", CALM),
    ('{"高兴": [0.5], "惊讶": 0.2}', "x", v(surprised=0.2)),
    # out of range / odd numbers
    ('{"愤怒": 3.5, "悲伤": -0.4, "恐惧": 1.2}', "x", v(angry=1.2, afraid=1.2)),
    ('{"高兴": "0.7"}', "x", v(happy=0.7)),
    ('{"高兴": "very", "愤怒": 0.3}', "x", v(angry=0.3)),
    ('{"高兴": NaN, "愤怒": 0.4}', "x", v(angry=0.4)),
    ('{"高兴": Infinity}', "x", v(happy=1.2)),
    ('{"高兴": true}', "x", v(happy=1.0)),
    ('{"高兴": 0, "自然": 0}', "x", CALM),
    ('{"高兴": -1}', "x", CALM),
    # labels instead of scores
    ('"悲伤"', "x", v(sad=1.0)),
    ('"Surprised"', "x", v(surprised=1.0)),
    ('"  calm "', "x", v(calm=1.0)),
    ('{"emotion": "angry", "confidence": 0.8}', "x", v(angry=1.0)),
    ('{"情绪": "恐惧"}', "x", v(afraid=1.0)),
    ('{"label": "DISGUSTED"}', "x", v(disgusted=1.0)),
    ('{"label": "happy", "悲伤": 0.4}', "x", v(sad=0.4)),  # scores present: the label field is ignored
    ('{"悲伤": "低落"}', "x", v(melancholic=1.0)),
    ('{"高兴": "高兴"}', "x", v(happy=1.0)),
    ('{"惊讶": "surprised", "愤怒": 0.2}', "x", v(surprised=1.0, angry=0.2)),
    ('{"高兴": "愤怒", "愤怒": "高兴"}', "x", v(happy=1.0, angry=1.0)),
    # </think> blocks
    ('<think>\n用户很生气 "愤怒": 1.0\n</think>\n\n{"高兴": 0.3}', "x", v(happy=0.3)),
    ('<think></think>{"悲伤": 0.2}</think>{"恐惧": 0.6}', "x", v(afraid=0.6)),  # after the last one
    ('<think>\n分析: 0.5', "x", CALM),
    # melancholy work-around (swap 悲伤 / 低落 when the input names melancholy)
    ('{"悲伤": 0.8, "低落": 0.1}', "A gloomy day.", v(sad=0.1, melancholic=0.8)),
    ('{"悲伤": 0.6}', "我今天很低落", v(melancholic=0.6)),
    ('{"悲伤": 0.6, "高兴": 0.1}', "I feel DEPRESSED", v(melancholic=0.6, happy=0.1)),
    ('{"低落": 0.3}', "Melancholic music", v(sad=0.3)),
    ('{"悲伤": 0.6}', "I am sad", v(sad=0.6)),
    ('悲伤: 0.7, 低落: 0.2', "depression", v(sad=0.2, melancholic=0.7)),  # fallback pattern + swap
    ('{"emotion": "sad"}', "gloomy", v(sad=1.0)),  # no score keys: nothing to swap, label applies
]


@pytest.mark.parametrize("raw, text, expected", CASES)
def test_parse_table(raw, text, expected):
    assert parse_emotion_output(raw, text) == [float(x) for x in expected]


def test_table_size():
    assert len(CASES) >= 30


def test_malformed_output_logs(caplog):
    with caplog.at_level(logging.WARNING, logger="indextts2_core.emotion.text_emotion"):
        assert parse_emotion_output("no scores here", "x") == [float(x) for x in CALM]
    assert any("not JSON" in r.message for r in caplog.records)
    assert any("using calm" in r.message for r in caplog.records)


def test_bad_arguments():
    with pytest.raises(ValueError, match="two strings"):
        parse_emotion_output(None, "x")
    with pytest.raises(ValueError, match="two strings"):
        parse_emotion_output("{}", 3)


def test_cut_after_think():
    assert cut_after_think([1, 2, 9, 3, 9, 4, 5], 9) == [4, 5]
    assert cut_after_think([1, 2, 3], 9) == [1, 2, 3]
    assert cut_after_think([1, 2, 9], 9) == []
    assert cut_after_think([1, 9, 2], None) == [1, 9, 2]
