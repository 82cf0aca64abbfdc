"""`context-words`: the frequent-context-word analysis of ConVA Table 2.

For each value and pair set (``context_controlled`` and the straightforward ``non_context_controlled``),
the ``--top`` (25) most frequent words of the positive samples and of the negative samples (lower-cased,
scikit-learn's English stop words removed), split into words unique to the positive top list, unique to
the negative top list, and common to both (the paper: straightforward "security" 22/22/3,
context-controlled 8/8/17). Reads the ConVA pairs from ``--data-dir`` (else
``$VALUE_STEERING_CONVA_DIR``, else ``../shared/data/conva``). Writes ``context_words.csv`` (one row per
word), ``context_words_summary.csv`` (counts per value and set) and ``context_words.png``.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

import pandas as pd

HELP = "top-25 context words of ConVA's positive/negative samples: unique-positive / unique-negative / common (CSV + PNG)"

WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None, help="ConVA data folder holding value/")
    parser.add_argument("--values", default=None, help="comma-separated values (default: all 10)")
    parser.add_argument("--pair-sets", default="non_context_controlled,context_controlled")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", required=True, type=Path)


def word_counts(texts: list[str]) -> Counter[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(w for w in WORD.findall(text.lower()) if len(w) > 1 and w not in ENGLISH_STOP_WORDS)
    return counts


def top_words(counts: Counter[str], k: int) -> list[str]:
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


def categorize(positive: list[str], negative: list[str], k: int) -> pd.DataFrame:
    pos_c, neg_c = word_counts(positive), word_counts(negative)
    pos_top, neg_top = top_words(pos_c, k), top_words(neg_c, k)
    rows = []
    for word in dict.fromkeys(pos_top + neg_top):
        in_pos, in_neg = word in pos_top, word in neg_top
        category = "common" if in_pos and in_neg else ("unique_positive" if in_pos else "unique_negative")
        rows.append({"word": word, "category": category, "count_positive": pos_c[word],
                     "count_negative": neg_c[word]})
    return pd.DataFrame(rows)


def run(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lm_eval_tasks.schwartz.data import VALUES
    from steering_models.conva.data import load_pairs

    values = args.values.split(",") if args.values else list(VALUES)
    sets = args.pair_sets.split(",")
    tables, summary = [], []
    for value in values:
        for pair_set in sets:
            pairs = load_pairs(value, args.data_dir, pair_set, min_pairs=1)
            table = categorize(pairs.positive, pairs.negative, args.top)
            table.insert(0, "pair_set", pair_set)
            table.insert(0, "value", value)
            tables.append(table)
            counts = table["category"].value_counts()
            summary.append({"value": value, "pair_set": pair_set,
                            **{c: int(counts.get(c, 0)) for c in ("unique_positive", "unique_negative", "common")},
                            **{f"top_{c}": " ".join(table[table["category"] == c]["word"].head(3))
                               for c in ("unique_positive", "unique_negative", "common")}})
    args.out.mkdir(parents=True, exist_ok=True)
    words = pd.concat(tables, ignore_index=True)
    summ = pd.DataFrame(summary)
    words.to_csv(args.out / "context_words.csv", index=False)
    summ.to_csv(args.out / "context_words_summary.csv", index=False)
    fig, axes = plt.subplots(1, len(sets), figsize=(6 * len(sets), 3.5), squeeze=False)
    for ax, pair_set in zip(axes[0], sets, strict=True):
        part = summ[summ["pair_set"] == pair_set].set_index("value")[["unique_positive", "unique_negative", "common"]]
        part.plot.bar(stacked=True, ax=ax, color=["tab:orange", "tab:green", "tab:gray"])
        ax.set_title(f"top-{args.top} context words: {pair_set}", fontsize=9)
        ax.set_ylabel("words")
    fig.tight_layout()
    fig.savefig(args.out / "context_words.png", dpi=120)
    plt.close(fig)
    print(summ[["value", "pair_set", "unique_positive", "unique_negative", "common"]].to_string(index=False))
    print(f"wrote {args.out / 'context_words.csv'}, {args.out / 'context_words_summary.csv'}, "
          f"{args.out / 'context_words.png'}")
    return 0
