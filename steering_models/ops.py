"""Steering operations: what an intervention does to the residual stream at its selected positions.

An op is a class registered under the name used as ``op:`` in the steering file. It parses and checks
its own parameters (``from_dict``), checks them against the model's config before any weights load
(``validate``), and, once the model is loaded, returns the function the layer hook calls
(``bind``): ``fn(hidden[B,T,D], mask[B,T], ctx) -> hidden``, leaving unselected positions
bit-identical.

Built in: ``add`` (vector x strength; the vector may be an SAE decoder row, which is how Kang et al.'s
released code "enhances a feature 100 times"), ``scale_feature`` and ``clamp_feature`` (SAE-native:
only the change of the feature, ``(f_new - f_old) * W_dec[feature]``, is added, so the SAE's
reconstruction error never enters the result and an unchanged feature leaves the logits unchanged).
Other packages add ops through the ``steering_models.ops`` entry-point group, imported the first time a
steering file names one (ConVA's gated vectors: ``conva = "steering_models.conva.op:ConvaOp"``).

An op declares ``position_local``: True when its change at a position depends only on that position's
hidden state (``add``, ``scale_feature``, ``clamp_feature``), so a prefix run alone is steered exactly as
inside the whole row; the sweep's shared-prefix and shared-trunk passes rely on it.
"""

from __future__ import annotations

import abc
import hashlib
import json
import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from steering_models.errors import spec_error
from steering_models.model_helpers import text_config
from steering_models.sae.ref import SAERef, sae_hook_layer
from steering_models.sources import VectorSource

if TYPE_CHECKING:
    import torch

    from steering_models.calls import CallContext, OpFn

OPS: dict[str, type[SteeringOp]] = {}

# other packages add ops through this entry-point group (pyproject.toml: `conva =
# "steering_models.conva.op:ConvaOp"`); one is imported only when a steering file names it
ENTRY_POINT_GROUP = "steering_models.ops"


def register_op(cls: type[SteeringOp]) -> type[SteeringOp]:
    """Class decorator: make ``cls`` available as ``op: <cls.name>``."""
    OPS[cls.name] = cls
    return cls


