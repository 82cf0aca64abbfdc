"""One step that the `metrics` and `report` commands share: graphs + §2.3 metrics for a table."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from analysis.causal import ValueGraph, learn_graph, pc_rows
from analysis.effect_rules import PAPER_TEXT, EffectRules
from analysis.metrics import (
    ChangeData,
    bootstrap,
    c_table,
    expected_unexpected,
    role_changes,
    sae_changes,
    with_paper,
)


@dataclass
class EffectResults:
    summary: pd.DataFrame
    per_value: pd.DataFrame
    c_tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def change_data(table: pd.DataFrame, rules: EffectRules = PAPER_TEXT) -> tuple[list[ChangeData], list[str]]:
    """The role and SAE change matrices that the table supports (with a note for each one it does not)."""
    out, notes = [], []
    for name, fn in (("role", lambda: role_changes(table, rules.baseline_role, rules.atol)),
                     ("sae", lambda: sae_changes(table, rules.sae_role or "auto", rules.features, rules.atol))):
        try:
            out.append(fn())
        except ValueError as exc:
            notes.append(f"{name} steering metrics skipped: {exc}")
    return out, notes


def steering_effects(test: pd.DataFrame, graphs: dict[str, ValueGraph], n_boot: int = 1000, seed: int = 0,
                     rules: EffectRules = PAPER_TEXT, progress: bool = False,
                     fallback: pd.DataFrame | None = None) -> EffectResults:
    """§2.3 metrics on ``test``; a method the test table cannot support (e.g. role steering: our test
    split has no empty role r0) is measured on ``fallback`` (the train table) instead, with a note."""
    datas, notes = change_data(test, rules)
    if fallback is not None:
        have = {d.method.split("[")[0] for d in datas}
        extra, _ = change_data(fallback, rules)
        for d in extra:
            if d.method.split("[")[0] not in have:
                d.method = f"{d.method} (train roles)"
                datas.append(d)
                notes.append(f"{d.method}: measured on the train roles, which include the baseline r0 "
                             "(the test table cannot support it).")
    summaries, per_values, c_tables = [], [], {}
    for data in datas:
        summaries.append(bootstrap(data, graphs, n_boot=n_boot, seed=seed, progress=progress,
                                   unexpected=rules.unexpected))
        for gname, graph in graphs.items():
            per = expected_unexpected(data.changed, data.values, graph, rules.unexpected)
            per.insert(0, "graph", gname)
            per.insert(0, "method", data.method)
            per_values.append(per)
        c_tables[data.method] = c_table(data)
    summary = with_paper(pd.concat(summaries, ignore_index=True)) if summaries else pd.DataFrame()
    per_value = pd.concat(per_values, ignore_index=True) if per_values else pd.DataFrame()
    return EffectResults(summary, per_value, c_tables, notes)


def learn_or_load(train: pd.DataFrame | None, test: pd.DataFrame, rules: EffectRules = PAPER_TEXT,
                  **pc_kwargs) -> tuple[ValueGraph, str]:
    """Our graph from the train table (the paper's protocol), else from the test table with a note."""
    table, where = (train, "the train table") if train is not None else (test, "the table it is evaluated on")
    rows, which = pc_rows(table, mode=rules.pc_rows, features=rules.features)
    graph = learn_graph(rows, undirected=rules.undirected, **pc_kwargs)
    graph.params["rows_used"] = which
    return graph, f"learned on {where} ({which}{'' if train is not None else '; no --train given'})"
