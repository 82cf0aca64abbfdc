"""Where a steering direction comes from: a safetensors vector file (an SAE: ``steering_models.sae.ref``).

Everything here that runs before the model loads reads only headers; weights are read with safetensors
(never pickle).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lm_eval_tasks.resources import resolve_path
from steering_models.errors import SpecError, spec_error


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
        except SpecError:
            raise
        except Exception as e:  # noqa: BLE001 (SafetensorError for a pickle/.pt/text file renamed .safetensors)
            raise self._unreadable(where, e) from None

    def _unreadable(self, where: str, e: BaseException) -> SpecError:
        return spec_error(where, "source.vector", str(self.path),
                          f"is not a safetensors file ({type(e).__name__}: {str(e)[:80]}); only safetensors are read "
                          "(never pickle)", "Convert it with safetensors.torch.save_file, or point `source.vector` "
                          "at the right file.")

    def tensor(self, where: str) -> Any:
        """The vector as float32 (read before the model loads, to check its values; it is d_model numbers)."""
        from safetensors import safe_open

        try:
            with safe_open(str(self.path), framework="pt") as f:
                return f.get_tensor(self._pick_key(list(f.keys()), where)).float()
        except SpecError:
            raise
        except Exception as e:  # noqa: BLE001
            raise self._unreadable(where, e) from None

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
