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
    except Exception as err:  # noqa: BLE001 (JudgeSettingsError, a local judge model not there, ...)
        _judge_failed(err)
        return None


def judge_fields(judge: Judge, template: str, fields: Sequence[dict[str, str]]) -> list[Verdict]:
    """Run ``template`` on every field dict with the judge; one Verdict per item, in order.

    Nothing the judge does aborts lm-eval after the generations were paid for: a call whose reply is
    unusable (HTML, truncated JSON, wrong schema) leaves that item unscored with ``Verdict.error``; when
    the endpoint fails (down, key rejected...) or the judge breaks in any other way, the error is logged
    and every item not judged yet stays unscored with it as ``error``; verdicts received before the
    failure are kept (and are in the judge's cache).
    """
    if not fields:
        return []
    try:
        verdicts = list(judge.judge_many(template, list(fields), on_error="keep"))
    except Exception as err:  # noqa: BLE001 (a judge bug must not lose the run's generations)
        _judge_failed(err)
        reason = str(err) or type(err).__name__
        return [Verdict(None, "", judge.judge_id, template, "", False, error=reason) for _ in fields]
    failed = [v.error for v in verdicts if v.error]
    if failed:
        log.warning("judge %s left %d of %d %s items unscored (first reason: %s); re-judge them afterwards "
                    "with `python -m analysis judge RUN_DIR`.", judge.judge_id, len(failed), len(verdicts),
                    template, failed[0])
    return verdicts


def judge_outputs(outputs: Sequence[str], questions: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """A.1 judgment of many generations at once (the judge is called once, on the undecided ones).

    ``questions`` (one per output) go to the judge beside the answer: Template 1 as printed reads only
    the answer, the prompts of ours a judge's profile may choose read both.

    Each result: ``thought``, ``answer``, ``label`` ("yes"/"no"/"unsure"/None), ``judged_by``
    ("rules", a judge id, or None when unscored), and ``judge_error`` when the judge gave no reply
    for it (why: the endpoint's failure, an HTML or truncated reply, ...).
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
                if verdict.parsed in ANSWER_LABELS:
                    results[i]["label"] = verdict.parsed
                    results[i]["judged_by"] = verdict.judge_id
                elif verdict.error:
                    results[i]["judge_error"] = verdict.error
    return results
