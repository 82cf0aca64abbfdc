"""MMLU subsets of ConVA Section 4.3 (jurisprudence, global_facts, astronomy, business_ethics).

Loaded from the MMLU CSVs shipped in ``lm_eval_tasks/data/mmlu`` into the schema of Hugging Face
``cais/mmlu`` (``question``, ``subject``, ``choices``, ``answer``), so lm-eval's own MMLU prompt
format applies unchanged (see ``_template_yaml``; tests compare against lm-eval's built-in task).
"""

from __future__ import annotations

import csv
from typing import Any

import datasets

from lm_eval_tasks.metadata_task import MetadataTask  # noqa: F401  (YAML `class:`)
from lm_eval_tasks.resources import data_path

SUBJECTS = ("astronomy", "business_ethics", "global_facts", "jurisprudence")


def load_split(subject: str, split: str) -> list[dict[str, Any]]:
    if subject not in SUBJECTS:
        raise ValueError(f"MMLU subject {subject!r} is not shipped; available: {list(SUBJECTS)}.")
    path = data_path("mmlu", split, f"{subject}_{split}.csv")
    with open(path, newline="", encoding="utf-8") as fh:
        return [
            {
                "question": row["question"],
                "subject": subject,
                "choices": [row[f"choice{i}"] for i in range(4)],
                "answer": int(row["answer"]),
            }
            for row in csv.DictReader(fh)
        ]


def mmlu_dataset(mmlu_subject: str, **_metadata: Any) -> datasets.DatasetDict:
    """``custom_dataset``: test and dev (the 5-shot pool) splits of one subject."""
    return datasets.DatasetDict(
        {s: datasets.Dataset.from_list(load_split(mmlu_subject, s)) for s in ("test", "dev")}
    )
