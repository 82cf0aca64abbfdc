"""The analysis CLI end to end on REAL lm-eval output: an unsteered and a steered ``steered-hf`` run of
``valuebench_ll_train`` + ``valuebench_ll_test`` (num_roles 2) on a tiny random Llama, written by
lm-eval's own EvaluationTracker (what ``lm_eval --output_path DIR --log_samples`` writes)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from analysis.cli import main
from analysis.io import find_runs, load_samples
from lm_eval_tasks.lm_eval_outputs import LmEvalOutputError

TASKS = ["valuebench_ll_train", "valuebench_ll_test"]
META = {"num_roles": 2, "item_fraction": 0.15}


def _evaluate(model_dir: Path, out: Path, steer: Path | None) -> Path:
    import lm_eval
    from lm_eval.loggers import EvaluationTracker

    args = {"pretrained": str(model_dir), "dtype": "float32"}
    if steer is not None:
        args["steer"] = str(steer)
    tracker = EvaluationTracker(output_path=str(out))
    results = lm_eval.simple_evaluate(model="steered-hf", model_args=args, device="cpu", tasks=TASKS,
                                      log_samples=True, metadata=META, evaluation_tracker=tracker, batch_size=64)
    samples = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=samples)
    for task in results["configs"]:
        tracker.save_results_samples(task_name=task, samples=samples[task])
    return out


@pytest.fixture(scope="module")
def runs(tiny_llama_dir, tmp_path_factory) -> tuple[Path, Path]:
    import torch
    from safetensors.torch import load_file, save_file

    root = tmp_path_factory.mktemp("lm_eval_runs")
    # a direction toward the first token of " yes" and away from " no" in the unembedding
    w = load_file(str(tiny_llama_dir / "model.safetensors"))["lm_head.weight"]
    vec = w[273] - w[308] if w.shape[0] > 308 else torch.randn(w.shape[1])
    save_file({"v": (vec / vec.norm()).contiguous()}, str(root / "v.safetensors"))
    steer = root / "steer.yaml"
    steer.write_text("name: yes-dir-x8\nmeta: {kind: sae_feature, feature: 7}\ninterventions:\n"
                     f"  - {{layer: 2, op: add, strength: 8, source: {{vector: {root / 'v.safetensors'}}}, "
                     "positions: all}\n")
    return _evaluate(tiny_llama_dir, root / "unsteered", None), _evaluate(tiny_llama_dir, root / "steered", steer)


def test_tidy_samples_from_real_output(runs):
    samples = load_samples(list(runs))
    assert set(samples["run"]) == {"unsteered", "steered"}
    assert set(samples["config"]) == {"", "yes-dir-x8"}
    assert set(samples["steer_kind"]) == {"none", "role_prompt", "sae_feature"}
    assert set(samples.loc[samples["steer_kind"] == "none", "role_id"]) == {"r0"}
    assert set(samples["role_split"]) == {"train", "test"}
    assert {"r0", "r1", "r101", "r102"} == set(samples["role_id"])
    assert set(samples["score"].dropna()) <= {-1.0, 0.0, 1.0}
    assert samples["p_yes_minus_p_no"].notna().all() and samples["label"].isin(["yes", "no"]).all()
    assert samples["value"].nunique() == 17
    # same items for both configs (the seeded split does not depend on steering)
    a = samples[samples["run"] == "unsteered"].sort_values(["task", "role_id", "item_id"])["item_id"].tolist()
    b = samples[samples["run"] == "steered"].sort_values(["task", "role_id", "item_id"])["item_id"].tolist()
    assert a == b


def test_leaderboard_prints_orientations_side_by_side(runs, tmp_path, capsys):
    assert main(["leaderboard", str(runs[0]), str(runs[1]), "--out", str(tmp_path / "lb")]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "valuebench_ll_test" in line and "| Achievement" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    results = json.loads(next(runs[0].rglob("results_*.json")).read_text())["results"]
    expected = results["valuebench_ll_test_achievement"]["orientation,ll"]
    assert cells[2] == f"{expected:.3f}"  # unsteered column = the results JSON's orientation
    assert re.search(r"\| unsteered\s+\| steered\s+\|", out)
    for name in ("leaderboard.csv", "leaderboard.md", "leaderboard.html"):
        assert (tmp_path / "lb" / name).stat().st_size > 0


def test_report_end_to_end(runs, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(runs[0]), str(runs[1]), "--out", str(out), "--bootstrap", "50"]) == 0
    page = (out / "report.html").read_text()
    tables = ["runs", "leaderboard_orientations", "leaderboard", "orientations", "steering_effects",
              "steering_effects_per_value", "sae_table", "noise_ratio", "mean_similarity", "config_shifts"]
    for name in tables:
        assert f"id='table-{name}'" in page, name
        assert (out / "tables" / f"{name}.csv").is_file() and (out / "tables" / f"{name}.md").is_file()
    for plot in ("graphs", "orientation_bars", "expected_unexpected", "sae_heatmap"):
        assert f"id='plot-{plot}'" in page, plot
        assert (out / "plots" / f"{plot}.png").stat().st_size > 0 and (out / "plots" / f"{plot}.svg").is_file()
    assert page.count("src='data:image/png;base64,") == 4
    # one strength, no judge: one line each, with the fix; no explicit-instruction run: Table 3 says so
    for key in ("dose_response", "thought_answer_inconsistency"):
        assert f"id='skip-{key}'" in page, key
    assert "id='plot-dose_response'" not in page
    assert "no explicit-instruction run: SAE rows only. Fix: add a valuebench_explicit run" in page
    summary = json.loads((out / "summary.json").read_text())
    assert summary["configs"] == ["unsteered", "yes-dir-x8"] and summary["rows"] == 8
    assert "<img" in page and "src='plots/" not in page  # self-contained
    wide = pd.read_csv(out / "tables" / "orientations.csv", keep_default_na=False)
    assert list(wide.columns[:2]) == ["steer_dim", "player_name"]
    assert len(wide) == 8  # 2 configs x (r0, r1, r101, r102)
    sae = pd.read_csv(out / "tables" / "sae_table.csv")
    assert (sae[["train_stimulated", "train_suppressed", "train_maintained"]].sum(axis=1) == 2).all()  # r0, r1
    assert (sae[["test_stimulated", "test_suppressed", "test_maintained"]].sum(axis=1) == 2).all()  # r101, r102


def test_check_exit_codes(runs, tmp_path, capsys):
    main(["leaderboard", str(runs[0]), str(runs[1]), "--out", str(tmp_path / "lb")])
    board = pd.read_csv(tmp_path / "lb" / "leaderboard.csv")
    base = tmp_path / "lb" / "leaderboard.csv"
    assert main(["check", str(runs[1]), "--baseline", str(base), "--baseline-run", "steered"]) == 0
    metric = "valuebench_ll_test/Empathy/orientation"
    old = float(board.loc[board["metric"] == metric, "steered"].iloc[0])
    board.loc[board["metric"] == metric, "steered"] = old + 0.3
    board.to_csv(tmp_path / "regressed.csv", index=False)
    capsys.readouterr()
    assert main(["check", str(runs[1]), "--baseline", str(tmp_path / "regressed.csv"),
                 "--baseline-run", "steered", "--tolerance", "0.05"]) == 1
    out = capsys.readouterr().out
    assert f"REGRESSION {metric}: moved from {old + 0.3:.4g} to {old:.4g}" in out
    assert main(["check", str(runs[1]), "--baseline", str(tmp_path / "regressed.csv"),
                 "--baseline-run", "steered", "--tolerance", "0.05", "--tolerance", "orientation=0.5"]) == 0
    (tmp_path / "base.json").write_text(json.dumps({metric: old - 0.01}))
    assert main(["check", str(runs[1]), "--baseline", str(tmp_path / "base.json"), "--tolerance", "0.02"]) == 0


def test_not_an_lm_eval_output(runs, tmp_path, capsys):
    with pytest.raises(LmEvalOutputError, match=r"no results_<timestamp>\.json found"):
        find_runs([tmp_path])
    copy = tmp_path / "no_samples"
    shutil.copytree(runs[0], copy)
    for p in copy.rglob("samples_*.jsonl"):
        p.unlink()
    with pytest.raises(LmEvalOutputError, match=r"no samples_valuebench_ll_\S+\.jsonl; re-run lm_eval with --log_samples"):
        load_samples([copy])
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_judge_paths_with_a_local_judge(runs, tiny_llama_dir, tmp_path, monkeypatch):
    """Table 2 and the Template 5 reference through the real judge layer (a tiny local judge: its
    replies do not parse, so everything must come out unscored, never counted)."""
    from analysis.consistency import inconsistency_table, judge_thoughts
    from analysis.reference import judge_graph
    from lm_eval_tasks.judge import get_judge

    for var in ("VALUE_JUDGE_BASE_URL", "VALUE_JUDGE_MODEL", "VALUE_JUDGE_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("VALUE_JUDGE_PRETRAINED", str(tiny_llama_dir))
    monkeypatch.setenv("VALUE_JUDGE_MAX_TOKENS", "3")
    monkeypatch.setenv("VALUE_JUDGE_CACHE", str(tmp_path / "judge.sqlite"))
    samples = load_samples(list(runs)).head(4).copy()
    samples["thought"] = ["I like it.", "No way.", "", None]
    labels = judge_thoughts(samples, get_judge(), progress=False)
    assert labels.iloc[2] is None and labels.iloc[3] is None
    table = inconsistency_table(samples, labels).set_index("when")
    assert table.loc["before", "n_samples"] == 4
    assert table.loc["before", "n_compared"] == sum(v is not None for v in labels)
    with pytest.raises(ValueError, match="did not parse"):
        judge_graph()


def test_rerun_into_the_same_folder_keeps_the_newest(runs, tmp_path):
    copy = tmp_path / "unsteered"
    shutil.copytree(runs[0], copy)
    old = next(copy.rglob("results_*.json"))
    ts = old.name[len("results_"):-len(".json")]
    for f in list(old.parent.glob(f"*{ts}*")):
        f.with_name(f.name.replace(ts, "2099-01-01T00-00-00.000000")).write_bytes(f.read_bytes())
    with pytest.warns(UserWarning, match="is superseded by the newer results_2099-01-01T00-00-00.000000.json"):
        found = find_runs([copy])
    assert len(found) == 1 and found[0].label == "unsteered"
    assert "2099" in found[0].results_path.name and len(found[0].sample_files) == 34


def test_report_soft_score_from_real_output(runs, tmp_path, capsys):
    """--score soft: orientations are means of the ll task's per-sample orientation_soft (agreement x
    (p(yes) - p(no))), a change needs a move > --atol; the summary says so."""
    out = tmp_path / "soft"
    assert main(["report", str(runs[0]), str(runs[1]), "--out", str(out), "--bootstrap", "20", "--score", "soft",
                 "--atol", "0.05", "--no-progress"]) == 0
    wide = pd.read_csv(out / "tables" / "orientations.csv", keep_default_na=False)
    samples = load_samples(list(runs))
    expected = samples[(samples["role_id"] == "r0") & (samples["config"] == "") & (samples["value"] == "Empathy")]
    got = wide[(wide["steer_dim"] == "") & (wide["player_name"] == "")]["Empathy"].iloc[0]
    assert got == pytest.approx((expected["agreement"] * expected["p_yes_minus_p_no"]).mean())
    assert not set(wide["Empathy"]) <= {-1.0, 0.0, 1.0}  # soft, not the hard +1/-1/0 means
    summary = json.loads((out / "summary.json").read_text())
    assert summary["score"] == "soft" and summary["atol"] == 0.05
    shifts = pd.read_csv(out / "tables" / "config_shifts.csv")
    moved = (pd.read_csv(out / "tables" / "orientations.csv", keep_default_na=False)
             .pipe(lambda w: w[w["steer_dim"] != ""]))
    assert len(shifts) == 1 and len(moved) == 4
    assert "orientations: mean soft item score" in capsys.readouterr().out
    cot = samples.assign(mode="cot", score_soft=float("nan"))
    from analysis.orientations import orientation_table

    with pytest.raises(ValueError, match=r"--score soft needs loglikelihood runs \(valuebench_ll_\*\)"):
        orientation_table(cot, score="soft")


def test_report_prints_lm_eval_tables_only_when_verbose(runs, tmp_path, capsys):
    args = ["report", str(runs[0]), str(runs[1]), "--bootstrap", "10", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "quiet")]) == 0
    quiet = capsys.readouterr()
    assert not re.search(r"\|\s*Tasks\s*\|", quiet.out) and "note:" not in quiet.out
    assert "report sections" not in quiet.err  # --no-progress
    assert main([*args, "--out", str(tmp_path / "loud"), "--verbose"]) == 0
    loud = capsys.readouterr().out
    assert "== unsteered" in loud and "== steered" in loud
    assert re.search(r"\|\s*Tasks\s*\|", loud) and re.search(r"\|\s*- Achievement\s*\|.*\|n_scored", loud)
    assert re.search(r"\|ll\s*\|\s*0\|orientation_soft\|", loud)
    assert "note:" in loud
