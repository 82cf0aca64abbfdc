"""Shared helpers of the ConVA tests: hand-made artifacts for the tiny test models."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig

from steering_models.conva import artifacts
from steering_models.model_helpers import model_identity


def make_artifact(model_dir: Path, out: Path, value: str = "power", layers: list[int] | None = None,
                  b: float = 0.0, gate_b: float = 50.0, seed: int = 7) -> Path:
    """An artifact for the model in ``model_dir`` with random unit w per layer, bias ``b``, and a
    probe gate that is always open (gate_b=+50) or always shut (gate_b=-50)."""
    config = AutoConfig.from_pretrained(str(model_dir))
    n, d = config.num_hidden_layers, config.hidden_size
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(n, d, generator=gen)
    w = 0.5 * w / w.norm(dim=-1, keepdim=True)  # ‖w‖ = 0.5, so v != w
    tensors = {
        "w": w, "b": torch.full((n,), b), "v": w / w.norm(dim=-1, keepdim=True),
        "train_acc": torch.ones(n), "test_acc": torch.ones(n), "caa": torch.zeros(n, d),
        "gate_w": torch.zeros(n, d), "gate_b": torch.full((n,), gate_b), "gate_test_acc": torch.ones(n),
    }
    art = artifacts.Artifact(value, layers if layers is not None else list(range(n)),
                             model_identity(config), "synthetic", tensors, {"pooling": "last"})
    return artifacts.save(art, out)
