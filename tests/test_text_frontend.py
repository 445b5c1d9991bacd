"""Unit tests of the text front end: segmentation (§3.5), normaliser logic (§3.2) with a stand-in
TN engine, the real engines on the spec's examples, and the tokenizer on the real bpe.model."""

from __future__ import annotations

import pytest

import indextts2_core.text.normalizer as normalizer_module
from conftest import OFFICIAL, need
from indextts2_core.text import (GLOSSARY_FILE, TextNormalizer, TextTokenizer, load_glossary, split_segments,
                                 tokenize_by_cjk_char, use_chinese)
from indextts2_core.text.normalizer import correct_pinyin, placeholder_tag


def _cjk_pieces(text: str) -> list[str]:
    """Pieces the real model gives for spaced CJK text: '▁' + char, '▁,' and '▁.'."""
    out = []
    for ch in text:
        out += {"，": ["▁,"], "。": ["▁."]}.get(ch, ["▁", ch])
    return out


# -- segmentation --------------------------------------------------------------------------------
def test_segments_chinese_paragraph_packs_to_the_limit():
    sentence = _cjk_pieces("今天天气很好，我们去公园散步吧。")
    assert len(sentence) == 30
    segments = split_segments(sentence * 12, 120)
    assert [len(s) for s in segments] == [120, 120, 120]
    assert sum(segments, []) == sentence * 12


def test_segments_english_example_with_small_limit():
    pieces = ["▁HELLO", "▁THERE", ",", "▁MY", "▁FRIEND", ".", "▁HOW", "▁ARE", "▁YOU", "?", "▁I", "'", "M",
              "▁FINE", ",", "▁THANKS", "!", "▁AND", "▁YOU", "?"]
    assert ["".join(s) for s in split_segments(pieces, 8)] == [
        "▁HELLO▁THERE,▁MY▁FRIEND.", "▁HOW▁ARE▁YOU?", "▁I'M▁FINE,", "▁THANKS!▁AND▁YOU?"]


def test_segments_apostrophe_after_sentence_end_is_duplicated():
    pieces = ["A", "B", "C", ".", "'", "D", "E", "F", "."]
    assert split_segments(pieces, 120) == [["A", "B", "C", ".", "'", "'", "D", "E", "F", "."]]


def test_segments_short_sentence_end_and_hard_cut():
    # "." after only two pieces does not close a segment; a long run is cut every M pieces
    assert split_segments(["X", ".", "Y", "Z", "."], 3) == [["X", ".", "Y"], ["Z", "."]]
    cut = split_segments(["a"] * 7, 3)
    assert cut == [["a"] * 3, ["a"], ["a"] * 3]  # the hard cut leaves a 1-piece segment (Q9)


def test_segments_comma_and_hyphen_flush_then_merge():
    pieces = ["A", "B", ",", "C", "-", "D", "E", "."]
    assert split_segments(pieces, 120) == [pieces]
    assert split_segments(pieces, 4) == [["A", "B", ","], ["C", "-"], ["D", "E", "."]]


def test_segments_quick_streaming_keeps_first_segments_small():
    sentence = _cjk_pieces("今天天气很好，我们去公园散步吧。")
    pieces = sentence * 4  # flushed as runs of 13 (to the comma) and 17 (to the full stop)
    assert [len(s) for s in split_segments(pieces, 60)] == [60, 60]
    quick = split_segments(pieces, 60, quick_streaming_tokens=50)
    assert sum(quick, []) == pieces
    assert [len(s) for s in quick] == [30, 60, 30]  # up to M/2 until Q pieces are seen


def test_segments_empty_and_bad_arguments():
    assert split_segments([], 120) == []
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError):
            split_segments(["A"], bad)
    with pytest.raises(ValueError):
        split_segments(["A"], 10, quick_streaming_tokens=-1)


# -- normaliser logic (stand-in engine) ----------------------------------------------------------
@pytest.fixture
def echo_engine(monkeypatch):
    """Replace the TN engines by a recorder that returns its input unchanged (or raises)."""
    calls = []

    def get_engine(backend, lang, cache_dir=None):
        def run(text):
            calls.append((lang, text))
            if "FAIL" in text:
                raise RuntimeError("engine failure")
            return text
        return run

    monkeypatch.setattr(normalizer_module, "get_engine", get_engine)
    return calls


def test_language_decision():
    assert use_chinese("你好 world")
    assert use_chinese("12345 !!")  # no ASCII letter
    assert use_chinese("abc@example.com")
    assert use_chinese("I read xue2 today")  # tonal pinyin flips English text
    assert not use_chinese("Hello world 123")
    assert not use_chinese("beta")


def test_pinyin_correction_and_placeholders():
    assert correct_pinyin("xue2") == "XVE2"
    assert correct_pinyin("ju4") == "JV4"
    assert correct_pinyin("XUAN4") == "XVAN4"
    assert correct_pinyin("xiang4") == "XIANG4"
    assert correct_pinyin("zhong4") == "zhong4"
    assert [placeholder_tag(i) for i in (0, 1, 25, 26, 27, 701, 702)] == ["a", "b", "z", "aa", "ab", "zz", "aaa"]


