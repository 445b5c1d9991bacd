"""Tier (b): modules built on meta from the real config match the official checkpoint manifests."""

import pytest

from conftest import MANIFESTS, OFFICIAL, need
from indextts2_core.conformance.__main__ import main as conformance_main
from indextts2_core.conformance.manifests import CONTRACTS, check_manifest


@pytest.mark.parametrize("manifest", sorted(CONTRACTS))
def test_module_matches_manifest(manifest, official_config):
    reports = check_manifest(MANIFESTS / manifest, official_config)
    if reports is None:
        pytest.skip(f"{manifest}: no module in the pack yet")
    for part, report in reports.items():
        assert report.ok, report.describe(f"{manifest} [{part}]")
        assert report.matched, f"{manifest} [{part}]: nothing matched"


def test_manifests_cli_reports_counts(capsys):
    need(OFFICIAL / "config.yaml")
    rc = conformance_main(["manifests", "--dir", str(MANIFESTS), "--config", str(OFFICIAL / "config.yaml")])
    out = capsys.readouterr().out
    for name in CONTRACTS:
        assert name in out
    implemented = [n for n in CONTRACTS if f"{n}: not implemented" not in out]
    assert ("mismatched" in out) == bool(implemented)
    assert rc == (0 if all(f"{n}: not implemented" not in out for n in CONTRACTS) and "missing 0" in out else rc)
