"""How far each steering config moves the orientations: s^c_r[v] - s_r[v], the same role r unsteered.

The per-value shift is what Kang et al.'s metrics count as a *change* (§2.3: any nonzero shift); here it is
kept signed and sized, for the report's summary, its orientation bars and its dose-response plot.

- ``orientation_shifts``: one row per (config, role, value) with the shift (long format);
- ``config_shifts``: per config, the mean |shift| over roles and values, the mean number of values it
  changes per role (Kang et al.'s "average number of steered values", §3.2.1) and the signed shift per value
  averaged over roles;
- ``strongest_config``: the config with the largest mean |shift|.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.effect_rules import unsteered
from analysis.orientations import value_columns


@dataclass(frozen=True)
class ConfigInfo:
    """What a steering config is, read off its results JSON (``config.steering``)."""

    kind: str  # sae_feature / vector / conva / other
    feature: str | None  # SAE feature id, or the vector's key
    amount: float | None  # strength / factor / value


def orientation_shifts(table: pd.DataFrame, atol: float = 1e-9) -> pd.DataFrame:
    """Columns steer_dim, player_name, value, unsteered, steered, shift, changed (|shift| > atol).

    Only configs with an unsteered row of the same role count; explicit-instruction configs are left out."""
    values = value_columns(table)
    base = unsteered(table).drop_duplicates("player_name").set_index("player_name")[values]
    dims = table["steer_dim"].fillna("").astype(str)
    steered = table[(dims != "") & ~dims.str.startswith("explicit:") & table["player_name"].isin(base.index)]
    if steered.empty:
        return pd.DataFrame(columns=["steer_dim", "player_name", "value", "unsteered", "steered", "shift", "changed"])
    s = steered.melt(id_vars=["steer_dim", "player_name"], value_vars=values, var_name="value", value_name="steered")
    b = base.reset_index().melt(id_vars="player_name", value_vars=values, var_name="value", value_name="unsteered")
    out = s.merge(b, on=["player_name", "value"], how="left")
    out["shift"] = out["steered"] - out["unsteered"]
    out["changed"] = (out["shift"].abs() > atol).where(out["shift"].notna())
    return out[["steer_dim", "player_name", "value", "unsteered", "steered", "shift", "changed"]]


def config_shifts(shifts: pd.DataFrame) -> pd.DataFrame:
    """Per config (in table order): n_roles, mean_abs_shift, values_changed (mean per role), and one
    ``shift <value>`` column per value (signed, mean over roles)."""
    if shifts.empty:
        return pd.DataFrame(columns=["steer_dim", "n_roles", "mean_abs_shift", "values_changed"])
    order = list(dict.fromkeys(shifts["steer_dim"]))
    g = shifts.assign(abs_shift=shifts["shift"].abs(), changed=shifts["changed"].astype(float))
    per = g.groupby("steer_dim", sort=False).agg(n_roles=("player_name", "nunique"),
                                                  mean_abs_shift=("abs_shift", "mean"))
    per["values_changed"] = g.groupby(["steer_dim", "player_name"], sort=False)["changed"].sum().groupby(
        level=0, sort=False).mean()
    by_value = g.pivot_table(index="steer_dim", columns="value", values="shift", aggfunc="mean", sort=False)
    values = list(dict.fromkeys(shifts["value"]))
    by_value = by_value.reindex(columns=values).add_prefix("shift ")
    return per.join(by_value).reindex(order).reset_index()


def strongest_config(per_config: pd.DataFrame) -> str | None:
    """The config with the largest mean |shift| (None when no config moved anything)."""
    if per_config.empty or not np.isfinite(per_config["mean_abs_shift"]).any():
        return None
    row = per_config.loc[per_config["mean_abs_shift"].idxmax()]
    return str(row["steer_dim"]) if row["mean_abs_shift"] > 0 else None


def dose_response(per_config: pd.DataFrame, info: dict[str, ConfigInfo]) -> pd.DataFrame:
    """Columns series, kind, amount, mean_abs_shift, values_changed for every series (an SAE feature or a
    vector) that the sweep ran at two or more amounts, plus the unsteered point (amount 0) of each; empty
    when no series varies its amount."""
    rows = []
    for _, r in per_config.iterrows():
        ci = info.get(str(r["steer_dim"]))
        if ci is None or ci.amount is None or ci.feature is None:
            continue
        rows.append({"series": f"{'feature' if ci.kind == 'sae_feature' else ci.kind} {ci.feature}", "kind": ci.kind,
                     "amount": ci.amount, "mean_abs_shift": r["mean_abs_shift"], "values_changed": r["values_changed"]})
    df = pd.DataFrame(rows, columns=["series", "kind", "amount", "mean_abs_shift", "values_changed"])
    varied = df.groupby("series")["amount"].nunique()
    df = df[df["series"].isin(varied[varied >= 2].index)]
    if df.empty:
        return df
    zero = pd.DataFrame({"series": df["series"].unique(), "amount": 0.0, "mean_abs_shift": 0.0, "values_changed": 0.0})
    zero["kind"] = zero["series"].map(df.drop_duplicates("series").set_index("series")["kind"])
    return pd.concat([zero, df], ignore_index=True).sort_values(["series", "amount"]).reset_index(drop=True)
