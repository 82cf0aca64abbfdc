"""`python -m analysis conva-table` on Fig. 4's role-prompt runs and the SFT baseline: lm-eval-shaped output
folders (results JSON with `config.steering` as steered-hf writes it + logged samples with the judge's labels),
read through `python -m analysis leaderboard --out` as the experiment script does. The method of a task comes
from the run's steering `meta` plus the task's prompt variant; the folder and config names below deliberately
say something else. Expected numbers by hand from the labels written."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from analysis.cli import main
from analysis.conva_table import SFT, dilemma_task, method_of, method_table, read_leaderboard

TS = "2026-12-01T12-00-00.000000"
JUDGE = "local:tiny-test-judge"
CAA = {"kind": "caa", "value": "power"}
CONVA = {"kind": "conva", "value": "power", "gate": "probe", "g0": 0.08}
SFT_META = {"kind": "sft", "value": "power", "data": "conva_positive_sentences", "data_note": "not FULCRA"}


def lm_eval_run(root: Path, folder: str, meta: dict | None, dilemmas: dict[str, list[tuple[str, bool]]],
                mmlu: dict[str, list[list[float]]] | None = None, acc: float | None = None) -> Path:
    """One `lm_eval --output_path root/folder --log_samples` run: per dilemma task (reply, CSR label) per doc,
    every reply fluent; `meta` None = unsteered; a `kind: sft` steering has no interventions (peft= does it)."""
    out = root / folder / "default"
    out.mkdir(parents=True)
    steering = None if meta is None else {
        "name": f"cfg-{folder[::-1]}", "hash": "ab" * 32, "meta": meta,
        "spec": {"interventions": [] if meta["kind"] == "sft" else [{"layer": 1, "op": "conva"}]}}
    results: dict[str, dict] = {}
    for task, docs in dilemmas.items():
        n = float(len(docs))
        results[task] = {"alias": task, "csr,judge": sum(label for _, label in docs) / n, "fr,judge": 1.0,
                         "n_scored_csr,judge": n, "n_scored_fr,judge": n}
        lines = [json.dumps({"doc_id": i, "doc": {"basic_value": "power"}, "resps": [[reply]], "filtered_resps": [
            str({"output": reply, "csr": label, "fluent": True, "judged_by": JUDGE})]}) for i, (reply, label) in
            enumerate(docs)]
        (out / f"samples_{task}_{TS}.jsonl").write_text("\n".join(lines) + "\n")
    for task, docs in (mmlu or {}).items():
        lines = [json.dumps({"doc_id": i, "resps": [[[ll, "False"]] for ll in lls]}) for i, lls in enumerate(docs)]
        (out / f"samples_{task}_{TS}.jsonl").write_text("\n".join(lines) + "\n")
    if acc is not None:
        results["mmlu_conva4"] = {"alias": "mmlu_conva4", "acc,none": acc}
    (out / f"results_{TS}.json").write_text(json.dumps(
        {"results": results, "n-samples": {t: {"original": len(d), "effective": len(d)} for t, d in dilemmas.items()},
         "config": {"model": "steered-hf", "model_args": {"pretrained": "default"}, "steering": steering}}))
    return root / folder


@pytest.fixture()
def experiment(tmp_path: Path, monkeypatch) -> list[Path]:
    """Base (plain power + self-direction, MMLU), one Fig. 4 sweep (unsteered / CAA / ConVA on the negative and
    positive variants) and SFT (dilemmas, MMLU); the folder names mislead."""
    monkeypatch.setenv("VALUE_STEERING_CACHE", str(tmp_path / "cache"))  # no judge-bench file: "not measured"
    r = tmp_path / "runs"
    neg, pos = "schwartz_dilemmas_negative_power", "schwartz_dilemmas_positive_power"
    return [
        lm_eval_run(r, "conva_gated", None, {"schwartz_dilemmas_power": [("a", False), ("b", False)],
                                             "schwartz_dilemmas_self_direction": [("w", True)]}),
        lm_eval_run(r, "caa_mmlu", None, {}, {"mmlu_conva4_astronomy": [[-1.0, -2.0], [-2.0, -1.0]]}, acc=0.5),
        # the sweep's three configs, misnamed: 000 is unsteered, 001 CAA, 002 ConVA
        lm_eval_run(r, "000-conva-power", None, {neg: [("n1", False), ("n2", False)],
                                                 pos: [("p1", True), ("p2", False)]}),
        lm_eval_run(r, "001-unsteered", CAA, {neg: [("c1", True), ("b", False)], pos: [("a", True), ("c2", True)]}),
        lm_eval_run(r, "002-caa-power", CONVA, {neg: [("v1", True), ("v2", True)], pos: [("v3", True), ("b", True)],
                                                "schwartz_dilemmas_negative_self_direction": [("w", False)]}),
        lm_eval_run(r, "base", SFT_META, {"schwartz_dilemmas_power": [("a", False), ("s", True)]}),
        lm_eval_run(r, "base_mmlu", SFT_META, {}, {"mmlu_conva4_astronomy": [[-1.0, -2.0], [-1.0, -2.0]]},
                    acc=0.25),
    ]


def test_fig4_and_sft_rows_come_from_meta_and_task_variant(experiment, tmp_path, capsys):
    assert main(["leaderboard", *map(str, experiment), "--out", str(tmp_path / "lb")]) == 0
    board, runs = read_leaderboard(tmp_path / "lb")
    # an SFT steering file has no interventions: its runs are `kind: sft`, not unsteered
    assert dict(zip(runs["run"], runs["kind"], strict=True))["base"] == "sft"
    t = method_table(board, runs).set_index("method")
    present = ["Base", "negative prompt", "negative prompt + CAA", "negative prompt + ConVA", "ICA + CAA",
               "ICA + ConVA", SFT]
    assert list(t.index[t["note"].str.startswith("no run: ")]) == ["ICA", "CAA", "ConVA w/o gate", "ConVA"]
    assert [m for m in t.index if m in present] == present
    # Base: (0 + 0 + 1) / 3; negative: 0/2; neg + CAA: 1/2; neg + ConVA: (2 + 0) / 3 over two values; ICA + CAA,
    # ICA + ConVA: 2/2; SFT: 1/2 and MMLU 0.25 (Base's MMLU 0.5 comes from the unsteered MMLU run)
    expected = {"Base": 1 / 3, "negative prompt": 0.0, "negative prompt + CAA": 0.5, "negative prompt + ConVA": 2 / 3,
                "ICA + CAA": 1.0, "ICA + ConVA": 1.0, SFT: 0.5}
    assert {m: t.loc[m, "CSR"] for m in present} == pytest.approx(expected)
    assert t.loc["negative prompt + ConVA", "values"] == 2 and t.loc["negative prompt + ConVA", "scored (CSR)"] == 3
    assert t.loc["Base", "MMLU acc"] == 0.5 and t.loc[SFT, "MMLU acc"] == 0.25 and t.loc[SFT, "MMLU runs"] == 1
    assert math.isnan(t.loc["negative prompt + ConVA", "MMLU acc"])
    assert t.loc[SFT, "note"] == "trained on conva_positive_sentences (a substitute for FULCRA)"
    assert "step `ica`" in t.loc["ICA", "note"] and "step `sweeps`" in t.loc["ConVA", "note"]

    assert main(["conva-table", str(tmp_path / "lb"), "--runs", *map(str, experiment)]) == 0
    printed = capsys.readouterr().out
    rows = {cells[0]: cells for line in printed.splitlines() if line.startswith("|")
            for cells in [[c.strip() for c in line.strip("|").split("|")]]}
    header = rows["method"]
    changed = {m: rows[m][header.index("replies changed vs Base")] for m in METHODS_SHOWN}
    # vs Base's reply to the plain dilemma of the same value and doc: n1,n2 | c1,b | v1,v2 + w | a,c2 | v3,b | a,s
    assert changed == {"negative prompt": "2/2", "negative prompt + CAA": "1/2", "negative prompt + ConVA": "2/3",
                       "ICA + CAA": "1/2", "ICA + ConVA": "1/2", SFT: "1/2"}
    assert rows[SFT][header.index("MMLU answers changed vs Base")] == "1/2"
    assert rows["ConVA"][header.index("CSR")] == "–" and rows["ICA + ConVA"][header.index("CSR")] == "1.000"
    assert "not in the table: 1 run(s) with steering `none` on the positive dilemmas (000-conva-power): the ICA " \
           "prompt again" in printed
    assert f"CSR judged by {JUDGE}: measured agreement not measured" in printed
    assert f"FR judged by {JUDGE}: measured agreement not measured" in printed


METHODS_SHOWN = ("negative prompt", "negative prompt + CAA", "negative prompt + ConVA", "ICA + CAA", "ICA + ConVA",
                 SFT)


def test_method_of_a_task_is_its_runs_steering_and_its_prompt_variant():
    assert dilemma_task("schwartz_dilemmas_negative_self_direction") == ("negative", "self-direction")
    assert dilemma_task("schwartz_dilemmas_power") == ("plain", "power")
    assert dilemma_task("schwartz_dilemmas_negative") is None  # the group, not a value's task
    assert dilemma_task("mmlu_conva4_astronomy") is None
    nogate = {"kind": "conva", "gate": "none"}
    assert method_of("conva", CONVA, "positive") == method_of("conva", CONVA, "ica") == "ICA + ConVA"
    assert method_of("conva", nogate, "plain") == "ConVA w/o gate"
    assert method_of("conva", nogate, "negative") is None  # not a Fig. 4 method
    assert method_of("sft", SFT_META, "plain") == SFT and method_of("sft", SFT_META, "negative") is None
    assert method_of("none", {}, "positive") is None  # the ICA prompt again


def test_changed_without_a_base_answer_to_compare_is_a_dash_not_zero(experiment, tmp_path):
    """SFT's MMLU answers with no Base MMLU run: nothing compared, shown as "–" rather than 0/0."""
    from analysis.conva_table import mmlu_changed_vs_base, with_changed

    no_base_mmlu = [run for run in experiment if run.name != "caa_mmlu"]
    assert mmlu_changed_vs_base(no_base_mmlu) == {SFT: (0, 0)}
    assert main(["leaderboard", *map(str, no_base_mmlu), "--out", str(tmp_path / "lb")]) == 0
    board, runs = read_leaderboard(tmp_path / "lb")
    shown = with_changed(method_table(board, runs), mmlu_changed_vs_base(no_base_mmlu), "MMLU changed")
    assert dict(zip(shown["method"], shown["MMLU changed"], strict=True))[SFT] == "–"
    assert dict(zip(shown["method"], shown["MMLU changed"], strict=True))["Base"] == ""


