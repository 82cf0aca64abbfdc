"""``python -m steering_models.conva fit --pretrained default --values power,security --out conva_out``

Fits ConVA value vectors (see :mod:`steering_models.conva.fit`). ``sft --value V --out OUT`` trains the
paper's SFT baseline as a LoRA adapter (see :mod:`steering_models.conva.sft`). The ConVA data folder comes from
``--data-dir``, else ``$VALUE_STEERING_CONVA_DIR``, else ``../shared/data/conva`` beside a source
checkout. The offline probe gate's value-unrelated texts come from ``--gate-negatives`` (an MMLU
folder with ``test/<subject>_test.csv``; default: ``mmlu`` beside the ConVA folder; ``none`` skips it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lm_eval_tasks.schwartz.data import VALUES, resolve_conva_dir
from steering_models.conva.data import PAIR_SETS, ConvaDataError
from steering_models.conva.defaults import (
    ACC_THRESHOLD,
    EXCLUDE_LAST,
    MIN_PAIRS,
    SFT_BATCH_SIZE,
    SFT_EPOCHS,
    SFT_GRAD_ACCUM,
    SFT_LORA_ALPHA,
    SFT_LORA_DROPOUT,
    SFT_LORA_RANK,
    SFT_LR,
    SFT_TARGET_MODULES,
    TEST_FRACTION,
)
from steering_models.conva.fit import FitSettings, run_fit
from steering_models.errors import SpecError


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m steering_models.conva", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("fit", help="fit value vectors, the probe gate and CAA vectors; write steering files")
    p.add_argument("--pretrained", default="default", help="hub id, local folder, or default (embedded model)")
    p.add_argument("--values", default=",".join(VALUES), help="comma-separated Schwartz values (default: all 10)")
    p.add_argument("--data-dir", default=None, help="ConVA data folder holding value/ (not shipped: no licence)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--pairs", type=int, default=None, help="use the first N pairs (default: all, 100)")
    p.add_argument("--pair-set", choices=PAIR_SETS, default="context_controlled")
    p.add_argument("--pooling", choices=("last", "mean"), default="last")
    p.add_argument("--gate-pooling", choices=("last", "mean"), default="mean",
                   help="how the probe gate pools a prompt's tokens (default mean: robust to the chat "
                        "template's tail)")
    p.add_argument("--threshold", type=float, default=ACC_THRESHOLD, help="select layers with test acc > this")
    p.add_argument("--exclude-last", type=int, default=EXCLUDE_LAST, help="never select the last N layers")
    p.add_argument("--test-fraction", type=float, default=TEST_FRACTION)
    p.add_argument("--min-pairs", type=int, default=MIN_PAIRS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--C", dest="c", type=float, default=1.0, help="inverse L2 strength of the probes")
    p.add_argument("--gate-negatives", default="auto",
                   help="MMLU folder for the probe gate's unrelated texts; auto = <data-dir>/../mmlu; none = no gate")
    p.add_argument("--gate-negatives-n", type=int, default=200)
    p.add_argument("--gate-layers", choices=("all", "lowest"), default="all",
                   help="fit the gate probe at every layer, or only at the lowest selected layer (where the "
                        "written steering files read it; much faster on CPU)")
    p.add_argument("--gate-format", choices=("raw", "chat"), default="raw",
                   help="train the gate on the texts as they are, or chat-templated (for --apply_chat_template runs)")
    p.add_argument("--caa-layer", type=int, default=None, help="CAA steering layer (default: middle selected layer)")
    p.add_argument("--caa-strength", type=float, default=1.0, help="CAA coefficient")
    p.add_argument("--g0", type=float, default=None,
                   help="gate threshold written into steer_conva_<value>.yaml (default: the op's; pick one with "
                        "gate-check --offset)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="activation cache (default: $VALUE_STEERING_CACHE/conva-activations)")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--no-unembed", action="store_true", help="do not write unembed.safetensors (logit-lens)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32")
    g = sub.add_parser("gate-check", help="share of real task prompts the probe gate opens on (dilemmas vs MMLU)")
    g.add_argument("--pretrained", default="default")
    g.add_argument("--artifacts", required=True, type=Path, help="folder written by fit --out")
    g.add_argument("--values", required=True, help="comma-separated values")
    g.add_argument("--n", type=int, default=20, help="prompts per (sub)task")
    g.add_argument("--offset", type=int, default=0,
                   help="skip the first N docs of each task (the runs' --limit): choose g0 on prompts not evaluated")
    g.add_argument("--apply-chat-template", action="store_true", help="as lm_eval --apply_chat_template")
    g.add_argument("--g0", type=float, default=None, help="gate threshold (default: the probe gate's 0.5)")
    g.add_argument("--max-length", type=int, default=4096)
    g.add_argument("--batch-size", type=int, default=2)
    g.add_argument("--device", default="cpu")
    g.add_argument("--out", required=True, type=Path)
    f = sub.add_parser("sft", help="the SFT baseline: a LoRA adapter trained on the value's positive sentences "
                                   "(a substitute for FULCRA); defaults = Appendix H")
    f.add_argument("--pretrained", default="default", help="hub id, local folder, or default (embedded model)")
    f.add_argument("--value", required=True, help="one Schwartz value")
    f.add_argument("--data-dir", default=None, help="ConVA data folder holding value/ (not shipped: no licence)")
    f.add_argument("--out", required=True, type=Path, help="output folder (a rerun resumes in it)")
    f.add_argument("--sentences", type=int, default=None, help="use the first N positive sentences (default: all, 100)")
    f.add_argument("--pair-set", choices=PAIR_SETS, default="context_controlled")
    f.add_argument("--format", choices=("chat", "plain"), default="chat",
                   help="chat: each sentence is the assistant turn of the chat template (loss on it only); "
                        "plain: the sentence + EOS as plain text")
    f.add_argument("--rank", type=int, default=SFT_LORA_RANK)
    f.add_argument("--alpha", type=float, default=SFT_LORA_ALPHA)
    f.add_argument("--dropout", type=float, default=SFT_LORA_DROPOUT)
    f.add_argument("--target-modules", default=",".join(SFT_TARGET_MODULES), help="comma-separated linear layers")
    f.add_argument("--lr", type=float, default=SFT_LR)
    f.add_argument("--epochs", type=int, default=SFT_EPOCHS)
    f.add_argument("--batch-size", type=int, default=SFT_BATCH_SIZE, help="sentences per micro-batch")
    f.add_argument("--grad-accum", type=int, default=SFT_GRAD_ACCUM, help="micro-batches per optimizer step")
    f.add_argument("--lr-schedule", choices=("linear", "constant"), default="linear",
                   help="linear decay to 0 (transformers' Trainer default; the paper does not say) or constant")
    f.add_argument("--warmup-steps", type=int, default=0)
    f.add_argument("--weight-decay", type=float, default=0.0)
    f.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient clipping (0: none)")
    f.add_argument("--max-length", type=int, default=128, help="tokens per example (longer ones are cut)")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--gradient-checkpointing", action="store_true",
                   help="trade time for memory, as the paper did on its GPU (same results)")
    f.add_argument("--keep-checkpoints", type=int, default=1, help="latest epoch checkpoints kept on disk")
    f.add_argument("--fresh", action="store_true", help="discard what --out holds and train from the start")
    f.add_argument("--no-progress", action="store_true", help="no progress bar")
    f.add_argument("--device", default="cpu")
    f.add_argument("--dtype", default="float32")
    return ap


def sft(args: argparse.Namespace) -> int:
    from steering_models.conva.sft import SFTSettings, run_sft

    settings = SFTSettings(rank=args.rank, alpha=args.alpha, dropout=args.dropout,
                           target_modules=tuple(t.strip() for t in args.target_modules.split(",") if t.strip()),
                           lr=args.lr, epochs=args.epochs, batch_size=args.batch_size, grad_accum=args.grad_accum,
                           schedule=args.lr_schedule, warmup_steps=args.warmup_steps,
                           weight_decay=args.weight_decay, max_grad_norm=args.max_grad_norm,
                           max_length=args.max_length, sentences=args.sentences, pair_set=args.pair_set,
                           format=args.format, seed=args.seed, gradient_checkpointing=args.gradient_checkpointing)
    run_sft(args.pretrained, args.value.strip(), args.data_dir, args.out, settings, args.device, args.dtype,
            args.fresh, not args.no_progress, args.keep_checkpoints)
    return 0


def gate_check(args: argparse.Namespace) -> int:
    from steering_models.conva.gate_check import run_gate_check, separating_range, summarize

    values = [v.strip() for v in args.values.split(",") if v.strip()]
    table = run_gate_check(args.pretrained, args.artifacts, values, args.n, args.apply_chat_template, args.g0,
                           args.out, args.max_length, args.batch_size, args.device, args.offset)
    print(summarize(table).to_string(index=False))
    hi_unrelated, lo_related = separating_range(table)
    if hi_unrelated < lo_related:
        print(f"any g0 in ({hi_unrelated:.4f}, {lo_related:.4f}) opens the gate on every value-related prompt "
              "and on no unrelated one")
    else:
        print(f"no single g0 separates these prompts: an unrelated prompt has g = {hi_unrelated:.4f} >= "
              f"{lo_related:.4f}, the lowest g of a value-related one")
    print(f"wrote {args.out / 'gate_check.csv'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.cmd == "sft":
        from steering_models.conva.sft import SFTError

        try:
            return sft(args)
        except (SFTError, ConvaDataError, SpecError, FileNotFoundError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    if args.cmd == "gate-check":
        try:
            return gate_check(args)
        except (SpecError, FileNotFoundError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    values = [v.strip() for v in args.values.split(",") if v.strip()]
    try:
        gate_neg: str | None = args.gate_negatives
        if gate_neg == "auto":
            gate_neg = str(resolve_conva_dir(args.data_dir).parent / "mmlu")
        elif gate_neg == "none":
            gate_neg = None
        cache_dir = None
        if not args.no_cache:
            from lm_eval_tasks.resources import cache_root

            cache_dir = args.cache_dir or cache_root() / "conva-activations"
        settings = FitSettings(pooling=args.pooling, gate_pooling=args.gate_pooling, pairs=args.pairs,
                               pair_set=args.pair_set,
                               test_fraction=args.test_fraction, seed=args.seed, threshold=args.threshold,
                               exclude_last=args.exclude_last, c=args.c, batch_size=args.batch_size,
                               max_length=args.max_length, gate_negatives_n=args.gate_negatives_n,
                               gate_format=args.gate_format, gate_layers=args.gate_layers,
                               caa_layer=args.caa_layer, caa_strength=args.caa_strength,
                               min_pairs=args.min_pairs, g0=args.g0)
        written, errors = run_fit(args.pretrained, values, args.data_dir, args.out, settings, gate_neg,
                                  cache_dir, args.device, args.dtype, not args.no_unembed)
    except (ConvaDataError, SpecError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} value(s) to {args.out}" + (f"; {len(errors)} failed" if errors else ""))
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
