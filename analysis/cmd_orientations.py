"""`python -m analysis orientations RUN_DIR... --out T.csv`: export the wide orientation table."""

from __future__ import annotations

import argparse
from pathlib import Path

from analysis.cmdutil import add_mixed_models_flag, friendly_errors
from analysis.io import load_samples
from analysis.orientations import orientation_table, value_columns, write_orientation_csv

HELP = ("export orientations s_t[v] (mean item score per steering config x role) as the wide CSV Kang et al. "
        "released (steer_dim, player_name, one column per value)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="lm-eval --output_path folders (--log_samples)")
    add_mixed_models_flag(parser)
    parser.add_argument("--out", type=Path, required=True, help="CSV file to write")
    parser.add_argument("--mode", default=None, help="questionnaire mode when runs mix them: cot or ll")
    parser.add_argument("--split", default=None, choices=["train", "test"], help="only these roles")


@friendly_errors
def run(args: argparse.Namespace) -> int:
    table = orientation_table(load_samples(args.runs, allow_mixed_models=args.allow_mixed_models), mode=args.mode, split=args.split)
    path = write_orientation_csv(table, args.out)
    configs = table["steer_dim"].nunique()
    print(f"wrote {path}: {len(table)} rows ({configs} steering configs x roles) x {len(value_columns(table))} values")
    return 0
