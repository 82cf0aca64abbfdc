"""Reference value graphs to compare ours with (Kang et al. §3.2, Appendix A.3 and B).

- ``valuebench_upper_graph()``: ValueBench's upper-dimension relations (Appendix B, Figure 5 purple):
  values under a common upper dimension are linked. ValueBench gives no direction, so each such
  pair is linked both ways (each is a successor of the other). With the 17 values this links
  Understanding with Breadth of Interest (Openness to Experience) and with Empathy (Agreeableness).
- ``edge_list_graph(path)``: a user's edge list: CSV/TSV with two columns (header ``from,to`` or
  none), lines ``A -> B``, or JSON ``[[A, B], ...]`` / ``{"edges": [[A, B], ...]}``. Names are matched
  to the 17 ValueBench values ignoring case, ``_`` and ``-``; an unknown name is an error.
- ``judge_graph()``: Template 5 (Appendix A.3) asked to the configured judge (``lm_eval_tasks.judge``,
  template ``causal_graph``); only when asked for, never as a side effect.
"""

from __future__ import annotations

import csv
import io
import json
import re
from itertools import combinations
from pathlib import Path

from analysis.causal import ValueGraph
from analysis.values import require_value, upper_dimensions
from lm_eval_tasks.values import VALUES


def valuebench_upper_graph(values: list[str] | None = None) -> ValueGraph:
    values = list(values or VALUES)
    ups = upper_dimensions()
    edges = []
    for a, b in combinations(values, 2):
        shared = set(ups.get(a, [])) & set(ups.get(b, []))
        if shared:
            edges += [(a, b), (b, a)]
    return ValueGraph(nodes=values, edges=sorted(edges),
                      params={"reference": "ValueBench upper dimensions (Kang et al. Appendix B)",
                              "direction": "both ways (ValueBench gives none)"})


_ARROW = re.compile(r"^\s*(.+?)\s*(?:->|→|=>)\s*(.+?)\s*$")


def parse_edge_list(text: str, where: str) -> list[tuple[str, str]]:
    """Edges from the text of an edge-list file (formats in the module docstring)."""
    stripped = text.strip()
    pairs: list[list[str]] = []
    if stripped.startswith(("[", "{")):
        data = json.loads(stripped)
        pairs = data["edges"] if isinstance(data, dict) else data
    elif any(_ARROW.match(line) for line in stripped.splitlines()):
        for line in stripped.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                m = _ARROW.match(line)
                if not m:
                    raise ValueError(f"{where}: line {line!r} is not 'CAUSE -> EFFECT'.")
                pairs.append([m[1], m[2]])
    else:
        dialect = "excel-tab" if "\t" in stripped.splitlines()[0] else "excel"
        rows = [r for r in csv.reader(io.StringIO(stripped), dialect=dialect) if r and any(c.strip() for c in r)]
        if rows and [c.strip().lower() for c in rows[0][:2]] in (["from", "to"], ["cause", "effect"], ["source", "target"]):
            rows = rows[1:]
        pairs = [r[:2] for r in rows]
    edges = []
    for pair in pairs:
        if len(pair) != 2:
            raise ValueError(f"{where}: edge {pair!r} does not have two ends; write CAUSE,EFFECT.")
        a, b = (require_value(str(x).strip().strip("'\""), where) for x in pair)
        if a != b:
            edges.append((a, b))
    return sorted(set(edges))


def edge_list_graph(path: str | Path, values: list[str] | None = None) -> ValueGraph:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"reference edge list {path} does not exist; pass a CSV (from,to), "
                                "'A -> B' lines, or JSON [[A, B], ...].")
    edges = parse_edge_list(path.read_text(), str(path))
    return ValueGraph(nodes=list(values or VALUES), edges=edges, params={"reference": str(path)})


def judge_graph(values: list[str] | None = None) -> ValueGraph:
    """Template 5 through the configured judge; raises when no judge is available or the reply did not parse."""
    from lm_eval_tasks.judge import require_judge

    judge = require_judge("the Template 5 reference graph (--reference judge)")
    values = list(values or VALUES)
    verdict = judge.judge("causal_graph", {"values": values})
    if verdict.parsed is None:
        raise ValueError(f"the judge's Template 5 reply did not parse into edges (judge {verdict.judge_id}); "
                         "see its raw reply in the judge cache, or use another judge.")
    edges = []
    for a, b in verdict.parsed:
        edges.append((require_value(a, "judge Template 5 reply"), require_value(b, "judge Template 5 reply")))
    return ValueGraph(nodes=values, edges=sorted(set(e for e in edges if e[0] != e[1])),
                      params={"reference": "judge Template 5 (Kang et al. Appendix A.3)",
                              "judge_id": verdict.judge_id, "template_version": verdict.template_version})


def load_reference(spec: str, values: list[str] | None = None) -> tuple[str, ValueGraph]:
    """``valuebench`` / ``judge`` / a file path -> (name, graph)."""
    if spec == "valuebench":
        return "valuebench_upper", valuebench_upper_graph(values)
    if spec == "judge":
        return "judge_t5", judge_graph(values)
    return Path(spec).stem, edge_list_graph(spec, values)
