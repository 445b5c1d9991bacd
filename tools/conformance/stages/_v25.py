"""Shared loading for the IndexTTS-2.5 stages (public25 kits): the kit's 2.5 config and GPT."""

from __future__ import annotations

from indextts2_core.config25 import IndexTTS25Config
from indextts2_core.gpt.model25 import UnifiedVoice25, load_gpt25


def config(ctx) -> IndexTTS25Config:
    return IndexTTS25Config.from_yaml(ctx.checkpoint("config.yaml"))


def gpt(ctx) -> UnifiedVoice25:
    return load_gpt25(ctx.checkpoint("gpt.pth"), config(ctx))


def conds(ctx, model: UnifiedVoice25):
    """The conditioning rows of the GPT stages: CAMPPlus style + the stage's emotion vector."""
    return model.conditioning(ctx.input("style"), ctx.input("emovec"))
