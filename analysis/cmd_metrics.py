"""`python -m analysis metrics`: Kang et al. §2.3 steering effects (expected vs unexpected change) with CIs."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from analysis.causal import INDEP_TESTS, load_graph_json
from analysis.cmd_graph import add_source_arguments, sources
from analysis.cmdutil import friendly_errors
from analysis.effects import learn_or_load, steering_effects
from analysis.orientations import load_orientations
from analysis.plots import plot_expected_unexpected
from analysis.reference import load_reference
from analysis.tables import to_markdown, write_table

HELP = ("§2.3 metrics: c(v',v), expected vs unexpected change under our graph and reference graphs, "
        "steered values per role/feature, bootstrap CIs, beside the paper's numbers")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_arguments(parser)
    parser.add_argument("--graph", default=None, help="our graph: graph.json from `analysis graph` (else learned with PC)")
    parser.add_argument("--train", action="append", default=[], metavar="T.csv|RUN_DIR",
                        help="learn our graph on these (the paper: train roles x SAE features); default: the input")
    parser.add_argument("--reference", action="append", default=None,
                        help="reference graph(s): valuebench (default), judge, or an edge-list file")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--all-rows", action="store_true", help="PC on every row, unsteered ones too")
    parser.add_argument("--indep-test", default="fisherz", choices=INDEP_TESTS)
    parser.add_argument("--sae-roles", default="auto", choices=["auto", "r0", "all"],
                        help="SAE units: r0 only (the paper), every role, or r0 when present")
    parser.add_argument("--baseline-role", default="", help="player_name of the baseline role (default: r0, empty name)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (0 = none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)


@friendly_errors
def run(args: argparse.Namespace) -> int:
    test = load_orientations(sources(args), mode=args.mode, split=args.split)
    graphs = {}
    if args.graph:
        graphs["ours"], how = load_graph_json(args.graph), f"read from {args.graph}"
    else:
        train = load_orientations(args.train, mode=args.mode) if args.train else None
        try:
            graphs["ours"], how = learn_or_load(train, test, all_rows=args.all_rows, alpha=args.alpha,
                                                indep_test=args.indep_test)
        except ValueError as exc:
            how = f"not learned ({exc})"
    for spec in args.reference if args.reference is not None else ["valuebench"]:
        name, ref = load_reference(spec)
        graphs[name] = ref
    res = steering_effects(test, graphs, n_boot=args.bootstrap, seed=args.seed, sae_roles=args.sae_roles,
                           baseline_role=args.baseline_role, progress=True)
    ours = graphs.get("ours")
    print(f"our graph: {len(ours.edges)} edges, {how}" if ours else f"our graph: {how}")
    for note in res.notes:
        print(f"note: {note}")
    if res.summary.empty:
        print("no steering effect could be measured (see notes).")
        return 1
    print("\n## Steering effects (Kang et al. §2.3 / Figure 4; paper columns: reference = GPT-4o Template 5)\n")
    print(to_markdown(res.summary))
    if args.out is not None:
        out: Path = args.out
        write_table(res.summary, out, "steering_effects")
        write_table(res.per_value, out, "steering_effects_per_value")
        for method, table in res.c_tables.items():
            write_table(table, out, f"c_matrix_{method.replace('[', '_').replace(']', '')}")
        plot_expected_unexpected(res.summary[res.summary["graph"] != "-"], out)
        pd.Series(how).to_csv(out / "graph_source.txt", index=False, header=False)
        print(f"\nwrote {out}/steering_effects.csv, steering_effects_per_value.csv, c_matrix_*.csv, expected_unexpected.png")
    return 0
