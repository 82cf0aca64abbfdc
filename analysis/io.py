"""Read what ``lm_eval --output_path DIR --log_samples`` wrote into one tidy pandas table.

A run is one ``results_<timestamp>.json`` (anywhere under the folder given) plus the
``samples_<task>_<timestamp>.jsonl`` files written beside it with the same timestamp. The steering
config of a run comes from the results JSON's ``config.steering`` (docs/ARCHITECTURE.md §3): absent
(plain ``hf``) or with no interventions and no ``meta.kind`` = unsteered. A sweep run may tag each sample instead, with
``doc["steer_dim"]`` (and optionally ``doc["steer_kind"]``, ``doc["feature"]``); that tag wins.

Tidy table (one row per logged ValueBench sample), columns ``SAMPLE_COLUMNS``:
``run`` (label of the run), ``run_dir``, ``model``, ``task``, ``mode`` (cot/ll/explicit),
``config`` (steering config id; "" = unsteered), ``steer_kind`` (none = unsteered empty role r0 /
role_prompt = unsteered with a role / sae_feature / vector / conva / explicit_instruction / other), ``feature`` (SAE feature id or None), ``role_id``,
``role_name``, ``role_split``, ``value``, ``item_id``, ``agreement``, ``instruction``, ``question``,
``score`` (the per-sample metric ``orientation``: +1/-1/0, NaN = unscored), ``label``, ``thought``,
``answer``, ``judged_by``, ``p_yes_minus_p_no``, ``score_soft`` (the loglikelihood tasks' per-sample
``orientation_soft`` = agreement x (p(yes) - p(no)), in [-1, 1]; NaN for CoT runs).
"""

from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from lm_eval_tasks.lm_eval_outputs import (
    LmEvalOutputError,
    logged_dict,
    read_jsonl,
    results_date_id,
    samples_name,
)

SAMPLE_COLUMNS = [
    "run", "run_dir", "model", "task", "mode", "config", "steer_kind", "feature", "role_id", "role_name",
    "role_split", "value", "item_id", "agreement", "instruction", "question", "score", "label",
    "thought", "answer", "judged_by", "p_yes_minus_p_no", "score_soft",
]

_VB_TASK = re.compile(r"^valuebench_(?P<mode>cot|ll|explicit)(?:_(?P<split>train|test))?_")


@dataclass
class Run:
    """One lm-eval run: its results JSON and its sample files."""

    label: str
    results_path: Path
    results: dict[str, Any]
    sample_files: dict[str, Path] = field(default_factory=dict)

    @property
    def steering(self) -> dict[str, Any] | None:
        """``config.steering`` of the results JSON, or None when the run is unsteered: no interventions and no
        ``meta.kind`` (a steering file with only a ``meta.kind`` labels a run changed otherwise, e.g. ``conva
        sft``'s ``steer_sft_<value>.yaml`` beside ``peft=``)."""
        steering = (self.results.get("config") or {}).get("steering")
        if not steering:
            return None
        if not (steering.get("spec") or {}).get("interventions") and not (steering.get("meta") or {}).get("kind"):
            return None
        return steering

    @property
    def config_id(self) -> str:
        return "" if self.steering is None else str(self.steering.get("name") or self.steering.get("hash"))

    @property
    def model(self) -> str:
        cfg = self.results.get("config") or {}
        args = cfg.get("model_args") or {}
        if isinstance(args, dict) and args.get("pretrained"):
            return str(args["pretrained"])
        return str(self.results.get("model_name") or cfg.get("model") or "")

    @property
    def steer_kind(self) -> str:
        return steer_kind(self.steering)

    @property
    def feature(self) -> Any:
        return steer_feature(self.steering)


def steer_kind(steering: dict[str, Any] | None) -> str:
    """none / sae_feature / vector / conva / other: ``meta.kind`` if given, else read off the spec."""
    if steering is None:
        return "none"
    kind = (steering.get("meta") or {}).get("kind")
    if kind:
        return str(kind)
    interventions = (steering.get("spec") or {}).get("interventions") or []
    sources = [iv.get("source") or {} for iv in interventions]
    ops = {iv.get("op") for iv in interventions}
    if "conva" in ops:
        return "conva"
    if sources and all("sae" in s for s in sources):
        return "sae_feature"
    if sources and all("vector" in s for s in sources):
        return "vector"
    return "other"


def steer_feature(steering: dict[str, Any] | None) -> Any:
    if steering is None:
        return None
    meta = steering.get("meta") or {}
    if "feature" in meta:
        return meta["feature"]
    feats = [(iv.get("source") or {}).get("feature") for iv in (steering.get("spec") or {}).get("interventions") or []]
    feats = [f for f in feats if f is not None]
    return feats[0] if len(feats) == 1 else None


AMOUNT_KEYS = ("strength", "factor", "value")  # the amount field of add / scale_feature / clamp_feature


