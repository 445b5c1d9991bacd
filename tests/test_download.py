"""download.py with the real huggingface_hub client against a local stand-in hub (tests/hub_server.py;
no network): exact files, the Qwen model only when asked, byte progress, offline and unreachable hubs
(fast, every missing file listed, nothing left behind), interruptions and hard kills, stale leftovers,
the HF cache and other folders used instead of downloading, IndexTTS-2.5, unsafe config names."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import model_trees as mt
from hub_server import HubServer
from indextts2_core import download as dl
from indextts2_core.__main__ import main
from indextts2_core.config import ConfigError
from indextts2_core.model_files import PACK_ROOT, ModelPaths, pack_helpers, prefer_safetensors

V2_NAMES = ["IndexTTS-2/" + f for f in ("config.yaml",) + mt.MAIN_FILES["2"]]
HELPER_NAMES = ["w2v-bert-2.0/config.json", "w2v-bert-2.0/preprocessor_config.json", "w2v-bert-2.0/model.safetensors",
                "MaskGCT/semantic_codec/model.safetensors", "campplus/campplus_cn_common.bin",
                "bigvgan_v2_22khz_80band_256x/config.json", "bigvgan_v2_22khz_80band_256x/bigvgan_generator.pt"]


@pytest.fixture(autouse=True)
def hub_env(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    for name in ("HF_HUB_OFFLINE", "HF_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "hub"


@pytest.fixture
def serve(monkeypatch):
    """serve(files, **options) -> a running HubServer that HF_ENDPOINT points at."""
    servers = []

    def start(files, **options):
        server = HubServer(files, **options).__enter__()
        servers.append(server)
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        return server

    yield start
    for server in servers:
        server.__exit__()


def files_under(root: Path) -> list[str]:
    """Regular files under root, relative (hidden ones included)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def gets(server: HubServer) -> set[tuple[str, str]]:
    return {server.parse(path) for method, path in server.requests if method == "GET" and "/resolve/" in path}


def test_pack_layout_fetches_exactly_the_needed_files(tmp_path, serve):
    files = mt.hub_files("2", qwen=True)
    files[("IndexTeam/IndexTTS-2", "README.md")] = b"not needed"
    hub = serve(files)
    root = tmp_path / "models"
    calls = []
    paths = dl.download_models(root, progress=lambda done, total: calls.append((done, total)))
    wanted = {k for k in mt.hub_files("2")}
    assert gets(hub) == wanted  # no Qwen model unless asked, nothing else
    assert files_under(root) == sorted(V2_NAMES + HELPER_NAMES)  # no lock, no .cache, no staging folder
    assert paths.layout == "pack" and paths.missing() == [] and paths.missing(include_t2e=True) != []
    assert (root / "MaskGCT/semantic_codec/model.safetensors").read_bytes() == files[(mt.MASKGCT,
                                                                                        "semantic_codec/model.safetensors")]
    # byte progress: per batch (config.yaml, then the rest) from 0 to its total, never backwards
    totals = sorted({t for _, t in calls})
    assert totals == [len(files[(mt.V2, "config.yaml")]), sum(len(v) for k, v in files.items()
                                                              if k in wanted and k[1] != "config.yaml")]
    for total in totals:
        done = [d for d, t in calls if t == total]
        assert done[0] == 0 and done[-1] == total and done == sorted(done)


def test_t2e_only_when_asked(tmp_path, serve):
    files = mt.hub_files("2", qwen=True)  # the stand-in hub has no chat_template.jinja: optional, skipped
    hub = serve(files)
    root = tmp_path / "models"
    dl.download_models(root, progress=False)
    assert not any("qwen" in f for _, f in gets(hub))
    paths = dl.download_models(root, include_t2e=True, progress=False)
    assert paths.missing(include_t2e=True) == []
    assert {f for _, f in gets(hub) if "qwen" in f} == {f"qwen0.6bemo4-merge/{f}" for f in mt.QWEN_FILES}
    assert not (root / "IndexTTS-2/qwen0.6bemo4-merge/chat_template.jinja").exists()


