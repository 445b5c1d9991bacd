"""download.py against a fake huggingface_hub (no network): exact files, cache use, offline error,
idempotence, both layouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import OFFICIAL, need
from indextts2_core import download as dl
from indextts2_core.model_files import ModelFilesError, prefer_safetensors

BASE = {
    ("IndexTeam/IndexTTS-2", n) for n in
    ("config.yaml", "gpt.pth", "s2mel.pth", "bpe.model", "wav2vec2bert_stats.pt", "feat1.pt", "feat2.pt")
} | {
    ("facebook/w2v-bert-2.0", "config.json"), ("facebook/w2v-bert-2.0", "preprocessor_config.json"),
    ("facebook/w2v-bert-2.0", "model.safetensors"), ("amphion/MaskGCT", "semantic_codec/model.safetensors"),
    ("funasr/campplus", "campplus_cn_common.bin"), ("nvidia/bigvgan_v2_22khz_80band_256x", "config.json"),
    ("nvidia/bigvgan_v2_22khz_80band_256x", "bigvgan_generator.pt"),
}
QWEN = {("IndexTeam/IndexTTS-2", f"qwen0.6bemo4-merge/{f}") for f in
        ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json",
         "vocab.json", "merges.txt", "added_tokens.json", "special_tokens_map.json", "chat_template.jinja")}


class FakeHub:
    """Stands in for hf_hub_download: a remote store, an HF cache folder, an offline switch."""

    def __init__(self, tmp: Path, config_text: str, absent=()):
        self.cache = tmp / "hf_cache_dir"
        self.cache_has: set[tuple[str, str]] = set()
        self.absent = set(absent)
        self.config_text = config_text
        self.offline = False
        self.downloads: list[tuple[str, str]] = []  # network fetches
        self.lookups: list[tuple[str, str]] = []  # cache-only lookups

    def content(self, repo, filename) -> str:
        return self.config_text if filename == "config.yaml" else f"{repo}:{filename}"

    def __call__(self, repo_id, filename, *, local_dir=None, local_files_only=False, **kw):
        from huggingface_hub.utils import EntryNotFoundError, LocalEntryNotFoundError

        key = (repo_id, filename)
        cached = self.cache / repo_id / filename
        if local_files_only:
            self.lookups.append(key)
            if key in self.cache_has:
                return str(cached)
            raise LocalEntryNotFoundError(f"{key} not cached")
        if self.offline:
            raise LocalEntryNotFoundError("offline")
        if key in self.absent:
            raise EntryNotFoundError(f"{key} not on the hub")
        self.downloads.append(key)
        target = Path(local_dir) / filename if local_dir else cached
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.content(repo_id, filename))
        if not local_dir:
            self.cache_has.add(key)
        return str(target)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    import huggingface_hub

    text = need(OFFICIAL / "config.yaml").read_text(encoding="utf-8")
    fake = FakeHub(tmp_path, text, absent={("IndexTeam/IndexTTS-2", "qwen0.6bemo4-merge/chat_template.jinja")})
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return fake


def test_pack_layout_fetches_exactly_the_needed_files(tmp_path, hub):
    root = tmp_path / "models"
    paths = dl.download_models(root, include_t2e=False, progress=False)
    assert set(hub.downloads) == BASE and len(hub.downloads) == len(BASE)
    assert paths.layout == "pack" and paths.missing(include_t2e=True) != [] and paths.missing() == []
    assert (root / "MaskGCT/semantic_codec/model.safetensors").read_text() == "amphion/MaskGCT:semantic_codec/model.safetensors"
    assert (root / "IndexTTS-2/gpt.pth").is_file() and (root / "bigvgan_v2_22khz_80band_256x/config.json").is_file()


def test_t2e_files_and_optional_absentees(tmp_path, hub):
    root = tmp_path / "models"
    calls = []
    paths = dl.download_models(root, include_t2e=True, progress=lambda i, n: calls.append((i, n)))
    assert set(hub.downloads) == BASE | (QWEN - hub.absent)
    assert paths.missing(include_t2e=True) == []
    assert not (root / "IndexTTS-2/qwen0.6bemo4-merge/chat_template.jinja").exists()
    assert calls[-1][0] == calls[-1][1]  # the callback reaches the total


def test_second_run_touches_nothing(tmp_path, hub):
    root = tmp_path / "models"
    dl.download_models(root, include_t2e=False, progress=False)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    hub.downloads.clear()
    hub.lookups.clear()
    hub.offline = True  # and it works offline
    dl.download_models(root, include_t2e=False, progress=False)
    assert hub.downloads == [] and hub.lookups == []
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == before


def test_offline_missing_files_error_lists_them(tmp_path, hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.offline = True
    hub.cache_has.add(("IndexTeam/IndexTTS-2", "config.yaml"))
    hub.cache.joinpath("IndexTeam/IndexTTS-2").mkdir(parents=True)
    hub.cache.joinpath("IndexTeam/IndexTTS-2/config.yaml").write_text(hub.config_text)
    with pytest.raises(ModelFilesError) as e:
        dl.download_models(tmp_path / "m", include_t2e=False, progress=False)
    msg = str(e.value)
    assert "HF_HUB_OFFLINE" in msg and "gpt.pth" in msg and "campplus_cn_common.bin" in msg
    assert "config.yaml ->" not in msg  # taken from the cache
    assert (tmp_path / "m/IndexTTS-2/config.yaml").is_file() and hub.downloads == []


def test_cached_files_are_linked_not_downloaded(tmp_path, hub):
    for repo, f in BASE:
        p = hub.cache / repo / f
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(hub.content(repo, f))
        hub.cache_has.add((repo, f))
    paths = dl.download_models(tmp_path / "m", include_t2e=False, progress=False)
    assert hub.downloads == [] and paths.missing() == []


def test_official_layout_uses_hf_cache_names(tmp_path, hub):
    root = tmp_path / "checkpoints"
    root.mkdir()
    (root / "config.yaml").write_text(hub.config_text)
    paths = dl.download_models(root, include_t2e=False, progress=False)
    assert paths.layout == "official" and paths.missing() == []
    assert (root / "hf_cache/semantic_codec_model.safetensors").is_file()
    assert (root / "hf_cache/bigvgan/bigvgan_generator.pt").is_file()
    assert (root / "hf_cache/w2v-bert-2.0/preprocessor_config.json").is_file()
    assert ("IndexTeam/IndexTTS-2", "config.yaml") not in hub.downloads


def test_convert_to_safetensors_round_trip(tmp_path):
    import torch

    from indextts2_core.checkpoints import read_checkpoint

    nested = {"net": {"cfm": {"a.weight": torch.randn(3, 2)}, "lr": {"b": torch.arange(4)}}}
    torch.save(nested, tmp_path / "s2mel.pth")
    torch.save(torch.randn(5, 3), tmp_path / "feat1.pt")
    for name in ("s2mel.pth", "feat1.pt"):
        out = dl.convert_to_safetensors(tmp_path / name)
        assert out.suffix == ".safetensors" and (tmp_path / name).is_file()
        a, b = read_checkpoint(tmp_path / name), read_checkpoint(out)
        flat = lambda d, p="": {k2: v2 for k, v in d.items() for k2, v2 in  # noqa: E731
                                (flat(v, p + k + "/").items() if isinstance(v, dict) else [(p + k, v)])}
        fa, fb = flat(a), flat(b)
        assert fa.keys() == fb.keys() and all(torch.equal(fa[k], fb[k]) for k in fa)
    mtime = (tmp_path / "feat1.safetensors").stat().st_mtime_ns
    dl.convert_to_safetensors(tmp_path / "feat1.pt")  # once only
    assert (tmp_path / "feat1.safetensors").stat().st_mtime_ns == mtime
    assert prefer_safetensors(tmp_path / "feat1.pt").name == "feat1.safetensors"
