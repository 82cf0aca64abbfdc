"""`python -m analysis conva-table LEADERBOARD_DIR [--runs RUN_DIR...] [--out DIR]`: the ConVA experiment's
table (CSR, FR, MMLU acc per method, Fig. 4's role-prompt methods and SFT among them; CSR per value) from
`python -m analysis leaderboard --out` files."""

from __future__ import annotations

import argparse
from pathlib import Path

from analysis.cmdutil import friendly_errors

HELP = "the ConVA experiment's table (CSR, FR, MMLU acc per method) from a leaderboard folder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("leaderboard", type=Path, help="the --out folder of `python -m analysis leaderboard`")
    parser.add_argument("--out", type=Path, default=None,
                        help="also write conva_table.csv and conva_csr_by_value.csv here")
    parser.add_argument("--runs", nargs="+", default=None, metavar="RUN_DIR",
                        help="the run folders the leaderboard read: adds the share of dilemma replies that differ "
                             "from Base's")


@friendly_errors
def run(args: argparse.Namespace) -> int:
    from analysis.conva_table import (
        changed_vs_base,
        constant_judge,
        csr_by_value,
        for_print,
        judge_agreement,
        method_table,
        mmlu_changed_vs_base,
        not_in_table,
        read_leaderboard,
        with_changed,
    )

    board, runs = read_leaderboard(args.leaderboard)
    main_table, by_value = method_table(board, runs), csr_by_value(board, runs)
    if args.runs:
        main_table = with_changed(main_table, changed_vs_base(args.runs))
        main_table = with_changed(main_table, mmlu_changed_vs_base(args.runs), "MMLU answers changed vs Base")
    print(for_print(main_table).to_markdown(index=False))
    print()
    print(for_print(by_value).to_markdown(index=False))
    for line in not_in_table(board, runs):
        print(f"\n{line}")
    for line in judge_agreement(args.leaderboard):
        print(f"\n{line}")
    for warning in constant_judge(board, runs):
        print(f"\n{warning}")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        main_table.to_csv(args.out / "conva_table.csv", index=False)
        by_value.to_csv(args.out / "conva_csr_by_value.csv", index=False)
    return 0
