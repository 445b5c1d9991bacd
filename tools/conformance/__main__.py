"""python -m tools.conformance {run,manifests,text} ..."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from .kit import KitError


def find_comparer(kit: Path) -> Path | None:
    """The kit's own compare_outputs.py (in the kit, or beside it), when the kit has expected outputs."""
    if not (kit / "expected").is_dir():
        return None
    return next((p for p in (kit / "compare_outputs.py", kit.parent / "compare_outputs.py") if p.is_file()), None)


def compare_stage(comparer: Path, kit: Path, out: Path, stage_id: str) -> tuple[bool, str]:
    """Run the kit's comparer on one stage: (all tensors pass, its summary line)."""
    proc = subprocess.run([sys.executable, str(comparer), str(kit), str(out), "--stage", stage_id],
                          capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    failed = [ln for ln in lines if ln.startswith(("FAIL", "MISSING"))]
    summary = lines[-1].removeprefix("summary: ") if lines else proc.stderr.strip()[-200:]
    return proc.returncode == 0, summary + (f"; first: {failed[0]}" if failed else "")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.conformance")
    sub = ap.add_subparsers(dest="cmd", required=True)

    run = sub.add_parser("run", help="run a parity kit's stages, write outputs to OUT")
    run.add_argument("--kit", required=True, type=Path)
    run.add_argument("--out", required=True, type=Path)
    run.add_argument("--stages", default="", help="comma-separated stage ids (default: all)")

    man = sub.add_parser("manifests", help="check modules against checkpoint manifests")
    man.add_argument("--dir", required=True, type=Path, help="folder with the *.json manifests")
    man.add_argument("--config", type=Path, default=None,
                     help="official config.yaml (default: DIR/config.yaml, then DIR/../config.yaml)")

    text = sub.add_parser("text", help="run the text front end on a cases file")
    text.add_argument("--cases", required=True, type=Path)
    text.add_argument("--out", required=True, type=Path)
    text.add_argument("--bpe", type=Path, default=None, help="bpe.model (default: next to the cases, or official-data)")
    text.add_argument("--tokenizer", type=Path, default=None,
                      help="a .tiktoken vocabulary: run the IndexTTS-2.5 front end (fields of compare_text25.py)")
    text.add_argument("--normaliser", choices=("auto", "wetextprocessing", "wetext"), default="auto",
                      help="TN engine: auto (the platform's official one), wetextprocessing (Linux path) or "
                           "wetext (the Windows/macOS path, runs anywhere; compare with --platform wetext)")
    text.add_argument("--incremental", type=int, metavar="N", default=None,
                      help="take the segments from the incremental path (TextTokenizer.iter_segments) with "
                           "blocks of N characters (1: cut at every possible point)")

    args = ap.parse_args(argv)
    if args.cmd == "run":
        from .runner import run_kit

        ids = [s for s in args.stages.split(",") if s]
        try:
            results = run_kit(args.kit, args.out, ids or None)
        except (KitError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        comparer = find_comparer(args.kit)
        bad = False
        for r in results:
            verdict = ""
            if r.status == "ran" and comparer is not None:
                ok, summary = compare_stage(comparer, args.kit, args.out, r.id)
                verdict = f": {'PASS' if ok else 'FAIL'} ({summary})"
                bad |= not ok
            print(f"{r.id}: {r.status}{verdict}" + (f" ({r.detail.splitlines()[0]})" if r.detail else ""))
            bad |= r.status != "ran"
        if comparer is None:
            print("no expected outputs / compare_outputs.py with this kit: outputs written, not compared")
        return 1 if bad else 0
    if args.cmd == "manifests":
        from indextts2_core.config25 import load_config
        from .manifests import check_dir

        cfg_path = args.config or next((p for p in (args.dir / "config.yaml", args.dir.parent / "config.yaml")
                                        if p.is_file()), None)
        if cfg_path is None:
            ap.error("no config.yaml found; pass --config")
        lines, ok = check_dir(args.dir, load_config(cfg_path))  # IndexTTS-2 or 2.5, from the config
        print("\n".join(lines))
        return 0 if ok else 1
    if args.cmd == "text":
        if args.tokenizer is not None:
            if args.tokenizer.suffix != ".tiktoken" or args.bpe is not None or args.incremental is not None:
                ap.error("--tokenizer takes a .tiktoken file (the 2.5 front end) and no --bpe / --incremental")
            from .text25_cases import run_cases25

            return run_cases25(args.cases, args.out, args.tokenizer, args.normaliser)
        from .text_cases import run_cases

        return run_cases(args.cases, args.out, args.bpe, args.normaliser, args.incremental)
    return 2


if __name__ == "__main__":
    sys.exit(main())
