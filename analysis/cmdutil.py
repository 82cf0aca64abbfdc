"""Shared bits of the ``cmd_*`` modules: bad input becomes one ``error: ...`` line and exit code 2."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def add_mixed_models_flag(parser: Any) -> None:
    """``--allow-mixed-models``: merge runs of different models into one table (refused by default)."""
    parser.add_argument("--allow-mixed-models", action="store_true",
                        help="merge runs of different models (refused by default: their orientations would be "
                             "averaged as if one model had answered)")


# the arguments that name the files a command reads (the positional RUN_DIRs and the CSV options)
INPUT_ARGS = ("runs", "run_dir", "orientations", "train", "test", "leaderboard", "reference", "features", "judged")


def input_files(args: Any) -> list[str]:
    """The files and folders ``args`` names as inputs, in order."""
    found: list[str] = []
    for name in INPUT_ARGS:
        value = getattr(args, name, None)
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, (str, Path)) and str(item) and str(item) not in found:
                found.append(str(item))
    return found


def naming_inputs(msg: str, args: Any) -> str:
    """``msg``, naming the input files when it names none of them (an error about a table read from them)."""
    inputs = input_files(args)
    if not inputs or any(f in msg or Path(f).name in msg for f in inputs):
        return msg
    shown = ", ".join(inputs[:3]) + (f" and {len(inputs) - 3} more" if len(inputs) > 3 else "")
    body = msg[:-1] if msg.endswith(".") else msg
    return f"{body} (reading {shown})."


def friendly_errors(run: Callable[[Any], int]) -> Callable[[Any], int]:
    @functools.wraps(run)
    def wrapper(args: Any) -> int:
        try:
            return run(args)
        except (ValueError, FileNotFoundError, KeyError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            print(f"error: {naming_inputs(str(msg), args)}", file=sys.stderr)
            return 2
    return wrapper
