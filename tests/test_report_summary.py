"""The report's summary, its collapsed sections and summary.json, on synthetic orientation tables drawn from a
known value DAG (analysis_synthetic): 12 roles (r0 + 11 named) x (unsteered + 4 configs), as a sweep writes."""

from __future__ import annotations

import html
import json
import re
import time

import numpy as np
import pandas as pd
import pytest
from analysis_synthetic import VALUES, discrete_table, random_dag

from analysis.cli import main
from analysis.shifts import (
    ConfigInfo,
    config_shifts,
    dose_response,
    orientation_shifts,
    strongest_config,
)

CONFIGS = ["", "sae-f1", "sae-f2", "sae-f3", "vec-yes-no"]


def _table(with_r0: bool = True) -> pd.DataFrame:
    roles = [""] + [f"Role {i}" for i in range(1, 12)]
    data = discrete_table(random_dag(3, p=0.25), n=len(roles) * len(CONFIGS), items=6, seed=1)
    data["steer_dim"] = [c for c in CONFIGS for _ in roles]
    data["player_name"] = roles * len(CONFIGS)
    return data if with_r0 else data[data["player_name"] != ""].reset_index(drop=True)


def _report(tmp_path, table: pd.DataFrame, capsys, *extra: str) -> tuple[str, dict, str]:
    csv = tmp_path / "orientations.csv"
    table.to_csv(csv, index=False)
    out = tmp_path / "report"
    assert main(["report", "--orientations", str(csv), "--out", str(out), "--bootstrap", "30", "--no-progress",
                 *extra]) == 0
    return (out / "report.html").read_text(), json.loads((out / "summary.json").read_text()), capsys.readouterr().out


def _summary_block(page: str) -> str:
    start = page.index("<section id='summary'>")
    return page[start: page.index("</section>", start)]


def test_summary_first_with_graph_figure4_and_shift(tmp_path, capsys):
    page, summary, printed = _report(tmp_path, _table(), capsys, "--job-started", str(time.time() - 5))
    # summary.json: the keys the main job promises
    assert summary["configs"] == ["unsteered"] + CONFIGS[1:] and len(summary["roles"]) == 12 and summary["rows"] == 60
    graph = json.loads((tmp_path / "report" / "graph.json").read_text())
    assert summary["pc_edges"] == len(graph["edges"]) > 0
    for method in ("role", "sae"):
        for kind in ("expected", "unexpected"):
            e = summary["figure4"][method][kind]
            assert 0 <= e["ci"][0] <= e["estimate"] <= e["ci"][1] <= 1, (method, kind, e)
    assert summary["figure4"]["role"]["expected"]["paper"] == {"Gemma-2B-IT": 0.69, "Llama3-8B-IT": 0.57}
    assert summary["figure4"]["sae"]["unexpected"]["paper"] == {"Gemma-2B-IT": 0.51, "Llama3-8B-IT": 0.46}
    assert summary["wall_seconds"] >= 5
    # the strongest config is the one with the largest mean |shift| vs the same role unsteered
    shifts = config_shifts(orientation_shifts(_table()))
    best = shifts.loc[shifts["mean_abs_shift"].idxmax()]
    assert summary["strongest_config"] == best["steer_dim"]
    assert summary["strongest_shift"]["Empathy"] == pytest.approx(best["shift Empathy"], abs=1e-4)
    assert set(summary["strongest_shift"]) == set(VALUES)
    # the page: summary before the contents, holding the headline table and the four summary figures
    assert page.index("<section id='summary'>") < page.index("<h2>Contents</h2>")
    top = _summary_block(page)
    assert "id='table-headline'" in top and f"<b>{summary['pc_edges']} PC edges</b>" in top
    for plot in ("graphs", "orientation_bars", "expected_unexpected"):
        assert f"id='plot-{plot}'" in top, plot
    assert "id='skip-dose_response'" in top and "Fix: run a direction at several strengths" in top
    # every detail section opens with its one line (what it shows, which paper table / figure)
    for title, following in re.findall(r"<h2 id='s\d+'>([^<]*)</h2>\n(<[^>]*>)", page):
        assert following == "<p class='intro'>", title
    assert "Kang et al. Table 1 (Gemma-2B-IT) and Tables 4/5" in page and "Figure 4" in page
    # uncomputable: one line with the reason and the fix, no empty table
    assert "id='skip-thought_answer_inconsistency'" in page and "pass --judge" in page
    # the console: the short summary
    assert f"causal value graph (PC): {summary['pc_edges']} edges" in printed
    assert f"strongest config: {summary['strongest_config']}" in printed
    e = summary["figure4"]["role"]["expected"]
    assert f"role  expected {e['estimate']:.2f} [{e['ci'][0]:.2f}, {e['ci'][1]:.2f}] (paper 0.69 / 0.57)" in printed


