"""A sweep of N steering configs vs N separate steered-hf runs (prints both and the ratio; not a test).

Task (`--mode ll`, default): valuebench_ll_test (loglikelihood of " yes"/" no"); `--mode cot`:
valuebench_cot_test (Kang et al.'s chain-of-thought generation, greedy, `--max-gen-toks` new tokens at most,
the task's stop strings), `--num-roles` test roles, `--limit` items per value. Configs: unsteered + (N-1) `add` interventions of random unit vectors x `--strength` at
" your values" (the cost of Kang et al.'s SAE `add`; no SAE of the embedded model exists here).

- naive: for each config, `lm_eval.simple_evaluate(model="steered-hf", model_args={pretrained, steer})`:
  one model load per config, as N `lm_eval` runs would do. Generous to the baseline: the runs share one
  process and one TaskManager (N real commands would also pay interpreter start-up and task indexing).
- sweep: `steering_models.sweep.run_sweep` (one model load, configs scored together in shared batches,
  standard lm-eval output per config), timed end to end including its task indexing.

- old sweep (`--old`): the same sweep without the shared trunk (`share_trunk: false`: each config's rows run
  every block; a role's prompt prefix once per group of 4 x batch_size rows), in the same run.
- `--naive-configs M`: run the naive baseline for the first M configs only and scale its time to N
  (each naive config is an independent run of the same cost: a load and the same requests); printed as such.

`--mode cot` also prints the sweep's generation work as a share of the matmul peak measured in the same run
(``bench/throughput.py``'s ``matmul_peak``): useful FLOP = every prompt and generated token of every config x
2 x non-embedding params, + the LM head (2 x d_model x vocab) per generated token, over the sweep's wall time
(so sharing a prefix or a trunk raises it, as the issue's "the sweep's CoT generation >= 25 % of matmul peak" means).

The answers of both are compared: LL, max |delta loglikelihood| over every logged request; CoT, the
requests whose generated text differs and the max token mismatch (tokens after the first differing token,
0 = identical).

    python bench/sweep_vs_naive.py [--pretrained default | --tiny] [--mode ll|cot] [--configs 8] [--num-roles 1]
                                   [--limit 2] [--old] [--naive-configs M] [--max-gen-toks 128]
                                   [--device cpu] [--dtype float32]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

TASKS = {"ll": "valuebench_ll_test", "cot": "valuebench_cot_test"}


def tiny_model(folder: Path) -> str:
    """A random 3-layer Llama with the tests' tokenizer (for a quick run of the harness itself)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import build_model, build_tokenizer

    tok = build_tokenizer()
    model = build_model("llama", len(tok))
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


