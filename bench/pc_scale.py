"""PC time on orientation tables: the paper's size (2,525 rows x 17 values, Kang et al. §3.2) and how
it grows with rows and with values (prints figures, not a test). Target: < 5 s at 2,525 x 17.

The tables are synthetic orientation tables from a random DAG (tests/analysis_synthetic.py's
generator: linear-Gaussian SEM squashed into [-1, 1], and means of 8 +-1 items for the discrete
tests). Each figure is the median of ``--repeats`` runs of ``analysis.causal.learn_graph``.

    python bench/pc_scale.py [--repeats 3] [--tests fisherz,chisq]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from analysis_synthetic import VALUES, discrete_table, gaussian_table, random_dag  # noqa: E402

from analysis.causal import learn_graph, skeleton_f1  # noqa: E402

TARGET_S = 5.0


def _more_values(table: pd.DataFrame, n_values: int, seed: int) -> pd.DataFrame:
    """Widen a table past 17 values with noisy copies-plus-noise of existing columns (fake value names)."""
    rng = np.random.default_rng(seed)
    out = table.copy()
    for k in range(n_values - len(VALUES)):
        src = VALUES[k % len(VALUES)]
        out[f"Extra {k}"] = np.clip(0.5 * out[src] + rng.normal(0, 0.3, len(out)), -1, 1)
    return out


def timed(table: pd.DataFrame, test: str, repeats: int, values: list[str] | None = None) -> tuple[float, object]:
    times, graph = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = learn_graph(table, indep_test=test, values=values)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), graph


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tests", default="fisherz,chisq")
    args = ap.parse_args()
    tests = args.tests.split(",")
    print(f"# PC scale ({platform.processor() or platform.machine()}, python {platform.python_version()})")
    truth = random_dag(0)
    timed(gaussian_table(truth, 200, 0), "fisherz", 1)  # warm-up: imports and first-call costs
    headline = {}
    print("\n## paper size: 2,525 rows x 17 values")
    for test in tests:
        table = gaussian_table(truth, 2525, 0) if test == "fisherz" else discrete_table(truth, 2525, seed=0)
        s, g = timed(table, test, args.repeats)
        headline[test] = s
        print(f"{test:8s} {s:7.3f} s  edges {len(g.edges):3d}  skeleton F1 {skeleton_f1(g.edges, truth):.2f}  "
              f"({'OK' if s < TARGET_S else 'OVER'} target {TARGET_S} s)")
    print("\n## growth with rows (17 values)")
    print("rows    " + "  ".join(f"{t:>9s}" for t in tests))
    for n in (500, 1000, 2525, 5000, 10000):
        row = []
        for test in tests:
            table = gaussian_table(truth, n, 0) if test == "fisherz" else discrete_table(truth, n, seed=0)
            row.append(timed(table, test, args.repeats)[0])
        print(f"{n:6d}  " + "  ".join(f"{s:8.3f}s" for s in row))
    print("\n## growth with values (2,525 rows)")
    print("values  " + "  ".join(f"{t:>9s}" for t in tests))
    for nv in (8, 17, 25, 34):
        row = []
        for test in tests:
            base = gaussian_table(truth, 2525, 0) if test == "fisherz" else discrete_table(truth, 2525, seed=0)
            table = _more_values(base, nv, 1) if nv > len(VALUES) else base
            cols = [c for c in table.columns if c not in ("steer_dim", "player_name")][:nv]
            row.append(timed(table, test, args.repeats, values=cols)[0])
        print(f"{nv:6d}  " + "  ".join(f"{s:8.3f}s" for s in row))
    worst = max(headline.values())
    print(f"\nbaseline: PC at 2,525 x 17 takes {worst:.2f} s at worst (target < {TARGET_S} s).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
