"""Analysis on REAL lm-eval output (valuebench_ll_test on tiny random Llama and Gemma models, written by
lm-eval's own EvaluationTracker) refuses to merge runs of different models unless asked, and warns when a
samples file holds fewer samples than its results JSON says were evaluated (a truncated copy)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest
from conftest import REPO, _save

from analysis.cli import main
from analysis.io import find_runs, load_samples
from lm_eval_tasks.lm_eval_outputs import LmEvalOutputError

TASK = "valuebench_ll_test_understanding"


def _evaluate(model_dir: Path, out: Path, manager) -> Path:
    import lm_eval
    from lm_eval.loggers import EvaluationTracker

    tracker = EvaluationTracker(output_path=str(out))
    results = lm_eval.simple_evaluate(model="hf", model_args={"pretrained": str(model_dir), "dtype": "float32"},
                                      device="cpu", tasks=[TASK], log_samples=True, batch_size=64,
                                      metadata={"num_roles": 1}, limit=9, evaluation_tracker=tracker,
                                      task_manager=manager)
    samples = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=samples)
    tracker.save_results_samples(task_name=TASK, samples=samples[TASK])
    return out


@pytest.fixture(scope="module")
def runs(tiny_llama_dir, tiny_tokenizer, tmp_path_factory) -> dict[str, Path]:
    from lm_eval.tasks import TaskManager

    root = tmp_path_factory.mktemp("two_models")
    gemma = _save("gemma", tmp_path_factory, tiny_tokenizer)
    manager = TaskManager(include_path=str(REPO / "lm_eval_tasks"), include_defaults=False)  # ours only: fast
    return {"llama": _evaluate(tiny_llama_dir, root / "llama", manager),
            "gemma": _evaluate(gemma, root / "gemma", manager)}


def test_runs_of_two_models_are_refused_unless_allowed(runs, tmp_path, capsys):
    with pytest.raises(LmEvalOutputError, match="2 different models") as e:
        load_samples([runs["llama"], runs["gemma"]])
    msg = str(e.value)
    (llama_results,) = runs["llama"].rglob("results_*.json")
    assert str(llama_results) in msg and "--allow-mixed-models" in msg and msg.count(". ") == 0
    both = load_samples([runs["llama"], runs["gemma"]], allow_mixed_models=True)
    assert both["model"].nunique() == 2 and len(both) == 2 * len(load_samples([runs["llama"]]))
    # the CLI: one line naming the files, exit 2; with the flag it merges
    assert main(["orientations", str(runs["llama"]), str(runs["gemma"]), "--out", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the runs are of 2 different models") and err.count("\n") == 1
    assert main(["orientations", str(runs["llama"]), str(runs["gemma"]), "--out", str(tmp_path / "o.csv"),
                 "--allow-mixed-models"]) == 0


def test_truncated_samples_file_warns_naming_it(runs, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(runs["llama"], copy)
    (samples,) = copy.rglob(f"samples_{TASK}_*.jsonl")
    lines = samples.read_text().splitlines(keepends=True)
    assert len(lines) >= 6
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the whole file: no warning
        full = load_samples([copy])
    samples.write_text("".join(lines[: len(lines) // 3]))  # cut at a line boundary: every line parses
    with pytest.warns(UserWarning, match="looks truncated") as w:
        part = load_samples([copy])
    msg = str(w[0].message)
    assert str(samples) in msg and f"{len(lines) // 3} samples" in msg and f"evaluated {len(lines)}" in msg
    assert len(part) == len(full) // 3
    assert find_runs([copy])[0].results["n-samples"][TASK]["effective"] == len(lines)


def test_errors_about_tables_name_the_files_they_came_from(runs, tmp_path, capsys):
    csv = tmp_path / "o.csv"
    assert main(["orientations", str(runs["llama"]), "--out", str(csv)]) == 0
    capsys.readouterr()
    # 9 samples of one value: PC cannot run; the error is about the table, and names the file it came from
    assert main(["graph", "--orientations", str(csv), "--out", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and f"(reading {csv})." in err, err
    # an error that already names its file is left alone
    assert main(["orientations", str(tmp_path / "nope"), "--out", str(csv)]) == 2
    err = capsys.readouterr().err
    assert err.count(str(tmp_path / "nope")) == 1 and "(reading" not in err
