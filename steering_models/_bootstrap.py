"""Start-up hook that makes ``lm_eval --model steered-hf`` and our task folder work with no flags.

lm-eval 0.4.13 has no plugin discovery for models (no entry-point scan; ``--include_path`` is for
tasks only). pip installs ``steered_hf.pth`` into site-packages; Python runs its one line,
``import steering_models._bootstrap``, at start-up. This module only puts a tiny finder on
``sys.meta_path`` (no torch, no lm-eval import: start-up stays cheap). When, and only when, lm-eval
itself imports

* ``lm_eval.models``: right after lm-eval registered its built-in models, we add ``steered-hf`` as
  a *lazy* placeholder (``"steering_models.lm:SteeredHFLM"``). Registering earlier would make the
  registry non-empty before lm-eval fills it, and ``get_model`` would then never load the
  built-ins (``hf`` would disappear).
* ``lm_eval.tasks.manager``: ``TaskManager`` is wrapped so that whenever lm-eval's own tasks are
  included, the folder of the installed ``lm_eval_tasks`` package is included too
  (``--include_path`` keeps working; a duplicate of our folder is ignored).

lm-eval's newer main branch reads the ``lm_eval.models`` entry-point group, which pyproject.toml
also declares; both paths register the same placeholder, so they cannot collide.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from importlib.abc import MetaPathFinder
from types import ModuleType

MODEL_NAME = "steered-hf"
MODEL_TARGET = "steering_models.lm:SteeredHFLM"


def register_model(models_module: ModuleType | None = None) -> None:
    """Register ``steered-hf`` in lm-eval's model registry (idempotent)."""
    from lm_eval.api.registry import model_registry

    if MODEL_NAME not in model_registry:
        model_registry.register(MODEL_NAME, target=MODEL_TARGET)


def tasks_dir() -> str | None:
    """The folder of the installed ``lm_eval_tasks`` package, found without importing it."""
    spec = importlib.util.find_spec("lm_eval_tasks")
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def patch_task_manager(manager_module: ModuleType) -> None:
    """Make every ``TaskManager`` that includes lm-eval's defaults include our tasks too."""
    cls = manager_module.TaskManager
    if getattr(cls.__init__, "_steered_hf_patched", False):
        return
    original_init = cls.__init__

    def __init__(self, *args, include_path=None, include_defaults=True, **kwargs):  # type: ignore[no-untyped-def]
        ours = tasks_dir()
        if include_defaults and ours is not None:
            import os

            paths = [] if include_path is None else (
                list(include_path) if isinstance(include_path, (list, tuple)) else [include_path]
            )
            resolved = {os.path.realpath(str(p)) for p in paths}
            if os.path.realpath(ours) not in resolved:
                paths = [ours, *paths]  # user paths come later, so they can override ours
            include_path = paths
        original_init(self, *args, include_path=include_path, include_defaults=include_defaults, **kwargs)

    __init__._steered_hf_patched = True  # type: ignore[attr-defined]
    cls.__init__ = __init__


_AFTER_IMPORT: dict[str, Callable[[ModuleType], None]] = {
    "lm_eval.models": register_model,
    "lm_eval.tasks.manager": patch_task_manager,
}


class _AfterImportFinder(MetaPathFinder):
    """Finds nothing itself; wraps the real loader of a few lm-eval modules to run a callback."""

    def find_spec(self, fullname, path, target=None):  # type: ignore[no-untyped-def]
        callback = _AFTER_IMPORT.get(fullname)
        if callback is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        original_exec = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            original_exec(module)
            callback(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install() -> None:
    """Put the finder on ``sys.meta_path`` once; apply at once to modules already imported."""
    if not any(isinstance(f, _AfterImportFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImportFinder())
    for name, callback in _AFTER_IMPORT.items():
        module = sys.modules.get(name)
        if module is not None:
            callback(module)


install()
