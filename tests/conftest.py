"""Shared fixtures. `../shared` (next to the checkout) holds the parity kits and official small
files; tests that need it are skipped with a reason when it is absent. Override with INDEXTTS2_SHARED."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INDEXTTS2_SHARED", ROOT.parent / "shared"))
PUBLIC_KIT = SHARED / "parity" / "public"
E2E_KIT = SHARED / "parity" / "public-e2e"
E2E25_KIT = SHARED / "parity" / "public25-e2e"  # IndexTTS-2.5
TEXT_CASES = SHARED / "parity" / "text" / "public" / "text_cases.jsonl"
OFFICIAL = SHARED / "official-data"
MANIFESTS = ROOT / "tests" / "data" / "manifests"

torch.set_num_threads(min(2, torch.get_num_threads()))


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} not available (the shared parity kits / official data are not next to this checkout)")
    return path


@pytest.fixture(scope="session")
def official_config():
    from indextts2_core.config import IndexTTS2Config

    return IndexTTS2Config.from_yaml(need(OFFICIAL / "config.yaml"))


@pytest.fixture(scope="session")
def public_kit() -> Path:
    return need(PUBLIC_KIT)


@pytest.fixture
def one_thread():
    """Many tiny calls: a second intra-op thread only adds wake-up cost on a busy machine; restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
