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
- generation (``--gen-batches``, default 1 and 32): greedy decoding of ``--max-gen-toks`` new tokens for as
  many ValueBench CoT prompts of one role as the batch holds, by the ragged engine
  (steering_models.generation: its shared prompt prefix on, no EOS, so every row runs the full length) and,
  as the baseline in the same run, by HF ``model.generate`` on the same left-padded batch
  (``min_new_tokens`` forces the same length). Prefill and decode are timed apart for the engine; decode
  tokens/s are set against two ceilings measured here: the matmul peak (FLOP as below) and the
  memory-bandwidth roofline: each decoding step reads every weight once (all parameters but the input
  embedding, of which one row per token is read), so steps/s <= copy bandwidth / weight bytes, measured
  with a ``--copy-mb`` tensor copy (read + write bytes / time, best of a few).

FLOP counting: 2 x non-embedding parameters (every parameter but the input embedding and the LM head)
per token run, plus the LM head (2 x vocab x d_model) on the columns whose logits are computed (HFLM:
every column; the sweep LM: only continuation columns; generate: one per step). The attention score and
value products (QK^T, AV; 4 x layers x heads x head_dim x attended positions per token) are NOT counted;
their share at these lengths is printed as an estimate. The fraction of peak = achieved / measured peak.

    python bench/throughput.py [--pretrained default | --tiny] [--items 16] [--batch-size 8] [--repeats 2]
                               [--skip-score] [--gen-batches 1,32] [--max-gen-toks 32] [--dtype float32]
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


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_peak(sizes: list[int], repeats: int, dtype: torch.dtype = torch.float32,
                device: str = "cpu") -> tuple[float, dict[int, float]]:
    """Best square-matmul FLOP/s over ``sizes`` in ``dtype`` (best of ``repeats`` each)."""
    per_size: dict[int, float] = {}
    for n in sizes:
        a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
        torch.matmul(a, b)  # warm-up
        best = float("inf")
        for _ in range(repeats):
            _sync(device)
            t = time.perf_counter()
            torch.matmul(a, b)
            _sync(device)
            best = min(best, time.perf_counter() - t)
        per_size[n] = 2 * n ** 3 / best
    return max(per_size.values()), per_size


