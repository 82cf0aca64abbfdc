"""``run --ray``: a sweep's configs evaluated by Ray actors, one loaded model per actor.

The driver (the process that runs ``run_sweep_ray``) validates the sweep and opens its output folder exactly
as a local run does (:func:`steering_models.sweep.runner.open_sweep`), then starts ``workers`` actors
(:class:`SweepWorker`, ``num_gpus``/``num_cpus`` each). Each actor loads the model once and takes waves of
configs from the driver through Ray's ``ActorPool`` (an idle actor gets the next wave). A worker evaluates a
wave with the same code as a local run (:func:`~steering_models.sweep.runner.evaluate_wave`) into a
temporary folder of its own and returns the files of every config folder; the driver alone writes them into
``OUT/configs`` (under a ``.partial`` name, then renamed), checks each config's spec hash against the
manifest, and writes the manifest. So the output is the one a local run writes, and ``--resume``, ``merge``
and ``analysis`` read it unchanged; the worker nodes need no shared output folder (they do need the model,
steering sources and task folders at the same paths, or a hub id).

Faults are Ray's to handle: an actor that dies (SIGKILL, a lost node) is restarted by Ray (``max_restarts``;
it reloads the model) and the wave it was computing is retried on the restarted actor
(``max_task_retries``). A wave's files come back only when the whole wave is done, so a config is never
written half, nor twice. If the driver dies, its actors die with it (they are owned by its job); rerunning
the same command resumes from the manifest, like a local run. The wave size is ``configs_per_pass``, lowered
so that every worker gets a wave (configs of one wave share batches; results do not depend on it).

Ray is optional (``pip install ray``; in a checkout ``pip install '.[ray]'``): this module imports without it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections import deque
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from steering_models.errors import SpecError
from steering_models.sweep.config import (
    RaySettings,
    Sweep,
    SweepError,
    load_sweep,
    parse_ray_settings,
)
from steering_models.sweep.runner import (
    ConfigJob,
    OpenedSweep,
    env_info_once,
    evaluate_wave,
    finish_run,
    jobs_of,
    load_sweep_lm,
    mark_done,
    mark_failed,
    open_sweep,
    start_run,
    validate_sweep,
    waves,
)

log = logging.getLogger(__name__)


def import_ray() -> Any:
    """``ray``, or one sentence on how to install it."""
    try:
        import ray
    except ImportError:
        raise SweepError("--ray needs the `ray` package, which is not installed: install it with `pip install ray` "
                         "(in a checkout: `pip install '.[ray]'`), or run without --ray.") from None
    return ray


@dataclass(frozen=True)
class WorkerInfo:
    """Which actor process did the work (recorded in the manifest)."""

    pid: int
    node: str
    device: str
    model_load_s: float


@dataclass(frozen=True)
class ConfigFiles:
    """A finished config folder, as the worker wrote it: relative path -> contents."""

    index: int
    seconds: float
    files: dict[str, bytes]


@dataclass(frozen=True)
class WaveResult:
    """What a worker returns for a wave: the folders of the configs it finished, and the first failure."""

    worker: WorkerInfo
    configs: tuple[ConfigFiles, ...]
    started: float  # the worker's clock (time.time()) when the wave began and when its files were packed
    ended: float
    failed: int | None = None  # sweep index of the config that raised (the wave stops there)
    error: BaseException | None = None
    # configs whose steering turned inf/NaN (NonFiniteSteering): dropped from the wave, the others computed
    dropped: tuple[tuple[int, BaseException], ...] = ()


class SweepWorker:
    """One Ray actor: loads the model once (with the specs of every pending config), evaluates waves."""

    def __init__(self, sweep: Sweep, model_fingerprint: str, jobs: list[ConfigJob], num_threads: int) -> None:
        self._error: BaseException | None = None
        self._stack = ExitStack()
        t0 = time.perf_counter()
        try:
            import ray
            import torch

            if num_threads > 0:
                torch.set_num_threads(num_threads)
            valid = validate_sweep(sweep)
            node = ray.get_runtime_context().get_node_id()
            if valid.model_fingerprint != model_fingerprint:
                raise SweepError(f"the Ray worker on node {node[:12]} sees another model at {valid.pretrained} "
                                 f"(fingerprint {valid.model_fingerprint[:12]}, the driver's is "
                                 f"{model_fingerprint[:12]}). Give every node the same model files.")
            self.sweep, self.manager = sweep, valid.task_manager
            self.lm = load_sweep_lm(sweep, valid.pretrained, jobs)
            self._stack.enter_context(env_info_once())  # collected once per worker, like a local run
            self.info = WorkerInfo(os.getpid(), node, str(self.lm.device), round(time.perf_counter() - t0, 3))
        except Exception as e:  # raised by ready(), so the driver sees the error itself, not a dead actor
            self._error = e

    def ready(self) -> WorkerInfo:
        if self._error is not None:
            raise self._error
        return self.info

    def run_wave(self, wave: list[ConfigJob]) -> WaveResult:
        t0 = time.time()
        finished: list[ConfigFiles] = []
        with tempfile.TemporaryDirectory(prefix="sweep-wave-") as tmp:
            root = Path(tmp)

            def pack(job: ConfigJob, seconds: float) -> None:
                folder = root / job.output
                files = {f.relative_to(folder).as_posix(): f.read_bytes()
                         for f in sorted(folder.rglob("*")) if f.is_file()}
                finished.append(ConfigFiles(job.index, round(seconds, 3), files))
                shutil.rmtree(folder)

            dropped: list[tuple[int, BaseException]] = []
            try:
                evaluate_wave(self.lm, self.sweep, self.manager, wave, root, pack,
                              lambda job, error: dropped.append((job.index, error)))
            except Exception as e:
                done = {c.index for c in finished} | {i for i, _ in dropped}
                failed = next(j.index for j in wave if j.index not in done)
                return WaveResult(self.info, tuple(finished), t0, time.time(), failed, e, tuple(dropped))
        return WaveResult(self.info, tuple(finished), t0, time.time(), dropped=tuple(dropped))


def connect(ray: Any, address: str | None) -> bool:
    """Connect to Ray (``address`` as ``ray.init`` takes it); False when this process already was."""
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    except ConnectionError as e:
        raise SweepError(f"--ray {address}: no Ray cluster to connect to ({e}). Start one (`ray start --head`), "
                         "pass its address (--ray HOST:6379), or pass --ray alone to start one here.") from None
    return True


def _plan(ray: Any, opened: OpenedSweep, settings: RaySettings) -> tuple[int, float, list[list[ConfigJob]]]:
    """Number of workers, GPUs per worker, and the waves."""
    total, free = ray.cluster_resources(), ray.available_resources()
    num_gpus = settings.num_gpus if settings.num_gpus is not None else (1.0 if total.get("GPU", 0) >= 1 else 0.0)
    if num_gpus > total.get("GPU", 0):
        raise SweepError(f"Ray setting `num_gpus`={num_gpus:g} per worker, but the Ray cluster has "
                         f"{total.get('GPU', 0):g} GPUs. Set `ray: {{num_gpus: 0}}` (or --num-gpus 0) for CPU "
                         "workers, or connect to a cluster with GPUs.")
    if settings.num_cpus > total.get("CPU", 0):
        raise SweepError(f"Ray setting `num_cpus`={settings.num_cpus:g} per worker, but the Ray cluster has "
                         f"{total.get('CPU', 0):g} CPUs. Lower `ray: {{num_cpus: ...}}` (or --num-cpus).")
    fit = int(free.get("CPU", 0) // settings.num_cpus)
    if num_gpus:
        fit = min(fit, int(free.get("GPU", 0) // num_gpus))
    jobs = jobs_of(opened)
    n = min(settings.workers or max(1, fit), len(jobs))
    if n > fit:
        log.warning("%d Ray workers asked for, but the cluster has room for %d now: the others start when "
                    "resources free up (or the cluster scales up)", n, fit)
    size = min(opened.sweep.configs_per_pass, math.ceil(len(jobs) / n))
    batches = waves(jobs, size)
    return min(n, len(batches)), num_gpus, batches


def _write_folder(final: Path, files: dict[str, bytes]) -> None:
    """Write a config folder under a ``.partial`` name, then rename it into place."""
    partial = final.parent / f".{final.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    for rel, data in files.items():
        parts = PurePosixPath(rel).parts
        if PurePosixPath(rel).is_absolute() or ".." in parts:
            raise SweepError(f"a Ray worker returned the file {rel!r}, which is outside its config folder.")
        path = partial.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)


def _spec_hash(files: dict[str, bytes]) -> str | None:
    for rel, data in files.items():
        if PurePosixPath(rel).name.startswith("results_") and rel.endswith(".json"):
            return json.loads(data).get("config", {}).get("steering", {}).get("hash")
    return None


def run_sweep_ray(sweep: Sweep | str | Path, out: str | Path, address: str | None = None,
                  workers: int | None = None, num_gpus: float | None = None, num_cpus: float | None = None,
                  shard: str | tuple[int, int] | None = None, fresh: bool = False,
                  progress: bool = True) -> dict[str, Any]:
    """:func:`~steering_models.sweep.runner.run_sweep` on Ray workers (module docstring); returns the manifest.

    ``address`` is ``ray.init``'s: None finds a running cluster (``RAY_ADDRESS``, or the last one started on
    this machine) or starts a local one, ``"auto"`` only connects, ``"local"`` always starts one,
    ``"HOST:PORT"``/``"ray://..."`` a given cluster. A process already connected (``ray.init`` called) keeps
    its connection. ``workers``/``num_gpus``/``num_cpus`` override the sweep file's ``ray:`` settings.
    """
    ray = import_ray()
    if not isinstance(sweep, Sweep):
        sweep = load_sweep(sweep)
    flags = {"workers": workers, "num_gpus": num_gpus, "num_cpus": num_cpus}
    settings = parse_ray_settings(asdict(replace(sweep.ray, **{k: v for k, v in flags.items() if v is not None})),
                                  "sweep file `ray:` with the command-line flags")
    opened = open_sweep(sweep, out, shard, fresh)
    try:
        if not opened.pending:
            log.info("sweep: all %d configs of %s are done", opened.n_mine, opened.folder)
            return opened.manifest
        connected_here = connect(ray, address)
        try:
            return _run(ray, opened, settings, progress)
        finally:
            if connected_here:
                ray.shutdown()
    finally:
        opened.close()  # the --out lock


def _run(ray: Any, opened: OpenedSweep, settings: RaySettings, progress: bool) -> dict[str, Any]:
    from ray.util.actor_pool import ActorPool
    from tqdm import tqdm

    n_workers, num_gpus, todo = _plan(ray, opened, settings)
    jobs = [job for wave in todo for job in wave]
    t0, wall0 = time.perf_counter(), time.time()
    run = start_run(opened, backend="ray", ray={
        "address": ray.get_runtime_context().gcs_address, "workers": n_workers, "num_gpus": num_gpus,
        "num_cpus": settings.num_cpus, "wave_size": len(todo[0]), "max_restarts": settings.max_restarts,
        "max_task_retries": settings.max_task_retries}, waves=[])
    worker_cls = ray.remote(SweepWorker).options(
        num_cpus=settings.num_cpus, num_gpus=num_gpus, max_restarts=settings.max_restarts,
        max_task_retries=settings.max_task_retries)
    threads = 0 if num_gpus else max(1, int(settings.num_cpus))
    actors = [worker_cls.remote(opened.sweep, opened.model_fingerprint, jobs, threads) for _ in range(n_workers)]
    try:
        try:
            infos = ray.get([a.ready.remote() for a in actors])
        except ray.exceptions.RayTaskError as e:
            if isinstance(e.cause, SpecError):
                raise e.cause from None
            raise
        run["workers"] = [asdict(i) for i in infos]
        run["model_load_s"] = max(i.model_load_s for i in infos)
        run["workers_ready_s"] = round(time.perf_counter() - t0, 3)  # actors started, models loaded
        bar = tqdm(total=opened.n_mine, initial=opened.n_mine - len(jobs), desc="sweep configs", unit="config",
                   disable=not progress)
        failure = _drive(ray, ActorPool(actors), deque(todo), opened, run, bar, wall0)
        bar.close()
    finally:
        for a in actors:
            ray.kill(a)
    finish_run(opened, run, time.perf_counter() - t0)
    if failure is not None:
        raise failure
    missing = [e["name"] for e in opened.pending if e["status"] not in ("done", "failed")]
    if missing:
        raise SweepError(f"{len(missing)} configs were not done ({', '.join(missing[:5])}"
                         f"{' ...' if len(missing) > 5 else ''}): their Ray workers died more often than "
                         f"`max_restarts`={settings.max_restarts} allows. Rerun the same command to finish them "
                         "(done configs are kept).")
    return opened.manifest


def _drive(ray: Any, pool: Any, queue: deque, opened: OpenedSweep, run: dict[str, Any], bar: Any,
           wall0: float) -> BaseException | None:
    """Feed waves to idle workers and commit what they return; returns the first config failure.

    After a failure no new wave starts, but the waves in flight are still committed."""
    failure: BaseException | None = None
    while True:
        while queue and failure is None and pool.has_free():
            pool.submit(lambda actor, wave: actor.run_wave.remote(wave), queue.popleft())
        if not pool.has_next():
            return failure
        try:
            result = pool.get_next_unordered()
            received = time.time()
        except ray.exceptions.RayActorError as e:  # a worker gone for good: its wave stays pending
            log.warning("a Ray worker died and will not be restarted: %s", str(e).splitlines()[0])
            continue
        except ray.exceptions.RayTaskError as e:  # not a config's error (those come back in the result)
            failure = failure or e
            continue
        failure = _commit(opened, run, result, bar) or failure
        # when the wave ran, reached the driver and was written: s after the run's start (each machine's
        # clock; saved with the next manifest write)
        run["waves"][-1].update({k: round(v - wall0, 3) for k, v in (
            ("started", result.started), ("ended", result.ended), ("received", received),
            ("committed", time.time()))})


def _commit(opened: OpenedSweep, run: dict[str, Any], result: WaveResult, bar: Any) -> BaseException | None:
    entries = opened.manifest["configs"]
    worker = {"pid": result.worker.pid, "node": result.worker.node}
    run["waves"].append({"configs": [c.index for c in result.configs] + [i for i, _ in result.dropped]
                         + ([result.failed] if result.error else []),
                         **worker, "busy_s": round(result.ended - result.started, 3)})
    for index, error in result.dropped:  # that config only, as in a local sweep; the wave's others go on
        if entries[index]["status"] != "done":
            log.error("sweep: config %s failed: %s", entries[index]["name"], error)
            mark_failed(opened, index, error)
            bar.update(1)
    for config in result.configs:
        entry = entries[config.index]
        if entry["status"] == "done":  # each wave is handed out once; never write a folder twice
            continue
        got = _spec_hash(config.files)
        if got != entry["spec_hash"]:
            error = SweepError(f"config {entry['name']!r} was evaluated by a Ray worker (pid {worker['pid']}) with "
                               f"spec hash {str(got)[:12]}, not the sweep's {entry['spec_hash'][:12]}: its node "
                               "reads different steering sources. Give every node the same files.")
            mark_failed(opened, config.index, error)
            return error
        _write_folder(opened.folder / entry["output"], config.files)
        mark_done(opened, run, config.index, config.seconds, worker=worker)
        bar.update(1)
    if result.error is not None:
        mark_failed(opened, result.failed, result.error)
    return result.error
