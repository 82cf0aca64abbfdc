"""CAA baseline (Rimsky et al., 2024; ConVA §4.1): the mean difference of positive − negative
residual embeddings, per layer, built from the same pairs and pooling as the ConVA probes.

``fit`` writes ``caa_<value>.safetensors`` (tensors ``layer_<l>``, shape [d_model]) and a steering
file ``steer_caa_<value>.yaml`` that adds it with a fixed coefficient through the built-in
``op: add`` (``source: {vector: caa_<value>.safetensors, key: layer_<l>}``, ``strength:``).
"""

from __future__ import annotations

from pathlib import Path

import torch


def mean_difference(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """[L, D]: mean over samples of ``pos`` [N, L, D] minus that of ``neg`` [M, L, D]."""
    return pos.double().mean(0).float() - neg.double().mean(0).float()


def save_vectors(diff: torch.Tensor, path: Path, value: str) -> Path:
    from safetensors.torch import save_file

    tensors = {f"layer_{i}": diff[i].contiguous().clone() for i in range(diff.shape[0])}
    save_file(tensors, str(path), metadata={"kind": "caa", "value": value})
    return path
