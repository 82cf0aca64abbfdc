"""The one error type a user sees for a bad steering file or model argument."""

from __future__ import annotations

from typing import Any


class SpecError(ValueError):
    """A steering spec (or a model argument) is wrong; the message says which value and how to fix it."""


def spec_error(where: str, field: str, value: Any, problem: str, fix: str | None = None) -> SpecError:
    """Build the standard one-sentence message.

    >>> str(spec_error("steer.yaml, intervention 1", "layer", 40, "is out of range: model has 18 layers (0-17)"))
    'steer spec field `layer`=40 is out of range: model has 18 layers (0-17) (steer.yaml, intervention 1). Fix the `layer` in steer.yaml.'
    """
    file = where.split(",")[0].strip() or "the steering spec"
    fix = fix or f"Fix the `{field}` in {file}."
    return SpecError(f"steer spec field `{field}`={value!r} {problem} ({where}). {fix}")
