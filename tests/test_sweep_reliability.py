"""A sweep's output folder never loses completed work: a missing, corrupt or edited manifest is rebuilt from the
config folders (nothing recomputed), damaged config files are detected and only those configs recomputed, a
folder holding another spec's results is refused rather than overwritten, and a second `run` on one --out is
refused while the first holds the lock (released by SIGKILL). Real sweeps of a tiny Llama on a tiny task."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, write_vector_sweep

from steering_models.sweep import SweepError, run_sweep
from steering_models.sweep.runner import LOCK, config_problem

N = 4


@pytest.fixture(scope="module")
def done(tmp_path_factory, tiny_llama_dir, tiny_task_dir) -> tuple[Path, Path]:
    """(the sweep file, a folder where it ran to the end)."""
    root = tmp_path_factory.mktemp("sweep-rel")
    sweep = write_vector_sweep(root, tiny_llama_dir, tiny_task_dir, ["tiny_values_ll"], N, seed=5, configs_per_pass=N)
    manifest = run_sweep(sweep, root / "out", progress=False)
    assert [e["status"] for e in manifest["configs"]] == ["done"] * N
    return sweep, root / "out"


def copy_of(done: tuple[Path, Path], tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(done[1], out)
    return out


def stamps(out: Path) -> dict[str, tuple[str, int]]:
    return {f.parts[-3]: (f.name, f.stat().st_mtime_ns) for f in (out / "configs").rglob("results_*.json")}


def entries(out: Path) -> list[dict]:
    return json.loads((out / "manifest.json").read_text())["configs"]


def test_damaged_manifest_and_config_files(done, tmp_path, caplog):
    """The manifest edited by hand (an entry removed) and three configs' files damaged: the manifest is rebuilt
    from the folders, exactly the damaged configs are computed again, the intact one is kept as it was."""
    out = copy_of(done, tmp_path)
    before = stamps(out)
    m = json.loads((out / "manifest.json").read_text())
    folders = [out / e["output"] for e in m["configs"]]
    del m["configs"][3]  # before the fix: "3/3 done", config 3 never run
    (out / "manifest.json").write_text(json.dumps(m))
    (samples1,) = folders[1].rglob("samples_*.jsonl")
    samples1.write_text("".join(samples1.read_text().splitlines(keepends=True)[:-1]))  # cut at a line boundary
    (results2,) = folders[2].rglob("results_*.json")
    results2.write_text(results2.read_text()[:300])  # a killed copy
    (samples3,) = folders[3].rglob("samples_*.jsonl")
    samples3.unlink()
    problems = [config_problem(out, e) for e in entries(done[1])]
    assert problems[0] is None and all(str(folders[i]) in problems[i] for i in (1, 2, 3))
    assert "holds 3 of the 4 samples" in problems[1] and "does not parse" in problems[2] and "missing" in problems[3]
    manifest = run_sweep(done[0], out, progress=False)
    assert [e["status"] for e in manifest["configs"]] == ["done"] * N
    assert manifest["runs"][-1]["configs"] == [1, 2, 3] and manifest["configs"][0]["recovered"]
    assert "config list differs" in manifest["rebuilt"]["why"] and "rebuilt it from the config folders" in caplog.text
    after = stamps(out)
    assert after[folders[0].name] == before[folders[0].name]
    assert all(after[f.name] != before[f.name] for f in folders[1:])
    assert all(config_problem(out, e) is None for e in manifest["configs"])


def test_folder_of_another_spec_is_refused_not_overwritten(done, tmp_path):
    """No manifest (before the fix, `run` then wiped configs/): a config folder holding another spec's results."""
    out = copy_of(done, tmp_path)
    (out / "manifest.json").unlink()
    configs = sorted((out / "configs").iterdir())
    shutil.rmtree(configs[2])
    shutil.copytree(configs[1], configs[2])  # config 2's folder now holds config 1's results
    before = stamps(out)
    with pytest.raises(SweepError, match=r"is of spec hash .* holds another sweep's results. Use another --out"):
        run_sweep(done[0], out, progress=False)
    assert stamps(out) == before


def test_second_run_on_one_out_is_refused_until_the_first_dies(done, tmp_path):
    """A second run on a held --out is refused; after the holder's SIGKILL a run with a truncated manifest
    rebuilds it and recomputes nothing."""
    out = copy_of(done, tmp_path)
    before = stamps(out)
    # another process holding the folder's lock as `sweep run` does (flock on DIR/.lock, its pid written in it)
    holder = subprocess.Popen([sys.executable, "-S", "-c", "import fcntl, os, sys, time; f = open(sys.argv[1], 'a+'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); f.truncate(0); f.write(f'pid {os.getpid()}, started now'); "
                               "f.flush(); print('held', flush=True); time.sleep(120)", str(out / LOCK)],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(SweepError, match=rf"is in use by another `sweep run` \(pid {holder.pid}, started now; lock "):
            run_sweep(done[0], out, progress=False)
    finally:
        holder.kill()  # SIGKILL: the kernel drops its lock
        holder.wait()
    (out / "manifest.json").write_text((out / "manifest.json").read_text()[:200])
    manifest = run_sweep(done[0], out, progress=False)
    assert all(e["status"] == "done" for e in manifest["configs"]) and "not valid JSON" in manifest["rebuilt"]["why"]
    assert stamps(out) == before and manifest["runs"] == []  # nothing recomputed


def test_sweep_check_searches_match_texts_in_the_task_prompts(tmp_path, tiny_llama_dir, tiny_task_dir, capsys):
    from steering_models.sweep.__main__ import main

    # the fixture's sweep matches " your values", which is in every prompt (its runs pass `check_matches` in
    # `sweep check`, as in test_sweep_run's validation test); a typo is caught before any weights load
    good = write_vector_sweep(tmp_path, tiny_llama_dir, tiny_task_dir, ["tiny_values_ll"], 2, seed=1)
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace(" your values", " your vaules"))
    assert main(["check", str(bad)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "`positions.match`=' your vaules' does not occur in the prompt of task " \
        "tiny_values_ll doc 0" in errors[0] and "fail after the model loads" in errors[0]
