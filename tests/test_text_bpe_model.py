"""bpe.model: intact files load as they are; the e2e kits' damaged TrainerSpec string is repaired by
the kit tooling (never by the tokenizer, which refuses a damaged file with a checkpoint error)."""

import json

import pytest

from conftest import E2E_KIT, PUBLIC_KIT, need
from indextts2_core.checkpoints import CheckpointError
from indextts2_core.text import TextTokenizer
from tools.conformance.kit_files import readable_bpe, repair_sentencepiece


def test_intact_model_is_untouched(tmp_path):
    intact = need(PUBLIC_KIT / "checkpoints" / "bpe.model")
    assert repair_sentencepiece(intact.read_bytes()) is None
    assert readable_bpe(intact, tmp_path) == intact
    assert not list(tmp_path.iterdir())


def test_damaged_trainer_spec_is_repaired_by_the_kit_tooling(tmp_path):
    damaged = need(E2E_KIT / "static" / "bpe.model")
    with pytest.raises(CheckpointError, match="bpe.model.*not a readable SentencePiece model"):
        TextTokenizer(damaged)
    fixed = readable_bpe(damaged, tmp_path)
    assert fixed.parent == tmp_path and fixed.stat().st_size == damaged.stat().st_size
    tok = TextTokenizer(fixed)
    case = json.loads((E2E_KIT / "inputs" / "text.json").read_text(encoding="utf-8"))["A"]
    assert tok.tokenize(case["text"]) == case["tokens"] and tok.encode(case["text"]) == case["ids"]


def test_other_damage_fails_naming_the_file(tmp_path):
    bad = tmp_path / "bpe.model"
    bad.write_bytes(b"\xff\xff\xff not a model")
    with pytest.raises(CheckpointError, match="bpe.model.*not a readable SentencePiece model"):
        TextTokenizer(bad)
    with pytest.raises(ValueError, match="bpe.model"):
        readable_bpe(bad, tmp_path / "out")
    intact = need(PUBLIC_KIT / "checkpoints" / "bpe.model").read_bytes()
    (tmp_path / "cut.model").write_bytes(intact[: len(intact) // 3])
    with pytest.raises(CheckpointError, match="cut.model"):
        TextTokenizer(tmp_path / "cut.model")
    (tmp_path / "empty.model").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.model"):
        TextTokenizer(tmp_path / "empty.model")
    with pytest.raises(FileNotFoundError):
        TextTokenizer(tmp_path / "missing.model")
