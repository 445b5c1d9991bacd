"""Typed configuration of IndexTTS-2.5 (its `config.yaml`, spec 2.5 §1.3).

The file has the v2 layout minus the `dataset:` block: `gpt` (read by the 2.5 GPT, which builds no
speaker conformer/perceiver, so `condition_module` is present but ignored), `semantic_codec` (the
`EnhancedCodec`, with the constructor defaults `downsample_scale` 2 and `num_quantizers` 1 when
absent), `s2mel` (exactly v2's), file names and `emo_num`. Names that the 2.5 code hard-codes
(codec and tokenizer files) are constants here. `version` is display-only upstream (the released
file has been reported to say 2.0), so it is ignored; `config_version` tells the generations apart.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from pathlib import Path

from .config import (IGNORED, REQUIRED_VALUES, ConfigError, GPTSizes, IndexTTS2Config, ModelConfig,
                     S2MelConfig, SemanticCodecConfig, _section, build_config, read_yaml)
from .timing import Timing

CODEC_FILE = "codec.pth"  # hard-coded by infer_v2_5 (not in the config)
TOKENIZER_FILE = "multilingual_zh_ja_yue_char_del.tiktoken"
CODES_PER_SECOND = 25  # 2.5 semantic codes: 50 Hz w2v-BERT frames downsampled x2 by the codec
CONTENT_PER_CODE = 2  # EnhancedCodec.decode upsamples x2 back to 50 Hz S2M content frames


@dataclass(frozen=True)
class GPT25Config(GPTSizes):
    """T2S GPT of 2.5 (`UnifiedVoice` with CAMPPlus speaker conditioning)."""

    IGNORED_KEYS: typing.ClassVar[frozenset] = frozenset(IGNORED["gpt"] | {"condition_module"})
    REQUIRED_KEYS: typing.ClassVar[dict] = {"use_mel_codes_as_input": True}


@dataclass(frozen=True)
class EnhancedCodecConfig(SemanticCodecConfig):
    """`semantic_codec` of 2.5: the MaskGCT codec layout plus a strided `down` / `up` pair."""

    downsample_scale: int = 2  # constructor default; the released config leaves it out
    num_quantizers: int = 1

    def __post_init__(self):
        super().__post_init__()
        if self.downsample_scale < 2:  # upstream decode assigns its output only when down/up exist
            raise ConfigError(f"downsample_scale: {self.downsample_scale} leaves the codec without its up "
                              "convolution; the official decode cannot run (2.5 uses 2)")


@dataclass(frozen=True)
class IndexTTS25Config(ModelConfig):
    """The whole 2.5 `config.yaml`."""

    IGNORED_KEYS: typing.ClassVar[frozenset] = frozenset({"vocoder", "version", "dataset"})
    REQUIRED_KEYS: typing.ClassVar[dict] = {}

    gpt: GPT25Config
    semantic_codec: EnhancedCodecConfig
    s2mel: S2MelConfig
    gpt_checkpoint: str
    w2v_stat: str
    s2mel_checkpoint: str
    emo_matrix: str
    spk_matrix: str
    emo_num: tuple[int, ...]
    qwen_emo_path: str

    version = "2.5"

    @classmethod
    def from_dict(cls, raw: dict, source: str = "config") -> "IndexTTS25Config":
        raw = _section(raw, source)
        if "gpt" in raw and isinstance(raw["gpt"], dict):
            cond_type = raw["gpt"].get("condition_type", "conformer_perceiver")
            if cond_type != REQUIRED_VALUES["gpt"]["condition_type"]:  # present but unused by 2.5
                raise ConfigError(f"{source}: 'gpt.condition_type' = {cond_type!r} is not an IndexTTS-2.5 value")
        return build_config(cls, raw, source)

    @property
    def timing(self) -> Timing:
        """25 codes per second; each code is two 50 Hz content frames for S2M."""
        return Timing(sample_rate=self.s2mel.mel.sr, hop_length=self.s2mel.mel.hop_length,
                      codes_per_second=CODES_PER_SECOND, content_per_code=CONTENT_PER_CODE)


def config_version(raw: dict) -> str | None:
    """"2" or "2.5" when the config alone says which generation it describes, else None.

    `version: 2.5` decides, and so does the absence of v2's `dataset.bpe_model` (2.5 has no
    SentencePiece model). A v2 file also names its vocoder by `type` (2.5: `name` only). The
    released 2.5 file has been reported to say `version: 2.0` [spec 2.5 §1.3]; if it also carries a
    `dataset` block it is undecidable here and the model folder (codec.pth, the .tiktoken file) must
    decide."""
    if not isinstance(raw, dict):
        return None
    if str(raw.get("version", "")).strip().startswith("2.5"):
        return "2.5"
    dataset = raw.get("dataset")
    if not (isinstance(dataset, dict) and "bpe_model" in dataset):
        return "2.5"
    vocoder = raw.get("vocoder")
    return "2" if isinstance(vocoder, dict) and "type" in vocoder else None


def load_config(path: str | Path, version: str | None = None) -> IndexTTS2Config | IndexTTS25Config:
    """The typed config of either generation; `version` ("2" / "2.5") overrides the detection."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    raw = read_yaml(path)
    version = version or config_version(raw)
    if version == "2.5":
        return IndexTTS25Config.from_dict(raw, source=str(path))
    if version in ("2", "2.0"):
        return IndexTTS2Config.from_dict(raw, source=str(path))
    if version is None:
        raise ConfigError(f"{path}: cannot tell IndexTTS-2 from 2.5 by the config alone (version "
                          f"{raw.get('version')!r} with a dataset.bpe_model entry); give the version explicitly")
    raise ConfigError(f"{path}: unknown model version {version!r} (expected '2' or '2.5')")
