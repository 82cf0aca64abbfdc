"""The sweep file: a model, tasks and a list of steering configs, parsed strictly before the model loads.

```yaml
model: {pretrained: default, dtype: float32}   # HFLM arguments (not `steer`, not `batch_size`)
tasks: [valuebench_ll_train]                   # lm-eval task or group names
metadata: {num_roles: 3}                       # task metadata (lm_eval --metadata)
limit: null                                    # lm_eval --limit
batch_size: 8                                  # rows per forward pass (rows of all configs of a pass)
configs_per_pass: 8                            # configs scored together in shared batches
share_prefix: true                             # run a prompt prefix shared by rows once (KV cache; LL and generation)
share_trunk: true                              # blocks below the lowest steered one: once per input (LL, gen. prefixes)
include_path: null                             # extra task folder (lm_eval --include_path)
apply_chat_template: false
ray: {workers: 2, num_gpus: 1}                 # only for `run --ray`: see RaySettings (all optional)
configs:
  - unsteered                                  # no steering
  - steer/sae_428.yaml                         # a steering file (path relative to this file)
  - {name: add-v, interventions: [{layer: 12, op: add, source: {vector: v.safetensors}, strength: 4}]}
  - sae_top_features:                          # one config per feature (x each amount, when a list)
      sae: ./sae_dir                           # or {release: R, sae_id: I}
      features: [428, 1312]                    # or a file: JSON/YAML list, whitespace-separated ints, or the
                                               # JSON `python -m steering_models.sae top-features` writes
      top_k: 25                                # optional: the first k features of the list
      layer: 12
      op: add                                  # add (default) | scale_feature | clamp_feature
      strength: 100                            # the op's own fields; a list gives one config per value
      positions: {match: " your values"}
  - vectors:                                   # one config per tensor of a safetensors file
      file: value_vectors.safetensors
      keys: [achievement, hedonism]            # optional: default all keys
      layer: 12
      strength: 4
```
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from lm_eval_tasks.resources import resolve_path
from steering_models.errors import SpecError
from steering_models.spec import SteerSpec, load_spec

TOP_FIELDS = {"model", "tasks", "metadata", "limit", "batch_size", "configs_per_pass", "include_path",
              "apply_chat_template", "share_prefix", "share_trunk", "configs", "ray", "gen_kwargs"}
GENERATORS = {"sae_top_features", "vectors"}
AMOUNT_FIELD = {"add": "strength", "scale_feature": "factor", "clamp_feature": "value"}


class SweepError(SpecError):
    """A sweep file, or a sweep's output folder, is not usable as given."""


def _err(where: str, key: str, value: Any, problem: str, fix: str = "") -> SweepError:
    return SweepError(f"sweep file field `{key}`={value!r} ({where}) {problem}." + (f" {fix}" if fix else ""))


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", name).strip("-") or "config"


@dataclass(frozen=True)
class RaySettings:
    """The sweep file's ``ray:`` mapping, read by ``run --ray`` only (the ``--workers``/``--num-gpus``/
    ``--num-cpus`` flags override it). Not part of the sweep's hash: a sweep can be resumed with or without Ray.

    - ``workers``: Ray actors, each loading the model once (default: as many as the cluster's free CPUs/GPUs
      fit, never more than there are waves of configs).
    - ``num_gpus``: GPUs per worker (default 1 when the cluster has GPUs, else 0: CPU workers).
    - ``num_cpus``: CPUs per worker, also its torch threads (default 1).
    - ``max_restarts``: how often Ray restarts a worker that died (it reloads the model; default 3).
    - ``max_task_retries``: how often the wave of a worker that died is retried on its restart
      (default -1: as long as restarts last).
    """

    workers: int | None = None
    num_gpus: float | None = None
    num_cpus: float = 1.0
    max_restarts: int = 3
    max_task_retries: int = -1


