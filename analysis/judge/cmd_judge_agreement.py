"""`python -m analysis judge-agreement A.jsonl B.jsonl`: agreement of two judges on the same samples
(two judged.jsonl files from `python -m analysis judge`): Cohen's kappa, Krippendorff's alpha and a
confusion table per
template, over the samples both judges scored; unscored verdicts are counted beside it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "Cohen's kappa, Krippendorff's alpha + confusion table between two judged.jsonl files of the same samples"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", type=Path, help="judged.jsonl of judge A")
    parser.add_argument("b", type=Path, help="judged.jsonl of judge B")
    parser.add_argument("--json", type=Path, default=None, help="also write the result as JSON here")


def run(args: argparse.Namespace) -> int:
    from analysis.judge.agreement import agreement

    try:
        result = agreement(args.a, args.b)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"A = {result['judge_a']}\nB = {result['judge_b']}")
    for template, r in result["templates"].items():
        kappa = "n/a" if r["kappa"] is None else f"{r['kappa']:.3f}"
        alpha = "n/a" if r["alpha"] is None else f"{r['alpha']:.3f}"
        print(f"\n[{template}] paired={r['n_paired']} both_scored={r['n_both_scored']} "
              f"agreement={r['raw_agreement']:.3f} kappa={kappa} alpha={alpha} "
              f"unscored_a={r['n_unscored_a']} unscored_b={r['n_unscored_b']}")
        print(r["table"])
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0
