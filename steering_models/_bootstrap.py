"""Start-up hook that makes ``lm_eval --model steered-hf`` and our task folder work with no flags.

lm-eval 0.4.13 has no plugin discovery for models (no entry-point scan; ``--include_path`` is for
tasks only). pip installs ``steered_hf.pth`` into site-packages; Python runs its one line at every
start-up: it imports this module inside a ``try`` (a broken install prints one line, never a
traceback). Every Python process in the environment pays for it, so this module imports nothing but
``sys`` (no ``importlib.abc``/``typing``/``__future__``, no torch, no lm-eval; ``python -X importtime
-c pass`` shows it under a few ms) and only puts a tiny finder on ``sys.meta_path``. When, and only
when, lm-eval itself imports

* ``lm_eval.models``: right after lm-eval registered its built-in models, we add ``steered-hf`` as
  a *lazy* placeholder (``"steering_models.lm:SteeredHFLM"``). Registering earlier would make the
  registry non-empty before lm-eval fills it, and ``get_model`` would then never load the
  built-ins (``hf`` would disappear).
* ``lm_eval.tasks.manager``: ``TaskManager`` is wrapped so that whenever lm-eval's own tasks are
  included, the folder of the installed ``lm_eval_tasks`` package is included too
  (``--include_path`` keeps working; a duplicate of our folder is ignored).
* ``lm_eval.__main__`` (the ``lm_eval`` command): a ``SpecError`` (a bad steering file or model
  argument) ends the run with its one sentence on stderr and exit code 2 instead of a traceback
  (``cli_evaluate`` is wrapped for the console script; ``python -m lm_eval`` gets the same from a
  ``sys.excepthook``).
* ``lm_eval._cli.harness``: once the command line is parsed, a ``--model steered-hf`` run's ``steer=`` file
  is parsed and checked against the model's config right away (``check_steer_args``), before lm-eval
  indexes its tasks and builds the model, so a bad steering file fails in seconds, not after ~40 s.

A callback that fails (an lm-eval version we do not know) prints one line and leaves lm-eval as it
is. lm-eval's newer main branch reads the ``lm_eval.models`` entry-point group, which pyproject.toml
also declares; both paths register the same placeholder, so they cannot collide.
"""

import sys

MODEL_NAME = "steered-hf"
MODEL_TARGET = "steering_models.lm:SteeredHFLM"
SPEC_ERROR_EXIT = 2


def register_model(models_module: object = None) -> None:  # builtin hints only: no typing at start-up
    """Register ``steered-hf`` in lm-eval's model registry (idempotent)."""
    from lm_eval.api.registry import model_registry

    if MODEL_NAME not in model_registry:
        model_registry.register(MODEL_NAME, target=MODEL_TARGET)


