"""Scoring a judge prompt by the next-token log-probabilities of its label words, plus per-class biases.

Instead of generating a reply and parsing it, a local judge reads the distribution of the first reply
token (the prompt sent through the chat template, as when generating): a label's log-probability is
the log of the summed probability of the first tokens that start its word ("Yes", " Yes", "yes",
" yes"; a first token two labels share is not counted for either). The verdict is the label with the highest
log-probability + bias (biases are fitted per judge and prompt by ``judge-bench --fit`` and stored in
the judge's profile, ``lm_eval_tasks.judge.profiles``; 0 for every label when none is fitted). With biases
0 and one label token dominating, the verdict is the label the judge would have generated.

What is cached (the judge's raw reply) is the label log-probabilities (``LabelScores`` as JSON), not the
decision, so a refitted bias applies to cached replies.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

RAW_TAG = "label-logprobs"


@dataclass(frozen=True)
class LabelScores:
    """Log-probabilities of each label's first tokens (``logprobs``: label key -> log p) and of the single
    most likely next token (``top``)."""

    logprobs: dict[str, float]
    top: float

    def to_raw(self) -> str:
        return json.dumps({RAW_TAG: self.logprobs, "top": self.top}, sort_keys=True)

    @classmethod
    def from_raw(cls, raw: str) -> LabelScores | None:
        try:
            data = json.loads(raw)
            scores = {str(k): float(v) for k, v in data[RAW_TAG].items()}
            return cls(scores, float(data["top"]))
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


def label_key(label: Any) -> str:
    """How a label is written in ``LabelScores`` and in profiles: "yes", "True", ..."""
    return str(label)


def label_token_ids(encode: Callable[[str], Sequence[int]], choices: Sequence[tuple[Any, str]]) -> dict[str, list[int]]:
    """label key -> the distinct first token ids of its word's spellings. A first token two labels share
    (a tokenizer that splits off the leading space) is dropped from both; a label left with none is an error."""
    found: dict[str, list[int]] = {}
    for label, word in choices:
        ids: list[int] = []
        for spelling in dict.fromkeys((word, " " + word, word.lower(), " " + word.lower())):
            toks = list(encode(spelling))
            if toks and int(toks[0]) not in ids:
                ids.append(int(toks[0]))
        found[label_key(label)] = ids
    owners: dict[int, int] = {}
    for ids in found.values():
        for tok in ids:
            owners[tok] = owners.get(tok, 0) + 1
    out = {key: [t for t in ids if owners[t] == 1] for key, ids in found.items()}
    empty = [key for key, ids in out.items() if not ids]
    if empty:
        raise ValueError(f"the judge's tokenizer starts the label words of {empty} only with tokens other labels "
                         "start with too; log-probability scoring cannot tell them apart, so set "
                         "VALUE_JUDGE_SCORING=generate.")
    return out


def scores_from_logprobs(logprobs: Sequence[float], token_ids: Mapping[str, Sequence[int]]) -> LabelScores:
    """LabelScores from a full next-token log-probability vector (any sequence supporting indexing)."""
    def lse(ids: Sequence[int]) -> float:
        vals = [float(logprobs[i]) for i in ids]
        m = max(vals)
        return m + math.log(sum(math.exp(v - m) for v in vals)) if math.isfinite(m) else m

    top = float(max(logprobs))
    return LabelScores({k: lse(ids) for k, ids in token_ids.items()}, top)


def decide(scores: LabelScores, choices: Sequence[tuple[Any, str]], biases: Mapping[str, float] | None = None) -> Any:
    """The label with the highest log-probability + bias (None if the scores lack a label)."""
    biases = biases or {}
    best, best_val = None, -math.inf
    for label, _ in choices:
        key = label_key(label)
        if key not in scores.logprobs:
            return None
        val = scores.logprobs[key] + float(biases.get(key, 0.0))
        if val > best_val:
            best, best_val = label, val
    return best


def fit_biases(rows: Sequence[Mapping[str, float]], gold: Sequence[Any], choices: Sequence[tuple[Any, str]],
               grid: Sequence[float] | None = None) -> tuple[dict[str, float], float]:
    """Per-label biases (relative to "no"/False, whose bias is 0) maximising Cohen's kappa of the biased argmax verdicts
    against ``gold`` on these rows (a grid search, ties broken towards small biases). (biases, kappa)."""
    import itertools

    import numpy as np

    keys = [label_key(lab) for lab, _ in choices]
    grid = np.round(np.arange(-6.0, 6.0001, 0.1), 4) if grid is None else np.asarray(grid, dtype=float)
    x = np.array([[r[k] for k in keys] for r in rows], dtype=float)  # [N, L]
    g = np.array([keys.index(label_key(v)) for v in gold])
    ref = next((i for i, k in enumerate(keys) if k in ("no", "False")), 0)
    combos = np.array([(*c[:ref], 0.0, *c[ref:]) for c in itertools.product(grid, repeat=len(keys) - 1)])  # [C, L]
    best_kappa, best = -math.inf, combos[0]
    for chunk in np.array_split(combos, max(1, len(combos) // 4096)):
        pred = np.argmax(x[None, :, :] + chunk[:, None, :], axis=2)  # [C, N]
        p_o = (pred == g[None, :]).mean(axis=1)
        p_e = sum((pred == lab).mean(axis=1) * (g == lab).mean() for lab in range(len(keys)))
        with np.errstate(divide="ignore", invalid="ignore"):
            kappa = np.where(p_e < 1, (p_o - p_e) / (1 - p_e), np.nan)
        kappa = np.nan_to_num(kappa, nan=-math.inf)
        size = np.abs(chunk).sum(axis=1)
        order = np.lexsort((size, -kappa))  # best kappa, then the smallest biases
        if kappa[order[0]] > best_kappa + 1e-12 or (abs(kappa[order[0]] - best_kappa) <= 1e-12
                                                    and size[order[0]] < np.abs(best).sum()):
            best_kappa, best = float(kappa[order[0]]), chunk[order[0]]
    return {k: float(round(b, 4)) for k, b in zip(keys, best, strict=True)}, best_kappa
