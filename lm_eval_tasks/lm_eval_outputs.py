"""What ``lm_eval --output_path DIR --log_samples`` writes, read the same way by every package.

lm-eval 0.4.13 (``lm_eval/loggers/evaluation_tracker.py``) writes, in ``DIR/<model name>/``,
``results_<date id>.json`` and one ``samples_<task>_<date id>.jsonl`` per task, where the date id is
``datetime.now().isoformat().replace(":", "-")`` (``2026-11-30T12-00-00.123456``; no microseconds
when they are 0). Copies made by other tools (or older lm-eval versions) keep the ``:``
(``2026-11-30T12:00:00.123456``): both spellings are read. A samples file holds one JSON object per
line; the filter's dict in ``filtered_resps`` is written as its Python ``str()`` (``logged_dict``).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any, NamedTuple

# lm-eval's date id: ISO date, "T", then the time with "-" (lm-eval 0.4.13) or ":" between fields.
_DATE_ID = r"\d{4}-\d{2}-\d{2}T[\d\-.:]+"
RESULTS_NAME = re.compile(rf"^results_(?P<date_id>{_DATE_ID})\.json$")
SAMPLES_NAME = re.compile(rf"^samples_(?P<task>.+)_(?P<date_id>{_DATE_ID})\.jsonl$")


class LmEvalOutputError(ValueError):
    """A file that is not what lm-eval writes; the message names the file (and line) and the fix."""


class SamplesName(NamedTuple):
    """The parts of a samples file's name: ``samples_<task>_<date_id>.jsonl``."""

    task: str
    date_id: str


def samples_name(name: str) -> SamplesName | None:
    """``task`` and ``date_id`` of a samples file name, or None when lm-eval did not name it."""
    m = SAMPLES_NAME.match(name)
    return None if m is None else SamplesName(m["task"], m["date_id"])


def results_date_id(name: str) -> str | None:
    """The date id of a ``results_<date_id>.json`` file name, or None when it is not one."""
    m = RESULTS_NAME.match(name)
    return None if m is None else m["date_id"]


def read_jsonl(path: Path, what: str = "an lm-eval samples file (--log_samples)",
               required: Collection[str] = ()) -> Iterator[dict[str, Any]]:
    """Every JSON object of a JSONL file, in order; blank lines are skipped.

    A line that is not a JSON object, or lacks a ``required`` key, raises ``LmEvalOutputError`` naming
    ``path:line`` and ``what`` the file should be (a run killed mid-write leaves a truncated last line).
    """
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise LmEvalOutputError(f"{path}:{n} is not a JSON line ({e.msg}); is it {what}?") from None
            if not isinstance(record, dict):
                raise LmEvalOutputError(f"{path}:{n} is a JSON {type(record).__name__}, not an object; "
                                        f"is it {what}?")
            missing = [k for k in required if k not in record]
            if missing:
                raise LmEvalOutputError(f"{path}:{n} lacks {'/'.join(missing)}; is it {what}?")
            yield record


# a float NaN/inf inside a logged dict is written bare (`nan`), which literal_eval rejects
_BARE_FLOAT = re.compile(r"(?<=[:\[,(] )-?(?:nan|inf)(?=[,}\])])")


def logged_dict(value: Any) -> dict[str, Any] | None:
    """A filter's dict as lm-eval's sample logger wrote it (with str(): a Python dict literal), or None."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, str) or not value.startswith("{"):
        return None
    for text in (value, _BARE_FLOAT.sub("None", value)):
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            continue
        return parsed if isinstance(parsed, dict) else None
    return None
