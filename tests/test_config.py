import pytest
import yaml

from conftest import OFFICIAL, PUBLIC_KIT, need
from indextts2_core.config import BigVGANConfig, ConfigError, IndexTTS2Config


def test_official_config_values(official_config):
    c = official_config
    assert (c.gpt.model_dim, c.gpt.layers, c.gpt.heads) == (1280, 24, 20)
    assert c.gpt.condition_module.num_blocks == 6 and c.gpt.emo_condition_module.attention_heads == 4
    assert c.s2mel.mel.fmax is None and c.s2mel.mel.sr == 22050
    assert c.s2mel.dit.depth == 13 and c.s2mel.wavenet.num_layers == 8
    assert c.emo_num == (3, 17, 2, 8, 4, 5, 10, 24)
    assert c.bpe_model == "bpe.model" and c.qwen_emo_path == "qwen0.6bemo4-merge/"


def _raw():
    return yaml.safe_load(need(OFFICIAL / "config.yaml").read_text())


@pytest.mark.parametrize("path,needle", [
    (("gpt", "heads"), "gpt.heads"),
    (("s2mel", "DiT", "depth"), "s2mel.DiT.depth"),
    (("semantic_codec", "codebook_dim"), "semantic_codec.codebook_dim"),
    (("emo_num",), "emo_num"),
])
def test_missing_key_is_named(path, needle):
    raw = _raw()
    node = raw
    for k in path[:-1]:
        node = node[k]
    del node[path[-1]]
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        IndexTTS2Config.from_dict(raw)


def test_unknown_and_wrong_values_are_named():
    raw = _raw()
    raw["gpt"]["headz"] = 3
    with pytest.raises(ConfigError, match=r"gpt\.headz"):
        IndexTTS2Config.from_dict(raw)
    raw = _raw()
    raw["gpt"]["layers"] = "24"
    with pytest.raises(ConfigError, match=r"gpt\.layers.*integer"):
        IndexTTS2Config.from_dict(raw)
    raw = _raw()
    raw["s2mel"]["DiT"]["is_causal"] = True
    with pytest.raises(ConfigError, match=r"s2mel\.DiT\.is_causal"):
        IndexTTS2Config.from_dict(raw)
    raw = _raw()
    raw["emo_num"] = [1, 2, 3]
    with pytest.raises(ConfigError, match="emo_num"):
        IndexTTS2Config.from_dict(raw)


def test_malformed_yaml(tmp_path):
    p = tmp_path / "config.yaml"
    p.write_text("gpt: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        IndexTTS2Config.from_yaml(p)
    with pytest.raises(FileNotFoundError):
        IndexTTS2Config.from_yaml(tmp_path / "nope.yaml")


def test_frozen(official_config):
    with pytest.raises(Exception):
        official_config.gpt.layers = 3


def test_kit_configs_parse():
    c = IndexTTS2Config.from_yaml(need(PUBLIC_KIT / "config.yaml"))
    assert c.gpt.model_dim == 128
    b = BigVGANConfig.from_json(need(PUBLIC_KIT / "checkpoints/hf_cache/bigvgan/config.json"))
    assert b.total_upsample == 256 and b.use_tanh_at_final is False
