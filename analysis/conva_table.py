"""``conva-table``: the ConVA experiment's one table (ConVA Table 1's columns, Fig. 4's role-prompt methods and
the SFT baseline) from a leaderboard folder.

``python -m analysis leaderboard RUNS... --out DIR`` writes ``DIR/leaderboard.csv`` (one row per metric,
one column per run) and ``DIR/runs.csv`` (each run's steering, its ``kind`` and ``meta``). This reads both
(no model, no samples). The method of each of a run's dilemma tasks comes from two things only, never from
config or folder names: the run's steering — the ``meta`` tags that ``python -m steering_models.conva fit``
and ``sft`` write into their steering files (copied into the results JSON's ``config.steering.meta``):
unsteered, ``kind: caa``, ``kind: conva`` with ``gate: none`` (w/o gate) or any other gate (none named: the
op's default is the probe gate), ``kind: sft`` — and the task's prompt variant, read off the task name in the
results JSON: ``schwartz_dilemmas_<value>`` (plain), ``_ica_<value>``, ``_negative_<value>`` (the
negative-value role prompt) or ``_positive_<value>`` (the ICA prompt, Fig. 4's "positive prompt"); see
``METHOD_OF``. So one Fig. 4 sweep run (one steering, both variants) gives two methods. Per method:

- CSR, FR: pooled over every scored reply of all values' dilemma tasks (Σ csr·n_scored / Σ n_scored),
  with the number of scored replies;
- MMLU acc: ``mmlu_conva4/acc`` averaged over the method's runs (Base: one run; a steered method: one run
  per value, each steered by that value's vector), with the number of runs. The prompt methods have none
  (their prompts are for dilemmas).

A method no run gives stays in the table as one row with empty cells and, in ``note``, the run it needs.
A second table gives CSR per value and method. With ``--runs RUN_DIR...`` (the runs the leaderboard read),
two judge-free columns: the share of a method's dilemma replies that differ from Base's reply to the same
dilemma (same value, same doc: the variants share their docs), and the share of its MMLU predictions that
differ from Base's.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from analysis.io import Run, find_runs
from lm_eval_tasks.lm_eval_outputs import read_jsonl
from lm_eval_tasks.schwartz.data import VALUES

SFT = "SFT (LoRA, substitute data)"
# (prompt variant of the task, steering of the run) -> method; a pair not here is none of the table's methods
# (e.g. unsteered on the positive variant: the ICA prompt again, which the ICA row reads from the _ica_ tasks)
METHOD_OF: dict[tuple[str, str], str] = {
    ("plain", "none"): "Base", ("ica", "none"): "ICA",
    ("plain", "caa"): "CAA", ("plain", "conva w/o gate"): "ConVA w/o gate", ("plain", "conva"): "ConVA",
    ("negative", "none"): "negative prompt", ("negative", "caa"): "negative prompt + CAA",
    ("negative", "conva"): "negative prompt + ConVA",
    ("positive", "caa"): "ICA + CAA", ("ica", "caa"): "ICA + CAA",
    ("positive", "conva"): "ICA + ConVA", ("ica", "conva"): "ICA + ConVA",
    ("plain", "sft"): SFT,
}
METHODS = ("Base", "ICA", "CAA", "ConVA w/o gate", "ConVA", "negative prompt", "negative prompt + CAA",
           "negative prompt + ConVA", "ICA + CAA", "ICA + ConVA", SFT)
_NEEDS = {  # method -> the run that gives it, for the note of a method no run gives
    "Base": "an unsteered run of schwartz_dilemmas_<value> (the script's step `base`)",
    "ICA": "an unsteered run of schwartz_dilemmas_ica_<value> (step `ica`)",
    "CAA": "a `kind: caa` steering file on schwartz_dilemmas_<value> (step `sweeps`)",
    "ConVA w/o gate": "a `kind: conva`, `gate: none` steering file on schwartz_dilemmas_<value> (step `sweeps`)",
    "ConVA": "a gated `kind: conva` steering file on schwartz_dilemmas_<value> (step `sweeps`)",
    "negative prompt": "an unsteered run of schwartz_dilemmas_negative_<value> (step `fig4`)",
    "negative prompt + CAA": "a `kind: caa` steering file on schwartz_dilemmas_negative_<value> (step `fig4`)",
    "negative prompt + ConVA": "a gated `kind: conva` steering file on schwartz_dilemmas_negative_<value> "
                               "(step `fig4`)",
    "ICA + CAA": "a `kind: caa` steering file on schwartz_dilemmas_positive_<value> (step `fig4`)",
    "ICA + ConVA": "a gated `kind: conva` steering file on schwartz_dilemmas_positive_<value> (step `fig4`)",
    SFT: "a `kind: sft` run (steer_sft_<value>.yaml beside peft=) of schwartz_dilemmas_<value> (step `sft`)",
}
_TASK = re.compile(r"^schwartz_dilemmas_(?:(?P<variant>ica|negative|positive)_)?(?P<value>[a-z_]+)$")
_DILEMMA_METRICS = ("csr", "fr", "n_scored_csr", "n_scored_fr")
_MMLU = "mmlu_conva4/acc"


class TableError(ValueError):
    """The leaderboard folder cannot be read as the ConVA experiment."""


class DilemmaTask(NamedTuple):
    variant: str  # plain / ica / negative / positive
    value: str  # ConVA's spelling, e.g. self-direction


def dilemma_task(task: str) -> DilemmaTask | None:
    """The prompt variant and value of a per-value Schwartz dilemma task; None: not one (a group, MMLU, ...)."""
    m = _TASK.match(task)
    if not m or m["value"].replace("_", "-") not in VALUES:
        return None
    return DilemmaTask(m["variant"] or "plain", m["value"].replace("_", "-"))


def steering_of(kind: str, meta: dict[str, Any]) -> str:
    """The steering of a run as the table tells them apart: none / caa / conva / conva w/o gate / sft / the
    kind as given (none of the table's)."""
    if kind == "conva" and meta.get("gate") == "none":
        return "conva w/o gate"
    return kind


def method_of(kind: str, meta: dict[str, Any], variant: str = "plain") -> str | None:
    """The method of a run's task, from the run's steering ``kind`` (``none`` = unsteered) and ``meta`` and the
    task's prompt variant (``plain`` for MMLU); None: not one of the table's methods."""
    return METHOD_OF.get((variant, steering_of(kind, meta)))


def run_steering(run: Run) -> tuple[str, dict[str, Any]]:
    """``kind`` and ``meta`` of one lm-eval run (its results JSON's ``config.steering``)."""
    return run.steer_kind, dict((run.steering or {}).get("meta") or {})


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


def _steerings(board: pd.DataFrame, runs: pd.DataFrame) -> dict[str, tuple[str, dict[str, Any]]]:
    """leaderboard column (run) -> its steering ``kind`` and ``meta`` (from runs.csv)."""
    info = runs.set_index("run")
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for run in [c for c in board.columns if c != "metric"]:
        kind = str(info.at[run, "kind"]) if run in info.index else "none"
        meta = json.loads(info.at[run, "meta"]) if run in info.index and info.at[run, "meta"] else {}
        out[run] = (kind, meta)
    return out


def _dilemma_metrics(column: pd.Series) -> Iterator[tuple[DilemmaTask, str, float]]:
    """(task, metric, number) of every per-value dilemma CSR/FR metric in one run's leaderboard column."""
    for metric_id, number in column.dropna().items():
        task, _, metric = str(metric_id).rpartition("/")
        found = dilemma_task(task)
        if found is not None and metric in _DILEMMA_METRICS:
            yield found, metric, float(number)


def per_value(board: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Long table: one row per (method, run, variant, value) with csr, fr, n_scored_csr, n_scored_fr."""
    metrics = board.set_index("metric")
    rows = []
    for run, (kind, meta) in _steerings(board, runs).items():
        found: dict[DilemmaTask, dict[str, float]] = {}
        for task, metric, number in _dilemma_metrics(metrics[run]):
            found.setdefault(task, {})[metric] = number
        for task, numbers in found.items():
            method = method_of(kind, meta, task.variant)
            if method is not None:
                rows.append({"method": method, "run": run, "variant": task.variant, "value": task.value, **numbers})
    return pd.DataFrame(rows, columns=["method", "run", "variant", "value", *_DILEMMA_METRICS])


def not_in_table(board: pd.DataFrame, runs: pd.DataFrame) -> list[str]:
    """One line per (steering, prompt variant) of dilemma runs that is none of the table's methods."""
    metrics = board.set_index("metric")
    left: dict[tuple[str, str], set[str]] = {}
    for run, (kind, meta) in _steerings(board, runs).items():
        for task, _, _ in _dilemma_metrics(metrics[run]):
            if method_of(kind, meta, task.variant) is None:
                left.setdefault((steering_of(kind, meta), task.variant), set()).add(run)
    return [f"not in the table: {len(names)} run(s) with steering `{steering}` on the {variant} dilemmas "
            f"({', '.join(sorted(names))})"
            + (": the ICA prompt again (the ICA row reads schwartz_dilemmas_ica_*)"
               if (steering, variant) == ("none", "positive") else "")
            for (steering, variant), names in sorted(left.items())]


def _pooled(frame: pd.DataFrame, metric: str) -> tuple[float, int]:
    n = frame[f"n_scored_{metric}"].fillna(0)
    total = int(n.sum())
    if total == 0:
        return math.nan, 0
    return float((frame[metric].fillna(0) * n).sum() / total), total


def method_table(board: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per method of ``METHODS``: CSR, FR (pooled over scored replies), MMLU acc (mean over the method's
    runs); a method no run gives: empty cells and in ``note`` the run it needs."""
    long = per_value(board, runs)
    if long.empty:
        raise TableError("no run of the leaderboard has Schwartz dilemma CSR/FR metrics; pass the leaderboard of "
                         "the ConVA experiment (examples/conva_experiment.sh).")
    steerings = _steerings(board, runs)
    mmlu = board.set_index("metric").loc[_MMLU].dropna() if _MMLU in set(board["metric"]) else pd.Series()
    out = []
    for method in METHODS:
        sub = long[long["method"] == method]
        csr, n_csr = _pooled(sub, "csr")
        fr, n_fr = _pooled(sub, "fr")
        accs = [float(acc) for run, acc in mmlu.items() if method_of(*steerings[run]) == method]
        note = "" if len(sub) or accs else f"no run: needs {_NEEDS[method]}"
        if method == SFT and note == "":
            data = sorted({str(steerings[r][1].get("data", "?")) for r in set(sub["run"])} or {"?"})
            note = f"trained on {', '.join(data)} (a substitute for FULCRA)"
        out.append({"method": method, "CSR": csr, "FR": fr, "MMLU acc": sum(accs) / len(accs) if accs else math.nan,
                    "values": sub["value"].nunique(), "scored (CSR)": n_csr, "scored (FR)": n_fr,
                    "MMLU runs": len(accs), "note": note})
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
    return table[[m for m in METHODS if m in table.columns]].astype(float).reset_index()  # (all-0 means: int)


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


# a task -> (what its docs are compared on across methods, its prompt variant), or None: not compared
_Key = Callable[[str], tuple[str, str] | None]


def _changed(run_dirs: list[str | Path], key: _Key,
             answer: Callable[[dict[str, Any]], str]) -> dict[str, tuple[int, int]]:
    base: dict[tuple[str, str], str] = {}
    steered: list[tuple[str, str, dict[str, str]]] = []
    for run in find_runs(list(run_dirs)):
        kind, meta = run_steering(run)
        for task, path in run.sample_files.items():
            found = key(task)
            method = None if found is None else method_of(kind, meta, found[1])
            if method == "Base":
                base.update({(found[0], doc): a for doc, a in _answers(path, answer).items()})
            elif method is not None:
                steered.append((method, found[0], _answers(path, answer)))
    counts: dict[str, tuple[int, int]] = {}
    for method, compared_on, answers in steered:
        pairs = [(a, base[(compared_on, doc)]) for doc, a in answers.items() if (compared_on, doc) in base]
        changed, total = counts.get(method, (0, 0))
        counts[method] = (changed + sum(x != y for x, y in pairs), total + len(pairs))
    return counts


def _dilemma_key(task: str) -> tuple[str, str] | None:
    found = dilemma_task(task)
    return None if found is None else (found.value, found.variant)


def changed_vs_base(run_dirs: list[str | Path]) -> dict[str, tuple[int, int]]:
    """method -> (dilemma replies that differ from Base's reply to the same dilemma, replies compared): a reply
    to a prompt variant is compared with Base's reply to the plain dilemma of the same value and doc."""
    return _changed(run_dirs, _dilemma_key, _reply)


def dilemma_replies(run_dirs: list[str | Path]) -> dict[tuple[str, str, str], str]:
    """(method, value, doc id) -> the generated reply, for every dilemma task of the runs whose method is one of
    the table's (the reader's CSR labels are keyed the same way: ``python -m analysis csr-replies``)."""
    replies: dict[tuple[str, str, str], str] = {}
    for run in find_runs(list(run_dirs)):
        kind, meta = run_steering(run)
        for task, path in run.sample_files.items():
            found = dilemma_task(task)
            method = None if found is None else method_of(kind, meta, found.variant)
            if method is not None:
                replies.update({(method, found.value, doc): a for doc, a in _answers(path, _reply).items()})
    return replies


def mmlu_changed_vs_base(run_dirs: list[str | Path]) -> dict[str, tuple[int, int]]:
    """method -> (mmlu_conva4 questions whose predicted choice differs from Base's, questions compared): at
    chance-level accuracy this shows what the accuracy cannot, whether a steering method touches the answers."""
    return _changed(run_dirs, lambda task: (task, "plain") if task.startswith("mmlu_conva4_") else None, _choice)


def with_changed(table: pd.DataFrame, counts: dict[str, tuple[int, int]],
                 column: str = "replies changed vs Base") -> pd.DataFrame:
    table = table.copy()
    # "–": the method's runs have answers, but no Base answer to the same questions to compare with
    table[column] = [("" if m not in counts else f"{counts[m][0]}/{counts[m][1]}" if counts[m][1] else "–")
                     for m in table["method"]]
    return table


def for_print(table: pd.DataFrame) -> pd.DataFrame:
    """The table as printed (``to_markdown(index=False, disable_numparse=True)``, so that tabulate keeps the
    strings): numbers to 3 decimals, empty cells (a method without the metric) as "–"."""
    shown = table.copy()
    for column in shown.columns:
        if pd.api.types.is_float_dtype(shown[column]):
            shown[column] = [("–" if math.isnan(x) else f"{x:.3f}") for x in shown[column]]
    return shown


def judge_agreement(folder: Path) -> list[str]:
    """One line per judge of the Schwartz tasks in the leaderboard folder's ``judges.csv`` (written by
    ``leaderboard --out`` from the logged samples): its id and newest measured agreement for CSR and for FR
    (each measured on its own set), so neither appears without it. No file (a leaderboard of runs nobody
    judged): no line."""
    path = folder / "judges.csv"
    if not path.is_file():
        return []
    judges = pd.read_csv(path, keep_default_na=False, dtype=str)
    rows = judges[judges["task"].str.startswith("schwartz")].drop_duplicates(["judge", "judged metrics"])
    return [f"{r['judged metrics'].upper()} judged by {r['judge']}: measured agreement {r['measured agreement']}"
            for _, r in rows.iterrows()]
