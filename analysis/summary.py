"""The headline of an analysis: what the report's summary shows, ``summary.json`` holds and the console prints.

``RunSummary`` collects, from what ``analysis.report`` computed: the configs and roles analysed, the number
of edges of our PC graph, the strongest config and its per-value orientation shift (``analysis.shifts``),
and Kang et al.'s Figure 4 numbers (expected / unexpected change along our graph, 95 % bootstrap CIs) for
role and SAE steering beside the paper's, plus why any of them could not be computed.

``summary.json`` keys: ``wall_seconds`` (null unless the caller timed the job), ``configs``, ``roles``,
``rows``, ``pc_edges``, ``pc_rows``, ``strongest_config``, ``strongest_shift`` {value: shift},
``strongest_values_changed``, ``score`` (hard / soft), ``atol``, ``figure4`` = {"role": {"expected": E, "unexpected": E, "n_steered_values": E},
"sae": {...}} with E = {"estimate", "ci": [low, high], "paper": {model: number}} or null, ``skipped``
{what: reason}, ``report`` (path of report.html).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

PAPER_MODELS = ("Gemma-2B-IT", "Llama3-8B-IT")
FIGURE4_METHODS = ("role", "sae")
FIGURE4_KINDS = ("expected", "unexpected", "n_steered_values")


def _num(x: Any) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


@dataclass(frozen=True)
class Estimate:
    """One Figure-4 number: ours with its bootstrap CI, and the paper's per model."""

    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    paper: dict[str, float] = field(default_factory=dict)
    n_units: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"estimate": self.estimate, "ci": [self.ci_low, self.ci_high], "paper": self.paper,
                "n_units": self.n_units}

    def text(self, digits: int = 2) -> str:
        if self.estimate is None:
            return "n/a"
        ci = (f" [{self.ci_low:.{digits}f}, {self.ci_high:.{digits}f}]"
              if self.ci_low is not None and self.ci_high is not None else " [no CI]")
        return f"{self.estimate:.{digits}f}{ci}"


def method_key(method: str) -> str:
    """"sae[r0]", "sae[all] (train roles)" -> "sae"; "role", "role (train roles)" -> "role"."""
    return "sae" if str(method).startswith("sae") else "role"


def figure4_numbers(effects: pd.DataFrame, graph: str = "ours") -> dict[str, dict[str, Estimate]]:
    """{method: {kind: Estimate}} from ``analysis.effects.steering_effects(...).summary`` (graph ``graph``;
    the per-unit number of steered values has graph "-")."""
    out: dict[str, dict[str, Estimate]] = {}
    if effects is None or effects.empty:
        return out
    for _, r in effects.iterrows():
        if r["graph"] not in (graph, "-") or r["kind"] not in FIGURE4_KINDS:
            continue
        paper = {m: v for m in PAPER_MODELS if (v := _num(r.get(f"paper {m}"))) is not None}
        out.setdefault(method_key(r["method"]), {})[r["kind"]] = Estimate(
            _num(r["estimate"]), _num(r["ci_low"]), _num(r["ci_high"]), paper, int(r["n_units"]))
    return out


@dataclass
class RunSummary:
    """The headline numbers of one analysis (module docstring)."""

    configs: list[str]
    roles: list[str]
    rows: int
    pc_edges: int | None = None
    pc_rows: str = ""
    strongest_config: str | None = None
    strongest_shift: dict[str, float] = field(default_factory=dict)
    strongest_values_changed: float | None = None
    figure4: dict[str, dict[str, Estimate]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    wall_seconds: float | None = None
    report: str | None = None
    score: str = "hard"  # the item score orientations are means of (analysis.orientations.SCORES)
    atol: float = 1e-9  # a value counts as changed when it moves by more than this

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["figure4"] = {m: {k: (self.figure4.get(m, {})[k].to_json() if k in self.figure4.get(m, {}) else None)
                               for k in FIGURE4_KINDS} for m in FIGURE4_METHODS}
        return data

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1))
        return path

    def lines(self) -> list[str]:
        """The short console summary."""
        took = f" in {self.wall_seconds:.0f} s" if self.wall_seconds is not None else ""
        score = "soft item score agreement x (p(yes) - p(no))" if self.score == "soft" else "item score +1/-1/0"
        out = [f"{len(self.configs)} configs x {len(self.roles)} roles ({self.rows} orientation rows){took}; "
               f"orientations: mean {score}, a change = a move > {self.atol:g}"]
        if self.strongest_config:
            changed = (f", {self.strongest_values_changed:.1f} of {len(self.strongest_shift)} values changed per role"
                       if self.strongest_values_changed is not None else "")
            out.append(f"strongest config: {self.strongest_config} (orientation shift vs unsteered, mean over "
                       f"roles{changed}):")
            items = [f"{v} {s:+.2f}" for v, s in self.strongest_shift.items()]
            out += ["  " + "  ".join(items[i:i + 6]) for i in range(0, len(items), 6)]
        else:
            out.append(f"orientation shift: {self.skipped.get('shift', 'no steered config moved any value')}")
        if self.pc_edges is not None:
            out.append(f"causal value graph (PC): {self.pc_edges} edges, learned on {self.pc_rows}")
        else:
            out.append(f"causal value graph: not computed ({self.skipped.get('graph', 'no rows')})")
        out.append("Figure 4 (Kang et al.), change along our graph, 95% bootstrap CI; paper Gemma-2B-IT / Llama3-8B-IT:")
        for method in FIGURE4_METHODS:
            nums = self.figure4.get(method)
            if not nums or "expected" not in nums:
                out.append(f"  {method:5s} not computed: {self.skipped.get(method, 'no units')}")
                continue
            parts = []
            for kind in ("expected", "unexpected"):
                e = nums.get(kind, Estimate(None, None, None))
                paper = " / ".join(f"{e.paper[m]:.2f}" for m in PAPER_MODELS if m in e.paper)
                parts.append(f"{kind} {e.text()} (paper {paper or 'n/a'})")
            units = nums["expected"].n_units
            out.append(f"  {method:5s} " + "   ".join(parts) + (f"   [{units} units]" if units else ""))
        if self.report:
            out.append(f"report: {self.report}")
        return out
