"""Schwartz value dilemmas of ConVA (Jin et al., Section 4.1; Appendix C-E).

The 100 evaluation questions per value (``value/test_<value>_new.csv``) come from the ConVA
repository, which has no licence, so they are NOT shipped. They are read from, in order:
1. ``--metadata '{"conva_dir": "/path/to/conva"}'`` (the folder holding ``value/``),
2. the environment variable ``VALUE_STEERING_CONVA_DIR``,
3. ``../shared/data/conva`` beside a source checkout of this repository (tests/CI).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

CONVA_DIR_ENV = "VALUE_STEERING_CONVA_DIR"

VALUES: tuple[str, ...] = (
    "achievement",
    "benevolence",
    "conformity",
    "hedonism",
    "power",
    "security",
    "self-direction",
    "stimulation",
    "tradition",
    "universalism",
)

# Schwartz's definitions in the wording ConVA uses for {value_description} (Tables 10 and 12 quote
# two of them; all ten are in ConVA's run scripts' negative-value prompts). No final period: the
# templates add it.
DESCRIPTIONS: dict[str, str] = {
    "achievement": "personal success through demonstrating competence according to social standards",
    "power": "social status and prestige, control or dominance over people and resources",
    "hedonism": "pleasure and sensuous gratification for oneself",
    "stimulation": "excitement, novelty, and challenge in life",
    "self-direction": "independent thought and action-choosing, creating, exploring",
    "universalism": "understanding, appreciation, tolerance, and protection for the welfare of all people and for nature",
    "benevolence": "preservation and enhancement of the welfare of people with whom one is in frequent personal contact",
    "security": "safety, harmony, and stability of society, of relationships, and of self",
    "conformity": "restraint of actions, inclinations, and impulses likely to upset or harm others and violate social expectations or norms",
    "tradition": "respect, commitment, and acceptance of the customs and ideas that traditional culture or religion provide",
}

_CHECKOUT_FALLBACK = Path(__file__).resolve().parents[3] / "shared" / "data" / "conva"


def value_slug(value: str) -> str:
    return value.replace("-", "_")


def resolve_conva_dir(conva_dir: str | os.PathLike[str] | None = None) -> Path:
    """The ConVA data folder (see the module docstring); a clear error naming the settings if absent."""
    candidates: list[tuple[str, Path]] = []
    if conva_dir:
        candidates.append(("metadata `conva_dir`", Path(conva_dir).expanduser()))
    elif os.environ.get(CONVA_DIR_ENV):
        candidates.append((f"${CONVA_DIR_ENV}", Path(os.environ[CONVA_DIR_ENV]).expanduser()))
    else:
        candidates.append(("source-checkout default", _CHECKOUT_FALLBACK))
    source, path = candidates[0]
    if not (path / "value" / "test_power_new.csv").is_file():
        raise FileNotFoundError(
            f"ConVA data not found at {path} (from {source}): expected {path}/value/test_<value>_new.csv. "
            f"Point --metadata '{{\"conva_dir\": \"/path/to/conva\"}}' or the environment variable "
            f"{CONVA_DIR_ENV} at a folder with the ConVA `value/` files (github.com/hr-jin/ConVA)."
        )
    return path


def load_questions(value: str, conva_dir: str | os.PathLike[str] | None = None) -> list[str]:
    if value not in VALUES:
        raise ValueError(f"Schwartz value {value!r} is not one of {list(VALUES)}.")
    path = resolve_conva_dir(conva_dir) / "value" / f"test_{value}_new.csv"
    with open(path, newline="", encoding="utf-8") as fh:
        return [row["text"] for row in csv.DictReader(fh)]
