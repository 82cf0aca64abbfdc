"""How much the Figure 4 numbers depend on choices the paper does not state (``metrics --sensitivity``).

For every admissible baseline role (r0 when the table has it, and each named unsteered role) the role
steering quantities are recomputed, and for every admissible SAE role (each role with rows under the
features) the SAE quantities; optionally, for each feature-subset size k (2 .. K-1), ``subsets``
random subsets of the features (seeded) with the rules' SAE role. The graphs stay fixed. Per
(method, graph, kind) the table gives the number of choices, min / median / max, the share of
choices with expected > unexpected, and the value of the marked choices with a bootstrap CI:
``default (paper text)`` = baseline r0, SAE role r0 (when the table has r0), and the rules under
test (e.g. ``kang2025 preset``). ``plot_sensitivity`` draws the distributions with the marks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.causal import ValueGraph
from analysis.effect_rules import EffectRules, baseline_player, unsteered
from analysis.metrics import (
    ChangeData,
    bootstrap,
    role_changes,
    sae_changes,
    successor_sets,
    summary_stats,
)
from analysis.orientations import value_columns

KINDS = ("expected", "unexpected")


@dataclass
class SensitivityResult:
    choices: pd.DataFrame  # one row per (method, choice, graph): expected, unexpected
    summary: pd.DataFrame  # one row per (method, graph, kind)
    marks: pd.DataFrame  # one row per (mark, method, graph, kind): estimate, ci_low, ci_high


def _sae_roles(table: pd.DataFrame, features: tuple[str, ...] | None) -> list[str]:
    dims = table["steer_dim"].fillna("").astype(str)
    steered = table[(dims != "") & ~dims.str.startswith("explicit:")]
    if features is not None:
        steered = steered[steered["steer_dim"].isin(features)]
    have_base = set(unsteered(table)["player_name"])
    roles = [p for p in dict.fromkeys(steered["player_name"]) if p in have_base]
    return ["r0" if p == "" else p for p in roles]


def _baselines(table: pd.DataFrame) -> list[str]:
    names = list(dict.fromkeys(unsteered(table)["player_name"]))
    return ["r0" if p == "" else p for p in names]


def rules_label(rules: EffectRules) -> str:
    """How the rules under test are marked: the preset's name, else 'these options'."""
    return f"{rules.preset} preset" if rules.preset else "these options"


def sensitivity(test: pd.DataFrame, graphs: dict[str, ValueGraph], rules: EffectRules, label: str | None = None,
                n_boot: int = 1000, seed: int = 0, subsets: int = 0, progress: bool = False) -> SensitivityResult:
    """The distribution of the Figure 4 quantities over admissible choices; see the module docstring."""
    values = value_columns(test)
    sets = {name: successor_sets(values, g, rules.unexpected) for name, g in graphs.items()}
    rows: list[dict] = []
    datas: dict[tuple[str, str], ChangeData] = {}
    jobs: list[tuple[str, str, str, object]] = [("role", "baseline role", b, b) for b in _baselines(test)]
    jobs += [("sae", "SAE role", r, r) for r in _sae_roles(test, rules.features)]
    feats = list(rules.features) if rules.features is not None else sorted(
        set(test["steer_dim"].fillna("").astype(str)) - {""}, key=str)
    rng = np.random.default_rng(seed)
    if subsets and rules.sae_role not in (None, "auto", "all"):
        for k in range(2, len(feats)):
            for j in range(subsets):
                pick = tuple(sorted(rng.choice(feats, size=k, replace=False).tolist(), key=feats.index))
                jobs.append(("sae", f"{k} of {len(feats)} features", f"{rules.sae_role} x {k} features #{j + 1}", pick))
    it = jobs
    if progress:
        from tqdm import tqdm
        it = tqdm(jobs, desc="sensitivity", leave=False)
    for method, varies, choice, what in it:
        try:
            if method == "role":
                data = role_changes(test, str(what), rules.atol)
            elif isinstance(what, tuple):
                data = sae_changes(test, rules.sae_role, what, rules.atol)
            else:
                data = sae_changes(test, str(what), rules.features, rules.atol)
        except ValueError:
            continue
        datas[(method, choice)] = data
        st = summary_stats(data.changed, data.values, graphs, sets)
        for gname in graphs:
            rows.append({"method": method, "varies": varies, "choice": choice, "graph": gname,
                         "expected": st[(gname, "expected")], "unexpected": st[(gname, "unexpected")],
                         "n_units": len(data.units)})
    choices = pd.DataFrame(rows, columns=["method", "varies", "choice", "graph", "expected", "unexpected", "n_units"])
    marks = _marks(test, graphs, rules, label or rules_label(rules), datas, n_boot, seed)
    summary = _summary(choices, marks)
    return SensitivityResult(choices, summary, marks)


