"""Tier (b): modules built on meta from the real config match the official checkpoint manifests.
Every manifest has a contract; a missing one fails."""

import pytest

from conftest import MANIFESTS, OFFICIAL, need
from tools.conformance.__main__ import main as conformance_main
from tools.conformance.manifests import CONTRACTS, check_manifest

MANIFEST_FILES = ("gpt.pth.json", "s2mel.pth.json", "semantic_codec.safetensors.json", "campplus_cn_common.bin.json",
                  "bigvgan_generator.pt.json", "w2v-bert-2.0.json")


def test_every_official_manifest_has_a_contract():
    assert set(MANIFEST_FILES) <= set(CONTRACTS)


@pytest.mark.parametrize("manifest", MANIFEST_FILES)
def test_module_matches_manifest(manifest, official_config):
    reports = check_manifest(need(MANIFESTS / manifest), official_config)
    assert reports
    for part, report in reports.items():
        assert report.ok, report.describe(f"{manifest} [{part}]")
        assert report.matched, f"{manifest} [{part}]: nothing matched"


def test_manifests_cli_reports_counts(capsys):
    need(OFFICIAL / "config.yaml")
    rc = conformance_main(["manifests", "--dir", str(MANIFESTS), "--config", str(OFFICIAL / "config.yaml")])
    out = capsys.readouterr().out
    assert rc == 0, out
    for name in MANIFEST_FILES:
        assert f"{name} [" in out and "mismatched 0" in out
    assert "missing 0" in out and "unexpected 0" in out


def test_manifests_cli_fails_on_a_mismatch(tmp_path, capsys):
    """A manifest whose shape disagrees with the module makes the command fail and name the key."""
    import json

    data = json.loads(need(MANIFESTS / "campplus_cn_common.bin.json").read_text())
    entries = data["tensors"] if isinstance(data["tensors"], list) else next(iter(data["tensors"].values()))
    entries[0]["shape"] = [7] + list(entries[0]["shape"])[1:]
    for name in MANIFEST_FILES:
        src = (MANIFESTS / name).read_text()
        (tmp_path / name).write_text(json.dumps(data) if name == "campplus_cn_common.bin.json" else src)
    rc = conformance_main(["manifests", "--dir", str(tmp_path), "--config", str(OFFICIAL / "config.yaml")])
    out = capsys.readouterr().out
    assert rc == 1
    assert entries[0]["key"] in out
