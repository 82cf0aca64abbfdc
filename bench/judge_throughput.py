"""Judge throughput (prints figures, not a test): verdicts/s through the openai client against
`python -m analysis judge-serve` on 127.0.0.1, with client concurrency 1 and 4, then the same prompts
again from the SQLite cache (baseline: the uncached concurrency-1 run; the cache must be >= 100x).

    python bench/judge_throughput.py [--pretrained default] [--n 12] [--max-tokens 4]

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pretrained", default="default")
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--max-tokens", type=int, default=4)
    args = ap.parse_args()
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
