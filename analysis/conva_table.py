"""``conva-table``: the ConVA experiment's one table (ConVA Table 1's columns) from a leaderboard folder.

``python -m analysis leaderboard RUNS... --out DIR`` writes ``DIR/leaderboard.csv`` (one row per metric,
one column per run) and ``DIR/runs.csv`` (each run's steering, its ``kind`` and ``meta``). This reads both
(no model, no samples) and groups the runs into the five methods by the ``meta`` tags that
``python -m steering_models.conva fit`` writes into its steering files (copied into the results JSON's
``config.steering.meta``): unsteered without ICA tasks = Base, unsteered with ``schwartz_dilemmas_ica_*``
tasks = ICA, ``kind: caa`` = CAA, ``kind: conva`` with ``gate: none`` = ConVA w/o gate, ``kind: conva``
with any other gate (or none named: the op's default is the probe gate) = ConVA. Config names do not
matter. Per method:

- CSR, FR: pooled over every scored reply of all values' dilemma tasks (Σ csr·n_scored / Σ n_scored),
  with the number of scored replies;
- MMLU acc: ``mmlu_conva4/acc`` averaged over the method's runs (Base: one run; a steered method: one run
  per value, each steered by that value's vector), with the number of runs. ICA has none (its prompt
  is for dilemmas).

A second table gives CSR per value and method. With ``--runs RUN_DIR...`` (the runs the leaderboard read),
two judge-free columns: the share of a steered method's dilemma replies that differ from Base's reply to the
same dilemma (same task, same doc), and the share of its MMLU predictions that differ from Base's.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.io import Run, find_runs
from lm_eval_tasks.lm_eval_outputs import read_jsonl

METHODS = ("Base", "ICA", "CAA", "ConVA w/o gate", "ConVA")
_DILEMMA = re.compile(r"^schwartz_dilemmas_(?:ica_)?(?P<value>[a-z_]+)/(?P<metric>csr|fr|n_scored_csr|n_scored_fr)$")


class TableError(ValueError):
    """The leaderboard folder cannot be read as the ConVA experiment."""


def method_of(kind: str, meta: dict[str, Any], metrics: set[str]) -> str | None:
    """The method of a run, from its steering ``kind`` (``none`` = unsteered), its steering ``meta`` and its
    metric (or task) ids; None: not one of ConVA's methods."""
    if kind == "none":
        return "ICA" if any(m.startswith("schwartz_dilemmas_ica_") for m in metrics) else "Base"
    if kind == "caa":
        return "CAA"
    if kind == "conva":
        return "ConVA w/o gate" if meta.get("gate") == "none" else "ConVA"
    return None


def run_method(run: Run) -> str | None:
    """The method of one lm-eval run (its results JSON's ``config.steering``)."""
    meta = (run.steering or {}).get("meta") or {}
    return method_of(run.steer_kind, meta, set(run.sample_files))


