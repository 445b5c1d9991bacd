"""Audio front end: decoding, prompt preparation, resampling, mel and filter-bank features."""

from .fbank import W2VFeatureConfig, campplus_features, fbank_frames, kaldi_fbank, w2v_bert_features
from .io import fit_waveform, load_audio, to_mono, validate_waveform
from .mel import mel_frames, mel_spectrogram, slaney_mel_filters
from .prompt import (MAX_PROMPT_SECONDS, MIN_PROMPT_SECONDS, check_prompt_audio, prepare_emotion_prompt,
                     prepare_speaker_prompt)
from .resample import resample, resample_hq

__all__ = [
    "MAX_PROMPT_SECONDS", "MIN_PROMPT_SECONDS", "W2VFeatureConfig", "campplus_features", "check_prompt_audio",
    "fbank_frames", "fit_waveform", "kaldi_fbank", "load_audio", "mel_frames", "mel_spectrogram", "prepare_emotion_prompt", "prepare_speaker_prompt", "resample",
    "resample_hq", "slaney_mel_filters", "to_mono", "validate_waveform", "w2v_bert_features",
]