def test_without_r0_role_metrics_collapse_to_the_fix(tmp_path, capsys):
    page, summary, printed = _report(tmp_path, _table(with_r0=False), capsys, "--summary", str(tmp_path / "s.json"))
    assert summary["figure4"]["role"] == {"expected": None, "unexpected": None, "n_steered_values": None}
    assert "r0" in summary["skipped"]["role"]
    assert summary["figure4"]["sae"]["expected"]["estimate"] is not None  # every role vs itself unsteered
    assert json.loads((tmp_path / "s.json").read_text()) == summary
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert "Role steering metrics (Kang et al. Figure 4): not computed." in text
    assert "Fix: add r0, the empty role, and named roles: `--metadata '{\"roles\": [\"r0\"," in text
    assert "id='table-headline'" in page and "role</td><td colspan='4' class='skipped'>not computed" in page
    assert "role  not computed:" in printed and summary["wall_seconds"] is None


def test_no_steered_config_collapses_shift_and_sae(tmp_path, capsys):
    table = _table()
    page, summary, _ = _report(tmp_path, table[table["steer_dim"] == ""], capsys)
    assert summary["strongest_config"] is None and summary["configs"] == ["unsteered"]
    for key in ("orientation_bars", "sae_table"):
        assert f"id='skip-{key}'" in page, key
    assert "id='plot-orientation_bars'" not in page and "id='table-sae_table'" not in page


def _hand_table() -> pd.DataFrame:
    rows = []
    for dim, bump in (("", 0.0), ("sae-f7-s50", 0.25), ("sae-f7-s100", 0.5), ("vec-a", 1.0)):
        for role, base in (("", -0.5), ("Ann", 0.0)):
            row = {"steer_dim": dim, "player_name": role}
            row.update({v: base for v in VALUES})
            row["Empathy"] = base + bump  # only Empathy moves
            rows.append(row)
    return pd.DataFrame(rows)


def test_shifts_and_dose_response_by_hand(tmp_path):
    shifts = orientation_shifts(_hand_table())
    per = config_shifts(shifts)
    assert per["steer_dim"].tolist() == ["sae-f7-s50", "sae-f7-s100", "vec-a"]
    assert per["mean_abs_shift"].tolist() == pytest.approx([0.25 / 17, 0.5 / 17, 1 / 17])
    assert per["values_changed"].tolist() == [1.0, 1.0, 1.0] and per["shift Empathy"].tolist() == [0.25, 0.5, 1.0]
    assert per["shift Achievement"].abs().max() == 0 and strongest_config(per) == "vec-a"
    info = {"sae-f7-s50": ConfigInfo("sae_feature", "7", 50.0), "sae-f7-s100": ConfigInfo("sae_feature", "7", 100.0),
            "vec-a": ConfigInfo("vector", "a", 4.0)}
    points = dose_response(per, info)  # vec-a ran at one strength only: no series
    assert points["series"].unique().tolist() == ["feature 7"]
    assert points["amount"].tolist() == [0.0, 50.0, 100.0]
    assert points["mean_abs_shift"].tolist() == pytest.approx([0, 0.25 / 17, 0.5 / 17])
    assert dose_response(per, {"vec-a": info["vec-a"]}).empty
    from analysis.plots_orientation import plot_dose_response, plot_orientation_bars

    assert plot_dose_response(points, tmp_path)["png"].stat().st_size > 0
    assert plot_orientation_bars(shifts, per["steer_dim"].tolist(), tmp_path)["png"].stat().st_size > 0
    assert np.isclose(shifts.loc[shifts["steer_dim"] == "vec-a", "shift"].sum(), 2.0)
