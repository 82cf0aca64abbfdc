"""Agreement of a judge's labels with reference labels: accuracy, Cohen's kappa (scikit-learn),
Krippendorff's alpha (the ``krippendorff`` package, nominal), the confusion table and seeded bootstrap
95 % intervals. Unscored verdicts (None) are counted, never scored: the statistics use the pairs where
both sides have a label.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

UNSCORED = "(unscored)"


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class AgreementStats:
    """Agreement of ``pred`` with ``gold`` over ``n`` items, ``n_scored`` of them judged."""

    n: int
    n_scored: int
    accuracy: float
    kappa: float
    alpha: float
    confusion: dict[str, dict[str, int]]  # gold label -> predicted label (or "(unscored)") -> count
    labels: list[str]
    accuracy_ci: Interval | None = None
    kappa_ci: Interval | None = None
    alpha_ci: Interval | None = None
    n_bootstrap: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def unscored_share(self) -> float:
        return (self.n - self.n_scored) / self.n if self.n else math.nan

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["unscored_share"] = self.unscored_share
        return out


def _nan_if_undefined(value: float) -> float:
    return math.nan if value is None or not math.isfinite(value) else float(value)


def cohen_kappa(gold: Sequence[Hashable], pred: Sequence[Hashable]) -> float:
    """Cohen's kappa of two label sequences (NaN when undefined: empty, or one label on both sides)."""
    from sklearn.metrics import cohen_kappa_score

    if not gold or len(set(gold) | set(pred)) < 2:
        return math.nan
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 0/0 when both raters are constant
        return _nan_if_undefined(cohen_kappa_score(list(gold), list(pred)))


def krippendorff_alpha(gold: Sequence[Hashable], pred: Sequence[Hashable], labels: Sequence[Hashable]) -> float:
    """Krippendorff's alpha, nominal, of two coders (NaN when fewer than two labels occur)."""
    import krippendorff
    import numpy as np

    if not gold or len(set(gold) | set(pred)) < 2:
        return math.nan
    code = {label: i for i, label in enumerate(labels)}
    data = np.array([[code[g] for g in gold], [code[p] for p in pred]], dtype=float)
    return _nan_if_undefined(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal",
                                                value_domain=list(range(len(labels)))))


def _point(gold: Sequence[Hashable], pred: Sequence[Hashable], labels: Sequence[Hashable]) -> tuple[float, float, float]:
    acc = sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold) if gold else math.nan
    return acc, cohen_kappa(gold, pred), krippendorff_alpha(gold, pred, labels)


def _interval(values: list[float]) -> Interval | None:
    import numpy as np

    kept = [v for v in values if math.isfinite(v)]
    if len(kept) < 10:
        return None
    lo, hi = np.percentile(kept, [2.5, 97.5])
    return Interval(float(lo), float(hi))


def agreement_stats(gold: Sequence[Hashable], pred: Sequence[Hashable | None],
                    labels: Sequence[Hashable] | None = None, n_bootstrap: int = 1000,
                    seed: int = 0) -> AgreementStats:
    """Agreement of ``pred`` (None = unscored) with ``gold``; bootstrap over the scored pairs."""
    import numpy as np

    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} labels and pred {len(pred)}; pass one prediction per item.")
    labels = list(labels) if labels is not None else sorted({*gold, *(p for p in pred if p is not None)}, key=str)
    pairs = [(g, p) for g, p in zip(gold, pred, strict=True) if p is not None]
    gs, ps = [g for g, _ in pairs], [p for _, p in pairs]
    acc, kappa, alpha = _point(gs, ps, labels)
    confusion = {str(g): {str(p): 0 for p in [*labels, UNSCORED]} for g in labels}
    for g, p in zip(gold, pred, strict=True):
        confusion[str(g)][UNSCORED if p is None else str(p)] += 1
    cis: list[Interval | None] = [None, None, None]
    if n_bootstrap > 0 and len(pairs) >= 2:
        rng = np.random.default_rng(seed)
        draws: list[list[float]] = [[], [], []]
        for _ in range(n_bootstrap):
            idx = rng.integers(0, len(pairs), len(pairs))
            for k, v in enumerate(_point([gs[i] for i in idx], [ps[i] for i in idx], labels)):
                draws[k].append(v)
        cis = [_interval(d) for d in draws]
    return AgreementStats(n=len(gold), n_scored=len(pairs), accuracy=acc, kappa=kappa, alpha=alpha,
                          confusion=confusion, labels=[str(x) for x in labels], accuracy_ci=cis[0],
                          kappa_ci=cis[1], alpha_ci=cis[2], n_bootstrap=n_bootstrap if pairs else 0)


def fmt(value: float, ci: Interval | None = None) -> str:
    """``0.702 [0.640, 0.760]`` (or ``n/a``)."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.3f}" + (f" [{ci.low:.3f}, {ci.high:.3f}]" if ci is not None else "")
