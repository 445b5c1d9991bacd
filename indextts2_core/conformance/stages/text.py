"""Stage `text`: the kit text through the normaliser and the kit's bpe.model -> text_ids [1, L] int32."""

from __future__ import annotations

import torch

from ...text import TextNormalizer, TextTokenizer


def run(ctx) -> dict[str, torch.Tensor]:
    tokenizer = TextTokenizer(ctx.checkpoint("bpe.model"), TextNormalizer())
    ids = tokenizer.encode(ctx.text()["text"])
    if not ids:
        raise ValueError("the kit text produced no tokens")
    return {"text_ids": torch.tensor([ids], dtype=torch.int32)}
