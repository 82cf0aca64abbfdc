"""ConVA value-vector artifacts: ``<value>.safetensors`` (tensors) + ``<value>.json`` (everything else).

Tensors (L = layers of the model, D = d_model), for every layer whether selected or not:
``w`` [L, D], ``b`` [L], ``v`` [L, D] (= w/‖w‖), ``train_acc`` [L], ``test_acc`` [L], ``caa`` [L, D]
(mean positive − mean negative embedding) and, when the offline probe gate was fitted,
``gate_w`` [L, D], ``gate_b`` [L], ``gate_test_acc`` [L].

The JSON holds the value, the selected ``layers``, the model identity (``identity.py``), ``d_model``,
the training data's hash and settings, and the sha256 of the safetensors file, so a damaged or
swapped tensor file is refused. ``check_model`` refuses an artifact fitted on another model, before
the language model loads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from steering_models.errors import SpecError
from steering_models.model_helpers import identity_mismatch
from steering_models.sources import file_sha256

FORMAT = "conva-artifact/1"
REQUIRED = ("w", "b", "v", "train_acc", "test_acc")
GATE = ("gate_w", "gate_b", "gate_test_acc")


class ArtifactError(SpecError):
    """A ConVA artifact is missing, damaged or belongs to another model."""


@dataclass
class Artifact:
    value: str
    layers: list[int]
    model: dict[str, Any]
    data_hash: str
    tensors: dict[str, torch.Tensor]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def d_model(self) -> int:
        return int(self.model["hidden_size"])

    @property
    def n_layers(self) -> int:
        return int(self.model["num_hidden_layers"])

    @property
    def has_gate(self) -> bool:
        return all(k in self.tensors for k in GATE)


def artifact_paths(path: str | Path, value: str | None = None) -> tuple[Path, Path]:
    """(json, safetensors) of ``path`` = a folder + ``value``, or a ``.json`` / stem path."""
    p = Path(path).expanduser()
    if p.is_dir():
        if value is None:
            raise ArtifactError(f"ConVA artifact path {str(p)!r} is a folder, so a value name is needed. "
                                "Add `value:` (e.g. power) or point at <value>.json.")
        p = p / value
    stem = p.with_suffix("") if p.suffix in (".json", ".safetensors") else p
    return stem.with_suffix(".json"), stem.with_suffix(".safetensors")


def save(art: Artifact, out_dir: str | Path) -> Path:
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    js, st = artifact_paths(out / art.value)
    tensors = {k: t.detach().float().contiguous().cpu() for k, t in art.tensors.items()}
    save_file(tensors, str(st), metadata={"format": FORMAT, "value": art.value})
    meta = {
        "format": FORMAT, "value": art.value, "layers": art.layers, "model": art.model,
        "d_model": art.d_model, "data_hash": art.data_hash, "settings": art.settings,
        "tensors_file": st.name, "tensors_sha256": file_sha256(st),
    }
    js.write_text(json.dumps(meta, indent=2) + "\n")
    return js


def load_meta(path: str | Path, value: str | None = None) -> dict[str, Any]:
    """The artifact's JSON, checked for format and required fields (no tensors read)."""
    js, _ = artifact_paths(path, value)
    if not js.is_file():
        raise ArtifactError(f"ConVA artifact {str(js)!r} does not exist. Build it with "
                            "`python -m steering_models.conva fit ... --out DIR` and point at DIR.")
    try:
        meta = json.loads(js.read_text())
    except (OSError, ValueError) as e:
        raise ArtifactError(f"ConVA artifact {str(js)!r} is not valid JSON ({e}); it is damaged. "
                            "Refit it with `python -m steering_models.conva fit`.") from e
    missing = [k for k in ("format", "value", "layers", "model", "d_model", "tensors_file", "tensors_sha256")
               if k not in meta] if isinstance(meta, dict) else ["format"]
    if missing or meta.get("format") != FORMAT:
        raise ArtifactError(f"ConVA artifact {str(js)!r} is not a {FORMAT} file (missing {missing or 'format'}). "
                            "Refit it with `python -m steering_models.conva fit`.")
    if value is not None and meta["value"] != value:
        raise ArtifactError(f"ConVA artifact {str(js)!r} holds value {meta['value']!r}, not {value!r}. "
                            "Fix `value:` or the artifact path.")
    meta["_json"] = str(js)
    return meta


def check_model(meta: dict[str, Any], identity: dict[str, Any]) -> None:
    """Refuse an artifact fitted on another model (different d_model, architecture or weights)."""
    why = identity_mismatch(meta["model"], identity)
    if why:
        raise ArtifactError(f"ConVA artifact {meta['_json']!r} {why}. Fit value vectors for this model: "
                            f"python -m steering_models.conva fit --pretrained {identity['id'] or 'MODEL'} ...")


def load(path: str | Path, value: str | None = None, meta: dict[str, Any] | None = None) -> Artifact:
    """Read and verify an artifact: JSON fields, tensor file hash, tensor shapes."""
    from safetensors.torch import load_file

    meta = meta or load_meta(path, value)
    st = Path(meta["_json"]).with_name(meta["tensors_file"])
    where = meta["_json"]
    if not st.is_file():
        raise ArtifactError(f"ConVA artifact {where!r} names tensor file {str(st)!r}, which does not exist. "
                            "Copy it beside the JSON or refit.")
    if file_sha256(st) != meta["tensors_sha256"]:
        raise ArtifactError(f"ConVA artifact tensor file {str(st)!r} does not match the sha256 recorded in "
                            f"{where!r}: it is damaged or from another fit. Refit the value.")
    try:
        tensors = load_file(str(st))
    except Exception as e:  # noqa: BLE001
        raise ArtifactError(f"ConVA artifact tensor file {str(st)!r} is not readable safetensors ({e}). "
                            "Refit the value.") from e
    n, d = int(meta["model"]["num_hidden_layers"]), int(meta["d_model"])
    shapes = {"w": (n, d), "v": (n, d), "b": (n,), "train_acc": (n,), "test_acc": (n,),
              "caa": (n, d), "gate_w": (n, d), "gate_b": (n,), "gate_test_acc": (n,)}
    for key in REQUIRED:
        if key not in tensors:
            raise ArtifactError(f"ConVA artifact {str(st)!r} lacks tensor {key!r}. Refit the value.")
    for key, t in tensors.items():
        if key in shapes and tuple(t.shape) != shapes[key]:
            raise ArtifactError(f"ConVA artifact {str(st)!r}: tensor {key!r} has shape {list(t.shape)}, "
                                f"expected {list(shapes[key])} for d_model={d} and {n} layers. Refit the value.")
    layers = [int(x) for x in meta["layers"]]
    if any(not 0 <= x < n for x in layers):
        raise ArtifactError(f"ConVA artifact {where!r} selects layers {layers} outside 0-{n - 1}. Refit the value.")
    return Artifact(meta["value"], layers, meta["model"], meta.get("data_hash", ""), tensors,
                    meta.get("settings", {}))
