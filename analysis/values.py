"""The 17 ValueBench values of Kang et al. (§3.1: values with at least 20 items) and name matching."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

_DEFINITIONS = Path(__file__).resolve().parents[1] / "lm_eval_tasks" / "data" / "valuebench" / "definitions.json"
_UPPER = Path(__file__).resolve().parent / "data" / "valuebench_upper_dimensions.json"

# Order of Template 5's list (Kang et al., Appendix A.3), which is also ValueBench's item-count order.
KANG_VALUES: tuple[str, ...] = (
    "Positive coping", "Empathy", "Resilience", "Social Complexity", "Achievement",
    "Uncertainty Avoidance", "Aesthetic", "Anxiety Disorder", "Breadth of Interest", "Economic",
    "Organization", "Political", "Religious", "Social", "Social Cynicism", "Theoretical", "Understanding",
)


def _key(name: str) -> str:
    return " ".join(str(name).replace("_", " ").replace("-", " ").split()).casefold()


_BY_KEY = {_key(v): v for v in KANG_VALUES}


def canonical_value(name: str) -> str | None:
    """The ValueBench spelling of ``name`` ("positive_coping" -> "Positive coping"), or None."""
    return _BY_KEY.get(_key(name))


def require_value(name: str, where: str) -> str:
    found = canonical_value(name)
    if found is None:
        raise ValueError(f"{where}: {name!r} is not one of the 17 ValueBench values of Kang et al.; "
                         f"use one of {list(KANG_VALUES)} (case, '_' and '-' do not matter).")
    return found


@lru_cache(maxsize=1)
def upper_dimensions() -> dict[str, list[str]]:
    """value -> ValueBench upper dimensions (sheet value2def, column "Upper dimension"; see data/)."""
    data = json.loads(_UPPER.read_text())
    return {v: list(data["upper_dimensions"].get(v, [])) for v in KANG_VALUES}


@lru_cache(maxsize=1)
def definitions() -> dict[str, str]:
    if not _DEFINITIONS.is_file():
        return {}
    return {k: v["definition"] for k, v in json.loads(_DEFINITIONS.read_text()).items()}
