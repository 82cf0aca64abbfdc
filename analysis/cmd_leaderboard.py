"""`python -m analysis leaderboard RUN_DIR... --out DIR`."""

from __future__ import annotations

import argparse
from pathlib import Path

from analysis.cmdutil import friendly_errors
from analysis.io import find_runs
from analysis.leaderboard import (
    judge_view,
    leaderboard,
    orientation_view,
    other_view,
    per_value_metrics,
    run_info,
)
from analysis.tables import html_page, to_html, to_markdown, write_table

HELP = "compare lm-eval runs on their headline metrics (per-value orientations, CSR/FR, acc, ...): markdown + CSV + HTML"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="lm-eval --output_path folders (or results_*.json)")
    parser.add_argument("--out", type=Path, default=None, help="write leaderboard.{csv,md,html} here")
    parser.add_argument("--rejudged", nargs="?", const="newest", default=None, metavar="JUDGE_ID",
                        help="judged metrics from each run's re-judge (`python -m analysis judge RUN_DIR`) instead "
                             "of the run's own: JUDGE_ID's, or the newest re-judge when no id is given")


@friendly_errors
def run(args: argparse.Namespace) -> int:
    runs = find_runs(args.runs)
    rejudged = None
    if args.rejudged is not None:
        from analysis.judge.report import find_rejudged

        judge_id = None if args.rejudged == "newest" else args.rejudged
        rejudged = {r.label: s for r in runs if (s := find_rejudged(r.results_path, judge_id)) is not None}
        if not rejudged:
            raise ValueError(f"--rejudged {args.rejudged}: none of the {len(runs)} runs has a re-judge"
                             f"{'' if judge_id is None else ' by ' + judge_id} (RUN_DIR/judged/*/summary.json); "
                             "run `python -m analysis judge RUN_DIR` first or drop --rejudged.")
        missing = [r.label for r in runs if r.label not in rejudged]
        if missing:
            print(f"note: {len(missing)} run(s) have no re-judge and keep their own judged metrics: "
                  f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    board = leaderboard(runs, rejudged)
    info = run_info(runs)
    orient = orientation_view(board)
    other = other_view(board)
    sections = [("Runs", info)]
    if not orient.empty:
        sections.append(("ValueBench orientation per value (mean item score in [-1, 1])", orient))
    titles = {"orientation_soft": "ValueBench soft orientation per value (agreement x (p_yes - p_no))",
              "n_scored": "ValueBench scored items per value"}
    for metric in per_value_metrics(board):
        if metric == "orientation":
            continue
        view = orientation_view(board, metric)
        if not view.empty:
            sections.append((titles.get(metric, f"ValueBench {metric} per value"), view))
    if not other.empty:
        sections.append(("Other metrics", other))
    judges = judge_view(runs, rejudged)
    if not judges.empty:
        sections.append(("Judges of the judged metrics (measured agreement: newest judge-bench)", judges))
    shown = {"Runs", "Other metrics", "Judges of the judged metrics (measured agreement: newest judge-bench)"} | {t for t, _ in sections if t.startswith("ValueBench orientation per value")}
    for title, table in sections:  # stdout: runs, per-value orientations, other metrics; files: everything
        if title in shown:
            print(f"## {title}\n\n{to_markdown(table)}\n")
    if args.out is not None:
        out: Path = args.out
        write_table(board, out, "leaderboard")
        write_table(info, out, "runs")
        if not orient.empty:
            write_table(orient, out, "orientations_by_value")
        if not judges.empty:
            write_table(judges, out, "judges")
        (out / "leaderboard.md").write_text("\n".join(f"## {t}\n\n{to_markdown(d)}\n" for t, d in sections))
        body = "\n".join(to_html(d, title=t) for t, d in sections)
        (out / "leaderboard.html").write_text(html_page("Leaderboard", body))
        print(f"wrote {out / 'leaderboard.csv'}, {out / 'leaderboard.md'}, {out / 'leaderboard.html'}")
    return 0