def steer_amount(steering: dict[str, Any] | None) -> float | None:
    """How strongly a config steers (``meta`` strength/factor/value, else its one intervention's), or None."""
    if steering is None:
        return None
    meta = steering.get("meta") or {}
    interventions = (steering.get("spec") or {}).get("interventions") or []
    for source in [meta] + (interventions if len(interventions) == 1 else []):
        for key in AMOUNT_KEYS:
            if isinstance(source.get(key), (int, float)) and not isinstance(source.get(key), bool):
                return float(source[key])
    return None


def find_runs(paths: list[str | Path]) -> list[Run]:
    """Every run (results JSON + its sample files) under each path; labels are unique.

    A path may be the ``--output_path`` folder, the model sub-folder lm-eval made in it, or one
    ``results_*.json`` file. Raises ``LmEvalOutputError`` naming the missing file.
    """
    runs: list[Run] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise LmEvalOutputError(f"{path} does not exist; pass the --output_path folder of an "
                                    "`lm_eval ... --log_samples` run.")
        if path.is_file():
            if results_date_id(path.name) is None:
                raise LmEvalOutputError(f"{path} is not an lm-eval results file (results_<timestamp>.json); "
                                        "pass the --output_path folder or its results_*.json.")
            results_files = [path]
        else:
            results_files = sorted(p for p in path.rglob("results_*.json") if results_date_id(p.name))
            if not results_files:
                raise LmEvalOutputError(
                    f"{path} is not an lm-eval output folder: no results_<timestamp>.json found under it; "
                    "pass the --output_path of an `lm_eval ... --output_path DIR --log_samples` run.")
        base = path.name if path.is_dir() else path.parent.name
        found = _latest_per_config([_read_run(base, rf) for rf in results_files])
        for run in found:
            if len(found) > 1:
                run.label = f"{base}:{run.config_id or 'unsteered'}"
            runs.append(run)
    seen: dict[str, int] = {}
    for run in runs:
        n = seen.get(run.label, 0)
        seen[run.label] = n + 1
        if n:
            run.label = f"{run.label}#{n + 1}"
    return runs


def _latest_per_config(runs: list[Run]) -> list[Run]:
    """A folder lm_eval wrote into twice with the same model, steering and tasks holds two results files:
    keep the newest (a warning names the older one); different configs (a sweep) all stay."""
    latest: dict[tuple, Run] = {}
    for run in sorted(runs, key=lambda r: r.results_path.name):
        steering = run.steering or {}
        key = (str(run.results_path.parent), run.model, steering.get("hash"), tuple(sorted(run.results.get("results", {}))))
        if key in latest:
            warnings.warn(f"{latest[key].results_path} is superseded by the newer {run.results_path.name} "
                          "(same model, steering and tasks); using the newer run.", stacklevel=3)
        latest[key] = run
    return sorted(latest.values(), key=lambda r: str(r.results_path))


def _read_run(label: str, results_path: Path) -> Run:
    try:
        results = json.loads(results_path.read_text())
    except json.JSONDecodeError as exc:
        raise LmEvalOutputError(f"{results_path} is not valid JSON ({exc}); re-run lm_eval or remove the file.") from exc
    if not isinstance(results, dict) or "results" not in results:
        raise LmEvalOutputError(f"{results_path} has no 'results' key, so it is not an lm-eval results "
                                "file; pass the --output_path folder of an lm_eval run.")
    ts = results_date_id(results_path.name)
    samples = {}
    for p in results_path.parent.glob(f"samples_*_{ts}.jsonl"):
        name = samples_name(p.name)
        if name is not None and name.date_id == ts:
            samples[name.task] = p
    return Run(label=label, results_path=results_path, results=results, sample_files=samples)


def parse_response(resp: Any) -> dict[str, Any]:
    """``filtered_resps[0]`` as a dict: lm-eval logs the filter's dict as its Python repr."""
    parsed = logged_dict(resp)
    if parsed is not None:
        return parsed
    if isinstance(resp, str):
        return {"answer": resp}
    if isinstance(resp, (list, tuple)) and resp:
        return parse_response(resp[0])
    return {"answer": resp if isinstance(resp, str) else None}


def _float(x: Any) -> float:
    if x is None:
        return math.nan
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def valuebench_tasks(run: Run) -> list[str]:
    return sorted(t for t in run.sample_files if _VB_TASK.match(t))


def check_one_model(runs: list[Run], allow_mixed_models: bool = False) -> None:
    """Refuse (``LmEvalOutputError``) runs of more than one model, naming a results file of each, unless
    ``allow_mixed_models``: their orientations would be averaged as if one model had answered."""
    by_model: dict[str, Path] = {}
    for run in runs:
        by_model.setdefault(run.model, run.results_path)
    if len(by_model) > 1 and not allow_mixed_models:
        shown = "; ".join(f"{m or '(no model name)'} in {path}" for m, path in sorted(by_model.items()))
        raise LmEvalOutputError(f"the runs are of {len(by_model)} different models ({shown}); analyse one "
                                "model's runs at a time, or pass --allow-mixed-models to merge them on purpose.")


