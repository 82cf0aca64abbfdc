"""Sweeps on a local Ray cluster (``ray.init(num_cpus=2)``, 2 CPU workers, a tiny Llama): the same output as the
single-process sweep config by config; a worker SIGKILLed mid-wave is restarted by Ray and its wave redone,
with identical results and nothing written twice; the driver killed with SIGKILL and rerun computes only the
missing configs. Without ray installed, --ray says how to install it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from conftest import kill_after_first_done, write_vector_sweep

from steering_models.errors import SpecError
from steering_models.sweep import SweepError, load_sweep, run_sweep, run_sweep_ray
from steering_models.sweep.config import parse_ray_settings

REPO = Path(__file__).resolve().parents[1]
TASKS = ["tiny_values_ll", "tiny_values_gen"]
N_CONFIGS = 6


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory, tiny_llama_dir, tiny_task_dir) -> Path:
    return write_vector_sweep(tmp_path_factory.mktemp("sweep-ray"), tiny_llama_dir, tiny_task_dir, TASKS, N_CONFIGS,
                              seed=5, configs_per_pass=2, ray={"workers": 2})


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="the Ray backend needs `ray`: pip install '.[ray]'")
    import logging

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def ray_out(tmp_path_factory, sweep_file, ray_cluster) -> Path:
    """The sweep run once on 2 Ray workers."""
    out = tmp_path_factory.mktemp("ray-out") / "out"
    run_sweep_ray(sweep_file, out, progress=False)
    return out


def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def outputs(folder: Path) -> dict[str, dict]:
    """Per config folder: each task's logged responses by doc, the results' metrics and steering block."""
    out = {}
    for entry in manifest(folder)["configs"]:
        config = folder / entry["output"]
        (results_file,) = config.rglob("results_*.json")
        results = json.loads(results_file.read_text())
        resps = {}
        for f in config.rglob("samples_*.jsonl"):
            task = next(t for t in TASKS if f.name.startswith(f"samples_{t}_"))
            rows = [json.loads(line) for line in f.read_text().splitlines()]
            resps[task] = {s["doc_id"]: (s["resps"], s["filtered_resps"]) for s in rows}
        out[entry["output"]] = {"resps": resps, "results": results["results"],
                                "steering": results["config"]["steering"]}
    return out


def loglikelihoods(out: dict[str, dict]) -> dict[tuple, float]:
    return {(name, doc, i): float(r[0][0]) for name, o in out.items()
            for doc, (resps, _) in o["resps"]["tiny_values_ll"].items() for i, r in enumerate(resps)}


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie left for a parent that does not reap it counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def assert_same_outputs(ours: dict[str, dict], ref: dict[str, dict]) -> None:
    """Same configs, steering blocks, generations and generation metrics; loglikelihoods within 1e-5 (batches
    of other configs can change the last bits of float32 sums)."""
    assert ours.keys() == ref.keys() and len(ours) == N_CONFIGS
    for name in ref:
        assert ours[name]["steering"] == ref[name]["steering"]
        assert ours[name]["resps"]["tiny_values_gen"] == ref[name]["resps"]["tiny_values_gen"]
        assert ours[name]["results"]["tiny_values_gen"] == ref[name]["results"]["tiny_values_gen"]
    got, want = loglikelihoods(ours), loglikelihoods(ref)
    assert got.keys() == want.keys()
    assert list(got.values()) == pytest.approx(list(want.values()), abs=1e-5, rel=0)


def test_ray_sweep_equals_single_process_sweep(tmp_path, sweep_file, ray_out):
    ray_manifest = manifest(ray_out)
    assert [e["status"] for e in ray_manifest["configs"]] == ["done"] * N_CONFIGS
    run = ray_manifest["runs"][0]
    assert run["backend"] == "ray" and run["ray"]["workers"] == 2 and len(run["workers"]) == 2
    # waves went to both workers (one model load each), and every config was written once
    assert len({w["pid"] for w in run["waves"]}) == 2
    assert sorted(run["configs"]) == list(range(N_CONFIGS))
    assert not list((ray_out / "configs").glob(".*.partial"))

    local = tmp_path / "local"
    run_sweep(sweep_file, local, progress=False)
    assert_same_outputs(outputs(ray_out), outputs(local))
    # the folder is an ordinary sweep folder: the local runner resumes it and finds nothing to do
    assert len(run_sweep(sweep_file, ray_out, progress=False)["runs"]) == 1
    assert len(run_sweep_ray(sweep_file, ray_out, progress=False)["runs"]) == 1


def worker_in_a_wave(deadline: float) -> int | None:
    """The PID of a process Ray titles ``ray::SweepWorker.run_wave`` (a worker inside a wave)."""
    while time.time() < deadline:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
            except OSError:
                continue
            if title.startswith(b"ray::SweepWorker.run_wave"):
                return int(pid)
        time.sleep(0.02)
    return None


@pytest.mark.slow
def test_worker_killed_mid_wave_is_redone_by_ray(tmp_path, sweep_file, ray_out):
    out = tmp_path / "out"
    box: dict = {}

    def sweep() -> None:
        try:
            box["manifest"] = run_sweep_ray(sweep_file, out, progress=False)
        except BaseException as e:  # surfaced below
            box["error"] = e

    thread = threading.Thread(target=sweep)
    thread.start()
    victim = worker_in_a_wave(time.time() + 600)
    assert victim is not None, "no Ray worker was seen inside a wave"
    os.kill(victim, signal.SIGKILL)
    thread.join(timeout=900)
    assert not thread.is_alive() and "error" not in box, box.get("error")
    final = box["manifest"]
    run = final["runs"][-1]
    assert [e["status"] for e in final["configs"]] == ["done"] * N_CONFIGS
    # each config committed exactly once, none by the killed process; Ray restarted it (a new pid)
    assert sorted(run["configs"]) == list(range(N_CONFIGS))
    assert victim not in {e["worker"]["pid"] for e in final["configs"]}
    assert victim not in {w["pid"] for w in run["waves"]}
    assert len({w["pid"] for w in run["waves"]} - {w["pid"] for w in run["workers"]}) == 1
    assert not list((out / "configs").glob(".*.partial"))
    assert outputs(out) == outputs(ray_out)


@pytest.mark.slow
def test_killed_driver_is_resumed_by_rerunning(tmp_path, sweep_file, ray_out):
    data = yaml.safe_load(sweep_file.read_text())
    data["configs_per_pass"] = 1  # six waves: the driver is killed after the first commit
    one_per_wave = sweep_file.with_name("one-per-wave.yaml")
    one_per_wave.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "steering_models.sweep", "run", str(one_per_wave), "--out", str(out), "--ray",
           "local", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    kill_after_first_done(cmd, out, env)
    before = manifest(out)
    done_before = {e["index"] for e in before["configs"] if e["status"] == "done"}
    assert 1 <= len(done_before) < N_CONFIGS
    stamps = {i: [f.stat().st_mtime_ns for f in sorted((out / before["configs"][i]["output"]).rglob("*.json*"))]
              for i in done_before}
    # the driver's workers die with it (Ray fate-shares a job's actors with its driver)
    workers = {e["worker"]["pid"] for e in before["configs"] if e["status"] == "done"}
    deadline = time.time() + 120
    while time.time() < deadline and any(alive(pid) for pid in workers):
        time.sleep(0.2)
    assert not any(alive(pid) for pid in workers)

    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{N_CONFIGS}/{N_CONFIGS} configs done" in again.stdout
    final = manifest(out)
    assert set(final["runs"][-1]["configs"]) == set(range(N_CONFIGS)) - done_before
    for i, times in stamps.items():
        assert [f.stat().st_mtime_ns for f in sorted((out / final["configs"][i]["output"]).rglob("*.json*"))] == times
    assert not list((out / "configs").glob(".*.partial"))
    assert_same_outputs(outputs(out), outputs(ray_out))  # waves of 1 config here, of 2 there


@pytest.mark.slow
def test_failing_config_on_a_worker_is_recorded_and_the_rest_kept(tmp_path, sweep_file, ray_cluster):
    data = yaml.safe_load(sweep_file.read_text())
    data["configs"] = ["unsteered",
                       {"name": "absent", "interventions": [
                           {"layer": 0, "op": "add", "source": {"vector": str(sweep_file.parent / "vecs.safetensors"),
                                                                "key": "k0"}, "positions": {"match": "your salary"}}]}]
    data["ray"] = {"workers": 1}
    data["configs_per_pass"] = 1  # one config per wave, so the error is the failing config's own (as run_sweep)
    out = tmp_path / "out"
    with pytest.raises(SpecError, match="'your salary' does not occur in the prompt"):
        run_sweep_ray(load_sweep(data), out, progress=False)
    entries = manifest(out)["configs"]
    assert [e["status"] for e in entries] == ["done", "failed"]
    assert "does not occur in the prompt" in entries[1]["error"]
    assert any((out / entries[0]["output"]).rglob("results_*.json"))


def test_without_ray_the_flag_says_how_to_install_it(tmp_path, sweep_file, monkeypatch, capsys):
    from steering_models.sweep.__main__ import main

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    assert main(["run", str(sweep_file), "--out", str(tmp_path / "out"), "--ray"]) == 2
    err = capsys.readouterr().err
    assert "--ray needs the `ray` package, which is not installed: install it with `pip install ray`" in err
    assert not (tmp_path / "out").exists()  # nothing touched, no model loaded


def test_ray_settings_are_checked_strictly(sweep_file, capsys):
    from steering_models.sweep.__main__ import main

    assert parse_ray_settings({"workers": 3, "num_gpus": 0.5}).num_gpus == 0.5
    with pytest.raises(SweepError, match=r"`ray.wokers`=2 .* is not a Ray setting"):
        parse_ray_settings({"wokers": 2})
    with pytest.raises(SweepError, match=r"`ray.num_cpus`=0 .* must be a number > 0"):
        parse_ray_settings({"num_cpus": 0})
    data = yaml.safe_load(sweep_file.read_text())
    bad = sweep_file.with_name("bad-ray.yaml")
    bad.write_text(yaml.safe_dump(dict(data, ray={"workers": 0})))
    with pytest.raises(SweepError, match=r"`ray.workers`=0 \(bad-ray.yaml\) must be an integer >= 1"):
        load_sweep(bad)
    with pytest.raises(SystemExit):
        main(["run", str(sweep_file), "--out", "x", "--workers", "2"])
    assert "--workers is a Ray setting: add --ray" in capsys.readouterr().err
    # the ray settings are not part of the sweep's hash: a local folder can be resumed on Ray and back
    other = sweep_file.with_name("other-ray.yaml")
    other.write_text(yaml.safe_dump(dict(data, ray={"workers": 1, "num_cpus": 2})))
    assert load_sweep(sweep_file).fingerprint("m") == load_sweep(other).fingerprint("m")


@pytest.mark.slow
def test_overflowing_config_on_a_worker_fails_alone(tmp_path, sweep_file, ray_cluster):
    """A config whose steering turns inf/NaN mid-wave is marked failed; the other configs of its wave are computed
    (as in a local sweep), and the run raises nothing (`sweep run --ray` then exits 1 from the manifest)."""
    import torch
    from safetensors.torch import save_file

    save_file({"ones": torch.ones(64)}, str(tmp_path / "ones.safetensors"))
    data = yaml.safe_load(sweep_file.read_text())
    data["configs"] = ["unsteered",
                       {"name": "overflow", "interventions": [{"layer": [0, 1], "op": "add", "strength": 3.0e38,
                                                               "source": {"vector": str(tmp_path / "ones.safetensors"),
                                                                          "key": "ones"}}]},
                       data["configs"][1]]
    data["ray"] = {"workers": 1}
    data["configs_per_pass"] = 2 + (N_CONFIGS - 1)  # unsteered, overflow and the 5 vectors in one wave
    (tmp_path / "vecs.safetensors").write_bytes((sweep_file.parent / "vecs.safetensors").read_bytes())
    out = tmp_path / "out"
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(data))
    run_sweep_ray(tmp_path / "sweep.yaml", out, progress=False)
    entries = manifest(out)["configs"]
    assert [e["status"] for e in entries] == ["done", "failed"] + ["done"] * (N_CONFIGS - 1)
    assert "NonFiniteSteering" in entries[1]["error"] and "inf/NaN" in entries[1]["error"]
    assert not (out / entries[1]["output"]).exists()
    assert all(any((out / e["output"]).rglob("results_*.json")) for e in entries if e["status"] == "done")
