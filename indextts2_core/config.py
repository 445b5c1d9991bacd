"""Typed configuration read from the official IndexTTS2 `config.yaml` (and BigVGAN's `config.json`).

One frozen dataclass per network. Every field a module reads is required; keys of the official
file that inference never reads (training leftovers, switches the v2 code hard-wires) are listed
per section in `IGNORED` so that any *other* unknown key is an error naming it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml

from .timing import Timing

# IndexTTS-2 semantic codes run at the w2v-BERT frame rate: 16 kHz / (2 x 160-sample fbank hop)
V2_CODES_PER_SECOND = 50


class ConfigError(ValueError):
    """A config file is malformed or incomplete; the message names the key."""


class Checked:
    """Base of the config dataclasses: every integer field (and every integer in a tuple field) is a
    count or a size and must be >= 1; fields listed in `NON_NEGATIVE` (token ids, depths upstream
    runs with zero layers) must be >= 0. Messages start with the field name (`_build` prefixes the
    section), so an impossible value is a ConfigError naming its key, never a ZeroDivisionError later."""

    NON_NEGATIVE: typing.ClassVar[frozenset] = frozenset()

    def __post_init__(self):
        for f in dataclasses.fields(self):
            _check_counts(getattr(self, f.name), f.name, 0 if f.name in self.NON_NEGATIVE else 1)


class ModelConfig(Checked):
    """Base of the whole-model configs (IndexTTS-2, IndexTTS-2.5): read from a config.yaml."""

    @classmethod
    def from_yaml(cls, path: str | Path):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        return cls.from_dict(read_yaml(path), source=str(path))


def _check_counts(value, name: str, minimum: int) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, int) and value < minimum:
        raise ConfigError(f"{name}: must be {'a positive' if minimum else 'a non-negative'} integer, got {value}")
    if isinstance(value, tuple):
        for i, v in enumerate(value):
            _check_counts(v, f"{name}[{i}]", minimum)


@dataclass(frozen=True)
class ConditionModuleConfig(Checked):
    """Conformer encoder + perceiver resampler of one GPT conditioning branch."""

    NON_NEGATIVE = frozenset({"num_blocks", "perceiver_mult"})

    output_size: int  # conformer width d
    linear_units: int  # conformer FFN width
    attention_heads: int
    num_blocks: int
    input_layer: str  # only "conv2d2" (time / 2) is used by v2
    perceiver_mult: int  # perceiver FF width = int(dim * mult * 2 / 3)

    def __post_init__(self):
        super().__post_init__()
        if self.input_layer != "conv2d2":
            raise ConfigError(f"input_layer: only 'conv2d2' is supported, got {self.input_layer!r}")


@dataclass(frozen=True)
class GPTSizes(Checked):
    """The GPT-2 stack, token tables and emotion conditioning that both generations share."""

    NON_NEGATIVE = frozenset({"layers", "start_mel_token", "stop_mel_token", "start_text_token", "stop_text_token"})

    model_dim: int
    max_mel_tokens: int  # mel position table = max_mel_tokens + 3 rows
    max_text_tokens: int  # text position table = max_text_tokens + 2 rows
    heads: int
    layers: int
    number_text_tokens: int  # text embedding = number_text_tokens + 1 rows
    number_mel_codes: int
    start_mel_token: int
    stop_mel_token: int
    start_text_token: int
    stop_text_token: int
    emo_condition_module: ConditionModuleConfig

    def __post_init__(self):
        super().__post_init__()
        check_gpt_sizes(self)


@dataclass(frozen=True)
class GPTConfig(GPTSizes):
    """T2S GPT ("UnifiedVoice" v2): the shared sizes and the speaker conformer/perceiver."""

    condition_module: ConditionModuleConfig


def check_gpt_sizes(c) -> None:
    """What the official GPT cannot run: heads that do not split the width (HF GPT-2 raises), control
    tokens outside their embedding tables."""
    if c.model_dim % c.heads:
        raise ConfigError(f"model_dim: {c.model_dim} is not divisible by heads {c.heads}")
    for name in ("start_mel_token", "stop_mel_token"):
        if getattr(c, name) >= c.number_mel_codes:
            raise ConfigError(f"{name}: {getattr(c, name)} lies outside the mel table "
                              f"(number_mel_codes {c.number_mel_codes})")
    for name in ("start_text_token", "stop_text_token"):
        if getattr(c, name) > c.number_text_tokens:
            raise ConfigError(f"{name}: {getattr(c, name)} lies outside the text table "
                              f"(number_text_tokens + 1 = {c.number_text_tokens + 1} rows)")


@dataclass(frozen=True)
class SemanticCodecConfig(Checked):
    """MaskGCT semantic codec (RepCodec encoder + one factorised VQ)."""

    NON_NEGATIVE = frozenset({"vocos_num_layers"})

    codebook_size: int
    hidden_size: int
    codebook_dim: int
    vocos_dim: int
    vocos_intermediate_dim: int
    vocos_num_layers: int


@dataclass(frozen=True)
class MelConfig(Checked):
    """22.05 kHz log-mel of S2M (= BigVGAN's training features)."""

    sr: int
    n_fft: int
    win_length: int
    hop_length: int
    n_mels: int
    fmin: float
    fmax: float | None  # official file says "None" (a string), meaning sr / 2

    def __post_init__(self):
        super().__post_init__()
        if self.win_length > self.n_fft:  # torch.stft refuses it
            raise ConfigError(f"win_length: {self.win_length} exceeds n_fft {self.n_fft}")
        top = self.sr / 2 if self.fmax is None else self.fmax
        if not (math.isfinite(self.fmin) and 0 <= self.fmin < top and math.isfinite(top)):
            raise ConfigError(f"fmin: the mel band [{self.fmin}, {self.fmax}] is empty or not finite "
                              f"(0 <= fmin < fmax, fmax None = sr / 2)")


@dataclass(frozen=True)
class LengthRegulatorConfig(Checked):
    NON_NEGATIVE = frozenset({"sampling_ratios"})  # their number is read, not their values

    channels: int
    in_channels: int
    content_codebook_size: int  # size of the (unused at inference) discrete embedding
    sampling_ratios: tuple[int, ...]  # one conv block per entry (the values themselves are not read)


@dataclass(frozen=True)
class DiTConfig(Checked):
    NON_NEGATIVE = frozenset({"depth"})

    hidden_dim: int
    num_heads: int
    depth: int
    in_channels: int  # mel bins
    content_dim: int
    style_condition: bool
    final_layer_type: str
    long_skip_connection: bool
    uvit_skip_connection: bool


@dataclass(frozen=True)
class WaveNetConfig(Checked):
    NON_NEGATIVE = frozenset({"num_layers"})

    hidden_dim: int
    num_layers: int
    kernel_size: int
    dilation_rate: int


@dataclass(frozen=True)
class S2MelConfig(Checked):
    mel: MelConfig
    style_dim: int
    length_regulator: LengthRegulatorConfig
    dit: DiTConfig
    wavenet: WaveNetConfig


def parse_s2mel(s2, source: str) -> S2MelConfig:
    """The `s2mel` section (the same in IndexTTS-2 and 2.5)."""
    s2 = _section(s2, f"{source}: s2mel")
    pre = _section(s2.get("preprocess_params"), f"{source}: s2mel.preprocess_params")
    spect = dict(_section(pre.get("spect_params"), f"{source}: s2mel.preprocess_params.spect_params"))
    spect["sr"] = pre.get("sr")
    if spect.get("fmax") in ("None", None):
        spect["fmax"] = None
    s2mel = S2MelConfig(
        mel=_build(MelConfig, spect, "s2mel.preprocess_params.spect_params", source),
        style_dim=_get(_section(s2.get("style_encoder"), f"{source}: s2mel.style_encoder"), "dim", int,
                       "s2mel.style_encoder", source),
        length_regulator=_build(LengthRegulatorConfig, s2.get("length_regulator"), "s2mel.length_regulator", source),
        dit=_build(DiTConfig, s2.get("DiT"), "s2mel.DiT", source),
        wavenet=_build(WaveNetConfig, s2.get("wavenet"), "s2mel.wavenet", source),
    )
    _reject_unknown(s2, {"preprocess_params", "style_encoder", "length_regulator", "DiT", "wavenet"}, "s2mel", source)
    return s2mel


def build_config(cls, raw: dict, source: str, **extra):
    """`cls` (a whole-model config) from the top level of config.yaml: the S2M block and emo_num
    parsed, `extra` fields added, every field checked."""
    top = {k: v for k, v in raw.items() if k != "s2mel"}
    top["s2mel"] = parse_s2mel(raw.get("s2mel"), source)
    top["emo_num"] = tuple(_get(raw, "emo_num", list, "", source))
    cfg = _build(cls, {**top, **extra}, "", source)
    check_emo_num(cfg.emo_num, source)
    return cfg


def check_emo_num(emo_num: tuple[int, ...], source: str) -> None:
    if len(emo_num) != 8:
        raise ConfigError(f"{source}: emo_num must list 8 positive block sizes, got {list(emo_num)}")


@dataclass(frozen=True)
class IndexTTS2Config(ModelConfig):
    """The whole official `config.yaml`: networks, file names, emotion block sizes."""

    gpt: GPTConfig
    semantic_codec: SemanticCodecConfig
    s2mel: S2MelConfig
    bpe_model: str
    gpt_checkpoint: str
    w2v_stat: str
    s2mel_checkpoint: str
    emo_matrix: str
    spk_matrix: str
    emo_num: tuple[int, ...]  # rows per emotion in feat1/feat2, official emotion order
    qwen_emo_path: str

    version = "2"  # the model generation (config25.IndexTTS25Config says "2.5"); not a field

    @classmethod
    def from_dict(cls, raw: dict, source: str = "config") -> "IndexTTS2Config":
        raw = _section(raw, source)
        dataset = _section(raw.get("dataset"), f"{source}: dataset")
        return build_config(cls, raw, source, bpe_model=_get(dataset, "bpe_model", str, "dataset", source))

    @property
    def timing(self) -> Timing:
        return Timing(sample_rate=self.s2mel.mel.sr, hop_length=self.s2mel.mel.hop_length,
                      codes_per_second=V2_CODES_PER_SECOND, content_per_code=1)


@dataclass(frozen=True)
class BigVGANConfig(Checked):
    """Generator part of NVIDIA BigVGAN v2 `config.json`."""

    num_mels: int
    upsample_rates: tuple[int, ...]
    upsample_kernel_sizes: tuple[int, ...]
    upsample_initial_channel: int
    resblock: str
    resblock_kernel_sizes: tuple[int, ...]
    resblock_dilation_sizes: tuple[tuple[int, ...], ...]
    activation: str
    snake_logscale: bool
    use_tanh_at_final: bool = True  # BigVGAN default when absent
    use_bias_at_final: bool = True
    sampling_rate: int = 22050
    hop_size: int = 256

    @classmethod
    def from_json(cls, path: str | Path) -> "BigVGANConfig":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"BigVGAN config not found: {path}")
        raw = read_json(path)
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: dict, source: str = "BigVGAN config") -> "BigVGANConfig":
        raw = _section(raw, source)
        known = {f.name for f in dataclasses.fields(cls)}
        # config.json mixes training fields in; only generator fields are read
        cfg = _build(cls, {k: v for k, v in raw.items() if k in known}, "", source)
        # refused: only what the official generator cannot build or run (it raises for another
        # resblock or activation name, and indexes past its lists when one is shorter)
        if cfg.resblock not in ("1", "2"):
            raise ConfigError(f"{source}: 'resblock' must be \"1\" or \"2\", got {cfg.resblock!r}")
        if cfg.activation not in ("snake", "snakebeta"):
            raise ConfigError(f"{source}: 'activation' must be 'snake' or 'snakebeta', got {cfg.activation!r}")
        if len(cfg.upsample_kernel_sizes) < len(cfg.upsample_rates):
            raise ConfigError(f"{source}: upsample_kernel_sizes has fewer entries than upsample_rates")
        if len(cfg.resblock_dilation_sizes) < len(cfg.resblock_kernel_sizes):
            raise ConfigError(f"{source}: resblock_dilation_sizes has fewer entries than resblock_kernel_sizes")
        return cfg

    @property
    def total_upsample(self) -> int:
        out = 1
        for r in self.upsample_rates:
            out *= r
        return out


