"""Value causal graphs with the PC algorithm (Kang et al. §2.1, §3.2; Figure 3).

``learn_graph(table)`` runs causal-learn's PC (Spirtes et al.) on the rows of a wide orientation
table (one row per (steering config, role); §3.2 uses the 101 train roles x 25 SAE features = 2,525
rows) at significance ``alpha`` (0.05 in the paper) with a selectable independence test:

- ``fisherz`` (default; partial correlations, what the paper's continuous orientations suit),
- ``chisq`` / ``gsq`` (discrete tests: each column's distinct orientations are its categories; a
  column with more than ``max_levels`` distinct values is cut into ``max_levels`` quantile bins),
- ``kci`` (kernel test; cubic in the rows, so at most ``kci_max_rows`` rows, sampled with a seed).

Columns that are constant or near-constant (one value in >= ``near_constant`` of the rows, or a
standard deviation <= 1e-9) are dropped before PC with a warning naming them: fisherz would divide
by zero and link them to everything. Dropped values stay in the graph as isolated nodes.

**Orienting what PC leaves undirected (our documented rule).** PC returns a CPDAG: directed edges
(v-structures + Meek rules), undirected edges (orientation not identifiable) and occasionally
bidirected edges (conflicting v-structures). We turn it into one DAG: take a topological order of
the directed part (ties and nodes inside a directed cycle broken by the table's column order, which
is Template 5's value order for our tables) and point every undirected or bidirected edge, and every
directed edge that closes a cycle, from the earlier to the later node. Edges PC oriented acyclically
keep PC's direction. ``graph.json`` lists which edges were oriented by this rule. With
``undirected="both"`` (the authors' released analysis, ``--preset kang2025``) every undirected or
bidirected edge is kept in both directions instead and PC's directed edges as PC gave them, so the
graph may hold 2-cycles; descendants are then reachability along any of these edges.

``transitive_reduction`` (networkx) gives the display graph of Figure 3: the fewest edges with the
same reachability (partial order); metrics always use the full graph.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from analysis.orientations import value_columns
from lm_eval_tasks.values import VALUES

INDEP_TESTS = ("fisherz", "chisq", "gsq", "kci")
MIN_ROWS = 5  # below this no conditional-independence test means anything


class NearConstantColumnWarning(UserWarning):
    """A value column was dropped before PC because it (almost) never varies."""


@dataclass
class ValueGraph:
    """A learned (or reference) value graph: a DAG over ``nodes``."""

    nodes: list[str]
    edges: list[tuple[str, str]]
    params: dict[str, Any] = field(default_factory=dict)
    pc_directed: list[tuple[str, str]] = field(default_factory=list)
    oriented_by_rule: list[tuple[str, str]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    def digraph(self) -> nx.DiGraph:
        g = nx.DiGraph()
        g.add_nodes_from(self.nodes)
        g.add_edges_from(self.edges)
        return g

    def reduced_edges(self) -> list[tuple[str, str]]:
        return reduced_edges(self.digraph())

    def to_json(self) -> dict[str, Any]:
        return {
            "nodes": self.nodes,
            "edges": [list(e) for e in self.edges],
            "reduced_edges": [list(e) for e in self.reduced_edges()],
            "pc_directed_edges": [list(e) for e in self.pc_directed],
            "oriented_by_rule": [list(e) for e in self.oriented_by_rule],
            "dropped_columns": self.dropped,
            "params": self.params,
        }


def reduced_edges(g: nx.DiGraph) -> list[tuple[str, str]]:
    """Transitive reduction for display (Figure 3); a graph with cycles is shown unreduced."""
    if not nx.is_directed_acyclic_graph(g):
        return sorted(g.edges())
    red = nx.transitive_reduction(g)
    return sorted(red.edges())


def near_constant_columns(data: pd.DataFrame, near_constant: float = 0.99) -> list[str]:
    out = []
    for col in data.columns:
        x = data[col].to_numpy(dtype=float)
        if len(x) == 0:
            out.append(col)
            continue
        share = pd.Series(x).value_counts(normalize=True).iloc[0]
        if np.nanstd(x) <= 1e-9 or share >= near_constant:
            out.append(col)
    return out


def _discretize(x: np.ndarray, max_levels: int) -> np.ndarray:
    levels, codes = np.unique(x, return_inverse=True)
    if len(levels) <= max_levels:
        return codes.astype(float)
    ranks = pd.Series(x).rank(method="average").to_numpy()
    return np.minimum((ranks - 1) * max_levels // len(x), max_levels - 1).astype(float)


def learn_graph(table: pd.DataFrame, alpha: float = 0.05, indep_test: str = "fisherz",
                values: list[str] | None = None, near_constant: float = 0.99, max_levels: int = 5,
                kci_max_rows: int = 400, seed: int = 0, stable: bool = True,
                undirected: str = "orient") -> ValueGraph:
    """PC on the value columns of a wide orientation table; see the module docstring."""
    from causallearn.search.ConstraintBased.PC import pc

    if indep_test not in INDEP_TESTS:
        raise ValueError(f"independence test {indep_test!r} is not supported; use one of {list(INDEP_TESTS)}.")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha} must be in (0, 1), e.g. 0.05 as in Kang et al. §3.2.")
    if undirected not in ("orient", "both"):
        raise ValueError(f"undirected={undirected!r}; use 'orient' (our rule) or 'both' (both directions).")
    values = values or value_columns(table)
    if len(values) < 2:
        raise ValueError(f"the orientation table has value columns {values}; PC needs at least two.")
    data = table[values].astype(float)
    n_before = len(data)
    data = data.dropna(axis=0, how="any")
    if len(data) < MIN_ROWS:
        raise ValueError(f"only {len(data)} of {n_before} rows have an orientation for every value; PC needs "
                         "more rows (add roles / configs, or check for unscored values).")
    dropped = near_constant_columns(data, near_constant)
    for col in dropped:
        warnings.warn(f"value column {col!r} is constant or near-constant (one value in >= {near_constant:.0%} "
                      "of rows); dropped before PC and kept as an isolated node.", NearConstantColumnWarning,
                      stacklevel=2)
    kept = [v for v in values if v not in dropped]
    params: dict[str, Any] = {"algorithm": "PC (causal-learn)", "alpha": alpha, "indep_test": indep_test,
                              "stable": stable, "rows": int(len(data)), "rows_with_nan_dropped": n_before - len(data),
                              "near_constant_share": near_constant, "orientation_rule": "topological order of "
                              "PC's directed part, ties by column order (analysis.causal docstring)"
                              if undirected == "orient" else "undirected/bidirected edges in both directions"}
    if len(kept) < 2:
        return ValueGraph(nodes=list(values), edges=[], params=params, dropped=dropped)
    x = data[kept].to_numpy()
    if indep_test in ("chisq", "gsq"):
        x = np.column_stack([_discretize(x[:, j], max_levels) for j in range(x.shape[1])])
        params["max_levels"] = max_levels
    if indep_test == "kci" and len(x) > kci_max_rows:
        rng = np.random.default_rng(seed)
        x = x[np.sort(rng.choice(len(x), kci_max_rows, replace=False))]
        params["kci_rows_sampled"] = kci_max_rows
        warnings.warn(f"kci is cubic in the rows: PC ran on {kci_max_rows} of {len(data)} rows "
                      f"(seed {seed}); raise kci_max_rows to use more.", stacklevel=2)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            cg = pc(x, alpha=alpha, indep_test=indep_test, stable=stable, show_progress=False, node_names=kept)
        except ValueError as exc:  # e.g. fisherz on a singular correlation matrix (too few rows)
            raise ValueError(f"PC ({indep_test}) failed on the {x.shape[0]} x {x.shape[1]} orientation table: {exc} "
                             "More rows (roles x steering configs) are needed, or try --indep-test chisq.") from exc
    params["seconds"] = round(time.perf_counter() - t0, 3)
    directed, other = cpdag_edges(cg.G.graph, kept)
    if undirected == "both":
        edges, by_rule = sorted(set(directed) | {e for a, b in other for e in ((a, b), (b, a))}), []
    else:
        edges, by_rule = orient(kept, directed, other)
    return ValueGraph(nodes=list(values), edges=edges, params=params, pc_directed=sorted(directed),
                      oriented_by_rule=by_rule, dropped=dropped)


def cpdag_edges(graph: np.ndarray, names: list[str]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(directed, undirected-or-bidirected) edges of causal-learn's graph matrix.

    causal-learn: ``G[j, i] == 1 and G[i, j] == -1`` is i -> j; both -1 is i -- j; both 1 is i <-> j.
    """
    directed, other = [], []
    n = len(names)
    for i in range(n):
        for j in range(i + 1, n):
            a, b = graph[i, j], graph[j, i]
            if a == 0 and b == 0:
                continue
            if a == -1 and b == 1:
                directed.append((names[i], names[j]))
            elif a == 1 and b == -1:
                directed.append((names[j], names[i]))
            else:
                other.append((names[i], names[j]))
    return directed, other


