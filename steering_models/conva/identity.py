"""Which model an artifact belongs to, decided from the config and the weights' files (no model load).

``model_identity`` records the architecture fields that make a value vector meaningless on another
model (``model_type``, ``hidden_size`` = d_model, ``num_hidden_layers``, ``vocab_size``) and, when the
model is a local folder of safetensors, a fingerprint of the first rows of its input embedding (so a
base model and its chat fine-tune, same shapes, are told apart).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from steering_models.ops import text_config

FINGERPRINT_ROWS = 8


def embedding_fingerprint(name_or_path: str) -> str | None:
    folder = Path(name_or_path)
    if not folder.is_dir() or not any(folder.glob("*.safetensors")):
        return None
    from steering_models.vectors import embedding_rows

    try:
        rows = embedding_rows(folder, list(range(FINGERPRINT_ROWS)))
    except Exception:  # noqa: BLE001  (an unusual checkpoint layout: fall back to the config fields)
        return None
    return hashlib.sha256(rows.float().numpy().round(5).tobytes()).hexdigest()[:16]


def model_identity(config: Any) -> dict[str, Any]:
    cfg = text_config(config)
    name = str(getattr(config, "name_or_path", "") or getattr(config, "_name_or_path", ""))
    return {
        "id": name,
        "model_type": str(getattr(cfg, "model_type", "")),
        "hidden_size": int(cfg.hidden_size),
        "num_hidden_layers": int(cfg.num_hidden_layers),
        "vocab_size": int(getattr(cfg, "vocab_size", 0) or 0),
        "embedding_fingerprint": embedding_fingerprint(name) if name else None,
    }


def named_identity(pretrained: object, config: Any) -> dict[str, Any]:
    """``model_identity`` with the embedded model's name as its id when ``pretrained`` names one."""
    from lm_eval_tasks.embedded_models import embedded_model

    identity = model_identity(config)
    embedded = embedded_model(pretrained)
    if embedded is not None:
        identity["id"] = f"{embedded.name} ({embedded.model_id})"
    return identity


def identity_mismatch(saved: dict[str, Any], current: dict[str, Any]) -> str | None:
    """None if ``current`` is the model ``saved`` was fitted on, else the reason (one clause)."""
    if saved["hidden_size"] != current["hidden_size"]:
        return (f"was fitted on a model with d_model={saved['hidden_size']} but this model's hidden size "
                f"is {current['hidden_size']}")
    for key in ("model_type", "num_hidden_layers", "vocab_size"):
        if saved.get(key) != current.get(key):
            return (f"was fitted on another model ({saved['id']!r}: {key}={saved.get(key)!r}, "
                    f"this model has {current.get(key)!r})")
    a, b = saved.get("embedding_fingerprint"), current.get("embedding_fingerprint")
    if a and b and a != b:
        return (f"was fitted on another model ({saved['id']!r}): the input embeddings differ from "
                f"{current['id']!r}'s")
    return None
