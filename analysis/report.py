"""The whole analysis of a set of runs in one folder + one self-contained HTML page (``analysis report``).

Steps (each one that the data cannot support is skipped with a note in the page, never a crash):
leaderboard of the runs; wide orientation tables (all / train / test roles); our PC graph (learned
on the train roles when there are any, as in Kang et al. §3.2, else on all rows); reference graphs
(ValueBench upper dimensions, user edge lists, the judge's Template 5 when asked); §2.3 steering
effects on the test roles (all roles when there is no test split) with bootstrap CIs beside the
paper's numbers; the SAE table (train vs test), noise ratio and Table 3; Table 2 when a judge is
asked for; plots (PNG + SVG). The HTML embeds every image as base64, so it can be mailed alone.
"""

from __future__ import annotations

import base64
import html
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import pandas as pd
from tqdm import tqdm

from analysis.causal import ValueGraph, learn_graph, pc_rows
from analysis.effect_rules import PAPER_TEXT, EffectRules
from analysis.effects import steering_effects
from analysis.io import check_one_model, find_runs, load_samples
from analysis.leaderboard import leaderboard, orientation_view, run_info
from analysis.metrics import PAPER_NOISE_RATIO
from analysis.orientations import (
    orientation_table,
    pick_mode,
    read_orientation_csv,
    write_orientation_csv,
)
from analysis.plots import plot_expected_unexpected, plot_graphs, plot_sae_heatmap
from analysis.reference import load_reference
from analysis.sae_table import mean_similarity, noise_ratio, sae_table, sae_vs_explicit
from analysis.tables import html_page, to_html, write_table

MAX_HTML_ROWS = 200


@dataclass
class Report:
    out: Path
    sections: list[tuple[str, str]] = field(default_factory=list)  # (title, html)
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    def table(self, name: str, title: str, df: pd.DataFrame, note: str = "") -> None:
        paths = write_table(df, self.out / "tables", name)
        self.files += list(paths.values())
        shown = df
        if len(df) > MAX_HTML_ROWS:
            shown = df.head(MAX_HTML_ROWS)
            note = (note + "; " if note else "") + f"first {MAX_HTML_ROWS} of {len(df)} rows shown, all in tables/{name}.csv"
        body = (f"<p class='note'>{html.escape(note)}</p>" if note else "") + to_html(shown)
        self.sections.append((title, f"<div class='table' id='table-{name}'>{body}</div>"))

    def image(self, title: str, paths: dict[str, Path], caption: str = "") -> None:
        self.files += list(paths.values())
        data = base64.b64encode(paths["png"].read_bytes()).decode()
        cap = f"<p class='note'>{html.escape(caption)}</p>" if caption else ""
        self.sections.append((title, f"<div class='plot' id='plot-{paths['png'].stem}'>{cap}"
                                     f"<img alt='{html.escape(title)}' src='data:image/png;base64,{data}'></div>"))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def write(self, title: str) -> Path:
        body = "<ul class='toc'>" + "".join(
            f"<li><a href='#s{i}'>{html.escape(t)}</a></li>" for i, (t, _) in enumerate(self.sections)) + "</ul>\n"
        if self.notes:
            body += "<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in self.notes) + "</ul>\n"
        for i, (t, b) in enumerate(self.sections):
            body += f"<h2 id='s{i}'>{html.escape(t)}</h2>\n{b}\n"
        path = self.out / "report.html"
        path.write_text(html_page(title, body))
        return path


@dataclass
class Orientations:
    """The orientation tables the steps read: every row, and the train / test roles' rows (None: absent)."""

    full: pd.DataFrame
    train: pd.DataFrame | None = None
    test: pd.DataFrame | None = None


@dataclass
class ReportOptions:
    """What ``build_report`` was asked for besides the runs and the output folder."""

    orientations: list[str] | None = None
    train_csv: list[str] | None = None
    test_csv: list[str] | None = None
    mode: str | None = None
    references: list[str] | None = None
    use_judge: bool = False
    alpha: float = 0.05
    indep_test: str = "fisherz"
    n_boot: int = 1000
    seed: int = 0
    rules: EffectRules = PAPER_TEXT
    sensitivity: bool = False


def build_report(runs: list[str], out: Path, orientations: list[str] | None = None, train_csv: list[str] | None = None,
                 test_csv: list[str] | None = None, mode: str | None = None, references: list[str] | None = None,
                 use_judge: bool = False, alpha: float = 0.05, indep_test: str = "fisherz",
                 n_boot: int = 1000, seed: int = 0, rules: EffectRules = PAPER_TEXT,
                 sensitivity: bool = False, allow_mixed_models: bool = False) -> Report:
    opts = ReportOptions(orientations, train_csv, test_csv, mode, references, use_judge, alpha, indep_test,
                         n_boot, seed, rules, sensitivity)
    rep = Report(out=out)
    out.mkdir(parents=True, exist_ok=True)
    steps = tqdm(total=6, desc="report", leave=False)
    samples = _runs_step(rep, runs, allow_mixed_models)
    steps.update()
    tables = _orientations_step(rep, samples, opts)
    if tables is None:
        rep.note("no orientations: pass RUN_DIRs with logged ValueBench samples or --orientations CSV.")
        return _finish(rep, steps)
    steps.update()
    graphs = _graphs_step(rep, tables, opts)
    steps.update()
    if graphs:
        _effects_step(rep, tables, graphs, opts)
    steps.update()
    _sae_step(rep, tables)
    steps.update()
    if opts.use_judge and samples is not None:
        _table2_step(rep, samples)
    return _finish(rep, steps)


