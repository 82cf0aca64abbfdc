"""The judge inside real `lm_eval.simple_evaluate` runs, then `python -m analysis judge` and
`judge-agreement` on the logged samples. The judge is `judge-serve` on 127.0.0.1 with a tiny random
Llama (calls counted at the server); its replies are garbage, so verdicts are unscored (NaN, not 0).
To see scored verdicts flow through the task metrics, three cached replies are then replaced by
parseable ones ("Yes", "No", "True.") in the judge's own cache, as if an earlier judge had written them.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from judge_helpers import MODEL_NAME, REPO, start_server

TASKS = ["schwartz_dilemmas_power", "valuebench_cot_test_economic"]


def conva_dir() -> Path:
    for base in (REPO.parent, REPO.parent.parent):
        if (base / "shared" / "data" / "conva").is_dir():
            return base / "shared" / "data" / "conva"
    pytest.skip("ConVA data (../shared/data/conva) is not beside this checkout")


@pytest.fixture(scope="module")
def server(tiny_llama_dir):
    srv = start_server(tiny_llama_dir)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def judge_env(server, tmp_path_factory):
    env = {"VALUE_JUDGE_BASE_URL": server.base_url, "VALUE_JUDGE_MODEL": MODEL_NAME,
           "VALUE_JUDGE_MAX_TOKENS": "12", "VALUE_JUDGE_MAX_RETRIES": "0",
           "VALUE_JUDGE_CACHE": str(tmp_path_factory.mktemp("judge-cache") / "judge.sqlite")}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def evaluate(model_dir: Path, tracker=None) -> dict:
    import lm_eval

    return lm_eval.simple_evaluate(
        model="hf", model_args={"pretrained": str(model_dir), "dtype": "float32"}, device="cpu",
        tasks=TASKS, limit=3, log_samples=True, gen_kwargs={"max_gen_toks": 6},
        metadata={"num_roles": 1, "conva_dir": str(conva_dir())}, evaluation_tracker=tracker,
    )


def resp(sample: dict) -> dict:
    return sample["filtered_resps"][0]


@pytest.fixture(scope="module")
def runs(tiny_llama_dir, server, judge_env, tmp_path_factory):
    from lm_eval.loggers import EvaluationTracker

    from lm_eval_tasks.judge import get_judge
    from lm_eval_tasks.judge.cache import cache_key
    from lm_eval_tasks.judge.templates import get_template

    c0 = server.completions()
    first = evaluate(tiny_llama_dir)
    c1 = server.completions()
    judge = get_judge()
    docs = [s["doc"] for s in first["samples"]["schwartz_dilemmas_power"]]
    outputs = [resp(s)["output"] for s in first["samples"]["schwartz_dilemmas_power"]]
    seeds = [("csr", 0, "Yes"), ("csr", 1, "No"), ("fluency", 0, "True.")]
    for template, i, raw in seeds:
        t = get_template(template)
        prompt = t.render({**docs[i], "answer": outputs[i]})
        key = cache_key(judge.judge_id, judge.backend.endpoint, t.version, prompt)
        judge.cache.put(key, judge.judge_id, judge.backend.endpoint, t.version, prompt, raw)
    run_dir = tmp_path_factory.mktemp("run")
    tracker = EvaluationTracker(output_path=str(run_dir))
    second = evaluate(tiny_llama_dir, tracker)
    c2 = server.completions()
    checks = {task: [dict(resp(s)) for s in samples] for task, samples in second["samples"].items()}
    # what `lm_eval --output_path RUN --log_samples` does after the run
    results = {k: v for k, v in second.items() if k != "samples"}
    tracker.save_results_aggregated(results=results, samples=second["samples"])
    for task, samples in second["samples"].items():
        tracker.save_results_samples(task_name=task, samples=samples)
    return {"first": first, "second": second, "second_resps": checks, "calls": (c1 - c0, c2 - c1),
            "judge_id": judge.judge_id, "run_dir": run_dir, "server": server}


def test_schwartz_unjudgeable_replies_are_nan_not_zero(runs):
    res = runs["first"]["results"]["schwartz_dilemmas_power"]
    assert math.isnan(res["csr,judge"]) and math.isnan(res["fr,judge"])
    assert res["n_scored_csr,judge"] == 0.0 and res["n_scored_fr,judge"] == 0.0
    for s in runs["first"]["samples"]["schwartz_dilemmas_power"]:
        assert resp(s)["judged_by"] == runs["judge_id"] and resp(s)["csr"] is None


def test_judge_calls_counted_at_the_server(runs):
    def text(r: dict) -> str:
        return r["answer"] if r["answer"] is not None else r["thought"]

    vb = [resp(s) for s in runs["first"]["samples"]["valuebench_cot_test_economic"]]
    undecided = {text(r) for r in vb if r["judged_by"] != "rules" and text(r).strip()}
    replies = {resp(s)["output"] for s in runs["first"]["samples"]["schwartz_dilemmas_power"]}
    first_calls, second_calls = runs["calls"]
    # one call per distinct prompt: CSR (question differs) + FR (reply only) + A.1 fallbacks
    assert first_calls == 3 + len(replies) + len(undecided)
    assert second_calls == 0  # the same run again: everything from the cache


def test_scored_verdicts_reach_the_task_metrics(runs):
    res = runs["second"]["results"]["schwartz_dilemmas_power"]
    assert res["csr,judge"] == pytest.approx(0.5)  # "Yes" -> 1, "No" -> 0, third unscored
    assert res["n_scored_csr,judge"] == 2.0
    assert res["fr,judge"] == pytest.approx(1.0) and res["n_scored_fr,judge"] == 1.0
    csr = [r["csr"] for r in runs["second_resps"]["schwartz_dilemmas_power"]]
    assert csr == [True, False, None]


def test_rejudge_cli_and_agreement(runs, tmp_path, capsys):
    from analysis.cli import main

    server, run_dir = runs["server"], runs["run_dir"]
    before = server.completions()
    assert main(["judge", str(run_dir), "--out", str(tmp_path / "a")]) == 0
    assert server.completions() == before  # shared cache: nothing asked again
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    row = summary["tasks"]["schwartz_dilemmas_power"]
    assert (row["csr"], row["n_scored_csr"], row["n_total"]) == (0.5, 2, 3)
    assert (row["fr"], row["n_scored_fr"]) == (1.0, 1)
    records = [json.loads(line) for line in (tmp_path / "a" / "judged.jsonl").read_text().splitlines()]
    csr = [r for r in records if r["template"] == "csr"]
    assert [r["parsed"] for r in csr] == [True, False, None] and csr[2]["raw"]
    assert {r["judge_id"] for r in records} == {runs["judge_id"]}

    # --no-cache asks the server for every verdict again
    assert main(["judge", str(run_dir), "--out", str(tmp_path / "b"), "--no-cache"]) == 0
    summary_b = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary_b["n_cached"] == 0 and summary_b["n_verdicts"] == len(records)
    # one call per distinct prompt (two identical replies share one FR prompt)
    assert server.completions() - before == summary_b["calls"] >= len(records) - 3
    capsys.readouterr()
    assert main(["judge-agreement", str(tmp_path / "a" / "judged.jsonl"),
                 str(tmp_path / "b" / "judged.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "[csr] paired=3" in out and "[fluency] paired=3" in out


def test_leaderboard_takes_the_rejudged_metrics(runs, tmp_path, capsys):
    """`leaderboard --rejudged`: a re-judge (here one that asked the garbage judge again: nothing parses) replaces
    the run's own judged numbers and is named as the judge of those tasks; without the flag the run's stand."""
    import csv
    import shutil

    from analysis.cli import main

    run_dir = runs["run_dir"]
    own = tmp_path / "own"
    assert main(["leaderboard", str(run_dir), "--out", str(own)]) == 0
    assert main(["leaderboard", str(run_dir), "--rejudged", "--out", str(tmp_path / "x")]) == 2
    assert "none of the 1 runs has a re-judge" in capsys.readouterr().err
    run_dir_copy = tmp_path / "copy"  # the module's run folder stays as it is for the other tests
    shutil.copytree(run_dir, run_dir_copy)
    assert main(["judge", str(run_dir_copy), "--no-cache"]) == 0  # -> run_dir_copy/judged/<judge id>/
    new = tmp_path / "new"
    assert main(["leaderboard", str(run_dir_copy), "--rejudged", runs["judge_id"], "--out", str(new)]) == 0

    def metric(folder, name):  # noqa: ANN001, ANN202
        rows = {r["metric"]: r for r in csv.DictReader((folder / "leaderboard.csv").open())}
        return float(next(v for k, v in rows[name].items() if k != "metric") or "nan")  # NaN is written empty

    assert metric(own, "schwartz_dilemmas_power/n_scored_csr") == 2
    assert metric(new, "schwartz_dilemmas_power/n_scored_csr") == 0
    assert math.isnan(metric(new, "schwartz_dilemmas_power/csr"))
    judges = list(csv.DictReader((new / "judges.csv").open()))
    assert {r["judge"] for r in judges if r["task"] == "schwartz_dilemmas_power"} == {runs["judge_id"]}


def test_rejudge_thoughts_for_table_2(runs, tmp_path):
    from analysis.cli import main

    assert main(["judge", str(runs["run_dir"]), "--out", str(tmp_path / "t"), "--thoughts"]) == 0
    records = [json.loads(line) for line in (tmp_path / "t" / "judged.jsonl").read_text().splitlines()]
    thoughts = [r for r in records if r["template"] == "thought_inclination"]
    vb = runs["second_resps"]["valuebench_cot_test_economic"]
    assert len(thoughts) == sum(1 for r in vb if r["thought"].strip())
    assert all(r["template_version"] == "kang-t1/v1" for r in thoughts)
    row = json.loads((tmp_path / "t" / "summary.json").read_text())["tasks"]["valuebench_cot_test_economic"]
    assert row["n_scored_inconsistency"] == 0 and math.isnan(row["inconsistency"])  # nothing parsed


def test_unreachable_judge_keeps_the_generations(tiny_llama_dir, tmp_path, monkeypatch, caplog):
    """A judge that fails after the replies were generated leaves them logged and unscored (NaN),
    with the judge's one-sentence error in the log, instead of aborting the lm-eval run."""
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("VALUE_JUDGE_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("VALUE_JUDGE_MODEL", MODEL_NAME)
    monkeypatch.setenv("VALUE_JUDGE_MAX_RETRIES", "0")
    monkeypatch.setenv("VALUE_JUDGE_CACHE", str(tmp_path / "judge.sqlite"))
    res = evaluate(tiny_llama_dir)
    samples = res["samples"]["schwartz_dilemmas_power"]
    assert len(samples) == 3 and all(resp(s)["output"] == s["resps"][0][0].strip() for s in samples)
    assert all(math.isnan(s["csr"]) and math.isnan(s["fr"]) for s in samples)
    assert res["results"]["schwartz_dilemmas_power"]["n_scored_csr,judge"] == 0.0
    assert "VALUE_JUDGE_BASE_URL" in caplog.text and "python -m analysis judge" in caplog.text
