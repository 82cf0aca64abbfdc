"""`python -m analysis thought-consistency RUN_DIR...`: Kang et al. Table 2 (needs a judge)."""

from __future__ import annotations

import argparse
from pathlib import Path

from analysis.cmdutil import add_mixed_models_flag, friendly_errors
from analysis.consistency import inconsistency_table, judge_thoughts, with_paper
from analysis.io import load_samples
from analysis.tables import to_markdown, write_table
from lm_eval_tasks.judge import require_judge

HELP = ("Table 2: thought/answer inconsistency before vs after steering (the judge labels each CoT thought "
        "with Template 1; needs VALUE_JUDGE_* settings)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="lm-eval output folders of valuebench_cot_* runs")
    add_mixed_models_flag(parser)
    parser.add_argument("--out", type=Path, default=None)


@friendly_errors
def run(args: argparse.Namespace) -> int:
    samples = load_samples(args.runs, allow_mixed_models=args.allow_mixed_models)
    samples = samples[samples["mode"] != "ll"]
    if samples.empty:
        raise ValueError("Table 2 needs CoT samples with a thought (valuebench_cot_* tasks); the runs hold only "
                         "loglikelihood samples.")
    table = with_paper(inconsistency_table(samples, judge_thoughts(samples, require_judge("Table 2"))))
    print(to_markdown(table))
    if args.out is not None:
        write_table(table, args.out, "thought_answer_inconsistency")
    return 0
