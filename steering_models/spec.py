"""The steering file: a list of interventions, parsed strictly and checked before the model loads.

```yaml
name: sae-428-x100                 # optional; default: the file's stem
meta: {kind: sae_feature, feature: 428}   # optional tags, copied into the results JSON
interventions:
  - layer: 12                      # int or list of ints (0-based block index)
    hook: resid_post               # resid_post (default): output of block `layer`; resid_pre: its input
    op: add                        # add | scale_feature | clamp_feature | conva
    source: {sae: ./sae_dir, feature: 428}
    strength: 100
    positions: {match: " your values"}   # all (default) | prompt | generated | last | {match: TEXT}
```

A file may also be a bare list of interventions. Relative paths resolve against the file's folder.
Kang et al.'s SAE steering (their released code) is exactly the example above: ``add`` of
100 x W_dec[feature] to the residual stream after the SAE's block, at the " your values" tokens of the
prompt only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steering_models.errors import SpecError, spec_error
from steering_models.model_helpers import text_config
from steering_models.ops import SteeringOp, get_op
from steering_models.positions import Positions

HOOKS = ("resid_post", "resid_pre")
COMMON_FIELDS = {"layer", "hook", "op", "positions"}
TOP_FIELDS = {"name", "meta", "interventions"}


@dataclass(frozen=True)
class Intervention:
    layers: tuple[int, ...]
    op: SteeringOp
    hook: str = "resid_post"
    positions: Positions = field(default_factory=lambda: Positions("all"))
    where: str = "steer spec"

    @classmethod
    def from_dict(cls, d: Any, where: str, base_dir: Path | None) -> Intervention:
        if not isinstance(d, Mapping):
            raise SpecError(f"steer spec entry ({where}) must be a mapping with `layer`, `op`, ...; got {d!r}. "
                            "Fix the entry in the steering file.")
        if "op" not in d:
            raise spec_error(where, "op", None, "is missing", "Add `op:` (add, scale_feature, clamp_feature, conva).")
        op_cls = get_op(d["op"], where)
        layers = d.get("layer")
        if layers is None:
            raise spec_error(where, "layer", None, "is missing", "Add `layer:` (a block index or a list).")
        layer_list = layers if isinstance(layers, list) else [layers]
        if not layer_list or any(isinstance(x, bool) or not isinstance(x, int) for x in layer_list):
            raise spec_error(where, "layer", layers, "must be an integer or a non-empty list of integers")
        repeated = sorted({x for x in layer_list if layer_list.count(x) > 1})
        if repeated:
            raise spec_error(where, "layer", layers, f"names layer {repeated[0]} twice (the edit would be applied "
                             "twice there)", "List each layer once; to steer harder, raise `strength`.")
        hook = d.get("hook", "resid_post")
        if hook not in HOOKS:
            raise spec_error(where, "hook", hook, f"is not a hook point: expected one of {', '.join(HOOKS)}")
        positions = Positions.from_value(d.get("positions", "all"), where)
        params = {k: v for k, v in d.items() if k not in COMMON_FIELDS}
        op = op_cls.from_dict(params, where, base_dir)
        return cls(tuple(layer_list), op, hook, positions, where)

    def validate(self, config: Any, dtype: Any = None) -> None:
        n_layers = text_config(config).num_hidden_layers
        for layer in self.layers:
            if not 0 <= layer < n_layers:
                raise spec_error(self.where, "layer", layer,
                                 f"is out of range: model has {n_layers} layers (0-{n_layers - 1})")
        self.op.validate(config, list(self.layers), self.where)
        bound = self.op.steering_bound(self.where)
        if bound is not None:
            import torch

            dt = load_dtype(config, dtype)
            limit = float(torch.finfo(dt).max)
            if not bound <= limit:
                field = "strength" if "strength" in self.op.to_dict() else "op"
                raise spec_error(self.where, field, self.op.to_dict().get(field, self.op.name),
                                 f"adds up to {bound:.3g} to a hidden value (strength x max|vector|), beyond "
                                 f"{str(dt).replace('torch.', '')}'s largest number {limit:.3g}, so the steered "
                                 "model would score inf/NaN", f"Lower `{field}` in {self.where.split(',')[0]}.")

    def to_dict(self) -> dict[str, Any]:
        layer: Any = self.layers[0] if len(self.layers) == 1 else list(self.layers)
        return {"layer": layer, "hook": self.hook, "op": self.op.name,
                "positions": self.positions.to_value(), **self.op.to_dict()}


@dataclass(frozen=True)
class SteerSpec:
    interventions: tuple[Intervention, ...] = ()
    name: str = "unsteered"
    meta: Mapping[str, Any] = field(default_factory=dict)
    path: str | None = None

    @classmethod
    def from_dict(cls, data: Any, where: str = "steer spec", base_dir: Path | None = None,
                  default_name: str = "steered") -> SteerSpec:
        """Parse a spec; every unknown key, bad type or bad value raises one :class:`SpecError`."""
        if data is None:
            data = []
        if isinstance(data, list):
            data = {"interventions": data}
        if not isinstance(data, Mapping):
            raise SpecError(f"steer spec ({where}) must be a mapping or a list of interventions; got "
                            f"{type(data).__name__}. Fix the steering file.")
        unknown = sorted(set(data) - TOP_FIELDS)
        if unknown:
            raise spec_error(where, unknown[0], data[unknown[0]],
                             f"is not a steer spec field: expected {', '.join(sorted(TOP_FIELDS))}",
                             f"Remove or rename `{unknown[0]}`.")
        items = data.get("interventions", [])
        if not isinstance(items, list):
            raise spec_error(where, "interventions", items, "must be a list")
        meta = data.get("meta", {})
        if not isinstance(meta, Mapping):
            raise spec_error(where, "meta", meta, "must be a mapping")
        name = data.get("name", default_name if items else "unsteered")
        if not isinstance(name, str) or not name:
            raise spec_error(where, "name", name, "must be a non-empty string")
        interventions = tuple(
            Intervention.from_dict(item, f"{where}, intervention {i + 1}", base_dir) for i, item in enumerate(items)
        )
        return cls(interventions, name, dict(meta), None)

    @property
    def is_empty(self) -> bool:
        return not self.interventions

    @property
    def position_local(self) -> bool:
        """Every op's change at a position depends only on that position (``SteeringOp.position_local``;
        an empty spec too): a prefix run alone is steered exactly as inside the whole row."""
        return all(iv.op.position_local for iv in self.interventions)

    @property
    def depends_on_prompt_split(self) -> bool:
        return any(iv.positions.depends_on_prompt_split for iv in self.interventions)

    def validate(self, config: Any, dtype: Any = None) -> None:
        """Check layers, shapes, feature ids and that the steering stays finite in ``dtype`` (the model's
        ``dtype`` argument; default: the config's) against the model config (no weights are loaded)."""
        for iv in self.interventions:
            iv.validate(config, dtype)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "meta": dict(self.meta),
                "interventions": [iv.to_dict() for iv in self.interventions]}

    def fingerprint(self) -> str:
        """sha256 over every intervention's fields and the contents of the files it reads."""
        parts = [(iv.layers, iv.hook, iv.positions.to_value(), iv.op.name, iv.op.fingerprint())
                 for iv in self.interventions]
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def load_dtype(config: Any, dtype: Any = None) -> Any:
    """The torch dtype the model will be loaded in: ``dtype`` (a model argument: "float16", a torch dtype,
    "auto"/None = the config's), else float32 (transformers' default)."""
    import torch

    for candidate in (dtype, getattr(text_config(config), "dtype", None), getattr(config, "dtype", None)):
        if candidate is None or candidate == "auto":
            continue
        if isinstance(candidate, torch.dtype):
            return candidate
        found = getattr(torch, str(candidate).replace("torch.", ""), None)
        if isinstance(found, torch.dtype) and found.is_floating_point:
            return found
    return torch.float32


