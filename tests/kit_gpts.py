"""The random-weight GPTs of the public e2e kits (IndexTTS-2 and 2.5), materialised once per session,
with deterministic requests for them: conditioning, text ids and language of several segments.

Import the fixtures into a test module (`from kit_gpts import kit_gpt_v2, kit_gpt_25`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import SHARED, need
from e2e_fixtures import e2e_kit  # noqa: F401  (a fixture kit_gpt_v2 uses)

E2E25_KIT = SHARED / "parity" / "public25-e2e"
_STATE: dict = {}


def materialize25(tmp_root: Path) -> Path:
    """The public25-e2e kit's checkpoints written under tmp_root/kit (~700 MB, seconds)."""
    src = need(E2E25_KIT)
    kit = tmp_root / "kit"
    shutil.copytree(src, kit, ignore=shutil.ignore_patterns("checkpoints"))
    for p in [kit, *kit.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)  # the shared copy is read-only
    subprocess.run([sys.executable, str(kit / "materialize_kit.py"), str(kit)], check=True, capture_output=True)
    return kit


@pytest.fixture(scope="session")
def kit_gpt_v2(e2e_kit):  # noqa: F811
    from indextts2_core.config import IndexTTS2Config
    from indextts2_core.gpt.model import load_gpt

    if "v2" not in _STATE:
        ck = e2e_kit / "checkpoints"
        _STATE["v2"] = load_gpt(ck / "gpt.pth", IndexTTS2Config.from_yaml(ck / "config.yaml"))
    return _STATE["v2"]


@pytest.fixture(scope="session")
def kit_gpt_25(tmp_path_factory):
    from indextts2_core.config25 import IndexTTS25Config
    from indextts2_core.gpt.model25 import load_gpt25

    if "v25" not in _STATE:
        ck = materialize25(tmp_path_factory.mktemp("e2e25")) / "checkpoints"
        _STATE["v25"] = load_gpt25(ck / "gpt.pth", IndexTTS25Config.from_yaml(ck / "config.yaml"))
    return _STATE["v25"]


def kit_requests(model, n: int, seed: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor], list[int | None]]:
    """n segments of different text lengths and conditioning: (conds, text ids, langs); random
    conditioning features through the model's own encoders, so every request differs."""
    from indextts2_core.gpt.model25 import UnifiedVoice25

    g = torch.Generator().manual_seed(seed)
    conds, texts, langs = [], [], []
    with torch.no_grad():
        for i in range(n):
            ids = torch.randint(2, min(model.cfg.number_text_tokens, 250), (4 + 5 * i,), generator=g)
            emovec = model.emovec(torch.randn(1, 30, 1024, generator=g))
            if isinstance(model, UnifiedVoice25):
                conds.append(model.conditioning(torch.randn(1, 192, generator=g), emovec))
                langs.append(3 + i)
            else:
                conds.append(model.conditioning(model.speaker_latents(torch.randn(1, 40, 1024, generator=g)), emovec))
                langs.append(None)
            texts.append(ids)
    return conds, texts, langs
