"""Stages of kind `e2e`: the whole official `infer` on the kit's checkpoints (spec §9.3).

The kit's `checkpoints/` folder is an official model folder (hf_cache/ layout); it is resolved by
`model_files` and loaded by `pipeline.load_models`, the path real files take. The run composes the
pipeline's public stage functions in `stream`'s order; the one intervention is the flow-matching
starting noise, read from the kit per segment and given to `synthesize_mel(noise=...)` (drawn from
a generator seeded 0 when the stage lists none).

Outputs, written exactly as the stage lists them (`outputs.tensors`):
    wav        float32 [1, N]  clamp(32767·x) with x the vocoder output, silences included
    wav_int16  int16 [1, N]    wav truncated toward zero
    emo_vec    float32 [1, D]  emotion vector given to the GPT
    codes, generated, mel, text_ids        every segment's, concatenated along time
    codes_<i>, generated_<i>, mel_<i>, text_ids_<i>   segment i alone (0-based, segment order)
where codes are the kept codes [1, T], generated the raw GPT tokens with the stop token [1, T'],
mel the CFM output without the prompt frames [1, 80, F], text_ids int32 [1, L].
"""

from __future__ import annotations

import dataclasses
import re

import torch

from indextts2_core.audio import load_audio
from indextts2_core.gpt import DecodingSettings
from indextts2_core.model_files import ModelPaths
from indextts2_core.pipeline import (S2MSettings, generate_semantic, join_waveforms, load_models, prepare,
                                     synthesize_mel, vocode)

from ..kit_files import readable_bpe

_LOADED: dict = {}  # one model set per checkpoint folder, so a kit's variants load it once
PER_SEGMENT = ("codes", "generated", "mel", "text_ids")


def _models(ctx):
    paths = ModelPaths.locate(ctx.checkpoint_dir)
    if paths.bpe is not None:  # IndexTTS-2 (2.5 has a tiktoken file)
        paths = dataclasses.replace(paths, bpe=readable_bpe(paths.bpe, ctx.out / "kit_files"))
    key = str(paths.root.resolve())
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = load_models(paths, device="cpu", dtype="fp32")
    return _LOADED[key]


def _emotion(ctx, emotion: dict | None) -> dict:
    """The stage's emotion spec as `prepare` arguments (official precedence: a vector or emotion
    text discards the emotion audio, spec §5.1; no source: the speaker's own emotion, Q11)."""
    if not emotion:
        return {}
    if emotion.get("vector") is not None:
        return dict(emotion_vector=[float(v) for v in emotion["vector"]], emotion_alpha=float(emotion.get("alpha", 1.0)),
                    use_random=bool(emotion.get("use_random", False)))
    if emotion.get("text") is not None:
        raise NotImplementedError("e2e emotion text needs the Qwen model, which kits do not ship")
    if emotion.get("audio") is not None:
        emo, emo_sr = load_audio(ctx.path(emotion["audio"]))
        return dict(emotion_audio=emo, emotion_rate=emo_sr, emotion_alpha=float(emotion.get("alpha", 1.0)))
    if set(emotion) - {"alpha", "use_random", "none"}:
        raise ValueError(f"stage {ctx.stage['id']}: unknown emotion spec {sorted(emotion)}")
    return {}


def run(ctx) -> dict[str, torch.Tensor]:
    st = ctx.stage
    models = _models(ctx)
    spk, spk_sr = load_audio(ctx.path(st["speaker_wav"]))
    prepared = prepare(models, st["text"], spk, spk_sr, seed=0, **_emotion(ctx, st.get("emotion")),
                       max_text_tokens_per_segment=int(st.get("max_text_tokens_per_segment", 120)),
                       interval_silence_ms=st.get("interval_silence_ms", 200), language=st.get("lang"),
                       text_normalization=bool(st.get("text_normalization", True)))
    s2m = S2MSettings(duration_factor=float(st.get("duration_factor", 1.0)))
    plan = prepared.plan
    noise = [ctx.tensors("inputs/inputs.safetensors")[name] for name in st.get("cfm_noise", [])]
    if noise and len(noise) != len(plan):
        raise ValueError(f"stage {st['id']}: {len(noise)} noise tensor(s) for {len(plan)} text segment(s)")
    generator = torch.Generator().manual_seed(0)  # draws the noise when the stage stores none
    # upstream runs with any max_mel_tokens; the pipeline caps it at the model's mel table
    # and `infer` reads `do_sample` and discards it: sampling is always on (spec Q4)
    decoding = DecodingSettings(**{**st.get("decoding", {}), "do_sample": True})
    per_segment, waves = {name: [] for name in PER_SEGMENT}, []
    for i, ids in enumerate(plan.text_ids):
        sem = generate_semantic(models.gpt, prepared.speaker, prepared.emotion, ids, decoding,
                                target_tokens=plan.tokens[i], conditioning=prepared.conditioning, lang=plan.lang(i))
        mel = synthesize_mel(models.s2mel, models.codec, prepared.speaker, sem, target_frames=plan.frames[i],
                             settings=s2m, noise=noise[i] if noise else None, generator=generator)
        waves.append(vocode(models.vocoder, mel).cpu())
        per_segment["codes"].append(sem.codes.cpu())
        per_segment["generated"].append(sem.generated.cpu())
        per_segment["mel"].append(mel.cpu())
        per_segment["text_ids"].append(torch.tensor([ids], dtype=torch.int32))
    waveform, _ = join_waveforms(waves, plan.silence_samples, plan.total_samples)
    pcm = waveform * 32767.0
    return _named(st, {"wav": pcm, "wav_int16": pcm.to(torch.int16), "emo_vec": prepared.conditioning.emovec.float().cpu()},
                  per_segment)


def _named(stage: dict, whole: dict, per_segment: dict[str, list[torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Exactly the tensors the stage lists; a name this stage does not know is an error."""
    out = {}
    for name in stage["outputs"]["tensors"]:
        m = re.fullmatch(r"(codes|generated|mel|text_ids)(?:_(\d+))?", name)
        if name in whole:
            out[name] = whole[name]
        elif m and m.group(2) is None:
            out[name] = torch.cat(per_segment[m.group(1)], dim=-1)
        elif m and int(m.group(2)) < len(per_segment[m.group(1)]):
            out[name] = per_segment[m.group(1)][int(m.group(2))]
        elif m:
            raise ValueError(f"stage {stage['id']} lists {name!r} but the text has "
                             f"{len(per_segment[m.group(1)])} segment(s)")
        else:
            raise ValueError(f"stage {stage['id']} lists an output this runner does not know: {name!r}")
    return out
