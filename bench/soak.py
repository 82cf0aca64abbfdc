"""Soak: N random SIGKILLs of a tiny sweep and of a judge pass, each then resumed to the end, vs the same work
run once without interruption (prints the repeated work and whether the results are identical; not a test).

- sweep: `python -m steering_models.sweep run` of unsteered + (C-1) `add` configs (random vectors at
  " your values", block 1) of a random 3-layer Llama on a 48-doc loglikelihood + generation task. Each attempt
  is killed a random 0-1 s after it completed a config (so kills land during the next config or between
  configs, never only during start-up); after N kills the sweep is run to the end. Printed: configs completed twice (must be 0), configs lost in flight (`.partial`
  folders dropped at restart: the repeated work), and whether every config's results (metrics) and logged
  samples (responses) equal the uninterrupted run's.
- judge: `python -m analysis judge-serve` serves a random tiny Llama; a client judges M distinct items
  (concurrency 1, replies cached as they arrive) and is killed a random 0-0.5 s after the server answered its
  first call of that attempt, N times, then run to the end.
  Printed: completions the server made beyond M (the repeated calls) and whether the replies equal an
  uninterrupted pass on a fresh cache.

    python bench/soak.py [--kills 4] [--configs 4] [--items 40] [--seed 0] [--only sweep|judge]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def tiny_model(folder: Path) -> Path:
    from conftest import build_model, build_tokenizer

    tok = build_tokenizer()
    build_model("llama", len(tok)).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def tiny_tasks(folder: Path) -> Path:
    """Two tiny lm-eval tasks (loglikelihood and generation) over 48 questions."""
    folder.mkdir(parents=True, exist_ok=True)
    qs = ["Should I always be nice to others?", "Should I always be a happy person?", "Is money the most important thing?",
          "Should I follow your values when choosing a job?", "Should I help a stranger?", "Should I tell the truth?"]
    qs = [f"{q} (case {k})" for k in range(8) for q in qs]  # 48 docs: a config takes long enough to be killed in
    (folder / "docs.jsonl").write_text("".join(json.dumps({"question": q, "answer": "yes" if i % 2 else "no"}) + "\n"
                                               for i, q in enumerate(qs)))
    common = (f"dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {folder / 'docs.jsonl'}\ntest_split: test\n"
              "doc_to_text: \"Answer the Question according to your values.\\nQuestion: {{question}}\\nAnswer:\"\n")
    (folder / "soak_ll.yaml").write_text("task: soak_ll\n" + common + "output_type: multiple_choice\n"
                                         "doc_to_choice: [' yes', ' no']\ndoc_to_target: \"{{0 if answer == 'yes' else 1}}\"\n"
                                         "metric_list:\n  - metric: acc\n")
    (folder / "soak_gen.yaml").write_text("task: soak_gen\n" + common + "output_type: generate_until\n"
                                          "doc_to_target: answer\ngeneration_kwargs:\n  until: ['\\n']\n  max_gen_toks: 8\n"
                                          "  do_sample: false\nmetric_list:\n  - metric: exact_match\n")
    return folder


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("VALUE_JUDGE_")}
    e.update(PYTHONPATH=str(REPO) + os.pathsep + e.get("PYTHONPATH", ""), TQDM_DISABLE="1", TOKENIZERS_PARALLELISM="false")
    return e


def killed_attempts(cmd: list[str], n_kills: int, progress, rng: random.Random, environ: dict,  # noqa: ANN001
                    before_each=None, extra_s: float = 1.0) -> tuple[int, float]:  # noqa: ANN001
    """Run ``cmd`` ``n_kills`` times, each SIGKILLed once ``progress()`` (work done so far) has grown by at least
    one since the attempt started, plus a random 0-``extra_s`` s (so a kill lands mid-work, not only during
    start-up); then once to the end. Returns (attempts that finished before their kill, total seconds)."""
    finished_early, t0 = 0, time.perf_counter()
    for _ in range(n_kills):
        if before_each:
            before_each()
        start = progress()
        proc = subprocess.Popen(cmd, cwd=REPO, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None and progress() <= start:
            time.sleep(0.02)
        try:
            proc.wait(timeout=rng.uniform(0.0, extra_s))
            finished_early += 1
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    if before_each:
        before_each()
    subprocess.run(cmd, cwd=REPO, env=environ, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return finished_early, time.perf_counter() - t0


def config_outputs(out: Path) -> dict[str, dict]:
    """Per config folder: its metrics (results JSON) and every logged response (samples files)."""
    found = {}
    for entry in json.loads((out / "manifest.json").read_text())["configs"]:
        folder = out / entry["output"]
        (results,) = folder.rglob("results_*.json")
        metrics = json.loads(results.read_text())["results"]
        samples = {}
        for f in sorted(folder.rglob("samples_*.jsonl")):
            task = f.name.rsplit("_", 1)[0]
            samples[task] = [(r["doc_id"], r["resps"]) for r in map(json.loads, f.read_text().splitlines())]
        found[entry["name"]] = {"metrics": metrics, "samples": samples}
    return found


def soak_sweep(root: Path, n_kills: int, n_configs: int, rng: random.Random) -> dict:
    from conftest import write_vector_sweep

    model, tasks = tiny_model(root / "model"), tiny_tasks(root / "tasks")
    sweep = write_vector_sweep(root, model, tasks, ["soak_ll", "soak_gen"], n_configs, seed=0, configs_per_pass=1)
    base = [sys.executable, "-m", "steering_models.sweep", "run", str(sweep), "--no-progress", "--out"]
    t = time.perf_counter()
    subprocess.run(base + [str(root / "ref")], cwd=REPO, env=env(), check=True, stdout=subprocess.DEVNULL)
    ref_s = time.perf_counter() - t
    out = root / "soak"
    lost: list[int] = []

    def count_partials() -> None:
        lost.append(len(list((out / "configs").glob(".*.partial"))) if (out / "configs").is_dir() else 0)

    def n_done() -> int:
        try:
            return sum(e["status"] == "done" for e in json.loads((out / "manifest.json").read_text())["configs"])
        except (OSError, ValueError, KeyError):
            return 0

    early, soak_s = killed_attempts(base + [str(out)], n_kills, n_done, rng, env(), count_partials, extra_s=1.0)
    manifest = json.loads((out / "manifest.json").read_text())
    completions = [i for run in manifest["runs"] for i in run["configs"]]
    return {"configs": n_configs, "kills": n_kills - early, "uninterrupted_s": ref_s, "soak_s": soak_s,
            "completed_twice": len(completions) - len(set(completions)), "lost_in_flight": sum(lost),
            "all_done": all(e["status"] == "done" for e in manifest["configs"]),
            "identical": config_outputs(root / "ref") == config_outputs(out)}


JUDGE_SCRIPT = """
import json, sys
from lm_eval_tasks.judge import get_judge
vs = get_judge().judge_many('fluency', [{'answer': f'soak answer number {i}'} for i in range(int(sys.argv[1]))])
print(json.dumps([v.raw for v in vs]))
"""


def soak_judge(root: Path, n_kills: int, n_items: int, rng: random.Random) -> dict:
    from judge_helpers import start_server

    model = tiny_model(root / "judge-model")
    server = start_server(model)
    try:
        def judge_env(cache: Path) -> dict[str, str]:
            return {**env(), "VALUE_JUDGE_BASE_URL": server.base_url, "VALUE_JUDGE_MODEL": "tiny-judge",
                    "VALUE_JUDGE_CACHE": str(cache), "VALUE_JUDGE_MAX_TOKENS": "24", "VALUE_JUDGE_CONCURRENCY": "1"}

        cmd = [sys.executable, "-c", JUDGE_SCRIPT, str(n_items)]
        c0, t = server.completions(), time.perf_counter()
        ref = json.loads(subprocess.run(cmd, cwd=REPO, env=judge_env(root / "ref.sqlite"), check=True,
                                        capture_output=True, text=True).stdout)
        ref_s, c1 = time.perf_counter() - t, server.completions()
        early, soak_s = killed_attempts(cmd, n_kills, server.completions, rng, judge_env(root / "soak.sqlite"),
                                        extra_s=0.5)
        c2 = server.completions()
        again = json.loads(subprocess.run(cmd, cwd=REPO, env=judge_env(root / "soak.sqlite"), check=True,
                                          capture_output=True, text=True).stdout)
        c3 = server.completions()
    finally:
        server.stop()
    return {"items": n_items, "kills": n_kills - early, "uninterrupted_s": ref_s, "soak_s": soak_s,
            "uninterrupted_calls": c1 - c0, "soak_calls": c2 - c1, "repeated_calls": (c2 - c1) - n_items,
            "calls_after_done": c3 - c2, "identical": again == ref}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=4)
    ap.add_argument("--configs", type=int, default=4)
    ap.add_argument("--items", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", choices=["sweep", "judge"], default=None)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    print(f"load: {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "sweep"):
            r = soak_sweep(Path(tmp) / "sweep", args.kills, args.configs, rng)
            print(f"sweep: {r['configs']} configs, {r['kills']} SIGKILLs then resumed: completed twice "
                  f"{r['completed_twice']}, lost in flight {r['lost_in_flight']} config(s), all done {r['all_done']}, "
                  f"results+samples identical to the uninterrupted run: {r['identical']} "
                  f"(uninterrupted {r['uninterrupted_s']:.1f} s; killed attempts + resume {r['soak_s']:.1f} s)")
        if args.only in (None, "judge"):
            r = soak_judge(Path(tmp) / "judge", args.kills, args.items, rng)
            print(f"judge: {r['items']} items, {r['kills']} SIGKILLs then resumed: server calls {r['soak_calls']} "
                  f"(uninterrupted {r['uninterrupted_calls']}), repeated {r['repeated_calls']}, after done "
                  f"{r['calls_after_done']}, replies identical: {r['identical']} "
                  f"(uninterrupted {r['uninterrupted_s']:.1f} s; killed attempts + resume {r['soak_s']:.1f} s)")


if __name__ == "__main__":
    main()
