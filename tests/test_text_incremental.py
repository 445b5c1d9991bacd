"""The incremental text path (issue 16): cut points, block-wise normalisation, the streaming
segmenter, `TextTokenizer.iter_segments`, and lone surrogates.

`iter_segments` must give exactly the segments of whole-text processing. The cut points are checked
here on generated texts; the equality on the real engines is checked against the official cases
(every case that has a cut point, with a block at every cut) and on texts made of several cases.
"""

from __future__ import annotations

import json
import random

import pytest

import indextts2_core.text.normalizer as normalizer_module
from conftest import OFFICIAL, TEXT_CASES, need
from indextts2_core.text import TextNormalizer, TextTokenizer, split_segments, use_chinese
from indextts2_core.text.chunks import cut_points, split_blocks
from indextts2_core.text.segment import iter_split_segments

LIMITS = (120, 60, 20)


# -- cut points ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text,cut_after", [
    ("The river flows. The town sleeps.", ["The river flows. "]),
    ("Really? Yes! Fine.", ["Really? ", "Yes! "]),
    ("你好。世界！好吗？ 是的", ["你好。", "世界！", "好吗？ "]),
    ("他说完了。ABC 很好", []),  # a Latin letter right after 。 would join its piece: no cut
    ("Dr. Walker met Mr. Smith on Main St. Louis.", []),  # abbreviations read differently when cut
    ("Bring pens, paper, etc. to the exam. Then go.", ["Bring pens, paper, etc. to the exam. "]),
    ("Meet at 5 p.m. Then leave. Ms. Clark works at NASA. The end.", ["Meet at 5 p.m. Then leave. "]),
    ("It was 'done'. Next one.", []),  # a quote before the stop: not a plain word
])
def test_cut_points(text, cut_after):
    cuts = cut_points(text, chinese=True)
    assert [text[:c] for c in cuts][:len(cut_after)] == [
        "".join(cut_after[:i + 1]) for i in range(len(cut_after))]
    assert len(cuts) == len(cut_after)


def test_english_cut_points_need_a_space():
    # WeTextProcessing's English grammar deletes a newline or NBSP after the stop, joining the words
    text = "It is late.\nTime flies.\u00a0It ended. Done"
    assert cut_points(text, chinese=False) == [len(text) - len("Done")]
    assert cut_points("Hello。\nWorld。 Again", chinese=False) == [len("Hello。\nWorld。 ")]
    assert cut_points("你好。\n世界", chinese=True) == [len("你好。\n")]


def test_blocks_rebuild_the_text_and_respect_the_size():
    rnd = random.Random(5)
    words = ["word", "Dr.", "end.", "ends!", "why?", "你好。", "世界", "5 kg", "etc.", "\n", "  ", "C++", "<a|b c>"]
    for _ in range(300):
        text = " ".join(rnd.choice(words) for _ in range(rnd.randint(0, 60)))
        for max_chars, chinese in ((1, True), (7, False), (40, True), (400, False)):
            blocks = split_blocks(text, max_chars, chinese)
            assert "".join(blocks) == text
            cuts = set(cut_points(text, chinese))
            ends = [sum(map(len, blocks[:i + 1])) for i in range(len(blocks) - 1)]
            assert set(ends) <= cuts  # blocks end only at cut points
            for block, start in zip(blocks, [0] + ends):
                inner = [c for c in cuts if start < c < start + len(block)]
                assert len(block) <= max_chars or not inner
    with pytest.raises(ValueError):
        split_blocks("a", 0)


# -- streaming segmenter -------------------------------------------------------------------------
def test_streaming_segmenter_equals_the_list_one_on_generated_pieces():
    rnd = random.Random(11)
    vocab = ["▁A", "B", "▁C", ".", "▁.", "!", "?", "▁?", ",", "▁,", "-", "'", "▁'", "▁", "你"]
    for _ in range(2000):
        pieces = [rnd.choice(vocab) for _ in range(rnd.randint(0, 80))]
        limit, quick = rnd.choice([1, 2, 3, 5, 8, 20, 120]), rnd.choice([0, 0, 3, 10])
        assert list(iter_split_segments(iter(pieces), limit, quick)) == split_segments(pieces, limit, quick)