@dataclass(frozen=True)
class Sweep:
    """A parsed sweep file (see the module docstring)."""

    model: dict[str, Any]
    tasks: tuple[str, ...]
    configs: tuple[SteerSpec, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    limit: int | float | None = None
    batch_size: int = 8
    configs_per_pass: int = 8
    include_path: str | None = None
    apply_chat_template: bool = False
    share_prefix: bool = True
    path: str | None = None
    share_trunk: bool = True
    ray: RaySettings = field(default_factory=RaySettings)
    gen_kwargs: dict[str, Any] | None = None  # lm_eval --gen_kwargs: overrides the tasks' generation kwargs

    @property
    def pretrained(self) -> str:
        return str(self.model.get("pretrained", "default"))

    @property
    def hf_kwargs(self) -> dict[str, Any]:
        return {k: v for k, v in self.model.items() if k != "pretrained"}

    def fingerprint(self, model_fingerprint: str) -> str:
        """What a resumed sweep must share with the one that wrote the folder (all but the speed settings
        configs_per_pass, share_prefix and share_trunk)."""
        parts = {"model": self.model, "model_fingerprint": model_fingerprint, "tasks": self.tasks,
                 "metadata": self.metadata, "limit": self.limit, "batch_size": self.batch_size,
                 "include_path": self.include_path, "apply_chat_template": self.apply_chat_template,
                 **({"gen_kwargs": self.gen_kwargs} if self.gen_kwargs else {}),
                 "configs": [(c.name, c.fingerprint()) for c in self.configs]}
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def load_sweep(source: str | Path | Mapping[str, Any]) -> Sweep:
    """Read and parse a sweep file strictly (no model, no weights)."""
    if isinstance(source, Mapping):
        return parse_sweep(source, "sweep", None, None)
    path = Path(source).expanduser()
    if not path.is_file():
        raise SweepError(f"sweep file {str(source)!r} is not a file. Pass the path of a YAML sweep file.")
    from lm_eval_tasks.safe_yaml import ConfigFileError, load_file

    try:  # size, alias, depth, huge-integer and duplicate-key limits
        data = load_file(path, "sweep file")
    except ConfigFileError as e:
        raise SweepError(str(e)) from None
    return parse_sweep(data, path.name, path.parent.resolve(), str(path.resolve()))


def parse_sweep(data: Any, where: str, base_dir: Path | None, path: str | None) -> Sweep:
    """A sweep file's contents -> :class:`Sweep`; each field is checked by its own step below, and the first
    bad one raises one :class:`SweepError` naming it."""
    _check_fields(data, where)
    model = _parse_model(data, where, base_dir)
    tasks = _parse_tasks(data, where)
    metadata = _parse_metadata(data, where)
    limit = _parse_limit(data, where)
    batch_size = _positive_int(data, "batch_size", 8, where)
    configs_per_pass = _positive_int(data, "configs_per_pass", 8, where)
    include_path = _parse_include_path(data, where, base_dir)
    chat, share, trunk = (_flag(data, key, default, where) for key, default in
                          (("apply_chat_template", False), ("share_prefix", True), ("share_trunk", True)))
    gen_kwargs = _parse_gen_kwargs(data, where)
    configs = _parse_configs(data, where, base_dir)  # last: it reads steering files
    return Sweep(model, tasks, configs, metadata, limit, batch_size, configs_per_pass, include_path,
                 apply_chat_template=chat, share_prefix=share, path=path, share_trunk=trunk,
                 ray=parse_ray_settings(data.get("ray"), where), gen_kwargs=gen_kwargs)


def _parse_gen_kwargs(data: Mapping[str, Any], where: str) -> dict[str, Any] | None:
    """``gen_kwargs:``: lm-eval's ``--gen_kwargs`` for every config (a mapping), or None."""
    gen_kwargs = data.get("gen_kwargs")
    if gen_kwargs is not None and not isinstance(gen_kwargs, Mapping):
        raise _err(where, "gen_kwargs", gen_kwargs, "must be a mapping of generation kwargs (lm_eval --gen_kwargs)",
                   "Write e.g. `gen_kwargs: {max_gen_toks: 64}`.")
    return dict(gen_kwargs) if gen_kwargs else None


def _check_fields(data: Any, where: str) -> None:
    """A mapping of known top-level fields."""
    if not isinstance(data, Mapping):
        raise SweepError(f"sweep file ({where}) must be a mapping with `model`, `tasks` and `configs`; got "
                         f"{type(data).__name__}. Fix the sweep file.")
    unknown = sorted(set(data) - TOP_FIELDS)
    if unknown:
        raise _err(where, unknown[0], data[unknown[0]], f"is not a sweep file field: expected "
                   f"{', '.join(sorted(TOP_FIELDS))}", f"Remove or rename `{unknown[0]}`.")


def _parse_model(data: Mapping[str, Any], where: str, base_dir: Path | None) -> dict[str, Any]:
    """``model:``: HFLM's arguments; a relative ``pretrained`` folder (``./...``) resolves against the file."""
    model = data.get("model", {"pretrained": "default"})
    if not isinstance(model, Mapping) or not isinstance(model.get("pretrained", "default"), str):
        raise _err(where, "model", model, "must be a mapping with `pretrained: NAME_OR_DIR` and HFLM arguments")
    for bad in ("steer", "batch_size"):
        if bad in model:
            raise _err(where, f"model.{bad}", model[bad], "is set by the sweep itself",
                       "Remove it (`batch_size` goes at the top level; configs go under `configs`).")
    model = dict(model)
    if base_dir is not None and str(model.get("pretrained", "")).startswith("."):
        model["pretrained"] = str((base_dir / model["pretrained"]).resolve())
    return model


def _parse_tasks(data: Mapping[str, Any], where: str) -> tuple[str, ...]:
    tasks = data.get("tasks")
    if isinstance(tasks, str):
        tasks = [tasks]
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) and t for t in tasks):
        raise _err(where, "tasks", tasks, "must be a non-empty list of lm-eval task names")
    return tuple(tasks)