def expected_samples(run: Run, task: str) -> int | None:
    """How many samples the results JSON says ``task`` evaluated (``n-samples``' effective count), or None."""
    n = (run.results.get("n-samples") or {}).get(task) or {}
    value = n.get("effective", n.get("original")) if isinstance(n, dict) else None
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def warn_if_truncated(run: Run, task: str, n_read: int) -> None:
    """A samples file with fewer records than its results JSON's n-samples (cut at a line boundary, a
    killed copy) gives numbers from part of the data: say so, naming both files."""
    expected = expected_samples(run, task)
    if expected is not None and n_read < expected:
        warnings.warn(f"{run.sample_files[task]} holds {n_read} samples but {run.results_path.name} says the "
                      f"run evaluated {expected} for {task}; the file looks truncated (a killed copy?), so its "
                      "numbers come from part of the data. Copy the samples file again or re-run lm_eval.",
                      stacklevel=3)


def load_samples(paths: list[str | Path] | list[Run], require: bool = True, progress: bool = True,
                 allow_mixed_models: bool = False) -> pd.DataFrame:
    """The tidy table of every logged ValueBench sample of every run under ``paths``.

    ``require``: raise when a run has ValueBench results but no sample files (lm_eval was run
    without ``--log_samples``), naming the missing file. ``progress``: a bar when there are 50 files or more.
    Runs of different models are refused unless
    ``allow_mixed_models`` (``check_one_model``); a samples file shorter than its results JSON's
    ``n-samples`` is read with a warning (``warn_if_truncated``).
    """
    runs = paths if paths and isinstance(paths[0], Run) else find_runs(paths)  # type: ignore[arg-type]
    check_one_model(runs, allow_mixed_models)
    from tqdm import tqdm

    rows: list[dict[str, Any]] = []
    n_files = sum(len(valuebench_tasks(r)) for r in runs)
    bar = tqdm(total=n_files, desc="reading samples", unit="file", leave=False, disable=not progress or n_files < 50)
    for run in runs:
        tasks = valuebench_tasks(run)
        vb_results = [t for t in run.results.get("results", {}) if _VB_TASK.match(t)]
        if require and vb_results and not tasks:
            ts = results_date_id(run.results_path.name)
            raise LmEvalOutputError(
                f"{run.results_path.parent} has ValueBench results but no samples_{vb_results[0]}_{ts}.jsonl; "
                "re-run lm_eval with --log_samples.")
        for task in tasks:
            mode = _VB_TASK.match(task)["mode"]
            before = len(rows)
            rows.extend(_sample_row(run, task, mode, s) for s in read_jsonl(run.sample_files[task]))
            warn_if_truncated(run, task, len(rows) - before)
            bar.update()
    bar.close()
    df = pd.DataFrame(rows, columns=SAMPLE_COLUMNS)
    if require and df.empty:
        raise LmEvalOutputError(
            f"no ValueBench samples (samples_valuebench_*.jsonl) under {[str(r.results_path.parent) for r in runs]}; "
            "run lm_eval with --tasks valuebench_... --log_samples.")
    return df


def _sample_row(run: Run, task: str, mode: str, s: dict[str, Any]) -> dict[str, Any]:
    doc = s.get("doc") or {}
    resp = parse_response((s.get("filtered_resps") or [None])[0])
    config, kind, feature = run.config_id, run.steer_kind, run.feature
    if doc.get("steer_dim") not in (None, ""):
        config = str(doc["steer_dim"])
        kind = str(doc.get("steer_kind") or "sae_feature")
        feature = doc.get("feature", doc["steer_dim"])
    instruction = doc.get("instruction") or "none"
    if mode == "explicit" and instruction != "none" and not config:
        config, kind = f"explicit:{instruction}", "explicit_instruction"
    role_id = str(doc.get("role_id", ""))
    if kind == "none" and role_id not in ("", "r0"):
        kind = "role_prompt"  # unsteered model, steered only by the role in the prompt (§2.2)
    return {
        "run": run.label, "run_dir": str(run.results_path.parent), "model": run.model, "task": task,
        "mode": mode, "config": config, "steer_kind": kind, "feature": feature,
        "role_id": role_id, "role_name": str(doc.get("role_name") or ""),
        "role_split": doc.get("role_split"), "value": doc.get("value"), "item_id": doc.get("item_id"),
        "agreement": doc.get("agreement"), "instruction": instruction, "question": doc.get("question"),
        "score": _float(s.get("orientation")), "label": resp.get("label"), "thought": resp.get("thought"),
        "answer": resp.get("answer"), "judged_by": resp.get("judged_by"),
        "p_yes_minus_p_no": _float(resp.get("p_yes_minus_p_no")), "score_soft": _float(s.get("orientation_soft")),
    }
