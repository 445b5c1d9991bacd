"""python -m indextts2_core.conformance {run,manifests,text} ..."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m indextts2_core.conformance")
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

    args = ap.parse_args(argv)
    if args.cmd == "run":
        from .runner import run_kit

        ids = [s for s in args.stages.split(",") if s]
        results = run_kit(args.kit, args.out, ids or None)
        bad = False
        for r in results:
            print(f"{r.id}: {r.status}" + (f" ({r.detail.splitlines()[0]})" if r.detail else ""))
            if r.status == "failed" or (ids and r.id in ids and r.status != "ran"):
                bad = True
        return 1 if bad else 0
    if args.cmd == "manifests":
        from ..config import IndexTTS2Config
        from .manifests import check_dir

        cfg_path = args.config or next((p for p in (args.dir / "config.yaml", args.dir.parent / "config.yaml")
                                        if p.is_file()), None)
        if cfg_path is None:
            ap.error("no config.yaml found; pass --config")
        lines, ok = check_dir(args.dir, IndexTTS2Config.from_yaml(cfg_path))
        print("\n".join(lines))
        return 0 if ok else 1
    if args.cmd == "text":
        from .text_cases import run_cases

        return run_cases(args.cases, args.out, args.bpe)
    return 2


if __name__ == "__main__":
    sys.exit(main())
