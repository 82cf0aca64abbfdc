"""Loglikelihood vs CoT mode of the ValueBench questionnaire: time per item and how often they agree
(prints figures; not a test).

Both modes score the same items (same roles, same sampled items, `--limit` per value) on one loaded model:
- CoT (`valuebench_cot_test`, Kang et al.'s setting): generate Thought + Answer (<= `--max-gen-toks`
  new tokens), A.1 rules, unscored when the rules cannot decide and no judge is configured;
- LL (`valuebench_ll_test`, ours): loglikelihood of " yes" vs " no" after the same prompt + "...\\nAnswer:".
Agreement: per item, the LL label vs the CoT label where CoT scored (yes/no/unsure); per value, the sign of
the orientation (mean item score) in both modes.

    python bench/ll_vs_cot.py [--pretrained default] [--num-roles 1] [--limit 2] [--max-gen-toks 128]
"""

from __future__ import annotations

import argparse
import math
import platform
import time

import torch


def timed(lm) -> dict[str, float]:
    """Wrap the model's request methods to add up the seconds spent in them (model time, without
    lm-eval's task building and metric work)."""
    spent = {"model": 0.0}
    for name in ("loglikelihood", "generate_until"):
        inner = getattr(lm, name)

        def wrapper(*a, _inner=inner, **kw):
            start = time.perf_counter()
            try:
                return _inner(*a, **kw)
            finally:
                spent["model"] += time.perf_counter() - start

        setattr(lm, name, wrapper)
    return spent


def run(lm, task: str, args: argparse.Namespace) -> tuple[float, list[dict]]:
    import lm_eval

    start = time.perf_counter()
    res = lm_eval.simple_evaluate(model=lm, tasks=[task], limit=args.limit, log_samples=True,
                                  apply_chat_template=args.chat, gen_kwargs={"max_gen_toks": args.max_gen_toks},
                                  metadata={"num_roles": args.num_roles})
    seconds = time.perf_counter() - start
    samples = [s for task_samples in res["samples"].values() for s in task_samples]
    return seconds, samples


def by_item(samples: list[dict]) -> dict[tuple[str, str], dict]:
    return {(s["doc"]["role_id"], s["doc"]["item_id"]): s for s in samples}


def sign(x: float) -> int:
    return 0 if x == 0 else (1 if x > 0 else -1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pretrained", default="default")
    ap.add_argument("--num-roles", type=int, default=1)
    ap.add_argument("--limit", type=int, default=2, help="items per value (lm-eval --limit)")
    ap.add_argument("--max-gen-toks", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--chat", action="store_true", help="--apply_chat_template for both modes")
    args = ap.parse_args()

    import steering_models._bootstrap  # noqa: F401  (our tasks, from a checkout too)
    from steering_models.lm import SteeredHFLM

    lm = SteeredHFLM(pretrained=args.pretrained, device="cpu", batch_size=args.batch_size)
    spent = timed(lm)
    w_cot, cot = run(lm, "valuebench_cot_test", args)
    t_cot, spent["model"] = spent["model"], 0.0
    w_ll, ll = run(lm, "valuebench_ll_test", args)
    t_ll = spent["model"]
    cot_items, ll_items = by_item(cot), by_item(ll)
    common = sorted(cot_items.keys() & ll_items.keys())

    scored = [k for k in common if cot_items[k]["filtered_resps"][0]["label"] is not None]
    same_label = sum(cot_items[k]["filtered_resps"][0]["label"] == ll_items[k]["filtered_resps"][0]["label"]
                     for k in scored)
    values: dict[str, tuple[list[float], list[float]]] = {}
    for k in common:
        value = cot_items[k]["doc"]["value"]
        c, lo = cot_items[k]["orientation"], ll_items[k]["orientation"]
        pair = values.setdefault(value, ([], []))
        if not (isinstance(c, float) and math.isnan(c)):
            pair[0].append(float(c))
        pair[1].append(float(lo))
    both = {v: (sum(c) / len(c), sum(lo) / len(lo)) for v, (c, lo) in values.items() if c and lo}
    same_sign = sum(sign(c) == sign(lo) for c, lo in both.values())

    print(f"machine: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
          f"model {args.pretrained}; {args.num_roles} role(s), limit {args.limit}/value, chat={args.chat}, "
          f"max_gen_toks {args.max_gen_toks}, batch {args.batch_size}")
    print(f"{'mode':6s} {'items':>6s} {'wall s':>8s} {'model s':>8s} {'model s/item':>13s} {'scored':>7s}")
    n_cot_scored = len(scored)
    print(f"{'CoT':6s} {len(cot):6d} {w_cot:8.1f} {t_cot:8.1f} {t_cot / max(len(cot), 1):13.3f} {n_cot_scored:7d}")
    print(f"{'LL':6s} {len(ll):6d} {w_ll:8.1f} {t_ll:8.1f} {t_ll / max(len(ll), 1):13.3f} {len(ll):7d}")
    print(f"speed-up LL vs CoT (baseline CoT, same run), model time per item: "
          f"{(t_cot / len(cot)) / (t_ll / len(ll)):.1f}x (target >= 10x); wall: "
          f"{(w_cot / len(cot)) / (w_ll / len(ll)):.1f}x")
    print(f"item labels equal where CoT scored: {same_label}/{n_cot_scored}")
    print(f"values with the same orientation sign: {same_sign}/{len(both)} "
          f"(of {len(values)} values; a value counts where CoT scored at least one item)")


if __name__ == "__main__":
    main()
