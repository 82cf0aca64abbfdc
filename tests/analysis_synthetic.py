"""Synthetic orientation tables generated from a known DAG over the 17 values (for the analysis tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lm_eval_tasks.values import VALUES as ALL_VALUES

VALUES = list(ALL_VALUES)


def random_dag(seed: int, p: float = 0.15) -> list[tuple[str, str]]:
    """Edges i -> j (i < j in Template 5's order), each present with probability p."""
    rng = np.random.default_rng(seed)
    return [(VALUES[i], VALUES[j]) for j in range(len(VALUES)) for i in range(j) if rng.random() < p]


def _latent(edges: list[tuple[str, str]], n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    x: dict[str, np.ndarray] = {}
    for v in VALUES:  # topological: parents come earlier in VALUES
        col = rng.normal(size=n)
        for a, b in edges:
            if b == v:
                col = col + rng.choice([-1.0, 1.0]) * rng.uniform(0.6, 1.0) * x[a]
        x[v] = col / col.std()
    return x


def gaussian_table(edges: list[tuple[str, str]], n: int = 2525, seed: int = 0) -> pd.DataFrame:
    """Linear-Gaussian SEM, squashed into [-1, 1] like orientations (monotone, so the skeleton stays)."""
    rng = np.random.default_rng(seed)
    x = _latent(edges, n, rng)
    df = pd.DataFrame({v: np.clip(x[v] / 4, -1, 1) for v in VALUES})
    return _frame(df)


def discrete_table(edges: list[tuple[str, str]], n: int = 2525, items: int = 8, seed: int = 0) -> pd.DataFrame:
    """Each orientation is the mean of ``items`` +1/-1 answers drawn with P(+1) = sigmoid(2 * latent)."""
    rng = np.random.default_rng(seed)
    x = _latent(edges, n, rng)
    cols = {}
    for v in VALUES:
        p = 1 / (1 + np.exp(-2 * x[v]))
        cols[v] = (2 * rng.binomial(items, p) - items) / items
    return _frame(pd.DataFrame(cols))


def _frame(df: pd.DataFrame) -> pd.DataFrame:
    n = len(df)
    df.insert(0, "player_name", [f"role{i % 101}" for i in range(n)])
    df.insert(0, "steer_dim", [str(i // 101) for i in range(n)])
    return df
