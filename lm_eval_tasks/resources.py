"""Paths to the data shipped inside the package, resolved from the package itself (never the cwd).

lm-eval resolves a relative ``data_files`` against the current directory, so every loader in this
package builds ``datasets.Dataset`` objects in Python from these absolute paths instead.
"""

from __future__ import annotations

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