# Keys of the official config.yaml that v2 inference does not read (training leftovers, fixed switches).
IGNORED = {
    "": {"dataset", "vocoder", "version"},  # dataset.bpe_model is read, the rest is training
    "gpt": {"use_mel_codes_as_input", "mel_length_compression", "train_solo_embeddings", "condition_type"},
    "s2mel": {"dit_type", "reg_loss_type"},
    "s2mel.length_regulator": {"is_discrete", "vector_quantize", "n_codebooks",
                               "quantizer_dropout", "f0_condition", "n_f0_bins"},
    "s2mel.DiT": {"class_dropout_prob", "block_size", "target", "content_codebook_size", "content_type",
                  "f0_condition", "n_f0_bins", "content_codebooks", "is_causal", "zero_prompt_speech_token",
                  "time_as_token", "style_as_token", "add_resblock_in_transformer"},
    "s2mel.wavenet": {"p_dropout", "style_condition"},
}
# Values v2 hard-wires: a config that says otherwise describes a model this code does not implement.
REQUIRED_VALUES = {
    "gpt": {"condition_type": "conformer_perceiver", "use_mel_codes_as_input": True},
    "s2mel": {"dit_type": "DiT"},
    "s2mel.DiT": {"is_causal": False, "zero_prompt_speech_token": False, "time_as_token": False,
                  "style_as_token": False, "f0_condition": False},
    "s2mel.length_regulator": {"is_discrete": False, "f0_condition": False},
}