def tasks_dir() -> str | None:
    """The folder of the installed ``lm_eval_tasks`` package, found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("lm_eval_tasks")
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def patch_task_manager(manager_module: object) -> None:
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

    __init__._steered_hf_patched = True
    cls.__init__ = __init__


def is_spec_error(exc: BaseException | None) -> bool:
    """Whether ``exc`` is our ``SpecError`` (its module is loaded whenever one can exist)."""
    errors = sys.modules.get("steering_models.errors")
    return errors is not None and isinstance(exc, errors.SpecError)


def report_spec_error(exc: BaseException) -> None:
    sys.stderr.write(f"error: {exc}\n")
    sys.stderr.flush()


def patch_cli(main_module: object) -> None:
    """``lm_eval``'s ``cli_evaluate``: a ``SpecError`` -> its sentence on stderr, exit code 2."""
    original = getattr(main_module, "cli_evaluate", None)
    if original is None or getattr(original, "_steered_hf_patched", False):
        return

    def cli_evaluate(*args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return original(*args, **kwargs)
        except Exception as exc:
            if not is_spec_error(exc):
                raise
            report_spec_error(exc)
            raise SystemExit(SPEC_ERROR_EXIT) from None

    cli_evaluate._steered_hf_patched = True
    cli_evaluate.__doc__ = original.__doc__
    main_module.cli_evaluate = cli_evaluate
    install_excepthook()


def install_excepthook() -> None:
    """For ``python -m lm_eval`` (runpy runs ``lm_eval.__main__`` as ``__main__``, past our wrapper)."""
    previous = sys.excepthook
    if getattr(previous, "_steered_hf_patched", False):
        return

    def hook(kind: type, exc: BaseException, tb: object) -> None:
        if not is_spec_error(exc):
            return previous(kind, exc, tb)
        report_spec_error(exc)
        sys.stdout.flush()
        import os

        os._exit(SPEC_ERROR_EXIT)  # an unhandled exception always exits 1; the message is already out

    hook._steered_hf_patched = True
    sys.excepthook = hook


def check_steer_args(args: object) -> None:
    """The steering file of a parsed ``lm_eval --model steered-hf --model_args ...,steer=FILE`` command line,
    parsed and validated against the model's config (no weights): a ``SpecError`` now rather than after the
    task indexing. Anything else that goes wrong here is left for lm-eval to report its own way."""
    if getattr(args, "model", None) != MODEL_NAME:
        return
    model_args = getattr(args, "model_args", None)
    if isinstance(model_args, str):
        from lm_eval.utils import simple_parse_args_string

        model_args = simple_parse_args_string(model_args)
    if not isinstance(model_args, dict) or not model_args.get("steer"):
        return
    from steering_models.default_model import resolve_pretrained
    from steering_models.errors import SpecError
    from steering_models.model_helpers import model_config
    from steering_models.spec import load_spec

    spec = load_spec(model_args["steer"])
    if spec.is_empty:
        return
    try:
        config = model_config(resolve_pretrained(model_args.get("pretrained", "default")), model_args)
    except SpecError:
        raise
    except Exception:  # noqa: BLE001 (a model lm-eval cannot load either: its own error says why)
        return
    spec.validate(config, model_args.get("dtype"))


def patch_harness(harness_module: object) -> None:
    """``HarnessCLI.execute(args)``: :func:`check_steer_args` first."""
    cls = harness_module.HarnessCLI
    original = cls.execute
    if getattr(original, "_steered_hf_patched", False):
        return

    def execute(self, args):  # type: ignore[no-untyped-def]
        check_steer_args(args)
        return original(self, args)

    execute._steered_hf_patched = True
    cls.execute = execute


_AFTER_IMPORT = {
    "lm_eval.models": register_model,
    "lm_eval.tasks.manager": patch_task_manager,
    "lm_eval.__main__": patch_cli,
    "lm_eval._cli.harness": patch_harness,
}


def _run(callback: object, module: object) -> None:
    try:
        callback(module)
    except Exception as exc:  # noqa: BLE001 (never break lm-eval because our hook does not fit it)
        sys.stderr.write(f"steered-hf: start-up hook {callback.__name__} failed on {module.__name__} "
                         f"({type(exc).__name__}: {exc}); `--model steered-hf` or our tasks may be missing, "
                         "reinstall value-steering-eval.\n")


class _AfterImportFinder:
    """Finds nothing itself; wraps the real loader of a few lm-eval modules to run a callback.

    (A meta path finder needs only ``find_spec``; not subclassing ``importlib.abc.MetaPathFinder``
    keeps ``importlib.abc`` and what it imports out of every start-up.)
    """

    def find_spec(self, fullname, path, target=None):  # type: ignore[no-untyped-def]
        callback = _AFTER_IMPORT.get(fullname)
        if callback is None:
            return None
        if fullname == "lm_eval.__main__":  # `python -m lm_eval` looks it up, then runs it as __main__
            install_excepthook()
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

        def exec_module(module: object) -> None:
            original_exec(module)
            _run(callback, module)

        loader.exec_module = exec_module
        return spec


def install() -> None:
    """Put the finder on ``sys.meta_path`` once; apply at once to modules already imported."""
    if not any(type(f).__name__ == "_AfterImportFinder" for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImportFinder())
    for name, callback in _AFTER_IMPORT.items():
        module = sys.modules.get(name)
        if module is not None:
            _run(callback, module)


install()
