"""Headline metrics of lm-eval runs, side by side (``python -m analysis leaderboard``).

Every numeric metric of a run's results JSON becomes one metric id ``<task>/<metric>`` (lm-eval's
filter suffix dropped; a second filter keeps it as ``<metric>,<filter>``); ValueBench subtasks are
named ``<group>/<Value>/<metric>`` (e.g. ``valuebench_ll_test/Achievement/orientation``), so the
per-value orientations of runs line up row by row. CSR/FR of the Schwartz tasks come with their
``n_scored_csr``/``n_scored_fr`` and the number of samples (``n_total``).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pandas as pd

from analysis.io import Run
from lm_eval_tasks.values import VALUES, canonical_value

_VB_SUB = re.compile(r"^(?P<group>valuebench_(?:cot|ll)_(?:train|test)|valuebench_explicit)_(?P<value>.+)$")
_SKIP = {"alias", "name", "sample_len", " "}
HIGHER_IS_BETTER = {"acc", "acc_norm", "csr", "fr", "exact_match"}


def run_metrics(run: Run, rejudged: dict[str, Any] | None = None) -> dict[str, float]:
    """metric id -> value for every numeric metric in the run's results JSON; a re-judge's summary
    (``python -m analysis judge``, :func:`analysis.judge.report.find_rejudged`) replaces the judged metrics of
    its tasks."""
    out: dict[str, float] = {}
    results: dict[str, dict[str, Any]] = run.results.get("results", {})
    n_samples = run.results.get("n-samples", {})
    for task, metrics in results.items():
        filters = {k.split(",", 1)[1] for k in metrics if "," in k}
        prefix = _task_prefix(task)
        for key, value in metrics.items():
            if key in _SKIP or "_stderr" in key or isinstance(value, (str, bool)) or value is None:
                continue
            try:
                value = float(value)
            except (TypeError, ValueError):
                continue
            name, _, flt = key.partition(",")
            if len(filters) > 1 and flt:
                name = f"{name},{flt}"
            out[f"{prefix}/{name}"] = value
        if task in n_samples and any(k.startswith(("csr", "fr")) for k in metrics):
            out[f"{prefix}/n_total"] = float(n_samples[task].get("effective", n_samples[task].get("original", math.nan)))
    for task, row in ((rejudged or {}).get("tasks") or {}).items():
        prefix = _task_prefix(task)
        out.update({f"{prefix}/{k}": float(v) for k, v in row.items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool)})
    return out


def _task_prefix(task: str) -> str:
    m = _VB_SUB.match(task)
    if m:
        value = canonical_value(m["value"])
        if value:
            return f"{m['group']}/{value}"
    return task


def _sort_key(metric: str) -> tuple:
    parts = metric.split("/")
    if len(parts) == 3 and parts[1] in VALUES:
        return (0, parts[0], parts[2], VALUES.index(parts[1]))
    return (1, metric)


def leaderboard(runs: list[Run], rejudged: dict[str, dict[str, Any]] | None = None) -> pd.DataFrame:
    """One row per metric id, one column per run (NaN where a run lacks the metric); ``rejudged``: run label ->
    a re-judge's summary whose judged metrics replace the run's."""
    cols = {run.label: run_metrics(run, (rejudged or {}).get(run.label)) for run in runs}
    ids = sorted({m for metrics in cols.values() for m in metrics}, key=_sort_key)
    table = pd.DataFrame({"metric": ids})
    for label, metrics in cols.items():
        table[label] = [metrics.get(m, math.nan) for m in ids]
    return table


def run_info(runs: list[Run]) -> pd.DataFrame:
    """One row per run: label, model, steering config id, ``kind``, ``meta`` (the steering file's tags as JSON),
    spec hash, results file."""
    rows = []
    for run in runs:
        st = run.steering
        meta = (st or {}).get("meta") or {}
        rows.append({"run": run.label, "model": run.model, "steering": run.config_id or "(unsteered)",
                     "kind": run.steer_kind, "meta": json.dumps(meta, sort_keys=True) if meta else "",
                     "hash": (st or {}).get("hash", "")[:12], "results": str(run.results_path)})
    return pd.DataFrame(rows)


def orientation_view(board: pd.DataFrame, metric: str = "orientation") -> pd.DataFrame:
    """Per-value orientations side by side: rows = (group, value) + a mean row per group."""
    runs = [c for c in board.columns if c != "metric"]
    parts = board["metric"].str.split("/", expand=True)
    if parts.shape[1] < 3:
        return pd.DataFrame()
    mask = (parts[2] == metric) & parts[1].isin(VALUES)
    sub = board[mask].copy()
    if sub.empty:
        return pd.DataFrame()
    sub.insert(0, "task", parts.loc[mask, 0])
    sub.insert(1, "value", parts.loc[mask, 1])
    sub = sub.drop(columns="metric")
    frames = []
    for task, grp in sub.groupby("task", sort=False):
        mean = {"task": task, "value": "(mean)", **{r: grp[r].mean() for r in runs}}
        frames.append(pd.concat([grp, pd.DataFrame([mean])], ignore_index=True))
    view = pd.concat(frames, ignore_index=True)
    if len(runs) >= 2:
        view[f"Δ {runs[-1]} − {runs[0]}"] = view[runs[-1]] - view[runs[0]]
    return view


def other_view(board: pd.DataFrame) -> pd.DataFrame:
    """Every metric that is not a per-value ValueBench orientation."""
    parts = board["metric"].str.split("/")
    keep = [not (len(p) == 3 and p[1] in VALUES) for p in parts]
    return board[keep].reset_index(drop=True)


def per_value_metrics(board: pd.DataFrame) -> list[str]:
    """Metric names that exist per ValueBench value (orientation first)."""
    names = []
    for m in board["metric"]:
        parts = m.split("/")
        if len(parts) == 3 and parts[1] in VALUES and parts[2] not in names:
            names.append(parts[2])
    return sorted(names, key=lambda n: (n != "orientation", n.startswith("n_"), n))


def run_judges(run: Run) -> dict[str, set[str]]:
    """task -> the ids of the judges that labelled its logged samples (the A.1 rules excluded)."""
    from analysis.judge.samples import judgment
    from lm_eval_tasks.lm_eval_outputs import read_jsonl

    out: dict[str, set[str]] = {}
    for task, path in sorted(run.sample_files.items()):
        if not (task.startswith("schwartz_dilemmas") or task.startswith(("valuebench_cot", "valuebench_explicit"))):
            continue
        ids = {j.get("judged_by") for j in map(judgment, read_jsonl(path)) if j}
        ids -= {None, "rules"}
        if ids:
            out[task] = ids
    return out


def judge_view(runs: list[Run], rejudged: dict[str, dict[str, Any]] | None = None) -> pd.DataFrame:
    """Which judge labelled each judged task of each run (a re-judge's, for the tasks it judged), and its measured
    agreement (newest judge-bench of that judge, or "not measured"): the table that travels with the judged
    numbers."""
    from analysis.judge.measured import describe

    rows = []
    for run in runs:
        judges = run_judges(run)
        summary = (rejudged or {}).get(run.label)
        if summary:
            judges.update({task: {str(summary.get("judge_id"))} for task in summary.get("tasks") or {}})
        for task, ids in judges.items():
            # each judged metric with the agreement of its own template: CSR (Table 11), FR (Table 13), Template 1
            metrics = (("csr", "csr"), ("fr", "fluency")) if task.startswith("schwartz") else \
                (("orientation", "answer_judgment"),)
            for judge_id in sorted(ids):
                for metric, template in metrics:
                    rows.append({"run": run.label, "task": _task_prefix(task), "judged metrics": metric,
                                 "judge": judge_id, "measured agreement": describe(judge_id, template)})
    return pd.DataFrame(rows)
