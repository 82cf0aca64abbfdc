"""Answer judgment (Kang et al., Appendix A.1) and the one bridge to the project's LLM judge.

A.1: split the output into Thought and Answer; lowercase the answer; "yes"/"sure" at the start ->
yes; "no" -> no; "unsure" / "i cannot" / "i am unable" -> unsure; anything else goes to the judge
with Template 1 (``analysis.judge``, template ``answer_judgment``), and stays unscored (label None)
when no judge is configured.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

YES_PREFIXES = ("yes", "sure")
NO_PREFIXES = ("no",)
UNSURE_PREFIXES = ("unsure", "i cannot", "i am unable")
JUDGE_LABELS = ("yes", "no", "unsure")

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
        return "unsure"
    if a.startswith(YES_PREFIXES):
        return "yes"
    if re.match(r"no\b", a):
        return "no"
    return None


def _judge_failed(err: Exception) -> None:
    log.warning("%s The replies are kept and logged unscored; re-judge them afterwards with "
                "`python -m analysis judge RUN_DIR`.", err)


def get_judge() -> Any | None:
    """The project's configured LLM judge, or None (not configured, or ``analysis.judge`` absent).

    A judge that cannot be built (a malformed setting) is reported and treated as absent, so the
    generations of a long run are never lost to a judge problem.
    """
    try:
        from analysis.judge import get_judge as _get_judge
    except ImportError:
        return None
    try:
        return _get_judge()
    except ValueError as err:  # JudgeConfigError: one sentence naming the setting
        _judge_failed(err)
        return None


def judge_fields(judge: Any, template: str, fields: Sequence[dict[str, str]]) -> list[Any]:
    """Run ``template`` on every field dict with the judge; Verdicts in order (None = not judged).

    When the judge fails (endpoint down, key rejected...), the error is logged and every item stays
    unscored instead of aborting lm-eval after the generations were paid for; verdicts received
    before the failure are in the judge's cache.
    """
    if not fields:
        return []
    try:
        if hasattr(judge, "judge_many"):
            return list(judge.judge_many(template, list(fields)))
        return [judge.judge(template, f) for f in fields]
    except RuntimeError as err:  # JudgeError, or a local judge model failing at run time
        _judge_failed(err)
        return [None] * len(fields)


def judge_outputs(outputs: Sequence[str]) -> list[dict[str, Any]]:
    """A.1 judgment of many generations at once (the judge is called once, on the undecided ones).

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
                 else results[i]["thought"]}
                for i in pending
            ]
            for i, verdict in zip(pending, judge_fields(judge, "answer_judgment", fields), strict=True):
                parsed = getattr(verdict, "parsed", getattr(verdict, "label", None))
                if parsed in JUDGE_LABELS:
                    results[i]["label"] = parsed
                    results[i]["judged_by"] = getattr(verdict, "judge_id", "judge")
    return results


def score(label: str | None, agreement: int) -> float:
    """Item score: +1 if the answer agrees with the item's direction, -1 if not, 0 unsure, NaN unscored."""
    if label == "yes":
        return float(agreement)
    if label == "no":
        return float(-agreement)
    if label == "unsure":
        return 0.0
    return float("nan")
