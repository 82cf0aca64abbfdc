"""`python -m analysis judge RUN_DIR`: (re)judge the logged samples of an lm-eval output folder with
the configured judge (environment / VALUE_JUDGE_CONFIG), sharing the judge cache with lm-eval runs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "re-judge logged lm-eval samples (ValueBench CoT fallbacks, Schwartz CSR/FR) with the configured judge"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="lm-eval --output_path folder (with --log_samples)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: RUN_DIR/judged/<judge id>)")
    parser.add_argument("--no-cache", action="store_true", help="ask the judge again, bypassing the cache")
    parser.add_argument("--thoughts", action="store_true",
                        help="also judge every ValueBench thought's inclination (Kang Table 2)")


def run(args: argparse.Namespace) -> int:
    from analysis.judge.measured import describe
    from analysis.judge.report import judged_folder_name, summarize, write_records
    from analysis.judge.samples import jobs_for, sample_files
    from lm_eval_tasks.judge import JudgeError, JudgeSettingsError, build_configured
    from lm_eval_tasks.lm_eval_outputs import read_jsonl

    if not args.run_dir.is_dir():
        print(f"error: RUN_DIR {args.run_dir} is not a folder; pass an lm-eval --output_path folder.",
              file=sys.stderr)
        return 2
    files = sample_files(args.run_dir)
    if not files:
        print(f"error: no samples_*.jsonl under {args.run_dir}; run lm_eval with --log_samples.",
              file=sys.stderr)
        return 2
    try:
        samples = [(task, s) for task, path in files for s in read_jsonl(path)]
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    jobs = [job for task, s in samples for job in jobs_for(task, s, thoughts=args.thoughts)]
    try:
        judge = build_configured(progress=True, no_cache=args.no_cache)
    except (JudgeSettingsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if judge is None:
        print("error: no judge is configured; set VALUE_JUDGE_BASE_URL (and VALUE_JUDGE_MODEL, "
              "VALUE_JUDGE_API_KEY), VALUE_JUDGE_KIND=local (the embedded judge) or VALUE_JUDGE_PANEL.",
              file=sys.stderr)
        return 2
    verdicts = []
    try:
        for template in dict.fromkeys(j.template for j in jobs):
            group = [j for j in jobs if j.template == template]
            verdicts += list(zip(group, judge.judge_many(template, [j.fields for j in group]), strict=True))
    except JudgeError as e:
        print(f"error: {e} (replies received so far are cached; rerun to resume)", file=sys.stderr)
        return 1
    out = args.out or args.run_dir / "judged" / judged_folder_name(judge.judge_id)
    out.mkdir(parents=True, exist_ok=True)
    write_records(out / "judged.jsonl", verdicts)
    summary = summarize(samples, verdicts)
    summary["judge_id"] = judge.judge_id
    summary["calls"] = judge.calls
    summary["agreement"] = {t: describe(judge.judge_id, t) for t in dict.fromkeys(j.template for j in jobs)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=True) + "\n")
    for task, row in summary["tasks"].items():
        parts = [f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()]
        print(f"{task}: " + " ".join(parts))
    print(f"judge {judge.judge_id}: {len(jobs)} verdicts ({judge.calls} calls, "
          f"{summary['n_cached']} from cache) -> {out}")
    for template, text in summary["agreement"].items():
        print(f"  measured agreement, {template}: {text}")
    return 0
