"""``op: conva``: gated minimal-perturbation value-vector activation (ConVA §3.2, Eq. 5-6, Appx. K).

```yaml
- layer: [6, 7, 8]            # the artifact's selected layers (``fit`` writes this file for you)
  op: conva
  artifact: conva_out          # folder written by ``fit`` (+ ``value:``), or conva_out/power.json
  value: power
  p0: 0.92                     # optional; default: the paper's Table 16 for the value
  g0: 0.06                     # optional; default: Table 16
  gate: {type: probe}          # default; or none, or {type: hf-classifier, model: ..., label: ...}
  positions: all               # default: every token position, as in the paper
```

At every listed layer (block output), for every selected position with embedding e:
e ← e + ε·v, ε = I·(logit(P_0) − wᵀe − b)/(wᵀv), I = 1 iff g(x) > g_0 and P_V(e) < P_0.
The hooks run block after block in one forward pass, so each layer sees the embeddings already
steered by the layers before it ("in a sequential manner"). Where I = 0 the hidden state is returned
untouched (bit-identical). g(x) is decided once per prompt (per row) at the first ConVA hook of a
call (the lowest listed layer, before it steers), and kept for the rest of the call (all decoding
steps of a ``generate``).
"""

from __future__ import annotations

import hashlib
import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from lm_eval_tasks.resources import resolve_path
from steering_models.conva import artifacts
from steering_models.conva.defaults import PROBE_GATE_G0, TABLE16
from steering_models.conva.gates import Gate, ProbeGate, parse_gate
from steering_models.errors import spec_error
from steering_models.model_helpers import model_identity
from steering_models.ops import SteeringOp, as_number, reject_unknown
from steering_models.sources import file_sha256

if TYPE_CHECKING:
    from steering_models.calls import CallContext, OpFn


def closed_form_eps(e: torch.Tensor, w: torch.Tensor, b: float, v: torch.Tensor, p0: float,
                    open_rows: torch.Tensor | None = None) -> torch.Tensor:
    """ε of Eq. 6 for embeddings ``e`` [..., D] (float64); 0 where P_V(e) >= P_0 or the gate is shut."""
    z = e.double() @ w.double() + b
    eps = (math.log(p0 / (1 - p0)) - z) / float(w.double() @ v.double())
    needed = torch.sigmoid(z) < p0
    if open_rows is not None:
        needed = needed & open_rows
    return torch.where(needed, eps, torch.zeros_like(eps))


