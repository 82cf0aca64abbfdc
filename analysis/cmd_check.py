"""`python -m analysis check RUN_DIR --baseline FILE --tolerance ...`: exit 1 on a regression."""

from __future__ import annotations

import argparse
import sys

from analysis.check import check, load_baseline, parse_tolerances
from analysis.cmdutil import friendly_errors
from analysis.io import find_runs

HELP = "regression check for CI: exit 1 when a metric of RUN_DIR moves past its tolerance from the baseline"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="lm-eval --output_path folder of the new run")
    parser.add_argument("--baseline", required=True,
                        help="leaderboard.csv (see --baseline-run), a JSON {metric: value}, or an lm-eval output folder")
    parser.add_argument("--baseline-run", default=None, help="run column of a leaderboard.csv baseline")
    parser.add_argument("--tolerance", action="append", default=[], metavar="[METRIC=]TOL",
                        help="absolute tolerance (default 0); repeat METRIC=TOL for one metric id or metric name")
    parser.add_argument("--metric", action="append", default=[], help="only check these metric ids / names")


@friendly_errors
def run(args: argparse.Namespace) -> int:
    runs = find_runs([args.run_dir])
    if len(runs) != 1:
        print(f"error: {args.run_dir} holds {len(runs)} runs; pass one run's folder or results_*.json.",
              file=sys.stderr)
        return 2
    default, per = parse_tolerances(args.tolerance)
    baseline = load_baseline(args.baseline, args.baseline_run)
    findings = check(runs[0], baseline, default, per, args.metric or None)
    checked = len(baseline) if not args.metric else "selected"
    if findings:
        for f in findings:
            print(f"REGRESSION {f.message()}")
        print(f"{len(findings)} metric(s) regressed of {checked} checked against {args.baseline}.")
        return 1
    print(f"OK: {checked} metric(s) within tolerance of {args.baseline}.")
    return 0