def _mark_choices(test: pd.DataFrame, rules: EffectRules, label: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    has_r0 = "" in set(unsteered(test)["player_name"])
    if has_r0:
        out["default (paper text)"] = {"role": "r0", "sae": "r0"}
    try:
        who = baseline_player(test, rules.baseline_role)
    except ValueError:
        who = None
    mine = {}
    if who is not None:
        mine["role"] = "r0" if who == "" else who
    if rules.sae_role not in (None, "auto", "all"):
        mine["sae"] = rules.sae_role
    if mine and mine != out.get("default (paper text)"):
        out[label] = mine
    return out


def _marks(test: pd.DataFrame, graphs: dict[str, ValueGraph], rules: EffectRules, label: str,
           datas: dict[tuple[str, str], ChangeData], n_boot: int, seed: int) -> pd.DataFrame:
    frames = []
    for mark, picks in _mark_choices(test, rules, label).items():
        for method, choice in picks.items():
            data = datas.get((method, choice))
            if data is None:
                continue
            b = bootstrap(data, graphs, n_boot=n_boot, seed=seed, unexpected=rules.unexpected)
            b = b[b["graph"] != "-"].assign(mark=mark, method=method, choice=choice)
            frames.append(b[["mark", "method", "choice", "graph", "kind", "estimate", "ci_low", "ci_high"]])
    cols = ["mark", "method", "choice", "graph", "kind", "estimate", "ci_low", "ci_high"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def _summary(choices: pd.DataFrame, marks: pd.DataFrame) -> pd.DataFrame:
    out = []
    for (method, varies, graph), sub in choices.groupby(["method", "varies", "graph"], sort=False):
        both = sub.dropna(subset=list(KINDS))
        share = float((both["expected"] > both["unexpected"]).mean()) if len(both) else math.nan
        for kind in KINDS:
            x = sub[kind].dropna()
            row = {"method": method, "varies": varies, "graph": graph, "kind": kind, "n_choices": len(sub),
                   "n_defined": len(x),
                   "min": x.min() if len(x) else math.nan, "median": x.median() if len(x) else math.nan,
                   "max": x.max() if len(x) else math.nan, "share expected > unexpected": share}
            for mark in dict.fromkeys(marks["mark"]) if not varies.endswith("features") else []:
                m = marks[(marks["mark"] == mark) & (marks["method"] == method) & (marks["graph"] == graph)
                          & (marks["kind"] == kind)]
                if len(m):
                    r = m.iloc[0]
                    row[f"{mark}"] = r["estimate"]
                    row[f"{mark} 95% CI"] = f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
            out.append(row)
    return pd.DataFrame(out)


def plot_sensitivity(res: SensitivityResult, out: Path, name: str = "sensitivity",
                     paper: dict[tuple[str, str, str], float] | None = None) -> dict[str, Path]:
    """Histograms of expected / unexpected over the choices, per method and graph, the marks as lines.

    ``paper``: (method, graph, kind) -> the paper's number, drawn as a dotted line when given."""
    from analysis.plots import plt, save

    choices = res.choices[~res.choices["varies"].str.endswith("features")]
    combos = list(dict.fromkeys(zip(choices["method"], choices["graph"], strict=True)))
    fig, axes = plt.subplots(1, max(len(combos), 1), figsize=(4.2 * max(len(combos), 1), 3.6), squeeze=False)
    colours = {"expected": "#2b7bba", "unexpected": "#d95f02"}
    styles = ["-", "--", "-."]
    for ax, (method, graph) in zip(axes[0], combos, strict=False):
        sub = choices[(choices["method"] == method) & (choices["graph"] == graph)]
        bins = np.linspace(0, 1, 26)
        top = 1.0
        for kind in KINDS:
            counts, _, _ = ax.hist(sub[kind].dropna(), bins=bins, alpha=0.45, color=colours[kind],
                                   label=f"{kind} ({len(sub)} choices)")
            top = max(top, float(np.max(counts)) if len(counts) else 1.0)
        ax.set_ylim(0, top * 2.1)  # room for the legend above the bars
        for k, mark in enumerate(dict.fromkeys(res.marks["mark"])):
            for kind in KINDS:
                m = res.marks[(res.marks["mark"] == mark) & (res.marks["method"] == method)
                              & (res.marks["graph"] == graph) & (res.marks["kind"] == kind)]
                if len(m) and np.isfinite(m["estimate"].iloc[0]):
                    ax.axvline(m["estimate"].iloc[0], color=colours[kind], ls=styles[k % len(styles)], lw=1.6,
                               label=f"{mark}: {kind} {m['estimate'].iloc[0]:.2f}")
        for kind in KINDS:
            p = (paper or {}).get((method, graph, kind))
            if p is not None and np.isfinite(p):
                who = "paper" if graph == "ours" else "paper (its GPT-4o graph)"
                ax.axvline(p, color=colours[kind], ls=":", lw=1.2, label=f"{who}: {kind} {p:.2f}")
        ax.set_xlim(0, 1)
        ax.set_xlabel("probability of change (mean over values)")
        what = "baseline role" if method == "role" else "SAE role"
        ax.set_title(f"{'role prompt' if method == 'role' else 'SAE'} steering over the {what}\ngraph {graph}", fontsize=9)
        ax.legend(fontsize=6, loc="upper left")
    axes[0][0].set_ylabel("number of choices")
    return save(fig, out, name)

