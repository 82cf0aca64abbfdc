"""Kang et al. exactly (issue 15): every choice behind §2.3 / Figure 4 on tiny tables worked out by hand,
the kang2025 preset == its options one by one, PC rows, and the authors' released table2 reproduced."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import cli
from analysis.causal import ValueGraph, learn_graph, pc_rows
from analysis.effect_rules import KANG2025_DATA, PRESETS, EffectRules, read_features
from analysis.effects import learn_or_load
from analysis.metrics import expected_unexpected, role_changes, sae_changes, summary_stats
from analysis.orientations import read_orientation_csv
from analysis.report import Report, sensitivity_section
from analysis.sensitivity import sensitivity
from tests.analysis_synthetic import VALUES, gaussian_table, random_dag

E, S, C, P = "Empathy", "Social", "Economic", "Political"


def _rows(dim: str, rows: dict[str, tuple[float, ...]], cols: tuple[str, ...] = (E, S, C)) -> list[dict]:
    return [{"steer_dim": dim, "player_name": name, **dict(zip(cols, vals, strict=True))} for name, vals in rows.items()]


# Unsteered roles in file order: r0, then ann (the first named role), bob, cat, dan.
ROLES = pd.DataFrame(_rows("", {"": (0, 0, 0), "ann": (1, 0, 0), "bob": (1, 1, 0), "cat": (0, 1, 1), "dan": (1, 1, 1)}))
TWO_CYCLE = ValueGraph(nodes=[E, S, C], edges=[(E, S), (S, E)])  # Economic: no descendants


def _per(table, baseline, graph, unexpected="non-descendants", values=(E, S, C)):
    data = role_changes(table, baseline)
    assert data.values == list(values)
    return expected_unexpected(data.changed, data.values, graph, unexpected).set_index("value"), data


def test_baseline_first_named_role_two_cycle_and_no_descendants():
    per, data = _per(ROLES, "first", TWO_CYCLE)
    # baseline ann = (1,0,0); units bob, cat, dan (r0 is never a unit): bob changes S; cat E,S,C; dan S,C
    assert data.units == ["bob", "cat", "dan"]
    assert per.loc[E, "expected"] == 1 and per.loc[E, "unexpected"] == 1  # U_E = {cat}: f(S|E) = f(C|E) = 1
    assert per.loc[S, "expected"] == pytest.approx(1 / 3)  # U_S = {bob,cat,dan}: f(E|S) = 1/3 (2-cycle: E is S's descendant)
    assert per.loc[S, "unexpected"] == pytest.approx(2 / 3)  # f(C|S) = 2/3
    assert math.isnan(per.loc[C, "expected"])  # Economic has no descendants
    assert per.loc[C, "unexpected"] == pytest.approx(3 / 4)  # U_C = {cat,dan}: (f(E|C)=1/2 + f(S|C)=1) / 2
    stats = summary_stats(data.changed, data.values, {"g": TWO_CYCLE})
    assert stats[("g", "expected")] == pytest.approx(2 / 3)  # nanmean(1, 1/3)
    assert stats[("g", "unexpected")] == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)


def test_baseline_r0_and_named():
    per, data = _per(ROLES, "r0", TWO_CYCLE)
    # baseline r0 = (0,0,0); units ann {E}, bob {E,S}, cat {S,C}, dan {E,S,C}
    assert data.units == ["ann", "bob", "cat", "dan"]
    assert per.loc[E, "expected"] == pytest.approx(2 / 3) and per.loc[E, "unexpected"] == pytest.approx(1 / 3)
    assert per.loc[S, "expected"] == pytest.approx(2 / 3) and per.loc[S, "unexpected"] == pytest.approx(2 / 3)
    assert per.loc[C, "unexpected"] == pytest.approx(3 / 4)
    per_bob, data = _per(ROLES, "bob", TWO_CYCLE)  # bob = (1,1,0): ann {S}, cat {E,C}, dan {C}
    assert data.units == ["ann", "cat", "dan"]
    assert per_bob.loc[S, "expected"] == 0 and per_bob.loc[S, "unexpected"] == 0  # U_S = {ann}
    assert per_bob.loc[C, "unexpected"] == pytest.approx((1 / 2 + 0) / 2)  # U_C = {cat, dan}


def test_nan_cell_and_empty_unit_set():
    t = pd.DataFrame(_rows("", {"": (0, 0, 0, 0), "ann": (1, 0, 0, 0), "bob": (1, 1, 0, 0), "cat": (0, 1, np.nan, 0),
                                "dan": (1, 1, 1, 0)}, (E, S, C, P)))
    graph = ValueGraph(nodes=[E, S, C, P], edges=[(E, S), (S, E)])
    per, _ = _per(t, "first", graph, values=(E, S, C, P))
    # units bob {S}, cat {E,S; C unknown}, dan {S,C}; nobody changes Political (U_P empty)
    assert per.loc[E, "expected"] == 1  # f(S|E) = 1 (U_E = {cat})
    assert per.loc[E, "unexpected"] == 0  # f(C|E) undefined (cat's C is NaN) -> left out; f(P|E) = 0
    assert per.loc[S, "expected"] == pytest.approx(1 / 3)
    assert per.loc[S, "unexpected"] == pytest.approx((1 / 2 + 0) / 2)  # f(C|S) over bob, dan = 1/2; f(P|S) = 0
    assert per.loc[C, "unexpected"] == pytest.approx(1 / 3)  # U_C = {dan}: f(E|C)=0, f(S|C)=1, f(P|C)=0
    assert math.isnan(per.loc[P, "expected"]) and math.isnan(per.loc[P, "unexpected"])


def test_unexpected_unrelated_leaves_out_ancestors():
    chain = ValueGraph(nodes=[E, S, C], edges=[(E, S), (S, C)])
    non, _ = _per(ROLES, "first", chain)
    unrel, _ = _per(ROLES, "first", chain, unexpected="unrelated")
    assert non.loc[S, "unexpected"] == pytest.approx(1 / 3)  # non-descendants of S: {E} (its ancestor)
    assert math.isnan(unrel.loc[S, "unexpected"])  # unrelated to S: nothing
    assert non.loc[C, "unexpected"] == pytest.approx(3 / 4) and math.isnan(unrel.loc[C, "unexpected"])
    assert non.loc[E, "expected"] == unrel.loc[E, "expected"] == pytest.approx((1 + 1) / 2)  # D(E) = {S, C}


SAE = pd.DataFrame(_rows("", {"": (0, 0, 0), "ann": (1, 0, 0), "bob": (1, 1, 0)})
                   + _rows("f1", {"": (1, 0, 0), "ann": (1, 1, 0), "bob": (1, 1, 0)})
                   + _rows("f2", {"": (1, 1, 0), "ann": (0, 0, 0), "bob": (0, 1, 0)})
                   + _rows("f3", {"": (0, 0, 1), "ann": (1, 0, 1), "bob": (1, 1, 1)}))
E_TO_S = ValueGraph(nodes=[E, S, C], edges=[(E, S)])


def test_sae_role_r0_named_all_and_features():
    r0 = sae_changes(SAE, "r0")  # f1 {E}, f2 {E,S}, f3 {C}
    per = expected_unexpected(r0.changed, r0.values, E_TO_S).set_index("value")
    assert per.loc[E, "expected"] == 0.5 and per.loc[E, "unexpected"] == 0  # U_E={f1,f2}: f(S|E)=1/2, f(C|E)=0
    assert math.isnan(per.loc[S, "expected"]) and per.loc[S, "unexpected"] == 0.5  # U_S={f2}: f(E|S)=1, f(C|S)=0
    assert summary_stats(r0.changed, r0.values, {"g": E_TO_S})[("-", "n_steered_values")] == pytest.approx(4 / 3)
    ann = sae_changes(SAE, "ann", configs=("f1", "f2"))  # f1@ann {S}, f2@ann {E}
    assert ann.units == ["f1@ann", "f2@ann"]
    per = expected_unexpected(ann.changed, ann.values, E_TO_S).set_index("value")
    assert per.loc[E, "expected"] == 0 and per.loc[S, "unexpected"] == 0
    assert math.isnan(per.loc[C, "expected"]) and math.isnan(per.loc[C, "unexpected"])  # U_C empty
    every = sae_changes(SAE, "all")  # 9 units; U_E = {f1@r0, f2@r0, f2@ann, f2@bob}, only f2@r0 changes S
    assert len(every.units) == 9
    assert expected_unexpected(every.changed, every.values, E_TO_S).set_index("value").loc[E, "expected"] == 0.25
    with pytest.raises(ValueError, match="not steer_dims"):
        sae_changes(SAE, "ann", configs=("f9",))


def test_exact_change_threshold():
    t = pd.DataFrame(_rows("", {"ann": (0.5, 0, 0), "bob": (0.5 + 1e-12, 1, 0)}))
    assert role_changes(t, "first").changed[0].tolist() == [0, 1, 0]  # default atol 1e-9
    assert role_changes(t, "first", atol=0.0).changed[0].tolist() == [1, 1, 0]  # kang2025: exactly != 0


def test_undirected_both_keeps_both_directions():
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    y = x + 0.5 * rng.normal(size=400)
    z = y + 0.5 * rng.normal(size=400)  # a chain: PC leaves x - y - z undirected (no v-structure)
    t = pd.DataFrame({"steer_dim": "f", "player_name": "r", E: x / 8, S: y / 8, C: z / 8})
    orient = learn_graph(t)
    both = learn_graph(t, undirected="both")
    assert len(orient.edges) == 2 and not orient.pc_directed
    assert sorted(both.edges) == sorted([(E, S), (S, E), (S, C), (C, S)])


def _kang_tables(tmp_path: Path) -> dict[str, Path]:
    """Train: 12 roles x (unsteered + 4 features); test: 6 roles (r0 + 5 named) x (unsteered + 4 features)."""
    rng = np.random.default_rng(3)
    dag = random_dag(3, p=0.2)

    def table(n_roles: int, names: list[str], seed: int) -> pd.DataFrame:
        t = gaussian_table(dag, n=n_roles * 5, seed=seed)
        t = (t[VALUES] * 6).round() / 6  # item-score-like fractions: exact changes happen
        t.insert(0, "player_name", [names[i % n_roles] for i in range(len(t))])
        t.insert(0, "steer_dim", [["", "11", "22", "33", "44"][i // n_roles] for i in range(len(t))])
        return t

    train = table(12, [""] + [f"train{i}" for i in range(11)], 1)
    test = table(6, ["", "Ann Lee", "Bo Chan", "Cy Diaz", "Di Eng", "Ed Fox"], 2)
    test.loc[rng.random(len(test)) < 0.5, VALUES[0]] += 1 / 6  # more changes for the SAE units
    test[VALUES] = test[VALUES].clip(-1, 1)
    paths = {"train": tmp_path / "train.csv", "test": tmp_path / "test.csv", "features": tmp_path / "f.txt"}
    train.to_csv(paths["train"], index=False)
    test.to_csv(paths["test"], index=False)
    paths["features"].write_text("11\n33\n44\n")
    return paths


def test_preset_equals_options_one_by_one(tmp_path, capsys):
    p = _kang_tables(tmp_path)
    common = ["metrics", "--orientations", str(p["test"]), "--train", str(p["train"]), "--features", str(p["features"]),
              "--sae-role", "Bo Chan", "--reference", "valuebench", "--bootstrap", "0"]
    assert cli.main(common + ["--preset", "kang2025", "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "mean_scorechange__prompt_ours_expected" in out and "0.690" in out  # the paper's numbers beside ours
    assert cli.main(common + ["--baseline-role", "first", "--pc-rows", "unsteered+features", "--undirected", "both",
                              "--unexpected", "non-descendants", "--atol", "0", "--out", str(tmp_path / "b")]) == 0
    a = pd.read_csv(tmp_path / "a" / "kang_table2.csv", index_col=0)
    b = pd.read_csv(tmp_path / "b" / "kang_table2.csv", index_col=0)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.index) == [f"mean_scorechange__{m}_{g}_{k}" for m in ("prompt", "sae") for g in ("ours", "refs")
                             for k in ("expected", "unexpected")]
    assert list(a.columns) == VALUES and np.isfinite(a.to_numpy()).any()
    # the paper's text (our default) is another answer on the same tables: r0 baseline, r0 under the features
    assert cli.main(common[:-6] + ["--reference", "valuebench", "--bootstrap", "0", "--out", str(tmp_path / "c")]) == 0
    c = pd.read_csv(tmp_path / "c" / "kang_table2.csv", index_col=0)
    assert not np.allclose(a.fillna(-1).to_numpy(), c.fillna(-1).to_numpy())


def test_preset_graph_uses_exactly_the_selected_rows(tmp_path, capsys):
    p = _kang_tables(tmp_path)
    train = pd.read_csv(p["train"], dtype={"steer_dim": str}, keep_default_na=False)
    feats = read_features(p["features"])
    table = read_orientation_csv(p["train"])
    rows, which = pc_rows(table, mode="unsteered+features", features=feats)
    assert len(rows) == 12 * 4 == int(train["steer_dim"].isin(["", "11", "33", "44"]).sum())
    assert set(rows["steer_dim"]) == {"", "11", "33", "44"} and "48 rows" in which
    assert len(pc_rows(table, mode="steered", features=feats)[0]) == 36  # only the kept features' rows
    assert len(pc_rows(table)[0]) == 48  # the paper's text: every steered row (4 features x 12 roles)
    assert cli.main(["graph", "--orientations", str(p["train"]), "--preset", "kang2025", "--features",
                     str(p["features"]), "--out", str(tmp_path / "g")]) == 0
    graph = json.loads((tmp_path / "g" / "graph.json").read_text())
    assert graph["params"]["rows"] == 48 and "unsteered or under one of the 3 features" in graph["params"]["rows_used"]
    # the graph metrics --preset learns from --train is the same graph
    ours, _ = learn_or_load(table, table, replace(PRESETS["kang2025"], features=feats, sae_role="x"))
    assert sorted(map(tuple, graph["edges"])) == ours.edges


def test_preset_errors_are_one_sentence(tmp_path, capsys):
    p = _kang_tables(tmp_path)
    assert cli.main(["metrics", "--orientations", str(p["test"]), "--preset", "kang2025", "--features",
                     str(p["features"])]) == 2
    assert "--preset kang2025 needs --sae-role NAME" in capsys.readouterr().err
    assert cli.main(["metrics", "--orientations", str(p["test"]), "--preset", "kang2025", "--sae-role", "Ann Lee"]) == 2
    assert "needs --features FILE" in capsys.readouterr().err
    assert cli.main(["metrics", "--orientations", str(p["test"]), "--baseline-role", "Nobody", "--bootstrap", "0"]) == 2
    assert "--baseline-role 'Nobody' is not a role of the orientation table" in capsys.readouterr().err
    assert cli.main(["metrics", "--orientations", str(p["test"]), "--sae-role", "Bo Chen", "--bootstrap", "0"]) == 2
    assert "a role it has: 'Ann Lee', 'Bo Chan'" in capsys.readouterr().err


def test_sensitivity_marks_and_distribution(tmp_path):
    per_choice = sensitivity(ROLES, {"g": TWO_CYCLE}, EffectRules(baseline_role="first"), n_boot=20)
    role = per_choice.choices[per_choice.choices["method"] == "role"].set_index("choice")
    assert list(role.index) == ["r0", "ann", "bob", "cat", "dan"]  # every unsteered role as the baseline
    assert role.loc["ann", "expected"] == pytest.approx(2 / 3)  # = test_baseline_first_named_role...
    assert role.loc["r0", "unexpected"] == pytest.approx((1 / 3 + 2 / 3 + 3 / 4) / 3)
    summ = per_choice.summary.set_index(["method", "varies", "graph", "kind"])
    row = summ.loc[("role", "baseline role", "g", "expected")]
    assert row["n_choices"] == 5 and row["min"] == role["expected"].min() and row["max"] == role["expected"].max()
    assert row["default (paper text)"] == pytest.approx(2 / 3)  # r0 baseline (test_baseline_r0_and_named)
    assert row["these options"] == pytest.approx(2 / 3)  # ann, the first named role
    assert row["share expected > unexpected"] == (role["expected"] > role["unexpected"]).mean()
    subsets = sensitivity(SAE, {"g": E_TO_S}, EffectRules(sae_role="ann"), n_boot=0, subsets=2).choices
    assert set(subsets["varies"]) == {"baseline role", "SAE role", "2 of 3 features"}
    assert len(subsets[subsets["varies"] == "2 of 3 features"]) == 2


DATA = KANG2025_DATA


@pytest.mark.parametrize("model,paper", [("gemma", {"prompt_ours_expected": 0.69, "prompt_ours_unexpected": 0.56,
                                                   "sae_ours_expected": 0.57, "sae_ours_unexpected": 0.51}),
                                         ("llama", {"prompt_ours_expected": 0.57, "prompt_ours_unexpected": 0.47,
                                                   "sae_ours_expected": 0.74, "sae_ours_unexpected": 0.46})])
def test_released_table2_reproduced_cell_by_cell(tmp_path, model, paper):
    """The exact command on the shipped test rows (graphs: the descendant sets recovered from table2,
    analysis/data/kang2025/README.md) gives every one of the 8 x 17 cells of the authors' table2_<model>.csv."""
    assert cli.main(["metrics", "--orientations", str(DATA / f"ans_{model}_test_subset.csv"),
                     "--graph", str(DATA / f"{model}_ours_descendants.json"), "--preset", "kang2025",
                     "--features", str(DATA / f"features_{model}.txt"), "--sae-role", "Mary Holt",
                     "--reference", str(DATA / f"{model}_refs_descendants.json"), "--bootstrap", "0",
                     "--sensitivity", "--out", str(tmp_path)]) == 0
    ours = pd.read_csv(tmp_path / "kang_table2.csv", index_col=0)
    theirs = pd.read_csv(DATA / f"table2_{model}.csv", index_col=0)
    assert list(ours.index) == list(theirs.index) and list(ours.columns) == list(theirs.columns)
    assert (ours.isna() == theirs.isna()).all().all()
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=0, atol=1e-12, equal_nan=True)
    fig4 = pd.read_csv(tmp_path / "figure4.csv").set_index("row")["ours (mean over values)"].round(2)
    for row, number in paper.items():  # Figure 4 / §3.2.1, from the paper's text
        assert fig4[f"mean_scorechange__{row}"] == number
    sens = pd.read_csv(tmp_path / "sensitivity.csv").set_index(["method", "varies", "graph", "kind"])
    row = sens.loc[("role", "baseline role", "ours", "expected")]
    assert row["kang2025 preset"] == pytest.approx(paper["prompt_ours_expected"], abs=0.005)
    assert row["n_choices"] == len(set(pd.read_csv(DATA / f"ans_{model}_test_subset.csv", keep_default_na=False)
                                       ["player_name"]))  # r0 and every named test role as the baseline
    assert (tmp_path / "sensitivity.png").stat().st_size > 0


