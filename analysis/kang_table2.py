"""Per-value expected / unexpected change in the layout of Kang et al.'s released ``table2_<model>.csv``.

Index ``mean_scorechange__{prompt,sae}_{ours,refs}_{expected,unexpected}`` (prompt = role steering,
ours = our PC graph, refs = the first reference graph), one column per value, NaN where undefined
(no unit changes the value, or its successor / non-successor set is empty). The row means (NaN left
out) are the Figure 4 numbers; ``figure4`` sets them beside the paper's (``metrics.PAPER_NUMBERS``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.metrics import PAPER_NUMBERS

METHODS = {"role": "prompt", "sae": "sae"}
ROW = "mean_scorechange__{method}_{graph}_{kind}"


def table2(per_value: pd.DataFrame, ours: str = "ours", refs: str | None = None,
           values: list[str] | None = None) -> pd.DataFrame:
    """``per_value``: the rows of ``steering_effects(...).per_value`` (method, graph, value, expected, unexpected)."""
    values = values or list(dict.fromkeys(per_value["value"]))
    rows = {}
    for method, label in METHODS.items():
        for gkey, gname in (("ours", ours), ("refs", refs)):
            sub = per_value[(per_value["method"].astype(str).str.split("[").str[0] == method)
                            & (per_value["graph"] == gname)] if gname is not None else per_value.iloc[0:0]
            for kind in ("expected", "unexpected"):
                got = dict(zip(sub["value"], sub[kind], strict=True))
                rows[ROW.format(method=label, graph=gkey, kind=kind)] = [got.get(v, np.nan) for v in values]
    return pd.DataFrame.from_dict(rows, orient="index", columns=values)


def figure4(table: pd.DataFrame) -> pd.DataFrame:
    """Row means of a table2 (the Figure 4 numbers) beside the paper's §3.2.1 numbers for both models."""
    out = []
    for name, row in table.iterrows():
        _, rest = str(name).split("__", 1)
        label, graph, kind = rest.split("_")
        method = "role" if label == "prompt" else "sae"
        paper_graph = "ours" if graph == "ours" else "reference"
        mean = float(np.nanmean(row.to_numpy(float))) if np.isfinite(row.to_numpy(float)).any() else np.nan
        out.append({"row": name, "ours (mean over values)": mean, "n_values": int(np.isfinite(row.to_numpy(float)).sum()),
                    "paper Gemma-2B-IT": PAPER_NUMBERS.get(("Gemma-2B-IT", method, kind, paper_graph), np.nan),
                    "paper Llama3-8B-IT": PAPER_NUMBERS.get(("Llama3-8B-IT", method, kind, paper_graph), np.nan)})
    return pd.DataFrame(out)
