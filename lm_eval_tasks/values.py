"""The 17 ValueBench values of Kang et al. (§3.1: values with at least 20 items) and their names.

``VALUES`` is in the order of Template 5's list (Kang et al., Appendix A.3), which is also ValueBench's
item-count order; every package reads the values from here (on the ground floor's top level, since the
ValueBench tasks and the judge's Template 5 both need them). ConVA's 10 Schwartz values are another list,
in ``lm_eval_tasks.schwartz.data``. ``check_value`` wants the exact ValueBench
spelling (task docs, data); ``canonical_value`` forgives case, ``_`` and ``-`` (command lines, CSV
headers, task-name slugs).
"""

from __future__ import annotations

VALUES: tuple[str, ...] = (
    "Positive coping", "Empathy", "Resilience", "Social Complexity", "Achievement",
    "Uncertainty Avoidance", "Aesthetic", "Anxiety Disorder", "Breadth of Interest", "Economic",
    "Organization", "Political", "Religious", "Social", "Social Cynicism", "Theoretical", "Understanding",
)


def value_slug(value: str) -> str:
    """Task-name form of a value: ``"Positive coping"`` -> ``"positive_coping"``."""
    return value.lower().replace(" ", "_")


def check_value(value: str) -> str:
    if value not in VALUES:
        raise ValueError(
            f"value {value!r} is not one of Kang et al.'s 17 ValueBench values {list(VALUES)}; "
            "fix the value name (exact spelling, as in ValueBench)."
        )
    return value


def _key(name: str) -> str:
    return " ".join(str(name).replace("_", " ").replace("-", " ").split()).casefold()


_BY_KEY = {_key(v): v for v in VALUES}


def canonical_value(name: str) -> str | None:
    """The ValueBench spelling of ``name`` ("positive_coping" -> "Positive coping"), or None."""
    return _BY_KEY.get(_key(name))
