"""The whole analysis of a set of runs in one folder + one self-contained HTML page (``analysis report``).

The page opens with a summary (``analysis.summary``: Figure 4 numbers beside the paper's, the number of PC
edges, the strongest config's orientation shift; the value graph, the per-value orientation bars, Figure 4
and, when a sweep varies strength, the dose-response plot), then the detail sections. Every section opens
with one line saying what it shows and which table / figure of which paper it corresponds to; a section the
data cannot support collapses to one line with the reason and the fix, never a crash.

Steps: leaderboard of the runs; wide orientation tables (all / train / test roles); orientation shifts of
each config (``analysis.shifts``); our PC graph (learned on the train roles when there are any, as in Kang
et al. §3.2, else on all rows); reference graphs (ValueBench upper dimensions, user edge lists, the judge's
Template 5 when asked); §2.3 steering effects on the test roles (all roles when there is no test split)
with bootstrap CIs beside the paper's numbers; the SAE table (train vs test), noise ratio and Table 3;
Table 2 when a judge is asked for; plots (PNG + SVG). The HTML embeds every image as base64, so it can be
mailed alone; ``summary.json`` beside it holds the headline numbers.
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
from analysis.effects import EffectResults, steering_effects
from analysis.io import check_one_model, find_runs, load_samples, steer_amount
from analysis.leaderboard import leaderboard, orientation_view, run_info
from analysis.metrics import PAPER_NOISE_RATIO
from analysis.orientations import (
    orientation_table,
    pick_mode,
    read_orientation_csv,
    write_orientation_csv,
)
from analysis.plots import plot_expected_unexpected, plot_graphs, plot_sae_heatmap
from analysis.plots_orientation import plot_dose_response, plot_orientation_bars
from analysis.reference import load_reference
from analysis.sae_table import mean_similarity, noise_ratio, sae_table, sae_vs_explicit
from analysis.shifts import (
    ConfigInfo,
    config_shifts,
    dose_response,
    orientation_shifts,
    strongest_config,
)
from analysis.summary import FIGURE4_METHODS, RunSummary, figure4_numbers
from analysis.tables import html_page, to_html, write_table

MAX_HTML_ROWS = 200

# what each section shows and its counterpart in the papers (one line each, at the top of the section)
INTRO = {
    "runs": "The lm-eval runs read, one per steering config (results JSON + logged samples).",
    "leaderboard_orientations": "Per-value orientation of each run from its results JSON (mean item score in "
                                "[-1, 1], Kang et al. §2.1).",
    "leaderboard": "Every metric of every run, side by side (our leaderboard; no paper counterpart).",
    "orientations": "The value orientations s_t[v] per (config, role): the wide table Kang et al. release "
                    "with their code (§3.1).",
    "config_shifts": "How far each config moves each value against the same role unsteered; values changed "
                     "per role = Kang et al.'s 'average number of steered values' (§3.2.1).",
    "orientation_bars": "Per-value orientation, unsteered vs each config, mean over roles (ours; the direction "
                        "of Kang et al.'s Table 1 cells, as bars).",
    "dose_response": "Orientation shift against steering strength per direction (ours; Kang et al. steer at one "
                     "strength, 100x on Gemma-2B-IT).",
    "graphs": "Our value causal graph (PC) beside the reference graphs: Kang et al. §3.2, Figure 3 (ours) and "
              "Figure 5 (ValueBench's upper dimensions); transitive reductions drawn.",
    "graph_edges": "Every edge of our PC graph (Kang et al. §3.2; the graph Figure 4 is measured along).",
    "steering_effects": "Probability that steering one value also changes its descendants in the graph "
                        "(expected) vs its other values (unexpected): Kang et al. §2.3, §3.2.1, Figure 4.",
    "expected_unexpected": "Figure 4 of Kang et al.: expected vs unexpected change, ours (bars, 95% bootstrap CI) "
                           "vs the paper's Gemma-2B-IT (x) and Llama3-8B-IT (+).",
    "steering_effects_per_value": "Expected / unexpected change per steered value (the terms averaged into "
                                  "Figure 4, Kang et al. §2.3).",
    "c_matrix": "c(v', v): among units that change v, the share that also change v' (Kang et al. §2.3).",
    "sae_table": "SAE steering per feature and value: roles stimulated / suppressed / maintained, train vs "
                 "test cosine: Kang et al. Table 1 (Gemma-2B-IT) and Tables 4/5 (Appendix C).",
    "noise_ratio": "Noise ratio per value (the 'Noise Ratio' row of Kang et al. Tables 1/4/5), ours beside "
                   "the paper's.",
    "mean_similarity": "Mean train-test cosine per feature (Kang et al. Table 1's last column).",
    "sae_heatmap": "Kang et al. Table 1 as a heatmap: stimulated - suppressed share of roles per feature and "
                   "value, the train-test cosine in each cell.",
    "sae_vs_explicit": "SAE steering vs the explicit value instruction on the test roles: Kang et al. Table 3.",
    "thought_answer_inconsistency": "Thought/answer inconsistency before and after SAE steering: Kang et al. "
                                    "Table 2 (§3.3).",
    "sensitivity": "How the Figure 4 numbers move over every admissible baseline / SAE role (our check of "
                   "Kang et al. §3.2.1's choices).",
}

FIX = {
    "graph": "add train roles or configs (rows): e.g. `--metadata '{\"num_roles\": 6}'` on valuebench_*_train, "
             "or more configs in the sweep.",
    "role": "add r0, the empty role, and named roles: `--metadata '{\"roles\": [\"r0\", \"r1\", \"r2\", \"r3\"]}'` "
            "with valuebench_*_train (r0 is the first train role).",
    "sae": "add steered configs for roles that also ran unsteered: a sweep with `unsteered` and "
           "`sae_top_features` (examples/main_job.sh).",
    "dose_response": "run a direction at several strengths: `strength: [20, 50, 100]` in the sweep's "
                     "`sae_top_features` or `vectors`.",
    "sae_vs_explicit": "add a valuebench_explicit run on the test roles and a test-role sweep "
                       "(examples/kang_sae_experiment.sh).",
    "thought_answer_inconsistency": "configure a judge (VALUE_JUDGE_*) and pass --judge, on CoT runs "
                                    "(valuebench_cot_*).",
}


# the summary's figures, in this order (issue 20: value graph, Figure 4, orientation shifts, dose-response)
TOP_ORDER = {"graph_edges": 0, "graphs": 1, "steering_effects": 2, "expected_unexpected": 3, "orientation_bars": 4,
             "dose_response": 5}
WIDE = {"orientation_bars"}


@dataclass
class Section:
    """One part of the page: ``intro`` (what it shows, which paper table/figure), then ``html``; a section
    with ``skipped`` set could not be computed and is drawn as one line with the reason and the fix."""

    title: str
    html: str = ""
    intro: str = ""
    skipped: str = ""
    key: str = ""


@dataclass
class Report:
    out: Path
    sections: list[Section] = field(default_factory=list)
    top: list[Section] = field(default_factory=list)  # the summary's figures
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    summary: RunSummary | None = None

    def table(self, name: str, title: str, df: pd.DataFrame, note: str = "", intro: str | None = None) -> None:
        paths = write_table(df, self.out / "tables", name)
        self.files += list(paths.values())
        shown = df
        if len(df) > MAX_HTML_ROWS:
            shown = df.head(MAX_HTML_ROWS)
            note = (note + "; " if note else "") + f"first {MAX_HTML_ROWS} of {len(df)} rows shown, all in tables/{name}.csv"
        body = (f"<p class='note'>{html.escape(note)}</p>" if note else "") + to_html(shown)
        self.sections.append(Section(title, f"<div class='table' id='table-{name}'>{body}</div>",
                                     INTRO.get(name, "") if intro is None else intro, key=name))

    def image(self, title: str, paths: dict[str, Path], caption: str = "", intro: str | None = None,
              top: bool = False) -> None:
        self.files += list(paths.values())
        data = base64.b64encode(paths["png"].read_bytes()).decode()
        cap = f"<p class='note'>{html.escape(caption)}</p>" if caption else ""
        name = paths["png"].stem
        section = Section(title, f"<div class='plot' id='plot-{name}'>{cap}"
                                 f"<img alt='{html.escape(title)}' src='data:image/png;base64,{data}'></div>",
                          INTRO.get(name, "") if intro is None else intro, key=name)
        (self.top if top else self.sections).append(section)

    def skip(self, key: str, title: str, reason: str, fix: str | None = None, top: bool = False) -> None:
        """A section that cannot be computed: one line, the reason and the fix."""
        fix = FIX.get(key, "") if fix is None else fix
        reason = reason.strip().rstrip(".")
        text = reason[:1].upper() + reason[1:] + "." + (f" Fix: {fix}" if fix else "")
        (self.top if top else self.sections).append(Section(title, intro=INTRO.get(key, ""), skipped=text, key=key))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def write(self, title: str) -> Path:
        body = ("<p class='lede'>Kang et al. (value causal graphs, role and SAE steering) on the runs below: the "
                "summary first, the tables after it. Every image is embedded; the tables are also under "
                "<code>tables/</code> (CSV + markdown).</p>\n")
        body += "<section id='summary'><h2>Summary</h2>\n" + _summary_html(self.summary)
        top = sorted(self.top, key=lambda s: TOP_ORDER.get(s.key, len(TOP_ORDER)))
        body += "<div class='figures'>" + "".join(
            f"<div class='fig{' wide' if s.key in WIDE else ''}'>{_section_html(s, f'top{i}', 'h3')}</div>"
            for i, s in enumerate(top))
        body += "</div></section>\n"
        body += "<h2>Contents</h2><ul class='toc'>" + "".join(
            f"<li><a href='#s{i}'>{html.escape(s.title)}</a>{' (not computed)' if s.skipped else ''}</li>"
            for i, s in enumerate(self.sections)) + "</ul>\n"
        if self.notes:
            body += "<h2>Notes</h2><ul class='notes'>" + "".join(f"<li>{html.escape(n)}</li>" for n in self.notes) + "</ul>\n"
        body += "".join(_section_html(s, f"s{i}", "h2") for i, s in enumerate(self.sections))
        path = self.out / "report.html"
        path.write_text(html_page(title, body))
        return path


def _section_html(s: Section, anchor: str, tag: str) -> str:
    intro = f"<p class='intro'>{html.escape(s.intro)}</p>" if s.intro else ""
    if s.skipped:
        key = f" id='skip-{s.key}'" if s.key else ""
        return (f"<p class='skipped' id='{anchor}'><span{key}><b>{html.escape(s.title)}</b>: not computed. "
                f"{html.escape(s.skipped)}</span></p>\n")
    return f"<{tag} id='{anchor}'>{html.escape(s.title)}</{tag}>\n{intro}{s.html}\n"


def _summary_html(summary: RunSummary | None) -> str:
    if summary is None:
        return "<p class='skipped'>No summary: no orientations could be computed from the input.</p>"
    esc = html.escape
    took = f" in {summary.wall_seconds:.0f} s" if summary.wall_seconds is not None else ""
    score = "soft item score agreement x (p(yes) − p(no)), ours" if summary.score == "soft" else "item score ±1/0"
    out = [f"<p class='headline'>{len(summary.configs)} configs x {len(summary.roles)} roles "
           f"({summary.rows} orientation rows){took}; orientations: mean {score}, a change = a move "
           f"> {summary.atol:g}; causal value graph: "
           + (f"<b>{summary.pc_edges} PC edges</b> ({esc(summary.pc_rows)})" if summary.pc_edges is not None
              else f"not computed ({esc(summary.skipped.get('graph', ''))})") + ".</p>"]
    rows = []
    for method in FIGURE4_METHODS:
        nums = summary.figure4.get(method, {})
        if "expected" not in nums:
            rows.append(f"<tr><td>{method}</td><td colspan='4' class='skipped'>not computed: "
                        f"{esc(summary.skipped.get(method, 'no units'))}</td></tr>")
            continue
        cells = []
        for kind in ("expected", "unexpected", "n_steered_values"):
            e = nums.get(kind)
            if e is None:
                cells += ["", ""]
                continue
            digits = 1 if kind == "n_steered_values" else 2
            paper = " / ".join(f"{e.paper[m]:.{digits}f}" for m in ("Gemma-2B-IT", "Llama3-8B-IT") if m in e.paper)
            cells += [esc(e.text(digits)), esc(paper)]
        rows.append(f"<tr><td>{method} ({nums['expected'].n_units} units)</td>"
                    + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    out.append("<table class='tbl' id='table-headline'><tr><th>Figure 4 (Kang et al.)</th><th>expected (ours)</th>"
               "<th>paper Gemma / Llama</th><th>unexpected (ours)</th><th>paper Gemma / Llama</th>"
               "<th>values changed per unit</th><th>paper Gemma / Llama</th></tr>" + "".join(rows) + "</table>")
    out.append("<p class='note'>Expected = probability that steering a value changes its descendants in our PC graph, "
               "unexpected = its other values (Kang et al. §2.3); 95% bootstrap CIs resample roles (features for SAE "
               "steering of r0 alone).</p>")
    if summary.strongest_config:
        shift = " ".join(f"<span class='shift'>{esc(v)} <b>{s:+.2f}</b></span>"
                         for v, s in summary.strongest_shift.items())
        out.append(f"<p>Strongest config <b>{esc(summary.strongest_config)}</b>: per-value orientation shift vs "
                   f"unsteered (mean over roles): {shift}</p>")
    return "\n".join(out)


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
    score: str = "hard"


@dataclass
class Computed:
    """What the steps computed, for the summary."""

    configs: dict[str, ConfigInfo] = field(default_factory=dict)
    per_config: pd.DataFrame | None = None
    pc_rows: str = ""
    pc_edges: int | None = None
    effects: EffectResults | None = None
    skipped: dict[str, str] = field(default_factory=dict)


def build_report(runs: list[str], out: Path, orientations: list[str] | None = None, train_csv: list[str] | None = None,
                 test_csv: list[str] | None = None, mode: str | None = None, references: list[str] | None = None,
                 use_judge: bool = False, alpha: float = 0.05, indep_test: str = "fisherz",
                 n_boot: int = 1000, seed: int = 0, rules: EffectRules = PAPER_TEXT,
                 sensitivity: bool = False, progress: bool = True, score: str = "hard",
                 allow_mixed_models: bool = False) -> Report:
    opts = ReportOptions(orientations, train_csv, test_csv, mode, references, use_judge, alpha, indep_test,
                         n_boot, seed, rules, sensitivity, score)
    rep = Report(out=out)
    done = Computed()
    out.mkdir(parents=True, exist_ok=True)
    steps = tqdm(total=7, desc="report sections", unit="step", leave=False, disable=not progress)
    samples = _runs_step(rep, runs, done, allow_mixed_models)
    steps.update()
    tables = _orientations_step(rep, samples, opts)
    if tables is None:
        rep.note("no orientations: pass RUN_DIRs with logged ValueBench samples or --orientations CSV.")
        return _finish(rep, steps, None, done, opts)
    steps.update()
    _shifts_step(rep, tables, done, opts.rules.atol)
    steps.update()
    graphs = _graphs_step(rep, tables, opts, done)
    steps.update()
    if graphs:
        _effects_step(rep, tables, graphs, opts, done)
    else:
        for method in FIGURE4_METHODS:
            done.skipped[method] = "needs a value graph"
        rep.skip("steering_effects", "Steering effects along causal relations (Kang et al. §2.3, Figure 4)",
                 "there is no value graph to measure along", FIX["graph"], top=True)
    steps.update()
    _sae_step(rep, tables, opts.rules.atol)
    steps.update()
    if opts.use_judge and samples is not None:
        _table2_step(rep, samples)
    else:
        rep.skip("thought_answer_inconsistency", "Table 2: thought/answer inconsistency (Kang et al. §3.3)",
                 "it needs the configured judge" + ("" if opts.use_judge else " (--judge was not given)"))
    return _finish(rep, steps, tables, done, opts)


def _runs_step(rep: Report, runs: list[str], done: Computed, allow_mixed_models: bool = False) -> pd.DataFrame | None:
    """1. The runs, their leaderboard and per-value orientations; the logged ValueBench samples (None: none)."""
    if not runs:
        return None
    found = find_runs(runs)
    check_one_model(found, allow_mixed_models)
    for run in found:
        if run.steering is not None:
            feature = run.feature if run.feature is not None else (run.steering.get("meta") or {}).get("key")
            done.configs[run.config_id] = ConfigInfo(run.steer_kind, None if feature is None else str(feature),
                                                     steer_amount(run.steering))
    rep.table("runs", "Runs", run_info(found))
    board = leaderboard(found)
    view = orientation_view(board)
    if not view.empty:
        rep.table("leaderboard_orientations", "Per-value orientation of each run", view,
                  "mean item score in [-1, 1] (results JSON); Δ = last run − first run")
    rep.table("leaderboard", "All metrics of each run", board)
    samples = load_samples(found, require=False, progress=False,  # the report's own bar counts its steps
                           allow_mixed_models=allow_mixed_models)
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
        full = orientation_table(samples, mode=pick_mode(samples, opts.mode), score=opts.score)
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
    what = ("soft item score agreement x (p(yes) - p(no)) (ours; --score soft)" if opts.score == "soft"
            else "item score +1/-1/0")
    rep.table("orientations", "Orientation table (wide format: steer_dim, player_name, values)", full,
              f"s_t[v] = mean {what} per (config, role); also written as {path.name} (Kang et al.'s format)")
    if opts.score == "soft" or opts.rules.atol > 1e-6:
        rep.note(f"orientations from the {what}; a value counts as changed when it moves by more than "
                 f"{opts.rules.atol:g} (--atol).")
    return Orientations(full, train, test)


def _shifts_step(rep: Report, tables: Orientations, done: Computed, atol: float) -> None:
    """Each config's orientation shift vs the same role unsteered: table, bars, dose-response."""
    shifts = orientation_shifts(tables.full, atol)
    if shifts.empty:
        reason = "no steered config has an unsteered row of the same role to compare with"
        done.skipped["shift"] = reason
        rep.skip("orientation_bars", "Orientation shift per value", reason, FIX["sae"], top=True)
        return
    per = config_shifts(shifts)
    done.per_config = per
    rep.table("config_shifts", "Orientation shift of each config", per,
              "shift = steered − unsteered orientation of the same role, mean over roles; values_changed = "
              f"values that moved by more than {atol:g}, mean per role")
    order = per.sort_values("mean_abs_shift", ascending=False, kind="stable")["steer_dim"].tolist()
    rep.image("Per-value orientation, unsteered vs each config", plot_orientation_bars(shifts, order, rep.out / "plots"),
              "configs in order of their mean |shift| (at most 8 drawn)", top=True)
    points = dose_response(per, done.configs)
    if points.empty:
        rep.skip("dose_response", "Dose-response", "no direction was run at two or more strengths", top=True)
    else:
        rep.table("dose_response_points", "Dose-response points", points, intro=INTRO["dose_response"])
        rep.image("Dose-response: orientation shift against strength", plot_dose_response(points, rep.out / "plots"),
                  top=True)


