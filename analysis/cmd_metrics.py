"""`python -m analysis metrics`: Kang et al. §2.3 steering effects (expected vs unexpected change) with CIs.

Also writes ``kang_table2.csv`` (the authors' released per-value layout) and, with ``--sensitivity``,
how the Figure 4 numbers move over every admissible baseline role / SAE role (``analysis.sensitivity``).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import pandas as pd

from analysis.causal import INDEP_TESTS, load_graph_json
from analysis.cmd_graph import add_source_arguments, sources
from analysis.cmdutil import friendly_errors
from analysis.effect_rules import EffectRules, add_rule_arguments, check_roles, rules_from_args
from analysis.effects import learn_or_load, steering_effects
from analysis.kang_table2 import figure4, table2
from analysis.metrics import PAPER_NUMBERS
from analysis.orientations import load_orientations, value_columns
from analysis.plots import plot_expected_unexpected
from analysis.reference import load_reference
from analysis.sensitivity import plot_sensitivity, rules_label, sensitivity
from analysis.tables import to_markdown, write_table

HELP = ("§2.3 metrics: c(v',v), expected vs unexpected change under our graph and reference graphs, "
        "steered values per role/feature, bootstrap CIs, beside the paper's numbers")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_arguments(parser)
    parser.add_argument("--graph", default=None, help="our graph: graph.json from `analysis graph` (else learned with PC)")
    parser.add_argument("--train", action="append", default=[], metavar="T.csv|RUN_DIR",
                        help="learn our graph on these (the paper: train roles x SAE features); default: the input")
    parser.add_argument("--reference", action="append", default=None,
                        help="reference graph(s): valuebench (default), judge, or an edge-list file; the first "
                             "one is 'refs' in kang_table2.csv")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--all-rows", action="store_true", help="same as --pc-rows all")
    parser.add_argument("--indep-test", default="fisherz", choices=INDEP_TESTS)
    add_rule_arguments(parser)
    parser.add_argument("--sensitivity", action="store_true",
                        help="recompute the Figure 4 numbers for every admissible baseline role and SAE role: "
                             "min/median/max, share expected > unexpected, bootstrap CIs, a plot")
    parser.add_argument("--sensitivity-subsets", type=int, default=0, metavar="N",
                        help="with --sensitivity: also N random feature subsets of each size (SAE steering)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (0 = none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)


def paper_marks(graph_names: list[str]) -> dict[tuple[str, str, str], float]:
    """(method, graph, kind) -> the paper's Gemma number, for the sensitivity plot (ours and the first reference)."""
    out = {}
    for method in ("role", "sae"):
        for kind in ("expected", "unexpected"):
            for g in graph_names[:2]:
                out[(method, g, kind)] = PAPER_NUMBERS[("Gemma-2B-IT", method, kind, "ours" if g == "ours" else "reference")]
    return out


@friendly_errors
def run(args: argparse.Namespace) -> int:
    rules: EffectRules = rules_from_args(args)
    if args.all_rows:
        rules = replace(rules, pc_rows="all")
    test = load_orientations(sources(args), mode=args.mode, split=args.split)
    check_roles(test, rules)
    graphs = {}
    if args.graph:
        graphs["ours"], how = load_graph_json(args.graph), f"read from {args.graph}"
    else:
        train = load_orientations(args.train, mode=args.mode) if args.train else None
        try:
            graphs["ours"], how = learn_or_load(train, test, rules, alpha=args.alpha, indep_test=args.indep_test)
        except ValueError as exc:
            how = f"not learned ({exc})"
    for spec in args.reference if args.reference is not None else ["valuebench"]:
        name, ref = load_reference(spec)
        graphs[name] = ref
    res = steering_effects(test, graphs, n_boot=args.bootstrap, seed=args.seed, rules=rules, progress=True)
    ours = graphs.get("ours")
    print(f"rules: {rules.describe()}" + (f" (--preset {rules.preset})" if rules.preset else ""))
    print(f"our graph: {len(ours.edges)} edges, {how}" if ours else f"our graph: {how}")
    for note in res.notes:
        print(f"note: {note}")
    if res.summary.empty:
        print("no steering effect could be measured (see notes).")
        return 1
    print("\n## Steering effects (Kang et al. §2.3 / Figure 4; paper columns: reference = GPT-4o Template 5)\n")
    print(to_markdown(res.summary))
    names = list(graphs)
    refs = next((g for g in names if g != "ours"), None)
    t2 = table2(res.per_value, ours="ours", refs=refs, values=value_columns(test))
    print(f"\n## Figure 4: mean over values of kang_table2 (refs = {refs}; the paper's refs = its GPT-4o graph)\n")
    print(to_markdown(figure4(t2)))
    sens = None
    if args.sensitivity:
        sens = sensitivity(test, graphs, rules, n_boot=args.bootstrap, seed=args.seed,
                           subsets=args.sensitivity_subsets, progress=True)
        print(f"\n## Sensitivity: {len(sens.choices) // max(len(graphs), 1)} choices of baseline role / SAE role "
              f"(marks: {', '.join(dict.fromkeys(sens.marks['mark'])) or 'none'}; rules marked as "
              f"'{rules_label(rules)}')\n")
        print(to_markdown(sens.summary))
    if args.out is not None:
        out: Path = args.out
        write_table(res.summary, out, "steering_effects")
        write_table(res.per_value, out, "steering_effects_per_value")
        for method, table in res.c_tables.items():
            write_table(table, out, f"c_matrix_{method.replace('[', '_').replace(']', '')}")
        t2.to_csv(out / "kang_table2.csv")
        write_table(figure4(t2), out, "figure4")
        plot_expected_unexpected(res.summary[res.summary["graph"] != "-"], out)
        pd.Series(how).to_csv(out / "graph_source.txt", index=False, header=False)
        written = "steering_effects.csv, steering_effects_per_value.csv, c_matrix_*.csv, kang_table2.csv, figure4.csv"
        if sens is not None:
            write_table(sens.summary, out, "sensitivity")
            write_table(sens.choices, out, "sensitivity_choices")
            plot_sensitivity(sens, out, paper=paper_marks(names))
            written += ", sensitivity.csv, sensitivity_choices.csv, sensitivity.png"
        print(f"\nwrote {out}/{written}, expected_unexpected.png")
    return 0
