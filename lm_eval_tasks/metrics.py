"""Aggregations shared by the tasks: scores that could not be judged are NaN and left out."""

from __future__ import annotations

import math
from collections.abc import Sequence


def nanmean(values: Sequence[float]) -> float:
    """Mean over scored samples (NaN = unscored is left out); NaN if nothing was scored.

    Registered per task as a ``!function`` aggregation (not lm-eval's ``nanmean``, which lm-eval
    bootstraps 100k times for its stderr)."""
    kept = [float(v) for v in values if not math.isnan(float(v))]
    return sum(kept) / len(kept) if kept else float("nan")


def total(values: Sequence[float]) -> float:
    """Sum, e.g. of the per-sample ``n_scored`` flags: how many samples were scored."""
    return float(sum(values))
