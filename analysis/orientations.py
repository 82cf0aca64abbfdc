"""Value orientations s_t[v] and the wide orientation table (Kang et al. §2.1, §3.1).

s_t[v] for one steering config and one role template t = the mean item score (+1/-1/0) over the
value's items; unscored items (NaN) are left out, so a value with no scored item is NaN.

Wide orientation table (the format Kang et al. released): one row per (steering config, role),
columns ``steer_dim`` (SAE feature / config id; "" = unsteered), ``player_name`` (the role; "" = the
empty role r0) and one column per value holding the orientation in [-1, 1]. Other columns are
ignored on reading; ours adds ``role_id``, ``role_split``, ``steer_kind``, ``mode``, ``n_items``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lm_eval_tasks.values import VALUES, canonical_value

KEY_COLUMNS = ["steer_dim", "player_name"]
EXTRA_COLUMNS = ["role_id", "role_split", "steer_kind", "mode"]


def pick_mode(samples: pd.DataFrame, mode: str | None) -> str:
    """The questionnaire mode to analyse (cot/ll): the one given, or the only one in the samples."""
    modes = sorted(set(samples["mode"]) - {"explicit"})
    if mode is not None:
        if mode not in modes and mode != "explicit":
            raise ValueError(f"--mode {mode!r} has no samples; the runs hold modes {modes}.")
        return mode
    if len(modes) > 1:
        raise ValueError(f"the runs mix questionnaire modes {modes}; pick one with --mode "
                         f"({' or '.join(modes)}).")
    return modes[0] if modes else "explicit"


SCORES = ("hard", "soft")


def orientation_table(samples: pd.DataFrame, mode: str | None = None, split: str | None = None,
                      score: str = "hard") -> pd.DataFrame:
    """The wide orientation table of the tidy samples (``analysis.io.load_samples``).

    ``mode``: cot / ll (explicit-instruction samples are always kept: they are their own configs);
    ``split``: train / test / None = all roles; ``score``: ``hard`` (the item score +1/-1/0, Kang et al.) or
    ``soft`` (loglikelihood runs only: agreement x (p(yes) - p(no)), ours: it moves where a model's hard
    answer does not).
    """
    if score not in SCORES:
        raise ValueError(f"--score {score!r} is not a known item score; use one of {list(SCORES)}.")
    mode = pick_mode(samples, mode)
    if score == "soft":
        if samples.loc[samples["mode"] == mode, "score_soft"].isna().all():
            raise ValueError(f"--score soft needs loglikelihood runs (valuebench_ll_*), which log orientation_soft; "
                             f"the {mode!r} samples have none. Drop --score soft or pass --mode ll.")
        samples = samples.assign(score=samples["score_soft"].where(samples["mode"] == "ll", samples["score"]))
    # explicit-instruction samples are their own configs; their "none" baseline repeats the plain run
    explicit = (samples["mode"] == "explicit") & (samples["instruction"].fillna("none") != "none")
    df = samples[(samples["mode"] == mode) | explicit]
    if df.empty:  # only explicit-task runs: their "none" rows are the unsteered baseline
        df = samples[samples["mode"] == mode]
    if split is not None:
        df = df[df["role_split"] == split]
        if df.empty:
            raise ValueError(f"no samples of {split!r} roles; the runs hold splits "
                             f"{sorted(samples['role_split'].dropna().unique())}.")
    keys = ["config", "role_id"]
    means = df.groupby(keys + ["value"], sort=False)["score"].mean().unstack("value")
    values = [v for v in VALUES if v in means.columns] + [v for v in means.columns if v not in VALUES]
    means = means[values]
    info = df.groupby(keys, sort=False).agg(player_name=("role_name", "first"), role_split=("role_split", "first"),
                                             steer_kind=("steer_kind", "first"), n_items=("item_id", "size"))
    wide = info.join(means).reset_index().rename(columns={"config": "steer_dim"})
    wide["mode"] = mode
    wide = wide.sort_values(["steer_dim", "role_id"], key=lambda s: s.map(_sort_key)).reset_index(drop=True)
    return wide[KEY_COLUMNS + values + EXTRA_COLUMNS + ["n_items"]]


def _sort_key(x: object) -> object:
    s = str(x)
    if len(s) > 1 and s[0] == "r" and s[1:].isdigit():
        return f"r{int(s[1:]):06d}"
    return s


def value_columns(table: pd.DataFrame) -> list[str]:
    """The value columns of a wide table, in the table's order."""
    return [c for c in table.columns if canonical_value(str(c)) is not None]


def read_orientation_csv(path: str | Path) -> pd.DataFrame:
    """Read a wide orientation CSV (ours or Kang et al.'s); value columns are renamed to ValueBench spelling."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"orientation table {path} does not exist; pass a CSV with columns "
                                "steer_dim, player_name and one column per value.")
    table = pd.read_csv(path, keep_default_na=True, dtype={"steer_dim": str, "player_name": str})
    missing = [c for c in KEY_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path} lacks column(s) {missing}; a wide orientation table needs steer_dim "
                         "(config id, empty = unsteered), player_name (role, empty = r0) and value columns.")
    rename = {c: canonical_value(str(c)) for c in table.columns if c not in KEY_COLUMNS and canonical_value(str(c))}
    table = table.rename(columns=rename)
    if not rename:
        raise ValueError(f"{path} has no value column; expected columns named after the 17 ValueBench values, "
                         f"e.g. {list(VALUES[:3])}.")
    for c in KEY_COLUMNS:
        table[c] = table[c].fillna("").astype(str).str.strip()
    # Kang et al.'s files write steer_dim as floats ("428.0") when a column mixes blanks and ids
    table["steer_dim"] = table["steer_dim"].str.replace(r"^(\d+)\.0$", r"\1", regex=True)
    for v in rename.values():
        table[v] = pd.to_numeric(table[v], errors="coerce")
        bad = table[v].dropna()
        if ((bad < -1 - 1e-9) | (bad > 1 + 1e-9)).any():
            raise ValueError(f"{path}: column {v!r} has values outside [-1, 1] (e.g. {bad[(bad < -1) | (bad > 1)].iloc[0]}); "
                             "orientations are mean item scores in [-1, 1].")
    if "role_id" not in table.columns:
        table["role_id"] = table["player_name"].where(table["player_name"] != "", "r0")
    return table


def write_orientation_csv(table: pd.DataFrame, path: str | Path) -> Path:
    """Write the wide table (key columns, value columns, then our extra columns)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    values = value_columns(table)
    extras = [c for c in table.columns if c not in KEY_COLUMNS and c not in values]
    table[KEY_COLUMNS + values + extras].to_csv(path, index=False)
    return path


def load_orientations(paths: list[str], mode: str | None = None, split: str | None = None,
                      allow_mixed_models: bool = False) -> pd.DataFrame:
    """A wide table from either one/many orientation CSVs or lm-eval output folders."""
    from analysis.io import load_samples

    csvs = [p for p in paths if str(p).endswith(".csv")]
    if csvs and len(csvs) != len(paths):
        raise ValueError("pass either orientation CSV files or lm-eval output folders, not both: "
                         f"got {list(paths)}.")
    if csvs:
        tables = [read_orientation_csv(p) for p in csvs]
        table = pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]
        if split is not None and "role_split" in table.columns:
            table = table[table["role_split"] == split].reset_index(drop=True)
        return table
    return orientation_table(load_samples(paths, allow_mixed_models=allow_mixed_models), mode=mode, split=split)
