"""Peak memory (RSS) of the things that used to grow without bound: speaker prompts of 3/8/15 s,
1 and 8 cached voices, and `python -m indextts2_core speak` with a 15 s voice, on the public e2e
kit's random-weight models (materialised into a temporary folder unless --kit names one).

Each measurement runs in its own process, so every figure is that process's own peak RSS
(ru_maxrss); "models only" is the peak after loading the models and nothing else.

    python -m benchmarks.bench_memory [--kit MATERIALISED_E2E_KIT] [--shared ../shared]   # from the checkout
"""

from __future__ import annotations

import argparse
import os
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from tools.conformance.kit_files import materialize_copy

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, torch
from indextts2_core.audio import load_audio
from indextts2_core.pipeline import encode_speaker, load_models
from indextts2_core.prompt_cache import FeatureCache

kit, what, seconds, voices = {kit!r}, {what!r}, {seconds!r}, {voices!r}
torch.set_num_threads(2)
models = load_models(kit + "/checkpoints", "cpu", "fp32")
wav, sr = load_audio(kit + "/inputs/spk_prompt_22k.wav")
cache = FeatureCache()
for v in range(voices if what == "cache" else (1 if what == "prompt" else 0)):
    reps = int(seconds * sr) // wav.shape[-1] + 1
    clip = (wav.repeat(1, reps)[:, : int(seconds * sr)] * (1.0 - 0.01 * v)).contiguous()  # a distinct voice each
    encode_speaker(models.semantic, models.codec, models.campplus, models.s2mel, clip, sr,
                   mel_config=models.config.s2mel.mel, w2v_features=models.w2v_features,
                   cache=cache if what == "cache" else None)
print(json.dumps({{"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                   "cache_mb": cache.bytes / 2**20, "cached": len(cache)}}))
"""


def child(kit: Path, what: str, seconds: float = 0.0, voices: int = 0) -> dict:
    code = CHILD.format(kit=str(kit), what=what, seconds=seconds, voices=voices)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def speak_peak(kit: Path, seconds: float, tmp: Path) -> float:
    """Peak RSS of the CLI alone: a fresh process runs it and reports its one child's peak."""
    import soundfile as sf

    wav, sr = sf.read(str(kit / "inputs" / "spk_prompt_22k.wav"), dtype="float32")
    voice = tmp / "voice15.wav"
    sf.write(str(voice), (list(wav) * (int(seconds * sr) // len(wav) + 1))[: int(seconds * sr)], sr)
    cli = [sys.executable, "-m", "indextts2_core", "speak", "--models", str(kit / "checkpoints"), "--speaker",
           str(voice), "--text", "The robots sang. Then they danced.", "--tokens", "40", "--greedy", "--num-beams", "1",
           "--steps", "4", "--device", "cpu", "--out", str(tmp / "o.wav")]
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, *cli], check=True, cwd=ROOT, capture_output=True, text=True)
    return int(out.stdout.strip()) / 1024


def materialised(shared: Path, tmp: Path) -> Path:
    return materialize_copy(shared / "parity" / "public-e2e", tmp)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", type=Path, help="a materialised public-e2e kit (default: materialise one)")
    ap.add_argument("--shared", type=Path, default=Path(os.environ.get("INDEXTTS2_SHARED", ROOT.parent / "shared")))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        kit = args.kit or materialised(args.shared, tmp)
        base = child(kit, "none")["peak_mb"]
        print(f"models only                      peak RSS {base:7.0f} MB")
        for s in (3, 8, 15):
            r = child(kit, "prompt", s)
            print(f"speaker prompt {s:2d} s                peak RSS {r['peak_mb']:7.0f} MB (+{r['peak_mb'] - base:.0f})")
        for n in (1, 8):
            r = child(kit, "cache", 1.5, n)
            print(f"{n} cached voice(s) of 1.5 s        peak RSS {r['peak_mb']:7.0f} MB, cache {r['cache_mb']:.1f} MB "
                  f"({r['cached']} entries)")
        print(f"speak CLI, 15 s voice            peak RSS {speak_peak(kit, 15.0, tmp):7.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