def read_yaml(path: Path):
    """A YAML file through safe_load (no tags that build objects); malformed, undecodable or nested
    too deeply for the parser -> ConfigError naming the file."""
    return _read(path, yaml.safe_load, yaml.YAMLError, "YAML")


def read_json(path: Path):
    return _read(path, json.loads, json.JSONDecodeError, "JSON")


def _read(path: Path, parse, error: type[Exception], kind: str):
    try:
        return parse(Path(path).read_text(encoding="utf-8"))
    except error as e:
        raise ConfigError(f"{path}: not valid {kind} ({e})") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a UTF-8 text file ({e})") from e
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a config file") from None


def _section(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _get(d: dict, key: str, typ, section: str, source: str):
    name = f"{section}.{key}" if section else key
    if key not in d:
        raise ConfigError(f"{source}: missing key '{name}'")
    return _coerce(d[key], typ, name, source)


def _coerce(value, typ, name: str, source: str):
    origin = typing.get_origin(typ)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        args = typing.get_args(typ)
        if value is None and type(None) in args:
            return None
        typ = next(a for a in args if a is not type(None))
        origin = typing.get_origin(typ)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: '{name}' must be a list, got {value!r}")
        inner = typing.get_args(typ)[0]
        return tuple(_coerce(v, inner, f"{name}[{i}]", source) for i, v in enumerate(value))
    if typ is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: '{name}' must be a list, got {value!r}")
        return list(value)
    if dataclasses.is_dataclass(typ):
        return _build(typ, value, name, source)
    if typ is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: '{name}' must be true/false, got {value!r}")
        return value
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: '{name}' must be an integer, got {value!r}")
        return value
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: '{name}' must be a number, got {value!r}")
        return float(value)
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: '{name}' must be a string, got {value!r}")
        return value.strip()  # official files carry trailing spaces on some names
    return value


def _reject_unknown(d: dict, known: set, section: str, source: str, cls=None) -> None:
    """Keys neither read nor ignored are errors. A dataclass may declare its own `IGNORED_KEYS` /
    `REQUIRED_KEYS` (the 2.5 sections do); otherwise the v2 tables above apply by section name."""
    required = getattr(cls, "REQUIRED_KEYS", None)
    required = REQUIRED_VALUES.get(section, {}) if required is None else required
    ignored = getattr(cls, "IGNORED_KEYS", None)
    ignored = IGNORED.get(section, set()) if ignored is None else ignored
    for key, want in required.items():
        if key in d and d[key] != want:
            name = f"{section}.{key}" if section else key
            raise ConfigError(f"{source}: '{name}' = {d[key]!r} is not supported (IndexTTS2 uses {want!r})")
    unknown = set(d) - known - set(ignored)
    if unknown:
        names = ", ".join(sorted(f"{section}.{k}" if section else k for k in unknown))
        raise ConfigError(f"{source}: unknown key(s) {names}")


def _build(cls, d, section: str, source: str):
    d = _section(d, f"{source}: {section or 'top level'}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in d and f.default is not dataclasses.MISSING:
            continue
        value = d.get(f.name)
        if dataclasses.is_dataclass(value):  # already built (s2mel)
            kwargs[f.name] = value
            continue
        kwargs[f.name] = _get(d, f.name, hints[f.name], section, source)
    _reject_unknown(d, {f.name for f in dataclasses.fields(cls)}, section, source, cls)
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{source}: {section}.{e}" if section else f"{source}: {e}") from None