def orient(order: list[str], directed: list[tuple[str, str]],
           undirected: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """One DAG from a CPDAG by the rule in the module docstring; returns (edges, edges set by the rule)."""
    rank = {v: i for i, v in enumerate(order)}
    g = nx.DiGraph()
    g.add_nodes_from(order)
    g.add_edges_from(directed)
    cond = nx.condensation(g)
    comp_order = list(nx.lexicographical_topological_sort(
        cond, key=lambda c: min(rank[v] for v in cond.nodes[c]["members"])))
    position: dict[str, int] = {}
    for c in comp_order:
        for v in sorted(cond.nodes[c]["members"], key=rank.__getitem__):
            position[v] = len(position)
    edges, by_rule = [], []
    for a, b in directed:
        if position[a] < position[b]:
            edges.append((a, b))
        else:  # closes a directed cycle
            edges.append((b, a))
            by_rule.append((b, a))
    for a, b in undirected:
        e = (a, b) if position[a] < position[b] else (b, a)
        edges.append(e)
        by_rule.append(e)
    return sorted(set(edges)), sorted(set(by_rule))


def skeleton_f1(learned: list[tuple[str, str]], truth: list[tuple[str, str]]) -> float:
    """F1 of the undirected skeletons of two edge lists."""
    a = {frozenset(e) for e in learned}
    b = {frozenset(e) for e in truth}
    if not a and not b:
        return 1.0
    tp = len(a & b)
    if tp == 0:
        return 0.0
    precision, recall = tp / len(a), tp / len(b)
    return 2 * precision * recall / (precision + recall)


def load_graph_json(path: str | Path) -> ValueGraph:
    """A graph written by ``python -m analysis graph`` (its ``edges``, before reduction)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"graph file {path} does not exist; write one with "
                                "`python -m analysis graph ... --out DIR` (DIR/graph.json).")
    data = json.loads(path.read_text())
    if "edges" not in data:
        raise ValueError(f"{path} has no 'edges' list; pass the graph.json written by `python -m analysis graph`.")
    nodes = data.get("nodes") or list(VALUES)
    return ValueGraph(nodes=list(nodes), edges=[(a, b) for a, b in data["edges"]], params=data.get("params", {}),
                      dropped=data.get("dropped_columns", []))


def pc_rows(table: pd.DataFrame, all_rows: bool = False, mode: str | None = None,
            features: tuple[str, ...] | list[str] | None = None) -> tuple[pd.DataFrame, str]:
    """The rows PC learns from (``mode``; ``all_rows`` = ``mode="all"``).

    ``steered`` (default): Kang et al. §3.2: "the value orientations from all 101 training roles (including
    an empty role) across 25 SAE steering features, totaling 2,525 data entries", i.e. the rows under
    steering configs (explicit-instruction configs aside; only the ``features`` when given); a table with
    no steered row uses every row. ``unsteered+features``: the unsteered rows plus the rows under one of
    ``features`` (the authors' released analysis). ``all``: every row."""
    mode = "all" if all_rows else (mode or "steered")
    dims = table["steer_dim"].fillna("").astype(str) if "steer_dim" in table.columns else pd.Series("", index=table.index)
    steered = (dims != "") & ~dims.str.startswith("explicit:")
    if features is not None:
        unknown = sorted(set(features) - set(dims))
        if unknown:
            raise ValueError(f"feature(s) {unknown[:5]} of --features are not steer_dims of the PC table; "
                             "fix the features file.")
        steered &= dims.isin(list(features))
    if mode == "unsteered+features":
        if features is None:
            raise ValueError("--pc-rows unsteered+features needs --features FILE (the kept features).")
        keep = steered | (dims == "")
        return table[keep].reset_index(drop=True), (f"the {int(keep.sum())} rows unsteered or under one of the "
                                                    f"{len(features)} features (kang2025)")
    if mode == "all" or not steered.any():
        return table, f"all {len(table)} rows"
    if mode != "steered":
        raise ValueError(f"--pc-rows {mode!r}; use steered, unsteered+features or all.")
    return table[steered].reset_index(drop=True), f"the {int(steered.sum())} rows under steering configs (Kang et al. §3.2)"
