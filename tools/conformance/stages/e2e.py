"""Stages of kind `e2e`: the whole official `infer` on the kit's checkpoints (spec §9.3).

The kit's `checkpoints/` folder is an official model folder (hf_cache/ layout); it is resolved by
`model_files` and loaded by `pipeline.load_models`, the path real files take. The only
intervention is the flow-matching noise, read from the kit per segment (`cfm_noise`).

Outputs (segments joined in order; codes / generated / mel concatenated along time):
    wav        float32 [1, N]  clamp(32767·x) with x the vocoder output, silences included
    wav_int16  int16 [1, N]    wav truncated toward zero
    codes      int64 [1, T]    kept codes; generated int64 [1, T'] raw GPT tokens (with stop)
    mel        float32 [1, 80, F] CFM output without the prompt frames
    emo_vec    float32 [1, D]  emotion vector given to the GPT
"""

from __future__ import annotations

import dataclasses

import torch

from indextts2_core.audio import load_audio
from indextts2_core.gpt import DecodingSettings
from indextts2_core.model_files import ModelPaths
from indextts2_core.pipeline import load_models, synthesize

from ..kit_files import readable_bpe

_LOADED: dict = {}  # one model set per checkpoint folder, so a kit's variants load it once


def _models(ctx):
    paths = ModelPaths.locate(ctx.checkpoint_dir)
    paths = dataclasses.replace(paths, bpe=readable_bpe(paths.bpe, ctx.out / "kit_files"))
    key = str(paths.root.resolve())
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = load_models(paths, device="cpu", dtype="fp32")
    return _LOADED[key]


def run(ctx) -> dict[str, torch.Tensor]:
    st = ctx.stage
    models = _models(ctx)
    spk, spk_sr = load_audio(ctx.path(st["speaker_wav"]))
    kwargs = {}
    emotion = st.get("emotion")
    if emotion:
        # official precedence: a vector (or emotion text) discards the emotion audio (spec §5.1)
        if emotion.get("vector") is not None:
            kwargs.update(emotion_vector=[float(v) for v in emotion["vector"]],
                          emotion_alpha=float(emotion.get("alpha", 1.0)),
                          use_random=bool(emotion.get("use_random", False)))
        elif emotion.get("text") is not None:
            raise NotImplementedError("e2e emotion text needs the Qwen model, which kits do not ship")
        elif emotion.get("audio") is not None:
            emo, emo_sr = load_audio(ctx.path(emotion["audio"]))
            kwargs.update(emotion_audio=emo, emotion_rate=emo_sr, emotion_alpha=float(emotion.get("alpha", 1.0)))
        elif set(emotion) - {"audio", "vector", "text", "alpha", "use_random"}:
            raise ValueError(f"stage {st['id']}: unknown emotion spec {sorted(emotion)}")
        # no source: the speaker's own emotion, alpha ignored as upstream (quirk Q11)
    noise = [ctx.tensors("inputs/inputs.safetensors")[name] for name in st.get("cfm_noise", [])] or None
    decoding = dict(st.get("decoding", {}))
    # upstream runs with any max_mel_tokens and only fails if generation outruns the mel position
    # table; a run that stops on its own is the same with the cap at the table
    limit = int(decoding.get("max_mel_tokens", DecodingSettings.max_mel_tokens))  # official default 1500
    decoding["max_mel_tokens"] = min(limit, models.gpt.max_codes)
    result = synthesize(
        models, st["text"], spk, spk_sr, settings=DecodingSettings(**decoding),
        max_text_tokens_per_segment=int(st.get("max_text_tokens_per_segment", 120)),
        interval_silence_ms=st.get("interval_silence_ms", 200), cfm_noise=noise, seed=0, keep_mels=True,
        **kwargs)
    segs = result.segments
    return {
        "wav": result.pcm(),
        "wav_int16": result.int16(),
        "codes": torch.cat([s.codes for s in segs], dim=1),
        "generated": torch.cat([s.generated for s in segs], dim=1),
        "mel": torch.cat([s.mel for s in segs], dim=2),
        "emo_vec": result.emovec,
    }
