"""SAE steering tables (Kang et al. §3.3: Table 1, Appendix C Tables 4/5; Table 3).

Per SAE feature f (any steered config; explicit-instruction configs excluded) and value v, each role r
that has both a row under f and an unsteered row is *stimulated* when s^f_r[v] > s_r[v], *suppressed*
when <, *maintained* when equal (|difference| <= 1e-9); roles with a NaN orientation are left out.
The counts are taken on the train table and on the test table; ``cosine`` is the cosine similarity
of the train and test (stimulated, suppressed, maintained) proportion vectors (Table 1's cell
numbers). Noise ratio of a cell = min(stimulated, suppressed) proportion on the train table; the
noise ratio of a value = the mean over features (Table 1/4/5's "Noise Ratio" row).

Table 3: per value, its most effective positive feature (largest train stimulated share; ties: smaller
suppressed share, then first in order) and negative feature (largest train suppressed share), applied
to the test roles, beside the explicit value instruction (configs ``explicit:inclined`` /
``explicit:disinclined``, Templates 2-4): shares of test roles positively / negatively steered /
unchanged relative to the same role unsteered.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.orientations import value_columns

ATOL = 1e-9
SAE_COLUMNS = ["feature", "value", "train_stimulated", "train_suppressed", "train_maintained",
               "test_stimulated", "test_suppressed", "test_maintained", "cosine"]


def _steered_configs(table: pd.DataFrame, explicit: bool = False) -> list[str]:
    dims = table["steer_dim"].fillna("").astype(str)
    cfgs = [d for d in dict.fromkeys(dims) if d]
    return [c for c in cfgs if c.startswith("explicit:") == explicit]


def direction_counts(table: pd.DataFrame, configs: list[str] | None = None, atol: float = ATOL) -> pd.DataFrame:
    """Long table: config, value, stimulated, suppressed, maintained (counts of roles)."""
    values = value_columns(table)
    dims = table["steer_dim"].fillna("").astype(str)
    un = table[dims == ""].drop_duplicates("player_name").set_index("player_name")[values]
    if un.empty:
        raise ValueError("the orientation table has no unsteered rows (steer_dim empty) to compare steered roles with.")
    rows = []
    for cfg in configs if configs is not None else _steered_configs(table):
        sub = table[dims == cfg]
        sub = sub[sub["player_name"].isin(un.index)]
        diff = sub[values].to_numpy(float) - un.loc[sub["player_name"], values].to_numpy(float)
        for j, v in enumerate(values):
            d = diff[:, j]
            d = d[~np.isnan(d)]
            rows.append({"feature": cfg, "value": v, "stimulated": int((d > atol).sum()),
                         "suppressed": int((d < -atol).sum()), "maintained": int((np.abs(d) <= atol).sum())})
    return pd.DataFrame(rows, columns=["feature", "value", "stimulated", "suppressed", "maintained"])


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na and nb else np.nan


def sae_table(train: pd.DataFrame, test: pd.DataFrame | None = None, atol: float = ATOL) -> pd.DataFrame:
    """Table 1/4/5 as counts: train and test (stimulated, suppressed, maintained) + cosine per cell; a role is
    maintained when its orientation moves by at most ``atol``."""
    tr = direction_counts(train, atol=atol).add_prefix("train_").rename(columns={"train_feature": "feature", "train_value": "value"})
    if test is not None:
        te = direction_counts(test, _steered_configs(train), atol).add_prefix("test_").rename(
            columns={"test_feature": "feature", "test_value": "value"})
        out = tr.merge(te, on=["feature", "value"], how="left")
    else:
        out = tr.assign(test_stimulated=np.nan, test_suppressed=np.nan, test_maintained=np.nan)
    kinds = ["stimulated", "suppressed", "maintained"]
    out["cosine"] = [cosine(r[[f"train_{k}" for k in kinds]].to_numpy(float), r[[f"test_{k}" for k in kinds]].to_numpy(float))
                     if not r[[f"test_{k}" for k in kinds]].isna().any() else np.nan for _, r in out.iterrows()]
    return out[SAE_COLUMNS]


def _shares(df: pd.DataFrame, prefix: str) -> pd.DataFrame:
    total = df[[f"{prefix}_stimulated", f"{prefix}_suppressed", f"{prefix}_maintained"]].sum(axis=1)
    return pd.DataFrame({k: df[f"{prefix}_{k}"] / total.where(total > 0)
                         for k in ("stimulated", "suppressed", "maintained")})


def noise_ratio(table: pd.DataFrame) -> pd.DataFrame:
    """Per value: mean over features of min(stimulated, suppressed) train proportion."""
    sh = _shares(table, "train")
    cell = np.minimum(sh["stimulated"], sh["suppressed"])
    out = pd.DataFrame({"value": table["value"], "noise_ratio": cell}).groupby("value", sort=False)["noise_ratio"].mean()
    return out.reset_index()


def mean_similarity(table: pd.DataFrame) -> pd.DataFrame:
    """Per feature: mean cosine over values (Table 1's "Mean Similarity" column)."""
    return table.groupby("feature", sort=False)["cosine"].mean().rename("mean_similarity").reset_index()


def best_features(table: pd.DataFrame) -> pd.DataFrame:
    """Per value: the train-best positive and negative feature (Table 3's selection)."""
    sh = _shares(table, "train")
    df = pd.concat([table[["feature", "value"]], sh], axis=1)
    rows = []
    for v, grp in df.groupby("value", sort=False):
        pos = grp.sort_values(["stimulated", "suppressed"], ascending=[False, True], kind="stable").iloc[0]
        neg = grp.sort_values(["suppressed", "stimulated"], ascending=[False, True], kind="stable").iloc[0]
        rows.append({"value": v, "positive_feature": pos["feature"], "negative_feature": neg["feature"]})
    return pd.DataFrame(rows)


def sae_vs_explicit(train: pd.DataFrame, test: pd.DataFrame, atol: float = ATOL) -> pd.DataFrame:
    """Table 3: shares of test roles positively / negatively steered / unchanged, SAE vs explicit instruction."""
    table = sae_table(train, atol=atol)
    best = best_features(table)
    rows = []
    explicit = _steered_configs(test, explicit=True)
    counts_sae = direction_counts(test, _steered_configs(train), atol)
    counts_exp = direction_counts(test, explicit, atol) if explicit else pd.DataFrame(columns=counts_sae.columns)
    for _, b in best.iterrows():
        v = b["value"]
        for method, cfg in (("SAE +", b["positive_feature"]), ("SAE -", b["negative_feature"]),
                            ("explicit inclined", "explicit:inclined"), ("explicit disinclined", "explicit:disinclined")):
            src = counts_exp if cfg.startswith("explicit:") else counts_sae
            r = src[(src["feature"] == cfg) & (src["value"] == v)]
            if r.empty:
                continue
            counts = {k: int(r[k].iloc[0]) for k in ("stimulated", "suppressed", "maintained")}
            n = sum(counts.values())
            rows.append({"value": v, "method": method, "config": cfg,
                         "positive": counts["stimulated"] / n if n else np.nan,
                         "negative": counts["suppressed"] / n if n else np.nan,
                         "unchanged": counts["maintained"] / n if n else np.nan, "n_roles": n})
    return pd.DataFrame(rows, columns=["value", "method", "config", "positive", "negative", "unchanged", "n_roles"])