def _runs_step(rep: Report, runs: list[str], allow_mixed_models: bool = False) -> pd.DataFrame | None:
    """1. The runs, their leaderboard and per-value orientations; the logged ValueBench samples (None: none)."""
    if not runs:
        return None
    found = find_runs(runs)
    check_one_model(found, allow_mixed_models)
    rep.table("runs", "Runs", run_info(found))
    board = leaderboard(found)
    view = orientation_view(board)
    if not view.empty:
        rep.table("leaderboard_orientations", "Per-value orientation of each run", view,
                  "mean item score in [-1, 1] (results JSON); Δ = last run − first run")
    rep.table("leaderboard", "All metrics of each run", board)
    samples = load_samples(found, require=False, allow_mixed_models=allow_mixed_models)
    if samples.empty:
        rep.note("no ValueBench samples in the runs (run lm_eval with --log_samples); orientation-based "
                 "steps skipped.")
        return None
    return samples


def _read_csvs(paths: list[str] | None) -> pd.DataFrame | None:
    return pd.concat([read_orientation_csv(p) for p in paths], ignore_index=True) if paths else None


def _orientations_step(rep: Report, samples: pd.DataFrame | None, opts: ReportOptions) -> Orientations | None:
    """The orientation tables from the samples, replaced by any CSVs given; written in Kang et al.'s format."""
    full = train = test = None
    if samples is not None:
        full = orientation_table(samples, mode=pick_mode(samples, opts.mode))
        splits = set(full["role_split"].dropna())
        train = full[full["role_split"] == "train"].reset_index(drop=True) if "train" in splits else None
        test = full[full["role_split"] == "test"].reset_index(drop=True) if "test" in splits else None
    full = _read_csvs(opts.orientations) if opts.orientations else full
    train = _read_csvs(opts.train_csv) if opts.train_csv else train
    test = _read_csvs(opts.test_csv) if opts.test_csv else test
    if full is None:
        parts = [t for t in (train, test) if t is not None]
        if not parts:
            return None
        full = pd.concat(parts, ignore_index=True)
    path = write_orientation_csv(full, rep.out / "tables" / "orientations.csv")
    rep.files.append(path)
    rep.table("orientations", "Orientation table (wide format: steer_dim, player_name, values)", full,
              f"s_t[v] = mean item score per (config, role); also written as {path.name} (Kang et al.'s format)")
    return Orientations(full, train, test)


def _graphs_step(rep: Report, tables: Orientations, opts: ReportOptions) -> dict[str, ValueGraph]:
    """2. Our PC graph (train roles when there are enough, else all rows) and the reference graphs."""
    graph_table = tables.train if tables.train is not None and len(tables.train) >= 5 else tables.full
    graphs: dict[str, ValueGraph] = {}
    try:
        graphs["ours"] = _our_graph(rep, graph_table, graph_table is tables.train, opts)
    except ValueError as exc:
        rep.note(f"our causal graph skipped: {exc}")
    for spec in ["valuebench"] + list(opts.references or []) + (["judge"] if opts.use_judge else []):
        try:
            name, ref = load_reference(spec)
            graphs[name] = ref
        except (ValueError, FileNotFoundError) as exc:
            rep.note(f"reference graph {spec!r} skipped: {exc}")
    if graphs:
        rep.image("Value graphs (transitive reductions)", plot_graphs(graphs, rep.out / "plots", "graphs"),
                  "ours (PC) beside the reference graphs; metrics use the full graphs")
    return graphs


def _our_graph(rep: Report, table: pd.DataFrame, on_train: bool, opts: ReportOptions) -> ValueGraph:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows, which = pc_rows(table, mode=opts.rules.pc_rows, features=opts.rules.features)
        ours = learn_graph(rows, alpha=opts.alpha, indep_test=opts.indep_test, undirected=opts.rules.undirected)
    for w in caught:
        rep.note(f"graph: {w.message}")
    out = rep.out
    (out / "graph.json").write_text(json.dumps(ours.to_json(), indent=1))
    nx.write_graphml(ours.digraph(), out / "graph.graphml")
    rep.files += [out / "graph.json", out / "graph.graphml"]
    edges = pd.DataFrame(ours.edges, columns=["from", "to"])
    edges["in_reduction"] = [e in set(ours.reduced_edges()) for e in ours.edges]
    rep.table("graph_edges", "Our value causal graph (PC) edges", edges,
              f"PC {opts.indep_test}, alpha={opts.alpha}, {'train roles' if on_train else 'all roles'}: "
              f"{which}; dropped near-constant: {ours.dropped}")
    return ours


