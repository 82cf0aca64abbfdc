"""``pretrained=`` as steering_models reads it: an embedded model's name resolves to its folder.

The embedded models and their one-time conversion live on the ground floor
(:mod:`lm_eval_tasks.embedded_models`); here a missing or damaged embedded model becomes the
:class:`~steering_models.errors.SpecError` every model argument raises, so the CLIs print it as one line.
"""

from __future__ import annotations

from lm_eval_tasks.embedded_models import EmbeddedModelError
from lm_eval_tasks.embedded_models import resolve_pretrained as _resolve
from steering_models.errors import SpecError


def resolve_pretrained(pretrained: object) -> object:
    """``pretrained=default`` (or omitted) -> the embedded model's folder; anything else unchanged."""
    try:
        return _resolve(pretrained)
    except EmbeddedModelError as e:
        raise SpecError(str(e)) from e
