"""`python -m analysis conva-table`: the five methods of §4.2-4.3, CSR/FR/MMLU from a leaderboard folder (hand-made
leaderboard.csv/runs.csv in the format `python -m analysis leaderboard --out` writes; expected values by hand).
Methods come from the steering files' `meta` (kind, gate) that `conva fit` writes, never from config names:
the names below are deliberately misleading."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from analysis.cli import main as analysis_main
from analysis.conva_table import METHODS, TableError, csr_by_value, method_table, read_leaderboard


def main(argv: list[str]) -> int:
    return analysis_main(["conva-table", *argv])


# as `analysis leaderboard` writes it: meta is the steering file's tags as JSON (CSV-quoted)
RUNS = """run,model,steering,kind,meta,hash,results
base,default,(unsteered),none,,,r1.json
ica,default,(unsteered),none,,,r2.json
000-caa-power,default,conva-power-x,caa,"{""kind"": ""caa"", ""value"": ""power""}",aa,r3.json
000-caa-self-direction,default,sd-1,caa,"{""kind"": ""caa"", ""value"": ""self-direction""}",ab,r4.json
001-conva-nogate-power,default,conva-power-gated,conva,"{""gate"": ""none"", ""kind"": ""conva"", ""value"": ""power""}",ac,r5.json
002-conva-power,default,conva-nogate-p,conva,"{""g0"": 0.08, ""gate"": ""probe"", ""kind"": ""conva"", ""value"": ""power""}",ad,r6.json
"""
COLS = "metric,base,ica,000-caa-power,000-caa-self-direction,001-conva-nogate-power,002-conva-power"
BOARD = f"""{COLS}
mmlu_conva4/acc,0.5,,0.4,0.3,0.2,0.5
mmlu_conva4_astronomy/acc,0.6,,0.4,0.3,0.2,0.6
schwartz_dilemmas_ica_power/csr,,1.0,,,,
schwartz_dilemmas_ica_power/fr,,0.5,,,,
schwartz_dilemmas_ica_power/n_scored_csr,,2,,,,
schwartz_dilemmas_ica_power/n_scored_fr,,2,,,,
schwartz_dilemmas_power/csr,0.25,,0.5,,1.0,0.0
schwartz_dilemmas_power/fr,1.0,,1.0,,0.5,1.0
schwartz_dilemmas_power/n_scored_csr,4,,2,,4,4
schwartz_dilemmas_power/n_scored_fr,4,,2,,4,4
schwartz_dilemmas_power/n_total,4,,4,,4,4
schwartz_dilemmas_self_direction/csr,1.0,,0.0,0.75,,
schwartz_dilemmas_self_direction/fr,,,0.0,1.0,,
schwartz_dilemmas_self_direction/n_scored_csr,2,,4,4,,
schwartz_dilemmas_self_direction/n_scored_fr,0,,4,4,,
"""


@pytest.fixture()
def board_dir(tmp_path: Path) -> Path:
    (tmp_path / "runs.csv").write_text(RUNS)
    (tmp_path / "leaderboard.csv").write_text(BOARD)
    return tmp_path


def test_method_table_pools_scored_replies(board_dir):
    board, runs = read_leaderboard(board_dir)
    t = method_table(board, runs).set_index("method")
    assert list(t.index) == list(METHODS)  # every method, the ones no run gives as a row with a note
    assert list(t.index[~t["note"].str.startswith("no run: ")]) == ["Base", "ICA", "CAA", "ConVA w/o gate", "ConVA"]
    assert t.loc["negative prompt + ConVA", "note"].startswith("no run: needs a gated `kind: conva` steering file "
                                                                "on schwartz_dilemmas_negative_<value> (step `fig4`)")
    assert math.isnan(t.loc["negative prompt + ConVA", "CSR"]) and t.loc["negative prompt + ConVA", "values"] == 0
    # Base: CSR (0.25*4 + 1.0*2) / 6 = 0.5; FR only power is scored: 1.0 over 4
    assert t.loc["Base", "CSR"] == pytest.approx(0.5) and t.loc["Base", "scored (CSR)"] == 6
    assert t.loc["Base", "FR"] == pytest.approx(1.0) and t.loc["Base", "scored (FR)"] == 4
    assert t.loc["Base", "MMLU acc"] == pytest.approx(0.5) and t.loc["Base", "MMLU runs"] == 1
    # ICA: its own task names; no MMLU
    assert t.loc["ICA", "CSR"] == pytest.approx(1.0) and t.loc["ICA", "FR"] == pytest.approx(0.5)
    assert math.isnan(t.loc["ICA", "MMLU acc"]) and t.loc["ICA", "MMLU runs"] == 0
    # CAA: two runs; the power run scores nothing on self-direction's task from the other run's values:
    # CSR (0.5*2 + 0.0*4 + 0.75*4) / 10 = 0.4; FR (1.0*2 + 0.0*4 + 1.0*4) / 10 = 0.6; MMLU (0.4+0.3)/2
    assert t.loc["CAA", "CSR"] == pytest.approx(0.4) and t.loc["CAA", "FR"] == pytest.approx(0.6)
    assert t.loc["CAA", "MMLU acc"] == pytest.approx(0.35) and t.loc["CAA", "values"] == 2
    assert t.loc["ConVA w/o gate", "CSR"] == pytest.approx(1.0) and t.loc["ConVA w/o gate", "MMLU acc"] == 0.2
    assert t.loc["ConVA", "CSR"] == pytest.approx(0.0) and t.loc["ConVA", "MMLU acc"] == 0.5


def test_csr_by_value(board_dir):
    board, runs = read_leaderboard(board_dir)
    t = csr_by_value(board, runs).set_index("value")
    assert t.loc["self-direction", "Base"] == 1.0
    # CAA on self-direction: the power run (0.0) and the self-direction run (0.75) both ran the task
    assert t.loc["self-direction", "CAA"] == pytest.approx(0.375)
    assert t.loc["power", "ICA"] == 1.0 and t.loc["power", "ConVA"] == 0.0


def test_cli_writes_tables(board_dir, tmp_path, capsys):
    assert main([str(board_dir), "--out", str(tmp_path / "o")]) == 0
    printed = capsys.readouterr().out
    assert "ConVA w/o gate" in printed and "0.400" in printed
    assert (tmp_path / "o" / "conva_table.csv").is_file() and (tmp_path / "o" / "conva_csr_by_value.csv").is_file()


def test_a_judge_giving_one_label_to_every_reply_is_flagged(board_dir, tmp_path, capsys):
    from analysis.conva_table import constant_judge

    board, runs = read_leaderboard(board_dir)
    assert constant_judge(board, runs) == []  # the hand-made board's judge uses both labels
    # every CSR 0 (the embedded local judge's "No" to all), FR mixed: only CSR is flagged, with its count:
    # n_scored_csr 2 (ICA) + 4+2+4+4 (power) + 2+4+4 (self-direction) = 26
    lines = [line if "/csr," not in line else ",".join(x if i == 0 or x == "" else "0.0"
                                                        for i, x in enumerate(line.split(",")))
             for line in BOARD.splitlines()]
    (tmp_path / "runs.csv").write_text(RUNS)
    (tmp_path / "leaderboard.csv").write_text("\n".join(lines) + "\n")
    board, runs = read_leaderboard(tmp_path)
    warnings = constant_judge(board, runs)
    assert len(warnings) == 1 and "all 26 scored CSR replies the label 'No'" in warnings[0]
    assert main([str(tmp_path)]) == 0
    assert "all 26 scored CSR replies" in capsys.readouterr().out


def test_missing_leaderboard_is_one_clear_error(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "leaderboard.csv does not exist" in capsys.readouterr().err
    (tmp_path / "runs.csv").write_text("run,model,steering,kind,hash,results\nbase,default,(unsteered),none,,r1.json\n")
    (tmp_path / "leaderboard.csv").write_text("metric,base\nmmlu_conva4/acc,0.5\n")
    assert main([str(tmp_path)]) == 2  # a leaderboard written before runs.csv had `meta`
    assert "has no column 'meta'" in capsys.readouterr().err
    (tmp_path / "runs.csv").write_text(RUNS)
    (tmp_path / "leaderboard.csv").write_text("metric,base\nmmlu_conva4/acc,0.5\n")
    board, runs = read_leaderboard(tmp_path)
    with pytest.raises(TableError, match="no run of the leaderboard has Schwartz dilemma"):
        method_table(board, runs)


# the meta `conva fit` writes into steer_caa_/steer_conva_nogate_/steer_conva_<value>.yaml
META = {"caa-power": {"kind": "caa", "value": "power"}, "caa-tradition": {"kind": "caa", "value": "tradition"},
        "conva-power": {"kind": "conva", "value": "power", "gate": "probe"},
        "conva-nogate-power": {"kind": "conva", "value": "power", "gate": "none"}}


def write_run(folder: Path, steering_name: str | None, replies: dict[str, list[str]]) -> Path:
    """A minimal lm-eval output folder: results JSON (with config.steering when steered) + samples JSONL.
    The config name is scrambled so that only `meta` can tell the methods apart."""
    import json

    ts = "2026-11-30T12-00-00.000000"
    out = folder / "default"
    out.mkdir(parents=True)
    steering = None if steering_name is None else {
        "name": f"cfg-{len(steering_name)}-{folder.name}", "meta": META[steering_name],
        "spec": {"interventions": [{"layer": 1, "op": "add" if steering_name.startswith("caa") else "conva"}]}}
    (out / f"results_{ts}.json").write_text(json.dumps(
        {"results": {t: {"csr,judge": 0.0} for t in replies}, "config": {"steering": steering}}))
    for task, texts in replies.items():
        lines = [json.dumps({"doc_id": i, "resps": [[t]], "filtered_resps": [{"output": t}]}) for i, t in enumerate(texts)]
        (out / f"samples_{task}_{ts}.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_replies_changed_vs_base(tmp_path):
    from analysis.conva_table import changed_vs_base

    runs = [
        write_run(tmp_path / "base", None, {"schwartz_dilemmas_power": ["a", "b", "c"],
                                             "schwartz_dilemmas_tradition": ["x", "y"]}),
        write_run(tmp_path / "ica", None, {"schwartz_dilemmas_ica_power": ["p", "q", "r"]}),
        write_run(tmp_path / "caa_power", "caa-power", {"schwartz_dilemmas_power": ["a", "B", "C"]}),
        write_run(tmp_path / "caa_tradition", "caa-tradition", {"schwartz_dilemmas_tradition": ["X", "Y"]}),
        write_run(tmp_path / "conva_power", "conva-power", {"schwartz_dilemmas_power": ["a", "b", "c!"]}),
        write_run(tmp_path / "nogate_power", "conva-nogate-power", {"schwartz_dilemmas_power": ["a", "b", "c"]}),
    ]
    # ICA's replies to the ICA variant are compared with Base's to the same value's plain dilemma, doc by doc
    assert changed_vs_base(runs) == {"CAA": (4, 5), "ConVA": (1, 3), "ConVA w/o gate": (0, 3), "ICA": (3, 3)}


def test_mmlu_answers_changed_vs_base(tmp_path):
    """The predicted choice is the argmax of the per-choice loglikelihoods; a run is compared with Base on the
    same (subtask, doc); ICA runs no MMLU."""
    import json

    from analysis.conva_table import mmlu_changed_vs_base

    def mmlu_run(name: str, steering_name: str | None, lls: dict[str, list[list[float]]]) -> Path:
        folder = write_run(tmp_path / name, steering_name, {})
        out = folder / "default"
        for task, docs in lls.items():
            lines = [json.dumps({"doc_id": i, "resps": [[[ll, "False"]] for ll in doc]}) for i, doc in enumerate(docs)]
            (out / f"samples_{task}_2026-11-30T12-00-00.000000.jsonl").write_text("\n".join(lines) + "\n")
        return folder

    base = {"mmlu_conva4_astronomy": [[-1.0, -2.0, -3.0, -4.0], [-4.0, -1.0, -2.0, -3.0]],
            "mmlu_conva4_global_facts": [[-2.0, -1.0, -3.0, -4.0]]}
    runs = [
        mmlu_run("base", None, base),
        # CAA: same first answer despite other numbers, second flips to choice 2, global_facts flips to 0
        mmlu_run("caa", "caa-power", {"mmlu_conva4_astronomy": [[-0.5, -2.5, -3.0, -4.0], [-4.0, -2.0, -1.0, -3.0]],
                                      "mmlu_conva4_global_facts": [[-0.1, -1.0, -3.0, -4.0]]}),
        mmlu_run("conva", "conva-power", base),  # the gate stayed shut: Base's numbers
    ]
    assert mmlu_changed_vs_base(runs) == {"CAA": (2, 3), "ConVA": (0, 3)}


def test_leaderboard_then_table_reads_meta_from_the_results_json(tmp_path, capsys):
    """`analysis leaderboard --out` writes each run's steering meta into runs.csv; `conva-table` groups by it."""
    import json

    ts = "2026-11-30T12-00-00.000000"

    def results_run(name: str, meta: dict | None, csr: float) -> Path:
        out = tmp_path / "runs" / name / "default"
        out.mkdir(parents=True)
        steering = None if meta is None else {"name": f"x{len(name)}", "meta": meta,
                                              "spec": {"interventions": [{"layer": 1, "op": "conva"}]}}
        metrics = {"csr,judge": csr, "n_scored_csr,judge": 2.0, "fr,judge": 1.0, "n_scored_fr,judge": 2.0}
        (out / f"results_{ts}.json").write_text(json.dumps(
            {"results": {"schwartz_dilemmas_power": metrics}, "config": {"steering": steering}}))
        return out.parent

    runs = [results_run("a", None, 0.0), results_run("b", META["conva-nogate-power"], 0.5),
            results_run("c", META["conva-power"], 1.0)]
    assert analysis_main(["leaderboard", *map(str, runs), "--out", str(tmp_path / "lb")]) == 0
    board, info = read_leaderboard(tmp_path / "lb")
    assert json.loads(info.set_index("run").at["c", "meta"]) == META["conva-power"]
    t = method_table(board, info).set_index("method")
    t = t[~t["note"].str.startswith("no run: ")]
    assert list(t.index) == ["Base", "ConVA w/o gate", "ConVA"]
    assert list(t["CSR"]) == [0.0, 0.5, 1.0]