def _effects_step(rep: Report, tables: Orientations, graphs: dict[str, ValueGraph], opts: ReportOptions) -> None:
    """3. §2.3 steering effects on the test roles (all roles when there is no test split)."""
    eval_table = tables.test if tables.test is not None else tables.full
    res = steering_effects(eval_table, graphs, n_boot=opts.n_boot, seed=opts.seed, progress=False, rules=opts.rules,
                           fallback=tables.train if eval_table is tables.test else None)
    for n in res.notes:
        rep.note(n)
    if res.summary.empty:
        return
    rep.table("steering_effects", "Steering effects along causal relations (Kang et al. §2.3, Figure 4)",
              res.summary, "estimate with 95% bootstrap CI (resampling roles); paper columns: reference = "
              "GPT-4o Template 5 graph; rows graph='-' = average number of steered values per unit")
    rep.table("steering_effects_per_value", "Expected / unexpected change per steered value", res.per_value)
    for method, table in res.c_tables.items():
        rep.table(f"c_matrix_{method.replace('[', '_').replace(']', '')}", f"c(v', v) for {method} steering",
                  table, "row = steered value v, column = v'")
    rep.image("Expected vs unexpected change (Figure 4 style)",
              plot_expected_unexpected(res.summary[res.summary["graph"] != "-"], rep.out / "plots"))
    if opts.sensitivity:
        sensitivity_section(rep, eval_table, graphs, opts.rules, opts.n_boot, opts.seed)


def _sae_step(rep: Report, tables: Orientations) -> None:
    """4. The SAE table (train vs test), noise ratio, mean similarity and Table 3."""
    sae_train = tables.train if tables.train is not None else tables.full
    sae_test = tables.test if tables.train is not None else None
    if not (sae_train["steer_dim"].fillna("") != "").any():
        rep.note("SAE table skipped: no steered configs in the orientations.")
        return
    try:
        table = sae_table(sae_train, sae_test)
        noise = noise_ratio(table)
        for model, paper in PAPER_NOISE_RATIO.items():
            noise[f"paper {model}"] = noise["value"].map(paper)
        rep.table("sae_table", "SAE steering table (Kang et al. Table 1/4/5, counts of roles)", table,
                  "stimulated / suppressed / maintained vs the same role unsteered; cosine = train vs test proportions")
        rep.table("noise_ratio", "Noise ratio per value", noise)
        rep.table("mean_similarity", "Mean train-test cosine per feature", mean_similarity(table))
        rep.image("SAE steering heatmap", plot_sae_heatmap(table, noise, rep.out / "plots"))
        if sae_test is not None:
            t3 = sae_vs_explicit(sae_train, sae_test)
            if not t3.empty:
                rep.table("sae_vs_explicit", "Table 3: SAE vs explicit value instruction (test roles)", t3)
    except ValueError as exc:
        rep.note(f"SAE table skipped: {exc}")


def _table2_step(rep: Report, samples: pd.DataFrame) -> None:
    """5. Table 2 (thought/answer inconsistency; needs the configured judge)."""
    from analysis.consistency import inconsistency_table, judge_thoughts, with_paper
    from lm_eval_tasks.judge import require_judge

    try:
        judge = require_judge("Table 2")
        cot = samples[samples["mode"] != "ll"]
        if cot.empty:
            raise ValueError("no CoT samples with a thought (valuebench_cot_* runs)")
        rep.table("thought_answer_inconsistency", "Table 2: thought/answer inconsistency (Kang et al. §3.3)",
                  with_paper(inconsistency_table(cot, judge_thoughts(cot, judge))))
        from analysis.judge.measured import describe

        rep.note(f"Table 2 judged by {judge.judge_id}; its measured agreement (Template 1): "
                 f"{describe(judge.judge_id, 'thought_inclination')}.")
    except ValueError as exc:
        rep.note(f"Table 2 skipped: {exc}")


def sensitivity_section(rep: Report, table: pd.DataFrame, graphs: dict[str, ValueGraph], rules: EffectRules,
                        n_boot: int, seed: int) -> None:
    """How the Figure 4 numbers move over every admissible baseline / SAE role (analysis.sensitivity)."""
    from analysis.sensitivity import plot_sensitivity, sensitivity

    try:
        res = sensitivity(table, graphs, rules, n_boot=n_boot, seed=seed)
    except ValueError as exc:
        rep.note(f"sensitivity skipped: {exc}")
        return
    marks = ", ".join(dict.fromkeys(res.marks["mark"])) or "none"
    rep.table("sensitivity", "Sensitivity of the Figure 4 numbers to the baseline role and the SAE role", res.summary,
              f"min / median / max over every admissible choice; marked: {marks} (95% bootstrap CIs)")
    rep.table("sensitivity_choices", "Figure 4 numbers for each choice", res.choices)
    rep.image("Sensitivity: distribution over choices", plot_sensitivity(res, rep.out / "plots"),
              "histograms over choices; lines: the marked choices")


def _finish(rep: Report, steps: tqdm) -> Report:
    steps.update(steps.total - steps.n)
    steps.close()
    rep.write("Value steering analysis")
    return rep