def read_leaderboard(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    board_csv, runs_csv = folder / "leaderboard.csv", folder / "runs.csv"
    for path in (board_csv, runs_csv):
        if not path.is_file():
            raise TableError(f"{path} does not exist; pass the --out folder of `python -m analysis leaderboard "
                             "RUNS... --out DIR`.")
    runs = pd.read_csv(runs_csv, keep_default_na=False, dtype=str)
    missing = [c for c in ("run", "kind", "meta") if c not in runs.columns]
    if missing:
        raise TableError(f"{runs_csv} has no column {missing[0]!r}: it was written by an older `python -m analysis "
                         "leaderboard`; rerun the leaderboard on the same runs with --out DIR.")
    return pd.read_csv(board_csv), runs


def _methods(board: pd.DataFrame, runs: pd.DataFrame) -> dict[str, str | None]:
    """leaderboard column (run) -> its method."""
    info = runs.set_index("run")
    metrics = board.set_index("metric")
    out: dict[str, str | None] = {}
    for run in [c for c in board.columns if c != "metric"]:
        kind = str(info.at[run, "kind"]) if run in info.index else "none"
        meta = json.loads(info.at[run, "meta"]) if run in info.index and info.at[run, "meta"] else {}
        out[run] = method_of(kind, meta, set(metrics[run].dropna().index))
    return out


def per_value(board: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Long table: one row per (method, run, value) with csr, fr, n_scored_csr, n_scored_fr."""
    rows = []
    for run, method in _methods(board, runs).items():
        col = board.set_index("metric")[run].dropna()
        if method is None:
            continue
        found: dict[str, dict[str, float]] = {}
        for metric_id, value in col.items():
            m = _DILEMMA.match(str(metric_id))
            if m:
                found.setdefault(m["value"].replace("_", "-"), {})[m["metric"]] = float(value)
        for value, metrics in found.items():
            rows.append({"method": method, "run": run, "value": value, **metrics})
    return pd.DataFrame(rows, columns=["method", "run", "value", "csr", "fr", "n_scored_csr", "n_scored_fr"])


def _pooled(frame: pd.DataFrame, metric: str) -> tuple[float, int]:
    n = frame[f"n_scored_{metric}"].fillna(0)
    total = int(n.sum())
    if total == 0:
        return math.nan, 0
    return float((frame[metric].fillna(0) * n).sum() / total), total


def method_table(board: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per method: CSR, FR (pooled over scored replies), MMLU acc (mean over the method's runs)."""
    long = per_value(board, runs)
    if long.empty:
        raise TableError("no run of the leaderboard has Schwartz dilemma CSR/FR metrics; pass the leaderboard of "
                         "the ConVA experiment (examples/conva_experiment.sh).")
    methods = _methods(board, runs)
    mmlu = board.set_index("metric").loc["mmlu_conva4/acc"] if "mmlu_conva4/acc" in set(board["metric"]) else None
    out = []
    for method in METHODS:
        sub = long[long["method"] == method]
        csr, n_csr = _pooled(sub, "csr")
        fr, n_fr = _pooled(sub, "fr")
        accs = [] if mmlu is None else [float(acc) for run, acc in mmlu.dropna().items() if methods[run] == method]
        if sub.empty and not accs:
            continue
        out.append({"method": method, "CSR": csr, "FR": fr, "MMLU acc": sum(accs) / len(accs) if accs else math.nan,
                    "values": sub["value"].nunique(), "scored (CSR)": n_csr, "scored (FR)": n_fr,
                    "MMLU runs": len(accs)})
    return pd.DataFrame(out)


def constant_judge(board: pd.DataFrame, runs: pd.DataFrame) -> list[str]:
    """One warning per judged metric (CSR, FR) whose every scored reply, over all methods, got the same label:
    such a judge cannot rank the methods (the embedded 0.5B model as local judge answers "No"/"False" to all)."""
    long = per_value(board, runs)
    warnings = []
    for metric, labels in (("csr", ("No", "Yes")), ("fr", ("False", "True"))):
        share, n = _pooled(long, metric)
        if n and share in (0.0, 1.0):
            warnings.append(f"warning: the judge gave all {n} scored {metric.upper()} replies the label "
                            f"{labels[int(share)]!r}, so {metric.upper()} cannot rank the methods; rerun the dilemma "
                            "tasks with a stronger judge (VALUE_JUDGE_BASE_URL/VALUE_JUDGE_MODEL) and compare "
                            "judges with `python -m analysis judge-agreement`.")
    return warnings


def csr_by_value(board: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    long = per_value(board, runs)
    table = long.pivot_table(index="value", columns="method", values="csr", aggfunc="mean")
    return table[[m for m in METHODS if m in table.columns]].reset_index()


def _reply(sample: dict[str, Any]) -> str:
    """A generated dilemma reply, as generated."""
    return str(sample["resps"][0][0])


def _choice(sample: dict[str, Any]) -> str:
    """A multiple-choice prediction: the index of the highest-loglikelihood choice (as lm-eval's acc)."""
    lls = [float(r[0][0]) for r in sample["resps"]]
    return str(max(range(len(lls)), key=lls.__getitem__))


def _answers(path: Path, answer: Callable[[dict[str, Any]], str]) -> dict[str, str]:
    """doc_id -> answer(sample), from one lm-eval samples JSONL."""
    return {str(sample["doc_id"]): answer(sample) for sample in read_jsonl(path, required=("doc_id", "resps"))}


def _changed(run_dirs: list[str | Path], task_re: str,
             answer: Callable[[dict[str, Any]], str]) -> dict[str, tuple[int, int]]:
    base: dict[tuple[str, str], str] = {}
    steered: list[tuple[str, str, dict[str, str]]] = []
    for run in find_runs(list(run_dirs)):
        tasks = {t: p for t, p in run.sample_files.items() if re.match(task_re, t)}
        method = run_method(run)
        for task, path in tasks.items():
            if method == "Base":
                base.update({(task, doc): a for doc, a in _answers(path, answer).items()})
            elif method in METHODS:
                steered.append((method, task, _answers(path, answer)))
    counts: dict[str, tuple[int, int]] = {}
    for method, task, answers in steered:
        pairs = [(a, base[(task, doc)]) for doc, a in answers.items() if (task, doc) in base]
        changed, total = counts.get(method, (0, 0))
        counts[method] = (changed + sum(x != y for x, y in pairs), total + len(pairs))
    return counts


def changed_vs_base(run_dirs: list[str | Path]) -> dict[str, tuple[int, int]]:
    """method -> (dilemma replies that differ from Base's reply to the same dilemma, replies compared)."""
    return _changed(run_dirs, r"^schwartz_dilemmas_(?!ica_)", _reply)


def mmlu_changed_vs_base(run_dirs: list[str | Path]) -> dict[str, tuple[int, int]]:
    """method -> (mmlu_conva4 questions whose predicted choice differs from Base's, questions compared): at
    chance-level accuracy this shows what the accuracy cannot, whether a steering method touches the answers."""
    return _changed(run_dirs, r"^mmlu_conva4_", _choice)


def with_changed(table: pd.DataFrame, counts: dict[str, tuple[int, int]],
                 column: str = "replies changed vs Base") -> pd.DataFrame:
    table = table.copy()
    table[column] = [f"{counts[m][0]}/{counts[m][1]}" if m in counts else "" for m in table["method"]]
    return table


def judge_agreement(folder: Path) -> list[str]:
    """One line per judge of the Schwartz tasks in the leaderboard folder's ``judges.csv`` (written by
    ``leaderboard --out`` from the logged samples): its id and newest measured agreement, so CSR/FR never
    appear without it. No file (a leaderboard of runs nobody judged): no line."""
    path = folder / "judges.csv"
    if not path.is_file():
        return []
    judges = pd.read_csv(path, keep_default_na=False, dtype=str)
    rows = judges[judges["task"].str.startswith("schwartz")].drop_duplicates("judge")
    return [f"CSR/FR judged by {r['judge']}: measured agreement {r['measured agreement']}"
            for _, r in rows.iterrows()]
