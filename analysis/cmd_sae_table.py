"""`python -m analysis sae-table --train T.csv --test S.csv --out DIR` (Tables 1/4/5 and 3)."""

from __future__ import annotations

import argparse
from pathlib import Path

from analysis.cmdutil import friendly_errors
from analysis.metrics import PAPER_NOISE_RATIO
from analysis.orientations import load_orientations
from analysis.plots import plot_sae_heatmap
from analysis.sae_table import mean_similarity, noise_ratio, sae_table, sae_vs_explicit
from analysis.tables import to_markdown, write_table

HELP = ("SAE steering table (Kang Tables 1/4/5): stimulated/suppressed/maintained roles per feature x value on "
        "train and test, cosine, noise ratio, heatmap; Table 3 (SAE vs explicit instruction)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train", action="append", required=True, metavar="T.csv|RUN_DIR",
                        help="train orientations (wide CSV or lm-eval output folders; repeat for several)")
    parser.add_argument("--test", action="append", default=[], metavar="S.csv|RUN_DIR", help="test orientations")
    parser.add_argument("--mode", default=None, help="questionnaire mode when runs mix them: cot or ll")
    parser.add_argument("--out", type=Path, required=True)


def tables(train_paths: list[str], test_paths: list[str], mode: str | None) -> dict:
    train = load_orientations(train_paths, mode=mode, split=None)
    test = load_orientations(test_paths, mode=mode, split=None) if test_paths else None
    table = sae_table(train, test)
    noise = noise_ratio(table)
    for model, paper in PAPER_NOISE_RATIO.items():
        noise[f"paper {model}"] = noise["value"].map(paper)
    out = {"sae_table": table, "noise_ratio": noise, "mean_similarity": mean_similarity(table)}
    if test is not None:
        out["sae_vs_explicit"] = sae_vs_explicit(train, test)
    return out


@friendly_errors
def run(args: argparse.Namespace) -> int:
    result = tables(args.train, args.test, args.mode)
    out: Path = args.out
    for name, table in result.items():
        write_table(table, out, name)
    plot_sae_heatmap(result["sae_table"], result["noise_ratio"], out)
    print("## Noise ratio per value (mean over features of min(stimulated, suppressed) share, train)\n")
    print(to_markdown(result["noise_ratio"]))
    print("\n## Mean train-test cosine per feature\n")
    print(to_markdown(result["mean_similarity"]))
    if "sae_vs_explicit" in result and not result["sae_vs_explicit"].empty:
        print("\n## Table 3: SAE (best +/- feature on train) vs explicit value instruction, test roles\n")
        print(to_markdown(result["sae_vs_explicit"]))
    print(f"\nwrote {out}/sae_table.csv, noise_ratio.csv, mean_similarity.csv, sae_heatmap.png/.svg")
    return 0
