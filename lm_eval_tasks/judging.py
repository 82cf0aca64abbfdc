"""Answer judgment (Kang et al., Appendix A.1) and how the tasks' filters call the judge.

A.1: split the output into Thought and Answer; lowercase the answer; "yes"/"sure" at the start ->
yes; "no" -> no; "unsure" / "i cannot" / "i am unable" -> unsure; anything else goes to the judge
(:mod:`lm_eval_tasks.judge`, template ``answer_judgment`` = Template 1), and stays unscored (label
None) when no judge is configured. Labels: :mod:`lm_eval_tasks.judge.labels`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from lm_eval_tasks.judge import Judge, Verdict
from lm_eval_tasks.judge import get_judge as _configured_judge
from lm_eval_tasks.judge.labels import ANSWER_LABELS, NO, UNSURE, YES

YES_PREFIXES = ("yes", "sure")
UNSURE_PREFIXES = ("unsure", "i cannot", "i am unable")

log = logging.getLogger(__name__)

_ANSWER_RE = re.compile(r"answer\s*:", re.IGNORECASE)
_THOUGHT_RE = re.compile(r"^\s*thought\s*:", re.IGNORECASE)


def split_thought_answer(output: str) -> tuple[str, str | None]:
    """(thought, answer) of a generation that continues after the prompt's final "Thought:".

    The answer is the text after the last "Answer:" (case-insensitive); without one, the answer is
    None and the whole output is the thought. A leading "Thought:" (chat models repeat it) is dropped.
    """
    text = _THOUGHT_RE.sub("", output, count=1)
    matches = list(_ANSWER_RE.finditer(text))
    if not matches:
        return text.strip(), None
    last = matches[-1]
    return text[: last.start()].strip(), text[last.end() :].strip()


def rule_label(answer: str) -> str | None:
    """A.1 prefix rules on one answer string: "yes"/"no"/"unsure", or None if undecidable."""
    a = answer.strip().lower()
    # "no" must be a word ("none", "nobody", "not sure" are not a "no" answer; "noted" neither).
    if a.startswith(UNSURE_PREFIXES):
        return UNSURE
    if a.startswith(YES_PREFIXES):
        return YES
    if re.match(r"no\b", a):
        return NO
    return None


def _judge_failed(err: Exception) -> None:
    log.warning("%s The replies are kept and logged unscored; re-judge them afterwards with "
                "`python -m analysis judge RUN_DIR`.", err)


def get_judge() -> Judge | None:
    """The configured LLM judge, or None (nothing configured).

    A judge that cannot be built (a malformed setting) is reported and treated as absent, so the
    generations of a long run are never lost to a judge problem.
    """
    try:
        return _configured_judge()
    except ValueError as err:  # JudgeSettingsError, or a local judge model that is not there
        _judge_failed(err)
        return None


def judge_fields(judge: Judge, template: str, fields: Sequence[dict[str, str]]) -> list[Verdict | None]:
    """Run ``template`` on every field dict with the judge; Verdicts in order (None = not judged).

    When the judge fails (endpoint down, key rejected...), the error is logged and every item stays
    unscored instead of aborting lm-eval after the generations were paid for; verdicts received
    before the failure are in the judge's cache.
    """
    if not fields:
        return []
    try:
        return list(judge.judge_many(template, list(fields)))
    except RuntimeError as err:  # JudgeError, or a local judge model failing at run time
        _judge_failed(err)
        return [None] * len(fields)


def judge_outputs(outputs: Sequence[str], questions: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """A.1 judgment of many generations at once (the judge is called once, on the undecided ones).

    ``questions`` (one per output) go to the judge beside the answer: Template 1 as printed reads only
    the answer, the prompts of ours a judge's profile may choose read both.

    Each result: ``thought``, ``answer``, ``label`` ("yes"/"no"/"unsure"/None), ``judged_by``
    ("rules", a judge id, or None when unscored).
    """
    results: list[dict[str, Any]] = []
    pending: list[int] = []
    for out in outputs:
        thought, answer = split_thought_answer(out)
        text = answer if answer is not None else thought
        label = rule_label(text)
        results.append(
            {
                "thought": thought,
                "answer": answer,
                "label": label,
                "judged_by": "rules" if label is not None else None,
            }
        )
        if label is None and text.strip():
            pending.append(len(results) - 1)
    if pending:
        judge = get_judge()
        if judge is not None:
            fields = [
                {"answer": results[i]["answer"] if results[i]["answer"] is not None
                 else results[i]["thought"], "question": questions[i] if questions else ""}
                for i in pending
            ]
            for i, verdict in zip(pending, judge_fields(judge, "answer_judgment", fields), strict=True):
                if verdict is not None and verdict.parsed in ANSWER_LABELS:
                    results[i]["label"] = verdict.parsed
                    results[i]["judged_by"] = verdict.judge_id
    return results