def copy_bandwidth(mb: int, repeats: int, device: str = "cpu") -> float:
    """Bytes/s of a large tensor copy (each byte read once and written once), best of ``repeats``."""
    src = torch.randn(mb * 2 ** 20 // 4, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)  # warm-up (pages in)
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        dst.copy_(src)
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * src.numel() * src.element_size() / best


def weight_bytes(model: torch.nn.Module) -> int:
    """Bytes of weights one decoding step reads: every parameter but the input embedding (one row a token)."""
    emb = model.get_input_embeddings().weight
    seen = {id(p): p for p in model.parameters()}
    head = model.get_output_embeddings().weight
    tied = id(head) == id(emb)
    return sum(p.numel() * p.element_size() for p in seen.values() if id(p) != id(emb) or tied)


def cot_prompts(n: int) -> list[str]:
    """ValueBench CoT prompts (the questionnaire's chain-of-thought form) of one role."""
    from lm_eval_tasks.valuebench.data import load_items, load_roles
    from lm_eval_tasks.valuebench.prompts import render_prompt

    role = load_roles()[1]
    items = load_items()
    return [render_prompt(items[i % len(items)].question, role.trait) for i in range(n)]


def generation(lm, args) -> list[dict]:  # noqa: ANN001
    """Engine vs HF ``generate`` at each batch size of ``--gen-batches`` (see the module docstring)."""
    from steering_models.generation import GenRow, RaggedGenerator

    out = []
    for bs in [int(b) for b in args.gen_batches.split(",")]:
        texts = cot_prompts(bs)
        enc, attn = lm.tok_batch_encode(texts)
        prompts = [tuple(t for t, m in zip(ids, ms, strict=True) if m) for ids, ms in zip(enc.tolist(), attn.tolist(), strict=True)]
        rows = [GenRow(p, args.max_gen_toks) for p in prompts]
        best: dict | None = None
        for _ in range(args.repeats):
            engine = RaggedGenerator(lm.model, lm.tokenizer, batch_size=bs, pad_token_id=lm.tokenizer.pad_token_id or 0)
            t = time.perf_counter()
            got = engine.generate(rows)
            total = time.perf_counter() - t
            assert all(len(g) == args.max_gen_toks for g in got)
            st = engine.stats
            run = {"batch": bs, "rows": len(rows), "total_s": total, "prefill_s": st.prefill_s, "decode_s": st.decode_s,
                   "decode_steps": st.decode_steps, "decode_rows": st.decode_rows, "prompt_tokens": st.prompt_tokens,
                   "prefill_tokens": st.prefill_tokens, "new": st.new_tokens}
            if best is None or total < best["total_s"]:
                best = run
        assert best is not None

        enc, attn = enc.to(lm.device), attn.to(lm.device)

        def hf_generate(enc=enc, attn=attn) -> None:  # noqa: ANN001
            with torch.no_grad():
                lm.model.generate(input_ids=enc, attention_mask=attn, max_new_tokens=args.max_gen_toks,
                                  min_new_tokens=args.max_gen_toks, do_sample=False,
                                  pad_token_id=lm.tokenizer.pad_token_id)
        best["hf_s"] = best_time(hf_generate, args.repeats)
        best["hf_prompt_cols"] = int(enc.numel())
        out.append(best)
    return out


def print_generation(table: list[dict], peak: float, bw: float, wbytes: int, flop_per_token: float) -> None:
    step_floor = wbytes / bw
    print(f"decode ceilings: copy bandwidth {bw / 1e9:.1f} GB/s, weights read per step {wbytes / 1e9:.2f} GB -> "
          f"at most {1 / step_floor:.1f} steps/s (bandwidth roofline); matmul peak {peak / 1e9:.1f} GFLOP/s, "
          f"{flop_per_token / 1e9:.2f} GFLOP per new token")
    print(f"{'generation':28s} {'total s':>8s} {'prefill s':>9s} {'decode s':>9s} {'decode tok/s':>12s} "
          f"{'of roofline':>11s} {'of peak':>8s} {'HF generate s':>13s} {'HF tok/s':>9s} {'speed-up':>8s}")
    base = None
    for row in table:
        tps = row["decode_rows"] / row["decode_s"]
        steps = row["decode_steps"] / row["decode_s"]
        roof = steps * step_floor  # achieved steps/s over the roofline's steps/s
        new = row["new"]
        base = base or tps
        print(f"engine batch {row['batch']:<3d} ({row['rows']:>2d} rows) {row['total_s']:8.2f} {row['prefill_s']:9.2f} "
              f"{row['decode_s']:9.2f} {tps:12.1f} {100 * roof:10.1f}% {100 * tps * flop_per_token / peak:7.1f}% "
              f"{row['hf_s']:13.2f} {new / row['hf_s']:9.1f} {row['hf_s'] / row['total_s']:7.2f}x")
        print(f"    prefill: {row['prompt_tokens']} prompt tokens, {row['prefill_tokens']} run (shared prefix once); "
              f"HF generate ran {row['hf_prompt_cols']} padded prompt columns; decode tok/s = {tps / base:.1f}x batch "
              f"{table[0]['batch']}")


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
    ap.add_argument("--gen-batches", default="1,32", help="generation batch sizes (one role's CoT prompts, as "
                    "many as the batch holds)")
    ap.add_argument("--max-gen-toks", type=int, default=32)
    ap.add_argument("--copy-mb", type=int, default=512, help="tensor size of the copy-bandwidth measurement")
    ap.add_argument("--skip-score", action="store_true", help="generation only")
    ap.add_argument("--dtype", default="float32", help="model dtype (float32, bfloat16, auto)")
    ap.add_argument("--device", default="cpu")
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
    bw0 = copy_bandwidth(args.copy_mb, max(3, args.repeats), args.device)
    from steering_models.precision import resolve_dtype

    mm_dtype = getattr(torch, resolve_dtype(args.dtype, args.device))
    peak, per_size = matmul_peak([int(s) for s in args.peak_sizes.split(",")], max(3, args.repeats), mm_dtype,
                                 args.device)
    pretrained = tiny_model(Path(tempfile.mkdtemp(prefix="throughput-")) / "tiny") if args.tiny \
        else str(resolve_pretrained(args.pretrained))

    texts = prompts(args.items)
    ll_reqs = [Instance("loglikelihood", {}, (t, c), i) for i, (t, c) in
               enumerate((t, c) for t in texts for c in (" yes", " no"))]
    hf = SteeredHFLM(pretrained=pretrained, steer=None, device=args.device, batch_size=args.batch_size,
                     dtype=args.dtype)
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

    if not args.skip_score:
        t = best_time(lambda: hf.loglikelihood(ll_reqs, disable_tqdm=True), args.repeats)
        record("steered-hf score", t, tokens, 2 * non_emb * tokens, 2 * vocab * d_model * tokens)

        sweep = SweepLM(pretrained=pretrained, specs=[SteerSpec()], device=args.device, batch_size=args.batch_size,
                        dtype=args.dtype)
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

    gen_table = generation(hf, args)

    load1 = os.getloadavg()[0]
    end_peak, end_sizes = matmul_peak([int(s) for s in args.peak_sizes.split(",")], max(3, args.repeats), mm_dtype,
                                      args.device)
    start_peak = peak
    peak = max(peak, end_peak)  # a peak is what the machine can do: the better of the two measurements
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
          f"{mm_dtype}; load average {load0:.1f} at start, {load1:.1f} at end")
    print(f"matmul peak ({mm_dtype}, square, best of a few): " + ", ".join(
        f"n={n}: {f / 1e9:.1f}" for n, f in per_size.items()) + f" GFLOP/s -> {start_peak / 1e9:.1f} GFLOP/s; again at the end: {end_peak / 1e9:.1f} "
          f"GFLOP/s; peak = the better, {peak / 1e9:.1f} GFLOP/s (a loaded machine shows as a gap between the two)")
    print(f"model: {'tiny random Llama' if args.tiny else pretrained}; {non_emb / 1e6:.1f} M non-embedding params, "
          f"LM head {vocab} x {d_model}; {hf.model.dtype}; {len(inputs)} scored inputs, {tokens} tokens (mean "
          f"{mean_len:.0f}), batch {args.batch_size}; generation: {args.max_gen_toks} new tokens a row; best of "
          f"{args.repeats}")
    print(f"attention QK^T/AV products (not counted) would add ~{100 * attn_share:.1f} % at this length")
    print(f"{'what':36s} {'s':>7s} {'tok/s':>9s} {'GFLOP/s':>9s} {'of peak':>8s} {'+head GFLOP/s':>14s} {'of peak':>8s}")
    for name, s, tps, fps, fph in rows:
        print(f"{name:36s} {s:7.2f} {tps:9.1f} {fps / 1e9:9.1f} {100 * fps / peak:7.1f}% {fph / 1e9:14.1f} "
              f"{100 * fph / peak:7.1f}%")
    bw = max(bw0, copy_bandwidth(args.copy_mb, max(3, args.repeats), args.device))
    print_generation(gen_table, peak, bw, weight_bytes(hf.model), 2 * non_emb + 2 * vocab * d_model)


if __name__ == "__main__":
    main()