def _plugin_ops() -> dict[str, Any]:
    """The ops of the entry-point group, by name, not yet imported."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def get_op(name: Any, where: str) -> type[SteeringOp]:
    """The op class of ``op: <name>``: a built-in, or one of the entry-point group (imported now)."""
    if isinstance(name, str) and name in OPS:
        return OPS[name]
    plugins = _plugin_ops()
    if not isinstance(name, str) or name not in plugins:
        raise spec_error(where, "op", name,
                         f"is not a steering op: expected one of {', '.join(sorted({*OPS, *plugins}))}")
    cls = plugins[name].load()
    if not (isinstance(cls, type) and issubclass(cls, SteeringOp) and cls.name == name):
        raise TypeError(f"entry point {name} = {plugins[name].value!r} of group {ENTRY_POINT_GROUP} is not a "
                        f"SteeringOp class named {name!r}. Fix the entry point in its package's metadata.")
    return register_op(cls)


def as_number(params: dict[str, Any], key: str, where: str, default: float | None = None) -> float:
    if key not in params:
        if default is None:
            raise spec_error(where, key, None, "is missing", f"Add `{key}:` to the intervention.")
        return default
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise spec_error(where, key, value, "must be a finite number")
    return float(value)


def reject_unknown(params: dict[str, Any], allowed: set[str], where: str, op: str) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise spec_error(where, unknown[0], params[unknown[0]],
                         f"is not a field of op `{op}`: expected {', '.join(sorted(allowed))}",
                         f"Remove or rename `{unknown[0]}`.")


class SteeringOp(abc.ABC):
    """Base class of steering operations (see the module docstring)."""

    name: ClassVar[str]
    # the change at a position depends only on that position's hidden state (see the module docstring);
    # False is always safe
    position_local: ClassVar[bool] = False

    @classmethod
    @abc.abstractmethod
    def from_dict(cls, params: dict[str, Any], where: str, base_dir: Path | None = None) -> SteeringOp:
        """Parse the op's own fields (everything but layer/hook/positions/op); strict."""

    @abc.abstractmethod
    def validate(self, config: Any, layers: list[int], where: str) -> None:
        """Check against the model's config before any weights load."""

    @abc.abstractmethod
    def bind(self, layer: int, device: Any, dtype: Any) -> OpFn | None:
        """Return the hook function for ``layer`` (None = this op is a no-op there)."""

    def steering_bound(self, where: str) -> float | None:
        """Before the model loads: raise a ``SpecError`` when a source tensor holds NaN/inf, and return the
        largest change this op adds to one hidden value (None: not known before the weights load)."""
        return None

    @abc.abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The op's fields, as written in a spec."""

    def fingerprint(self) -> str:
        """Hash of the op's fields and of the contents of every file it reads."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True, default=str).encode()).hexdigest()


class _SAEFeature:
    """``source: {sae: ..., feature: N}`` shared by the SAE-based ops."""

    def __init__(self, sae: SAERef, feature: int) -> None:
        self.sae, self.feature = sae, feature

    @classmethod
    def parse(cls, src: dict[str, Any], where: str, base_dir: Path | None) -> _SAEFeature:
        reject_unknown(src, {"sae", "feature"}, where, "source")
        feature = src.get("feature")
        if isinstance(feature, bool) or not isinstance(feature, int) or feature < 0:
            raise spec_error(where, "source.feature", feature, "must be a non-negative integer (an SAE feature index)")
        return cls(SAERef.from_value(src["sae"], where, base_dir), feature)

    def validate(self, d_model: int, layers: list[int], where: str) -> None:
        cfg = self.sae.cfg()
        if cfg is None:
            return  # a hub release: checked when it loads
        if self.feature >= cfg["d_sae"]:
            raise spec_error(where, "source.feature", self.feature,
                             f"is out of range: the SAE has {cfg['d_sae']} features (0-{cfg['d_sae'] - 1})")
        if cfg["d_in"] != d_model:
            raise spec_error(where, "source.sae", self.sae.to_value(),
                             f"does not fit this model: the SAE reads d_in={cfg['d_in']} but the model's "
                             f"hidden size is {d_model}", "Use an SAE trained on this model.")
        sae_layer = sae_hook_layer(cfg)
        if sae_layer is not None and any(layer != sae_layer for layer in layers):
            warnings.warn(f"{where}: the SAE was trained on block {sae_layer} but is applied at layer(s) "
                          f"{layers}; its features may mean nothing there.", stacklevel=2)

    def decoder_row(self, where: str) -> torch.Tensor | None:
        """``W_dec[feature]`` read from the SAE folder's safetensors without building the SAE (None: a hub
        release, not downloaded before the model loads)."""
        if self.sae.path is None:
            return None
        from safetensors import safe_open

        from steering_models.sae.ref import SAE_WEIGHTS

        weights = self.sae.path / SAE_WEIGHTS
        if not weights.is_file():
            return None
        try:
            with safe_open(str(weights), framework="pt") as f:
                return f.get_slice("W_dec")[self.feature: self.feature + 1][0].float()
        except Exception as e:  # noqa: BLE001 (SafetensorError: not a safetensors file)
            raise spec_error(where, "source.sae", self.sae.to_value(),
                             f"has no readable W_dec in {weights} ({type(e).__name__}: {str(e)[:80]})",
                             "Point `source.sae` at a folder written by SAE.save_model.") from None

    def check_loaded(self, sae: Any, where: str) -> None:
        if self.feature >= sae.cfg.d_sae:
            raise spec_error(where, "source.feature", self.feature,
                             f"is out of range: the SAE has {sae.cfg.d_sae} features (0-{sae.cfg.d_sae - 1})")

    def fingerprint(self) -> str:
        return f"{self.sae.fingerprint()}:{self.feature}"

    def to_dict(self) -> dict[str, Any]:
        return {"sae": self.sae.to_value(), "feature": self.feature}


def finite_values(vec: torch.Tensor, where: str, field: str, value: Any) -> torch.Tensor:
    """``vec``, or a ``SpecError`` when it holds NaN or inf (the steered model would score NaN silently)."""
    import torch

    bad = int((~torch.isfinite(vec)).sum())
    if bad:
        raise spec_error(where, field, value, f"holds {bad} NaN/inf value(s) among its {vec.numel()}, so every "
                         "steered hidden state would be NaN", f"Recompute the vector, or point `{field}` at another.")
    return vec


def _parse_source(params: dict[str, Any], where: str, base_dir: Path | None) -> VectorSource | _SAEFeature:
    src = params.get("source")
    if not isinstance(src, dict):
        raise spec_error(where, "source", src,
                         "must be {vector: FILE} or {sae: DIR_or_{release, sae_id}, feature: N}")
    if "vector" in src:
        return VectorSource.from_dict(src, where, base_dir)
    if "sae" in src:
        return _SAEFeature.parse(src, where, base_dir)
    raise spec_error(where, "source", src, "names neither `vector` nor `sae`")


@register_op
class AddOp(SteeringOp):
    """``hidden += strength * vector`` (``normalize: true`` first scales the vector to unit norm)."""

    name = "add"
    position_local = True

    def __init__(self, source: VectorSource | _SAEFeature, strength: float, normalize: bool) -> None:
        self.source, self.strength, self.normalize = source, strength, normalize

    @classmethod
    def from_dict(cls, params: dict[str, Any], where: str, base_dir: Path | None = None) -> AddOp:
        reject_unknown(params, {"source", "strength", "normalize"}, where, cls.name)
        normalize = params.get("normalize", False)
        if not isinstance(normalize, bool):
            raise spec_error(where, "normalize", normalize, "must be true or false")
        return cls(_parse_source(params, where, base_dir), as_number(params, "strength", where, 1.0), normalize)

    def validate(self, config: Any, layers: list[int], where: str) -> None:
        d_model = text_config(config).hidden_size
        if isinstance(self.source, VectorSource):
            shape = self.source.shape(where)
            if shape != (d_model,):
                raise spec_error(where, "source.vector", str(self.source.path),
                                 f"holds a tensor of shape {list(shape)}, but the model needs [{d_model}]")
        else:
            self.source.validate(d_model, layers, where)

    def steering_bound(self, where: str) -> float | None:
        if isinstance(self.source, VectorSource):
            vec = finite_values(self.source.tensor(where), where, "source.vector", str(self.source.path))
        else:
            vec = self.source.decoder_row(where)
            if vec is None:
                return None
            vec = finite_values(vec, where, "source.sae", self.source.sae.to_value())
        peak = float(vec.double().abs().max()) if vec.numel() else 0.0
        if self.normalize:
            norm = float(vec.double().norm())
            if norm == 0.0:
                raise spec_error(where, "normalize", True, "cannot scale the source to unit norm: it is all zeros",
                                 "Set `normalize: false` or use another vector.")
            peak /= norm
        return abs(self.strength) * peak

    def direction(self, device: Any) -> torch.Tensor:
        if isinstance(self.source, VectorSource):
            vec = self.source.load()
        else:
            sae = self.source.sae.load(device)
            self.source.check_loaded(sae, self.name)
            vec = sae.W_dec[self.source.feature].detach().float()
        if self.normalize:
            vec = vec / vec.norm()
        return vec

    def bind(self, layer: int, device: Any, dtype: Any) -> OpFn | None:
        import torch

        if self.strength == 0.0:
            return None
        delta = (self.direction(device) * self.strength).to(device=device, dtype=torch.float32)

        def add(hidden: torch.Tensor, mask: torch.Tensor, ctx: CallContext) -> torch.Tensor:
            return torch.where(mask.unsqueeze(-1), (hidden.float() + delta).to(hidden.dtype), hidden)

        return add

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source.to_dict(), "strength": self.strength, "normalize": self.normalize}

    def fingerprint(self) -> str:
        return hashlib.sha256(f"add:{self.source.fingerprint()}:{self.strength}:{self.normalize}".encode()).hexdigest()


class _FeatureEditOp(SteeringOp):
    """Set an SAE feature to ``new(f_old)`` and add only ``(f_new - f_old) * W_dec[feature]``."""

    param: ClassVar[str]
    position_local = True

    def __init__(self, source: _SAEFeature, amount: float) -> None:
        self.source, self.amount = source, amount

    @classmethod
    def from_dict(cls, params: dict[str, Any], where: str, base_dir: Path | None = None) -> _FeatureEditOp:
        reject_unknown(params, {"source", cls.param}, where, cls.name)
        source = _parse_source(params, where, base_dir)
        if not isinstance(source, _SAEFeature):
            raise spec_error(where, "source", params["source"],
                             f"must be an SAE feature for op `{cls.name}`: {{sae: ..., feature: N}}")
        return cls(source, as_number(params, cls.param, where))

    def validate(self, config: Any, layers: list[int], where: str) -> None:
        self.source.validate(text_config(config).hidden_size, layers, where)

    def steering_bound(self, where: str) -> float | None:
        row = self.source.decoder_row(where)
        if row is not None:
            finite_values(row, where, "source.sae", self.source.sae.to_value())
        return None  # the change depends on the feature's activation, known only at run time

    @abc.abstractmethod
    def new_value(self, f_old: torch.Tensor) -> torch.Tensor: ...

    def is_identity(self) -> bool:
        return False

    def bind(self, layer: int, device: Any, dtype: Any) -> OpFn | None:
        import torch

        if self.is_identity():
            return None
        sae = self.source.sae.load(device)
        self.source.check_loaded(sae, self.name)
        feature = self.source.feature
        w_dec = sae.W_dec[feature].detach().to(device=device, dtype=torch.float32)

        def edit(hidden: torch.Tensor, mask: torch.Tensor, ctx: CallContext) -> torch.Tensor:
            if not bool(mask.any()):
                return hidden
            selected = hidden[mask].float()  # [N, D]
            f_old = sae.encode(selected.to(sae.W_dec.dtype))[:, feature].float()
            change = self.new_value(f_old) - f_old
            out = hidden.clone()
            out[mask] = (selected + change.unsqueeze(-1) * w_dec).to(hidden.dtype)
            return out

        return edit

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source.to_dict(), self.param: self.amount}

    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.name}:{self.source.fingerprint()}:{self.amount}".encode()).hexdigest()


@register_op
class ScaleFeatureOp(_FeatureEditOp):
    """Multiply one SAE feature's activation by ``factor`` (``factor: 1`` is an exact no-op)."""

    name = "scale_feature"
    param = "factor"

    def new_value(self, f_old: torch.Tensor) -> torch.Tensor:
        return f_old * self.amount

    def is_identity(self) -> bool:
        return self.amount == 1.0


@register_op
class ClampFeatureOp(_FeatureEditOp):
    """Set one SAE feature's activation to ``value``."""

    name = "clamp_feature"
    param = "value"

    def new_value(self, f_old: torch.Tensor) -> torch.Tensor:
        return f_old.new_full(f_old.shape, self.amount)
