"""Every corrupt model file gets the pack's CheckpointError / ConfigError naming the file and the
problem (issue 16 item 6). Generated inputs per class, over every checkpoint loader of the pack:
not-a-checkpoint files, truncated and garbled files (torch zip and legacy pickle, safetensors),
integer / bool tensors where floats belong, NaN / Inf values, impossible config values, deeply
nested YAML / JSON."""

from __future__ import annotations

import json
import random
import shutil
import zlib
from pathlib import Path

import pytest
import torch
import yaml

from conftest import PUBLIC_KIT, need
from indextts2_core.checkpoints import CheckpointError, read_checkpoint, read_tensor
from indextts2_core.config import BigVGANConfig, ConfigError, IndexTTS2Config
from indextts2_core.gpt.model import GPT_SKIP, load_gpt
from indextts2_core.s2mel.model import CFM_SKIP, LENGTH_REGULATOR_SKIP, load_s2mel
from indextts2_core.semantic.codec import SKIP as CODEC_SKIP, load_semantic_codec
from indextts2_core.semantic.w2v_bert import load_semantic_encoder, read_stats
from indextts2_core.speaker.campplus import load_campplus
from indextts2_core.vocoder.bigvgan import load_bigvgan

CK = PUBLIC_KIT / "checkpoints"
SKIPS = (GPT_SKIP, CFM_SKIP, LENGTH_REGULATOR_SKIP, CODEC_SKIP)  # keys the loaders deliberately leave out
W2V = CK / "hf_cache" / "w2v-bert-2.0"
BIGVGAN = CK / "hf_cache" / "bigvgan"


@pytest.fixture(scope="module")
def cfg():
    return IndexTTS2Config.from_yaml(need(CK / "config.yaml"))


# file name -> (kit file, loader(path, cfg))
LOADERS = {
    "gpt.pth": (CK / "gpt.pth", lambda p, c: load_gpt(p, c.gpt)),
    "s2mel.pth": (CK / "s2mel.pth", lambda p, c: load_s2mel(p, c)),
    "campplus_cn_common.bin": (CK / "hf_cache" / "campplus_cn_common.bin", lambda p, c: load_campplus(p)),
    "bigvgan_generator.pt": (BIGVGAN / "bigvgan_generator.pt", lambda p, c: load_bigvgan(BIGVGAN, weights=p)),
    "semantic_codec_model.safetensors": (CK / "hf_cache" / "semantic_codec_model.safetensors",
                                         lambda p, c: load_semantic_codec(p, c.semantic_codec)),
    "feat1.pt": (CK / "feat1.pt", lambda p, c: read_tensor(p)),
    "wav2vec2bert_stats.pt": (CK / "wav2vec2bert_stats.pt", lambda p, c: read_stats(p, 48)),
}
TORCH_FILES = [n for n in LOADERS if not n.endswith(".safetensors")]


def _copy(name: str, tmp_path: Path) -> Path:
    src = need(LOADERS[name][0])
    dst = tmp_path / name
    shutil.copyfile(src, dst)
    return dst


def _load(name: str, path: Path, cfg):
    return LOADERS[name][1](path, cfg)


NOT_CHECKPOINTS = {
    "yaml text": b"gpt:\n  model_dim: 1280\n  heads: 20\n",
    "json": b'{"model": {"weight": [1, 2, 3]}}',
    "empty": b"",
    "html": b"<!DOCTYPE html><html><body>404 Not Found</body></html>",
    "random bytes": random.Random(5).randbytes(4096),
    "git lfs pointer": b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n",
}


