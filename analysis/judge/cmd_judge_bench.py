"""`python -m analysis judge-bench --set valuebench-t1|conva-csr --out DIR`: measure the configured judge
(any VALUE_JUDGE_* setting, endpoint, local or panel) against external labels (analysis/judge/bench.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "measure the configured judge against labelled sets: accuracy, Cohen's kappa, Krippendorff's alpha, bootstrap CIs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", required=True, dest="set_name", metavar="SET",
                        help="valuebench-t1 (Template 1 vs GPT-4's ratings), conva-csr (CSR vs a reader's labels) or "
                             "conva-fr (ours: the reader's replies as fluent, their words shuffled as not)")
    parser.add_argument("--data", type=Path, default=None,
                        help="the set's CSV (default: ../shared/data/valuebench/QA-dataset-answers-rating.csv, "
                             "examples/data/conva10_g0_manual_csr.csv)")
    parser.add_argument("--n", type=int, default=300, help="items judged, stratified by gold label (default 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fit", action="store_true",
                        help="first fit the judge's prompt + per-class biases on the fit split and save its profile")
    parser.add_argument("--fit-n", type=int, default=None, help="items of the fit split (default: --n)")
    parser.add_argument("--prompts", default=None,
                        help="with --fit: comma-separated prompt variants to compare (default: all of the template's)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% intervals")
    parser.add_argument("--out", type=Path, required=True, help="writes judge_bench.json + judge_bench.md here")


def run(args: argparse.Namespace) -> int:
    from analysis.judge.agreement_stats import Interval, fmt
    from analysis.judge.bench import run_bench
    from analysis.judge.bench_sets import load_set
    from lm_eval_tasks.judge import JudgeError, JudgeSettingsError, build_configured

    if args.n is not None and args.n < 1:
        print(f"error: --n {args.n} must be at least 1; pass a positive number of items.", file=sys.stderr)
        return 2
    try:
        bench = load_set(args.set_name, args.data)  # before any model loads
        judge = build_configured(progress=True)
    except (JudgeSettingsError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if judge is None:
        print("error: no judge is configured; set VALUE_JUDGE_BASE_URL (+ VALUE_JUDGE_MODEL, VALUE_JUDGE_API_KEY), "
              "VALUE_JUDGE_KIND=local or VALUE_JUDGE_PANEL.", file=sys.stderr)
        return 2
    prompts = [p.strip() for p in args.prompts.split(",")] if args.prompts else None
    try:
        r = run_bench(judge, bench, args.n, args.seed, args.out, fit=args.fit, fit_n=args.fit_n, prompts=prompts,
                      n_bootstrap=args.bootstrap)
    except JudgeError as e:
        print(f"error: {e} (replies received so far are cached; rerun to resume)", file=sys.stderr)
        return 1
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    ci = (lambda k: Interval(**r[k]) if r.get(k) else None)  # noqa: E731
    vps = r["verdicts_per_second"]
    print(f"judge {r['judge_id']} on {r['set']} (prompt {r['prompt']}, {r['scoring']}): n={r['n']} "
          f"scored={r['n_scored']} accuracy={fmt(r['accuracy'], ci('accuracy_ci'))} "
          f"kappa={fmt(r['kappa'], ci('kappa_ci'))} alpha={fmt(r['alpha'], ci('alpha_ci'))} "
          f"verdicts/s={'n/a (all cached)' if vps is None else f'{vps:.2f}'} -> {args.out / 'judge_bench.md'}")
    return 0
