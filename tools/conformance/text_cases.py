"""Run the text front end on a parity cases file (`python -m tools.conformance text`).

Reads only `id` and `text` of each case; writes one JSON object per case with `normalized`,
`pieces`, `ids`, `segments` ({"120"|"60"|"20": {"pieces", "ids"}}) and `error`
({"type": exception name} of the first failing step, or null), for compare_text.py. With
`--incremental N` the segments come from the incremental path (blocks of N characters), which must
agree with the whole-text fields.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)

SEGMENT_LIMITS = (120, 60, 20)


def find_bpe(cases: Path, bpe: Path | None) -> Path:
    """The bpe.model to use: `bpe` if given, else next to the cases file or in ../../official-data."""
    if bpe is not None:
        if not Path(bpe).is_file():
            raise FileNotFoundError(f"--bpe {bpe}: no such file")
        return Path(bpe)
    here = Path(cases).resolve().parent
    for candidate in (here / "bpe.model", here.parent / "bpe.model",
                      here.parent.parent / "official-data" / "bpe.model",
                      here.parent.parent.parent / "official-data" / "bpe.model"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no bpe.model next to {cases} or in an official-data folder above it; pass --bpe PATH")


def run_case(tokenizer, text: str, block_chars: int | None = None) -> dict:
    """One case; `block_chars`: segments from the incremental path (`iter_segment_pieces` with
    blocks of that many characters) instead of whole-text segmentation."""
    row: dict = {"normalized": None, "pieces": None, "ids": None, "segments": None, "error": None}
    try:
        row["normalized"] = tokenizer.normalizer.normalize(text)
        pieces = tokenizer.tokenize(text)
        row["pieces"] = pieces
        row["ids"] = tokenizer.convert_tokens_to_ids(pieces)
        segs = {}
        for limit in SEGMENT_LIMITS:
            if block_chars is None:
                split = tokenizer.split_segments(pieces, max_tokens=limit)
            else:
                split = list(tokenizer.iter_segment_pieces(text, limit, max_block_chars=block_chars))
            segs[str(limit)] = {"pieces": split, "ids": [tokenizer.convert_tokens_to_ids(s) for s in split]}
        row["segments"] = segs
    except Exception as e:  # recorded per case, like the official recorder does
        row["error"] = {"type": type(e).__name__, "message": str(e)}
    return row


def write_results(cases: Path, out: Path, run) -> tuple[int, float]:
    """`run(case)` for every case of the JSONL file `cases`, written to `out` as {"id", **result}
    rows; returns (cases, seconds)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    n, start = 0, time.perf_counter()
    with open(cases, encoding="utf-8") as src, open(out, "w", encoding="utf-8") as dst:
        for line in src:
            if not line.strip():
                continue
            case = json.loads(line)
            row = {"id": case["id"], **run(case)}
            line = json.dumps(row, ensure_ascii=False)
            if not line.isascii():
                try:
                    line.encode("utf-8")
                except UnicodeEncodeError:  # a lone surrogate (valid in JSON input): write it escaped
                    line = json.dumps(row)
            dst.write(line + "\n")
            n += 1
    return n, time.perf_counter() - start


def run_cases(cases: Path, out: Path, bpe: Path | None = None, normaliser: str = "auto",
              block_chars: int | None = None) -> int:
    from indextts2_core.text import TextNormalizer, TextTokenizer
    from indextts2_core.text.engines import resolve_backend

    try:
        bpe_path = find_bpe(cases, bpe)
    except FileNotFoundError as e:
        print(f"error: {e}")
        return 2
    logging.getLogger("indextts2_core.text").setLevel(logging.ERROR)  # per-case unk / hard-cut notes
    tokenizer = TextTokenizer(bpe_path, TextNormalizer(backend=normaliser))
    n, seconds = write_results(cases, out, lambda case: run_case(tokenizer, case["text"], block_chars))
    print(f"{n} cases -> {out} ({seconds:.1f} s, bpe {bpe_path}, "
          f"normaliser {resolve_backend(normaliser)})")
    return 0
