"""An SAE named by a steering file or a command: a sae-lens folder, ``default`` (the shipped SAE) or a hub release.

Before the model loads only ``cfg.json`` is read; weights are loaded by sae-lens from safetensors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from lm_eval_tasks.resources import resolve_path
from steering_models.errors import spec_error
from steering_models.sae import DEFAULT_ALIASES, shipped_sae_dir
from steering_models.sources import file_sha256

SAE_CFG = "cfg.json"
SAE_WEIGHTS = "sae_weights.safetensors"


@dataclass(frozen=True)
class SAERef:
    """An SAE: a directory saved by sae-lens (``SAE.save_model``), ``default`` (the SAE shipped for the
    embedded default model, ``steering_models.sae``) or a sae-lens release + id (hub)."""

    path: Path | None = None
    release: str | None = None
    sae_id: str | None = None

    @classmethod
    def from_value(cls, value: Any, where: str, base_dir: Path | None) -> SAERef:
        if isinstance(value, str):
            path = shipped_sae_dir() if value in DEFAULT_ALIASES else resolve_path(value, base_dir)
            if not (path / SAE_CFG).is_file():
                raise spec_error(where, "source.sae", value,
                                 f"is not an SAE directory saved by sae-lens (no {SAE_CFG} in {path})",
                                 "Point `source.sae` at a folder written by SAE.save_model, or use "
                                 "{release: ..., sae_id: ...}.")
            return cls(path=path)
        if isinstance(value, dict) and set(value) == {"release", "sae_id"}:
            return cls(release=str(value["release"]), sae_id=str(value["sae_id"]))
        raise spec_error(where, "source.sae", value,
                         "is not an SAE reference: expected a directory path or {release: R, sae_id: I}")

    def cfg(self) -> dict[str, Any] | None:
        """The SAE's config without loading weights (None for a hub release not yet downloaded)."""
        if self.path is not None:
            return json.loads((self.path / SAE_CFG).read_text())
        return None

    def load(self, device: Any = "cpu") -> Any:
        return _load_sae(self, str(device))

    def fingerprint(self) -> str:
        if self.path is not None:
            weights = self.path / SAE_WEIGHTS
            digest = file_sha256(weights) if weights.is_file() else "no-weights"
            return f"sae:{digest}:{file_sha256(self.path / SAE_CFG)}"
        return f"sae-release:{self.release}:{self.sae_id}"

    def to_value(self) -> Any:
        return str(self.path) if self.path is not None else {"release": self.release, "sae_id": self.sae_id}


@lru_cache(maxsize=8)
def _load_sae(ref: SAERef, device: str) -> Any:
    from sae_lens import SAE

    if ref.path is not None:
        sae = SAE.load_from_disk(str(ref.path), device=device)
    else:
        sae = SAE.from_pretrained(ref.release, ref.sae_id, device=device)
    sae.eval()
    for p in sae.parameters():
        p.requires_grad_(False)
    return sae


def sae_hook_layer(cfg: dict[str, Any]) -> int | None:
    """The block index in the SAE's recorded hook name (``blocks.12.hook_resid_post`` -> 12)."""
    hook = (cfg.get("metadata") or {}).get("hook_name") or cfg.get("hook_name") or ""
    parts = hook.split(".")
    if len(parts) >= 2 and parts[0] == "blocks" and parts[1].isdigit():
        return int(parts[1])
    return None