def _graphs_step(rep: Report, tables: Orientations, opts: ReportOptions, done: Computed) -> dict[str, ValueGraph]:
    """2. Our PC graph (train roles when there are enough, else all rows) and the reference graphs."""
    graph_table = tables.train if tables.train is not None and len(tables.train) >= 5 else tables.full
    graphs: dict[str, ValueGraph] = {}
    try:
        graphs["ours"] = _our_graph(rep, graph_table, graph_table is tables.train, opts, done)
    except ValueError as exc:
        done.skipped["graph"] = str(exc)
        rep.skip("graph_edges", "Our value causal graph (PC)", str(exc), FIX["graph"], top=True)
    for spec in ["valuebench"] + list(opts.references or []) + (["judge"] if opts.use_judge else []):
        try:
            name, ref = load_reference(spec)
            graphs[name] = ref
        except (ValueError, FileNotFoundError) as exc:
            rep.note(f"reference graph {spec!r} skipped: {exc}")
    if graphs:
        rep.image("Value graphs (transitive reductions)", plot_graphs(graphs, rep.out / "plots", "graphs"),
                  "ours (PC) beside the reference graphs; metrics use the full graphs", top=True)
    return graphs


def _our_graph(rep: Report, table: pd.DataFrame, on_train: bool, opts: ReportOptions, done: Computed) -> ValueGraph:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows, which = pc_rows(table, mode=opts.rules.pc_rows, features=opts.rules.features)
        ours = learn_graph(rows, alpha=opts.alpha, indep_test=opts.indep_test, undirected=opts.rules.undirected)
    for w in caught:
        rep.note(f"graph: {w.message}")
    done.pc_rows = f"{which}, {'train roles' if on_train else 'all roles'}"
    done.pc_edges = len(ours.edges)
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