def _parse_metadata(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise _err(where, "metadata", metadata, "must be a mapping (lm_eval --metadata)")
    return dict(metadata)


def _parse_limit(data: Mapping[str, Any], where: str) -> int | float | None:
    limit = data.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit <= 0):
        raise _err(where, "limit", limit, "must be a positive number or null")
    return limit


def _positive_int(data: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _err(where, key, value, "must be a positive integer")
    return value


def _flag(data: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise _err(where, key, value, "must be true or false")
    return value


def _parse_include_path(data: Mapping[str, Any], where: str, base_dir: Path | None) -> str | None:
    """``include_path:``: an existing folder (relative to the sweep file), as an absolute path."""
    include_path = data.get("include_path")
    if include_path is None:
        return None
    if not isinstance(include_path, str):
        raise _err(where, "include_path", include_path, "must be a folder path")
    resolved = resolve_path(include_path, base_dir)
    if not resolved.is_dir():
        raise _err(where, "include_path", include_path, "is not a folder")
    return str(resolved)


def _parse_configs(data: Mapping[str, Any], where: str, base_dir: Path | None) -> tuple[SteerSpec, ...]:
    """``configs:``: every entry expanded (generators give several), with distinct names."""
    entries = data.get("configs")
    if not isinstance(entries, list) or not entries:
        raise _err(where, "configs", entries, "must be a non-empty list of steering configs")
    configs: list[SteerSpec] = []
    for i, entry in enumerate(entries):
        configs.extend(_expand(entry, f"{where}, configs[{i}]", base_dir))
    seen: dict[str, int] = {}
    for i, spec in enumerate(configs):
        if spec.name in seen:
            raise SweepError(f"sweep file ({where}) has two configs named {spec.name!r} (configs {seen[spec.name]} "
                             f"and {i} after expansion). Give each config a distinct `name`.")
        seen[spec.name] = i
    return tuple(configs)


def parse_ray_settings(data: Any, where: str = "sweep") -> RaySettings:
    """The ``ray:`` mapping (or None) -> :class:`RaySettings`, strictly."""
    if data is None:
        return RaySettings()
    if not isinstance(data, Mapping):
        raise _err(where, "ray", data, "must be a mapping of Ray settings",
                   "Write e.g. `ray: {workers: 2, num_gpus: 1}`.")
    known = {f.name for f in fields(RaySettings)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise _err(where, f"ray.{unknown[0]}", data[unknown[0]], f"is not a Ray setting: expected "
                   f"{', '.join(sorted(known))}", f"Remove or rename `{unknown[0]}`.")
    checks = {"workers": (int, 1, True), "num_gpus": (float, 0, True), "num_cpus": (float, 0, False),
              "max_restarts": (int, -1, False), "max_task_retries": (int, -1, False)}
    for key, value in data.items():
        kind, low, nullable = checks[key]
        if value is None and nullable:
            continue
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or (kind is int and not isinstance(value, int)) or value < low or \
                (key == "num_cpus" and value == 0):
            what = "an integer" if kind is int else "a number"
            bound = "> 0" if key == "num_cpus" else f">= {low}"
            raise _err(where, f"ray.{key}", value, f"must be {what} {bound}" + (" or null" if nullable else ""),
                       f"Fix `ray.{key}` in the sweep file (or the matching --flag).")
    return RaySettings(**dict(data))


def _expand(entry: Any, where: str, base_dir: Path | None) -> list[SteerSpec]:
    if entry == "unsteered":
        return [SteerSpec()]
    if isinstance(entry, str):
        return [load_spec(resolve_path(entry, base_dir))]
    if isinstance(entry, Mapping) and len(entry) == 1 and next(iter(entry)) in GENERATORS:
        kind, params = next(iter(entry.items()))
        if not isinstance(params, Mapping):
            raise _err(where, kind, params, "must be a mapping of the generator's fields")
        return _sae_features(dict(params), where, base_dir) if kind == "sae_top_features" \
            else _vectors(dict(params), where, base_dir)
    if isinstance(entry, (Mapping, list)):
        return [SteerSpec.from_dict(entry, where=where, base_dir=base_dir)]
    raise _err(where, "configs", entry, "is not a config: expected `unsteered`, a steering file path, an "
               f"inline steering spec, or one of the generators {', '.join(sorted(GENERATORS))}")


def _amounts(params: dict[str, Any], op: str, where: str) -> tuple[str, list[Any]]:
    key = AMOUNT_FIELD.get(op)
    if key is None:
        raise _err(where, "op", op, f"is not an op this generator makes: expected {', '.join(AMOUNT_FIELD)}")
    value = params.pop(key, 1.0 if op == "add" else None)
    if value is None:
        raise _err(where, key, None, f"is missing (op `{op}` needs it)")
    return key, value if isinstance(value, list) else [value]


def _read_features(value: Any, where: str, base_dir: Path | None) -> list[int]:
    if isinstance(value, str):
        path = resolve_path(value, base_dir)
        if not path.is_file():
            raise _err(where, "features", value, "is not a file", "Give a list of feature ids or a file of them.")
        if path.suffix in (".json", ".yaml", ".yml"):
            from lm_eval_tasks.safe_yaml import ConfigFileError, load_file

            try:
                value = load_file(path, "feature file")
            except ConfigFileError as e:
                raise SweepError(str(e)) from None
        else:
            text = path.read_text()
            try:
                value = [int(tok) for tok in text.split()]
            except ValueError as e:
                raise _err(where, "features", str(path), f"holds something that is not an integer ({e})") from e
    if isinstance(value, Mapping) and isinstance(value.get("features"), list):  # `sae top-features` output
        value = [f.get("feature") if isinstance(f, Mapping) else f for f in value["features"]]
    if not isinstance(value, list) or not value or \
            any(isinstance(f, bool) or not isinstance(f, int) or f < 0 for f in value):
        raise _err(where, "features", value, "must be a non-empty list of non-negative integers (SAE feature ids)")
    return value


def _sae_features(params: dict[str, Any], where: str, base_dir: Path | None) -> list[SteerSpec]:
    where = f"{where}, sae_top_features"
    for key in ("sae", "features", "layer"):
        if key not in params:
            raise _err(where, key, None, "is missing", f"Add `{key}:` to the generator.")
    sae = params.pop("sae")
    features = _read_features(params.pop("features"), where, base_dir)
    top_k = params.pop("top_k", None)
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise _err(where, "top_k", top_k, "must be a positive integer")
        features = features[:top_k]
    op = params.get("op", "add")
    params["op"] = op
    key, amounts = _amounts(params, op, where)
    specs = []
    for feature in features:
        for amount in amounts:
            name = f"sae-f{feature}" + (f"-{key[0]}{amount}" if len(amounts) > 1 else "")
            iv = {**params, key: amount, "source": {"sae": sae, "feature": feature}}
            meta = {"kind": "sae_feature", "feature": feature, "op": op, key: amount}
            specs.append(SteerSpec.from_dict({"name": name, "meta": meta, "interventions": [iv]},
                                             where=f"{where}, feature {feature}", base_dir=base_dir))
    return specs


def _vectors(params: dict[str, Any], where: str, base_dir: Path | None) -> list[SteerSpec]:
    where = f"{where}, vectors"
    for key in ("file", "layer"):
        if key not in params:
            raise _err(where, key, None, "is missing", f"Add `{key}:` to the generator.")
    file = resolve_path(params.pop("file"), base_dir)
    if not file.is_file():
        raise _err(where, "file", str(file), "is not a file", "Give a safetensors file of [d_model] vectors.")
    from safetensors import safe_open

    with safe_open(str(file), framework="pt") as f:
        available = list(f.keys())
    keys = params.pop("keys", available)
    if not isinstance(keys, list) or not keys or any(k not in available for k in keys):
        raise _err(where, "keys", keys, f"must be a non-empty list of tensors of {file.name}: {available}")
    op = params.get("op", "add")
    if op != "add":
        raise _err(where, "op", op, "must be `add` for the vectors generator")
    params["op"] = op
    key, amounts = _amounts(params, op, where)
    specs = []
    for name in keys:
        for amount in amounts:
            label = f"vec-{name}" + (f"-x{amount}" if len(amounts) > 1 else "")
            iv = {**params, key: amount, "source": {"vector": str(file), "key": name}}
            specs.append(SteerSpec.from_dict({"name": label, "meta": {"kind": "vector", "key": name, key: amount},
                                              "interventions": [iv]}, where=f"{where}, key {name}", base_dir=None))
    return specs
