"""ConVA's value sentence pairs, read from a user-named folder (the data has no licence: never shipped).

The folder is found exactly as the ``schwartz_dilemmas`` tasks find it
(:func:`lm_eval_tasks.schwartz.data.resolve_conva_dir`): ``--data-dir``, else
``$VALUE_STEERING_CONVA_DIR``, else ``../shared/data/conva`` beside a source checkout.
``value/<value>_context_controlled.csv`` holds the pairs: ``question_1`` = positive (holds the value),
``question_2`` = the same context with the value negated (negative).
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

from lm_eval_tasks.schwartz.data import VALUES, resolve_conva_dir
from steering_models.conva.defaults import MIN_PAIRS

PAIR_SETS = ("context_controlled", "non_context_controlled")
# MMLU subjects evaluated by mmlu_conva4: never used as gate negatives (no test leakage)
EVAL_SUBJECTS = ("astronomy", "business_ethics", "global_facts", "jurisprudence")


class ConvaDataError(ValueError):
    """Missing or unusable ConVA training data; the message says which file and the fix."""


@dataclass(frozen=True)
class Pairs:
    value: str
    positive: list[str]
    negative: list[str]
    source: str

    def digest(self) -> str:
        return texts_digest(self.positive + ["\x00"] + self.negative)


def texts_digest(texts: list[str]) -> str:
    return hashlib.sha256(json.dumps(texts, ensure_ascii=False).encode()).hexdigest()


def check_value(value: str) -> str:
    if value not in VALUES:
        raise ConvaDataError(f"value {value!r} is not a Schwartz value of ConVA: expected one of "
                             f"{', '.join(VALUES)}. Fix --values.")
    return value


def load_pairs(value: str, data_dir: str | Path | None = None, pair_set: str = "context_controlled",
               max_pairs: int | None = None, min_pairs: int = MIN_PAIRS) -> Pairs:
    """The first ``max_pairs`` pairs of a value; refuses fewer than ``min_pairs``."""
    check_value(value)
    if pair_set not in PAIR_SETS:
        raise ConvaDataError(f"pair set {pair_set!r} is not one of {', '.join(PAIR_SETS)}. Fix --pair-set.")
    path = resolve_conva_dir(data_dir) / "value" / f"{value}_{pair_set}.csv"
    if not path.is_file():
        raise ConvaDataError(f"ConVA pairs file {path} does not exist. Point --data-dir (or "
                             "$VALUE_STEERING_CONVA_DIR) at the ConVA folder holding value/.")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    pos = [r["question_1"].strip() for r in rows if r.get("question_1") and r.get("question_2")]
    neg = [r["question_2"].strip() for r in rows if r.get("question_1") and r.get("question_2")]
    if max_pairs is not None:
        pos, neg = pos[:max_pairs], neg[:max_pairs]
    if len(pos) < min_pairs:
        raise ConvaDataError(f"value {value!r} has {len(pos)} usable pairs in {path}, fewer than the "
                             f"{min_pairs} a probe with a held-out split needs. Use --pairs >= {min_pairs} "
                             "or add pairs to the file.")
    return Pairs(value, pos, neg, str(path))


def mmlu_questions(mmlu_dir: str | Path, n: int, seed: int = 0) -> list[str]:
    """``n`` MMLU questions (seeded sample) from subjects other than the four mmlu_conva4 ones.

    ``mmlu_dir`` holds ``test/<subject>_test.csv`` (header ``question,choice0..3,answer``), e.g.
    ``shared/data/mmlu``. These are the value-unrelated texts of the offline probe gate.
    """
    root = Path(mmlu_dir)
    files = sorted(p for p in (root / "test").glob("*_test.csv")
                   if p.name[: -len("_test.csv")] not in EVAL_SUBJECTS)
    if not files:
        raise ConvaDataError(f"no MMLU test files (test/<subject>_test.csv) under {root}. Point "
                             "--gate-negatives at an MMLU folder such as shared/data/mmlu, or use "
                             "--gate-negatives none to skip the probe gate.")
    questions: list[str] = []
    for f in files:
        with open(f, newline="", encoding="utf-8") as fh:
            questions += [r["question"].strip() for r in csv.DictReader(fh) if r.get("question")]
    rng = random.Random(seed)
    return rng.sample(questions, min(n, len(questions)))
