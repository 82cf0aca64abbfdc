"""The measured agreement travels with the judged numbers: the leaderboard names the judge of each judged
task and its newest judge-bench result (or "not measured")."""

from __future__ import annotations

import json
from pathlib import Path


def _run(root: Path, judge_id: str) -> Path:
    folder = root / "run" / "model"
    folder.mkdir(parents=True)
    ts = "2026-01-01T00-00-00.000000"
    results = {"results": {"schwartz_dilemmas_power": {"alias": "power", "csr,judge": 0.5, "fr,judge": 1.0,
                                                       "n_scored_csr,judge": 2.0, "n_scored_fr,judge": 2.0}},
               "n-samples": {"schwartz_dilemmas_power": {"original": 2, "effective": 2}},
               "config": {"model": "steered-hf", "model_args": {"pretrained": "tiny"}}}
    (folder / f"results_{ts}.json").write_text(json.dumps(results))
    lines = [json.dumps({"doc_id": i, "doc": {"basic_value": "power"}, "filtered_resps": [str(
        {"output": "x", "csr": bool(i), "fluent": True, "judged_by": judge_id})]}) for i in range(2)]
    (folder / f"samples_schwartz_dilemmas_power_{ts}.jsonl").write_text("\n".join(lines) + "\n")
    return root / "run"


def _file(cache: Path, judge_id: str, kappa: float, date: str) -> None:
    from lm_eval_tasks.judge.profiles import safe_name

    folder = cache / "judge-bench" / safe_name(judge_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"conva-csr-{date}.json").write_text(json.dumps({
        "judge_id": judge_id, "set": "conva-csr", "n": 240, "kappa": kappa, "date": date,
        "kappa_ci": {"low": kappa - 0.1, "high": kappa + 0.1}}))


def test_leaderboard_shows_the_judge_and_its_newest_measured_agreement(tmp_path, monkeypatch, capsys):
    from analysis.cli import main

    monkeypatch.setenv("VALUE_STEERING_CACHE", str(tmp_path / "cache"))
    run = _run(tmp_path, "openai:gpt-4o@api.openai.com")
    assert main(["leaderboard", str(run), "--out", str(tmp_path / "lb")]) == 0
    out = capsys.readouterr().out
    assert "openai:gpt-4o@api.openai.com" in out and "not measured" in out
    _file(tmp_path / "cache", "openai:gpt-4o@api.openai.com", 0.55, "2026-01-01T00:00:00")
    _file(tmp_path / "cache", "openai:gpt-4o@api.openai.com", 0.62, "2026-02-01T00:00:00")  # the newest
    _file(tmp_path / "cache", "local:other", 0.99, "2026-03-01T00:00:00")  # another judge's
    assert main(["leaderboard", str(run), "--out", str(tmp_path / "lb")]) == 0
    out = capsys.readouterr().out
    assert "kappa 0.620 [0.520, 0.720] vs a reader, conva-csr, n=240" in out and "0.990" not in out
    assert "kappa 0.620" in (tmp_path / "lb" / "leaderboard.md").read_text()
    # the ConVA table prints the same beside CSR/FR, from the leaderboard folder
    from analysis.conva_table import judge_agreement

    assert judge_agreement(tmp_path / "lb") == [
        "CSR judged by openai:gpt-4o@api.openai.com: measured agreement kappa 0.620 [0.520, 0.720] vs a reader, "
        "conva-csr, n=240",
        "FR judged by openai:gpt-4o@api.openai.com: measured agreement not measured"]  # no conva-fr result filed
    assert judge_agreement(tmp_path) == []  # no judges.csv: nothing judged
