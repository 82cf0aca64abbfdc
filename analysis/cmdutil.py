"""Shared bits of the ``cmd_*`` modules: bad input becomes one ``error: ...`` line and exit code 2."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any


def friendly_errors(run: Callable[[Any], int]) -> Callable[[Any], int]:
    @functools.wraps(run)
    def wrapper(args: Any) -> int:
        try:
            return run(args)
        except (ValueError, FileNotFoundError, KeyError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            print(f"error: {msg}", file=sys.stderr)
            return 2
    return wrapper
