"""Orientation figures of a sweep (matplotlib, Agg; PNG + SVG through ``analysis.plots.save``).

- ``plot_orientation_bars``: per value, the orientation unsteered and under each config (mean over the
  roles both have), one bar each: where a config pushes each value;
- ``plot_dose_response``: per series (an SAE feature or a vector run at several strengths), the mean
  |orientation shift| and the number of values changed against the strength (0 = unsteered).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.plots import save  # noqa: E402

MAX_CONFIGS = 8


def plot_orientation_bars(shifts: pd.DataFrame, configs: list[str], out: Path,
                          name: str = "orientation_bars") -> dict[str, Path]:
    """``shifts``: ``analysis.shifts.orientation_shifts`` rows; ``configs``: the configs to draw (the first
    ``MAX_CONFIGS``), each beside the unsteered orientation of the same roles."""
    configs = configs[:MAX_CONFIGS]
    values = list(dict.fromkeys(shifts["value"]))
    sub = shifts[shifts["steer_dim"].isin(configs)]
    base = sub.drop_duplicates(["player_name", "value"]).groupby("value")["unsteered"].mean().reindex(values)
    steered = sub.pivot_table(index="value", columns="steer_dim", values="steered", aggfunc="mean").reindex(values)
    n = 1 + len(configs)
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(min(16.0, max(10.0, 0.25 * len(values) * n)), 4.8))
    x = np.arange(len(values))
    ax.bar(x - 0.4 + width / 2, base.to_numpy(float), width, label="unsteered", color="#9a9a9a")
    colours = plt.get_cmap("tab10")
    for k, config in enumerate(configs, start=1):
        col = steered[config] if config in steered.columns else pd.Series(np.nan, index=values)
        ax.bar(x - 0.4 + width / 2 + k * width, col.to_numpy(float), width, label=config, color=colours((k - 1) % 10))
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(x, values, rotation=40, ha="right", rotation_mode="anchor", fontsize=8)
    ax.set_ylim(-1.05, 1.05)
    ax.set_ylabel("orientation (mean item score)")
    roles = sub["player_name"].nunique()
    ax.set_title(f"Per-value orientation, unsteered vs each config (mean over {roles} role{'s' * (roles != 1)})",
                 fontsize=10)
    ax.legend(fontsize=7, ncol=min(n, 5), loc="upper center", bbox_to_anchor=(0.5, -0.32))
    return save(fig, out, name)


def plot_dose_response(points: pd.DataFrame, out: Path, name: str = "dose_response") -> dict[str, Path]:
    """``points``: ``analysis.shifts.dose_response`` rows (series, amount, mean_abs_shift, values_changed)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for series, rows in points.groupby("series", sort=False):
        rows = rows.sort_values("amount")
        axes[0].plot(rows["amount"], rows["mean_abs_shift"], marker="o", label=series)
        axes[1].plot(rows["amount"], rows["values_changed"], marker="o", label=series)
    axes[0].set_ylabel("mean |orientation shift| over values and roles")
    axes[1].set_ylabel("values changed per role (of 17)")
    for ax in axes:
        ax.set_xlabel("steering strength (0 = unsteered)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Dose-response: how much each steering direction moves the orientations", fontsize=10)
    return save(fig, out, name)
