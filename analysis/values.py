"""Value names on the analysis side: lenient matching with a clear error, and ValueBench's upper dimensions.

The 17 values themselves and their spellings live in :mod:`lm_eval_tasks.values`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from lm_eval_tasks.values import VALUES, canonical_value

_UPPER = Path(__file__).resolve().parent / "data" / "valuebench_upper_dimensions.json"


def require_value(name: str, where: str) -> str:
    found = canonical_value(name)
    if found is None:
        raise ValueError(f"{where}: {name!r} is not one of the 17 ValueBench values of Kang et al.; "
                         f"use one of {list(VALUES)} (case, '_' and '-' do not matter).")
    return found


@lru_cache(maxsize=1)
def upper_dimensions() -> dict[str, list[str]]:
    """value -> ValueBench upper dimensions (sheet value2def, column "Upper dimension"; see data/)."""
    data = json.loads(_UPPER.read_text())
    return {v: list(data["upper_dimensions"].get(v, [])) for v in VALUES}
