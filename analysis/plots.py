"""Figures (matplotlib, Agg backend; each written as PNG and SVG).

- ``plot_graphs``: value graphs side by side (Figure 3 / 5 / 6 / 7 style; transitive reductions shown),
- ``plot_expected_unexpected``: Figure 4 style bars, expected vs unexpected change, ours vs references,
- ``plot_sae_heatmap``: the SAE table (Table 1/4/5) as a heatmap of stimulated - suppressed with the
  train-test cosine in each cell and the noise ratio per value underneath.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.causal import ValueGraph  # noqa: E402


def save(fig: plt.Figure, out: Path, name: str) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"png": out / f"{name}.png", "svg": out / f"{name}.svg"}
    fig.savefig(paths["png"], dpi=110, bbox_inches="tight")
    fig.savefig(paths["svg"], bbox_inches="tight")
    plt.close(fig)
    return paths


def _wrap(name: str) -> str:
    return name.replace(" ", "\n") if len(name) > 10 else name


def plot_graphs(graphs: dict[str, ValueGraph], out: Path, name: str = "graphs", reduce: bool = True) -> dict[str, Path]:
    n = max(len(graphs), 1)
    fig, axes = plt.subplots(1, n, figsize=(6.5 * n, 6.5), squeeze=False)
    for ax, (title, graph) in zip(axes[0], graphs.items(), strict=False):
        g = nx.DiGraph()
        g.add_nodes_from(graph.nodes)
        g.add_edges_from(graph.reduced_edges() if reduce else graph.edges)
        pos = nx.circular_layout(graph.nodes)
        nx.draw_networkx_nodes(g, pos, ax=ax, node_size=900, node_color="#dbe9f6", edgecolors="#4a78a8")
        nx.draw_networkx_labels(g, pos, labels={v: _wrap(v) for v in g.nodes}, ax=ax, font_size=7)
        nx.draw_networkx_edges(g, pos, ax=ax, arrows=True, arrowsize=12, node_size=900,
                               connectionstyle="arc3,rad=0.08", edge_color="#555")
        shown = "transitive reduction" if reduce else "all edges"
        ax.set_title(f"{title}\n{len(graph.edges)} edges ({len(g.edges)} shown, {shown})", fontsize=10)
        ax.axis("off")
    return save(fig, out, name)


def plot_expected_unexpected(summary: pd.DataFrame, out: Path, name: str = "expected_unexpected") -> dict[str, Path]:
    """``summary``: rows with columns method, graph, kind (expected/unexpected), estimate, ci_low, ci_high."""
    methods = list(dict.fromkeys(summary["method"]))
    graphs = list(dict.fromkeys(summary["graph"]))
    fig, axes = plt.subplots(1, max(len(methods), 1), figsize=(5 * max(len(methods), 1), 4), squeeze=False)
    width = 0.8 / max(len(graphs), 1)
    for ax, method in zip(axes[0], methods, strict=False):
        sub = summary[summary["method"] == method]
        for k, graph in enumerate(graphs):
            rows = [sub[(sub["graph"] == graph) & (sub["kind"] == kind)] for kind in ("expected", "unexpected")]
            est = [float(r["estimate"].iloc[0]) if len(r) else math.nan for r in rows]
            lo = [float(r["ci_low"].iloc[0]) if len(r) else math.nan for r in rows]
            hi = [float(r["ci_high"].iloc[0]) if len(r) else math.nan for r in rows]
            x = np.arange(2) + (k - (len(graphs) - 1) / 2) * width
            err = np.array([[e - lo_ if not math.isnan(lo_) else 0 for e, lo_ in zip(est, lo, strict=True)],
                            [hi_ - e if not math.isnan(hi_) else 0 for e, hi_ in zip(est, hi, strict=True)]])
            ax.bar(x, est, width, label=graph, yerr=np.nan_to_num(err), capsize=3)
            for marker, model in (("x", "Gemma-2B-IT"), ("+", "Llama3-8B-IT")):
                col = f"paper {model}"
                if col in sub.columns:
                    paper = [float(r[col].iloc[0]) if len(r) else math.nan for r in rows]
                    ax.scatter(x, paper, marker=marker, color="black", zorder=3,
                               label=f"paper {model}" if k == 0 else None)
        ax.set_xticks(range(2), ["expected change", "unexpected change"])
        ax.set_ylim(0, 1)
        ax.set_ylabel("probability of change")
        ax.set_title(f"{method} steering")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)  # below: bars stay visible
    return save(fig, out, name)


def plot_sae_heatmap(table: pd.DataFrame, noise: pd.DataFrame, out: Path, name: str = "sae_heatmap") -> dict[str, Path]:
    """``table``: sae_table rows (counts); colour = train stimulated - suppressed share, text = cosine."""
    feats = list(dict.fromkeys(table["feature"].astype(str)))
    values = list(dict.fromkeys(table["value"]))
    grid = np.full((len(feats), len(values)), np.nan)
    text = [["" for _ in values] for _ in feats]
    for _, r in table.iterrows():
        i, j = feats.index(str(r["feature"])), values.index(r["value"])
        total = r["train_stimulated"] + r["train_suppressed"] + r["train_maintained"]
        if total:
            grid[i, j] = (r["train_stimulated"] - r["train_suppressed"]) / total
        text[i][j] = "" if pd.isna(r["cosine"]) else f"{r['cosine']:.2f}"
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(values), 1.5 + 0.4 * (len(feats) + 1)))
    im = ax.imshow(grid, cmap="coolwarm_r", vmin=-1, vmax=1, aspect="auto")
    for i in range(len(feats)):
        for j in range(len(values)):
            if text[i][j]:
                ax.text(j, i, text[i][j], ha="center", va="center", fontsize=7)
    nr = dict(zip(noise["value"], noise["noise_ratio"], strict=True))
    ax.set_xticks(range(len(values)), [f"{v} (noise {nr.get(v, math.nan):.2f})" for v in values],
                  fontsize=7, rotation=40, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(len(feats)), feats, fontsize=8)
    ax.set_ylabel("SAE feature / steering config")
    ax.set_title("stimulated − suppressed share of roles (train); numbers: train-test cosine", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.03)
    return save(fig, out, name)
