"""The layer order of docs/ARCHITECTURE.md, checked on the code's real imports.

* ``lint-imports`` (import-linter) runs the contracts in pyproject.toml: ``lm_eval_tasks`` (ground floor)
  <- ``steering_models`` <- ``analysis``, nothing imports upward (indirect imports included); no cycle
  between sibling modules or packages inside any of the three.
* Inside ``steering_models`` a layers contract orders the modules (docs/ARCHITECTURE.md section 6); the
  ConVA op reaches the core only through its entry point.
* No import cycle between modules, per package: grimp's import graph (the one import-linter builds)
  searched for strongly connected components with networkx.
* The contracts can fail: the same pyproject.toml run on a throw-away copy of the three packages with
  one upward import is broken.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("lm_eval_tasks", "steering_models", "analysis")


def lint_imports(pythonpath: Path) -> subprocess.CompletedProcess:
    """import-linter's CLI (installed with the dev extra) on pyproject.toml's contracts, the packages found
    on ``pythonpath``."""
    script = Path(sys.executable).with_name("lint-imports")
    cli = [str(script)] if script.is_file() else [shutil.which("lint-imports") or "lint-imports"]
    env = dict(os.environ, PYTHONPATH=str(pythonpath))
    return subprocess.run([*cli, "--no-logo", "--no-cache", str(REPO / "pyproject.toml")],
                          cwd=pythonpath, env=env, capture_output=True, text=True, timeout=300)


def test_import_contracts_are_kept():
    proc = lint_imports(REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout and "kept" in proc.stdout


def module_cycles(package: str) -> list[list[str]]:
    """Every set of modules of ``package`` that import each other in a circle (directly or through others)."""
    import grimp
    import networkx as nx

    graph = grimp.build_graph(package, cache_dir=None)
    edges = nx.DiGraph()
    for module in graph.modules:
        edges.add_node(module)
        edges.add_edges_from((module, imported) for imported in graph.find_modules_directly_imported_by(module))
    return sorted(sorted(c) for c in nx.strongly_connected_components(edges) if len(c) > 1)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle_between_modules(package):
    assert module_cycles(package) == []


def internal_layers() -> list[str]:
    """The module names of pyproject.toml's steering_models layers contract (``a | b`` -> a, b)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: import-linter's own dependency
        import tomli as tomllib

    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (layers,) = [c["layers"] for c in contracts if c["id"] == "steering-models-internals"]
    return [name.strip() for line in layers for name in line.replace(":", "|").split("|")]


def test_the_contracts_catch_an_upward_import_and_a_cycle(tmp_path):
    """The ground floor importing analysis, two analysis modules importing each other, and the steering core
    importing ConVA (which reaches it through its entry point) break the contracts."""
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "steering_models" / "_bootstrap.py").write_text("")  # steered_hf.pth imports it at start-up
    for name in internal_layers():  # the internal layers contract wants each of its modules
        (tmp_path / "steering_models" / f"{name}.py").write_text("")
    (tmp_path / "steering_models" / "lm.py").write_text("import lm_eval_tasks.tasks\nimport steering_models.hooks\n")
    (tmp_path / "steering_models" / "ops.py").write_text("import steering_models.conva\n")  # core -> plug-in
    (tmp_path / "lm_eval_tasks" / "tasks.py").write_text("import analysis.report\n")  # upward
    (tmp_path / "analysis" / "report.py").write_text("import analysis.io\n")
    (tmp_path / "analysis" / "io.py").write_text("import analysis.report\n")  # a cycle
    proc = lint_imports(tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = " ".join(proc.stdout.split())
    assert "lm_eval_tasks.tasks -> analysis.report" in out
    assert "No cycles are allowed in analysis" in out
    assert "steering_models.ops -> steering_models.conva" in out
    assert "steering_models.lm -> steering_models.hooks" not in out  # downward inside: allowed
