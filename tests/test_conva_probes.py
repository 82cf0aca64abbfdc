"""ConVA probes on synthetic embeddings: the probe finds a planted direction; layer selection; CAA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from steering_models.conva.caa import mean_difference
from steering_models.conva.probes import fit_layers, select_layers


def synthetic(n_pairs: int = 300, n_layers: int = 3, d: int = 16, seed: int = 0):
    """Layers 0 and 2: positives are shifted by 4·u (u a known unit vector); layer 1: no signal."""
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(d, generator=gen)
    u = u / u.norm()
    x = torch.randn(2 * n_pairs, n_layers, d, generator=gen)
    y = torch.cat([torch.ones(n_pairs), torch.zeros(n_pairs)])
    for layer in (0, 2):
        x[:n_pairs, layer] += 4.0 * u
    groups = np.concatenate([np.arange(n_pairs), np.arange(n_pairs)])
    return x, y, groups, u


def test_probe_finds_the_planted_direction():
    x, y, groups, u = synthetic()
    probes = fit_layers(x, y, groups, test_fraction=0.3, seed=0)
    for layer in (0, 2):
        assert float(probes.v[layer] @ u) > 0.9
        assert float(probes.test_acc[layer]) > 0.9
    assert float(probes.test_acc[1]) < 0.75  # noise only
    assert torch.allclose(probes.v.norm(dim=-1), torch.ones(3), atol=1e-6)


def test_select_layers_threshold_and_last_five():
    acc = torch.tensor([0.5, 0.95, 0.91, 0.9, 0.99, 0.99, 0.99, 0.99, 0.99, 0.99])
    # > 0.9 strictly, and layers 5-9 (the last five) never
    assert select_layers(acc) == [1, 2, 4]
    assert select_layers(acc, threshold=0.8, exclude_last=0) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert select_layers(acc, threshold=0.99, exclude_last=5) == []


def test_caa_is_the_mean_difference():
    pos = torch.tensor([[[1.0, 2.0]], [[3.0, 4.0]]])  # 2 samples, 1 layer, d=2
    neg = torch.tensor([[[0.0, 1.0]], [[0.0, -1.0]], [[3.0, 0.0]]])
    # means: pos (2, 3), neg (1, 0) -> (1, 3)
    assert torch.equal(mean_difference(pos, neg), torch.tensor([[1.0, 3.0]]))


def test_one_class_split_is_refused():
    x = torch.randn(4, 1, 3)
    y = torch.tensor([1.0, 1.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="one class only"):
        fit_layers(x, y, np.arange(4), test_fraction=0.25, seed=0)
