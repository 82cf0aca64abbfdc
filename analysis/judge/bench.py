"""Measure a judge on a labelled set (``python -m analysis judge-bench``); optionally fit its profile first.

``run_bench`` judges a stratified, seeded sample of the set's ``eval`` split with the judge as configured
(its profile: prompt, scoring, biases) and writes ``judge_bench.json`` / ``judge_bench.md``: accuracy,
Cohen's kappa, Krippendorff's alpha with bootstrap 95 % intervals, the confusion table, the unscored share
and verdicts per second (calls / seconds spent waiting for them, summed over resumed runs), plus the
yes/no-only subset and, for Template 1, "A.1 rules first, the judge for the rest". Replies go through the
judge cache, so a killed run resumes without repeating a call.

With ``fit=True`` it first scores the set's ``fit`` split (disjoint questions) by label log-probabilities
with every prompt variant of the template, fits per-class biases maximising kappa there
(``lm_eval_tasks.judge.scoring.fit_biases``), keeps the variant with the best fitted kappa, and saves it as the
judge's profile (``lm_eval_tasks.judge.profiles``) before measuring on ``eval``.

Every result is also filed under ``$VALUE_STEERING_CACHE/judge-bench/`` so that tables can show the
newest measured agreement of the judge that judged them (``analysis.judge.measured``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from analysis.judge.agreement_stats import Interval, agreement_stats, fmt
from analysis.judge.bench_sets import BenchSet, LabelledItem, label_counts, sample
from lm_eval_tasks.judge.parsers import LABEL_WORDS
from lm_eval_tasks.judge.profiles import TemplateProfile, save_profile
from lm_eval_tasks.judge.scoring import LabelScores, fit_biases
from lm_eval_tasks.judge.templates import VARIANTS

# templates that share a fitted entry: the thought is judged with Template 1's task (Kang Table 2)
SIBLINGS = {"answer_judgment": ("thought_inclination",)}


def _fields(items: Sequence[LabelledItem]) -> list[dict[str, Any]]:
    return [dict(it.fields) for it in items]


def fit_profile(judge: Any, bench: BenchSet, items: Sequence[LabelledItem], seed: int,
                prompts: Sequence[str] | None = None) -> tuple[TemplateProfile, list[dict[str, Any]]]:
    """The best (prompt, biases) for ``bench.template`` on ``items`` by log-probability scoring."""
    variants = VARIANTS[bench.template]
    names = list(prompts or variants)
    bad = [p for p in names if p not in variants]
    if bad:
        raise ValueError(f"--prompts {bad} are not prompts of template {bench.template!r}; pass some of "
                         f"{sorted(variants)}.")
    choices = LABEL_WORDS[variants["paper"].parser]
    gold = [it.gold for it in items]
    tried, best = [], None
    for name in names:
        probe = TemplateProfile(prompt=name, prompt_version=variants[name].version, scoring="logprob")
        verdicts = judge.judge_many(bench.template, _fields(items), profile=probe)
        scores = [LabelScores.from_raw(v.raw) for v in verdicts]
        rows = [s.logprobs for s in scores if s is not None]
        kept = [g for g, s in zip(gold, scores, strict=True) if s is not None]
        biases, kappa = fit_biases(rows, kept, choices)
        unbiased = fit_biases(rows, kept, choices, grid=[0.0])[1]
        tried.append({"prompt": name, "prompt_version": variants[name].version, "kappa_fit": kappa,
                      "kappa_no_bias": unbiased, "biases": biases, "n": len(rows)})
        if best is None or kappa > best[1]:
            best = (probe, kappa, biases)
    assert best is not None
    probe, kappa, biases = best
    fitted = {"set": bench.name, "split": "fit", "n": len(items), "seed": seed, "kappa_fit": round(kappa, 4),
              "date": time.strftime("%Y-%m-%dT%H:%M:%S")}
    return replace(probe, biases=biases, fitted=fitted), tried


def _timing(out: Path, calls: int, seconds: float) -> tuple[int, float]:
    path = out / "timing.json"
    prev = json.loads(path.read_text()) if path.is_file() else {"calls": 0, "seconds": 0.0}
    total = {"calls": prev["calls"] + calls, "seconds": prev["seconds"] + seconds}
    path.write_text(json.dumps(total) + "\n")
    return total["calls"], total["seconds"]


def run_bench(judge: Any, bench: BenchSet, n: int | None, seed: int, out: Path, fit: bool = False,
              fit_n: int | None = None, prompts: Sequence[str] | None = None,
              n_bootstrap: int = 1000) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    items = sample(bench, n, seed, "eval")
    if not items:
        raise ValueError(f"set {bench.name} ({bench.source}) has no items in its eval split; pass a larger set.")
    result: dict[str, Any] = {"set": bench.name, "source": bench.source, "seed": seed, "template": bench.template}
    if fit:
        if not hasattr(judge, "profile"):
            raise ValueError("--fit fits one judge's profile; a panel has none (unset VALUE_JUDGE_PANEL).")
        fit_items = sample(bench, fit_n or n, seed, "fit")
        prof, tried = fit_profile(judge, bench, fit_items, seed, prompts)
        entries = {bench.template: prof}
        for sib in SIBLINGS.get(bench.template, ()):
            if prof.prompt in VARIANTS.get(sib, {}):
                entries[sib] = replace(prof, prompt_version=VARIANTS[sib][prof.prompt].version)
        path = save_profile(judge.judge_id, entries)
        save_profile(judge.judge_id, entries, out / "judge_profile.json")
        judge._profile = None  # read the new profile
        result["fit"] = {"profile": str(path), "tried": tried, "n": len(fit_items),
                         "label_counts": label_counts(fit_items, bench.labels), **asdict(prof)}
    calls0, secs0 = judge.calls, judge.call_seconds
    verdicts = judge.judge_many(bench.template, _fields(items), progress=True)
    calls, secs = _timing(out, judge.calls - calls0, judge.call_seconds - secs0)
    gold = [it.gold for it in items]
    pred = [v.parsed for v in verdicts]
    stats = agreement_stats(gold, pred, bench.labels, n_bootstrap=n_bootstrap, seed=seed)
    prof = judge.profile(bench.template) if hasattr(judge, "profile") else None
    result.update({
        "judge_id": judge.judge_id, "n": stats.n, "n_scored": stats.n_scored, "accuracy": stats.accuracy,
        "kappa": stats.kappa, "alpha": stats.alpha, "verdicts_per_second": calls / secs if secs > 0 else None,
        "confusion": stats.confusion, "unscored_share": stats.unscored_share, "labels": stats.labels,
        "accuracy_ci": stats.accuracy_ci and asdict(stats.accuracy_ci),
        "kappa_ci": stats.kappa_ci and asdict(stats.kappa_ci), "alpha_ci": stats.alpha_ci and asdict(stats.alpha_ci),
        "n_bootstrap": stats.n_bootstrap, "label_counts": label_counts(items, bench.labels),
        "calls": calls, "call_seconds": secs,
        "prompt": verdicts[0].prompt, "prompt_version": verdicts[0].template_version,
        "scoring": verdicts[0].scoring, "biases": prof.biases if prof else {},
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
    })
    if bench.labels == ("yes", "no", "unsure"):
        sub = [i for i, g in enumerate(gold) if g != "unsure"]
        result["yes_no_subset"] = agreement_stats([gold[i] for i in sub], [pred[i] for i in sub], bench.labels,
                                                  n_bootstrap=n_bootstrap, seed=seed).as_dict()
        result["rules_then_judge"] = _rules_first(items, pred, bench, n_bootstrap, seed)
    with open(out / "verdicts.jsonl", "w", encoding="utf-8") as f:
        for it, v in zip(items, verdicts, strict=True):
            f.write(json.dumps({"item_id": it.item_id, "gold": it.gold, "parsed": v.parsed, "raw": v.raw,
                                "cached": v.cached, **it.meta}, ensure_ascii=False) + "\n")
    (out / "judge_bench.json").write_text(json.dumps(result, indent=2, allow_nan=True) + "\n")
    (out / "judge_bench.md").write_text(markdown(result))
    from analysis.judge.measured import file_result

    file_result(result)
    return result


def _rules_first(items: Sequence[LabelledItem], pred: Sequence[Any], bench: BenchSet, n_bootstrap: int,
                 seed: int) -> dict[str, Any]:
    from lm_eval_tasks.judging import rule_label

    rules = [rule_label(it.fields["answer"]) for it in items]
    combined = [r if r is not None else p for r, p in zip(rules, pred, strict=True)]
    decided = [i for i, r in enumerate(rules) if r is not None]
    s = agreement_stats([it.gold for it in items], combined, bench.labels, n_bootstrap=n_bootstrap, seed=seed)
    return {**s.as_dict(), "rules_decided": len(decided),
            "rules_accuracy": (sum(rules[i] == items[i].gold for i in decided) / len(decided)) if decided else math.nan}


def _row(name: str, d: dict[str, Any]) -> str:
    def ci(key: str) -> Interval | None:
        c = d.get(key)
        return Interval(**c) if c else None

    return (f"| {name} | {d['n']} | {d['n_scored']} | {fmt(d['accuracy'], ci('accuracy_ci'))} | "
            f"{fmt(d['kappa'], ci('kappa_ci'))} | {fmt(d['alpha'], ci('alpha_ci'))} |")


def markdown(r: dict[str, Any]) -> str:
    vps = r.get("verdicts_per_second")
    lines = [f"# judge-bench: {r['judge_id']} on {r['set']}", "",
             f"Prompt `{r['prompt']}` ({r['prompt_version']}), scoring `{r['scoring']}`"
             + (f", biases {r['biases']}" if r.get("biases") else "") + f"; seed {r['seed']}; "
             f"gold labels {r['label_counts']}; {'n/a' if vps is None else f'{vps:.2f}'} verdicts/s.", "",
             "| items | n | scored | accuracy [95% CI] | Cohen's kappa [95% CI] | Krippendorff's alpha [95% CI] |",
             "|---|---|---|---|---|---|", _row("all", r)]
    if "yes_no_subset" in r:
        lines.append(_row("gold yes/no only", r["yes_no_subset"]))
    if "rules_then_judge" in r:
        rt = r["rules_then_judge"]
        lines.append(_row(f"A.1 rules first ({rt['rules_decided']} decided), judge for the rest", rt))
    labels = list(r["labels"]) + ["(unscored)"]
    lines += ["", "Confusion (rows: gold, columns: judge):", "", "| gold \\ judge | " + " | ".join(labels) + " |",
              "|---" * (len(labels) + 1) + "|"]
    for g, row in r["confusion"].items():
        lines.append(f"| {g} | " + " | ".join(str(row.get(lab, 0)) for lab in labels) + " |")
    if "fit" in r:
        lines += ["", f"Fitted on the fit split ({r['fit']['n']} items, {r['fit']['label_counts']}); profile: "
                  f"{r['fit']['profile']}", "", "| prompt | kappa, no bias | kappa, fitted biases | biases |",
                  "|---|---|---|---|"]
        for t in r["fit"]["tried"]:
            lines.append(f"| {t['prompt']} | {fmt(t['kappa_no_bias'])} | {fmt(t['kappa_fit'])} | {t['biases']} |")
    return "\n".join(lines) + "\n"
