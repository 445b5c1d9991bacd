"""Per-stage wall times of one `pipeline.synthesize` run.

    python -m benchmarks.bench_pipeline                  # from the checkout: full-size networks, random weights
    python -m benchmarks.bench_pipeline --models DIR     # real (or kit) model files, either layout

Without --models the networks are built at the real sizes from the official config.yaml (GPT 871 M
parameters, w2v-BERT cut to 17 layers, S2M, BigVGAN v2, CAMPPlus, codec) with random weights; no
model files are needed, only config.yaml and bpe.model (default: ../shared/official-data). A random
GPT never stops on its own, so the length is fixed with --tokens (codes for the whole text).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INDEXTTS2_SHARED", ROOT.parent / "shared"))
OFFICIAL = SHARED / "official-data"
MANIFESTS = ROOT / "tests" / "data" / "manifests"


def random_models(config: Path, bpe: Path, device: torch.device, dtype: torch.dtype):
    """IndexTTS2Models at the sizes of `config` (+ the published w2v-BERT / BigVGAN configs), random weights."""
    from benchmarks.gpu_check import moved, random_models as build

    w2v = json.loads((MANIFESTS / "w2v-bert-2.0.json").read_text())["config_json_values_used"]
    voc = json.loads((MANIFESTS / "bigvgan_generator.pt.json").read_text())["config_json"]
    models = moved(build(config, bpe, w2v, voc), device, copy_=False)
    return dataclasses.replace(models, gpt=models.gpt.to(dtype))


def speech_like(seconds: float, rate: int = 22050) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    t = torch.arange(int(seconds * rate)) / rate
    f0 = 140 + 30 * torch.sin(2 * torch.pi * 0.7 * t)
    x = sum(torch.sin(2 * torch.pi * k * torch.cumsum(f0, 0) / rate) / k for k in range(1, 6))
    env = 0.5 + 0.5 * torch.sin(2 * torch.pi * 3 * t).abs()
    return (0.2 * x * env + 0.01 * torch.randn(t.shape, generator=g)).unsqueeze(0).float()


def main(argv=None) -> int:
    from indextts2_core.gpt import DecodingSettings
    from indextts2_core.pipeline import S2MSettings, load_models, resolve_device, resolve_dtype, synthesize

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, help="model folder (default: random full-size networks)")
    ap.add_argument("--config", type=Path, default=OFFICIAL / "config.yaml")
    ap.add_argument("--bpe", type=Path, default=OFFICIAL / "bpe.model")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="fp32", help="GPT precision")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--speaker-seconds", type=float, default=5.0)
    ap.add_argument("--text", default="The quick brown fox jumps over the lazy dog, and then it rests in the sun.")
    ap.add_argument("--tokens", type=int, default=100, help="codes for the whole text (2 s of speech at 50 per second)")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--beams", type=int, default=3)
    ap.add_argument("--decode-step", default="eager", help="DecodingSettings.decode_step")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = resolve_device(args.device), resolve_dtype(args.dtype)

    t0 = time.perf_counter()
    if args.models:
        models = load_models(args.models, device, dtype)
        what = f"model files in {args.models}"
    else:
        models = random_models(args.config, args.bpe, device, dtype)
        what = "full-size networks, random weights"
    load_s = time.perf_counter() - t0
    params = {k: sum(p.numel() for p in getattr(models, k).parameters()) / 1e6
              for k in ("semantic", "codec", "campplus", "gpt", "s2mel", "vocoder")}
    speaker = speech_like(args.speaker_seconds)
    settings = DecodingSettings(num_beams=args.beams, decode_step=args.decode_step)
    t0 = time.perf_counter()
    with torch.inference_mode():
        result = synthesize(models, args.text, speaker, 22050, target_tokens=args.tokens, decoding=settings,
                            s2m=S2MSettings(steps=args.steps), seed=0)
    total = time.perf_counter() - t0
    audio_s = result.waveform.shape[-1] / result.sample_rate

    print(f"IndexTTS2 pipeline, {what}; device {device}, GPT {dtype}, {torch.get_num_threads()} CPU threads")
    print("parameters (M): " + ", ".join(f"{k} {v:.1f}" for k, v in params.items()))
    print(f"speaker prompt {args.speaker_seconds:g} s, {len(result.segments)} segment(s), {args.tokens} codes, "
          f"{args.beams} beams, {args.steps} CFM steps -> {audio_s:.2f} s of audio")
    print(f"{'stage':<18}{'seconds':>9}")
    print(f"{'build / load':<18}{load_s:>9.2f}")
    for name, secs in result.seconds.items():
        print(f"{name:<18}{secs:>9.2f}")
    print(f"{'synthesize total':<18}{total:>9.2f}   (real-time factor {total / audio_s:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
