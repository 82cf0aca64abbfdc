"""The sweep command in real processes: killed and resumed, a changed sweep refused, two shards run side by
side (2 processes) and merged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import kill_after_first_done, write_vector_sweep

from steering_models.sweep import SweepError, merge_sweeps, run_sweep

REPO = Path(__file__).resolve().parents[1]
N_CONFIGS = 6


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory, tiny_llama_dir, tiny_task_dir) -> Path:
    return write_vector_sweep(tmp_path_factory.mktemp("sweep-cmd"), tiny_llama_dir, tiny_task_dir, ["tiny_values_ll"],
                              N_CONFIGS, seed=4, configs_per_pass=1)


def sweep_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "steering_models.sweep", *args]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def results_files(folder: Path) -> dict[str, tuple[str, int]]:
    return {f.parts[-3]: (f.name, f.stat().st_mtime_ns) for f in (folder / "configs").rglob("results_*.json")}


def test_killed_sweep_resumes_without_recomputing(tmp_path, sweep_file):
    out = tmp_path / "out"
    kill_after_first_done(sweep_cmd("run", str(sweep_file), "--out", str(out), "--no-progress"), out, env(), 300)
    done_before = {e["output"] for e in manifest(out)["configs"] if e["status"] == "done"}
    assert 1 <= len(done_before) < N_CONFIGS
    kept = results_files(out)
    finished = subprocess.run(sweep_cmd("run", str(sweep_file), "--out", str(out), "--no-progress"), env=env(),
                              capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert f"{N_CONFIGS}/{N_CONFIGS} configs done" in finished.stdout
    final = manifest(out)
    assert all(e["status"] == "done" for e in final["configs"])
    # the configs finished before the kill were not recomputed: same files, and the 2nd run skipped them
    after = results_files(out)
    for name, stamp in kept.items():
        assert after[name] == stamp
    recomputed = {final["configs"][i]["output"] for i in final["runs"][-1]["configs"]}
    assert recomputed == {e["output"] for e in final["configs"]} - done_before
    assert not list((out / "configs").glob(".*.partial"))

    # a changed sweep file is refused (also from Python), and --fresh starts over
    changed = yaml.safe_load(sweep_file.read_text())
    changed["configs"][1]["vectors"]["strength"] = 7
    changed_file = sweep_file.with_name("changed.yaml")
    changed_file.write_text(yaml.safe_dump(changed))
    with pytest.raises(SweepError, match="Pass --fresh to discard the old results"):
        run_sweep(changed_file, out, progress=False)
    refused = subprocess.run(sweep_cmd("run", str(changed_file), "--out", str(out)), env=env(),
                             capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2 and "Pass --fresh" in refused.stderr


@pytest.mark.slow  # ~30 s; resume is covered by test_killed_sweep_resumes_without_recomputing
def test_two_shards_in_two_processes_then_merge(tmp_path, sweep_file):
    procs = [subprocess.Popen(sweep_cmd("run", str(sweep_file), "--out", str(tmp_path / f"s{i}"), "--shard",
                                        f"{i}/2", "--no-progress"), env=env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    for p in procs:
        stdout, stderr = p.communicate(timeout=600)
        assert p.returncode == 0, stderr[-3000:]
        assert "3/3 configs done" in stdout
    shards = [manifest(tmp_path / f"s{i}") for i in range(2)]
    assert [e["index"] for e in shards[0]["configs"] if e["status"] == "done"] == [0, 2, 4]
    assert [e["index"] for e in shards[1]["configs"] if e["status"] == "done"] == [1, 3, 5]
    merged_run = subprocess.run(sweep_cmd("merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out",
                                          str(tmp_path / "all")), env=env(), capture_output=True, text=True,
                                timeout=600)
    assert merged_run.returncode == 0, merged_run.stderr[-3000:]
    assert f"{N_CONFIGS}/{N_CONFIGS} configs done" in merged_run.stdout
    merged = manifest(tmp_path / "all")
    assert merged["shard"] == [0, 1] and merged["sweep_hash"] == shards[0]["sweep_hash"]
    names = []
    for entry in merged["configs"]:
        (results,) = (tmp_path / "all" / entry["output"]).rglob("results_*.json")
        names.append(json.loads(results.read_text())["config"]["steering"]["name"])
    assert names == ["unsteered"] + [f"vec-k{i}" for i in range(N_CONFIGS - 1)]
    # a merged folder is a complete sweep: running it again computes nothing
    assert len(run_sweep(sweep_file, tmp_path / "all", progress=False)["runs"]) == 2
    # shards of different sweeps are refused
    other = tmp_path / "other"
    other.mkdir()
    (other / "manifest.json").write_text(json.dumps({**shards[0], "sweep_hash": "f" * 64}))
    with pytest.raises(SweepError, match="different sweeps"):
        merge_sweeps([tmp_path / "s0", other], tmp_path / "bad")
