"""Summaries of judged samples, by hand: rates with n_scored / n_total, unscored left out."""

from __future__ import annotations

import math

import pytest

from analysis.judge.report import summarize
from analysis.judge.samples import jobs_for
from lm_eval_tasks.judge import Verdict


def vb_sample(doc_id: int, agreement: int, thought: str, answer: str | None, label, judged_by) -> dict:
    # as lm-eval logs it: filtered_resps[0] is str() of the A.1 dict
    resp = {"thought": thought, "answer": answer, "label": label, "judged_by": judged_by, "output": ""}
    return {"doc_id": doc_id, "doc": {"role_id": "r0", "value": "Economic", "item_id": f"i{doc_id}",
                                      "agreement": agreement, "instruction": "none"},
            "filtered_resps": [str(resp)]}


def verdict(parsed, template: str) -> Verdict:
    return Verdict(parsed, str(parsed), "test:judge", template, "v", False)


def test_valuebench_orientation_and_inconsistency_by_hand():
    samples = [
        ("vb", vb_sample(0, +1, "I value money.", "yes", "yes", "rules")),        # rules: +1
        ("vb", vb_sample(1, -1, "Money is nice.", "well, it depends", None, None)),  # judge: yes -> -1
        ("vb", vb_sample(2, +1, "Hmm.", "perhaps", None, None)),                  # judge unparsed
        ("vb", vb_sample(3, +1, "No way.", "no", "no", "rules")),                 # rules: -1
    ]
    jobs = [j for task, s in samples for j in jobs_for(task, s, thoughts=True)]
    assert [(j.doc_id, j.template) for j in jobs if j.template == "answer_judgment"] == [(1, "answer_judgment"), (2, "answer_judgment")]
    assert jobs[1].fields == {"answer": "well, it depends", "question": ""}  # the doc has no question
    answers = {1: "yes", 2: None}
    thoughts = {0: "yes", 1: "no", 2: "yes", 3: None}
    verdicts = [(j, verdict(answers[j.doc_id] if j.template == "answer_judgment" else thoughts[j.doc_id],
                            j.template)) for j in jobs]
    row = summarize(samples, verdicts)["tasks"]["vb"]
    # item scores +1, -1, NaN, -1 -> mean over 3 scored = -1/3
    assert row["orientation"] == pytest.approx(-1 / 3) and row["n_scored_orientation"] == 3
    assert row["n_total"] == 4 and row["n_judged"] == 2 and row["n_judge_unparsed"] == 1
    # thought vs answer, both scored: doc0 yes/yes, doc1 no/yes -> 1 of 2 inconsistent
    assert row["inconsistency"] == pytest.approx(0.5) and row["n_scored_inconsistency"] == 2


def test_schwartz_rates_by_hand():
    def sample(i: int) -> dict:
        resp = {"output": f"reply {i}", "csr": None, "fluent": None, "judged_by": None}
        return {"doc_id": i, "doc": {"basic_value": "power", "value_description": "status",
                                     "question": f"q{i}", "question_id": f"power-{i:03d}"},
                "filtered_resps": [str(resp)]}

    samples = [("sd", sample(i)) for i in range(3)]
    jobs = [j for t, s in samples for j in jobs_for(t, s)]
    assert jobs[0].fields == {"basic_value": "power", "value_description": "status", "question": "q0",
                              "answer": "reply 0"}
    parsed = {("csr", 0): True, ("csr", 1): None, ("csr", 2): True,
              ("fluency", 0): False, ("fluency", 1): True, ("fluency", 2): None}
    row = summarize(samples, [(j, verdict(parsed[(j.template, j.doc_id)], j.template)) for j in jobs])["tasks"]["sd"]
    assert (row["csr"], row["n_scored_csr"], row["fr"], row["n_scored_fr"], row["n_total"]) == (1.0, 2, 0.5, 2, 3)
    assert not math.isnan(row["fr"])
