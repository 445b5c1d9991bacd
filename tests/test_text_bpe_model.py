"""bpe.model reading: intact files load as they are, a damaged TrainerSpec string is repaired
(the e2e kits' scrubbed files), anything else fails with the file named."""

import json

import pytest

from conftest import E2E_KIT, PUBLIC_KIT, need
from indextts2_core.text import TextTokenizer
from indextts2_core.text.bpe_model import read_bpe_model, repair_sentencepiece


def test_intact_model_is_untouched():
    intact = need(PUBLIC_KIT / "checkpoints" / "bpe.model")
    assert repair_sentencepiece(intact.read_bytes()) is None
    assert read_bpe_model(intact) == intact.read_bytes()


def test_damaged_trainer_spec_is_repaired(caplog):
    damaged = need(E2E_KIT / "static" / "bpe.model")
    fixed = repair_sentencepiece(damaged.read_bytes())
    assert fixed is not None and len(fixed) == damaged.stat().st_size
    tok = TextTokenizer(damaged)
    assert "repaired" in caplog.text
    case = json.loads((E2E_KIT / "inputs" / "text.json").read_text(encoding="utf-8"))["A"]
    assert tok.tokenize(case["text"]) == case["tokens"] and tok.encode(case["text"]) == case["ids"]


def test_other_damage_fails_naming_the_file(tmp_path):
    bad = tmp_path / "bpe.model"
    bad.write_bytes(b"\xff\xff\xff not a model")
    with pytest.raises(ValueError, match="bpe.model.*not a readable SentencePiece model"):
        TextTokenizer(bad)
    intact = need(PUBLIC_KIT / "checkpoints" / "bpe.model").read_bytes()
    (tmp_path / "cut.model").write_bytes(intact[: len(intact) // 3])
    with pytest.raises(ValueError, match="cut.model"):
        TextTokenizer(tmp_path / "cut.model")
    with pytest.raises(FileNotFoundError):
        TextTokenizer(tmp_path / "missing.model")