def test_streaming_segmenter_yields_before_the_input_ends():
    def pieces():
        for _ in range(5):
            yield from ["▁A", "▁B", "▁C", "."]
        raise AssertionError("read past what the first segments need")

    stream = iter_split_segments(pieces(), 4)
    assert next(stream) == ["▁A", "▁B", "▁C", "."]
    with pytest.raises(ValueError):
        iter_split_segments([], 0)


# -- block-wise normalisation with a stand-in engine ----------------------------------------------
@pytest.fixture
def counting_engine(monkeypatch):
    """An engine that upper-cases and records each call (to see what reaches it, block by block)."""
    calls = []

    def get_engine(backend, lang, cache_dir=None):
        def run(text):
            calls.append(text)
            return text.upper()
        return run

    monkeypatch.setattr(normalizer_module, "get_engine", get_engine)
    return calls


def test_chinese_blocks_are_normalised_one_by_one(counting_engine):
    n = TextNormalizer(backend="wetextprocessing")
    text = "第一句话。第二句xue2话！ 第三句<行|xing2>话？"
    blocks = list(n.normalize_blocks(text, max_chars=1))
    assert "".join(blocks) == n.normalize(text)
    assert counting_engine[:3] == ["第一句话。", "第二句<pinyin_a>话！ ", "第三句PRONPLACEHOLDERaPRONPLACEHOLDER话？"]


def test_branch_and_spans_are_decided_on_the_whole_text(counting_engine):
    n = TextNormalizer(backend="wetextprocessing")
    # the English sentence is in a Chinese text: Chinese path for every block, as for the whole text
    blocks = list(n.normalize_blocks("Hello there. 你好。", max_chars=1))
    assert "".join(blocks) == n.normalize("Hello there. 你好。")


def test_english_blocks_are_read_after_their_context(counting_engine):
    n = TextNormalizer(backend="wetextprocessing")
    text = "First sentence here. Second sentence there. Third one."
    out = list(n.normalize_blocks(text, max_chars=1, context_chars=1000))
    assert "".join(out).split() == n.normalize(text).split()
    # each block after the first is read behind all of the text before it
    assert "First sentence here. Second sentence there. Third one." in counting_engine


# -- real engines against the official cases -----------------------------------------------------
def _backend(name):
    pytest.importorskip({"wetextprocessing": "tn", "wetext": "wetext"}[name])
    return name


@pytest.fixture(scope="module")
def cases():
    need(TEXT_CASES)
    return [json.loads(line) for line in TEXT_CASES.read_text(encoding="utf-8").splitlines() if line.strip()]


def _expected_segments(case: dict, backend: str, limit: int) -> list[list[int]]:
    if backend == "wetextprocessing":
        return case["segments"][str(limit)]["ids"]
    # the wetext path records pieces only; segmentation does not depend on the platform
    pieces = case["pieces_wetext"]
    tokenizer_ids = dict(zip(case["pieces_wetext"], case["ids_wetext"]))
    return [[tokenizer_ids[p] for p in seg] for seg in split_segments(pieces, limit)]


# English long paragraphs whose numbers read differently after ~20 words: the context must work
CONTEXT_CASES = ("pub-long_paragraph-002", "pub-long_paragraph-005")


@pytest.mark.parametrize("backend", ["wetextprocessing", "wetext"])
def test_iter_segments_reproduces_the_multi_block_cases(cases, backend):
    """Every Chinese-path case with a cut point (a block at every cut) and the English paragraphs
    that need their context (blocks of 300 characters, to keep the test short; the conformance
    command `text --incremental 1` checks every case with a block at every cut)."""
    tokenizer = TextTokenizer(need(OFFICIAL / "bpe.model"), TextNormalizer(backend=_backend(backend)))
    chosen = [(c, 1) for c in cases if len(c["text"].strip()) > 1 and use_chinese(c["text"])
              and len(split_blocks(c["text"], 1, True)) > 1]
    chosen += [(c, 300) for c in cases if c["id"] in CONTEXT_CASES]
    assert len(chosen) >= 8 and sum(c["category"] == "long_paragraph" for c, _ in chosen) >= 4
    for case, block_chars in chosen:
        got = list(tokenizer.iter_segments(case["text"], 20, max_block_chars=block_chars))
        assert got == _expected_segments(case, backend, 20), case["id"]
        assert block_chars == 1 or len(split_blocks(case["text"], block_chars, False)) >= 2


