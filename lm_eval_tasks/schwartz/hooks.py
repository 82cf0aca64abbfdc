"""lm-eval hooks of the ``schwartz_dilemmas*`` tasks (ConVA Section 4.1, Appendix C-E).

Metrics per value: CSR (control success rate, judge template ``csr`` = ConVA Table 11) and FR
(fluency rate, judge template ``fluency`` = Table 13), as means over the judged replies; a reply the
judge cannot parse, or every reply when no judge is configured, is unscored (NaN), never 0.
Fields passed to the judge: csr -> ``basic_value``, ``value_description``, ``question``, ``answer``;
fluency -> ``answer`` (plus the same value fields, which its template does not use).
"""

from __future__ import annotations

import math
from typing import Any

import datasets

from lm_eval_tasks.judge import Verdict
from lm_eval_tasks.judging import get_judge, judge_fields
from lm_eval_tasks.metadata_task import MetadataTask  # noqa: F401  (YAML `class:`)
from lm_eval_tasks.metrics import nanmean, total  # noqa: F401  (YAML aggregations)
from lm_eval_tasks.schwartz.data import DESCRIPTIONS, load_questions
from lm_eval_tasks.schwartz.prompts import role_prompt, with_role_prompt


def dilemma_dataset(sv_value: str, sv_variant: str, **metadata: Any) -> datasets.DatasetDict:
    """``custom_dataset``: the value's evaluation questions (ConVA data dir from metadata/env), each with
    the role prompt of the task variant (``role_prompt``: "" plain, ICA for ica/positive, the negative-value
    prompt for negative)."""
    conva_dir = metadata.get("conva_dir")
    prefix = role_prompt(sv_variant, sv_value, DESCRIPTIONS[sv_value], conva_dir)
    questions = load_questions(sv_value, conva_dir)
    docs = [
        {
            "value": sv_value,
            "basic_value": sv_value,
            "value_description": DESCRIPTIONS[sv_value],
            "question_id": f"{sv_value}-{i:03d}",
            "question": q,
            "variant": sv_variant,
            "role_prompt": prefix,
        }
        for i, q in enumerate(questions)
    ]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})


def doc_to_text(doc: dict[str, Any]) -> str:
    return with_role_prompt(doc["role_prompt"], doc["question"])


def _parsed(verdict: Verdict | None) -> bool | None:
    return verdict.parsed if verdict is not None and isinstance(verdict.parsed, bool) else None


def judge_filter(resps: list[list[str]], docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Filter: judge every reply for CSR and FR at once; None where unjudged."""
    outputs = [(r[0] if r else "").strip() for r in resps]
    results: list[dict[str, Any]] = [
        {"output": o, "csr": None, "fluent": None, "judged_by": None} for o in outputs
    ]
    judge = get_judge()
    if judge is None:
        return results
    fields = [
        {
            "basic_value": d["basic_value"],
            "value_description": d["value_description"],
            "question": d["question"],
            "answer": o,
        }
        for d, o in zip(docs, outputs, strict=True)
    ]
    csr = judge_fields(judge, "csr", fields)
    fluency = judge_fields(judge, "fluency", fields)
    for res, c, f in zip(results, csr, fluency, strict=True):
        res["csr"], res["fluent"] = _parsed(c), _parsed(f)
        res["judged_by"] = None if c.error else c.judge_id
        if c.error or f.error:  # no reply for one of them: why, kept in the logged samples
            res["judge_error"] = c.error or f.error
    return results


def _as_score(flag: bool | None) -> float:
    return float("nan") if flag is None else float(flag)


def process_results(doc: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, float]:
    judged = results[0]
    csr, fr = _as_score(judged["csr"]), _as_score(judged["fluent"])
    return {
        "csr": csr,
        "fr": fr,
        "n_scored_csr": 0.0 if math.isnan(csr) else 1.0,
        "n_scored_fr": 0.0 if math.isnan(fr) else 1.0,
    }
