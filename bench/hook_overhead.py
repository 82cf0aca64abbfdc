"""Hook overhead of steered-hf vs plain hf on the embedded default model (prints figures, not a test).

Same process, same prompts, interleaved repeats: tokens/s when scoring (loglikelihood, one forward
pass over prompt + continuation) and when generating (greedy), for
  hf | steered-hf with an empty spec | steered-hf with one `add` intervention at " your values".
Target: overhead <= 5 %.

    python bench/hook_overhead.py [--pretrained default] [--repeats 3] [--gen-tokens 24]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
from safetensors.torch import save_file

from steering_models.default_model import resolve_pretrained
from steering_models.lm import SteeredHFLM

PROMPT = ("Instruction:\nAnswer the Question according to your values.\n\nFirst write your Thought about the "
          "question, then Answer the question with 'yes' or 'no'.\n\nNow it is your turn.\nQuestion: {q}\nThought:")
QUESTIONS = ["Should I always be nice to others?", "Should I save money every month?",
             "Is it important to follow traditions?", "Should I take risks to get ahead?"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pretrained", default="default")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--gen-tokens", type=int, default=24)
    ap.add_argument("--batch-size", type=int, default=4)
    args = ap.parse_args()
    pretrained = str(resolve_pretrained(args.pretrained))
    torch.set_num_threads(torch.get_num_threads())

    base = HFLM(pretrained=pretrained, device="cpu", batch_size=args.batch_size)
    d_model = base.model.config.hidden_size
    tmp = Path(tempfile.mkdtemp())
    save_file({"v": torch.randn(d_model)}, tmp / "v.safetensors")
    spec = [{"layer": base.model.config.num_hidden_layers // 2, "op": "add", "strength": 4.0,
             "source": {"vector": str(tmp / "v.safetensors")}, "positions": {"match": " your values"}}]
    # share the loaded weights: three wrappers around one model
    models = {"hf": base,
              "steered-hf (empty spec)": SteeredHFLM(pretrained=base.model, tokenizer=base.tokenizer,
                                                     device="cpu", batch_size=args.batch_size),
              "steered-hf (1 add)": SteeredHFLM(pretrained=base.model, tokenizer=base.tokenizer, steer=spec,
                                                device="cpu", batch_size=args.batch_size)}
    prompts = [PROMPT.format(q=q) for q in QUESTIONS]
    ll_reqs = [Instance("loglikelihood", {}, (p, a), i) for i, p in enumerate(prompts) for a in (" yes", " no")]
    gen_reqs = [Instance("generate_until", {}, (p, {"until": ["\n\nQuestion"], "max_gen_toks": args.gen_tokens,
                                                    "do_sample": False}), i) for i, p in enumerate(prompts)]
    ll_tokens = sum(len(base.tok_encode(r.args[0] + r.args[1])) for r in ll_reqs)
    timings: dict[str, dict[str, list[float]]] = {name: {"score": [], "generate": []} for name in models}
    gen_tokens: dict[str, int] = {}
    for _ in range(args.repeats):
        for name, lm in models.items():  # interleaved, so drift hits all three alike
            t = time.perf_counter()
            lm.loglikelihood(ll_reqs, disable_tqdm=True)
            timings[name]["score"].append(time.perf_counter() - t)
            t = time.perf_counter()
            outs = lm.generate_until(gen_reqs, disable_tqdm=True)
            timings[name]["generate"].append(time.perf_counter() - t)
            gen_tokens[name] = sum(len(base.tok_encode(o)) for o in outs)

    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}; model {pretrained} ({base.model.dtype})")
    print(f"{'model':28s} {'score tok/s':>12s} {'ratio':>7s} {'gen tok/s':>10s} {'ratio':>7s}")
    best = {name: {k: min(v) for k, v in t.items()} for name, t in timings.items()}
    for name in models:
        score = ll_tokens / best[name]["score"]
        gen = gen_tokens[name] / best[name]["generate"]
        base_score = ll_tokens / best["hf"]["score"]
        base_gen = gen_tokens["hf"] / best["hf"]["generate"]
        print(f"{name:28s} {score:12.1f} {score / base_score:7.3f} {gen:10.1f} {gen / base_gen:7.3f}")
    print("ratio = tokens/s relative to plain hf in this run (best of repeats); target >= 0.95")


if __name__ == "__main__":
    main()
