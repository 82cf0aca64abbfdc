"""Steering effects along causal relations (Kang et al. §2.3, §3.2.1, Figure 4).

For a steering unit u (a role prompt r, or an SAE feature f applied to the baseline role r0) and a
value v, u *changes* v when its orientation differs from the baseline's: s_r[v] != s_r0[v] (role) or
s^f_r0[v] != s_r0[v] (SAE). R≠(v) / F≠(v) = the units that change v. Then (§2.3)

    c(v', v) = (1 / |U≠(v)|) * sum_{u in U≠(v)} 1[u changes v'],

expected(v)   = mean of c(v', v) over the successors v' of v in graph G,
unexpected(v) = mean of c(v', v) over the non-successors v' of v (all other values except v).

"Successors" are all descendants of v (the paper's "subsequent nodes", reached along directed
paths, §3.2.1). The single number per (method, graph) reported in §3.2.1 / Figure 4 is, here, the mean
of expected(v) (resp. unexpected(v)) over the values v for which it is defined (|U≠(v)| > 0 and
a non-empty successor / non-successor set) — the paper does not spell out this last averaging step.

Orientations are compared exactly (|a - b| <= 1e-9); a NaN orientation (no scored item) is
neither changed nor unchanged and is left out of both the numerator and the denominator.

SAE units: the paper's formula uses the baseline role r0 only (``sae_role="r0"``). With
``sae_role="all"`` every (feature, role) pair is a unit, the role under the feature compared with
the same role unsteered; a role name steers that one role (the authors' released analysis);
``"auto"`` = r0 when the table has r0 under the features, else all. Role units are the named roles
other than the baseline (``analysis.effect_rules`` holds every such choice and the ``kang2025`` preset).

Average number of steered values (§3.2.1: 14.6 / 7.7 per role prompt, 4.3 / 4.2 per SAE feature):
mean over units of the number of values the unit changes.

Bootstrap CIs resample the roles (with replacement; percentile intervals); for SAE units on r0
only, where there is one role, they resample the features instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd

from analysis.causal import ValueGraph
from analysis.effect_rules import UNEXPECTED, baseline_player, unsteered
from analysis.orientations import value_columns

# The paper's numbers, one table. Kang et al. §3.2.1 ("Effective prediction from causal graphs",
# "Unexpected value changes") = Figure 4; reference graph = GPT-4o with Template 5 (Appendix A.3).
PAPER_NUMBERS: dict[tuple[str, str, str, str], float] = {
    # (model, method, kind, graph) -> probability
    ("Gemma-2B-IT", "role", "expected", "ours"): 0.69, ("Gemma-2B-IT", "role", "expected", "reference"): 0.51,
    ("Gemma-2B-IT", "sae", "expected", "ours"): 0.57, ("Gemma-2B-IT", "sae", "expected", "reference"): 0.43,
    ("Llama3-8B-IT", "role", "expected", "ours"): 0.57, ("Llama3-8B-IT", "role", "expected", "reference"): 0.45,
    ("Llama3-8B-IT", "sae", "expected", "ours"): 0.74, ("Llama3-8B-IT", "sae", "expected", "reference"): 0.49,
    ("Gemma-2B-IT", "role", "unexpected", "ours"): 0.56, ("Gemma-2B-IT", "role", "unexpected", "reference"): 0.60,
    ("Gemma-2B-IT", "sae", "unexpected", "ours"): 0.51, ("Gemma-2B-IT", "sae", "unexpected", "reference"): 0.53,
    ("Llama3-8B-IT", "role", "unexpected", "ours"): 0.47, ("Llama3-8B-IT", "role", "unexpected", "reference"): 0.50,
    ("Llama3-8B-IT", "sae", "unexpected", "ours"): 0.46, ("Llama3-8B-IT", "sae", "unexpected", "reference"): 0.55,
    # §3.2.1 "average number of steered values": (model, method, "n_steered_values", "-")
    ("Gemma-2B-IT", "role", "n_steered_values", "-"): 14.6, ("Llama3-8B-IT", "role", "n_steered_values", "-"): 7.7,
    ("Gemma-2B-IT", "sae", "n_steered_values", "-"): 4.3, ("Llama3-8B-IT", "sae", "n_steered_values", "-"): 4.2,
    # Table 2 (§3.3): probability of thought/answer inconsistency before / after SAE steering
    ("Gemma-2B-IT", "sae", "inconsistency_before", "-"): 0.18, ("Gemma-2B-IT", "sae", "inconsistency_after", "-"): 0.20,
    ("Llama3-8B-IT", "sae", "inconsistency_before", "-"): 0.15, ("Llama3-8B-IT", "sae", "inconsistency_after", "-"): 0.15,
}

# Noise-ratio rows of Table 4 (Gemma-2B-IT, Appendix C) and Table 5 (Llama3-8B-IT), per value.
PAPER_NOISE_RATIO: dict[str, dict[str, float]] = {
    "Gemma-2B-IT": dict(zip(
        ["Achievement", "Aesthetic", "Anxiety Disorder", "Breadth of Interest", "Economic", "Empathy",
         "Organization", "Political", "Positive coping", "Religious", "Resilience", "Social",
         "Social Complexity", "Social Cynicism", "Theoretical", "Uncertainty Avoidance", "Understanding"],
        [0.18, 0.12, 0.22, 0.04, 0.14, 0.16, 0.15, 0.14, 0.08, 0.11, 0.10, 0.06, 0.14, 0.02, 0.05, 0.12, 0.06],
        strict=True)),
    "Llama3-8B-IT": dict(zip(
        ["Achievement", "Aesthetic", "Anxiety Disorder", "Breadth of Interest", "Economic", "Empathy",
         "Organization", "Political", "Positive coping", "Religious", "Resilience", "Social",
         "Social Complexity", "Social Cynicism", "Theoretical", "Uncertainty Avoidance", "Understanding"],
        [0.12, 0.15, 0.16, 0.09, 0.14, 0.06, 0.08, 0.17, 0.13, 0.14, 0.04, 0.15, 0.10, 0.12, 0.10, 0.21, 0.04],
        strict=True)),
}

ATOL = 1e-9


@dataclass
class ChangeData:
    """The changed-matrix of one steering method: units x values, 1 changed / 0 unchanged / NaN unknown."""

    method: str  # "role" or "sae"
    values: list[str]
    changed: np.ndarray
    groups: np.ndarray  # bootstrap cluster of each unit (role for role/sae-all, feature for sae-r0)
    units: list[str]


def _changed(a: np.ndarray, b: np.ndarray, atol: float = ATOL) -> np.ndarray:
    out = (np.abs(a - b) > atol).astype(float)
    out[np.isnan(a) | np.isnan(b)] = np.nan
    return out


def role_changes(table: pd.DataFrame, baseline_role: str = "r0", atol: float = ATOL) -> ChangeData:
    """Role steering: every unsteered named role other than the baseline, compared with the baseline
    (``r0`` = the empty role, ``first`` = the table's first named role, or a player_name)."""
    values = value_columns(table)
    un = unsteered(table)
    who = baseline_player(table, baseline_role)
    base = un[un["player_name"] == who]
    if base.empty:
        what = "the empty role r0 (player_name empty)" if who == "" else f"role {who!r}"
        raise ValueError(f"the orientation table has no unsteered row for {what}, the baseline of Kang et al. §2.3; "
                         "include r0 (it is a train role: valuebench_*_train with roles ['r0', ...]) or pass "
                         "--baseline-role first / NAME.")
    roles = un[(un["player_name"] != who) & (un["player_name"] != "")]
    if roles.empty:
        raise ValueError("the orientation table has no unsteered named role besides the baseline; role steering "
                         "needs other roles (num_roles >= 2).")
    s0 = base[values].to_numpy(float).mean(axis=0)
    changed = _changed(roles[values].to_numpy(float), s0[None, :], atol)
    names = roles["player_name"].tolist()
    return ChangeData("role", values, changed, np.array(names, dtype=object), names)


def sae_changes(table: pd.DataFrame, sae_role: str = "auto", configs: list[str] | tuple[str, ...] | None = None,
                atol: float = ATOL) -> ChangeData:
    """SAE (or any config) steering: each config's rows compared with the same role unsteered.

    ``sae_role``: ``r0`` (the empty role), ``all`` (every role), ``auto`` (r0 when present, else all) or a
    player_name; ``configs``: the steer_dims that count (default: every non-explicit config)."""
    values = value_columns(table)
    un = unsteered(table).drop_duplicates("player_name").set_index("player_name")
    steered = table[table["steer_dim"].fillna("") != ""]
    if configs is not None:
        missing = [c for c in configs if c not in set(steered["steer_dim"])]
        if missing:
            raise ValueError(f"feature(s) {missing[:5]} of --features are not steer_dims of the orientation table "
                             f"(it has {sorted(set(steered['steer_dim']))[:8]}...); fix the features file.")
        steered = steered[steered["steer_dim"].isin(configs)]
    steered = steered[~steered["steer_dim"].astype(str).str.startswith("explicit:")]
    if "steer_kind" in steered.columns:
        steered = steered[~steered["steer_kind"].fillna("").astype(str).str.startswith("explicit")]
    steered = steered[steered["player_name"].isin(un.index)]
    if steered.empty:
        raise ValueError("no steered row has an unsteered row of the same role to compare with; the table needs "
                         "rows with steer_dim empty (unsteered) and rows per feature for the same player_name.")
    if sae_role == "auto":
        sae_role = "r0" if (steered["player_name"] == "").any() else "all"
    if sae_role != "all":
        who = "" if sae_role == "r0" else sae_role
        steered = steered[steered["player_name"] == who]
        if steered.empty:
            what = "the empty role r0" if who == "" else f"role {who!r}"
            raise ValueError(f"no steered row for {what}; pass --sae-role all (every role under a feature vs the "
                             "same role unsteered) or the player_name of a role the features steer.")
    base = un.loc[steered["player_name"], values].to_numpy(float)
    changed = _changed(steered[values].to_numpy(float), base, atol)
    one_role = sae_role != "all"
    groups = steered["steer_dim" if one_role else "player_name"].astype(str).to_numpy(dtype=object)
    units = (steered["steer_dim"].astype(str) + "@" + steered["player_name"].astype(str)).tolist()
    return ChangeData(f"sae[{sae_role}]", values, changed, groups, units)


def c_matrix(changed: np.ndarray) -> np.ndarray:
    """c[j, i] = c(v_j, v_i): among units that change v_i, the share that also change v_j (§2.3)."""
    chg = np.nan_to_num(changed, nan=0.0)
    known = (~np.isnan(changed)).astype(float)
    both = chg.T @ chg  # both[i, j] = # units changing v_i and v_j
    denom = chg.T @ known  # denom[i, j] = # units changing v_i with v_j known
    with np.errstate(invalid="ignore", divide="ignore"):
        c_ij = both / denom  # [i (steered), j (other)]
    return c_ij.T


def successor_sets(values: list[str], graph: ValueGraph,
                   unexpected: str = "non-descendants") -> list[tuple[list[int], list[int]]]:
    """Per value (index): (successor indices = descendants in the graph, the indices unexpected changes
    are counted over: every other non-descendant, or with ``unrelated`` only those that are not ancestors)."""
    if unexpected not in UNEXPECTED:
        raise ValueError(f"unexpected={unexpected!r}; use one of {list(UNEXPECTED)}.")
    g = graph.digraph()
    idx = {v: i for i, v in enumerate(values)}
    out = []
    for v in values:
        succ = sorted(idx[w] for w in (nx.descendants(g, v) if v in g else set()) if w in idx)
        anc = {idx[w] for w in (nx.ancestors(g, v) if v in g and unexpected == "unrelated" else set()) if w in idx}
        non = [idx[w] for w in values if w != v and idx[w] not in succ and idx[w] not in anc]
        out.append((succ, non))
    return out


def _per_value(changed: np.ndarray, sets: list[tuple[list[int], list[int]]]) -> tuple[np.ndarray, np.ndarray]:
    c = c_matrix(changed)
    n_changing = np.nansum(changed, axis=0)
    exp = np.full(len(sets), np.nan)
    une = np.full(len(sets), np.nan)
    with np.errstate(invalid="ignore"):
        for i, (succ, non) in enumerate(sets):
            if not n_changing[i]:
                continue
            if succ and not np.isnan(c[succ, i]).all():
                exp[i] = np.nanmean(c[succ, i])
            if non and not np.isnan(c[non, i]).all():
                une[i] = np.nanmean(c[non, i])
    return exp, une


def expected_unexpected(changed: np.ndarray, values: list[str], graph: ValueGraph,
                        unexpected: str = "non-descendants") -> pd.DataFrame:
    """Per steered value v: |U≠(v)|, #successors, expected(v), unexpected(v)."""
    sets = successor_sets(values, graph, unexpected)
    exp, une = _per_value(changed, sets)
    n_changing = np.nansum(changed, axis=0)
    return pd.DataFrame({"value": values, "n_units_changing": n_changing.astype(int),
                         "n_successors": [len(s) for s, _ in sets], "expected": exp, "unexpected": une})


def _mean(x: np.ndarray) -> float:
    return float(np.nanmean(x)) if np.isfinite(x).any() else np.nan


def summary_stats(changed: np.ndarray, values: list[str], graphs: dict[str, ValueGraph],
                  sets: dict[str, list[tuple[list[int], list[int]]]] | None = None) -> dict[tuple[str, str], float]:
    """(graph, "expected"/"unexpected") -> mean over values; ("-", "n_steered_values") -> mean per unit."""
    out: dict[tuple[str, str], float] = {}
    for name, graph in graphs.items():
        exp, une = _per_value(changed, sets[name] if sets else successor_sets(values, graph))
        out[(name, "expected")] = _mean(exp)
        out[(name, "unexpected")] = _mean(une)
    out[("-", "n_steered_values")] = float(np.nanmean(np.nansum(changed, axis=1))) if len(changed) else np.nan
    return out


def bootstrap(data: ChangeData, graphs: dict[str, ValueGraph], n_boot: int = 1000, seed: int = 0,
              level: float = 0.95, progress: bool = False, unexpected: str = "non-descendants") -> pd.DataFrame:
    """Point estimates + percentile CIs, resampling the bootstrap clusters (roles) with replacement."""
    sets = {name: successor_sets(data.values, g, unexpected) for name, g in graphs.items()}
    point = summary_stats(data.changed, data.values, graphs, sets)
    clusters = list(dict.fromkeys(data.groups))
    members = [np.flatnonzero(data.groups == g) for g in clusters]
    rng = np.random.default_rng(seed)
    draws: dict[tuple[str, str], list[float]] = {k: [] for k in point}
    it = range(n_boot if len(clusters) > 1 else 0)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc=f"bootstrap {data.method}", leave=False)
    for _ in it:
        pick = rng.integers(0, len(clusters), len(clusters))
        rows = np.concatenate([members[k] for k in pick])
        for k, v in summary_stats(data.changed[rows], data.values, graphs, sets).items():
            draws[k].append(v)
    lo_q, hi_q = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    out = []
    for (graph, kind), est in point.items():
        d = np.array([x for x in draws[(graph, kind)] if not np.isnan(x)])
        lo, hi = (np.percentile(d, lo_q), np.percentile(d, hi_q)) if len(d) else (np.nan, np.nan)
        out.append({"method": data.method, "graph": graph, "kind": kind, "estimate": est, "ci_low": lo,
                    "ci_high": hi, "n_units": len(data.units), "n_clusters": len(clusters)})
    return pd.DataFrame(out)


def with_paper(summary: pd.DataFrame) -> pd.DataFrame:
    """Add the paper's Figure 4 / §3.2.1 numbers beside ours (graph 'ours' vs any reference graph)."""
    out = summary.copy()
    for model in ("Gemma-2B-IT", "Llama3-8B-IT"):
        col = []
        for _, r in out.iterrows():
            method = "sae" if str(r["method"]).startswith("sae") else "role"
            gkey = "-" if r["graph"] == "-" else ("ours" if r["graph"] == "ours" else "reference")
            col.append(PAPER_NUMBERS.get((model, method, r["kind"], gkey), np.nan))
        out[f"paper {model}"] = col
    return out


def c_table(data: ChangeData) -> pd.DataFrame:
    """c(v', v) as a table: rows = steered value v, columns = v'."""
    c = c_matrix(data.changed)
    return pd.DataFrame(c.T, index=data.values, columns=data.values).rename_axis("steered value").reset_index()