def test_second_run_touches_nothing_even_offline(tmp_path, serve, monkeypatch):
    hub = serve(mt.hub_files("2"))
    root = tmp_path / "models"
    dl.download_models(root, progress=False)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    hub.requests.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    dl.download_models(root, progress=False)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    dl.download_models(root, progress=False)
    assert hub.requests == [] and {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before


def test_offline_lists_every_missing_file_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    root = tmp_path / "models"
    t0 = time.perf_counter()
    with pytest.raises(dl.DownloadError) as e:
        dl.download_models(root, progress=False)
    msg = str(e.value)
    assert time.perf_counter() - t0 < 5
    assert msg.startswith("HF_HUB_OFFLINE is set, so nothing was downloaded; 14 IndexTTS-2 model file(s)")
    for name in V2_NAMES + HELPER_NAMES:
        assert str(root / name) in msg, name
    assert "https://huggingface.co/IndexTeam/IndexTTS-2/resolve/main/gpt.pth" in msg
    assert f"{PACK_ROOT}" in msg and "download --models" in msg
    assert files_under(root) == [] and list(root.iterdir()) == []


def test_unreachable_hub_fails_fast_with_one_attempt(tmp_path, monkeypatch):
    """A real client, a closed port: one request, a few seconds, the whole list, a true message."""
    import huggingface_hub

    real, attempts = huggingface_hub.get_hf_file_metadata, []
    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", lambda *a, **k: attempts.append(a) or real(*a, **k))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    root = tmp_path / "models"
    t0 = time.perf_counter()
    with pytest.raises(dl.DownloadError) as e:
        dl.download_models(root, include_t2e=True, progress=False)
    msg = str(e.value)
    assert time.perf_counter() - t0 < 10 and len(attempts) == 1
    assert msg.startswith("The Hugging Face hub at http://127.0.0.1:9 could not be reached (ConnectError")
    assert "18 IndexTTS-2 model file(s) are missing" in msg and msg.count("\n      <- http://127.0.0.1:9/") == 18
    assert "HF_HUB_OFFLINE" not in msg and "--t2e" in msg
    assert list(root.iterdir()) == []


def test_a_proxy_answering_404_is_not_taken_for_missing_files(tmp_path, serve):
    hub = serve({}, errors={mt.V2: (404, "")})  # a bare 404, not the hub's EntryNotFound
    with pytest.raises(dl.DownloadError, match="did not serve the files") as e:
        dl.download_models(tmp_path / "m", progress=False)
    assert "14 IndexTTS-2 model file(s) are missing" in str(e.value) and len(hub.requests) == 1


def test_gated_and_absent_files_are_named(tmp_path, serve):
    files = mt.hub_files("2")
    del files[(mt.CAMPPLUS, "campplus_cn_common.bin")]
    serve(files, errors={mt.W2V: (401, "GatedRepo")})
    root = tmp_path / "m"
    with pytest.raises(dl.DownloadError) as e:
        dl.download_models(root, progress=False)
    msg = str(e.value)
    assert "4 IndexTTS-2 model file(s) could not be downloaded" in msg
    assert "access denied" in msg and "not on the hub" in msg and "HF_TOKEN" in msg
    assert "campplus_cn_common.bin" in msg and "w2v-bert-2.0/model.safetensors" in msg
    assert (root / "IndexTTS-2/gpt.pth").is_file()  # what could be had is kept
    assert not (root / dl.STAGING).exists()


def test_dropped_connection_leaves_no_partial_file(tmp_path, serve):
    files = mt.hub_files("2", size=300_000)
    hub = serve(files, cut_after=100_000)
    root = tmp_path / "m"
    with pytest.raises(dl.DownloadError, match="could not be reached"):
        dl.download_models(root, progress=False)
    assert files_under(root) == ["IndexTTS-2/config.yaml"]  # small enough to arrive whole
    hub.cut_after = None
    assert dl.download_models(root, progress=False).missing() == []
    assert files_under(root) == sorted(V2_NAMES + HELPER_NAMES)


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, RuntimeError])
def test_interrupt_from_the_progress_callback_cleans_up(tmp_path, serve, interrupt):
    """ComfyUI's interrupt arrives as an exception from the progress callback."""
    serve(mt.hub_files("2", size=1_000_000), slow=0.01)
    root = tmp_path / "m"

    def progress(done, total):
        if 0 < done < total and total > 1_000_000:
            raise interrupt("stop")

    with pytest.raises(interrupt):
        dl.download_models(root, progress=progress)
    assert files_under(root) == ["IndexTTS-2/config.yaml"]
    assert [p.name for p in root.iterdir()] == ["IndexTTS-2"]


