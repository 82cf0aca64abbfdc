"""The measured agreement of a judge, shown next to every number it judged.

``python -m analysis judge-bench`` files each result as
``$VALUE_STEERING_CACHE/judge-bench/<judge id>/<set>-<date>.json``; the package ships the results of the
measurements in bench/RESULTS.md under ``analysis/judge/data/judge_bench/``. ``measured_agreement(judge_id,
template)`` is the newest result of that judge on the set that measures ``template`` (Template 1 ->
``valuebench-t1``, CSR -> ``conva-csr``, FR -> ``conva-fr``), and ``describe`` writes it in one cell:
``kappa 0.70 [0.63, 0.76] vs GPT-4, valuebench-t1, n=300`` or ``not measured``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from lm_eval_tasks.resources import cache_root

SHIPPED = Path(__file__).resolve().parent / "data" / "judge_bench"
SET_OF_TEMPLATE = {"answer_judgment": "valuebench-t1", "thought_inclination": "valuebench-t1", "csr": "conva-csr",
                   "fluency": "conva-fr"}
REFERENCE = {"valuebench-t1": "GPT-4", "conva-csr": "a reader", "conva-fr": "replies and their shuffled words"}


def _folder(judge_id: str) -> str:
    from lm_eval_tasks.judge.profiles import safe_name

    return safe_name(judge_id)


def file_result(result: dict[str, Any]) -> Path:
    folder = cache_root() / "judge-bench" / _folder(result["judge_id"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{result['set']}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2, allow_nan=True) + "\n")
    return path


def _results(judge_id: str) -> list[dict[str, Any]]:
    out = []
    for root in (SHIPPED, cache_root() / "judge-bench"):
        for path in sorted((root / _folder(judge_id)).glob("*.json")):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if data.get("judge_id") == judge_id:
                out.append(data)
    return out


def measured_agreement(judge_id: str, template: str) -> dict[str, Any] | None:
    """The newest judge-bench result of ``judge_id`` on the set measuring ``template``, or None."""
    wanted = SET_OF_TEMPLATE.get(template)
    found = [r for r in _results(judge_id) if r.get("set") == wanted]
    return max(found, key=lambda r: r.get("date", "")) if found else None


def describe(judge_id: str | None, template: str) -> str:
    """One cell: the judge's newest measured agreement for ``template``, or "not measured"."""
    from analysis.judge.agreement_stats import Interval, fmt

    if not judge_id or judge_id == "rules":
        return "not judged" if not judge_id else "A.1 rules"
    r = measured_agreement(judge_id, template)
    if r is None:
        return "not measured"
    ci = Interval(**r["kappa_ci"]) if r.get("kappa_ci") else None
    return f"kappa {fmt(r['kappa'], ci)} vs {REFERENCE.get(r['set'], 'gold')}, {r['set']}, n={r['n']}"