def load_spec(source: str | Path | Mapping[str, Any] | list[Any] | SteerSpec | None) -> SteerSpec:
    """Read a YAML/JSON steering file (or take a dict/list/spec) and parse it strictly."""
    if source is None or source == "":
        return SteerSpec()
    if isinstance(source, SteerSpec):
        return source
    if isinstance(source, (Mapping, list)):
        return SteerSpec.from_dict(source)
    path = Path(source).expanduser()
    if not path.is_file():
        raise SpecError(f"model argument `steer`={str(source)!r} is not a file. "
                        "Pass the path of a YAML or JSON steering file (steer=path/to/steer.yaml).")
    from lm_eval_tasks.safe_yaml import ConfigFileError, load_file

    try:  # size, alias, depth, huge-integer and duplicate-key limits
        data = load_file(path, "steering file")
    except ConfigFileError as e:
        raise SpecError(str(e)) from None
    spec = SteerSpec.from_dict(data, where=path.name, base_dir=path.parent.resolve(), default_name=path.stem)
    if data is None or (isinstance(data, Mapping) and "interventions" not in data):  # (a typo'd key: refused above)
        what = "is empty (or only comments)" if data is None else "has no `interventions`"
        raise SpecError(f"steering file {path} {what}, so it would run unsteered without saying so. Write "
                        "`interventions: []` to run unsteered on purpose, or add interventions.")
    return SteerSpec(spec.interventions, spec.name, spec.meta, str(path.resolve()))
