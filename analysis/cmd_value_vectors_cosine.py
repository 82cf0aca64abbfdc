"""`value-vectors-cosine`: cosine similarity of the value vectors, one heatmap per layer (ConVA Appx F).

Reads the artifacts written by `python -m steering_models.conva fit --out DIR`; writes
``value_vectors_cosine.csv`` (layer, value_a, value_b, cosine) and ``value_vectors_cosine.png``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd

HELP = "cosine-similarity heatmaps of ConVA value vectors per layer (CSV + PNG), from artifact files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--artifacts", required=True, type=Path, help="folder written by conva fit --out")
    parser.add_argument("--values", default=None, help="comma-separated values (default: every artifact)")
    parser.add_argument("--layers", default="all", help="all, selected (union of selected layers), or 3,5,7")
    parser.add_argument("--out", required=True, type=Path)


def cosine_table(arts: list) -> pd.DataFrame:
    rows = []
    n_layers = arts[0].n_layers
    for layer in range(n_layers):
        for a in arts:
            for b in arts:
                va, vb = a.tensors["v"][layer].double(), b.tensors["v"][layer].double()
                cos = float(va @ vb / (va.norm() * vb.norm()))
                rows.append({"layer": layer, "value_a": a.value, "value_b": b.value, "cosine": cos})
    return pd.DataFrame(rows)


def run(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis.conva_artifacts import load_folder

    arts = load_folder(args.artifacts, args.values.split(",") if args.values else None)
    table = cosine_table(arts)
    if args.layers == "selected":
        layers = sorted({x for a in arts for x in a.layers})
    elif args.layers == "all":
        layers = list(range(arts[0].n_layers))
    else:
        layers = [int(x) for x in args.layers.split(",")]
    table = table[table["layer"].isin(layers)]
    args.out.mkdir(parents=True, exist_ok=True)
    csv_path = args.out / "value_vectors_cosine.csv"
    table.to_csv(csv_path, index=False)
    names = [a.value for a in arts]
    cols = min(4, len(layers))
    rows = math.ceil(len(layers) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    for ax, layer in zip(axes.flat, layers, strict=False):
        mat = table[table["layer"] == layer].pivot(index="value_a", columns="value_b", values="cosine")
        mat = mat.loc[names, names]
        im = ax.imshow(mat.values, vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_title(f"layer {layer}", fontsize=9)
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
        ax.set_yticks(range(len(names)), names, fontsize=6)
    for ax in list(axes.flat)[len(layers):]:
        ax.axis("off")
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.6)
    png_path = args.out / "value_vectors_cosine.png"
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    print(f"wrote {csv_path} and {png_path} ({len(names)} values, {len(layers)} layers)")
    return 0
