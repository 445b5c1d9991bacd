"""Peak memory and time of the v2 text front end for long texts: whole-text processing
(`TextTokenizer.segments`, the official order) against the incremental path
(`TextTokenizer.iter_segments`, normalised block by block), each in a fresh process.

    python -m benchmarks.bench_text_memory                      # zh and en, 1k / 10k / 100k characters
    python -m benchmarks.bench_text_memory --lang en --sizes 1000,10000 --whole-up-to 10000

Peak RSS is the process's high-water mark (the TN engines and the SentencePiece model included);
"same" says whether both paths gave identical segments (when both ran). Whole-text runs above
`--whole-up-to` characters are skipped (100 000 characters of English take ~15 GB that way).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BPE = Path(os.environ.get("INDEXTTS2_SHARED", ROOT.parent / "shared")) / "official-data" / "bpe.model"

# sample prose with numbers, dates, units, abbreviations; repeated to the wanted size
SAMPLES = {
    "zh": ("今天是2024年3月15日，气温18℃，我们一起去公园散步吧。这台手机售价7285元，你要吗？"
           "他在第3章里写道：“时间就是生命。”会议定在下午3:30，地点是5楼501室。\n"),
    "en": ("On March 15, 2024 the temperature was 18 degrees. Dr. Walker paid $82.40 for 8 sandwiches. "
           "The meeting starts at 3:30 PM in room 501, and the report covers 84.5% of the cases.\n"),
}


def sample_text(lang: str, size: int) -> str:
    text = SAMPLES[lang] * (size // len(SAMPLES[lang]) + 1)
    return text[:size]


def worker(mode: str, lang: str, size: int, bpe: Path, backend: str) -> dict:
    from indextts2_core.text import TextNormalizer, TextTokenizer

    tokenizer = TextTokenizer(bpe, TextNormalizer(backend=backend))
    tokenizer.normalizer.normalize("预热 warm up 1.")  # load the engines before measuring
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    text = sample_text(lang, size)
    start = time.perf_counter()
    first = None
    digest = hashlib.sha256()
    count = 0
    segments = tokenizer.segments(text) if mode == "whole" else tokenizer.iter_segments(text)
    for seg in segments:
        if first is None:
            first = time.perf_counter() - start
        digest.update(json.dumps(seg).encode())
        count += 1
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_mb": peak / 1024, "engines_mb": base / 1024, "seconds": seconds, "first_s": first,
            "segments": count, "sha": digest.hexdigest()[:12]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lang", default="zh,en", help="comma-separated: zh, en")
    ap.add_argument("--sizes", default="1000,10000,100000", help="text lengths in characters")
    ap.add_argument("--whole-up-to", type=int, default=10000, help="skip whole-text runs above this length")
    ap.add_argument("--bpe", type=Path, default=DEFAULT_BPE)
    ap.add_argument("--backend", default="auto", choices=("auto", "wetextprocessing", "wetext"))
    ap.add_argument("--worker", nargs=3, metavar=("MODE", "LANG", "SIZE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        mode, lang, size = args.worker
        print(json.dumps(worker(mode, lang, int(size), args.bpe, args.backend)))
        return 0
    if not args.bpe.is_file():
        ap.error(f"bpe.model not found at {args.bpe}; pass --bpe")
    print(f"{'lang':4} {'chars':>7} {'mode':11} {'peak RSS':>9} {'engines':>8} {'time':>7} {'1st seg':>7} "
          f"{'segments':>8}  same")
    for lang in args.lang.split(","):
        for size in map(int, args.sizes.split(",")):
            results = {}
            for mode in ("whole", "incremental"):
                if mode == "whole" and size > args.whole_up_to:
                    continue
                proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_text_memory", "--bpe", str(args.bpe),
                                       "--backend", args.backend, "--worker", mode, lang, str(size)],
                                      cwd=ROOT, capture_output=True, text=True)
                if proc.returncode != 0:
                    print(f"{lang:4} {size:>7} {mode:11} failed: {proc.stderr.strip()[-300:]}")
                    continue
                r = results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
                same = "" if len(results) < 2 else ("yes" if results["whole"]["sha"] == r["sha"] else "NO")
                print(f"{lang:4} {size:>7} {mode:11} {r['peak_mb']:>6.0f} MB {r['engines_mb']:>5.0f} MB "
                      f"{r['seconds']:>6.1f}s {r['first_s'] or 0:>6.1f}s {r['segments']:>8}  {same}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
