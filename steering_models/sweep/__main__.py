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
    run.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                     help="run the configs on Ray workers (one model load each): alone, a running cluster "
                          "(RAY_ADDRESS or the last started here) or else a new local one; `auto` only "
                          "connects; `local` always starts one; or HOST:PORT / ray://HOST:PORT")
    run.add_argument("--workers", type=int, default=None, help="--ray: number of workers (default: as many "
                     "as the cluster's free CPUs/GPUs fit; sweep file `ray: {workers: N}`)")
    run.add_argument("--num-gpus", type=float, default=None,
                     help="--ray: GPUs per worker (default 1 when the cluster has GPUs, else 0)")
    run.add_argument("--num-cpus", type=float, default=None, help="--ray: CPUs (torch threads) per worker "
                     "(default 1)")
    merge = sub.add_parser("merge", help="merge the --out folders of a sweep's shards")
    merge.add_argument("folders", nargs="+")
    merge.add_argument("--out", required=True)
    chk = sub.add_parser("check", help="validate a sweep file against the model config and tasks (no weights)")
    chk.add_argument("sweep_file")
    args = ap.parse_args(argv)
    if args.cmd == "run" and args.ray is None:
        given = [f for f in ("workers", "num_gpus", "num_cpus") if getattr(args, f) is not None]
        if given:
            ap.error(f"--{given[0].replace('_', '-')} is a Ray setting: add --ray to run on Ray workers, or drop it.")
    try:
        if args.cmd == "run" and args.ray is not None:
            from steering_models.sweep.ray_backend import run_sweep_ray

            manifest = run_sweep_ray(args.sweep_file, args.out, address=args.ray or None, workers=args.workers,
                                     num_gpus=args.num_gpus, num_cpus=args.num_cpus, shard=args.shard,
                                     fresh=args.fresh, progress=not args.no_progress)
            print(f"sweep {manifest['sweep_hash'][:12]}: {summary(manifest)} -> {args.out}")
        elif args.cmd == "run":
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
    if args.cmd in ("run", "merge") and any(e["status"] == "failed" for e in manifest["configs"]):
        return 1  # a config failed (its error is in the manifest); the others are done
    return 0


if __name__ == "__main__":
    sys.exit(main())
