"""Kang et al. §2.3 metrics, the SAE table and the noise ratio on tiny tables worked out by hand."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.causal import ValueGraph
from analysis.metrics import (
    bootstrap,
    c_matrix,
    expected_unexpected,
    role_changes,
    sae_changes,
    summary_stats,
)
from analysis.orientations import read_orientation_csv, write_orientation_csv
from analysis.sae_table import noise_ratio, sae_table, sae_vs_explicit

REPO = Path(__file__).resolve().parents[1]
E, S, C = "Empathy", "Social", "Economic"


def _rows(dim: str, rows: dict[str, tuple[float, float, float]]) -> list[dict]:
    return [{"steer_dim": dim, "player_name": name, E: e, S: s, C: c} for name, (e, s, c) in rows.items()]


# Unsteered roles. Against r0 = (0, 0, 0):
#   r1 changes Empathy, Social; r2 changes Empathy, Economic; r3 changes Social; r4 changes nothing.
ROLES = _rows("", {"": (0, 0, 0), "r1": (1, 1, 0), "r2": (1, 0, 0.5), "r3": (0, 1, 0), "r4": (0, 0, 0)})
# SAE features on r0: f1 changes Empathy; f2 changes Empathy and Social.
SAE = _rows("f1", {"": (0.5, 0, 0)}) + _rows("f2", {"": (0.5, -0.5, 0)})
TABLE = pd.DataFrame(ROLES + SAE)


def test_c_matrix_role_by_hand():
    data = role_changes(TABLE)
    assert data.values == [E, S, C]
    c = c_matrix(data.changed)  # c[j, i] = c(v_j, v_i)
    # steering Empathy: R≠(E) = {r1, r2}; r1 changes Social, r2 changes Economic
    assert c[1, 0] == 0.5 and c[2, 0] == 0.5 and c[0, 0] == 1
    # steering Social: R≠(S) = {r1, r3}; r1 changes Empathy, neither changes Economic
    assert c[0, 1] == 0.5 and c[2, 1] == 0
    # steering Economic: R≠(C) = {r2}; r2 changes Empathy, not Social
    assert c[0, 2] == 1 and c[1, 2] == 0


def test_expected_unexpected_by_hand():
    data = role_changes(TABLE)
    g = ValueGraph(nodes=[E, S, C], edges=[(E, S)])
    per = expected_unexpected(data.changed, data.values, g).set_index("value")
    assert per.loc[E, "expected"] == 0.5  # successor S: c(S, E) = 1/2
    assert per.loc[E, "unexpected"] == 0.5  # non-successor C: c(C, E) = 1/2
    assert math.isnan(per.loc[S, "expected"])  # Social has no successor
    assert per.loc[S, "unexpected"] == 0.25  # (c(E, S) + c(C, S)) / 2 = (1/2 + 0) / 2
    assert per.loc[C, "unexpected"] == 0.5  # (c(E, C) + c(S, C)) / 2 = (1 + 0) / 2
    stats = summary_stats(data.changed, data.values, {"g": g})
    assert stats[("g", "expected")] == 0.5
    assert stats[("g", "unexpected")] == pytest.approx(5 / 12)  # mean(1/2, 1/4, 1/2)
    assert stats[("-", "n_steered_values")] == 1.25  # (2 + 2 + 1 + 0) / 4 roles
    # successors are all descendants: in E -> S -> C, C is a successor of E
    chain = ValueGraph(nodes=[E, S, C], edges=[(E, S), (S, C)])
    stats = summary_stats(data.changed, data.values, {"chain": chain})
    assert stats[("chain", "expected")] == 0.25  # mean(E: (1/2 + 1/2) / 2, S: c(C, S) = 0)
    assert stats[("chain", "unexpected")] == 0.5  # mean(S: c(E, S) = 1/2, C: (1 + 0) / 2); E has none


def test_sae_c_and_steered_values_by_hand():
    data = sae_changes(TABLE, sae_role="r0")
    c = c_matrix(data.changed)
    assert c[1, 0] == 0.5  # F≠(E) = {f1, f2}; f2 changes Social
    assert c[0, 1] == 1.0  # F≠(S) = {f2}; f2 changes Empathy
    assert math.isnan(c[0, 2])  # no feature changes Economic
    assert summary_stats(data.changed, data.values, {})[("-", "n_steered_values")] == 1.5  # (1 + 2) / 2


def test_nan_orientation_is_left_out():
    rows = pd.DataFrame(_rows("", {"": (0, 0, 0), "r1": (1, 1, np.nan), "r2": (1, 0, 1)}))
    c = c_matrix(role_changes(rows).changed)
    assert c[2, 0] == 1.0  # c(C, E): r1's Economic is unknown, so only r2 counts: 1/1
    assert c[1, 0] == 0.5  # c(S, E): r1 yes, r2 no


def test_bootstrap_ci_brackets_estimate():
    data = role_changes(TABLE)
    g = ValueGraph(nodes=[E, S, C], edges=[(E, S)])
    res = bootstrap(data, {"g": g}, n_boot=200, seed=1).set_index(["graph", "kind"])
    row = res.loc[("-", "n_steered_values")]
    assert row["estimate"] == 1.25 and 0 <= row["ci_low"] <= 1.25 <= row["ci_high"] <= 2
    assert row["n_clusters"] == 4


def test_missing_r0_is_a_clear_error():
    no_r0 = TABLE[TABLE["player_name"] != ""]
    with pytest.raises(ValueError, match="no unsteered row for the empty role r0"):
        role_changes(no_r0)


# SAE table: 4 roles, unsteered and under features f1, f2, on train; 2 roles on test.
def _sae_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    train = pd.DataFrame(
        _rows("", {"a": (0, 0, 0), "b": (0, 0, 0), "c": (0, 0, 0), "d": (0, 0, 0)})
        # f1 on Empathy: a up, b up, c down, d same  -> 2 / 1 / 1
        + _rows("f1", {"a": (1, 0, 0), "b": (0.5, 0, 0), "c": (-1, 0, 0), "d": (0, 0, 0)})
        # f2 on Empathy: all up -> 4 / 0 / 0; on Social: all down -> 0 / 4 / 0
        + _rows("f2", {"a": (1, -1, 0), "b": (1, -1, 0), "c": (1, -1, 0), "d": (1, -1, 0)}))
    test = pd.DataFrame(
        _rows("", {"x": (0, 0, 0), "y": (0, 0, 0)})
        + _rows("f1", {"x": (1, 0, 0), "y": (0, 0, 0)})  # Empathy: 1 / 0 / 1
        + _rows("f2", {"x": (1, -1, 0), "y": (1, 0, 0)})  # Empathy 2/0/0; Social 0/1/1
        + _rows("explicit:inclined", {"x": (1, 1, 1), "y": (0, 0, -1)})
        + _rows("explicit:disinclined", {"x": (-1, -1, -1), "y": (-1, 0, 0)}))
    return train, test


def test_sae_table_and_noise_ratio_by_hand():
    train, test = _sae_tables()
    t = sae_table(train, test).set_index(["feature", "value"])
    assert t.loc[("f1", E), ["train_stimulated", "train_suppressed", "train_maintained"]].tolist() == [2, 1, 1]
    assert t.loc[("f1", E), ["test_stimulated", "test_suppressed", "test_maintained"]].tolist() == [1, 0, 1]
    # cosine((.5, .25, .25), (.5, 0, .5)) = .375 / (sqrt(.375) * sqrt(.5)) = sqrt(3) / 2
    assert t.loc[("f1", E), "cosine"] == pytest.approx(math.sqrt(3) / 2)
    assert t.loc[("f2", S), "cosine"] == pytest.approx(1 / math.sqrt(2))  # (0, 1, 0) vs (0, .5, .5)
    nr = noise_ratio(sae_table(train)).set_index("value")["noise_ratio"]
    assert nr[E] == 0.125  # mean(min(.5, .25), min(1, 0)) = mean(.25, 0)
    assert nr[S] == 0 and nr[C] == 0


def test_table3_sae_vs_explicit_by_hand():
    train, test = _sae_tables()
    t3 = sae_vs_explicit(train, test).set_index(["value", "method"])
    # Empathy: best positive feature f2 (stimulates 4/4 roles); on test f2 raises Empathy for x and y
    assert t3.loc[(E, "SAE +"), "config"] == "f2" and t3.loc[(E, "SAE +"), "positive"] == 1.0
    # best negative for Empathy: f1 (suppresses 1/4, f2 none); on test: x up, y same
    assert t3.loc[(E, "SAE -"), "config"] == "f1" and t3.loc[(E, "SAE -"), "negative"] == 0.0
    # explicit on Economic: inclined x up, y down -> 1/2 positive, 1/2 negative
    assert t3.loc[(C, "explicit inclined"), ["positive", "negative", "unchanged"]].tolist() == [0.5, 0.5, 0.0]
    assert t3.loc[(S, "explicit disinclined"), ["positive", "negative", "unchanged"]].tolist() == [0.0, 0.5, 0.5]


def test_wide_csv_roundtrip_and_kang_format(tmp_path):
    path = write_orientation_csv(TABLE, tmp_path / "t.csv")
    back = read_orientation_csv(path)
    assert back["player_name"].tolist() == TABLE["player_name"].tolist()
    assert back[E].tolist() == TABLE[E].tolist()
    kang = tmp_path / "kang.csv"  # float ids, blank r0, underscore names, an ignored column
    kang.write_text("steer_dim,player_name,positive_coping,empathy,note\n,,0.5,-0.25,x\n428.0,Ann,1,0,y\n")
    t = read_orientation_csv(kang)
    assert t["steer_dim"].tolist() == ["", "428"] and t["player_name"].tolist() == ["", "Ann"]
    assert t["Positive coping"].tolist() == [0.5, 1.0] and t["role_id"].tolist() == ["r0", "Ann"]
    bad = tmp_path / "bad.csv"
    bad.write_text("player_name,Empathy\nAnn,0\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['steer_dim'\]"):
        read_orientation_csv(bad)


def test_metrics_and_sae_table_cli(tmp_path):
    train, test = _sae_tables()
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    proc = subprocess.run([sys.executable, "-m", "analysis", "sae-table", "--train", str(tmp_path / "train.csv"),
                           "--test", str(tmp_path / "test.csv"), "--out", str(tmp_path / "s")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(tmp_path / "s" / "sae_table.csv")
    assert list(table.columns) == ["feature", "value", "train_stimulated", "train_suppressed", "train_maintained",
                                   "test_stimulated", "test_suppressed", "test_maintained", "cosine"]
    noise = pd.read_csv(tmp_path / "s" / "noise_ratio.csv")
    assert list(noise.columns[:2]) == ["value", "noise_ratio"]
    assert noise.set_index("value").loc[E, "noise_ratio"] == 0.125
    assert (tmp_path / "s" / "sae_heatmap.png").stat().st_size > 0
    TABLE.to_csv(tmp_path / "roles.csv", index=False)
    edges = tmp_path / "g.txt"
    edges.write_text("Empathy -> Social\n")
    proc = subprocess.run([sys.executable, "-m", "analysis", "metrics", "--orientations", str(tmp_path / "roles.csv"),
                           "--train", str(tmp_path / "roles.csv"), "--all-rows", "--reference", str(edges), "--bootstrap", "50",
                           "--out", str(tmp_path / "m")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    summary = pd.read_csv(tmp_path / "m" / "steering_effects.csv")
    row = summary[(summary["method"] == "role") & (summary["graph"] == "g") & (summary["kind"] == "unexpected")]
    assert row["estimate"].iloc[0] == pytest.approx(5 / 12)
    assert "paper Gemma-2B-IT" in summary.columns and "0.690" in proc.stdout


def test_logged_response_dict_is_parsed_even_with_bare_nan():
    from analysis.io import parse_response

    logged = "{'thought': 'a nan b', 'answer': 'no', 'label': 'no', 'judged_by': 'rules', 'p_yes_minus_p_no': nan}"
    assert parse_response(logged) == {"thought": "a nan b", "answer": "no", "label": "no", "judged_by": "rules",
                                      "p_yes_minus_p_no": None}
    assert parse_response({"label": "yes"}) == {"label": "yes"}
    assert parse_response("plain text") == {"answer": "plain text"}


def _results_dir(root: Path, name: str, acc: float, csr: float) -> Path:
    """A results JSON in lm-eval 0.4.13's layout (the keys the leaderboard reads)."""
    import json

    folder = root / name / "model"
    folder.mkdir(parents=True)
    results = {
        "results": {
            "mmlu_conva4": {"alias": "mmlu_conva4", "acc,none": acc, "acc_stderr,none": 0.1},
            "schwartz_dilemmas_power": {"alias": "power", "csr,judge": csr, "csr_stderr,judge": "N/A",
                                        "fr,judge": float("nan"), "n_scored_csr,judge": 3.0, "n_scored_fr,judge": 0.0},
        },
        "n-samples": {"schwartz_dilemmas_power": {"original": 4, "effective": 4}},
        "higher_is_better": {"mmlu_conva4": {"acc": True}},
        "config": {"model": "steered-hf", "model_args": {"pretrained": "tiny"}},
    }
    (folder / "results_2026-01-01T00-00-00.000000.json").write_text(json.dumps(results))
    return root / name