class ConvaOp(SteeringOp):
    """See the module docstring. Registered as ``op: conva`` by the ``steering_models.ops`` entry-point group
    (pyproject.toml); not position-local: the gate reads the whole prompt."""

    name = "conva"

    def __init__(self, artifact: Path, value: str | None, p0: float | None, g0: float | None, gate: Gate,
                 where: str) -> None:
        self.artifact_path, self.value, self.gate, self.where = artifact, value, gate, where
        self._p0, self._g0 = p0, g0
        self._art: artifacts.Artifact | None = None
        self._model_path: str | None = None
        self.gate_counts = {"open": 0, "total": 0}  # prompts seen by the gate, and how many it let through

    # ------------------------------------------------------------------ spec
    @classmethod
    def from_dict(cls, params: dict[str, Any], where: str, base_dir: Path | None = None) -> ConvaOp:
        reject_unknown(params, {"artifact", "value", "p0", "g0", "gate"}, where, cls.name)
        art = params.get("artifact")
        if not isinstance(art, str) or not art:
            raise spec_error(where, "artifact", art, "must be the folder written by "
                             "`python -m steering_models.conva fit` (or one <value>.json in it)")
        path = resolve_path(art, base_dir)
        value = params.get("value")
        if value is not None and not isinstance(value, str):
            raise spec_error(where, "value", value, "must be a value name such as power")
        p0 = as_number(params, "p0", where, float("nan")) if "p0" in params else None
        g0 = as_number(params, "g0", where, float("nan")) if "g0" in params else None
        if p0 is not None and not 0.0 < p0 < 1.0:
            raise spec_error(where, "p0", p0, "must be a probability strictly between 0 and 1")
        op = cls(path, value, p0, g0, parse_gate(params.get("gate", {"type": "probe"}), where), where)
        meta = artifacts.load_meta(path, value)  # fail early: missing / damaged JSON
        op.value = meta["value"]
        if op.value not in TABLE16 and (p0 is None or (g0 is None and op.gate.kind != "none")):
            raise spec_error(where, "p0", p0, f"has no default for value {op.value!r} (the paper's Table 16 "
                             "covers the 10 Schwartz values)", "Add `p0:` and `g0:` to the intervention.")
        return op

    @property
    def p0(self) -> float:
        return self._p0 if self._p0 is not None else TABLE16[str(self.value)][0]

    @property
    def g0(self) -> float:
        """The gate threshold: ``g0:`` if given, else 0.5 for the probe gate (``PROBE_GATE_G0``), else
        Table 16 (unused, NaN, with ``gate: none`` for a value outside Table 16)."""
        if self._g0 is not None:
            return self._g0
        if self.gate.kind == "probe":
            return PROBE_GATE_G0
        return TABLE16.get(str(self.value), (0.0, float("nan")))[1]

    def validate(self, config: Any, layers: list[int], where: str) -> None:
        meta = artifacts.load_meta(self.artifact_path, self.value)
        identity = model_identity(config)
        artifacts.check_model(meta, identity)
        art = artifacts.load(self.artifact_path, self.value, meta)
        outside = [x for x in layers if x not in art.layers]
        if outside:
            warnings.warn(f"{where}: layer(s) {outside} were not selected by the probe fit (selected: "
                          f"{art.layers}); their probes may be inaccurate.", stacklevel=2)
        if isinstance(self.gate, ProbeGate) and not art.has_gate:
            raise spec_error(where, "gate", self.gate.to_value(),
                             f"needs the probe gate, but {meta['_json']} was fitted without one "
                             "(--gate-negatives none)", "Refit with --gate-negatives, or use gate: none.")
        if isinstance(self.gate, ProbeGate) and layers and math.isnan(float(art.tensors["gate_test_acc"][min(layers)])):
            fitted = [i for i, a in enumerate(art.tensors["gate_test_acc"].tolist()) if not math.isnan(a)]
            raise spec_error(where, "layer", layers,
                             f"starts at layer {min(layers)}, where the probe gate is read, but {meta['_json']} has a "
                             f"gate probe at layer(s) {fitted} only (fit --gate-layers lowest)",
                             "Steer from that layer, or refit with --gate-layers all.")
        self._art, self._model_path = art, identity["id"]

    def _artifact(self) -> artifacts.Artifact:
        if self._art is None:
            self._art = artifacts.load(self.artifact_path, self.value)
        return self._art

    # ------------------------------------------------------------------ run
    def bind(self, layer: int, device: Any, dtype: Any) -> OpFn | None:
        art = self._artifact()
        w = art.tensors["w"][layer].double().to(device)
        b = float(art.tensors["b"][layer])
        v = art.tensors["v"][layer].double().to(device)
        if isinstance(self.gate, ProbeGate):
            self.gate.attach(art.tensors["gate_w"], art.tensors["gate_b"])
        pooling = art.settings.get("gate_pooling", art.settings.get("pooling", "last"))  # the gate's
        key = f"conva-gate:{id(self)}"
        p0, g0 = self.p0, self.g0

        def steer(hidden: torch.Tensor, mask: torch.Tensor, ctx: CallContext) -> torch.Tensor:
            if key not in ctx.state:
                ctx.state[key] = self._gate_rows(hidden, ctx, layer, pooling, g0)
            open_rows = ctx.state[key]
            rows = None if open_rows is None else open_rows.to(hidden.device)[:, None]
            eps = closed_form_eps(hidden, w, b, v, p0, rows) * mask
            if not bool((eps != 0).any()):
                return hidden
            steered = (hidden.double() + eps.unsqueeze(-1) * v).to(hidden.dtype)
            return torch.where((eps != 0).unsqueeze(-1), steered, hidden)

        return steer

    def _gate_rows(self, hidden: torch.Tensor, ctx: CallContext, layer: int, pooling: str,
                   g0: float) -> torch.Tensor | None:
        """Whether g(x) > g_0, per row ([B] bool), or None for no gate."""
        if self.gate.kind == "none":
            return None
        if ctx.phase == "decode":
            raise RuntimeError("conva: the gate must be decided on the prompt, but the first steered "
                               "forward pass of this call is a decoding step.")
        pooled = None
        prompts = None
        if self.gate.needs_text:
            prompts = [self._tokenizer().decode(ids, skip_special_tokens=True) for ids in ctx.prompt_ids]
        else:
            reps = []
            for row, lay in enumerate(ctx.layouts):
                n = max(lay.prompt_len, 1)
                span = hidden[row, lay.offset: lay.offset + n]
                reps.append(span[-1] if pooling == "last" else span.float().mean(0))
            pooled = torch.stack(reps).float()
        g = self.gate.scores(pooled, layer, prompts)
        assert g is not None
        ctx.state[f"conva-g:{id(self)}"] = g.cpu()
        opened = (g > g0).cpu()
        self.gate_counts["open"] += int(opened.sum())
        self.gate_counts["total"] += len(opened)
        return opened

    def _tokenizer(self) -> Any:
        if not hasattr(self, "_tok"):
            from transformers import AutoTokenizer

            self._tok = AutoTokenizer.from_pretrained(self._model_path)
        return self._tok

    # ------------------------------------------------------------------ record
    def to_dict(self) -> dict[str, Any]:
        return {"artifact": str(self.artifact_path), "value": self.value, "p0": self.p0,
                "g0": self.g0, "gate": self.gate.to_value()}

    def fingerprint(self) -> str:
        meta = artifacts.load_meta(self.artifact_path, self.value)
        parts = [self.name, str(self.value), repr(self.p0), repr(self.g0), self.gate.fingerprint(),
                 file_sha256(Path(meta["_json"])), meta["tensors_sha256"]]
        return hashlib.sha256(":".join(parts).encode()).hexdigest()
