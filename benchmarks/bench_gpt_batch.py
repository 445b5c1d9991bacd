"""Batched GPT decoding (timeline dubbing) against one request at a time, full-size random weights.

For 1, 4 and 16 requests of different text lengths (each its own conditioning and seed) prints
the wall time of `generate_codes` called once per request and of one `generate_codes_batch`,
as milliseconds per generated token (all requests' tokens counted) and the speed-up. Target mode
keeps every run at exactly `--tokens` codes per request, so both sides do the same work.

    python -m benchmarks.bench_gpt_batch --device cpu --tokens 16
    python -m benchmarks.bench_gpt_batch --device cuda --dtype float16 --tokens 100 --requests 1,4,16,32
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.bench_gpt import DEFAULT_CONFIG, DTYPES, build, sync
from indextts2_core.config import IndexTTS2Config
from indextts2_core.gpt.generate import DecodingSettings, generate_codes, generate_codes_batch


def requests(model, n: int, text_tokens: int, device):
    """n requests with texts of text_tokens/2 .. text_tokens ids and their own conditioning."""
    g = torch.Generator(device=device).manual_seed(5)
    d = model.cfg.model_dim
    conds, texts = [], []
    for i in range(n):
        length = max(1, text_tokens // 2 + (text_tokens // 2) * i // max(1, n - 1))
        conds.append(model.conditioning(torch.randn(1, 32, d, generator=g, device=device),
                                        torch.randn(1, d, generator=g, device=device)))
        texts.append(torch.randint(2, model.cfg.number_text_tokens, (length,), generator=g, device=device))
    return conds, texts


def run(model, conds, texts, settings, tokens, device, batched: bool) -> tuple[float, float]:
    """(wall seconds in all, seconds of the decode steps after the first token, i.e. without prefill)."""
    gens = [torch.Generator(device=device).manual_seed(i) for i in range(len(conds))]
    stamps: list[list[float]] = []

    def progress(i, total):
        sync(device)
        if i == 1:
            stamps.append([])
        stamps[-1].append(time.perf_counter())

    sync(device)
    start = time.perf_counter()
    if batched:
        generate_codes_batch(model, conds, texts, settings, [tokens] * len(conds), gens, progress=progress)
    else:
        for c, t, g in zip(conds, texts, gens):
            generate_codes(model, c, t, settings, target_tokens=tokens, generator=g, progress=progress)
    sync(device)
    return time.perf_counter() - start, sum(s[-1] - s[0] for s in stamps)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(DEFAULT_CONFIG))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    ap.add_argument("--tokens", type=int, default=16, help="codes per request")
    ap.add_argument("--requests", default="1,4,16")
    ap.add_argument("--text-tokens", type=int, default=40, help="longest text; the others are shorter")
    ap.add_argument("--layers", type=int, default=0, help="fewer GPT layers than the config (0 = as configured)")
    ap.add_argument("--methods", default="greedy,beam3")
    ap.add_argument("--decode-step", default="eager", help="DecodingSettings.decode_step")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    cfg = IndexTTS2Config.from_yaml(args.config)
    if args.layers:
        cfg = _with_layers(cfg, args.layers)
    model = build(cfg, device, dtype)
    print(f"GPT {sum(p.numel() for p in model.parameters()) / 1e6:.0f} M parameters ({cfg.gpt.layers} layers), "
          f"{args.dtype} on {device}, torch threads {torch.get_num_threads()}, {args.tokens} tokens per request, "
          f"decode_step {args.decode_step}")
    all_methods = {"greedy": DecodingSettings(do_sample=False, num_beams=1, decode_step=args.decode_step),
                   "beam3": DecodingSettings(decode_step=args.decode_step)}
    print("ms per generated token (all requests' tokens counted): wall = prefill + decode; decode = the "
          "steps after each request's first token")
    print(f"{'method':<8} {'requests':>8} {'wall 1-by-1':>12} {'wall batch':>11} {'speed-up':>9} "
          f"{'decode 1-by-1':>14} {'decode batch':>13} {'speed-up':>9}")
    with torch.inference_mode():
        for name in args.methods.split(","):
            settings = all_methods[name]
            for n in (int(x) for x in args.requests.split(",")):
                conds, texts = requests(model, n, args.text_tokens, device)
                run(model, conds[:1], texts[:1], settings, 2, device, True)  # warm-up
                w1, d1 = run(model, conds, texts, settings, args.tokens, device, False)
                wb, db = run(model, conds, texts, settings, args.tokens, device, True)
                per, dper = 1000 / (n * args.tokens), 1000 / (n * (args.tokens - 1))
                print(f"{name:<8} {n:>8} {w1 * per:>12.1f} {wb * per:>11.1f} {w1 / wb:>8.2f}x "
                      f"{d1 * dper:>14.1f} {db * dper:>13.1f} {d1 / db:>8.2f}x", flush=True)


def _with_layers(cfg, layers: int):
    import dataclasses

    return dataclasses.replace(cfg, gpt=dataclasses.replace(cfg.gpt, layers=layers))


if __name__ == "__main__":
    main()
