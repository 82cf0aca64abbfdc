"""Judge throughput (prints figures, not a test).

Default: verdicts/s through the openai client against `python -m analysis judge-serve` on 127.0.0.1,
with client concurrency 1 and 4, then the same prompts again from the SQLite cache (baseline: the
uncached concurrency-1 run; the cache must be >= 100x).

    python bench/judge_throughput.py [--pretrained default] [--n 12] [--max-tokens 4]

``--judges``: the offline judges side by side on the same stratified ValueBench Template 1 items (eval
split, GPT-4 gold): verdicts/s and Cohen's kappa in one table, each with a fresh cache; baseline = the
embedded 0.5B generating a word with the paper's prompt (today's offline judge).

    python bench/judge_throughput.py --judges --data ../shared/data/valuebench/QA-dataset-answers-rating.csv --n 60

Measured on 2 shared CPU cores (2026-11-30), verdicts/s (x vs concurrency 1):
  embedded default, n=8:  concurrency 1: 0.4 | concurrency 4: 0.3 (x0.9; the server generates one
                          request at a time) | cache hits: 23,276 (x63,248)
  tiny random Llama, n=12: concurrency 1: 17.2 | concurrency 4: 59.6 (x3.5) | cache hits: 33,386
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

ANSWERS = ["for sure", "the answer is no", "i cannot say", "probably", "it depends on the situation",
           "absolutely not", "I would say so", "never", "hmm, maybe", "certainly", "no way", "of course"]


def start_server(pretrained: str) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "analysis", "judge-serve", "--pretrained", pretrained,
                             "--port", "0", "--model-name", "bench"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("serving model"):
            return proc, line.rsplit(" at ", 1)[1].strip()
    raise RuntimeError("judge-serve did not start")


def timed(base_url: str, cache: Path, concurrency: int, fields: list[dict], max_tokens: int) -> tuple[float, int]:
    from lm_eval_tasks.judge import build_judge, load_settings

    judge = build_judge(load_settings({
        "VALUE_JUDGE_BASE_URL": base_url, "VALUE_JUDGE_MODEL": "bench", "VALUE_JUDGE_CACHE": str(cache),
        "VALUE_JUDGE_CONCURRENCY": str(concurrency), "VALUE_JUDGE_MAX_TOKENS": str(max_tokens)}))
    t0 = time.perf_counter()
    judge.judge_many("answer_judgment", fields)
    return time.perf_counter() - t0, judge.calls


# (name, settings); "profile" = the judge's shipped profile (prompt, scoring, biases), else forced
JUDGES = [
    ("0.5B transformers, paper prompt, generate", {"VALUE_JUDGE_PRETRAINED": "default",
     "VALUE_JUDGE_BACKEND": "transformers", "VALUE_JUDGE_PROFILE": "none"}),
    ("0.5B transformers, profile (logprob)", {"VALUE_JUDGE_PRETRAINED": "default", "VALUE_JUDGE_BACKEND": "transformers"}),
    ("1.5B llama.cpp, paper prompt, generate", {"VALUE_JUDGE_PRETRAINED": "judge-1.5b", "VALUE_JUDGE_BACKEND": "llama",
                                                 "VALUE_JUDGE_PROFILE": "none"}),
    ("1.5B llama.cpp, profile (logprob)", {"VALUE_JUDGE_PRETRAINED": "judge-1.5b", "VALUE_JUDGE_BACKEND": "llama"}),
    ("1.5B transformers, profile (logprob, prefix cache)", {"VALUE_JUDGE_PRETRAINED": "judge-1.5b",
                                                            "VALUE_JUDGE_BACKEND": "transformers"}),
]


def bench_judges(data: Path | None, n: int, seed: int, only: list[str] | None) -> None:
    import json

    from analysis.judge.agreement_stats import agreement_stats
    from analysis.judge.bench_sets import load_set, sample
    from lm_eval_tasks.embedded_models import EMBEDDED
    from lm_eval_tasks.judge import build_judge, load_settings

    items = sample(load_set("valuebench-t1", data), n, seed, "eval")
    gold = [it.gold for it in items]
    print(f"# offline judges on {len(items)} ValueBench Template 1 items (eval split, seed {seed}), "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        none = Path(tmp) / "none.json"
        none.write_text(json.dumps({"judge_id": "none", "templates": {}}))
        for i, (name, settings) in enumerate(JUDGES):
            if only and not any(o in name for o in only):
                continue
            if "1.5B" in name and not EMBEDDED["judge-1.5b"].installed():
                print(f"{name}: skipped (the judge-model extra is not installed)")
                continue
            env = {"VALUE_JUDGE_KIND": "local", "VALUE_JUDGE_CACHE": str(Path(tmp) / f"c{i}.sqlite"),
                   "VALUE_JUDGE_THREADS": str(os.cpu_count()), **settings}
            if env.get("VALUE_JUDGE_PROFILE") == "none":
                env["VALUE_JUDGE_PROFILE"] = str(none)
            old = {k: os.environ.get(k) for k in ("VALUE_JUDGE_PROFILE",)}
            if "VALUE_JUDGE_PROFILE" in env:
                os.environ["VALUE_JUDGE_PROFILE"] = env["VALUE_JUDGE_PROFILE"]
            else:
                os.environ.pop("VALUE_JUDGE_PROFILE", None)
            try:
                t_load = time.perf_counter()
                judge = build_judge(load_settings(env))
                judge.judge("answer_judgment", {"question": "warm-up?", "answer": "warm-up"})
                t_load = time.perf_counter() - t_load
                calls0, secs0 = judge.calls, judge.call_seconds
                verdicts = judge.judge_many("answer_judgment", [dict(it.fields) for it in items])
                secs = judge.call_seconds - secs0
                s = agreement_stats(gold, [v.parsed for v in verdicts], ("yes", "no", "unsure"), n_bootstrap=500)
                rows.append((name, judge.judge_id, (judge.calls - calls0) / secs, s, t_load))
            finally:
                for k, v in old.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
    base = rows[0][2] if rows else 1.0
    print(f"{'judge':<52} {'verdicts/s':>10} {'x vs 0.5B gen':>14} {'kappa [95% CI]':>24} {'unscored':>9} {'load s':>7}")
    for name, _, vps, s, t_load in rows:
        ci = f"[{s.kappa_ci.low:.2f}, {s.kappa_ci.high:.2f}]" if s.kappa_ci else ""
        print(f"{name:<52} {vps:10.2f} {vps / base:14.2f} {s.kappa:>9.3f} {ci:>14} {s.unscored_share:9.2f} {t_load:7.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pretrained", default="default")
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--max-tokens", type=int, default=4)
    ap.add_argument("--judges", action="store_true", help="compare the offline judges (verdicts/s and kappa)")
    ap.add_argument("--data", type=Path, default=None, help="with --judges: ValueBench's rated-answers CSV")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default=None, help="with --judges: comma-separated substrings of the judges to run")
    args = ap.parse_args()
    if args.judges:
        bench_judges(args.data, args.n, args.seed, args.only.split(",") if args.only else None)
        return
    fields = [{"answer": f"{ANSWERS[i % len(ANSWERS)]} ({i})"} for i in range(args.n)]
    proc, base_url = start_server(args.pretrained)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            print(f"# judge throughput, {platform.processor() or platform.machine()}, "
                  f"{os.cpu_count()} cpus, model={args.pretrained}, n={args.n}, max_tokens={args.max_tokens}")
            timed(base_url, Path(tmp) / "warmup.sqlite", 1, [{"answer": "warm-up"}], args.max_tokens)
            rows = []
            for conc in (1, 4):
                secs, calls = timed(base_url, Path(tmp) / f"c{conc}.sqlite", conc, fields, args.max_tokens)
                rows.append((f"server, concurrency {conc}", secs, calls))
            secs, calls = timed(base_url, Path(tmp) / "c1.sqlite", 1, fields, args.max_tokens)
            rows.append(("cache hits", secs, calls))
            base = rows[0][1]
            for name, secs, calls in rows:
                print(f"{name:<24} {args.n / secs:10.1f} verdicts/s  calls={calls:<3} x{base / secs:8.1f} vs baseline")
    finally:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    main()
