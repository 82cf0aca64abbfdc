"""Table 2 (Kang et al. §3.3, "Consistency within a QA"): thought/answer inconsistency before vs after steering.

The thought of each CoT sample is judged with Template 1 (judge template ``thought_inclination``,
Appendix A.1: "input the thought text in place of Answer"); the answer's label is the logged one
(A.1 rules, judge as fallback). A sample is inconsistent when both labels exist and differ. "Before"
= unsteered samples, "after" = steered samples (explicit-instruction samples excluded). Samples
without a thought (loglikelihood mode) or with an unparsed label are left out and counted.
Needs a judge: only run when asked for (``--judge``).
"""

from __future__ import annotations

import pandas as pd

from lm_eval_tasks.judge import Judge


def judge_thoughts(samples: pd.DataFrame, judge: Judge, progress: bool = True) -> pd.Series:
    """Template 1 label of each sample's thought (None where no thought or no parse)."""
    has = samples["thought"].notna() & (samples["thought"].astype(str).str.strip() != "")
    labels = pd.Series([None] * len(samples), index=samples.index, dtype=object)
    sub = samples.loc[has]
    questions = sub["question"].fillna("").astype(str) if "question" in sub else [""] * len(sub)
    items = [{"thought": t, "question": q} for t, q in zip(sub["thought"].astype(str), questions, strict=True)]
    if items:
        verdicts = judge.judge_many("thought_inclination", items, progress=progress)
        labels.loc[has] = [v.parsed for v in verdicts]
    return labels


def inconsistency_table(samples: pd.DataFrame, thought_labels: pd.Series) -> pd.DataFrame:
    df = samples.assign(thought_label=thought_labels)
    df = df[~df["steer_kind"].astype(str).str.startswith("explicit")]
    rows = []
    for when, mask in (("before", df["config"].fillna("") == ""), ("after", df["config"].fillna("") != "")):
        sub = df[mask]
        both = sub[sub["thought_label"].notna() & sub["label"].notna()]
        rate = float((both["thought_label"] != both["label"]).mean()) if len(both) else float("nan")
        rows.append({"when": when, "inconsistency": rate, "n_compared": len(both), "n_samples": len(sub)})
    return pd.DataFrame(rows)


def with_paper(table: pd.DataFrame) -> pd.DataFrame:
    """Table 2's numbers (Kang et al. §3.3) beside ours."""
    from analysis.metrics import PAPER_NUMBERS

    out = table.copy()
    for model in ("Gemma-2B-IT", "Llama3-8B-IT"):
        out[f"paper {model}"] = [PAPER_NUMBERS[(model, "sae", f"inconsistency_{w}", "-")] for w in out["when"]]
    return out
