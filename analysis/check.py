"""Regression check of a run against a baseline (``python -m analysis check``), for CI.

A metric regresses when it moves past its tolerance in the bad direction: down for metrics where
higher is better (acc, csr, fr, ...: lm-eval's ``higher_is_better`` of the run, or our list), and in
either direction for everything else (orientations are not better or worse, a shift is a change).
A metric present in the baseline but missing from the run is a regression too. NaN == NaN passes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.io import Run, find_runs
from analysis.leaderboard import HIGHER_IS_BETTER, run_metrics


@dataclass
class Finding:
    metric: str
    old: float
    new: float
    tolerance: float
    direction: str  # "higher" or "both"

    def message(self) -> str:
        if math.isnan(self.new) and not math.isnan(self.old):
            return f"{self.metric}: missing or NaN in the run (baseline {self.old:.4g})"
        what = "dropped" if self.direction == "higher" else "moved"
        return (f"{self.metric}: {what} from {self.old:.4g} to {self.new:.4g} "
                f"(change {self.new - self.old:+.4g}, tolerance {self.tolerance:g})")


def load_baseline(path: str | Path, column: str | None = None) -> dict[str, float]:
    """Baseline metrics from: an lm-eval output folder / results JSON, a JSON ``{metric: value}``
    (or ``{"metrics": {...}}``), or a ``leaderboard.csv`` (``column`` = the run column to use)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"baseline {path} does not exist; pass a leaderboard.csv, a metrics JSON "
                                "or an lm-eval output folder.")
    if path.is_dir() or path.name.startswith("results_"):
        runs = find_runs([path])
        if len(runs) != 1:
            raise ValueError(f"baseline {path} holds {len(runs)} runs; pass one run's folder or results_*.json.")
        return run_metrics(runs[0])
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        data = data.get("metrics", data)
        return {str(k): float(v) for k, v in data.items()}
    if path.suffix == ".csv":
        table = pd.read_csv(path)
        if "metric" not in table.columns:
            raise ValueError(f"baseline {path} has no 'metric' column; pass a leaderboard.csv written by "
                             "`python -m analysis leaderboard --out DIR`.")
        runs = [c for c in table.columns if c != "metric" and not str(c).startswith("Δ")]
        if column is None:
            if len(runs) != 1:
                raise ValueError(f"baseline {path} has run columns {runs}; pick one with --baseline-run.")
            column = runs[0]
        if column not in runs:
            raise ValueError(f"--baseline-run {column!r} is not a column of {path}; choose one of {runs}.")
        return {m: float(v) for m, v in zip(table["metric"], table[column], strict=True)}
    raise ValueError(f"baseline {path} is neither a folder, a .json nor a .csv; pass a leaderboard.csv, "
                     "a metrics JSON or an lm-eval output folder.")


def parse_tolerances(items: list[str]) -> tuple[float, dict[str, float]]:
    """``["0.05", "acc=0.01", "orientation=0.1"]`` -> (default, {suffix: tol}); a key matches a metric id
    exactly or as its last ``/``-part (the metric name)."""
    default, per = 0.0, {}
    for item in items:
        key, sep, val = item.rpartition("=")
        try:
            tol = float(val)
        except ValueError:
            raise ValueError(f"--tolerance {item!r}: expected a number or METRIC=NUMBER, e.g. 0.05 or acc=0.01.") from None
        if tol < 0:
            raise ValueError(f"--tolerance {item!r}: a tolerance must be >= 0.")
        if sep:
            per[key] = tol
        else:
            default = tol
    return default, per


def _direction(metric: str, higher_is_better: set[str]) -> str:
    name = metric.rsplit("/", 1)[-1].split(",")[0]
    return "higher" if name in HIGHER_IS_BETTER or name in higher_is_better else "both"


def check(run: Run, baseline: dict[str, float], default_tol: float, per_tol: dict[str, float],
          metrics: list[str] | None = None) -> list[Finding]:
    new = run_metrics(run)
    hib = {k.split(",")[0] for t in run.results.get("higher_is_better", {}).values() for k, v in t.items() if v}
    hib -= {"orientation", "orientation_soft", "orientation_inclined", "orientation_disinclined", "orientation_none"}
    findings = []
    for metric, old in baseline.items():
        if metrics and not any(metric == m or metric.endswith("/" + m) for m in metrics):
            continue
        tol = per_tol.get(metric, per_tol.get(metric.rsplit("/", 1)[-1], default_tol))
        value = new.get(metric, math.nan)
        direction = _direction(metric, hib)
        if math.isnan(old) and math.isnan(value):
            continue
        if math.isnan(value) or math.isnan(old):
            findings.append(Finding(metric, old, value, tol, direction))
            continue
        delta = value - old
        bad = -delta > tol if direction == "higher" else abs(delta) > tol
        if bad:
            findings.append(Finding(metric, old, value, tol, direction))
    return findings