def vector_sweep(folder: Path, pretrained: str, n_configs: int, num_roles: int, limit: float, batch_size: int,
                 configs_per_pass: int, strength: float = 4.0, task: str = TASKS["ll"], device: str = "cpu",
                 **extra: object) -> tuple[dict, int, int]:
    """The benchmarks' sweep: unsteered + (n_configs - 1) `add` configs of random unit vectors at " your values"
    (block n_layers // 2), on ``task``. Returns the sweep dict, the layer and d_model."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(pretrained)
    layer, d_model = config.num_hidden_layers // 2, config.hidden_size
    torch.manual_seed(0)
    vectors = {f"v{i}": torch.nn.functional.normalize(torch.randn(d_model), dim=0) for i in range(n_configs - 1)}
    save_file(vectors, folder / "vectors.safetensors")
    sweep = {"model": {"pretrained": pretrained, "device": device}, "tasks": [task], "metadata": {"num_roles": num_roles},
             "limit": limit, "batch_size": batch_size, "configs_per_pass": configs_per_pass, **extra,
             "configs": ["unsteered", {"vectors": {"file": str(folder / "vectors.safetensors"), "layer": layer,
                                                   "strength": strength, "positions": {"match": " your values"}}}]}
    return sweep, layer, d_model


def loglikelihoods(samples: dict[str, list[dict]]) -> dict[tuple[str, int, int], float]:
    return {(task, s["doc_id"], i): float(r[0][0]) for task, rows in samples.items() for s in rows
            for i, r in enumerate(s["resps"])}


def generations(samples: dict[str, list[dict]]) -> dict[tuple[str, int, int], str]:
    return {(task, s["doc_id"], i): str(r[0]) for task, rows in samples.items() for s in rows
            for i, r in enumerate(s["resps"])}


def token_mismatch(a: str, b: str, tok) -> int:  # noqa: ANN001
    """Tokens after the first differing token of two generations (0 when equal)."""
    x, y = tok.encode(a, add_special_tokens=False), tok.encode(b, add_special_tokens=False)
    same = next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y)))  # noqa: B905
    return max(len(x), len(y)) - same


def read_samples(folder: Path) -> dict[str, list[dict]]:
    from lm_eval_tasks.lm_eval_outputs import read_jsonl, samples_name

    out: dict[str, list[dict]] = {}
    for f in folder.rglob("samples_*.jsonl"):
        name = samples_name(f.name)
        if name is not None:
            out[name.task] = list(read_jsonl(f))
    return out


def useful_share_of_peak(folder: Path, manifest: dict, tok, pretrained: str, seconds: float,  # noqa: ANN001
                         device: str) -> str:
    """The sweep's useful generation FLOP/s (module docstring) against a matmul peak measured now."""
    from transformers import AutoConfig, AutoModelForCausalLM

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from throughput import matmul_peak, param_counts

    prompt_toks = new_toks = 0
    for entry in manifest["configs"]:
        for rows in read_samples(folder / entry["output"]).values():
            for s in rows:
                prompt_toks += len(tok(s["arguments"]["gen_args_0"]["arg_0"])["input_ids"])
                new_toks += len(tok(s["resps"][0][0])["input_ids"])
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(pretrained))
    non_emb, vocab, d_model = param_counts(model)
    flop = 2 * non_emb * (prompt_toks + new_toks) + 2 * d_model * vocab * new_toks
    peak, _ = matmul_peak([512, 1024, 2048], 3, device=device)
    return (f"sweep generation work: {prompt_toks} prompt + {new_toks} new tokens over all configs, "
            f"{flop / seconds / 1e9:.1f} useful GFLOP/s = {100 * flop / seconds / peak:.1f} % of the matmul peak "
            f"measured now ({peak / 1e9:.1f} GFLOP/s float32; target >= 25 %)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pretrained", default="default")
    ap.add_argument("--tiny", action="store_true", help="use a random tiny Llama instead of --pretrained")
    ap.add_argument("--configs", type=int, default=8)
    ap.add_argument("--num-roles", type=int, default=1)
    ap.add_argument("--limit", type=float, default=2, help="items per value subtask")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--strength", type=float, default=4.0)
    ap.add_argument("--no-share-prefix", action="store_true", help="sweep without shared-prefix KV reuse")
    ap.add_argument("--old", action="store_true", help="also time the sweep without the shared trunk")
    ap.add_argument("--naive-configs", type=int, default=None, help="naive runs for the first M configs only")
    ap.add_argument("--mode", choices=sorted(TASKS), default="ll", help="ll: valuebench_ll_test; cot: valuebench_cot_test")
    ap.add_argument("--max-gen-toks", type=int, default=128, help="--mode cot: new tokens at most (the task's 128)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default=None, help="model dtype (float32, bfloat16, auto; default: the checkpoint's)")
    args = ap.parse_args()
    task = TASKS[args.mode]

    import lm_eval
    from lm_eval.tasks import TaskManager
    from transformers import AutoConfig

    import steering_models._bootstrap  # noqa: F401  (registers steered-hf and the tasks from a checkout)
    from steering_models.default_model import resolve_pretrained
    from steering_models.sweep import run_sweep

    tmp = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    pretrained = tiny_model(tmp / "tiny") if args.tiny else str(resolve_pretrained(args.pretrained))
    config = AutoConfig.from_pretrained(pretrained)
    extra: dict = {"gen_kwargs": {"max_gen_toks": args.max_gen_toks}} if args.mode == "cot" else {}
    sweep, layer, d_model = vector_sweep(tmp, pretrained, args.configs, args.num_roles, args.limit, args.batch_size,
                                         args.configs, args.strength, task=task, device=args.device,
                                         share_prefix=not args.no_share_prefix, **extra)
    dtype_arg = {"dtype": args.dtype} if args.dtype else {}
    sweep["model"].update(dtype_arg)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(pretrained)
    answers = generations if args.mode == "cot" else loglikelihoods
    metadata = sweep["metadata"]

    cpu: dict[str, float] = {"naive": 0.0}

    def timed_sweep(out: str, **extra: object) -> tuple[float, dict]:
        t0, c0 = time.perf_counter(), time.process_time()
        manifest = run_sweep({**sweep, **extra}, tmp / out, progress=False)
        cpu[out] = time.process_time() - c0
        return time.perf_counter() - t0, manifest

    TaskManager(metadata=metadata)  # warm-up (imports, file cache) so the first timed arm is not penalised
    sweep_s, manifest = timed_sweep("sweep")
    old_s, old_manifest = timed_sweep("sweep-old", share_trunk=False) if args.old else (0.0, None)

    from steering_models.sweep import load_sweep

    specs = load_sweep(sweep).configs
    manager = TaskManager(metadata=metadata)
    naive_s = 0.0
    max_delta, max_old_delta, n_compared, n_differ = 0.0, 0.0, 0, 0

    def delta(a, b) -> float:  # noqa: ANN001
        return float(token_mismatch(a, b, tok)) if args.mode == "cot" else abs(a - b)
    m = min(args.naive_configs or args.configs, args.configs)
    for entry, spec in list(zip(manifest["configs"], specs, strict=True))[:m]:
        t, c = time.perf_counter(), time.process_time()
        res = lm_eval.simple_evaluate(model="steered-hf", model_args={"pretrained": pretrained, "steer": spec,
                                                                      **dtype_arg},
                                      tasks=[task], task_manager=manager, limit=args.limit,
                                      batch_size=args.batch_size, device=args.device, log_samples=True,
                                      gen_kwargs=extra.get("gen_kwargs"))
        naive_s += time.perf_counter() - t
        cpu["naive"] += time.process_time() - c
        ours = answers(read_samples(tmp / "sweep" / entry["output"]))
        ref = answers(res["samples"])
        assert ours.keys() == ref.keys(), f"config {spec.name}: different requests"
        for key, value in ref.items():
            max_delta = max(max_delta, delta(value, ours[key]))
            n_differ += value != ours[key]
        if old_manifest is not None:
            old = answers(read_samples(tmp / "sweep-old" / entry["output"]))
            for key, value in ref.items():
                max_old_delta = max(max_old_delta, delta(value, old[key]))
        n_compared += len(ref)
    load_s = manifest["runs"][0]["model_load_s"]
    n = args.configs
    naive_total = naive_s * n / m
    cpu["naive"] *= n / m

    def per_config(man: dict) -> str:
        secs = [e["seconds"] for e in man["configs"]]
        return f"first config (computes the pass) {secs[0]:.1f} s, each other config (lm-eval only) " \
               f"{sum(secs[1:]) / max(1, len(secs) - 1):.1f} s"

    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch "
          f"{torch.__version__}; load average {os.getloadavg()[0]:.1f} at the end; model "
          f"{'tiny random Llama (3 layers, d=64)' if args.tiny else pretrained} "
          f"({config.num_hidden_layers} layers, d_model {d_model}, {args.dtype or config.dtype}); device {args.device}")
    gen = f", max_gen_toks {args.max_gen_toks}" if args.mode == "cot" else ""
    print(f"task {task}{gen}, num_roles={args.num_roles}, limit={args.limit:g} per value, {n} configs "
          f"(unsteered + {n - 1} add @ layer {layer}), batch size {args.batch_size}, {n_compared} requests compared")
    scaled = f" (measured {m} configs: {naive_s:.1f} s, scaled x{n}/{m})" if m < n else ""
    print(f"naive  (N x steered-hf, N model loads): {naive_total:8.1f} s  ({naive_total / n:.2f} s/config){scaled}")
    mode = "rows only" if args.no_share_prefix else "shared-prefix KV"
    if old_manifest is not None:
        print(f"old sweep (1 load, {mode}, no shared trunk): {old_s:8.1f} s  ({old_s / n:.2f} s/config); "
              f"{per_config(old_manifest)}")
    print(f"sweep  (1 load {load_s:.1f} s, {mode}, shared trunk): {sweep_s:8.1f} s  ({sweep_s / n:.2f} s/config); "
          f"{per_config(manifest)}")
    if old_manifest is not None:
        print(f"ratio naive/old sweep: {naive_total / old_s:.2f}x   max |delta| (old sweep) = {max_old_delta:.2e}")
        print(f"ratio old sweep/sweep: {old_s / sweep_s:.2f}x")
    if args.mode == "cot":
        print(f"ratio naive/sweep: {naive_total / sweep_s:.2f}x   generations differing: {n_differ}/{n_compared}, "
              f"max token mismatch {max_delta:.0f}")
    else:
        print(f"ratio naive/sweep: {naive_total / sweep_s:.2f}x   max |delta loglikelihood| = {max_delta:.2e}")
    if args.mode == "cot":
        print(useful_share_of_peak(tmp / "sweep", manifest, tok, pretrained, sweep_s, args.device))
    # CPU seconds of this process (all threads): robust to other jobs sharing the machine, unlike wall time
    line = f"CPU s: naive {cpu['naive']:.1f}" + (f", old sweep {cpu['sweep-old']:.1f}" if args.old else "") + \
        f", sweep {cpu['sweep']:.1f}; CPU ratio naive/sweep {cpu['naive'] / cpu['sweep']:.2f}x"
    if args.old:
        line += f", naive/old sweep {cpu['naive'] / cpu['sweep-old']:.2f}x, old/new sweep " \
                f"{cpu['sweep-old'] / cpu['sweep']:.2f}x"
    print(line)


if __name__ == "__main__":
    main()
