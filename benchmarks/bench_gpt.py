"""Speed of the IndexTTS2 GPT (UnifiedVoice v2) at full size, random weights.

Widths come from the official `config.yaml`. Prints the conditioning time for a speaker prompt
(conformer + perceiver + two emotion-vector passes), the GPT prefill time for the prompt rows
(34 conditioning rows + text + start token), and decode milliseconds per token for greedy and the
official 3-beam sampling. Decoding runs in target mode so every run takes exactly `--tokens` steps.

    python -m benchmarks.bench_gpt --device cpu --tokens 20
    python -m benchmarks.bench_gpt --device cuda --dtype float16 --tokens 200
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from indextts2_core.config import IndexTTS2Config
from indextts2_core.gpt.generate import DecodingSettings, KVCache, generate_codes, prefill
from indextts2_core.gpt.model import COND_INPUT_DIM, UnifiedVoice

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INDEXTTS2_SHARED", ROOT.parent / "shared"))
DEFAULT_CONFIG = SHARED / "official-data" / "config.yaml"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, repeat: int = 1):
    """Best wall time of `repeat` calls (seconds) and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        sync(device)
        start = time.perf_counter()
        out = fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return out, best


def build(cfg, device, dtype) -> UnifiedVoice:
    """Full-size model with random N(0, 0.02²) weights (norm gains 1), made directly on `device`."""
    with torch.device("meta"):
        model = UnifiedVoice(cfg.gpt)
    model = model.to_empty(device=device).to(dtype)
    g = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("norm.weight", "ln_1.weight", "ln_2.weight", "ln_f.weight", "gamma")) or \
                    (".norm_" in name and name.endswith("weight")):
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02, generator=g)
    return model.eval()


def decode_ms_per_token(model, conds, text, settings, tokens, device) -> tuple[float, float]:
    """(ms per decode step after the first, total seconds) for one target-mode run."""
    stamps = []

    def progress(i, total):
        sync(device)
        stamps.append(time.perf_counter())

    g = torch.Generator(device=device).manual_seed(1)
    _, total = timed(lambda: generate_codes(model, conds, text, settings, target_tokens=tokens, generator=g,
                                            progress=progress), device)
    per = (stamps[-1] - stamps[0]) / max(1, len(stamps) - 1) * 1000
    return per, total


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(DEFAULT_CONFIG))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    ap.add_argument("--tokens", type=int, default=20, help="codes decoded per run")
    ap.add_argument("--prompt-frames", type=int, default=749, help="w2v-BERT frames of the prompt (15 s = 749)")
    ap.add_argument("--text-tokens", type=int, default=100)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = leave as is)")
    ap.add_argument("--repeat", type=int, default=1, help="repeats of the conditioning / prefill timings")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    cfg = IndexTTS2Config.from_yaml(args.config)

    model, t_build = timed(lambda: build(cfg, device, dtype), device)
    params = sum(p.numel() for p in model.parameters())
    print(f"GPT: {params / 1e6:.1f} M parameters, {args.dtype} on {device} "
          f"(built with random weights in {t_build:.1f} s; torch threads {torch.get_num_threads()})")

    g = torch.Generator(device=device).manual_seed(2)
    feats = torch.randn(1, args.prompt_frames, COND_INPUT_DIM, generator=g, device=device).to(dtype)
    emo = torch.randn(1, args.prompt_frames, COND_INPUT_DIM, generator=g, device=device).to(dtype)
    text = torch.randint(2, cfg.gpt.number_text_tokens, (args.text_tokens,), generator=g, device=device)

    with torch.no_grad():
        (latents, emovec), t_cond = timed(
            lambda: (model.speaker_latents(feats), model.merge_emovec(feats, emo, 1.0)), device, args.repeat)
        conds = model.conditioning(latents, emovec)
        prompt = model.prompt_embeds(conds, text)

        def run_prefill():
            cache = KVCache.for_model(model, 1, prompt.size(1) + 1)
            return prefill(model, prompt, cache)

        run_prefill()  # warm-up (allocator, kernels)
        _, t_prefill = timed(run_prefill, device, args.repeat)
    print(f"conditioning ({args.prompt_frames} frames: speaker latents + emotion vectors of speaker and "
          f"emotion prompt): {t_cond * 1000:.0f} ms")
    print(f"GPT prefill ({prompt.size(1)} rows = 34 conds + {args.text_tokens}+2 text + start): "
          f"{t_prefill * 1000:.0f} ms")

    runs = {
        "greedy (1 beam)": DecodingSettings(do_sample=False, num_beams=1),
        "beam sampling (3 beams, official default)": DecodingSettings(),
    }
    for name, settings in runs.items():
        per, total = decode_ms_per_token(model, conds, text, settings, args.tokens, device)
        print(f"{name}: {per:.1f} ms/token over {args.tokens} tokens "
              f"({total:.2f} s in all, prefill included)")
    if device.type == "cuda":
        print(f"peak CUDA memory: {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
