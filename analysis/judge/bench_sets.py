"""Labelled sets for measuring a judge (``python -m analysis judge-bench --set NAME``).

``valuebench-t1``: Kang et al.'s Template 1 task (an answer -> yes/no/unsure) on ValueBench's rated LLM
answers (``valuebench/QA-dataset-answers-rating.csv``: 1,988 questions x 6 models' answers, each rated by
GPT-4 from 0 = the answer means No to 10 = Yes). Gold (the issue's mapping): rating >= 7 -> yes,
<= 3 -> no, else unsure. The fields are ``question`` and ``answer`` (Template 1 as printed reads only the
answer; the other prompts read both).

``conva-csr``: a reader's CSR labels of dilemma replies (ConVA Table 11's question). The CSV has one row
per dilemma, ``value`` and ``doc`` (the doc id in ``schwartz_dilemmas_<value>``), and per method ``M`` a
label column ``M`` (1 = inclined to the value, 0 = not, empty = not labelled) and the reply it labels in
``M reply``; an optional ``question`` column holds the dilemma (else it is read from the ConVA data, doc
``doc`` of the value). ``examples/data/conva10_g0_manual_csr.csv`` has the labels; its replies are added
when the run is regenerated.

``conva-fr`` (ours: a fluency calibration set, not labels from a paper): every reply of the ``conva-csr`` CSV
once, gold True (the reader read every one of them as grammatical), and the same reply with its words shuffled
(seeded by the reply), gold False. It tells a judge that answers "False" to everything (the 1.5B judge with
ConVA Table 13's prompt copies its first option) from one that reads fluency, and ``judge-bench --fit`` fits
the FR biases on it; obvious word salad is easier than a steered model's degraded text, so its agreement is an
upper bound for real replies.

Held out by question: a question whose sha256 starts with a multiple of 3 (a third of them) belongs to
the ``fit`` split (``judge-bench --fit`` fits the per-class biases there), every other to ``eval``, so no
question is in both. Sampling is stratified: equal numbers of each gold label (as far as the split has
them), seeded.
"""

from __future__ import annotations

import csv
import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
VALUEBENCH_QA = REPO.parent / "shared" / "data" / "valuebench" / "QA-dataset-answers-rating.csv"
CONVA_CSR = REPO / "examples" / "data" / "conva10_g0_manual_csr.csv"
VALUEBENCH_MODELS = ("gpt-4-1106-preview", "gpt-3.5-turbo-1106", "llama-7b-chat", "llama-70b-chat",
                     "mistral-7b-instruct", "mixtral-8x7b-instruct")
SPLITS = ("eval", "fit")


@dataclass(frozen=True)
class LabelledItem:
    """One item of a labelled set: what the judge sees (``fields`` of ``template``) and the gold label."""

    item_id: str
    template: str
    fields: dict[str, Any]
    gold: Any  # "yes"/"no"/"unsure" (Template 1) or True/False (CSR)
    split: str  # "eval" or "fit"
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BenchSet:
    name: str
    template: str
    labels: tuple[Any, ...]
    items: tuple[LabelledItem, ...]
    source: str


def split_of(question: str) -> str:
    return "fit" if int(hashlib.sha256(question.encode("utf-8")).hexdigest()[:8], 16) % 3 == 0 else "eval"


def gold_from_rating(rating: float) -> str | None:
    """ValueBench's 0-10 GPT-4 rating -> "yes" (>= 7), "no" (<= 3), "unsure" (4-6), None if missing."""
    if rating is None or not math.isfinite(rating):
        return None
    return "yes" if rating >= 7 else "no" if rating <= 3 else "unsure"


def _need_file(path: Path, what: str, option: str) -> None:
    if not path.is_file():
        raise ValueError(f"{what} {path} does not exist; pass {option} with the file's path.")


def valuebench_t1(path: Path | None = None) -> BenchSet:
    path = Path(path or VALUEBENCH_QA)
    _need_file(path, "the ValueBench rated-answers CSV", "--data")
    items = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("question", f"{VALUEBENCH_MODELS[0]}_answer", f"{VALUEBENCH_MODELS[0]}_rating")
                   if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path} lacks the columns {missing}; pass ValueBench's "
                             "QA-dataset-answers-rating.csv with --data.")
        for row_no, row in enumerate(reader):
            question = (row.get("question") or "").strip()
            for model in VALUEBENCH_MODELS:
                answer = (row.get(f"{model}_answer") or "").strip()
                try:
                    rating = float(row.get(f"{model}_rating") or "nan")
                except ValueError:
                    rating = math.nan
                gold = gold_from_rating(rating)
                if not question or not answer or gold is None:
                    continue
                items.append(LabelledItem(
                    f"valuebench:{row_no}:{model}", "answer_judgment", {"question": question, "answer": answer},
                    gold, split_of(question),
                    {"rating": rating, "model": model, "value": row.get("corresponding value")}))
    return BenchSet("valuebench-t1", "answer_judgment", ("yes", "no", "unsure"), tuple(items), str(path))