def test_csr_replies_puts_each_labelled_reply_beside_its_label(experiment, tmp_path, capsys):
    """`analysis csr-replies`: a reader's labels (keyed by method, value, doc) gain the replies they judge, taken
    from the runs by the method of each run's task; a labelled reply the runs lack is named, nothing written."""
    import csv

    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["value", "doc", "Base", "negative prompt + ConVA", SFT], ["power", 0, 0, 1, ""],
                                 ["power", 1, 1, 1, 0], ["self-direction", 0, 1, 0, ""]])
    out = tmp_path / "with_replies.csv"
    assert main(["csr-replies", *map(str, experiment), "--labels", str(labels), "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    got = [(r["value"], r["Base reply"], r["negative prompt + ConVA reply"], r[f"{SFT} reply"]) for r in rows]
    assert got == [("power", "a", "v1", "a"), ("power", "b", "v2", "s"), ("self-direction", "w", "w", "")]
    assert [r["Base"] for r in rows] == ["0", "1", "1"]  # the labels are kept as they were
    assert "7 labelled replies of 3 methods" in capsys.readouterr().out

    labels.write_text("value,doc,Base,ICA\npower,0,0,1\n")  # no ICA run
    assert main(["csr-replies", *map(str, experiment), "--labels", str(labels), "--out", str(tmp_path / "x.csv")]) == 2
    assert "the runs have no ICA reply to power dilemma 0 (1 labelled replies missing)" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()
