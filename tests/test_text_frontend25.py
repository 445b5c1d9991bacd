"""The IndexTTS-2.5 text front end: the official cases through the CLI (judged by the kit's
compare_text25.py), the kit stage `text25`, and the parts one by one (vocabulary, annotations,
segmenter, languages, Japanese dependencies)."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from conftest import ROOT, SHARED, need
from indextts2_core.checkpoints import CheckpointError
from indextts2_core.text import TextNormalizer
from indextts2_core.text.frontend25 import (SUPPORTED_LANGUAGES, TextFrontend25, annotate, detect_language,
                                            recase_special_tokens)
from indextts2_core.text.segment25 import segment_budget, split_text_by_tokens
from indextts2_core.text.tiktoken_tokenizer import LANGUAGES, TiktokenTokenizer, language_index, read_ranks

pytest.importorskip("tiktoken")

KIT25 = SHARED / "parity" / "public25"
CASES25 = KIT25 / "text25" / "text_cases.jsonl"
VOCAB = KIT25 / "checkpoints" / "multilingual_zh_ja_yue_char_del.tiktoken"


@pytest.fixture(scope="module")
def frontend() -> TextFrontend25:
    return TextFrontend25(need(VOCAB), TextNormalizer())


# -- the official cases and the kit stage --------------------------------------------------------
def test_cli_matches_every_public_case(tmp_path):
    cases = need(CASES25)
    out = tmp_path / "results.jsonl"
    proc = subprocess.run([sys.executable, "-m", "tools.conformance", "text", "--cases", str(cases), "--out", str(out),
                           "--tokenizer", str(need(VOCAB))], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 156 and all(r["error"] is None for r in rows)
    check = subprocess.run([sys.executable, str(KIT25 / "text25" / "compare_text25.py"), str(cases), str(out)],
                           capture_output=True, text=True)
    assert check.returncode == 0 and "ALL FIELDS AGREE" in check.stdout, check.stdout[-3000:]


def test_cli_never_reads_expected_fields(tmp_path):
    """Only id, lang, text and text_normalization reach the front end."""
    cases = [json.loads(line) for line in need(CASES25).read_text(encoding="utf-8").splitlines()]
    sample = [c for c in cases if c["category"] in ("ja_annotation", "lang_codes", "long_segmentation")]
    stripped = tmp_path / "cases.jsonl"
    stripped.write_text("".join(json.dumps({k: c[k] for k in ("id", "lang", "text", "text_normalization")},
                                           ensure_ascii=False) + "\n" for c in sample), encoding="utf-8")
    out = tmp_path / "results.jsonl"
    proc = subprocess.run([sys.executable, "-m", "tools.conformance", "text", "--cases", str(stripped),
                           "--out", str(out), "--tokenizer", str(VOCAB)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for case, row in zip(sample, map(json.loads, out.read_text(encoding="utf-8").splitlines())):
        assert row["final_text"] == case["final_text"] and row["segments"]["20"] == {
            k: case["segments"]["20"][k] for k in ("texts", "ids")}, case["id"]


def test_cli_refuses_a_non_tiktoken_tokenizer(tmp_path):
    bad = tmp_path / "vocab.model"
    bad.write_text("x", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "tools.conformance", "text", "--cases", str(bad), "--out",
                           str(tmp_path / "r.jsonl"), "--tokenizer", str(bad)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0 and ".tiktoken" in proc.stderr


def test_kit_stage_text25_passes(tmp_path):
    need(KIT25)
    proc = subprocess.run([sys.executable, "-m", "tools.conformance", "run", "--kit", str(KIT25), "--out", str(tmp_path),
                           "--stages", "text25"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0 and "text25: ran: PASS" in proc.stdout, proc.stdout + proc.stderr[-2000:]


# -- vocabulary ----------------------------------------------------------------------------------
def test_vocabulary_and_special_ids(frontend):
    tok = frontend.tokenizer
    assert tok.vocab_size == 60509 and len(LANGUAGES) == 106
    spec_ids = {"<|en|>": 58838, "<|zh|>": 58839, "<|es|>": 58841, "<|ja|>": 58845, "<|ar|>": 58851, "<|su|>": 58936,
                "<|ASR|>": 58937, "<|HAPPY|>": 58948, "<|notimestamps|>": 58957, "<|SPECIAL_TOKEN_1|>": 58958,
                "<|SPECIAL_TOKEN_2|>": 58959, "<|SPECIAL_TOKEN_30|>": 58987, "<|TTS/B|>": 58988,
                "<|TTS/SP13|>": 59007, "<|0.00|>": 59008, "<|30.00|>": 60508}
    assert {t: tok.token_id(t) for t in spec_ids} == spec_ids
    # spec 2.5 §3.6 / §3.9 / §3.11 worked examples
    assert tok.encode("<|zh|> 你好!世界.") == [58839, 220, 48934, 50371, 0, 48721, 53743, 13]
    assert tok.encode("<|en|> hello") == [58838, 7627] and tok.encode("<|ja|> です") == [58845, 2594, 100, 48552]
    assert tok.encode("<|EN|>") == [27, 91, 2188, 91, 29]  # not a special token: literal text
    assert tok.encode("<|es|> ¿CÓMO ESTÁS?") == [58841, 3806, 34, 41198, 18507, 45475, 31159, 50, 30]
    assert [language_index(c) for c in ("en", "ZH", "es", "ja", "ar", "yue", "zh/en", "zhen", "xx")] == [
        0, 1, 3, 7, 13, 99, 103, 105, 105]


@pytest.mark.parametrize("content,problem", [
    ("IQ== 0\nIg== 2\n", "ranks"),  # a gap
    ("IQ== 0\nIQ== 1\n", "twice"),
    ("IQ== 0\nnot base64! 1\n", "line 2"),
    ("IQ== zero\n", "line 1"),
    ("IQ== 0 7\n", "line 1"),
])
def test_bad_vocabulary_files_are_refused(tmp_path, content, problem):
    path = tmp_path / "bad.tiktoken"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CheckpointError, match=problem):
        read_ranks(path)
    with pytest.raises(FileNotFoundError):
        TiktokenTokenizer(tmp_path / "missing.tiktoken")


# -- annotations, re-casing, segmenter ------------------------------------------------------------
def test_annotations():
    assert annotate("银<行|xing2>里") == "银<|SPECIAL_TOKEN_2|>XING2<|SPECIAL_TOKEN_2|>里"
    assert annotate("a <minute|m ih1 . n ah0 t> b") == "a <|SPECIAL_TOKEN_1|>M IH1 . N AH0 T<|SPECIAL_TOKEN_1|> b"
    assert annotate("<上手|じょうず>だ") == " じょうず だ" and annotate("<上手|ジョウズ>") == " ジョウズ "
    # quirks (R7): mixed kana, or hiragana with the long-vowel mark, is not "kana"
    assert annotate("<上手|じょウず>") == "<|SPECIAL_TOKEN_2|>じょウず<|SPECIAL_TOKEN_2|>"
    assert annotate("<x|らーめん>") == "<|SPECIAL_TOKEN_1|>らーめん<|SPECIAL_TOKEN_1|>"
    assert recase_special_tokens("<|happy|> <|en|> <|tts/b|>") == "<|HAPPY|> <|EN|> <|TTS/B|>"


def test_segmenter_properties_with_a_counting_function():
    rnd = random.Random(2)
    alphabet = list("abc, .!?你好") + ["<|SPECIAL_TOKEN_1|>AB CD<|SPECIAL_TOKEN_1|>"]
    for _ in range(500):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 80)))
        budget = rnd.randint(1, 30)
        segs = split_text_by_tokens(text, len, budget)
        assert "".join(segs) == text and segs
        for seg in segs:  # over the budget only: an annotation span, or one character
            assert len(seg) <= budget or "SPECIAL_TOKEN" in seg or len(seg) == 1 or len(text) <= budget
    assert segment_budget(120, 2, 602) == 118 and segment_budget(1000, 7, 602) == 593
    assert segment_budget(1, 2, 602) == 1


def test_segmenter_spec_example(frontend):
    segments = frontend.segments("今天天气很好，我们去公园散步吧。" * 12, "zh")
    assert [len(s.ids) - 1 for s in segments] == [114, 82]  # spec 2.5 §3.9 (with the prefix)
    assert all(s.ids[-1] == 1 and s.lang_id == 1 for s in segments)


# -- languages -----------------------------------------------------------------------------------
def test_languages(frontend):
    assert frontend.segments("Hello world!", "EN")[0].ids == [58838, 7627, 1002, 0, 1]  # spec §3.11
    with pytest.raises(ValueError, match="unsupported language 'fr'.*zh, en, ja, es, ar"):
        frontend.segments("bonjour", "fr")
    for bad in ("", None, 3):
        with pytest.raises(ValueError, match="language"):
            frontend.segments("hello", bad)
    fr = frontend.segments("bonjour", "fr", allow_any_language=True)[0]  # the official handling
    assert fr.ids[0] == 58838 + LANGUAGES.index("fr") and fr.lang_id == 6
    zhen = frontend.segments("你好", "zhen", allow_any_language=True)[0]
    assert zhen.ids[:7] == [27, 91, 89, 2915, 91, 29, 220] and zhen.lang_id == 105


@pytest.mark.parametrize("text,lang", [
    ("今天天气很好。", "zh"), ("The weather is nice.", "en"), ("今日はいい天気です。", "ja"),
    ("¿Dónde está la estación?", "es"), ("مرحبا بكم", "ar"), ("<上手|じょうず>だ", "ja"), ("12345", "en"),
])
def test_auto_language(frontend, text, lang):
    assert detect_language(text) == lang
    assert frontend.prepare(text, "auto").language == lang
    assert set(SUPPORTED_LANGUAGES) >= {detect_language(text)}


def test_normalisation_switch_and_empty_text(frontend):
    on, off = frontend.prepare("今天是2025年3月8日。", "zh"), frontend.prepare("今天是2025年3月8日。", "zh", normalize=False)
    assert on.normalized == "今天是二零二五年三月八日." and off.normalized is None and off.final_text == "今天是2025年3月8日."
    assert frontend.prepare("¿Cómo estás?", "es").final_text == "¿CÓMO ESTÁS?"  # es: upper case, not normalised
    assert [s.ids for s in frontend.segments("", "zh")] == [[58839, 220, 1]]  # official: one prefix-only segment
    with pytest.raises(ValueError, match="surrogate"):
        frontend.segments("a\ud800", "en")


def test_japanese_needs_fugashi_only_for_japanese(monkeypatch):
    from indextts2_core.text.japanese import JapaneseSegmenter

    monkeypatch.setitem(sys.modules, "fugashi", None)  # as if not installed
    frontend = TextFrontend25(need(VOCAB), TextNormalizer(), JapaneseSegmenter())
    assert frontend.segments("Hello.", "en")[0].ids[0] == 58838
    with pytest.raises(ImportError, match="pip install fugashi unidic-lite"):
        frontend.segments("今日はいい天気です。", "ja")


def test_japanese_segmentation(frontend):
    pytest.importorskip("fugashi")
    # spec 2.5 §3.7 example: after the steps before it, annotations read as kana
    prepared = frontend.prepare("彼は料理が<上手|じょうず>だが、囲碁では<上手|うわて>に負けた。", "ja")
    assert prepared.final_text == "彼 は 料理 が じょうず だ が , 囲碁 で は うわて に 負け た ."
    ids = frontend.segments("彼は料理が<上手|じょうず>だが、囲碁では<上手|うわて>に負けた。", "ja")[0].ids
    assert len(ids) == 40 and ids[:6] == [58845, 220, 51080, 2594, 107, 220] and ids[-2:] == [2402, 1]


def test_text_normalization_off_keeps_numbers_and_is_2_5_only(frontend, tmp_path):
    from indextts2_core.pipeline import text_segments
    from indextts2_core.text import TextTokenizer

    spoken = frontend.tokenizer.decode(list(text_segments(frontend, "I have 25 apples.", 120, "en")[0].ids[:-1]))
    raw = frontend.tokenizer.decode(list(text_segments(frontend, "I have 25 apples.", 120, "en", normalize=False)[0].ids[:-1]))
    assert "twenty five" in spoken and "25" in raw and "twenty" not in raw
    assert raw.startswith("<|en|> i have")  # the case rule still applies, as officially
    v2 = TextTokenizer(need(SHARED / "official-data" / "bpe.model"), TextNormalizer())
    with pytest.raises(ValueError, match="IndexTTS-2 always normalises"):
        text_segments(v2, "I have 25 apples.", 120, normalize=False)