def test_chinese_path_protects_and_restores(echo_engine):
    n = TextNormalizer()
    out = n.normalize("他说xue2和zhong4，IndexTTS-2很好；克里斯托弗·诺兰来了。  ")
    assert out == "他说XVE2和zhong4,IndexTTS-2很好,克里斯托弗-诺兰来了."
    lang, sent = echo_engine[-1]
    assert lang == "zh"
    assert "xue2" not in sent and "<pinyin_" in sent and "<n_a>" in sent and "IndexTTS<H>2" in sent
    assert not sent.endswith(" ")  # right-stripped before TN


def test_longer_pinyin_wins_over_its_substring(echo_engine):
    assert TextNormalizer().normalize("他读xuan4，不读an4。") == "他读XVAN4,不读an4."


def test_contractions_punctuation_and_dollar(echo_engine):
    n = TextNormalizer()
    assert n.normalize("It's here's... “Quote” (x) — a; b: c") == "It is here is… 'Quote' 'x' - a, b, c"
    assert n.normalize("价格$5，，，好") == "价格.5,,,好"  # zh adds $ → .; "，" wins over "，，，"
    assert n.normalize("Don't stop") == "Don't stop"


def test_engine_failures(echo_engine):
    n = TextNormalizer()
    assert n.normalize("中文FAIL") == ""  # zh: empty result
    assert n.normalize("What's FAIL-safe: yes") == "What is FAIL-safe, yes"  # en: text before protection


def test_pronunciation_annotations_survive(echo_engine):
    out = TextNormalizer().normalize("读<银行|yin2 hang2>吧")
    assert out == "读<银行|yin2 hang2>吧"
    assert "PRONPLACEHOLDERaPRONPLACEHOLDER" in echo_engine[-1][1]


@pytest.mark.parametrize("text,lang", [
    ("<行|xing2> 25 apples", "en"),  # the annotation's CJK word and pinyin do not make it Chinese
    ("I read <银行|yin2 hang2> twice", "en"),
    ("<minute|M IH1 . N AH0 T> 我们", "zh"),  # content outside the annotation decides
    ("<一|yi1> 25", "en"),  # official quirk: the placeholder's own letters count as ASCII letters
])
def test_annotations_are_protected_before_the_language_decision(echo_engine, text, lang):
    TextNormalizer().normalize(text)
    assert echo_engine[-1][0] == lang


def test_annotation_placeholders_in_match_order(echo_engine):
    out = TextNormalizer().normalize("<a|x1> and <b|y2> and <a|x1> again")
    assert out == "<a|x1> and <b|y2> and <a|x1> again"
    sent = echo_engine[-1][1]
    assert sent == ("PRONPLACEHOLDERaPRONPLACEHOLDER and PRONPLACEHOLDERbPRONPLACEHOLDER and "
                    "PRONPLACEHOLDERcPRONPLACEHOLDER again")


def test_glossary(echo_engine, tmp_path):
    n = TextNormalizer(glossary={"IndexTTS": {"zh": "因德克斯", "en": "index T T S"}, "GPU": "G P U",
                                 "keep": {"fr": "x"}})
    assert n.normalize("用indextts和GPU") == "用因德克斯和G P U"
    assert n.normalize("Use IndexTTS on a gpu, keep") == "Use index T T S on a G P U, keep"
    # longest term first; annotations are protected from the glossary
    n = TextNormalizer(glossary={"AI": "A I", "AI Lab": "A I lab", "x": "Y"})
    assert n.normalize("the AI Lab and AI <x|z1>") == "the A I lab and A I <x|z1>"
    with pytest.raises(ValueError):
        TextNormalizer(glossary={"x": 3})
    with pytest.raises(ValueError):
        TextNormalizer(backend="nope")
    with pytest.raises(ValueError):
        TextNormalizer().normalize(None)


def test_glossary_file(echo_engine, tmp_path):
    path = tmp_path / GLOSSARY_FILE
    path.write_text("AI: A I\nIndexTTS:\n  zh: 因德克斯\n  en: index T T S\n", encoding="utf-8")
    assert load_glossary(path) == {"AI": "A I", "IndexTTS": {"zh": "因德克斯", "en": "index T T S"}}
    assert TextNormalizer(glossary=path).normalize("an AI, indextts") == "an A I, index T T S"
    path.write_text("", encoding="utf-8")
    assert load_glossary(path) == {}


@pytest.mark.parametrize("content,problem", [
    ("AI: [A, I]\n", "'AI'"),  # a list is not a reading
    ("GPU: 3\n", "'GPU'"),  # a number is not a reading (quote it)
    ("2024: 二零二四\n", "2024"),  # a number is not a term
    ("- a\n- b\n", "mapping"),
    ("AI: A I\nAI: B\n", "duplicate"),
    ("AI: {zh: 1}\n", "'AI'"),
    ("AI: 'unclosed\n", "malformed"),
    ("x: !!python/object/apply:os.system ['true']\n", "malformed"),  # no Python tags
    ("[" * 5000 + "]" * 5000, "glossary"),  # deeply nested
])
def test_glossary_file_errors_name_the_problem(tmp_path, content, problem):
    path = tmp_path / GLOSSARY_FILE
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=problem) as info:
        load_glossary(path)
    assert str(path) in str(info.value)


