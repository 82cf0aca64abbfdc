"""Agreement of two judges on the same samples: Cohen's kappa (sklearn), Krippendorff's alpha (the
``krippendorff`` package, nominal) and a confusion table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analysis.judge.agreement_stats import UNSCORED, cohen_kappa, krippendorff_alpha
from analysis.judge.report import read_records


def _label(parsed: Any) -> str:
    if parsed is None:
        return UNSCORED
    if isinstance(parsed, list):  # a causal graph: compare as a sorted edge set
        return repr(sorted(tuple(e) for e in parsed))
    return str(parsed)


def agreement(path_a: Path, path_b: Path) -> dict[str, Any]:
    import math

    import pandas as pd

    recs_a, recs_b = read_records(path_a), read_records(path_b)
    key = lambda r: (r["task"], int(r["doc_id"]), r["template"])  # noqa: E731
    a = {key(r): r for r in recs_a}
    b = {key(r): r for r in recs_b}
    shared = sorted(set(a) & set(b))
    if not shared:
        raise ValueError(f"{path_a} and {path_b} share no (task, doc_id, template); pass two judged "
                         "outputs of the same samples.")
    out: dict[str, Any] = {
        "judge_a": sorted({r.get("judge_id", "?") for r in recs_a}),
        "judge_b": sorted({r.get("judge_id", "?") for r in recs_b}),
        "templates": {},
    }
    for template in sorted({k[2] for k in shared}):
        keys = [k for k in shared if k[2] == template]
        la = [_label(a[k]["parsed"]) for k in keys]
        lb = [_label(b[k]["parsed"]) for k in keys]
        both = [(x, y) for x, y in zip(la, lb, strict=True) if UNSCORED not in (x, y)]
        kappa = alpha = None
        if both:
            xs, ys = zip(*both, strict=True)
            k, al = cohen_kappa(xs, ys), krippendorff_alpha(xs, ys, sorted(set(xs) | set(ys)))
            kappa = None if math.isnan(k) else k
            alpha = None if math.isnan(al) else al
        table = pd.crosstab(pd.Series(la, name="A"), pd.Series(lb, name="B"), dropna=False)
        out["templates"][template] = {
            "n_paired": len(keys),
            "n_both_scored": len(both),
            "n_unscored_a": la.count(UNSCORED),
            "n_unscored_b": lb.count(UNSCORED),
            "raw_agreement": (sum(x == y for x, y in both) / len(both)) if both else math.nan,
            "kappa": kappa,
            "alpha": alpha,
            "confusion": {ra: {cb: int(table.loc[ra, cb]) for cb in table.columns} for ra in table.index},
            "table": table.to_string(),
        }
    return out