def test_leaderboard_and_check_on_csr_fr_acc(tmp_path, capsys):
    from analysis.cli import main
    from analysis.io import find_runs
    from analysis.leaderboard import run_metrics

    base = _results_dir(tmp_path, "base", acc=0.5, csr=0.75)
    metrics = run_metrics(find_runs([base])[0])
    assert metrics["mmlu_conva4/acc"] == 0.5 and metrics["schwartz_dilemmas_power/csr"] == 0.75
    assert metrics["schwartz_dilemmas_power/n_scored_csr"] == 3 and metrics["schwartz_dilemmas_power/n_total"] == 4
    assert math.isnan(metrics["schwartz_dilemmas_power/fr"])
    better = _results_dir(tmp_path, "better", acc=0.9, csr=0.75)  # acc up: never a regression
    assert main(["check", str(better), "--baseline", str(base), "--tolerance", "0.01"]) == 0
    worse = _results_dir(tmp_path, "worse", acc=0.4, csr=0.75)
    capsys.readouterr()
    assert main(["check", str(worse), "--baseline", str(base), "--tolerance", "0.01"]) == 1
    assert "REGRESSION mmlu_conva4/acc: dropped from 0.5 to 0.4" in capsys.readouterr().out
    assert main(["check", str(worse), "--baseline", str(base), "--tolerance", "0.01", "--tolerance", "acc=0.2"]) == 0