def _effects_step(rep: Report, tables: Orientations, graphs: dict[str, ValueGraph], opts: ReportOptions,
                  done: Computed) -> None:
    """3. §2.3 steering effects on the test roles (all roles when there is no test split)."""
    eval_table = tables.test if tables.test is not None else tables.full
    res = steering_effects(eval_table, graphs, n_boot=opts.n_boot, seed=opts.seed, progress=False, rules=opts.rules,
                           fallback=tables.train if eval_table is tables.test else None)
    done.effects = res
    measured = {m.split("[")[0].split(" ")[0] for m in res.summary.get("method", pd.Series(dtype=str))}
    for n in res.notes:
        method = n.split(" ")[0]
        if method in FIGURE4_METHODS and "skipped:" in n and method not in measured:
            reason = n.split("skipped:", 1)[1].strip()
            done.skipped[method] = reason
            rep.skip(method, f"{'Role' if method == 'role' else 'SAE'} steering metrics (Kang et al. Figure 4)", reason)
        else:
            rep.note(n)
    if res.summary.empty:
        return
    rep.table("steering_effects", "Steering effects along causal relations (Kang et al. §2.3, Figure 4)",
              res.summary, "estimate with 95% bootstrap CI (resampling roles); paper columns: reference = "
              "GPT-4o Template 5 graph; rows graph='-' = average number of steered values per unit")
    rep.table("steering_effects_per_value", "Expected / unexpected change per steered value", res.per_value)
    for method, table in res.c_tables.items():
        rep.table(f"c_matrix_{method.replace('[', '_').replace(']', '')}", f"c(v', v) for {method} steering",
                  table, "row = steered value v, column = v'", intro=INTRO["c_matrix"])
    rep.image("Expected vs unexpected change (Figure 4 style)",
              plot_expected_unexpected(res.summary[res.summary["graph"] != "-"], rep.out / "plots"), top=True)
    if opts.sensitivity:
        sensitivity_section(rep, eval_table, graphs, opts.rules, opts.n_boot, opts.seed)


