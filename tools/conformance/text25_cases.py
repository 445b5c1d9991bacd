"""Run the IndexTTS-2.5 text front end on a parity cases file
(`python -m tools.conformance text --cases C --out R --tokenizer FILE.tiktoken`).

Reads `id`, `text`, `lang` and `text_normalization` (default true) of each case; writes one JSON
object per case with `normalized`, `final_text`, `lang_id`, `segments` ({"120"|"60"|"20":
{"texts", "ids"}}) and `error` ({"type", "message"} or null), for public25/text25/compare_text25.py.
Any language code is taken as the official code takes it (`allow_any_language`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from .text_cases import write_results

SEGMENT_LIMITS = (120, 60, 20)


def run_case25(frontend, case: dict) -> dict:
    row: dict = {"normalized": None, "final_text": None, "lang_id": None, "segments": None, "error": None}
    try:
        prepared = frontend.prepare(case["text"], case["lang"], case.get("text_normalization", True),
                                    allow_any_language=True)
        row.update(normalized=prepared.normalized, final_text=prepared.final_text, lang_id=prepared.lang_id)
        segments = {}
        for limit in SEGMENT_LIMITS:
            texts = frontend.split(prepared, limit)
            ids = [frontend.tokenizer.encode(prepared.prefix + t) + [1] for t in texts]
            segments[str(limit)] = {"texts": texts, "ids": ids}
        row["segments"] = segments
    except Exception as e:  # recorded per case, like the official recorder does
        row["error"] = {"type": type(e).__name__, "message": str(e)}
    return row


def run_cases25(cases: Path, out: Path, tokenizer: Path, normaliser: str = "auto") -> int:
    from indextts2_core.text import TextNormalizer
    from indextts2_core.text.engines import resolve_backend
    from indextts2_core.text.frontend25 import TextFrontend25

    if not Path(tokenizer).is_file():
        print(f"error: --tokenizer {tokenizer}: no such file")
        return 2
    logging.getLogger("indextts2_core.text").setLevel(logging.ERROR)
    frontend = TextFrontend25(tokenizer, TextNormalizer(backend=normaliser))
    n, seconds = write_results(cases, out, lambda case: run_case25(frontend, case))
    print(f"{n} cases -> {out} ({seconds:.1f} s, tokenizer {tokenizer}, "
          f"normaliser {resolve_backend(normaliser)})")
    return 0