def conva_csr(path: Path | None = None, conva_dir: str | None = None) -> BenchSet:
    from lm_eval_tasks.schwartz.data import DESCRIPTIONS, load_questions

    path = Path(path or CONVA_CSR)
    _need_file(path, "the CSR labels CSV", "--data")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or [])
        rows = list(reader)
    if not {"value", "doc"} <= set(columns):
        raise ValueError(f"{path} lacks the columns `value` and `doc`; see the conva-csr format in "
                         "analysis/README.md (judge-bench).")
    methods = [c for c in columns if c not in ("value", "doc", "question") and not c.endswith(" reply")]
    no_reply = [m for m in methods if f"{m} reply" not in columns]
    if no_reply:
        raise ValueError(
            f"{path} has the reader's labels for {no_reply} but not the replies they label (no "
            f"{', '.join(repr(m + ' reply') for m in no_reply)} columns); add the regenerated replies beside "
            "the labels (format: analysis/README.md, judge-bench) or use --set valuebench-t1.")
    questions: dict[str, list[str]] = {}
    items = []
    for row in rows:
        value, doc = row["value"].strip(), int(row["doc"])
        question = (row.get("question") or "").strip()
        if not question:
            if value not in questions:
                questions[value] = load_questions(value, conva_dir)
            question = questions[value][doc]
        for m in methods:
            label, reply = (row.get(m) or "").strip(), (row.get(f"{m} reply") or "").strip()
            if label == "" or not reply:
                continue
            if label not in ("0", "1"):
                raise ValueError(f"{path}: label {label!r} of method {m!r} (value {value}, doc {doc}) is not "
                                 "0 or 1; fix the cell.")
            fields = {"basic_value": value, "value_description": DESCRIPTIONS[value], "question": question,
                      "answer": reply}
            items.append(LabelledItem(f"conva-csr:{value}:{doc}:{m}", "csr", fields, label == "1",
                                      split_of(question), {"method": m, "value": value, "doc": doc}))
    return BenchSet("conva-csr", "csr", (True, False), tuple(items), str(path))


def shuffled_words(text: str) -> str | None:
    """``text``'s words in another order (seeded by the text), or None when it has fewer than 4 words."""
    words = text.split()
    if len(words) < 4:
        return None
    rng = random.Random(hashlib.sha256(text.encode("utf-8")).hexdigest())
    out = list(words)
    while out == words:
        rng.shuffle(out)
    return " ".join(out)


def conva_fr(path: Path | None = None, conva_dir: str | None = None) -> BenchSet:
    csr = conva_csr(path, conva_dir)
    items, seen = [], set()
    for it in csr.items:
        reply = it.fields["answer"]
        salad = shuffled_words(reply)
        if reply in seen or salad is None:
            continue
        seen.add(reply)
        base = it.item_id.replace("conva-csr:", "conva-fr:", 1)
        meta = dict(it.meta)
        items.append(LabelledItem(base, "fluency", {"answer": reply}, True, it.split, meta))
        items.append(LabelledItem(base + ":shuffled", "fluency", {"answer": salad}, False, it.split,
                                  {**meta, "shuffled": True}))
    return BenchSet("conva-fr", "fluency", (True, False), tuple(items), csr.source)


SETS = {"valuebench-t1": valuebench_t1, "conva-csr": conva_csr, "conva-fr": conva_fr}


def load_set(name: str, path: Path | None = None) -> BenchSet:
    if name not in SETS:
        raise ValueError(f"--set {name!r} is not a known set; pass one of {sorted(SETS)}.")
    return SETS[name](path)


def sample(bench: BenchSet, n: int | None, seed: int, split: str = "eval") -> list[LabelledItem]:
    """``n`` items of ``split`` (all when None), equal numbers per gold label as far as they exist."""
    pool = [it for it in bench.items if it.split == split]
    if n is None or n >= len(pool):
        return sorted(pool, key=lambda it: it.item_id)
    rng = random.Random(f"{bench.name}:{split}:{seed}")
    by_label = {lab: sorted((it for it in pool if it.gold == lab), key=lambda it: it.item_id)
                for lab in bench.labels}
    for group in by_label.values():
        rng.shuffle(group)
    chosen: list[LabelledItem] = []
    want = n
    open_labels = [lab for lab in bench.labels if by_label[lab]]
    while want > 0 and open_labels:  # equal shares; a short label's remainder goes to the others
        share = max(1, want // len(open_labels))
        for lab in list(open_labels):
            take = by_label[lab][:min(share, want)]
            by_label[lab] = by_label[lab][len(take):]
            chosen += take
            want -= len(take)
            if not by_label[lab]:
                open_labels.remove(lab)
            if want == 0:
                break
    return sorted(chosen, key=lambda it: it.item_id)


def label_counts(items: Sequence[LabelledItem], labels: Sequence[Any]) -> dict[str, int]:
    return {str(lab): sum(1 for it in items if it.gold == lab) for lab in labels}
