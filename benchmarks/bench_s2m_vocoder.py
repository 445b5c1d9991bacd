"""Speed of S2M (length regulator + 25-step CFM with CFG) and BigVGAN at full size.

Random weights, real widths: the S2M config comes from the official `config.yaml`, BigVGAN's from
the `config_json` recorded in the checkpoint manifest. Prints seconds of compute per second of
generated audio (real-time factor; lower is faster) for each stage and for both together.

    python -m benchmarks.bench_s2m_vocoder --device cpu --seconds 2
    python -m benchmarks.bench_s2m_vocoder --device cuda --dtype bfloat16 --seconds 20
"""

from __future__ import annotations

import argparse
import os
import json
import time
from pathlib import Path

import torch

from indextts2_core.config import IndexTTS2Config
from indextts2_core.timing import Timing

TIMING = Timing()  # IndexTTS-2 rates
from indextts2_core.s2mel.model import GPT_LAYER_SIZES, S2Mel
from indextts2_core.config import BigVGANConfig
from indextts2_core.vocoder.bigvgan import BigVGAN

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INDEXTTS2_SHARED", ROOT.parent / "shared"))
DEFAULT_CONFIG = SHARED / "official-data" / "config.yaml"
DEFAULT_MANIFEST = ROOT / "tests" / "data" / "manifests" / "bigvgan_generator.pt.json"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device):
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - start


def build(args, device, dtype):
    cfg = IndexTTS2Config.from_yaml(args.config)
    vcfg = BigVGANConfig.from_dict(json.loads(Path(args.manifest).read_text())["config_json"])
    torch.manual_seed(0)
    s2mel = S2Mel(cfg.s2mel).to(device=device, dtype=dtype).eval()  # default (random) init
    vocoder = BigVGAN(vcfg).to(device=device, dtype=dtype).eval()  # filters computed at construction
    return cfg, s2mel, vocoder


def run_once(s2mel, vocoder, cfg, args, device, dtype):
    g = torch.Generator(device=device).manual_seed(1)
    codes = TIMING.codes(args.seconds)
    frames = TIMING.frames_for_samples(TIMING.samples(args.seconds))
    prompt = TIMING.frames_for_samples(TIMING.samples(args.prompt_seconds))
    mels, style_dim = cfg.s2mel.dit.in_channels, cfg.s2mel.style_dim
    rand = lambda *shape: torch.randn(*shape, generator=g, device=device).to(dtype)  # noqa: E731
    code_emb, latent = rand(1, codes, GPT_LAYER_SIZES[-1]), rand(1, codes, GPT_LAYER_SIZES[0])
    s_ref = rand(1, TIMING.codes(args.prompt_seconds), GPT_LAYER_SIZES[-1])  # prompt codes' features
    ref_mel, style = rand(1, mels, prompt), rand(1, style_dim)

    with torch.inference_mode():
        prompt_cond, t_prompt = timed(lambda: s2mel.length_regulator(s_ref, prompt), device)

        def s2m():
            cond = s2mel.target_condition(s2mel.content_features(code_emb, latent), frames)
            return s2mel.sample(prompt_cond, cond, ref_mel, style, steps=args.steps, cfg_rate=args.cfg_rate,
                                generator=g)

        mel, t_s2m = timed(s2m, device)
        wav, t_voc = timed(lambda: vocoder(mel), device)
    assert mel.shape[-1] == frames and wav.shape[-1] == TIMING.frames_to_samples(frames)
    return frames, t_prompt, t_s2m, t_voc


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    p.add_argument("--seconds", type=float, default=2.0, help="generated audio per run")
    p.add_argument("--prompt-seconds", type=float, default=3.0, help="speaker prompt (mel frames in the CFM)")
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--cfg-rate", type=float, default=0.7)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave torch's default)")
    p.add_argument("--config", default=str(DEFAULT_CONFIG))
    p.add_argument("--manifest", default=str(DEFAULT_MANIFEST))
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]

    (cfg, s2mel, vocoder), t_build = timed(lambda: build(args, device, dtype), device)
    n_s2m = sum(t.numel() for t in s2mel.parameters())
    n_voc = sum(t.numel() for t in vocoder.parameters())
    print(f"device {device} dtype {args.dtype} threads {torch.get_num_threads()} | S2M {n_s2m / 1e6:.1f} M params, "
          f"BigVGAN {n_voc / 1e6:.1f} M params (built in {t_build:.1f} s)")
    # warm-up on a short input (allocator, kernel selection), not counted
    warm = argparse.Namespace(**{**vars(args), "seconds": 0.2, "prompt_seconds": 0.2, "steps": 1})
    run_once(s2mel, vocoder, cfg, warm, device, dtype)

    for r in range(args.repeats):
        frames, t_prompt, t_s2m, t_voc = run_once(s2mel, vocoder, cfg, args, device, dtype)
        audio = TIMING.seconds(TIMING.frames_to_samples(frames))
        print(f"run {r + 1}: {audio:.3f} s audio ({frames} frames, prompt {TIMING.frames_for_samples(TIMING.samples(args.prompt_seconds))} "
              f"frames, {args.steps} steps, cfg {args.cfg_rate})")
        print(f"  prompt length regulator {t_prompt:7.3f} s (once per speaker)")
        print(f"  S2M   {t_s2m:7.3f} s  -> {t_s2m / audio:6.3f} s compute per s audio")
        print(f"  BigVGAN {t_voc:5.3f} s  -> {t_voc / audio:6.3f} s compute per s audio")
        print(f"  total {t_s2m + t_voc:7.3f} s  -> {(t_s2m + t_voc) / audio:6.3f} s compute per s audio")


if __name__ == "__main__":
    main()
