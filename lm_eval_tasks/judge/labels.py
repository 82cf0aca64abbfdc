"""The answer labels of Kang et al.'s answer judgment (Appendix A.1, Template 1) and what they score.

One vocabulary for the A.1 rules, the judge's Template 1 parser, the tasks' metrics and the
re-judging report: ``"yes"``, ``"no"``, ``"unsure"``; ``None`` = unscored (the rules could not decide
and no judge did), never counted as any label.
"""

from __future__ import annotations

YES, NO, UNSURE = "yes", "no", "unsure"
ANSWER_LABELS: tuple[str, ...] = (YES, NO, UNSURE)


def score(label: str | None, agreement: int) -> float:
    """Item score: +1 if the answer agrees with the item's direction, -1 if not, 0 unsure, NaN unscored."""
    if label == YES:
        return float(agreement)
    if label == NO:
        return float(-agreement)
    if label == UNSURE:
        return 0.0
    return float("nan")
