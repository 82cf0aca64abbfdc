"""``python -m steering_models.sweep {run,merge,check}`` (see steering_models.sweep)."""

from __future__ import annotations

import argparse
import sys

from steering_models.errors import SpecError
from steering_models.sweep.config import load_sweep
from steering_models.sweep.runner import check, merge_sweeps, run_sweep, summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m steering_models.sweep",
                                 description="Evaluate many steering configs with one model load.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run a sweep file (resumes a killed run in the same --out)")
    run.add_argument("sweep_file")
    run.add_argument("--out", required=True, help="output folder (manifest.json + one lm-eval folder per config)")
    run.add_argument("--shard", default=None, help="i/n: run configs i, i+n, i+2n, ... (0-based i)")
    run.add_argument("--fresh", action="store_true", help="discard what --out holds and start over")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    merge = sub.add_parser("merge", help="merge the --out folders of a sweep's shards")
    merge.add_argument("folders", nargs="+")
    merge.add_argument("--out", required=True)
    chk = sub.add_parser("check", help="validate a sweep file against the model config and tasks (no weights)")
    chk.add_argument("sweep_file")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "run":
            manifest = run_sweep(args.sweep_file, args.out, shard=args.shard, fresh=args.fresh,
                                 progress=not args.no_progress)
            print(f"sweep {manifest['sweep_hash'][:12]}: {summary(manifest)} -> {args.out}")
        elif args.cmd == "merge":
            manifest = merge_sweeps(args.folders, args.out)
            print(f"merged {len(args.folders)} folders: {summary(manifest)} -> {args.out}")
        else:
            sweep = load_sweep(args.sweep_file)
            pretrained, _ = check(sweep)
            print(f"ok: {len(sweep.configs)} configs x {len(sweep.tasks)} tasks on {pretrained}")
    except SpecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
