"""``python -m steering_models.sae``: train an SAE, re-measure its quality, find the features at a text."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lm_eval_tasks.resources import cache_root


def _train(args: argparse.Namespace) -> int:
    from steering_models.sae.train import TrainSettings, train_sae

    s = TrainSettings(layer=args.layer, d_sae=args.d_sae, k=args.k, context_size=args.context_size,
                      train_tokens=args.train_tokens, heldout_tokens=args.heldout_tokens, epochs=args.epochs,
                      batch_size=args.batch_size, lr=args.lr, seed=args.seed, dtype=args.dtype,
                      n_prompts=args.n_prompts,
                      aux_loss_coefficient=args.aux_loss_coefficient)
    q = train_sae(args.pretrained, Path(args.data_dir), Path(args.out), s, Path(args.cache_dir))
    print(json.dumps(q, indent=2))
    print(f"SAE written to {args.out} (sae-lens format; quality.json, training.json beside it)")
    return 0


def _quality(args: argparse.Namespace) -> int:
    from steering_models.sae.ref import SAERef
    from steering_models.sae.train import QUALITY_FILE, remeasure

    sae_dir = SAERef.from_value(args.sae, "quality --sae", Path.cwd()).path
    q = remeasure(sae_dir, args.pretrained, Path(args.data_dir))
    recorded = json.loads((sae_dir / QUALITY_FILE).read_text())
    for key in ("explained_variance", "l0", "dead_fraction"):
        print(f"{key:20s} recorded {recorded[key]:.4f}   measured now {q[key]:.4f}")
    return 0


def _top_features(args: argparse.Namespace) -> int:
    from lm_eval_tasks.valuebench.data import load_items
    from lm_eval_tasks.valuebench.prompts import render_prompt
    from steering_models.model_helpers import load_lm
    from steering_models.sae import top_features as tf
    from steering_models.sae.ref import SAERef

    ref = SAERef.from_value(_sae_value(args.sae), "top-features --sae", Path.cwd())
    if args.k < 1:
        raise SystemExit(f"--k {args.k} must be a positive number of features. Fix --k.")
    prompt = args.prompt or render_prompt(load_items()[0].question)  # the prompt without a role
    sae = ref.load()
    layer = args.layer if args.layer is not None else tf.sae_layer(sae)
    model, tokenizer, _ = load_lm(args.pretrained)
    result = tf.top_features(model, tokenizer, sae, layer, prompt, args.text, args.k)
    result["sae"] = ref.to_value() if ref.path is None else str(ref.path)
    result["pretrained"] = args.pretrained
    if args.interpret_tokens > 0 and Path(args.data_dir).is_dir():
        from steering_models.sae.train import TrainSettings, heldout_windows

        windows = heldout_windows(tokenizer, Path(args.data_dir), TrainSettings(heldout_tokens=args.interpret_tokens))
        examples = tf.interpret(model, tokenizer, sae, layer, windows, [f["feature"] for f in result["features"]])
        for f in result["features"]:
            f["top_contexts"] = examples[f["feature"]]
        result["interpretation"] = f"top held-out corpus tokens of {args.data_dir} ({windows.numel()} tokens)"
    out = tf.write(result, Path(args.out))
    for f in result["features"]:
        hint = ", ".join(repr(c["token"]) for c in f.get("top_contexts", [])[:3])
        print(f"feature {f['feature']:6d}  max act at {args.text!r}: {f['activation']:8.3f}  {hint}")
    print(f"top {len(result['features'])} features written to {out}")
    return 0


def _sae_value(text: str) -> object:
    """``--sae``: a folder, ``default``, or ``RELEASE:SAE_ID`` (a sae-lens release, needs a hub)."""
    if ":" in text and not Path(text).exists():
        release, sae_id = text.split(":", 1)
        return {"release": release, "sae_id": sae_id}
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m steering_models.sae", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    default_data = str(Path("..") / "shared" / "data")

    t = sub.add_parser("train", help="train a TopK SAE with sae-lens on a local corpus (no download)")
    t.add_argument("--pretrained", default="default")
    t.add_argument("--data-dir", default=default_data, help="folder with valuebench/ and corpus/")
    t.add_argument("--out", required=True)
    t.add_argument("--cache-dir", default=str(cache_root() / "sae-activations"))
    t.add_argument("--layer", type=int, default=12)
    t.add_argument("--d-sae", type=int, default=4096)
    t.add_argument("--k", type=int, default=64)
    t.add_argument("--context-size", type=int, default=256)
    t.add_argument("--train-tokens", type=int, default=250_000)
    t.add_argument("--heldout-tokens", type=int, default=16_384)
    t.add_argument("--n-prompts", type=int, default=400)
    t.add_argument("--epochs", type=float, default=8.0)
    t.add_argument("--batch-size", type=int, default=4096)
    t.add_argument("--lr", type=float, default=8e-4)
    t.add_argument("--aux-loss-coefficient", type=float, default=1.0, help="AuxK loss weight (dead features)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--dtype", default="float16")
    t.set_defaults(fn=_train)

    q = sub.add_parser("quality", help="re-measure a saved SAE on its held-out text")
    q.add_argument("--sae", default="default")
    q.add_argument("--pretrained", default="default")
    q.add_argument("--data-dir", default=default_data)
    q.set_defaults(fn=_quality)

    f = sub.add_parser("top-features", help="the SAE features most active at a text of the questionnaire prompt")
    f.add_argument("--pretrained", default="default")
    f.add_argument("--sae", default="default", help="an SAE folder, `default`, or RELEASE:SAE_ID (hub)")
    f.add_argument("--layer", type=int, default=None, help="default: the block in the SAE's hook name")
    f.add_argument("--text", default="your values")
    f.add_argument("--k", type=int, default=25)
    f.add_argument("--prompt", default=None, help="default: Kang et al.'s questionnaire prompt without a role")
    f.add_argument("--out", required=True, help="JSON file (the sweep's `features:` reads it)")
    f.add_argument("--data-dir", default=default_data, help="corpus for the top-token interpretation")
    f.add_argument("--interpret-tokens", type=int, default=16_384, help="0 = no interpretation")
    f.set_defaults(fn=_top_features)

    args = parser.parse_args(argv)
    try:
        return int(args.fn(args))
    except (ValueError, FileNotFoundError) as e:  # bad input: the one-sentence message, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
