"""`steered-hf` through real lm-eval: simple_evaluate, the plain `lm_eval` command, --use_cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import lm_eval
import pytest
import torch
from lm_eval.tasks import TaskManager
from safetensors.torch import save_file


@pytest.fixture(scope="module")
def steer_file(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("steer")
    torch.manual_seed(5)
    save_file({"v": torch.randn(64)}, out / "v.safetensors")
    (out / "steer.yaml").write_text(
        "name: tiny-add\nmeta: {kind: vector}\ninterventions:\n"
        "  - {layer: 1, op: add, strength: 12, source: {vector: v.safetensors}, positions: {match: ' your values'}}\n")
    return out / "steer.yaml"


def evaluate(model: str, model_args: dict, task_dir: Path, tasks: list[str], **kw) -> dict:
    return lm_eval.simple_evaluate(model=model, model_args=model_args, tasks=tasks,
                                   task_manager=TaskManager(include_path=str(task_dir)),
                                   batch_size=2, device="cpu", log_samples=True, **kw)


def test_simple_evaluate_steered_vs_plain(tiny_llama_dir, tiny_task_dir, steer_file):
    tasks = ["tiny_values_ll", "tiny_values_gen"]
    plain = evaluate("hf", {"pretrained": str(tiny_llama_dir)}, tiny_task_dir, tasks)
    empty = evaluate("steered-hf", {"pretrained": str(tiny_llama_dir)}, tiny_task_dir, tasks)
    steered = evaluate("steered-hf", {"pretrained": str(tiny_llama_dir), "steer": str(steer_file)},
                       tiny_task_dir, tasks)

    def resps(res: dict, task: str) -> list:
        return [s["resps"] for s in res["samples"][task]]

    for task in tasks:  # an empty spec is plain `hf`, bit for bit
        assert resps(empty, task) == resps(plain, task)
    assert resps(steered, "tiny_values_ll") != resps(plain, "tiny_values_ll")
    # HFLM's logits cache (one forward pass for " yes" and " no") gives what separate passes give
    no_cache = evaluate("steered-hf", {"pretrained": str(tiny_llama_dir), "steer": str(steer_file),
                                       "logits_cache": False}, tiny_task_dir, ["tiny_values_ll"])
    assert resps(no_cache, "tiny_values_ll") == resps(steered, "tiny_values_ll")
    info = steered["config"]["steering"]
    assert info["name"] == "tiny-add" and info["meta"] == {"kind": "vector"} and len(info["hash"]) == 64
    assert info["spec"]["interventions"][0]["positions"] == {"match": " your values"}
    assert empty["config"]["steering"]["name"] == "unsteered"


def test_use_cache_never_serves_unsteered_results(tmp_path, tiny_llama_dir, tiny_task_dir, steer_file):
    cache = str(tmp_path / "lmcache")
    args = {"pretrained": str(tiny_llama_dir)}
    plain = evaluate("steered-hf", args, tiny_task_dir, ["tiny_values_ll"], use_cache=cache)
    steered = evaluate("steered-hf", {**args, "steer": str(steer_file)}, tiny_task_dir, ["tiny_values_ll"],
                       use_cache=cache)
    fresh = evaluate("steered-hf", {**args, "steer": str(steer_file)}, tiny_task_dir, ["tiny_values_ll"])
    first = [s["resps"] for s in plain["samples"]["tiny_values_ll"]]
    second = [s["resps"] for s in steered["samples"]["tiny_values_ll"]]
    third = [s["resps"] for s in fresh["samples"]["tiny_values_ll"]]
    assert second != first and second == third
    from sqlitedict import SqliteDict

    tables = SqliteDict.get_tablenames(cache + "_rank0.db")
    assert "unnamed" in tables and any(t.startswith("steered_") for t in tables)
    # and a re-run of the steered model is served from its own table
    again = evaluate("steered-hf", {**args, "steer": str(steer_file)}, tiny_task_dir, ["tiny_values_ll"],
                     use_cache=cache)
    assert [s["resps"] for s in again["samples"]["tiny_values_ll"]] == third


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_plain_lm_eval_command_finds_steered_hf_and_keeps_hf(tmp_path, tiny_llama_dir, tiny_task_dir, steer_file):
    """From another folder, with no import flag: the installed start-up hook registers steered-hf
    after lm-eval's built-ins (so `hf` still works)."""
    lm_eval_bin = Path(sys.executable).parent / "lm_eval"
    out = tmp_path / "out"
    for model, extra in [("steered-hf", f",steer={steer_file}"), ("hf", "")]:
        proc = _run([str(lm_eval_bin), "--model", model, "--model_args", f"pretrained={tiny_llama_dir}{extra}",
                     "--tasks", "tiny_values_ll", "--include_path", str(tiny_task_dir), "--device", "cpu",
                     "--output_path", str(out / model), "--log_samples"], cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        results = sorted((out / model).rglob("results_*.json"))
        assert results, f"no results JSON under {out / model}"
        config = json.loads(results[-1].read_text())["config"]
        assert ("steering" in config) == (model == "steered-hf")
    probe = _run([sys.executable, "-c", "from lm_eval.api.registry import get_model; "
                  "print(get_model('hf').__name__, get_model('steered-hf').__name__, get_model('steered').__name__)"],
                 cwd=tmp_path)
    assert probe.stdout.split() == ["HFLM", "SteeredHFLM", "SteeredModel"], probe.stderr[-2000:]


def test_bad_spec_from_command_line_fails_before_loading(tmp_path, tiny_llama_dir, tiny_task_dir):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {layer: 99, op: add, strength: 1, source: {vector: nowhere.safetensors}}\n")
    proc = _run([str(Path(sys.executable).parent / "lm_eval"), "--model", "steered-hf", "--model_args",
                 f"pretrained={tiny_llama_dir},steer={bad}", "--tasks", "tiny_values_ll",
                 "--include_path", str(tiny_task_dir)], cwd=tmp_path)
    assert proc.returncode != 0
    assert "steer spec field `source.vector`='nowhere.safetensors' is not a file" in proc.stderr
    assert "Loading weights" not in proc.stderr