def test_glossary_file_not_utf8(tmp_path):
    path = tmp_path / GLOSSARY_FILE
    path.write_bytes("AI: é".encode("latin-1"))
    with pytest.raises(ValueError, match="UTF-8"):
        load_glossary(path)
    with pytest.raises(FileNotFoundError):
        load_glossary(tmp_path / "missing.yaml")


# -- real engines --------------------------------------------------------------------------------
SPEC_EXAMPLES = [  # spec §3.2 (the same with WeTextProcessing 1.0.4.1 and 1.2.0)
    ("你好，世界。今天是2024年1月1日。", "你好,世界.今天是二零二四年一月一日."),
    ("Hello world, this is a test 123.", "Hello world, this is a test one hundred and twenty three."),
    ("It's 8:00 AM... “Quote” (paren) — dash; semi: colon", "It is eight AM… 'Quote' 'paren' - dash, semi, colon"),
    ("晕XUAN4是一种GAN3觉", "晕XVAN4是一种GAN3觉"),
    ("这酒...里...有毒...", "这酒…里…有毒…"),
]


@pytest.mark.parametrize("text,expected", SPEC_EXAMPLES)
def test_spec_normaliser_examples(text, expected):
    assert TextNormalizer().normalize(text) == expected


def _backend(name: str) -> str:
    pytest.importorskip({"wetextprocessing": "tn", "wetext": "wetext"}[name])
    return name


@pytest.mark.parametrize("backend", ["wetextprocessing", "wetext"])
def test_annotation_does_not_choose_the_language_real_engines(backend):
    n = TextNormalizer(backend=_backend(backend))
    assert n.normalize("<行|xing2> 25 apples") == "<行|xing2> twenty five apples"
    assert n.normalize("我<行|xing2> 25 apples") == "我<行|xing2> 二十五 apples"


def test_zh_grammar_cache_is_keyed_by_both_versions(monkeypatch, tmp_path):
    """A grammar compiled by another WeTextProcessing or pynini is never reused."""
    import importlib.metadata

    import indextts2_core.text.engines as engines

    installed = {"WeTextProcessing": "1.0.4.1", "pynini": "2.1.6"}
    monkeypatch.setattr(engines.importlib.metadata, "version", lambda name: installed[name])
    first = engines.zh_cache_folder(tmp_path)
    assert first.parent == tmp_path and "1.0.4.1" in first.name and "2.1.6" in first.name
    installed["WeTextProcessing"] = "1.2.0"
    assert engines.zh_cache_folder(tmp_path) != first
    installed["WeTextProcessing"], installed["pynini"] = "1.0.4.1", "2.1.7"
    assert engines.zh_cache_folder(tmp_path) != first

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(engines.importlib.metadata, "version", missing)
    assert engines.zh_cache_folder(tmp_path) is None  # unknown versions: compile for this process only


# -- tokenizer -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tokenizer():
    return TextTokenizer(need(OFFICIAL / "bpe.model"))


def test_cjk_split_and_upper_case():
    assert tokenize_by_cjk_char(" 你好,world ok。") == "你 好 ,WORLD OK 。"
    assert tokenize_by_cjk_char("ｶﾀ abc") == "ｶ ﾀ ABC"


def test_tokenizer_spec_examples(tokenizer):
    assert tokenizer.tokenize("你好，世界。") == ["▁", "你", "▁", "好", "▁,", "▁", "世", "▁", "界", "▁."]
    assert tokenizer.encode("你好，世界。") == [10201, 208, 10201, 1260, 10202, 10201, 22, 10201, 3755, 10203]
    assert tokenizer.tokenize("hello world, this") == ["▁HELLO", "▁WORLD", ",", "▁THIS"]


def test_tokenizer_special_paths(tokenizer):
    assert tokenizer.tokenize("") == [] and tokenizer.segments("") == []
    assert tokenizer.tokenize(" \t\n") == [] and tokenizer.segments("  ") == []
    assert tokenizer.tokenize(" a ") == ["▁", "a"]  # single character: raw, not upper-cased
    assert tokenizer.encode("a") == [10201, tokenizer.unk_id] and tokenizer.unk_id == 2
    assert tokenizer.tokenize("5") == ["▁", "5"]  # not normalised to 五
    with pytest.raises(ValueError):
        tokenizer.tokenize(None)
    with pytest.raises(FileNotFoundError):
        TextTokenizer(OFFICIAL / "missing.model")


def test_tokenizer_segments_are_ids_of_split_pieces(tokenizer):
    text = "今天天气很好，我们去公园散步吧。" * 12
    pieces = tokenizer.tokenize(text)
    segments = tokenizer.segments(text, max_tokens=120)
    assert [len(s) for s in segments] == [120, 120, 120]
    assert sum(segments, []) == tokenizer.convert_tokens_to_ids(pieces)
