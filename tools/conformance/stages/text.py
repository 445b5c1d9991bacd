"""Stage `text`: the kit text through the normaliser and the kit's bpe.model -> text_ids [1, L] int32."""

from __future__ import annotations

import torch

from indextts2_core.text import TextNormalizer, TextTokenizer

from ..kit_files import readable_bpe


def run(ctx) -> dict[str, torch.Tensor]:
    tokenizer = TextTokenizer(readable_bpe(ctx.checkpoint("bpe.model"), ctx.out / "kit_files"), TextNormalizer())
    ids = tokenizer.encode(ctx.text()["text"])
    if not ids:
        raise ValueError("the kit text produced no tokens")
    return {"text_ids": torch.tensor([ids], dtype=torch.int32)}
