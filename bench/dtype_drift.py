"""float32 vs bfloat16 on one machine: speed and drift of scoring and greedy generation (prints; not a test).

Both dtypes load the same checkpoint as steered-hf (no steering), in one process, and answer the same
requests:

- scoring: ValueBench LL questionnaire prompts (one role, ``--items`` items) scored for " yes"/" no"; the
  *label* is the likelier answer; drift = items whose label differs from float32's, and max |delta| of the
  yes-no log-odds.
- generation: greedy decoding (the ragged engine, no EOS so every row runs ``--max-gen-toks`` tokens) of
  ``--gen-items`` ValueBench CoT prompts; drift = rows whose tokens differ from float32's anywhere, and the
  mean index of the first differing token.

It also prints what ``dtype=auto`` picks here (steering_models.precision: bfloat16 only where the CPU flags
``avx512_bf16``/``amx_bf16`` or a CUDA GPU's ``is_bf16_supported`` say it is native).

    python bench/dtype_drift.py [--pretrained default] [--items 16] [--gen-items 4] [--max-gen-toks 32]
                                [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import cot_prompts, prompts  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pretrained", default="default")
    ap.add_argument("--items", type=int, default=16)
    ap.add_argument("--gen-items", type=int, default=4)
    ap.add_argument("--max-gen-toks", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    from lm_eval.api.instance import Instance

    import steering_models._bootstrap  # noqa: F401
    from steering_models.default_model import resolve_pretrained
    from steering_models.generation import GenRow, RaggedGenerator
    from steering_models.lm import SteeredHFLM
    from steering_models.precision import cpu_flags, resolve_dtype

    pretrained = str(resolve_pretrained(args.pretrained))
    texts = prompts(args.items)
    ll_reqs = [Instance("loglikelihood", {}, (t, c), i) for i, (t, c) in
               enumerate((t, c) for t in texts for c in (" yes", " no"))]
    gen_texts = cot_prompts(args.gen_items)
    load0 = os.getloadavg()[0]
    results: dict[str, dict] = {}
    for dtype in ("float32", "bfloat16"):
        lm = SteeredHFLM(pretrained=pretrained, device=args.device, batch_size=args.batch_size, dtype=dtype)
        t = time.perf_counter()
        scores = [s for s, _ in lm.loglikelihood(ll_reqs, disable_tqdm=True)]
        score_s = time.perf_counter() - t
        enc, attn = lm.tok_batch_encode(gen_texts)
        rows = [GenRow(tuple(x for x, m in zip(ids, ms, strict=True) if m), args.max_gen_toks)
                for ids, ms in zip(enc.tolist(), attn.tolist(), strict=True)]
        engine = RaggedGenerator(lm.model, lm.tokenizer, batch_size=args.batch_size)
        t = time.perf_counter()
        toks = engine.generate(rows)
        gen_s = time.perf_counter() - t
        results[dtype] = {"odds": [scores[2 * i] - scores[2 * i + 1] for i in range(len(texts))], "toks": toks,
                          "score_s": score_s, "gen_s": gen_s, "decode_s": engine.stats.decode_s,
                          "prompt_tokens": sum(len(r.prompt) for r in rows)}
        del lm, engine

    ref, bf = results["float32"], results["bfloat16"]
    labels_changed = sum((a > 0) != (b > 0) for a, b in zip(ref["odds"], bf["odds"], strict=True))
    max_odds = max(abs(a - b) for a, b in zip(ref["odds"], bf["odds"], strict=True))
    first_diff = []
    for a, b in zip(ref["toks"], bf["toks"], strict=True):
        first_diff.append(next((i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y), None))
    changed = [d for d in first_diff if d is not None]
    flags = cpu_flags()
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}; "
          f"device {args.device}; CPU flags avx512_bf16={'avx512_bf16' in flags} amx_bf16={'amx_bf16' in flags} "
          f"avx2={'avx2' in flags}; dtype=auto picks {resolve_dtype('auto', args.device)}; load average "
          f"{load0:.1f} at start, {os.getloadavg()[0]:.1f} at end")
    print(f"model {pretrained}; scoring {len(texts)} items x 2 answers; generation {len(rows)} CoT prompts "
          f"({ref['prompt_tokens']} prompt tokens) x {args.max_gen_toks} new tokens, batch {args.batch_size}")
    print(f"{'dtype':10s} {'score s':>8s} {'gen s':>7s} {'decode s':>9s} {'score x':>8s} {'gen x':>6s}")
    for dtype, r in results.items():
        print(f"{dtype:10s} {r['score_s']:8.2f} {r['gen_s']:7.2f} {r['decode_s']:9.2f} "
              f"{ref['score_s'] / r['score_s']:7.2f}x {ref['gen_s'] / r['gen_s']:5.2f}x")
    print(f"drift of bfloat16 vs float32: LL labels changed {labels_changed}/{len(texts)} (max |delta log-odds| "
          f"{max_odds:.3f}); greedy generations changed {len(changed)}/{len(rows)} rows"
          + (f", first differing token at index {sum(changed) / len(changed):.1f} on average (min {min(changed)})"
             if changed else ""))


if __name__ == "__main__":
    main()
