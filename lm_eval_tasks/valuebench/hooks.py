"""lm-eval hooks of the ``valuebench_*`` tasks (Kang et al., Section 2.1 and Appendix A).

Referenced from the YAMLs in this folder as ``!function hooks.<name>``. Docs carry the fields of
docs/ARCHITECTURE.md section 4; ``filtered_resps[0]`` is the judgment dict; the per-sample metric
``orientation`` is the item score (+1/-1/0, NaN when unscored), averaged NaN-aware per value.

Settings (``lm_eval --metadata '{...}'`` or ``simple_evaluate(metadata=...)``):
``num_roles`` (first N roles of the split; train starts with the empty role r0), ``roles`` (list of
role ids or names), ``item_fraction`` (share of the role's item pool asked; default 0.4 for train
roles, 1.0 for test roles), ``seed`` (default 0), and for ``valuebench_explicit`` ``instructions``
(subset of ["inclined", "disinclined", "none"]; default ["inclined", "disinclined"]).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import datasets

from lm_eval_tasks.judge.labels import NO, YES, score
from lm_eval_tasks.judging import judge_outputs
from lm_eval_tasks.metadata_task import MetadataTask  # noqa: F401  (YAML `class:`)
from lm_eval_tasks.metrics import nanmean, total  # noqa: F401  (YAML aggregations)
from lm_eval_tasks.valuebench.data import (
    DEFAULT_ITEM_FRACTION,
    DEFAULT_SEED,
    load_definitions,
    sample_items,
    select_roles,
)
from lm_eval_tasks.valuebench.prompts import render_ll_context, render_prompt
from lm_eval_tasks.values import check_value

INSTRUCTIONS = ("inclined", "disinclined", "none")


def _float_setting(name: str, raw: Any, default: float) -> float:
    if raw is None:
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"metadata `{name}`={raw!r} is not a number; pass e.g. 0.4.") from None
    if not 0.0 < value <= 1.0:
        raise ValueError(f"metadata `{name}`={raw!r} must be in (0, 1]; e.g. 0.4 for 40% of items.")
    return value


def _roles_setting(raw: Any) -> list[str] | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return [r.strip() for r in raw.split(",") if r.strip()]
    return [str(r) for r in raw]


def build_docs(
    value: str,
    split: str,
    *,
    num_roles: int | None = None,
    roles: Sequence[str] | str | None = None,
    item_fraction: float | None = None,
    seed: int | None = None,
    instructions: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """The docs of one value subtask: every selected role x its sampled items (x instructions)."""
    check_value(value)
    seed = DEFAULT_SEED if seed is None else int(seed)
    fraction = _float_setting("item_fraction", item_fraction, DEFAULT_ITEM_FRACTION[split])
    instr = list(instructions) if instructions is not None else ["none"]
    bad = [i for i in instr if i not in INSTRUCTIONS]
    if bad:
        raise ValueError(f"metadata `instructions` has {bad}; allowed: {list(INSTRUCTIONS)}.")
    definition = load_definitions()[value]
    docs = []
    for role in select_roles(split, num_roles, _roles_setting(roles)):
        for item in sample_items(role, value, split, fraction, seed):
            for instruction in instr:
                docs.append(
                    {
                        "role_id": role.role_id,
                        "role_name": role.role_name,
                        "role_split": role.split,
                        "trait": role.trait,
                        "value": value,
                        "item_id": item.item_id,
                        "agreement": item.agreement,
                        "question": item.question,
                        "instruction": instruction,
                        "definition": definition,
                    }
                )
    return docs


def _dataset(docs: list[dict[str, Any]]) -> datasets.DatasetDict:
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})


def questionnaire_dataset(
    vb_value: str, vb_split: str, *, vb_explicit: bool = False, **metadata: Any
) -> datasets.DatasetDict:
    """``custom_dataset`` of a value subtask; lm-eval passes ``--metadata`` (and model_args) here."""
    instructions = None
    if vb_explicit:
        instructions = metadata.get("instructions") or ["inclined", "disinclined"]
        if isinstance(instructions, str):
            instructions = [s.strip() for s in instructions.split(",")]
    return _dataset(
        build_docs(
            vb_value,
            vb_split,
            num_roles=metadata.get("num_roles"),
            roles=metadata.get("roles"),
            item_fraction=metadata.get("item_fraction"),
            seed=metadata.get("seed"),
            instructions=instructions,
        )
    )


def doc_to_text(doc: dict[str, Any]) -> str:
    """The Figure 2 prompt (Templates 2-4 when the doc carries an explicit instruction)."""
    if doc.get("instruction", "none") == "none":
        return render_prompt(doc["question"], doc["trait"])
    return render_prompt(
        doc["question"],
        doc["trait"],
        direction=doc["instruction"],
        value=doc["value"],
        definition=doc["definition"],
    )


def doc_to_text_ll(doc: dict[str, Any]) -> str:
    return render_ll_context(doc_to_text(doc))


def agreeing_answer(doc: dict[str, Any]) -> str:
    """The answer that holds the value ("yes" for +1 items, "no" for reverse-keyed ones)."""
    return "yes" if int(doc["agreement"]) == 1 else "no"


def agreeing_choice(doc: dict[str, Any]) -> int:
    return 0 if int(doc["agreement"]) == 1 else 1


def a1_filter(resps: list[list[str]], docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Filter: A.1 judgment of every generation (judge called once for all undecided answers)."""
    outputs = [r[0] if r else "" for r in resps]
    judged = judge_outputs(outputs, [d.get("question", "") for d in docs])
    for out, j in zip(outputs, judged, strict=True):
        j["output"] = out
    return judged


