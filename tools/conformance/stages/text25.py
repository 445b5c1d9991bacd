"""Stage `text25`: each kit case through the IndexTTS-2.5 front end and the kit's .tiktoken file
-> `t_<name>_seg<i>_ids` [1, L] int32 (segment i, language prefix and the trailing 1 included)
and `t_<name>_lang` [1] int64 (the language embedding row)."""

from __future__ import annotations

import torch

from indextts2_core.text import TextNormalizer
from indextts2_core.text.frontend25 import TEXT_CAPACITY, TextFrontend25


def run(ctx) -> dict[str, torch.Tensor]:
    params = ctx.params
    frontend = TextFrontend25(ctx.checkpoint("multilingual_zh_ja_yue_char_del.tiktoken"), TextNormalizer(),
                              capacity=params.get("text_pos_capacity", TEXT_CAPACITY))
    out = {}
    for case in ctx.text("inputs/text25.json")["cases"]:
        segments = frontend.segments(case["text"], case["lang"], case.get("max_text_tokens_per_segment", 120),
                                     case.get("text_normalization", params.get("text_normalization", True)),
                                     allow_any_language=True)
        for i, seg in enumerate(segments):
            out[f"{case['name']}_seg{i}_ids"] = torch.tensor([seg.ids], dtype=torch.int32)
        out[f"{case['name']}_lang"] = torch.tensor([segments[0].lang_id], dtype=torch.int64)
    return out