def test_hard_kill_leftovers_are_cleaned_by_the_next_run(tmp_path, serve):
    """SIGKILL the CLI in the middle of a file; the next run removes what it left and completes."""
    files = mt.hub_files("2", size=2_000_000)
    hub = serve(files, slow=0.05)
    root = tmp_path / "m"
    env = {**os.environ, "HF_ENDPOINT": hub.url}
    proc = subprocess.Popen([sys.executable, str(PACK_ROOT), "download", "--models", str(root)], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "stderr.txt", "w"))
    try:
        deadline, partial = time.monotonic() + 60, []
        while time.monotonic() < deadline and not partial:  # hub writes .incomplete in 10 MB pieces: 0 B here
            time.sleep(0.05)
            try:
                partial = list((root / dl.STAGING).rglob("*.incomplete"))
            except OSError:  # a folder vanished while listed
                pass
        assert partial, (tmp_path / "stderr.txt").read_text()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (root / dl.STAGING).is_dir()  # what a killed run leaves: only inside the staging folder
    assert all(not n.endswith((".incomplete", ".lock")) for n in files_under(root) if not n.startswith(dl.STAGING))
    hub.slow = 0
    assert dl.download_models(root, progress=False).missing() == []
    assert files_under(root) == sorted(V2_NAMES + HELPER_NAMES)


def test_stale_leftovers_of_older_runs_are_removed(tmp_path, serve):
    serve(mt.hub_files("2"))
    root = tmp_path / "m"
    stale = [root / dl.STAGING / "IndexTTS-2/.cache/huggingface/download/gpt.pth.incomplete",
             root / dl.STAGING / "lock", root / "IndexTTS-2/gpt.pth.part", root / "IndexTTS-2/.gpt.safetensors.part",
             root / "IndexTTS-2/.cache/huggingface/download/s2mel.pth.lock",
             root / "IndexTTS-2/.cache/huggingface/download/s2mel.pth.incomplete",
             root / "campplus/campplus_cn_common.bin.part"]
    for p in stale:
        mt.write(p, b"half")
    dl.download_models(root, progress=False)
    assert files_under(root) == sorted(V2_NAMES + HELPER_NAMES)


def test_one_run_per_folder(tmp_path, serve):
    from filelock import FileLock

    serve(mt.hub_files("2"))
    root = tmp_path / "m"
    (root / dl.STAGING).mkdir(parents=True)
    with FileLock(str(root / dl.STAGING / "lock")):
        with pytest.raises(dl.DownloadError, match="another download into .* is running"):
            dl.download_models(root, progress=False)
    assert dl.download_models(root, progress=False).missing() == []


def test_files_in_the_hub_cache_are_used_not_downloaded(tmp_path, serve, hub_env):
    hub = serve(mt.hub_files("2"))
    mt.cache_all(hub_env, "2")
    root = tmp_path / "m"
    paths = dl.download_models(root, progress=False)
    assert hub.requests == [] and paths.missing() == []
    # helpers complete in the cache are used where they are; the model folder's files are hard links
    assert paths.w2v_bert_dir.is_relative_to(hub_env) and paths.bigvgan_dir.is_relative_to(hub_env)
    assert files_under(root) == sorted(V2_NAMES)
    cached = next(hub_env.glob("models--IndexTeam--IndexTTS-2/snapshots/*/gpt.pth"))
    assert os.path.samefile(root / "IndexTTS-2/gpt.pth", cached)


def test_helpers_found_in_another_tool_folder_are_not_downloaded(tmp_path, serve):
    """TTS-Audio-Suite's models/TTS/IndexTTS/ holds the helpers: only IndexTTS-2 itself is fetched."""
    hub = serve(mt.hub_files("2"))
    models = tmp_path / "models"
    suite = mt.pack_helpers(models / "TTS" / "IndexTTS")
    paths = dl.download_models(models / "indextts2", progress=False, search=[pack_helpers(suite)])
    assert {r for r, _ in gets(hub)} == {mt.V2} and paths.missing() == []
    assert paths.w2v_bert_dir == suite / "w2v-bert-2.0"


