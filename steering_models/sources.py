"""Where a steering direction comes from: a safetensors vector file or a sae-lens SAE.

Everything here that runs before the model loads reads only headers and config files; weights are
read with safetensors (never pickle).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from lm_eval_tasks.resources import resolve_path
from steering_models.errors import spec_error

SAE_CFG = "cfg.json"
SAE_WEIGHTS = "sae_weights.safetensors"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class VectorSource:
    """``{vector: FILE.safetensors, key: NAME}``: one tensor of shape (d_model,)."""

    path: Path
    key: str | None

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str, base_dir: Path | None) -> VectorSource:
        unknown = set(d) - {"vector", "key"}
        if unknown:
            raise spec_error(where, f"source.{sorted(unknown)[0]}", d[sorted(unknown)[0]],
                             "is not a field of a vector source: expected `vector` and optionally `key`")
        path = resolve_path(str(d["vector"]), base_dir)
        if not path.is_file():
            raise spec_error(where, "source.vector", str(d["vector"]),
                             f"is not a file (looked at {path})", "Point `source.vector` at a .safetensors file.")
        key = d.get("key")
        if key is not None and not isinstance(key, str):
            raise spec_error(where, "source.key", key, "must be a string (a tensor name in the file)")
        return cls(path, key)

    def shape(self, where: str) -> tuple[int, ...]:
        from safetensors import safe_open

        try:
            with safe_open(str(self.path), framework="pt") as f:
                keys = list(f.keys())
                key = self._pick_key(keys, where)
                return tuple(f.get_slice(key).get_shape())
        except (OSError, ValueError) as e:
            if "source.key" in str(e) or "source.vector" in str(e):
                raise
            raise spec_error(where, "source.vector", str(self.path),
                             f"is not a readable safetensors file ({e})") from e

    def _pick_key(self, keys: list[str], where: str) -> str:
        if self.key is not None:
            if self.key not in keys:
                raise spec_error(where, "source.key", self.key,
                                 f"is not in {self.path.name}: it holds {', '.join(sorted(keys)[:10])}")
            return self.key
        if len(keys) != 1:
            raise spec_error(where, "source.key", None,
                             f"must name one of the {len(keys)} tensors in {self.path.name} "
                             f"({', '.join(sorted(keys)[:10])})", "Add `key:` to the source.")
        return keys[0]

    def load(self) -> Any:
        from safetensors import safe_open

        with safe_open(str(self.path), framework="pt") as f:
            return f.get_tensor(self._pick_key(list(f.keys()), str(self.path))).float()

    def fingerprint(self) -> str:
        return f"vector:{file_sha256(self.path)}:{self.key}"

    def to_dict(self) -> dict[str, Any]:
        return {"vector": str(self.path), **({"key": self.key} if self.key else {})}


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
            from steering_models.sae import DEFAULT_ALIASES, shipped_sae_dir

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
