"""Reading ConVA artifact folders for the analysis subcommands (no language model is ever loaded)."""

from __future__ import annotations

import json
from pathlib import Path

from steering_models.conva import artifacts
from steering_models.model_helpers import identity_mismatch


def load_folder(folder: str | Path, values: list[str] | None = None) -> list[artifacts.Artifact]:
    """Every ConVA artifact in ``folder`` (or the named ``values``), all of one model."""
    root = Path(folder)
    if values:
        found = [artifacts.load(root, v) for v in values]
    else:
        found = []
        for js in sorted(root.glob("*.json")):
            try:
                meta = json.loads(js.read_text())
            except ValueError:
                continue
            if isinstance(meta, dict) and meta.get("format") == artifacts.FORMAT:
                found.append(artifacts.load(js))
    if not found:
        raise SystemExit(f"error: no ConVA artifacts (<value>.json written by `python -m steering_models.conva "
                         f"fit`) in {root}. Pass the folder given to fit --out.")
    first = found[0]
    for art in found[1:]:
        why = identity_mismatch(first.model, art.model)
        if why:
            raise SystemExit(f"error: artifact {art.value!r} in {root} {why} (artifact {first.value!r}'s model). "
                             "Compare artifacts fitted on one model.")
    return found
