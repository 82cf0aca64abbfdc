"""`logit-lens`: decode each value vector to its top tokens through the unembedding (ConVA Table 3).

logits = W_U · (norm_scale ⊙ v_l): the value vector at layer l, scaled by the final RMSNorm's weight
(its 1/rms factor does not change the ranking), times the unembedding matrix. ``fit`` saves ``W_U``
(float16) and ``norm_scale`` in ``unembed.safetensors`` and the decoded tokens in ``vocab.json`` in its
``--out`` folder, so no language model is loaded here. Default layer: the last one (the paper decodes
layer 31 of Llama-3-8B-Instruct's 32). Writes ``logit_lens_layer<L>.csv`` (value, layer, rank, token_id, token,
logit).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import torch

HELP = "top tokens of each ConVA value vector through the unembedding (CSV), from files written by conva fit"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--artifacts", required=True, type=Path, help="folder written by conva fit --out")
    parser.add_argument("--values", default=None, help="comma-separated values (default: every artifact)")
    parser.add_argument("--layer", type=int, default=-1, help="block index; negative counts from the end (default -1)")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--unembed", type=Path, default=None,
                        help="unembed.safetensors (default: the one in --artifacts); vocab.json beside it")
    parser.add_argument("--out", required=True, type=Path)


def top_tokens(v: torch.Tensor, w_u: torch.Tensor, scale: torch.Tensor, k: int) -> tuple[list[int], list[float]]:
    logits = w_u.float() @ (scale.float() * v.float())
    top = torch.topk(logits, k)
    return top.indices.tolist(), top.values.tolist()


def run(args: argparse.Namespace) -> int:
    from safetensors.torch import load_file

    from analysis.conva_artifacts import load_folder

    arts = load_folder(args.artifacts, args.values.split(",") if args.values else None)
    unembed_path = args.unembed or args.artifacts / "unembed.safetensors"
    vocab_path = unembed_path.with_name("vocab.json")
    if not unembed_path.is_file() or not vocab_path.is_file():
        raise SystemExit(f"error: {unembed_path} or {vocab_path} is missing; `conva fit` writes them unless "
                         "--no-unembed. Refit, or pass --unembed.")
    tensors = load_file(str(unembed_path))
    vocab = json.loads(vocab_path.read_text())
    w_u, scale, tokens = tensors["W_U"], tensors["norm_scale"], vocab["tokens"]
    if w_u.shape[1] != arts[0].d_model or len(tokens) != w_u.shape[0]:
        raise SystemExit(f"error: {unembed_path} is [{w_u.shape[0]}, {w_u.shape[1]}] with {len(tokens)} tokens, "
                         f"but the artifacts have d_model={arts[0].d_model}: it belongs to another model. "
                         "Use the unembedding written by the same fit.")
    n_layers = arts[0].n_layers
    layer = args.layer if args.layer >= 0 else n_layers + args.layer
    if not 0 <= layer < n_layers:
        raise SystemExit(f"error: --layer {args.layer} is out of range for {n_layers} layers.")
    rows = []
    for art in arts:
        ids, logits = top_tokens(art.tensors["v"][layer], w_u, scale, args.top)
        for rank, (i, lg) in enumerate(zip(ids, logits, strict=True), start=1):
            rows.append({"value": art.value, "layer": layer, "rank": rank, "token_id": i, "token": tokens[i],
                         "logit": lg})
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"logit_lens_layer{layer}.csv"
    table = pd.DataFrame(rows)
    table.to_csv(path, index=False)
    for value, group in table.groupby("value", sort=False):
        print(f"{value:>15} (layer {layer}): " + ", ".join(repr(t) for t in group["token"]))
    print(f"wrote {path}")
    return 0