@pytest.mark.parametrize("backend", ["wetextprocessing", "wetext"])
def test_iter_segments_equals_whole_text_on_joined_cases(cases, backend):
    """Texts of several cases (mixed languages, digits only in some, different separators)."""
    tokenizer = TextTokenizer(need(OFFICIAL / "bpe.model"), TextNormalizer(backend=_backend(backend)))
    rnd = random.Random(7)
    pool = [c for c in cases if c["category"] not in ("long_paragraph", "empty_whitespace_only")]
    for _ in range(6):
        picked = rnd.sample(pool, 6)
        text = rnd.choice([" ", "\n", "\n\n"]).join(c["text"] for c in picked)
        whole = tokenizer.segments(text, 60)
        assert list(tokenizer.iter_segments(text, 60, max_block_chars=1)) == whole, [c["id"] for c in picked]


def test_iter_segments_checks_arguments_before_the_first_segment():
    tokenizer = TextTokenizer(need(OFFICIAL / "bpe.model"))
    with pytest.raises(ValueError, match="max_tokens"):
        tokenizer.iter_segments("你好。", 0)
    with pytest.raises(ValueError, match="string"):
        tokenizer.iter_segments(None)
    with pytest.raises(ValueError, match="max_block_chars"):
        tokenizer.iter_segments("你好。", max_block_chars=0)
    assert list(tokenizer.iter_segments("")) == [] and list(tokenizer.iter_segments("  \n")) == []
    assert list(tokenizer.iter_segments(" a ")) == tokenizer.segments(" a ")  # raw single-character path


# -- lone surrogates (issue 16 item 7) -----------------------------------------------------------
def _with_surrogates(rnd: random.Random, base: str) -> tuple[str, list[int]]:
    text = list(base)
    positions = sorted((rnd.randint(0, len(text)) for _ in range(rnd.randint(1, 4))), reverse=True)
    for pos in positions:
        text.insert(pos, chr(rnd.choice([0xD800, 0xD83D, 0xDBFF, 0xDC00, 0xDE00, 0xDFFF])))
    text = "".join(text)
    lone, i = [], 0
    while i < len(text):  # what the message must name: surrogates not forming a high+low pair
        if 0xD800 <= ord(text[i]) <= 0xDBFF and i + 1 < len(text) and 0xDC00 <= ord(text[i + 1]) <= 0xDFFF:
            i += 2
            continue
        if 0xD800 <= ord(text[i]) <= 0xDFFF:
            lone.append(i)
        i += 1
    return text, lone


def test_lone_surrogates_are_refused_naming_them(counting_engine):
    tokenizer = TextTokenizer(need(OFFICIAL / "bpe.model"), TextNormalizer(backend="wetext"))
    rnd = random.Random(3)
    refused = 0
    for _ in range(200):
        text, lone = _with_surrogates(rnd, rnd.choice(["你好，世界。", "Hello world.", "a", ""]))
        calls = (tokenizer.tokenize, tokenizer.segments, tokenizer.iter_segments, tokenizer.normalizer.normalize)
        for call in calls:
            if not lone:
                call(text)  # only pairs: they are one character each
                continue
            with pytest.raises(ValueError, match=f"{len(lone)} lone UTF-16 surrogate") as info:
                call(text)
            assert f"U+{ord(text[lone[0]]):04X} at character {lone[0]}" in str(info.value)
        refused += bool(lone)
    assert refused > 150


def test_surrogate_pairs_read_as_their_character(counting_engine):
    n = TextNormalizer(backend="wetext")
    assert n.normalize("笑\ud83d\ude00了") == n.normalize("笑😀了")
