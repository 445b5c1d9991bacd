"""Stage `audio`: the weight-free front ends (spec §2): sinc resampling 22.05 -> 16 kHz, the S2M
mel, the CAMPPlus fbank, w2v-BERT input features (single clips and a padded batch) and the
librosa-style 16 kHz load of the speaker file (the emotion audio of the emo_vector path).

Rates and mel settings come from the kit's config.yaml, feature settings from w2v-BERT's
preprocessor_config.json.
"""

from __future__ import annotations

import torch

from indextts2_core.audio import (W2VFeatureConfig, campplus_features, kaldi_fbank, load_audio, mel_spectrogram,
                      prepare_emotion_prompt, resample, w2v_bert_features)
from indextts2_core.config import IndexTTS2Config


def _speaker_wav(ctx) -> str:
    """Kit path of the speaker prompt file (the wav input named like 'spk...')."""
    wavs = [e["file"] for e in ctx.stage.get("inputs", []) if e["file"].endswith(".wav")]
    spk = [f for f in wavs if "spk" in f.rsplit("/", 1)[-1]]
    if not (spk or wavs):
        raise ValueError(f"stage {ctx.stage['id']}: no speaker wav among the inputs")
    return (spk or wavs)[0]


def run(ctx) -> dict[str, torch.Tensor]:
    mel_cfg = IndexTTS2Config.from_yaml(ctx.checkpoint("config.yaml")).s2mel.mel
    w2v_cfg = W2VFeatureConfig.from_json(ctx.checkpoint("preprocessor_config.json"))
    spk_22k = ctx.input("spk_wav_22k")
    emo_16k = ctx.input("emo_wav_16k")

    spk_16k = resample(spk_22k, mel_cfg.sr, w2v_cfg.sampling_rate)
    feats, mask = w2v_bert_features(spk_16k, w2v_cfg)
    emo_feats, emo_mask = w2v_bert_features(emo_16k, w2v_cfg)
    batch_feats, batch_mask = w2v_bert_features([spk_16k[0], emo_16k[0]], w2v_cfg)
    wav, sr = load_audio(ctx.path(_speaker_wav(ctx)))
    return {
        "spk_wav_16k": spk_16k,
        "ref_mel": mel_spectrogram(spk_22k, mel_cfg),
        "campplus_fbank_raw": kaldi_fbank(spk_16k, sample_rate=w2v_cfg.sampling_rate),
        "campplus_fbank": campplus_features(spk_16k, sample_rate=w2v_cfg.sampling_rate),
        "w2v_input_features": feats,
        "w2v_attention_mask": mask,
        "emo_w2v_input_features": emo_feats,
        "emo_w2v_attention_mask": emo_mask,
        "spk_wav_16k_librosa": prepare_emotion_prompt(wav, sr, semantic_rate=w2v_cfg.sampling_rate),
        "w2v_batch_input_features": batch_feats,
        "w2v_batch_attention_mask": batch_mask,
    }
