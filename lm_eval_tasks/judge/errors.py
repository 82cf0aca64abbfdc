"""The judge's one error type: a single sentence that names what to fix."""

from __future__ import annotations


class JudgeError(RuntimeError):
    """The judge could not produce a reply (endpoint unreachable, rejected key, unknown model...)."""