def _sae_step(rep: Report, tables: Orientations, atol: float) -> None:
    """4. The SAE table (train vs test), noise ratio, mean similarity and Table 3."""
    sae_train = tables.train if tables.train is not None else tables.full
    sae_test = tables.test if tables.train is not None else None
    title = "SAE steering table (Kang et al. Table 1/4/5, counts of roles)"
    if not (sae_train["steer_dim"].fillna("") != "").any():
        rep.skip("sae_table", title, "there are no steered configs in the orientations", FIX["sae"])
        return
    try:
        table = sae_table(sae_train, sae_test, atol)
        noise = noise_ratio(table)
        for model, paper in PAPER_NOISE_RATIO.items():
            noise[f"paper {model}"] = noise["value"].map(paper)
        rep.table("sae_table", title, table,
                  "stimulated / suppressed / maintained vs the same role unsteered; cosine = train vs test proportions")
        rep.table("noise_ratio", "Noise ratio per value", noise)
        rep.table("mean_similarity", "Mean train-test cosine per feature", mean_similarity(table))
        rep.image("SAE steering heatmap", plot_sae_heatmap(table, noise, rep.out / "plots"))
        t3 = sae_vs_explicit(sae_train, sae_test, atol) if sae_test is not None else pd.DataFrame()
        if t3.empty:
            rep.skip("sae_vs_explicit", "Table 3: SAE vs explicit value instruction (test roles)",
                     "it needs test roles under the SAE features and an explicit-instruction run"
                     if sae_test is None else "the test roles have no explicit-instruction configs")
        else:
            explicit = t3["method"].str.startswith("explicit").any()
            rep.table("sae_vs_explicit", "Table 3: SAE vs explicit value instruction (test roles)", t3,
                      "" if explicit else "no explicit-instruction run: SAE rows only. Fix: " + FIX["sae_vs_explicit"])
    except ValueError as exc:
        rep.skip("sae_table", title, str(exc), FIX["sae"])


