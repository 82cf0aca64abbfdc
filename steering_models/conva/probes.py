"""Per-layer linear probes P_V(e) = sigmoid(wᵀe + b) (ConVA Eq. 1-4) and the layer selection of §3.2.

One scikit-learn ``LogisticRegression`` per layer on the pooled embeddings of the positive (y=1) and
negative (y=0) samples. The held-out split is made over *pairs*, so a sentence and its
context-matched counterpart are always on the same side (no context leaks into the test set).
v = w / ‖w‖. Selected layers: test accuracy > ``threshold`` (0.9), not among the last
``exclude_last`` (5) layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from tqdm.auto import tqdm

from steering_models.conva.defaults import ACC_THRESHOLD, EXCLUDE_LAST, TEST_FRACTION


@dataclass
class LayerProbes:
    """Probe parameters of every layer: ``w`` [L, D], ``b`` [L], accuracies [L]."""

    w: torch.Tensor
    b: torch.Tensor
    train_acc: torch.Tensor
    test_acc: torch.Tensor

    @property
    def v(self) -> torch.Tensor:
        return self.w / self.w.norm(dim=-1, keepdim=True)


def fit_probe(x_train: np.ndarray, y_train: np.ndarray, seed: int = 0,
              c: float = 1.0) -> LogisticRegression:
    clf = LogisticRegression(C=c, max_iter=5000, random_state=seed)
    clf.fit(x_train, y_train)
    return clf


def fit_layers(x: torch.Tensor, y: torch.Tensor, groups: np.ndarray, test_fraction: float = TEST_FRACTION,
               seed: int = 0, c: float = 1.0, desc: str = "probes", only: list[int] | None = None) -> LayerProbes:
    """Fit one probe per layer. ``x`` [N, L, D], ``y`` [N] in {0,1}; ``groups`` [N] (pair ids) are
    kept together by the train/test split. ``only``: fit these layers only; the others get w = 0, b = 0
    and NaN accuracies."""
    unique = np.unique(groups)
    g_train, g_test = train_test_split(unique, test_size=test_fraction, random_state=seed)
    train = np.isin(groups, g_train)
    test = np.isin(groups, g_test)
    yn = y.numpy()
    for name, idx in (("train", train), ("test", test)):
        if len(np.unique(yn[idx])) < 2:
            raise ValueError(f"the {name} split has one class only ({int(idx.sum())} samples); use more "
                             "pairs or another --test-fraction.")
    n_layers, d = x.shape[1], x.shape[2]
    w = torch.zeros(n_layers, d, dtype=torch.float64)
    b = torch.zeros(n_layers, dtype=torch.float64)
    tr = torch.zeros(n_layers, dtype=torch.float64)
    te = torch.zeros(n_layers, dtype=torch.float64)
    if only is not None:
        tr[:] = te[:] = float("nan")
    for layer in tqdm(range(n_layers) if only is None else sorted(set(only)), desc=desc, unit="layer"):
        xl = x[:, layer].double().numpy()
        clf = fit_probe(xl[train], yn[train], seed, c)
        w[layer] = torch.from_numpy(clf.coef_[0].astype(np.float64))
        b[layer] = float(clf.intercept_[0])
        tr[layer] = float(clf.score(xl[train], yn[train]))
        te[layer] = float(clf.score(xl[test], yn[test]))
    return LayerProbes(w.float(), b.float(), tr.float(), te.float())


def select_layers(test_acc: torch.Tensor, threshold: float = ACC_THRESHOLD,
                  exclude_last: int = EXCLUDE_LAST) -> list[int]:
    """Layers with test accuracy > threshold, excluding the last ``exclude_last`` layers."""
    n = len(test_acc)
    return [i for i in range(max(0, n - exclude_last)) if round(float(test_acc[i]), 6) > threshold]