def test_report_sensitivity_section(tmp_path):
    rep = Report(out=tmp_path)
    sensitivity_section(rep, ROLES, {"g": TWO_CYCLE}, EffectRules(baseline_role="first"), n_boot=10, seed=0)
    titles = [s.title for s in rep.sections]
    assert titles[0] == "Sensitivity of the Figure 4 numbers to the baseline role and the SAE role"
    assert "default (paper text)" in rep.sections[0].html and "these options" in rep.sections[0].html
    assert (tmp_path / "tables" / "sensitivity.csv").is_file() and (tmp_path / "plots" / "sensitivity.png").is_file()


@pytest.mark.slow
def test_report_cli_has_a_sensitivity_section(tmp_path):
    p = _kang_tables(tmp_path)
    assert cli.main(["report", "--train", str(p["train"]), "--test", str(p["test"]), "--preset", "kang2025",
                     "--features", str(p["features"]), "--sae-role", "Bo Chan", "--bootstrap", "20",
                     "--sensitivity", "--out", str(tmp_path / "r")]) == 0
    page = (tmp_path / "r" / "report.html").read_text()
    assert "Sensitivity of the Figure 4 numbers" in page and "kang2025 preset" in page
    sens = pd.read_csv(tmp_path / "r" / "tables" / "sensitivity.csv")
    assert set(sens["varies"]) == {"baseline role", "SAE role"}
    assert (tmp_path / "r" / "plots" / "sensitivity.png").stat().st_size > 0
