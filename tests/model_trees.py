"""Small fake model trees (tiny files) in every layout the resolver and the finder know, and the
file contents a fake hub serves. Resolution only looks at names, so any bytes do."""

from __future__ import annotations

from pathlib import Path

V2 = "IndexTeam/IndexTTS-2"
V25 = "IndexTeam/IndexTTS-2.5"
W2V, MASKGCT, CAMPPLUS, BIGVGAN = ("facebook/w2v-bert-2.0", "amphion/MaskGCT", "funasr/campplus",
                                   "nvidia/bigvgan_v2_22khz_80band_256x")

CONFIG_V2 = """gpt:
    model_dim: 1280
    number_text_tokens: 12000
dataset:
    bpe_model: bpe.model
gpt_checkpoint: gpt.pth
w2v_stat: wav2vec2bert_stats.pt
s2mel_checkpoint: s2mel.pth
emo_matrix: feat2.pt
spk_matrix: feat1.pt
qwen_emo_path: qwen0.6bemo4-merge/
version: 2.0
"""
CONFIG_V25 = """gpt:
    model_dim: 1280
    number_text_tokens: 60509
gpt_checkpoint: gpt.pth
w2v_stat: wav2vec2bert_stats.pt
s2mel_checkpoint: s2mel.pth
emo_matrix: feat2.pt
spk_matrix: feat1.pt
qwen_emo_path: qwen0.6bemo4-merge/
version: 2.5
"""
MAIN_FILES = {
    "2": ("gpt.pth", "s2mel.pth", "bpe.model", "wav2vec2bert_stats.pt", "feat1.pt", "feat2.pt"),
    "2.5": ("gpt.pth", "s2mel.pth", "codec.pth", "multilingual_zh_ja_yue_char_del.tiktoken",
            "wav2vec2bert_stats.pt", "feat1.pt", "feat2.pt"),
}
QWEN_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json",
              "vocab.json", "merges.txt", "added_tokens.json", "special_tokens_map.json")  # no chat_template.jinja
HELPER_FILES = {
    W2V: ("config.json", "preprocessor_config.json", "model.safetensors"),
    MASKGCT: ("semantic_codec/model.safetensors",),
    CAMPPLUS: ("campplus_cn_common.bin",),
    BIGVGAN: ("config.json", "bigvgan_generator.pt"),
}
PACK = {V2: "IndexTTS-2", V25: "IndexTTS-2.5", W2V: "w2v-bert-2.0", MASKGCT: "MaskGCT", CAMPPLUS: "campplus",
        BIGVGAN: "bigvgan_v2_22khz_80band_256x"}
OFFICIAL = {W2V: "hf_cache/w2v-bert-2.0", BIGVGAN: "hf_cache/bigvgan"}  # + the two renamed single files


def write(path: Path, data: bytes | str = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def hub_files(version: str = "2", qwen: bool = False, size: int = 1000) -> dict[tuple[str, str], bytes]:
    """What a hub serves: {(repo, path): bytes} for one version, its helpers, and the Qwen folder."""
    repo = V2 if version == "2" else V25
    out = {(repo, "config.yaml"): (CONFIG_V2 if version == "2" else CONFIG_V25).encode()}
    out.update({(repo, f): _bytes(repo, f, size) for f in MAIN_FILES[version]})
    if qwen:
        out.update({(repo, f"qwen0.6bemo4-merge/{f}"): _bytes(repo, f, 64) for f in QWEN_FILES})
    for helper, names in HELPER_FILES.items():
        if helper == MASKGCT and version != "2":
            continue
        out.update({(helper, f): _bytes(helper, f, size) for f in names})
    return out


def _bytes(repo: str, name: str, size: int) -> bytes:
    seed = f"{name}:{repo}:".encode()
    return (seed * (size // len(seed) + 1))[:size]


def main_folder(folder: Path, version: str = "2", qwen: bool = False, config: str | None = None) -> Path:
    """An IndexTeam model folder of one version (config.yaml + its files)."""
    write(folder / "config.yaml", config if config is not None else CONFIG_V2 if version == "2" else CONFIG_V25)
    for f in MAIN_FILES[version]:
        write(folder / f)
    if qwen:
        for f in QWEN_FILES:
            write(folder / "qwen0.6bemo4-merge" / f)
    return folder


def pack_helpers(root: Path, skip=()) -> Path:
    for repo, names in HELPER_FILES.items():
        if repo not in skip:
            for f in names:
                write(root / PACK[repo] / f)
    return root


def official_helpers(root: Path, skip=()) -> Path:
    ext = root / "hf_cache"
    for repo in (W2V, BIGVGAN):
        if repo not in skip:
            for f in HELPER_FILES[repo]:
                write(root / OFFICIAL[repo] / f)
    if MASKGCT not in skip:
        write(ext / "semantic_codec_model.safetensors")
    if CAMPPLUS not in skip:
        write(ext / "campplus_cn_common.bin")
    return root


def snapshot(hub: Path, repo: str, files, rev: str = "a" * 40, main: bool = True) -> Path:
    """A hub-cache snapshot `hub/models--ORG--NAME/snapshots/REV/` holding `files` (+ refs/main)."""
    base = hub / ("models--" + repo.replace("/", "--"))
    snap = base / "snapshots" / rev
    snap.mkdir(parents=True, exist_ok=True)
    for f in files:
        if isinstance(f, tuple):
            write(snap / f[0], f[1])
        else:
            write(snap / f)
    if main:
        write(base / "refs" / "main", rev)
    return snap


def cache_all(hub: Path, version: str = "2", qwen: bool = False) -> Path:
    """A complete set in a hub cache."""
    repo = V2 if version == "2" else V25
    files = [("config.yaml", CONFIG_V2 if version == "2" else CONFIG_V25), *MAIN_FILES[version]]
    if qwen:
        files += [f"qwen0.6bemo4-merge/{f}" for f in QWEN_FILES]
    snapshot(hub, repo, files)
    for helper, names in HELPER_FILES.items():
        snapshot(hub, helper, names, rev="b" * 40)
    return hub


def listing(root: Path) -> list[str]:
    """Every path under root (hidden ones included), relative, sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))