@pytest.mark.parametrize("content", NOT_CHECKPOINTS, ids=list(NOT_CHECKPOINTS))
@pytest.mark.parametrize("name", LOADERS)
def test_a_file_that_is_no_checkpoint(name, content, tmp_path, cfg):
    path = tmp_path / name
    path.write_bytes(NOT_CHECKPOINTS[content])
    with pytest.raises(CheckpointError, match=name.replace(".", r"\.")):
        _load(name, path, cfg)


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
@pytest.mark.parametrize("name", TORCH_FILES)
def test_truncated_files(name, fmt, tmp_path, cfg):
    path = _copy(name, tmp_path)
    if fmt == "legacy":
        torch.save(torch.load(path, weights_only=True), path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    for fraction in (0.0005, 0.01, 0.3, 0.7, 0.999):
        path.write_bytes(data[: max(1, int(len(data) * fraction))])
        with pytest.raises(CheckpointError, match=name.replace(".", r"\.")):
            _load(name, path, cfg)


def test_truncated_safetensors(tmp_path, cfg):
    name = "semantic_codec_model.safetensors"
    path = _copy(name, tmp_path)
    data = path.read_bytes()
    for fraction in (0.001, 0.2, 0.9):
        path.write_bytes(data[: int(len(data) * fraction)])
        with pytest.raises(CheckpointError, match="safetensors"):
            _load(name, path, cfg)


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
@pytest.mark.parametrize("name", ["gpt.pth", "s2mel.pth", "bigvgan_generator.pt", "feat1.pt", "wav2vec2bert_stats.pt"])
def test_garbled_files_never_escape_as_another_error(name, fmt, tmp_path, cfg):
    """Random bytes overwritten in the first 4 KiB (zip records, pickle opcodes, tensor bytes): the
    loader either reads a (still consistent) file or raises CheckpointError; never KeyError,
    IndexError, struct.error, BadZipFile, ..."""
    path = _copy(name, tmp_path)
    if fmt == "legacy":
        torch.save(torch.load(path, weights_only=True), path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    rng = random.Random(zlib.crc32(f"{name}/{fmt}".encode()))
    for _ in range(20):
        garbled = bytearray(data)
        start = rng.randrange(0, min(len(data), 4096) - 16)
        garbled[start: start + 8] = rng.randbytes(8)
        path.write_bytes(bytes(garbled))
        try:
            _load(name, path, cfg)
        except (CheckpointError, ConfigError):
            pass


_STATES: dict = {}


def _state(name: str) -> tuple[dict, list[str]]:
    """The kit file's tensors (read once) and the flat key paths ('/' nests) of the float tensors
    its loader reads."""
    if name not in _STATES:
        obj = read_checkpoint(need(LOADERS[name][0]))
        keys = []

        def walk(node, prefix):
            for k, v in node.items():
                if isinstance(v, dict):
                    walk(v, prefix + [k])
                elif isinstance(v, torch.Tensor) and v.is_floating_point() and v.numel() > 1 \
                        and not any(skip.matches(k) for skip in SKIPS) and prefix[-1:] != ["gpt_layer"]:
                    keys.append("/".join(prefix + [k]))
        walk(obj, [])
        _STATES[name] = obj, keys
    return _STATES[name]


def _replaced(obj: dict, path: str, value) -> dict:
    """A copy of the nested dict with one tensor replaced (the other tensors are shared, not copied)."""
    head, _, rest = path.partition("/")
    out = dict(obj)
    out[head] = _replaced(obj[head], rest, value) if rest else value
    return out


def _get(obj, path):
    node = obj
    for level in path.split("/"):
        node = node[level]
    return node


def _save(name: str, obj: dict, tmp_path: Path) -> Path:
    path = tmp_path / name
    if name.endswith(".safetensors"):
        from safetensors.torch import save_file
        save_file(obj, str(path))
    else:
        torch.save(obj[""] if list(obj) == [""] else obj, path)
    return path


STRICT = ["gpt.pth", "s2mel.pth", "campplus_cn_common.bin", "bigvgan_generator.pt", "semantic_codec_model.safetensors"]


@pytest.mark.parametrize("name", STRICT)
def test_integer_or_bool_tensors_where_floats_belong(name, tmp_path, cfg):
    obj, keys = _state(name)
    picks = [keys[0], keys[len(keys) // 3], keys[2 * len(keys) // 3], keys[-1]]
    for key, bad in zip(picks, (torch.int64, torch.bool, torch.int32, torch.uint8)):
        t = _get(obj, key)
        bad_tensor = (t > 0) if bad is torch.bool else t.round().to(bad)
        leaf = key.rsplit("/", 1)[-1]
        with pytest.raises(CheckpointError, match=rf"wrong type: .*{leaf.replace('.', '[.]')} \({bad}"):
            _load(name, _save(name, _replaced(obj, key, bad_tensor), tmp_path), cfg)


def test_integer_emotion_matrix_and_stats(tmp_path, cfg):
    torch.save(torch.ones(4, 3, dtype=torch.int64), tmp_path / "feat1.pt")
    with pytest.raises(CheckpointError, match="feat1.pt: expected a floating-point tensor"):
        read_tensor(tmp_path / "feat1.pt")
    torch.save({"mean": torch.zeros(48, dtype=torch.int32), "var": torch.ones(48)}, tmp_path / "stats.pt")
    with pytest.raises(CheckpointError, match="stats.pt.*'mean'.*floating"):
        read_stats(tmp_path / "stats.pt", 48)


# CAMPPlus goes through the same load_strict; it is left out here only for time (28 MB per load)
@pytest.mark.parametrize("name", [n for n in STRICT if n != "campplus_cn_common.bin"] + ["feat1.pt",
                                                                                      "wav2vec2bert_stats.pt"])
def test_non_finite_values_are_found_at_load(name, tmp_path, cfg):
    obj, keys = _state(name)
    for key, value in zip((keys[0], keys[len(keys) // 2], keys[-1]), (float("nan"), float("inf"), float("-inf"))):
        t = _get(obj, key).clone()
        t.view(-1)[t.numel() // 2] = value
        with pytest.raises(CheckpointError) as err:
            _load(name, _save(name, _replaced(obj, key, t), tmp_path), cfg)
        msg = str(err.value)
        assert name in msg and ("NaN" in msg or "finite" in msg)
        if name not in ("feat1.pt", "wav2vec2bert_stats.pt"):  # single-tensor files have no key to name
            assert key.rsplit("/", 1)[-1] in msg


# ---- config files ---------------------------------------------------------------------------------
IMPOSSIBLE = [
    ("gpt.heads", 0), ("gpt.heads", -2), ("gpt.model_dim", 0), ("gpt.layers", -1), ("gpt.max_mel_tokens", 0),
    ("gpt.max_text_tokens", -5), ("gpt.number_mel_codes", 0), ("gpt.number_text_tokens", 0),
    ("gpt.stop_mel_token", -1), ("gpt.condition_module.attention_heads", 0),
    ("gpt.emo_condition_module.output_size", 0), ("gpt.emo_condition_module.linear_units", -3),
    ("semantic_codec.codebook_size", 0), ("semantic_codec.codebook_dim", 0), ("semantic_codec.hidden_size", -1),
    ("s2mel.preprocess_params.spect_params.hop_length", 0), ("s2mel.preprocess_params.spect_params.n_fft", 0),
    ("s2mel.preprocess_params.spect_params.win_length", -1), ("s2mel.preprocess_params.spect_params.n_mels", 0),
    ("s2mel.preprocess_params.sr", 0), ("s2mel.DiT.num_heads", 0), ("s2mel.DiT.hidden_dim", 0),
    ("s2mel.DiT.in_channels", 0), ("s2mel.wavenet.kernel_size", 0), ("s2mel.wavenet.dilation_rate", 0),
    ("s2mel.wavenet.hidden_dim", -4), ("s2mel.length_regulator.channels", 0), ("s2mel.style_encoder.dim", 0),
]


def _edit_yaml(path: Path, key: str, value) -> dict:
    raw = yaml.safe_load(path.read_text())
    node = raw
    *levels, leaf = key.split(".")
    for level in levels:
        node = node[level]
    node[leaf] = value
    return raw


@pytest.mark.parametrize("key,value", IMPOSSIBLE)
def test_impossible_config_values_name_the_key(key, value, tmp_path):
    raw = _edit_yaml(need(CK / "config.yaml"), key, value)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    leaf = key.split(".")[-1]
    with pytest.raises(ConfigError, match=rf"{leaf}.*{value}|{leaf}: must be"):
        IndexTTS2Config.from_yaml(path)


@pytest.mark.parametrize("key,value,needle", [
    ("gpt.heads", 3, r"gpt\.model_dim: .*not divisible by heads 3"),
    ("gpt.stop_mel_token", 10**6, r"gpt\.stop_mel_token: .*outside the mel table"),
    ("s2mel.preprocess_params.spect_params.win_length", 4096, r"win_length: 4096 exceeds n_fft"),
    ("s2mel.preprocess_params.spect_params.fmin", 20000, r"fmin: the mel band"),
    ("emo_num", [3, 17, 0, 8, 4, 5, 10, 24], r"emo_num\[2\]: must be a positive"),
])
def test_inconsistent_config_values_name_the_key(key, value, needle, tmp_path):
    raw = _edit_yaml(need(CK / "config.yaml"), key, value)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=needle):
        IndexTTS2Config.from_yaml(path)


@pytest.mark.parametrize("key,value", [("upsample_initial_channel", 0), ("num_mels", 0), ("upsample_rates", [8, 0]),
                                       ("upsample_kernel_sizes", [-16, 16]), ("resblock_kernel_sizes", [3, 0, 11]),
                                       ("resblock_dilation_sizes", [[1, 3, 5], [1, 0, 5], [1, 3, 5]])])
def test_impossible_bigvgan_values_name_the_key(key, value):
    raw = json.loads(need(BIGVGAN / "config.json").read_text())
    raw[key] = value
    with pytest.raises(ConfigError, match=key):
        BigVGANConfig.from_dict(raw)


@pytest.mark.parametrize("key", ["hidden_size", "num_attention_heads", "num_hidden_layers"])
def test_impossible_w2v_bert_values_name_the_key(key, tmp_path):
    folder = tmp_path / "w2v"
    shutil.copytree(need(W2V), folder)
    raw = json.loads((folder / "config.json").read_text())
    raw[key] = 0
    (folder / "config.json").write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match=f"config.json: '{key}'"):
        load_semantic_encoder(folder, CK / "wav2vec2bert_stats.pt")


NESTED = {
    "yaml flow": "gpt: " + "[" * 3000 + "]" * 3000 + "\n",
    "yaml block": "gpt:\n" + "".join("  " * i + "a:\n" for i in range(1, 2500)),
    "json": '{"gpt": ' + "[" * 100000 + "]" * 100000 + "}",
}


@pytest.mark.parametrize("kind", NESTED)
def test_deeply_nested_config_files(kind, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(NESTED[kind])  # JSON is YAML too
    with pytest.raises(ConfigError, match="config.yaml: nested too deeply"):
        IndexTTS2Config.from_yaml(path)
    big = tmp_path / "bigvgan"
    big.mkdir()
    (big / "config.json").write_text(NESTED["json"])
    with pytest.raises(ConfigError, match="config.json: nested too deeply"):
        BigVGANConfig.from_json(big / "config.json")
    folder = tmp_path / "w2v"
    shutil.copytree(need(W2V), folder)
    (folder / "config.json").write_text(NESTED["json"])
    with pytest.raises(ConfigError, match="config.json: nested too deeply"):
        load_semantic_encoder(folder, CK / "wav2vec2bert_stats.pt")