def test_official_layout_is_completed_with_its_names(tmp_path, serve):
    hub = serve(mt.hub_files("2"))
    root = mt.write(tmp_path / "checkpoints" / "config.yaml", mt.CONFIG_V2).parent
    paths = dl.download_models(root, progress=False)
    assert paths.layout == "official" and paths.missing() == []
    for name in ("hf_cache/semantic_codec_model.safetensors", "hf_cache/bigvgan/bigvgan_generator.pt",
                 "hf_cache/w2v-bert-2.0/preprocessor_config.json", "hf_cache/campplus_cn_common.bin", "gpt.pth"):
        assert (root / name).is_file(), name
    assert (mt.V2, "config.yaml") not in gets(hub) and not (root / dl.STAGING).exists()


def test_v25_beside_v2_fetches_only_its_own_folder(tmp_path, serve):
    hub = serve({**mt.hub_files("2"), **mt.hub_files("2.5")})
    root = tmp_path / "models"
    dl.download_models(root, progress=False)
    hub.requests.clear()
    paths = dl.download_models(root, version="2.5", progress=False)
    assert {r for r, _ in gets(hub)} == {mt.V25} and (paths.version, paths.layout) == ("2.5", "pack")
    assert paths.missing() == [] and paths.codec == root / "IndexTTS-2.5/codec.pth"
    assert paths.tokenizer.read_bytes() == mt.hub_files("2.5")[(mt.V25, "multilingual_zh_ja_yue_char_del.tiktoken")]
    with pytest.raises(Exception, match="both IndexTTS-2/ and IndexTTS-2.5/"):
        dl.download_models(root, progress=False)


def test_v25_alone_never_asks_for_maskgct(tmp_path, serve):
    hub = serve(mt.hub_files("2.5"))
    paths = dl.download_models(tmp_path / "m", version="2.5", progress=False)
    assert paths.missing() == [] and mt.MASKGCT not in {r for r, _ in gets(hub)}
    assert not (tmp_path / "m" / "MaskGCT").exists()


@pytest.mark.parametrize("bad", ["../../outside.pth", "/tmp/outside.pth", "..\\..\\outside.pth"])
def test_unsafe_names_in_a_downloaded_config_write_nothing(tmp_path, serve, bad):
    files = mt.hub_files("2")
    files[(mt.V2, "config.yaml")] = mt.CONFIG_V2.replace("gpt_checkpoint: gpt.pth", f"gpt_checkpoint: '{bad}'").encode()
    files[(mt.V2, bad.replace("\\", "/"))] = b"evil"
    hub = serve(files)
    root = tmp_path / "a" / "b" / "m"
    with pytest.raises(ConfigError, match="gpt_checkpoint"):
        dl.download_models(root, progress=False)
    assert gets(hub) == {(mt.V2, "config.yaml")} and files_under(tmp_path / "a") == ["b/m/IndexTTS-2/config.yaml"]


def test_network_errors_are_told_from_disk_errors():
    assert dl._classify(ConnectionRefusedError(errno.ECONNREFUSED, "refused")) == "unreachable"
    assert dl._classify(TimeoutError("slow")) == "unreachable"
    assert dl._classify(PermissionError(errno.EACCES, "denied")) is None
    assert dl._classify(OSError(errno.ENOSPC, "disk full")) is None
    assert dl._classify(ValueError("bug")) is None


def test_cli_download(tmp_path, serve, capsys):
    serve(mt.hub_files("2", qwen=True))
    root = tmp_path / "models"
    assert main(["download", "--models", str(root), "--no-t2e"]) == 0  # the old flag still works (the default)
    err = capsys.readouterr().err
    assert "IndexTTS-2 model files ready" in err and "pack layout" in err and "download" in err
    assert not (root / "IndexTTS-2/qwen0.6bemo4-merge").exists()
    assert main(["download", "--models", str(root), "--t2e"]) == 0
    assert ModelPaths.locate(root).missing(include_t2e=True) == []
    assert main(["download", "--models", str(root), "--t2e", "--no-t2e"]) == 2
    assert "contradict" in capsys.readouterr().err


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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feat1.pt", "feat1.safetensors", "s2mel.pth",
                                                          "s2mel.safetensors"]
