"""The project's paths: shipped data, the cache root, and how a relative path in a file resolves.

* Shipped data is resolved from the package itself (never the cwd): lm-eval resolves a relative
  ``data_files`` against the current directory, so every loader in this package builds
  ``datasets.Dataset`` objects in Python from these absolute paths instead.
* ``cache_root()``: every cache of the project (converted models, activations, judge replies) lives
  under ``$VALUE_STEERING_CACHE``, default ``~/.cache/value-steering-eval``.
* ``resolve_path(value, base_dir)``: a path written in a steering, sweep or judge file is relative to
  that file's folder (``~`` expands; absolute paths stay).
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR: Path = Path(__file__).resolve().parent / "data"


def data_path(*parts: str) -> Path:
    """Absolute path of a shipped data file, e.g. ``data_path("kang", "players25.json")``."""
    path = DATA_DIR.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(
            f"shipped data file {path} is missing: the lm_eval_tasks install is incomplete; "
            "reinstall the package (pip install --force-reinstall value-steering-eval)."
        )
    return path


def cache_root() -> Path:
    """The folder every cache of the project lives under (``$VALUE_STEERING_CACHE``)."""
    return Path(os.environ.get("VALUE_STEERING_CACHE") or Path.home() / ".cache" / "value-steering-eval")


def resolve_path(value: str | Path, base_dir: Path | None) -> Path:
    """``value`` as written in a file whose folder is ``base_dir`` (None: relative to the cwd)."""
    path = Path(value).expanduser()
    return path if path.is_absolute() or base_dir is None else base_dir / path