def _table2_step(rep: Report, samples: pd.DataFrame) -> None:
    """5. Table 2 (thought/answer inconsistency; needs the configured judge)."""
    from analysis.consistency import inconsistency_table, judge_thoughts, with_paper
    from lm_eval_tasks.judge import require_judge

    title = "Table 2: thought/answer inconsistency (Kang et al. §3.3)"
    try:
        judge = require_judge("Table 2")
        cot = samples[samples["mode"] != "ll"]
        if cot.empty:
            raise ValueError("no CoT samples with a thought (valuebench_cot_* runs)")
        rep.table("thought_answer_inconsistency", title,
                  with_paper(inconsistency_table(cot, judge_thoughts(cot, judge))))
        from analysis.judge.measured import describe

        rep.note(f"Table 2 judged by {judge.judge_id}; its measured agreement (Template 1): "
                 f"{describe(judge.judge_id, 'thought_inclination')}.")
    except ValueError as exc:
        rep.skip("thought_answer_inconsistency", title, str(exc))


def sensitivity_section(rep: Report, table: pd.DataFrame, graphs: dict[str, ValueGraph], rules: EffectRules,
                        n_boot: int, seed: int) -> None:
    """How the Figure 4 numbers move over every admissible baseline / SAE role (analysis.sensitivity)."""
    from analysis.sensitivity import plot_sensitivity, sensitivity

    title = "Sensitivity of the Figure 4 numbers to the baseline role and the SAE role"
    try:
        res = sensitivity(table, graphs, rules, n_boot=n_boot, seed=seed)
    except ValueError as exc:
        rep.skip("sensitivity", title, str(exc), "")
        return
    marks = ", ".join(dict.fromkeys(res.marks["mark"])) or "none"
    rep.table("sensitivity", title, res.summary,
              f"min / median / max over every admissible choice; marked: {marks} (95% bootstrap CIs)")
    rep.table("sensitivity_choices", "Figure 4 numbers for each choice", res.choices, intro=INTRO["sensitivity"])
    rep.image("Sensitivity: distribution over choices", plot_sensitivity(res, rep.out / "plots"),
              "histograms over choices; lines: the marked choices", intro=INTRO["sensitivity"])