def _doc_key(doc: dict[str, Any]) -> tuple:
    return (doc["role_id"], doc["item_id"], doc.get("instruction", "none"))


def ll_filter(resps: list[list[tuple[float, bool]]], docs: list[dict[str, Any]]) -> list[dict]:
    """Filter for the loglikelihood variant: pairs each doc's " yes" and " no" requests.

    lm-eval creates a doc's two requests consecutively, " yes" first (``doc_to_choice`` order).
    Hard choice = the likelier answer; ``p_yes_minus_p_no`` uses p renormalised over {yes, no}.
    """
    out: list[dict[str, Any]] = []
    i = 0
    while i < len(resps):
        if i + 1 >= len(resps) or _doc_key(docs[i]) != _doc_key(docs[i + 1]):
            raise RuntimeError(
                "valuebench_ll: expected two consecutive requests (' yes', ' no') per doc; "
                "lm-eval's request order changed."
            )
        ll_yes, ll_no = float(resps[i][0][0]), float(resps[i + 1][0][0])
        label = YES if ll_yes >= ll_no else NO
        diff = math.tanh((ll_yes - ll_no) / 2.0)  # = p_yes - p_no with p_yes + p_no = 1
        result = {
            "thought": None,
            "answer": label,
            "label": label,
            "judged_by": "loglikelihood",
            "p_yes_minus_p_no": diff,
            "ll_yes": ll_yes,
            "ll_no": ll_no,
        }
        out.extend([result, dict(result)])
        i += 2
    return out


def process_results(doc: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, float]:
    """Per-sample metrics: ``orientation`` (item score, NaN unscored) and ``n_scored``."""
    judged = results[0]
    s = score(judged["label"], int(doc["agreement"]))
    metrics = {"orientation": s, "n_scored": 0.0 if math.isnan(s) else 1.0}
    if "p_yes_minus_p_no" in judged:
        metrics["orientation_soft"] = int(doc["agreement"]) * judged["p_yes_minus_p_no"]
    return metrics


def process_results_explicit(
    doc: dict[str, Any], results: list[dict[str, Any]]
) -> dict[str, float]:
    """As ``process_results`` plus ``orientation_<instruction>`` (NaN for the other instructions)."""
    metrics = process_results(doc, results)
    for instruction in INSTRUCTIONS:
        metrics[f"orientation_{instruction}"] = (
            metrics["orientation"] if doc["instruction"] == instruction else float("nan")
        )
    return metrics
