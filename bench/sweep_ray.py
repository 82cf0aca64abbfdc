"""The same sweep in one process vs on 2 local Ray workers (prints both and Ray's overhead per config; not a test).

Task: valuebench_ll_test (loglikelihood of " yes"/" no"), `--num-roles` test roles, `--limit` items per value.
Configs: unsteered + (N-1) `add` interventions of random unit vectors at " your values" (as
bench/sweep_vs_naive.py), `--configs-per-pass` configs per wave. Model: a random tiny Llama (the
default: the cost measured is Ray's, not the model's) or `--pretrained NAME`.

- single process: `steering_models.sweep.run_sweep` (one model load, torch's default threads).
- Ray: `ray.init(num_cpus=2)` (timed apart), then `steering_models.sweep.run_sweep_ray(workers=2)`: 2 actors
  with 1 CPU (1 torch thread) each, each loading the model once.

Ray's overhead per config = (2 x the wave phase's wall time - the workers' busy time) / N, where the wave phase
runs from "both workers ready" to the last commit and a worker's busy time is its own wall time inside
`run_wave` (all read from the manifest's wave timings): the time the workers sat idle waiting for the driver
(submitting waves, moving results, writing folders and the manifest), plus any tail where one worker waits
for the other. Target: <= 1 s. The start-up costs (ray.init, the driver's check of the sweep, actor start +
model load) are printed apart. Both runs' loglikelihoods are compared (max |delta| over every logged request).

    python bench/sweep_ray.py [--pretrained default] [--configs 16] [--configs-per-pass 2]
                              [--num-roles 1] [--limit 2]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep_vs_naive import TASKS, loglikelihoods, read_samples, tiny_model, vector_sweep  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pretrained", default=None, help="a model instead of the tiny random Llama")
    ap.add_argument("--configs", type=int, default=16)
    ap.add_argument("--configs-per-pass", type=int, default=2)
    ap.add_argument("--num-roles", type=int, default=1)
    ap.add_argument("--limit", type=float, default=2, help="items per value subtask")
    ap.add_argument("--batch-size", type=int, default=8)
    args = ap.parse_args()

    import ray
    from lm_eval.tasks import TaskManager
    from transformers import AutoConfig

    import steering_models._bootstrap  # noqa: F401  (registers the tasks from a checkout)
    from steering_models.default_model import resolve_pretrained
    from steering_models.sweep import run_sweep, run_sweep_ray

    tmp = Path(tempfile.mkdtemp(prefix="sweep-ray-bench-"))
    pretrained = str(resolve_pretrained(args.pretrained)) if args.pretrained else tiny_model(tmp / "tiny")
    config = AutoConfig.from_pretrained(pretrained)
    sweep, _, d_model = vector_sweep(tmp, pretrained, args.configs, args.num_roles, args.limit, args.batch_size,
                                     args.configs_per_pass)
    TaskManager(metadata=sweep["metadata"])  # warm-up (imports, file cache) so the first timed arm is not penalised
    load_before = os.getloadavg()[0]

    t = time.perf_counter()
    single = run_sweep(sweep, tmp / "single", progress=False)
    single_s = time.perf_counter() - t

    t = time.perf_counter()
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    init_s = time.perf_counter() - t
    t = time.perf_counter()
    on_ray = run_sweep_ray(sweep, tmp / "ray", workers=2, progress=False)
    ray_s = time.perf_counter() - t
    ray.shutdown()

    run = on_ray["runs"][-1]
    n = args.configs
    waves = run["waves"]
    wave_phase = max(w["committed"] for w in waves) - run["workers_ready_s"]
    busy = sum(w["busy_s"] for w in waves)
    idle = 2 * wave_phase - busy
    by_worker: dict[int, list[dict]] = {}
    for w in sorted(waves, key=lambda w: w["started"]):
        by_worker.setdefault(w["pid"], []).append(w)
    gaps = [b["started"] - a["committed"] for ws in by_worker.values() for a, b in pairwise(ws)]
    transfer = sum(w["received"] - w["ended"] for w in waves) / len(waves)
    commit = sum(w["committed"] - w["received"] for w in waves) / len(waves)
    ref, ours = {}, {}
    for entry in single["configs"]:
        ref.update({(entry["output"], *k): v for k, v in loglikelihoods(read_samples(tmp / "single" / entry["output"])).items()})
        ours.update({(entry["output"], *k): v for k, v in loglikelihoods(read_samples(tmp / "ray" / entry["output"])).items()})
    assert ref.keys() == ours.keys(), "the two runs logged different requests"
    delta = max(abs(ref[k] - ours[k]) for k in ref)
    single_compute = sum(e["seconds"] for e in single["configs"])

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"ray {ray.__version__}; load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    print(f"model {pretrained if args.pretrained else 'tiny random Llama'} ({config.num_hidden_layers} layers, "
          f"d_model {d_model}); task {TASKS['ll']}, num_roles={args.num_roles}, limit={args.limit:g} per value; {n} configs, "
          f"{args.configs_per_pass} per wave ({len(run['waves'])} waves); {len(ref)} requests compared")
    print(f"single process: {single_s:7.1f} s  (model load {single['runs'][-1]['model_load_s']:.1f} s, configs "
          f"{single_compute:.1f} s = {single_compute / n:.2f} s/config)")
    print(f"ray, 2 workers: {ray_s:7.1f} s  + ray.init {init_s:.1f} s  (driver checks the sweep, then workers ready "
          f"after {run['workers_ready_s']:.1f} s, model load in a worker {run['model_load_s']:.1f} s; waves "
          f"{wave_phase:.1f} s, workers busy {busy:.1f} s = {busy / n:.2f} s/config)")
    print(f"per wave: result to driver {transfer * 1e3:.0f} ms, driver writes folders + manifest {commit * 1e3:.0f} ms, "
          f"next wave starts on the worker {sum(gaps) / max(1, len(gaps)) * 1e3:.0f} ms after the commit")
    print(f"ray overhead per config: {idle / n:.3f} s (target <= 1 s)   max |delta loglikelihood| = {delta:.2e}")
    print(f"wall ratio single/ray (ray.init excluded): {single_s / ray_s:.2f}x; included: "
          f"{single_s / (ray_s + init_s):.2f}x")


if __name__ == "__main__":
    main()
