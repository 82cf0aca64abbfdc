"""Tokens/s and achieved FLOP/s of scoring (loglikelihood) and greedy generation, vs a torch matmul peak
measured in the same run on this machine (prints figures; not a test).

- peak: float32 square ``torch.matmul`` at a few sizes, best of ``--repeats`` each, 2 n^3 FLOP per product;
  the best size is the machine's reachable limit for the dense math a transformer does.
- scoring: ValueBench questionnaire prompts (Figure 2 prompt + " ...\\nAnswer:", one role, ``--items``
  items) scored for " yes"/" no" by steered-hf (empty steering spec: HFLM's own batching) and by the sweep's
  ``SweepLM`` (one unsteered config, shared-prefix KV reuse on). Tokens = real (unpadded) tokens of the
  model inputs a plain run needs (context + continuation[:-1], once per distinct input: " yes"/" no"
  share one row); the sweep LM also prints the columns it really ran (``forward_tokens``, fewer because a
  shared prefix runs once).
- generation: greedy ``generate_until`` of ``--max-gen-toks`` new tokens for ``--gen-items`` prompts in
  one batch (``min_new_tokens`` forces the full length), new tokens/s; its FLOP count includes the prefill.

FLOP counting: 2 x non-embedding parameters (every parameter but the input embedding and the LM head)
per token run, plus the LM head (2 x vocab x d_model) on the columns whose logits are computed (HFLM:
every column; the sweep LM: only continuation columns; generate: one per step). The attention score and
value products (QK^T, AV; 4 x layers x heads x head_dim x attended positions per token) are NOT counted;
their share at these lengths is printed as an estimate. The fraction of peak = achieved / measured peak.

    python bench/throughput.py [--pretrained default | --tiny] [--items 16] [--batch-size 8] [--repeats 2]
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


def matmul_peak(sizes: list[int], repeats: int) -> tuple[float, dict[int, float]]:
    """Best float32 square-matmul FLOP/s over ``sizes`` (best of ``repeats`` each)."""
    per_size: dict[int, float] = {}
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.matmul(a, b)  # warm-up
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            torch.matmul(a, b)
            best = min(best, time.perf_counter() - t)
        per_size[n] = 2 * n ** 3 / best
    return max(per_size.values()), per_size


def tiny_model(folder: Path) -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import build_model, build_tokenizer

    tok = build_tokenizer()
    build_model("llama", len(tok)).save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


def param_counts(model: torch.nn.Module) -> tuple[int, int, int]:
    """(non-embedding params, vocab, d_model): all params minus the input embedding and the LM head."""
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    seen = {id(p): p for p in model.parameters()}
    total = sum(p.numel() for p in seen.values())
    non_emb = total - emb.numel() - (head.numel() if id(head) != id(emb) and id(head) in seen else 0)
    return non_emb, head.shape[0], head.shape[1]


def prompts(n: int) -> list[str]:
    from lm_eval_tasks.valuebench.data import load_items, load_roles
    from lm_eval_tasks.valuebench.prompts import render_ll_context, render_prompt

    role = load_roles()[1]
    return [render_ll_context(render_prompt(item.question, role.trait)) for item in load_items()[:n]]


def best_time(fn, repeats: int) -> float:  # noqa: ANN001
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pretrained", default="default")
    ap.add_argument("--tiny", action="store_true", help="a random tiny Llama instead of --pretrained")
    ap.add_argument("--items", type=int, default=16, help="questionnaire items scored")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--gen-items", type=int, default=4, help="prompts generated for, in one batch")
    ap.add_argument("--max-gen-toks", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2, help="best of N for every timing")
    ap.add_argument("--peak-sizes", default="512,1024,2048,3072")
    args = ap.parse_args()

    from lm_eval.api.instance import Instance

    import steering_models._bootstrap  # noqa: F401
    from steering_models.default_model import resolve_pretrained
    from steering_models.lm import SteeredHFLM
    from steering_models.spec import SteerSpec
    from steering_models.sweep.lm import SweepLM

    load0 = os.getloadavg()[0]
    peak, per_size = matmul_peak([int(s) for s in args.peak_sizes.split(",")], max(3, args.repeats))
    pretrained = tiny_model(Path(tempfile.mkdtemp(prefix="throughput-")) / "tiny") if args.tiny \
        else str(resolve_pretrained(args.pretrained))

    texts = prompts(args.items)
    ll_reqs = [Instance("loglikelihood", {}, (t, c), i) for i, (t, c) in
               enumerate((t, c) for t in texts for c in (" yes", " no"))]
    hf = SteeredHFLM(pretrained=pretrained, steer=None, device="cpu", batch_size=args.batch_size)
    non_emb, vocab, d_model = param_counts(hf.model)
    cfg = hf.model.config
    heads_dim = cfg.num_attention_heads * getattr(cfg, "head_dim", None) if getattr(cfg, "head_dim", None) \
        else cfg.hidden_size
    inputs = {tuple((hf.tok_encode(t) + hf.tok_encode(" yes"))[:-1]) for t in texts}
    tokens = sum(len(x) for x in inputs)
    mean_len = tokens / len(inputs)
    attn_share = (4 * cfg.num_hidden_layers * heads_dim * mean_len / 2) / (2 * non_emb)

    rows: list[tuple[str, float, float, float, float]] = []  # name, s, tok/s, flop/s (no head), flop/s (+head)

    def record(name: str, seconds: float, toks: float, flops: float, head_flops: float) -> None:
        rows.append((name, seconds, toks / seconds, flops / seconds, (flops + head_flops) / seconds))

    t = best_time(lambda: hf.loglikelihood(ll_reqs, disable_tqdm=True), args.repeats)
    record("steered-hf score", t, tokens, 2 * non_emb * tokens, 2 * vocab * d_model * tokens)

    sweep = SweepLM(pretrained=pretrained, specs=[SteerSpec()], device="cpu", batch_size=args.batch_size)
    ran: list[int] = []

    def sweep_score() -> None:
        sweep.release(0)
        sweep.select(0, [0])
        before = sweep.forward_tokens
        sweep.loglikelihood(ll_reqs, disable_tqdm=True)
        ran.append(sweep.forward_tokens - before)

    t = best_time(sweep_score, args.repeats)
    record("sweep LM score (request tokens)", t, tokens, 2 * non_emb * tokens, 2 * vocab * d_model * len(inputs))
    record("sweep LM score (columns run)", t, ran[-1], 2 * non_emb * ran[-1], 2 * vocab * d_model * len(inputs))

    gen_kwargs = {"until": ["\x00never\x00"], "max_gen_toks": args.max_gen_toks, "do_sample": False,
                  "min_new_tokens": args.max_gen_toks}
    gen_reqs = [Instance("generate_until", {}, (t, dict(gen_kwargs)), i) for i, t in enumerate(texts[:args.gen_items])]
    prefill = sum(len(hf.tok_encode(t)) for t in texts[:args.gen_items])
    new = args.max_gen_toks * len(gen_reqs)
    gen_flops = 2 * non_emb * (prefill + new)
    gen_head = 2 * vocab * d_model * new
    for name, lm in (("steered-hf generate", hf), ("sweep LM generate", sweep)):
        def gen(lm=lm) -> None:  # noqa: ANN001
            if lm is sweep:
                sweep.release(0)
                sweep.select(0, [0])
            out = lm.generate_until([Instance("generate_until", {}, r.args, r.idx) for r in gen_reqs],
                                    disable_tqdm=True)
            assert len(out) == len(gen_reqs)
        t = best_time(gen, args.repeats)
        record(name + " (new tokens)", t, new, gen_flops, gen_head)

    load1 = os.getloadavg()[0]
    end_peak, end_sizes = matmul_peak([int(s) for s in args.peak_sizes.split(",")], max(3, args.repeats))
    start_peak = peak
    peak = max(peak, end_peak)  # a peak is what the machine can do: the better of the two measurements
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
          f"float32; load average {load0:.1f} at start, {load1:.1f} at end")
    print("matmul peak (float32, square, best of a few): " + ", ".join(
        f"n={n}: {f / 1e9:.1f}" for n, f in per_size.items()) + f" GFLOP/s -> {start_peak / 1e9:.1f} GFLOP/s; again at the end: {end_peak / 1e9:.1f} "
          f"GFLOP/s; peak = the better, {peak / 1e9:.1f} GFLOP/s (a loaded machine shows as a gap between the two)")
    print(f"model: {'tiny random Llama' if args.tiny else pretrained}; {non_emb / 1e6:.1f} M non-embedding params, "
          f"LM head {vocab} x {d_model}; {len(inputs)} scored inputs, {tokens} tokens (mean {mean_len:.0f}), "
          f"batch {args.batch_size}; generation: {len(gen_reqs)} prompts x {args.max_gen_toks} new tokens "
          f"(+{prefill} prefill tokens); best of {args.repeats}")
    print(f"attention QK^T/AV products (not counted) would add ~{100 * attn_share:.1f} % at this length")
    print(f"{'what':36s} {'s':>7s} {'tok/s':>9s} {'GFLOP/s':>9s} {'of peak':>8s} {'+head GFLOP/s':>14s} {'of peak':>8s}")
    for name, s, tps, fps, fph in rows:
        print(f"{name:36s} {s:7.2f} {tps:9.1f} {fps / 1e9:9.1f} {100 * fps / peak:7.1f}% {fph / 1e9:14.1f} "
              f"{100 * fph / peak:7.1f}%")


if __name__ == "__main__":
    main()
