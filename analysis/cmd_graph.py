"""`python -m analysis graph --orientations T.csv --out DIR` (or RUN_DIR...): PC value graph."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import networkx as nx

from analysis.causal import INDEP_TESTS, learn_graph, pc_rows
from analysis.cmdutil import add_mixed_models_flag, friendly_errors
from analysis.effect_rules import add_rule_arguments, rules_from_args
from analysis.orientations import load_orientations
from analysis.plots import plot_graphs
from analysis.reference import load_reference

HELP = "learn the value causal graph with PC (causal-learn) from orientations; writes graph.json, GraphML, PNG/SVG"


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="*", metavar="RUN_DIR", help="lm-eval --output_path folders")
    add_mixed_models_flag(parser)
    parser.add_argument("--orientations", action="append", default=[], metavar="T.csv",
                        help="wide orientation CSV(s) instead of RUN_DIRs (steer_dim, player_name, value columns)")
    parser.add_argument("--mode", default=None, help="questionnaire mode when runs mix them: cot or ll")
    parser.add_argument("--split", default=None, choices=["train", "test"], help="use only these roles")


def sources(args: argparse.Namespace) -> list[str]:
    paths = list(args.orientations) + list(args.runs)
    if not paths:
        raise ValueError("no input: pass RUN_DIR... (lm-eval output folders) or --orientations T.csv.")
    return paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_arguments(parser)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--alpha", type=float, default=0.05, help="PC significance level (paper: 0.05)")
    parser.add_argument("--indep-test", default="fisherz", choices=INDEP_TESTS)
    parser.add_argument("--near-constant", type=float, default=0.99,
                        help="drop a value column when one orientation fills this share of rows")
    parser.add_argument("--all-rows", action="store_true", help="same as --pc-rows all")
    add_rule_arguments(parser, graph_only=True)
    parser.add_argument("--reference", action="append", default=[],
                        help="also draw a reference graph: valuebench, judge, or an edge-list file")


@friendly_errors
def run(args: argparse.Namespace) -> int:
    rules = rules_from_args(args)
    table = load_orientations(sources(args), mode=args.mode, split=args.split,
                              allow_mixed_models=args.allow_mixed_models)
    rows, which = pc_rows(table, args.all_rows, mode=rules.pc_rows, features=rules.features)
    graph = learn_graph(rows, alpha=args.alpha, indep_test=args.indep_test, near_constant=args.near_constant,
                        undirected=rules.undirected)
    graph.params["rows_used"] = which
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "graph.json").write_text(json.dumps(graph.to_json(), indent=1))
    g = graph.digraph()
    nx.write_graphml(g, out / "graph.graphml")
    shown = {"ours (PC)": graph}
    for spec in args.reference:
        name, ref = load_reference(spec, graph.nodes)
        shown[name] = ref
        (out / f"reference_{name}.json").write_text(json.dumps(ref.to_json(), indent=1))
    plot_graphs(shown, out, "graph")
    print(f"PC ({args.indep_test}, alpha={args.alpha}, undirected edges: {rules.undirected}) on {which}, "
          f"{graph.params['rows']} complete x {len(graph.nodes)} values: "
          f"{len(graph.edges)} edges, {len(graph.reduced_edges())} after transitive reduction"
          + (f"; dropped near-constant: {graph.dropped}" if graph.dropped else ""))
    for a, b in graph.edges:
        print(f"  {a} -> {b}")
    print(f"wrote {out / 'graph.json'}, {out / 'graph.graphml'}, {out / 'graph.png'}")
    return 0