def _summary(rep: Report, tables: Orientations, done: Computed, opts: ReportOptions) -> RunSummary:
    full = tables.full
    dims = full["steer_dim"].fillna("").astype(str)
    present = list(dict.fromkeys(dims))
    ordered = [""] * ("" in present) + [c for c in done.configs if c in present]  # the runs' (sweep's) order
    configs = ["unsteered" if d == "" else d for d in ordered + [d for d in present if d not in ordered]]
    roles = list(dict.fromkeys(full.get("role_id", full["player_name"]).astype(str)))
    summary = RunSummary(configs=configs, roles=roles, rows=len(full), pc_edges=done.pc_edges, pc_rows=done.pc_rows,
                         skipped=dict(done.skipped), score=opts.score, atol=opts.rules.atol)
    per = done.per_config
    best = strongest_config(per) if per is not None else None
    if best is not None:
        row = per[per["steer_dim"] == best].iloc[0]
        summary.strongest_config = best
        summary.strongest_shift = {c.removeprefix("shift "): round(float(row[c]), 4) for c in per.columns
                                   if c.startswith("shift ") and pd.notna(row[c])}
        summary.strongest_values_changed = round(float(row["values_changed"]), 3)
    if done.effects is not None:
        summary.figure4 = figure4_numbers(done.effects.summary)
    for method in FIGURE4_METHODS:
        if "expected" not in summary.figure4.get(method, {}) and method not in summary.skipped:
            summary.skipped[method] = ("our value graph was not computed" if done.pc_edges is None
                                       else "no unit changed a value with descendants in our graph")
    summary.report = str(rep.out / "report.html")
    return summary


def _finish(rep: Report, steps: tqdm, tables: Orientations | None, done: Computed, opts: ReportOptions) -> Report:
    steps.update(steps.total - steps.n)
    steps.close()
    if tables is not None:
        rep.summary = _summary(rep, tables, done, opts)
        rep.summary.write(rep.out / "summary.json")
    rep.write("Value steering analysis")
    return rep
