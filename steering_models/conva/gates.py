"""The gate g(x) of ConVA (§3.2): is the input x value-related? Steering happens only if g(x) > g_0.

* ``gate: none``: no gate, I = 1 iff P_V(e) < P_0 (the paper's "ConVA w.o. gate" ablation).
* ``gate: {type: probe}`` (default; offline, nothing to download): a logistic classifier fitted by
  ``fit`` on the value's own sentences (positive and negative: both are about the value) against
  value-unrelated text (MMLU questions from subjects other than the four ``mmlu_conva4`` ones), one
  per layer, on the same pooled residual embeddings as the value probe. At run time it reads the
  prompt's pooled representation at the lowest layer the intervention steers, before any ConVA
  change there; g(x) is its probability. Its held-out accuracy per layer is in the artifact
  (``gate_test_acc``) and printed by ``fit``. With ``fit --gate-format chat`` it is trained on the texts
  as the user turn of the chat template, the form prompts take under ``--apply_chat_template``;
  ``python -m steering_models.conva gate-check`` measures it on the real task prompts.
* ``gate: {type: hf-classifier, model: NAME_OR_DIR, label: LABEL}``: a transformers text classifier
  applied to the decoded prompt, e.g. the DeBERTa human-value detector the paper uses (Schroter et
  al., 2023), for users with a model hub. g(x) is the score of ``label`` (default: the highest score
  over the labels). Loaded lazily, on the first steered call.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from steering_models.errors import spec_error
from steering_models.ops import reject_unknown

GATE_TYPES = ("none", "probe", "hf-classifier")


class Gate:
    """No gate (``gate: none``): the base of the gates; ``scores`` returns None = always open."""

    kind = "none"
    needs_text = False  # True: scores() reads the decoded prompt instead of its embedding

    def to_value(self) -> Any:
        return "none"

    def fingerprint(self) -> str:
        return self.kind

    def scores(self, pooled: torch.Tensor | None, layer: int, prompts: list[str] | None) -> torch.Tensor | None:
        """g(x) per row ([B]); None = no gate (always open)."""
        return None


class ProbeGate(Gate):
    kind = "probe"

    def __init__(self) -> None:
        self.w: torch.Tensor | None = None  # [L, D]
        self.b: torch.Tensor | None = None  # [L]

    def to_value(self) -> Any:
        return {"type": "probe"}

    def attach(self, w: torch.Tensor, b: torch.Tensor) -> None:
        self.w, self.b = w.double(), b.double()

    def scores(self, pooled: torch.Tensor | None, layer: int, prompts: list[str] | None) -> torch.Tensor:
        assert self.w is not None and self.b is not None and pooled is not None
        w = self.w[layer].to(pooled.device)
        return torch.sigmoid(pooled.double() @ w + self.b[layer].to(pooled.device))


class HFClassifierGate(Gate):
    kind = "hf-classifier"
    needs_text = True

    def __init__(self, model: str, label: str | None) -> None:
        self.model, self.label = model, label

    def to_value(self) -> Any:
        return {"type": "hf-classifier", "model": self.model, **({"label": self.label} if self.label else {})}

    def fingerprint(self) -> str:
        return f"hf-classifier:{self.model}:{self.label}"

    def scores(self, pooled: torch.Tensor | None, layer: int, prompts: list[str] | None) -> torch.Tensor:
        assert prompts is not None
        clf = _pipeline(self.model)
        out = []
        for result in clf(prompts, truncation=True):
            by_label = {r["label"]: float(r["score"]) for r in result}
            if self.label is not None and self.label not in by_label:
                raise ValueError(f"gate classifier {self.model!r} has no label {self.label!r}: its labels are "
                                 f"{', '.join(sorted(by_label))}. Fix `gate.label` in the steering file.")
            out.append(by_label[self.label] if self.label is not None else max(by_label.values()))
        return torch.tensor(out, dtype=torch.float64)


@lru_cache(maxsize=2)
def _pipeline(model: str) -> Any:
    from transformers import pipeline

    return pipeline("text-classification", model=model, top_k=None, function_to_apply="sigmoid")


def parse_gate(value: Any, where: str) -> Gate:
    if value is None or value == "none" or value == {"type": "none"}:
        return Gate()
    if value == "probe":
        value = {"type": "probe"}
    if not isinstance(value, dict) or value.get("type") not in GATE_TYPES:
        raise spec_error(where, "gate", value, "is not a ConVA gate: expected none, {type: probe} or "
                         "{type: hf-classifier, model: NAME_OR_DIR, label: LABEL}")
    kind = value["type"]
    if kind == "none":
        reject_unknown(value, {"type"}, where, "conva gate")
        return Gate()
    if kind == "probe":
        reject_unknown(value, {"type"}, where, "conva gate")
        return ProbeGate()
    reject_unknown(value, {"type", "model", "label"}, where, "conva gate")
    model = value.get("model")
    if not isinstance(model, str) or not model.strip():
        raise spec_error(where, "gate.model", model, "must name a text-classification model (hub id or folder)")
    p = Path(model).expanduser()
    if (p.is_absolute() or model.startswith(".")) and not (p / "config.json").is_file():
        raise spec_error(where, "gate.model", model, f"is not a model folder (no config.json in {p})")
    label = value.get("label")
    if label is not None and not isinstance(label, str):
        raise spec_error(where, "gate.label", label, "must be a label name of the classifier (a string)")
    return HFClassifierGate(model, label)

