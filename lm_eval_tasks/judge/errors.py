"""The judge's one error type: a single sentence that names what to fix."""

from __future__ import annotations


class JudgeError(RuntimeError):
    """The judge could not produce a reply (endpoint unreachable, rejected key, unknown model...)."""


class ReplyError(JudgeError):
    """One call got no usable reply (HTML or truncated JSON with HTTP 200, a body that is not a chat
    completion): that item stays unscored with this reason, the other calls go on."""
