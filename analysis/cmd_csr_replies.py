"""`python -m analysis csr-replies RUN... --out CSV`: put the replies a reader's CSR labels judge beside the labels.

The labels CSV (default ``examples/data/conva10_g0_manual_csr.csv``: ``value``, ``doc`` and one 0/1 column per
method) gains a ``<method> reply`` column per method, filled from the runs' logged samples (the method of a run's
task as in ``conva-table``: its steering meta and the task's prompt variant). ``judge-bench --set conva-csr``
then reads a self-contained set (the dilemma itself is read from the ConVA data, never copied).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

HELP = "add the generated replies that a reader's CSR labels judge beside the labels (for judge-bench conva-csr)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", help="lm-eval output folders (runs/*, sweeps/*/configs/*)")
    parser.add_argument("--labels", type=Path, default=None,
                        help="the labels CSV (default examples/data/conva10_g0_manual_csr.csv)")
    parser.add_argument("--out", type=Path, required=True, help="the labels CSV with the reply columns")


def run(args: argparse.Namespace) -> int:
    from analysis.conva_table import dilemma_replies
    from analysis.judge.bench_sets import CONVA_CSR

    labels = args.labels or CONVA_CSR
    if not labels.is_file():
        print(f"error: the labels CSV {labels} does not exist; pass --labels with its path.", file=sys.stderr)
        return 2
    with open(labels, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or [])
        rows = list(reader)
    if not {"value", "doc"} <= set(columns):
        print(f"error: {labels} lacks the columns `value` and `doc`; see the conva-csr format in "
              "analysis/README.md (judge-bench).", file=sys.stderr)
        return 2
    methods = [c for c in columns if c not in ("value", "doc", "question") and not c.endswith(" reply")]
    replies = dilemma_replies(args.runs)
    missing = [(m, r["value"], r["doc"]) for r in rows for m in methods
               if (r.get(m) or "").strip() and (m, r["value"], str(int(r["doc"]))) not in replies]
    if missing:
        m, v, d = missing[0]
        print(f"error: the runs have no {m} reply to {v} dilemma {d} ({len(missing)} labelled replies missing); "
              "pass the runs of every labelled method (runs/* and sweeps/*/configs/*).", file=sys.stderr)
        return 2
    out_cols = [c for c in columns if not c.endswith(" reply")]
    out_cols += [f"{m} reply" for m in methods]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=out_cols, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            r = dict(r)
            for m in methods:
                r[f"{m} reply"] = replies.get((m, r["value"], str(int(r["doc"]))), "")
            writer.writerow(r)
    print(f"{sum(1 for r in rows for m in methods if (r.get(m) or '').strip())} labelled replies of {len(methods)} "
          f"methods -> {args.out}")
    return 0
