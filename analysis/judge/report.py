"""Judged records (JSONL) and their summary: every rate with n_scored / n_total beside it.

A record: ``task``, ``doc_id``, ``template``, ``judge_id``, ``template_version``, ``raw``, ``parsed``
(None = unscored), ``cached`` and the sample's identifying doc fields.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analysis.judge.samples import Job, judgment, kind_of
from lm_eval_tasks.judge import Verdict
from lm_eval_tasks.judge.labels import score
from lm_eval_tasks.lm_eval_outputs import read_jsonl


def _jsonable(parsed: Any) -> Any:
    if isinstance(parsed, list):
        return [list(edge) for edge in parsed]
    return parsed


def write_records(path: Path, verdicts: Sequence[tuple[Job, Verdict]]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for job, v in verdicts:
            rec = {"task": job.task, "doc_id": job.doc_id, "template": job.template,
                   "judge_id": v.judge_id, "template_version": v.template_version, "raw": v.raw,
                   "parsed": _jsonable(v.parsed), "cached": v.cached, "scoring": v.scoring, "prompt": v.prompt,
                   **job.meta}
            if v.members:
                rec["members"] = [{"judge_id": m.judge_id, "parsed": _jsonable(m.parsed), "raw": m.raw,
                                   "error": m.error} for m in v.members]
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def read_records(path: Path) -> list[dict[str, Any]]:
    return list(read_jsonl(path, "a judged.jsonl written by `python -m analysis judge`",
                           required=("task", "doc_id", "template", "parsed")))


def _rate(flags: list[float]) -> float:
    kept = [x for x in flags if not math.isnan(x)]
    return sum(kept) / len(kept) if kept else math.nan


def summarize(samples: Sequence[tuple[str, dict[str, Any]]],
              verdicts: Sequence[tuple[Job, Verdict]]) -> dict[str, Any]:
    """Per task: ValueBench CoT -> orientation (mean item score), n_scored/n_total, judge counts and,
    when thoughts were judged, the thought/answer inconsistency (Kang Table 2); Schwartz -> CSR and FR
    with n_scored_csr / n_scored_fr / n_total."""
    by_key: dict[tuple[str, int, str], Verdict] = {(j.task, j.doc_id, j.template): v for j, v in verdicts}
    tasks: dict[str, dict[str, Any]] = {}
    acc: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for task, s in samples:
        kind = kind_of(s)
        if kind is None:
            continue
        doc_id, j, a = int(s.get("doc_id", -1)), judgment(s) or {}, acc[task]
        a["n_total"].append(1.0)
        if kind == "schwartz":
            for template, name in (("csr", "csr"), ("fluency", "fr")):
                v = by_key.get((task, doc_id, template))
                a[name].append(math.nan if v is None or v.parsed is None else float(v.parsed))
            continue
        label, judged = (j.get("label"), False) if j.get("judged_by") == "rules" else (None, True)
        v = by_key.get((task, doc_id, "answer_judgment"))
        if judged and v is not None:
            label = v.parsed
            a["n_judged"].append(1.0)
            a["n_judge_unparsed"].append(float(v.parsed is None))
        a["orientation"].append(score(label, int(s["doc"].get("agreement", 1))))
        t = by_key.get((task, doc_id, "thought_inclination"))
        if t is not None:
            both = label is not None and t.parsed is not None
            a["inconsistency"].append(float(label != t.parsed) if both else math.nan)
    for task, a in acc.items():
        row: dict[str, Any] = {}
        n_total = int(sum(a.pop("n_total")))
        for name, values in a.items():
            if name.startswith("n_"):
                row[name] = int(sum(values))
                continue
            row[name] = _rate(values)
            row[f"n_scored_{name}"] = sum(1 for x in values if not math.isnan(x))
        row["n_total"] = n_total
        tasks[task] = row
    return {"tasks": tasks, "n_verdicts": len(verdicts),
            "n_cached": sum(1 for _, v in verdicts if v.cached)}


def judged_folder_name(judge_id: str) -> str:
    """The folder ``python -m analysis judge RUN_DIR`` writes a judge's records into: ``RUN_DIR/judged/<this>``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", judge_id).strip("_")


def find_rejudged(results_path: Path, judge_id: str | None = None) -> dict[str, Any] | None:
    """The ``summary.json`` of a re-judge of the run whose results JSON is ``results_path`` (in ``judged/`` beside
    the results or one folder up, where ``analysis judge RUN_DIR`` writes it): of ``judge_id``, or the newest
    when None; None if there is none."""
    found = []
    for folder in (results_path.parent, results_path.parent.parent):
        judged = folder / "judged"
        if not judged.is_dir():
            continue
        names = [judged_folder_name(judge_id)] if judge_id else [d.name for d in judged.iterdir() if d.is_dir()]
        found += [judged / n / "summary.json" for n in names if (judged / n / "summary.json").is_file()]
    if not found:
        return None
    return json.loads(max(found, key=lambda f: f.stat().st_mtime).read_text())
