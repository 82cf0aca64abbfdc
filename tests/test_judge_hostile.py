"""A judge endpoint that misbehaves per call (HTTP 200 with HTML, truncated JSON, JSON that is not a chat
completion, an empty reply, a dropped connection): a real HTTP server on 127.0.0.1 driven by the real
openai client; each failed call leaves its item unscored with the reason, never cached, and the run goes on."""

from __future__ import annotations

import json
import math
import sqlite3

import pytest
from conftest import SHARED
from judge_helpers import MODEL_NAME, HostileServer

from lm_eval_tasks.judge import JudgeError, build_judge
from lm_eval_tasks.judge.settings import load_settings
from lm_eval_tasks.lm_eval_outputs import logged_dict


def judge_on(server: HostileServer, cache, **extra: str):
    env = {"VALUE_JUDGE_BASE_URL": server.base_url, "VALUE_JUDGE_MODEL": MODEL_NAME,
           "VALUE_JUDGE_CACHE": str(cache), "VALUE_JUDGE_MAX_RETRIES": "0", "VALUE_JUDGE_CONCURRENCY": "1",
           "VALUE_JUDGE_TIMEOUT": "10", **extra}
    return build_judge(load_settings(env))


def cached_rows(cache) -> list[str]:
    with sqlite3.connect(cache) as db:
        return [r[0] for r in db.execute("SELECT raw FROM replies")]


FIELDS = [{"answer": f"it depends, case {i}"} for i in range(5)]


def test_bad_replies_are_unscored_with_the_reason_and_not_cached(tmp_path):
    srv = HostileServer(["html", "truncated", "schema", "empty"], default="Yes")
    try:
        cache = tmp_path / "c.sqlite"
        vs = judge_on(srv, cache).judge_many("answer_judgment", FIELDS)
        assert [v.parsed for v in vs] == [None, None, None, None, "yes"]
        assert "not JSON" in vs[0].error and "<!doctype html>" in vs[0].error
        assert "not valid JSON" in vs[1].error and "JSONDecodeError" in vs[1].error
        assert "no `choices` list" in vs[2].error
        assert "empty text" in vs[3].error
        assert vs[4].error is None and vs[4].raw == "Yes"
        assert all(v.error.count(". ") == 0 and srv.base_url.rstrip("/v1") in v.error for v in vs[:3])
        assert cached_rows(cache) == ["Yes"]  # only the good reply; the others are asked again
        again = judge_on(srv, cache).judge_many("answer_judgment", FIELDS)
        assert srv.posts == 9 and [v.parsed for v in again] == ["yes"] * 5 and again[4].cached
    finally:
        srv.stop()


def test_dropped_connection_keeps_received_verdicts_or_raises(tmp_path):
    srv = HostileServer(["No"], default="drop")
    try:
        vs = judge_on(srv, tmp_path / "c.sqlite").judge_many("answer_judgment", FIELDS, on_error="keep")
        assert [v.parsed for v in vs] == ["no", None, None, None, None]
        assert "cannot connect" in vs[1].error and all(v.error == vs[1].error for v in vs[2:])
        assert srv.posts <= 3  # the endpoint failed: the rest was not asked (one more may have been running)
        srv.script, srv.posts = ["drop"], 0
        with pytest.raises(JudgeError, match="cannot connect"):  # the default for callers that stop
            judge_on(srv, tmp_path / "c2.sqlite").judge_many("answer_judgment", FIELDS[:2])
    finally:
        srv.stop()


@pytest.mark.slow  # ~8 s on the busy 2-core machine: a whole lm-eval run
@pytest.mark.skipif(not (SHARED / "data" / "conva").is_dir(), reason="ConVA data (../shared/data/conva) absent")
def test_lm_eval_run_with_html_and_truncated_judge_replies_writes_everything(tiny_llama_dir, tmp_path,
                                                                             monkeypatch):
    """A real lm-eval run on the tiny model: the judge's first reply is an HTML page, the second truncated
    JSON, the rest valid; the run finishes, the results and samples are written, the two bad calls are
    unscored with their reasons in the samples and the good ones scored."""
    import lm_eval
    from lm_eval.loggers import EvaluationTracker

    srv = HostileServer(["html", "truncated"], default="Yes")
    try:
        for k, v in {"VALUE_JUDGE_BASE_URL": srv.base_url, "VALUE_JUDGE_MODEL": MODEL_NAME,
                     "VALUE_JUDGE_MAX_RETRIES": "0", "VALUE_JUDGE_CONCURRENCY": "1",
                     "VALUE_JUDGE_CACHE": str(tmp_path / "judge.sqlite")}.items():
            monkeypatch.setenv(k, v)
        tracker = EvaluationTracker(output_path=str(tmp_path / "run"))
        out = lm_eval.simple_evaluate(
            model="hf", model_args={"pretrained": str(tiny_llama_dir), "dtype": "float32"}, device="cpu",
            tasks=["schwartz_dilemmas_power"], limit=3, log_samples=True, gen_kwargs={"max_gen_toks": 4},
            metadata={"num_roles": 1, "conva_dir": str(SHARED / "data" / "conva")}, evaluation_tracker=tracker)
        tracker.save_results_aggregated(results={k: v for k, v in out.items() if k != "samples"},
                                        samples=out["samples"])
        tracker.save_results_samples(task_name="schwartz_dilemmas_power",
                                     samples=out["samples"]["schwartz_dilemmas_power"])
    finally:
        srv.stop()
    (results,) = (tmp_path / "run").rglob("results_*.json")
    (samples,) = (tmp_path / "run").rglob("samples_schwartz_dilemmas_power_*.jsonl")
    res = json.loads(results.read_text())["results"]["schwartz_dilemmas_power"]
    assert res["n_scored_csr,judge"] == 1.0 and res["csr,judge"] == 1.0  # the one "Yes" CSR reply
    logged = [json.loads(line)["filtered_resps"][0] for line in samples.read_text().splitlines()]
    logged = [logged_dict(r) for r in logged]
    assert len(logged) == 3
    assert "not JSON" in logged[0]["judge_error"] and "not valid JSON" in logged[1]["judge_error"]
    assert "judge_error" not in logged[2] and logged[2]["csr"] is True
    assert math.isnan(res["fr,judge"]) and res["n_scored_fr,judge"] == 0.0  # "Yes" is no True/False label
