"""The start-up hook (steered_hf.pth -> steering_models._bootstrap) that every Python process in the
environment runs: it imports nothing but ``sys`` (a few ms), a broken install prints one line instead of a
traceback, and a ``SpecError`` under the ``lm_eval`` command is one line with exit code 2."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def import_times(code: str) -> dict[str, tuple[int, int]]:
    """module -> (self us, cumulative us) of ``python -S -X importtime -c code`` (no site: no other .pth)."""
    err = subprocess.run([sys.executable, "-S", "-X", "importtime", "-c", code], capture_output=True, text=True,
                         check=True, cwd="/").stderr
    found = {}
    for line in err.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|\s*(\S+)", line)
        if m:
            found[m[3]] = (int(m[1]), int(m[2]))
    return found


def test_hook_imports_nothing_but_sys():
    code = f"import sys; sys.path.insert(0, {str(REPO)!r}); import steering_models._bootstrap"
    base = import_times("import sys")
    times = import_times(code)
    added = set(times) - set(base)
    assert added == {"steering_models", "steering_models._bootstrap"}, added  # no importlib.abc, typing, ...
    best = min(import_times(code)["steering_models._bootstrap"][1] for _ in range(3))
    assert best < 20_000, f"the hook took {best} us"  # ~2-3 ms on the busy CI machine; the bound is 5 ms


def run_with_pth(site_dir: Path, pythonpath: Path | None) -> subprocess.CompletedProcess:
    """A Python start-up that processes ``site_dir``'s .pth files the way site-packages' are processed."""
    shutil.copy(REPO / "steered_hf.pth", site_dir / "steered_hf.pth")
    env = {"PATH": "/usr/bin:/bin"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([sys.executable, "-S", "-c", f"import site; site.addsitedir({str(site_dir)!r}); print('ran')"],
                          capture_output=True, text=True, env=env, cwd="/", timeout=60)


def test_broken_install_prints_one_line_not_a_traceback(tmp_path):
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    # the package is gone but its .pth is left behind
    gone = run_with_pth(site_dir, None)
    assert gone.stdout == "ran\n" and "Traceback" not in gone.stderr
    assert gone.stderr.count("\n") == 1 and gone.stderr.startswith("steered-hf: start-up hook off (ModuleNotFoundError")
    assert "reinstall value-steering-eval" in gone.stderr
    # the hook module itself is broken
    pkg = tmp_path / "src" / "steering_models"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "_bootstrap.py").write_text("raise RuntimeError('half-written file')\n")
    broken = run_with_pth(site_dir, tmp_path / "src")
    assert broken.stdout == "ran\n" and broken.stderr.count("\n") == 1
    assert "(RuntimeError: half-written file)" in broken.stderr and "Traceback" not in broken.stderr
    # and a working install prints nothing
    ok = run_with_pth(site_dir, REPO)
    assert ok.stdout == "ran\n" and ok.stderr == ""


def test_failing_callback_is_one_line_and_lm_eval_still_imports(tmp_path):
    """A callback that does not fit the installed lm-eval says so in one line; the import goes on."""
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
            "import steering_models._bootstrap as b\n"
            "def bad(module): raise AttributeError('no TaskManager here')\n"
            "b._AFTER_IMPORT['json.tool'] = bad\n"
            "import json.tool\nprint('imported', json.tool.__name__)\n")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout == "imported json.tool\n"
    assert out.stderr.count("\n") == 1 and "start-up hook bad failed on json.tool (AttributeError" in out.stderr


@pytest.mark.slow  # starts the real `lm_eval` command twice (~20-40 s each on the busy machine)
@pytest.mark.parametrize("how", ["console script", "python -m"])
def test_spec_error_under_lm_eval_is_one_line_exit_2(how, tiny_llama_dir, tiny_task_dir, tmp_path):
    bad = tmp_path / "steer.yaml"
    bad.write_text("interventions:\n  - {layer: 40, op: add, strength: 1, source: {vector: v.safetensors}}\n")
    cmd = [str(Path(sys.executable).parent / "lm_eval")] if how == "console script" else [sys.executable, "-m", "lm_eval"]
    out = subprocess.run(cmd + ["--model", "steered-hf", "--model_args",
                                f"pretrained={tiny_llama_dir},steer={bad}", "--tasks", "tiny_values_ll",
                                "--include_path", str(tiny_task_dir), "--limit", "1", "--device", "cpu"],
                         capture_output=True, text=True, timeout=400, cwd=tmp_path)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "steer spec field" in errors[0], out.stderr[-2000:]
    assert "Initializing steered-hf model" not in out.stderr  # refused right after parsing the command line
