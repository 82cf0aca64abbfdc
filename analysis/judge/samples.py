"""Re-judging logged lm-eval samples (``samples_<task>_<date>.jsonl`` from ``--log_samples``).

ValueBench CoT/explicit samples (``filtered_resps[0]`` = the A.1 dict of docs/ARCHITECTURE.md §4):
answers the A.1 rules decided keep their rule label; the others are judged with ``answer_judgment``
(and, with ``thoughts=True``, every thought with ``thought_inclination``, for Kang Table 2).
Schwartz samples (``filtered_resps[0]`` has ``csr``/``fluent``): every reply with ``csr`` and
``fluency``. Loglikelihood ValueBench samples need no judge and are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_eval_tasks.lm_eval_outputs import logged_dict, samples_name


@dataclass
class Job:
    """One judge request about one logged sample."""

    task: str
    doc_id: int
    template: str
    fields: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)


def sample_files(run_dir: Path) -> list[tuple[str, Path]]:
    """(task, file) for every samples file under ``run_dir`` (any depth), sorted."""
    out = []
    for path in sorted(Path(run_dir).rglob("samples_*.jsonl")):
        name = samples_name(path.name)
        out.append((name.task if name else path.stem[len("samples_"):], path))
    return out


def judgment(sample: dict[str, Any]) -> dict[str, Any] | None:
    resps = sample.get("filtered_resps") or []
    return logged_dict(resps[0] if resps else None)


def kind_of(sample: dict[str, Any]) -> str | None:
    """'valuebench_cot', 'schwartz' or None (nothing to judge) for one logged sample."""
    j = judgment(sample)
    if j is None:
        return None
    if "csr" in j and "fluent" in j:
        return "schwartz"
    if "label" in j and "judged_by" in j and "p_yes_minus_p_no" not in j:
        return "valuebench_cot"
    return None


def jobs_for(task: str, sample: dict[str, Any], thoughts: bool = False) -> list[Job]:
    kind, j, doc = kind_of(sample), judgment(sample) or {}, sample.get("doc", {})
    doc_id = int(sample.get("doc_id", -1))
    if kind == "schwartz":
        fields = {k: doc.get(k) for k in ("basic_value", "value_description", "question")}
        fields["answer"] = (j.get("output") or "").strip()
        meta = {"value": doc.get("basic_value"), "question_id": doc.get("question_id")}
        return [Job(task, doc_id, "csr", fields, meta), Job(task, doc_id, "fluency", fields, meta)]
    if kind != "valuebench_cot":
        return []
    meta = {k: doc.get(k) for k in ("role_id", "value", "item_id", "agreement", "instruction")}
    jobs = []
    text = j.get("answer") if j.get("answer") is not None else j.get("thought")
    if j.get("judged_by") != "rules" and (text or "").strip():
        jobs.append(Job(task, doc_id, "answer_judgment", {"answer": text, "question": doc.get("question", "")}, meta))
    if thoughts and (j.get("thought") or "").strip():
        jobs.append(Job(task, doc_id, "thought_inclination", {"thought": j["thought"],
                                                              "question": doc.get("question", "")}, meta))
    return jobs
