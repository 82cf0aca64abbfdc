"""Run a sweep: one model load, every config evaluated by lm-eval, standard output per config, a manifest.

``DIR/manifest.json`` records the sweep's hash (sweep file contents, every spec's fingerprint, the
model's config and weight files), the shard, and per config its name, spec hash, status, output folder
and seconds. ``DIR/configs/NNN-name/`` holds exactly what ``lm_eval --output_path DIR/configs/NNN-name
--log_samples`` writes (``<model>/results_*.json`` with ``config.steering``, ``samples_<task>_*.jsonl``).
A config's folder is written under a ``.partial`` name and renamed when complete, then the manifest is
updated, so a killed sweep loses at most the configs of the pass it was in, and a restart with the same
sweep file skips every completed config. A different sweep file or model is refused unless ``fresh``.

Completed work is never deleted unless ``fresh``: a missing, unreadable or edited manifest (entries removed
or changed) is rebuilt from the sweep file and the config folders (each folder's results JSON carries its
spec hash; a folder holding another spec's results is refused, not overwritten). Before a config counts as
done its files are checked (the results JSON parses and carries the config's spec hash; every task's samples
file holds the results JSON's ``n-samples`` records and its last line parses); one that fails is computed
again, with a warning naming the file. ``DIR/.lock`` (an advisory ``flock``, released when the process
ends, even by SIGKILL) keeps a second ``run`` on the same ``--out`` out, with a clear message.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

from lm_eval_tasks.lm_eval_outputs import results_date_id
from steering_models.default_model import resolve_pretrained
from steering_models.model_helpers import model_config
from steering_models.sweep.config import Sweep, SweepError, load_sweep, slug

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
LOCK = ".lock"
FORMAT = 1


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def model_fingerprint(pretrained: str, kwargs: dict[str, Any]) -> str:
    """sha256 of a local model folder's config.json and weight file names/sizes, or of a hub id + revision."""
    folder = Path(pretrained)
    h = hashlib.sha256()
    if folder.is_dir():
        config = folder / "config.json"
        h.update(config.read_bytes() if config.is_file() else b"no-config")
        for f in sorted(folder.iterdir()):
            if f.suffix in (".safetensors", ".bin", ".gguf", ".pt"):
                h.update(f"{f.name}:{f.stat().st_size}".encode())
    else:
        h.update(f"{pretrained}@{kwargs.get('revision', 'main')}".encode())
    return h.hexdigest()


def parse_shard(value: str | tuple[int, int] | None) -> tuple[int, int]:
    """``"i/n"`` (0-based i) -> (i, n)."""
    if value is None:
        return 0, 1
    if isinstance(value, tuple):
        i, n = value
    else:
        try:
            i, n = (int(x) for x in str(value).split("/"))
        except ValueError:
            raise SweepError(f"--shard {value!r} is not of the form i/n (e.g. 0/2). Pass the 0-based shard index "
                             "and the number of shards.") from None
    if n < 1 or not 0 <= i < n:
        raise SweepError(f"--shard {i}/{n} is out of range: need 0 <= i < n. Shards are numbered 0..n-1.")
    return i, n


class ValidSweep(NamedTuple):
    """What :func:`validate_sweep` found: the resolved model path/id, its fingerprint, the TaskManager."""

    pretrained: str
    model_fingerprint: str
    task_manager: Any


def check(sweep: Sweep) -> tuple[str, str]:
    """Everything that can be checked without weights: specs vs the model config, task names, and every
    ``positions: {match: TEXT}`` against the tasks' prompts (``check_matches``).

    Returns the resolved model path/id and the model's fingerprint.
    """
    valid = validate_sweep(sweep)
    check_matches(sweep, valid.task_manager)
    return valid.pretrained, valid.model_fingerprint


MATCH_DOCS = 200  # prompts per task searched by `sweep check` (the sweep's `limit` when smaller)


def check_matches(sweep: Sweep, manager: Any) -> None:
    """A ``SweepError`` naming the config, text, task and prompt when a ``positions.match`` text does not occur
    in a prompt the sweep will evaluate (at run time that fails only after the weights load). Reads the
    tasks' documents and prompts (zero-shot context, as the tasks build it), no model."""
    matches = [(spec.name, iv.positions.text) for spec in sweep.configs for iv in spec.interventions
               if iv.positions.kind == "match" and iv.positions.text]
    if not matches:
        return
    loaded = manager.load(list(sweep.tasks))["tasks"]
    for task_name, task in sorted(loaded.items()):
        docs = task.eval_docs
        n = len(docs)
        if sweep.limit is not None:
            n = min(n, int(sweep.limit) if sweep.limit >= 1 else max(1, int(sweep.limit * n)))
        for i in range(min(n, MATCH_DOCS)):
            doc = docs[i]
            prompt = task.fewshot_context(doc, num_fewshot=int(task.config.num_fewshot or 0))
            text_of = prompt if isinstance(prompt, str) else str(prompt)
            for name, text in matches:
                if text not in text_of:
                    raise SweepError(f"config {name!r}: `positions.match`={text!r} does not occur in the prompt of "
                                     f"task {task_name} doc {i} (prompt starts {text_of[:80]!r}), so the run would "
                                     "fail after the model loads. Fix the match text in the config, or the tasks.")


def validate_sweep(sweep: Sweep) -> ValidSweep:
    """:func:`check`, returning the TaskManager that knows the sweep's tasks as well."""
    pretrained = str(resolve_pretrained(sweep.pretrained))
    config = model_config(pretrained, sweep.hf_kwargs)
    for spec in sweep.configs:
        spec.validate(config, sweep.hf_kwargs.get("dtype"))
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=sweep.include_path, metadata=sweep.metadata or None)
    unknown = [t for t in sweep.tasks if t not in manager.all_tasks]
    if unknown:
        raise SweepError(f"sweep file field `tasks` names {unknown[0]!r}, which lm-eval does not know. Fix the "
                         "task name (see `lm_eval ls tasks`) or set `include_path` to the task's folder.")
    return ValidSweep(pretrained, model_fingerprint(pretrained, sweep.hf_kwargs), manager)


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SweepError(f"{path} is not valid JSON ({e}). Pass the folder given as --out to `sweep run`.") from e
    if not isinstance(manifest, dict) or not isinstance(manifest.get("configs"), list):
        raise SweepError(f"{path} is not a sweep manifest (no `configs` list). Pass the folder given as --out to "
                         "`sweep run`.")
    return manifest


def _damaged_manifest(folder: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(the manifest, None), (None, None) when there is none, or (None, why) when it cannot be read."""
    try:
        return _read_manifest(folder), None
    except SweepError as e:
        return None, str(e)


def _entries_match(manifest: dict[str, Any], sweep: Sweep) -> bool:
    """Whether the manifest lists exactly the sweep's configs (an entry removed or edited by hand: no)."""
    entries = manifest.get("configs")
    if not isinstance(entries, list) or len(entries) != len(sweep.configs):
        return False
    try:
        return all(e["index"] == i and e["spec_hash"] == spec.fingerprint() and e["output"] ==
                   f"configs/{i:03d}-{slug(spec.name)}" and e["status"] in ("pending", "done", "failed", "other-shard")
                   for i, (e, spec) in enumerate(zip(entries, sweep.configs, strict=True)))
    except (KeyError, TypeError):
        return False


def _count_records(path: Path) -> tuple[int, bool]:
    """(non-blank lines of a JSONL file, whether its last one parses as JSON)."""
    n, last = 0, b""
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                n, last = n + 1, line
    try:
        json.loads(last)
    except ValueError:
        return n, False
    return n, True


def config_problem(root: Path, entry: dict[str, Any]) -> str | None:
    """None when the config folder of ``entry`` holds a complete lm-eval output of its spec, else why not
    (one phrase naming the file)."""
    out = root / entry["output"]
    results = sorted(out.rglob("results_*.json")) if out.is_dir() else []
    if not results:
        return f"{out} holds no results_*.json"
    path = results[-1]
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        return f"{path} does not parse ({type(e).__name__})"
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        return f"{path} has no `results`"
    got = ((data.get("config") or {}).get("steering") or {}).get("hash")
    if got != entry["spec_hash"]:
        return f"{path} is of spec hash {str(got)[:12]}, not this config's {entry['spec_hash'][:12]}"
    date_id = results_date_id(path.name)
    for task, counts in sorted((data.get("n-samples") or {}).items()):
        expected = counts.get("effective") if isinstance(counts, dict) else None
        samples = path.parent / f"samples_{task}_{date_id}.jsonl"
        if not samples.is_file():
            return f"{samples} is missing"
        n, last_ok = _count_records(samples)
        if not last_ok:
            return f"{samples} ends in a line that does not parse"
        if isinstance(expected, int) and n != expected:
            return f"{samples} holds {n} of the {expected} samples the results JSON counts"
    return None


class SweepLock:
    """``DIR/.lock``: one ``sweep run`` per output folder (``flock``; the kernel drops it when the process ends)."""

    def __init__(self, folder: Path) -> None:
        import fcntl

        self.path = folder / LOCK
        self._file = open(self.path, "a+")  # noqa: SIM115 (held open for the run)
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._file.seek(0)
            holder = self._file.read().strip() or "another process"
            self._file.close()
            raise SweepError(f"{folder} is in use by another `sweep run` ({holder}; lock {self.path}). Wait for it "
                             "to finish, or give this run another --out folder.") from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"pid {os.getpid()}, started {_now()}")
        self._file.flush()

    def release(self) -> None:
        if not self._file.closed:
            self._file.close()


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    manifest["updated"] = _now()
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, default=str))
    os.replace(tmp, folder / MANIFEST)


def _new_manifest(sweep: Sweep, sweep_hash: str, pretrained: str, model_fp: str,
                  shard: tuple[int, int]) -> dict[str, Any]:
    return {
        "format": FORMAT, "sweep_hash": sweep_hash, "sweep_file": sweep.path, "created": _now(),
        "model": {"pretrained": sweep.pretrained, "resolved": pretrained, "args": sweep.hf_kwargs,
                  "fingerprint": model_fp},
        "tasks": list(sweep.tasks), "metadata": sweep.metadata, "limit": sweep.limit, "shard": list(shard),
        "configs": [{"index": i, "name": spec.name, "spec_hash": spec.fingerprint(),
                     "output": f"configs/{i:03d}-{slug(spec.name)}",
                     "status": "pending" if i % shard[1] == shard[0] else "other-shard"}
                    for i, spec in enumerate(sweep.configs)],
        "runs": [],
    }


@contextmanager
def env_info_once() -> Iterator[None]:
    """lm-eval's ``simple_evaluate`` adds the environment info (torch's ``collect_env``: ``pip list`` and
    other subprocesses, seconds per call) to every results file. Within one sweep process it is the same
    for every config, so it is collected once and copied into each config's results."""
    import lm_eval.evaluator as evaluator

    original = evaluator.add_env_info
    cached: dict[str, Any] = {}

    def add_env_info(storage: dict[str, Any]) -> None:
        if not cached:
            original(cached)
        storage.update(json.loads(json.dumps(cached)))

    evaluator.add_env_info = add_env_info
    try:
        yield
    finally:
        evaluator.add_env_info = original


def _is_done(folder: Path, entry: dict[str, Any]) -> bool:
    return entry["status"] == "done" and config_problem(folder, entry) is None


@dataclass
class OpenedSweep:
    """A sweep whose output folder is checked and whose manifest lists what is left to compute."""

    sweep: Sweep
    folder: Path
    manifest: dict[str, Any]
    pending: list[dict[str, Any]]  # manifest entries still to compute, in sweep order
    n_mine: int  # configs of this shard (done or not)
    pretrained: str
    model_fingerprint: str
    task_manager: Any
    lock: SweepLock | None = None  # held until close() or the process ends

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()


@dataclass(frozen=True)
class ConfigJob:
    """One config to evaluate on a loaded SweepLM: its position among the model's specs (``local``), its
    index in the sweep and its output folder relative to the output root."""

    local: int
    index: int
    output: str


def open_sweep(sweep: Sweep | str | Path, out: str | Path, shard: str | tuple[int, int] | None = None,
               fresh: bool = False) -> OpenedSweep:
    """Validate ``sweep`` (no weights), check ``out`` holds this sweep (or start it), drop half-written
    config folders and return what is left to compute. Writes the manifest."""
    if not isinstance(sweep, Sweep):
        sweep = load_sweep(sweep)
    shard = parse_shard(shard)
    folder = Path(out)
    # an existing folder is locked first (a second run is refused at once); a new one after validation (a
    # mistyped sweep leaves no folder behind)
    lock = SweepLock(folder) if folder.is_dir() else None
    try:
        pretrained, model_fp, manager = validate_sweep(sweep)
        sweep_hash = sweep.fingerprint(model_fp)
        if lock is None:
            folder.mkdir(parents=True, exist_ok=True)
            lock = SweepLock(folder)
        return _open_locked(sweep, folder, shard, fresh, pretrained, model_fp, manager, sweep_hash, lock)
    except BaseException:
        if lock is not None:
            lock.release()
        raise


def _open_locked(sweep: Sweep, folder: Path, shard: tuple[int, int], fresh: bool, pretrained: str, model_fp: str,
                 manager: Any, sweep_hash: str, lock: SweepLock) -> OpenedSweep:
    manifest, damaged = (None, None) if fresh else _damaged_manifest(folder)
    if manifest is not None:
        if manifest.get("sweep_hash") != sweep_hash:
            raise SweepError(f"{folder} holds a sweep with hash {str(manifest.get('sweep_hash'))[:12]}, but this sweep "
                             f"(file, specs or model) hashes to {sweep_hash[:12]}. Pass --fresh to discard the old "
                             "results, or use another --out folder.")
        if list(manifest.get("shard", [0, 1])) != list(shard):
            raise SweepError(f"{folder} holds shard {manifest['shard'][0]}/{manifest['shard'][1]} of this sweep, not "
                             f"{shard[0]}/{shard[1]}. Use the same --shard, another --out folder, or --fresh.")
    rebuilt = None
    configs_dir = folder / "configs"
    started = configs_dir.is_dir() and any(p.name[0] != "." for p in configs_dir.iterdir())
    if fresh or (manifest is None and damaged is None and not started):  # fresh: the only way configs are deleted
        shutil.rmtree(configs_dir, ignore_errors=True)
        manifest = _new_manifest(sweep, sweep_hash, pretrained, model_fp, shard)
    elif manifest is None or not _entries_match(manifest, sweep):
        why = damaged or ("no manifest" if manifest is None else "the manifest's config list differs from the sweep's")
        old = manifest or {}
        manifest = _new_manifest(sweep, sweep_hash, pretrained, model_fp, shard)
        manifest["runs"] = list(old.get("runs") or [])
        rebuilt = manifest["rebuilt"] = {"at": _now(), "why": why}
    for stale in (folder / "configs").glob(".*.partial"):  # a config that was being written when killed
        shutil.rmtree(stale)
    mine = [e for e in manifest["configs"] if e["status"] != "other-shard"]
    pending = []
    for e in mine:
        if rebuilt is None and e["status"] != "done":
            pending.append(e)
            continue
        problem = config_problem(folder, e)
        if problem is None:
            e["status"] = "done"
            if rebuilt is not None:
                e["recovered"] = True
            continue
        if rebuilt is not None and (folder / e["output"]).exists() and "spec hash" in problem:
            raise SweepError(f"{problem}: {folder} holds another sweep's results. Use another --out folder, or "
                             "pass --fresh to discard them.")
        if e["status"] == "done" or (folder / e["output"]).exists():
            log.warning("sweep: config %s is computed again: %s", e["name"], problem)
        pending.append(e)
    for e in pending:
        e["status"] = "pending"
    if rebuilt is not None:
        n_done = sum(e["status"] == "done" for e in mine)
        log.warning("sweep: %s in %s (%s); rebuilt it from the config folders: %d of %d configs done.", MANIFEST,
                    folder, rebuilt["why"], n_done, len(mine))
    _write_manifest(folder, manifest)
    return OpenedSweep(sweep, folder, manifest, pending, len(mine), pretrained, model_fp, manager, lock)


def start_run(opened: OpenedSweep, **info: Any) -> dict[str, Any]:
    """Append this run's record to the manifest (``configs`` lists the configs it completes)."""
    run: dict[str, Any] = {"started": _now(), **info, "configs": []}
    opened.manifest["runs"].append(run)
    return run


def finish_run(opened: OpenedSweep, run: dict[str, Any], seconds: float) -> None:
    run["finished"] = _now()
    run["seconds"] = round(seconds, 3)
    _write_manifest(opened.folder, opened.manifest)


def mark_done(opened: OpenedSweep, run: dict[str, Any], index: int, seconds: float, **info: Any) -> None:
    """Record config ``index`` as done (its folder is in place) and write the manifest."""
    entry = opened.manifest["configs"][index]
    entry.pop("error", None)
    entry.update(status="done", seconds=round(seconds, 3), finished=_now(), **info)
    run["configs"].append(index)
    _write_manifest(opened.folder, opened.manifest)


def mark_failed(opened: OpenedSweep, index: int, error: BaseException) -> None:
    opened.manifest["configs"][index].update(status="failed", error=f"{type(error).__name__}: {error}"[:2000])
    _write_manifest(opened.folder, opened.manifest)


def jobs_of(opened: OpenedSweep) -> list[ConfigJob]:
    """The pending configs, numbered as the specs of the SweepLM that :func:`load_sweep_lm` builds for them."""
    return [ConfigJob(local, e["index"], e["output"]) for local, e in enumerate(opened.pending)]


def waves(jobs: Sequence[ConfigJob], size: int) -> list[list[ConfigJob]]:
    """Consecutive groups of ``size`` configs, each computed together in shared batches."""
    return [list(jobs[i:i + size]) for i in range(0, len(jobs), size)]


def load_sweep_lm(sweep: Sweep, pretrained: str, jobs: Sequence[ConfigJob]) -> Any:
    """Load the model once, with the specs of ``jobs`` (in order); the device defaults to CUDA when present."""
    from steering_models.sweep.lm import SweepLM

    kwargs = dict(sweep.hf_kwargs)
    if "device" not in kwargs:
        import torch

        kwargs["device"] = "cuda" if torch.cuda.is_available() else "cpu"
    return SweepLM(pretrained=pretrained, specs=[sweep.configs[j.index] for j in jobs],
                   batch_size=sweep.batch_size, share_prefix=sweep.share_prefix, share_trunk=sweep.share_trunk,
                   **kwargs)


def run_sweep(sweep: Sweep | str | Path, out: str | Path, shard: str | tuple[int, int] | None = None,
              fresh: bool = False, progress: bool = True) -> dict[str, Any]:
    """Evaluate every config of ``sweep`` (this shard's) into ``out``; returns the manifest."""

    opened = open_sweep(sweep, out, shard, fresh)
    try:
        return _run_opened(opened, progress)
    finally:
        opened.close()


def _run_opened(opened: OpenedSweep, progress: bool) -> dict[str, Any]:
    from tqdm import tqdm

    if not opened.pending:
        log.info("sweep: all %d configs of %s are done", opened.n_mine, opened.folder)
        return opened.manifest
    run = start_run(opened)
    t0 = time.perf_counter()
    jobs = jobs_of(opened)
    lm = load_sweep_lm(opened.sweep, opened.pretrained, jobs)
    run["model_load_s"] = round(time.perf_counter() - t0, 3)
    bar = tqdm(total=opened.n_mine, initial=opened.n_mine - len(jobs), desc="sweep configs", unit="config",
               disable=not progress)

    def done(job: ConfigJob, seconds: float) -> None:
        mark_done(opened, run, job.index, seconds)
        bar.update(1)

    def failed(job: ConfigJob, error: BaseException) -> None:  # that config only; the others go on
        log.error("sweep: config %s failed: %s", opened.manifest["configs"][job.index]["name"], error)
        mark_failed(opened, job.index, error)
        bar.update(1)

    with env_info_once():
        for wave in waves(jobs, opened.sweep.configs_per_pass):
            try:
                evaluate_wave(lm, opened.sweep, opened.task_manager, wave, opened.folder, done, failed)
            except Exception as e:  # recorded for the manifest's reader, then raised as is
                entries = opened.manifest["configs"]
                mark_failed(opened, next(j.index for j in wave if entries[j.index]["status"] != "done"), e)
                raise
    bar.close()
    finish_run(opened, run, time.perf_counter() - t0)
    return opened.manifest


def evaluate_wave(lm: Any, sweep: Sweep, manager: Any, wave: Sequence[ConfigJob], root: Path,
                  on_done: Callable[[ConfigJob, float], None],
                  on_failed: Callable[[ConfigJob, BaseException], None] | None = None) -> None:
    """Evaluate the configs of one pass on the loaded SweepLM, each into ``root / job.output`` (written under
    a ``.partial`` name, then renamed), calling ``on_done(job, seconds)`` after each. A config whose steering
    makes hidden states inf/NaN (``NonFiniteSteering``) is given to ``on_failed(job, error)`` and dropped from
    the pass, and the others are computed without it; without ``on_failed``, or for any other error, raises
    at the first config that fails (the ones before it are in place)."""
    from steering_models.hooks import NonFiniteSteering

    together = [job.local for job in wave]
    for job in wave:
        if job.local not in together:  # failed while computed alongside an earlier config
            continue
        while True:
            t = time.perf_counter()
            lm.select(job.local, together)
            final = root / job.output
            partial = final.parent / f".{final.name}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            shutil.rmtree(final, ignore_errors=True)
            try:
                _evaluate_into(lm, sweep, sweep.configs[job.index], manager, partial)
            except NonFiniteSteering as e:
                culprit = next((j for j in wave if j.local == e.config), None)
                if on_failed is None or culprit is None:
                    raise
                shutil.rmtree(partial, ignore_errors=True)
                together.remove(culprit.local)
                lm.release(culprit.local)
                on_failed(culprit, e)
                if culprit is job:
                    break
                continue  # this config again, without the one that failed
            os.replace(partial, final)
            lm.release(job.local)
            on_done(job, time.perf_counter() - t)
            break


def _evaluate_into(lm: Any, sweep: Sweep, spec: Any, manager: Any, path: Path) -> None:
    """What ``lm_eval --output_path PATH --log_samples`` does, for the selected config."""
    import lm_eval
    from lm_eval.loggers import EvaluationTracker

    tracker = EvaluationTracker(output_path=str(path))
    model_args = {"pretrained": sweep.pretrained, **sweep.hf_kwargs, "steer": spec.path or spec.name}
    results = lm_eval.simple_evaluate(
        model=lm, model_args=model_args, tasks=list(sweep.tasks), task_manager=manager, limit=sweep.limit,
        batch_size=sweep.batch_size, log_samples=True, evaluation_tracker=tracker,
        apply_chat_template=sweep.apply_chat_template)
    if results is None:
        return
    samples = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=samples)
    for task_name in results["configs"]:
        tracker.save_results_samples(task_name=task_name, samples=samples[task_name])
    if not any(path.rglob("results_*.json")):
        raise SweepError(f"lm-eval wrote no results file under {path} for config {spec.name!r} (see the log above).")


def merge_sweeps(sources: Sequence[str | Path], out: str | Path) -> dict[str, Any]:
    """Combine the output folders of a sweep's shards into ``out`` (copies each done config's folder)."""
    folders = [Path(s) for s in sources]
    manifests = []
    for f in folders:
        m = _read_manifest(f)
        if m is None:
            raise SweepError(f"{f} has no {MANIFEST}: it is not a sweep output folder. Pass the folders given as "
                             "--out to `sweep run`.")
        manifests.append(m)
    hashes = {m["sweep_hash"] for m in manifests}
    if len(hashes) > 1:
        raise SweepError(f"the folders hold different sweeps (hashes {', '.join(sorted(h[:12] for h in hashes))}). "
                         "Merge only shards of one sweep file run on one model.")
    dest = Path(out)
    dest.mkdir(parents=True, exist_ok=True)
    existing = _read_manifest(dest)
    if existing is not None and existing["sweep_hash"] not in hashes:
        raise SweepError(f"{dest} already holds another sweep (hash {existing['sweep_hash'][:12]}). Use an empty "
                         "--out folder.")
    merged = json.loads(json.dumps(manifests[0]))
    merged.update(shard=[0, 1], merged_from=[str(f.resolve()) for f in folders], runs=[])
    for m in manifests:
        merged["runs"].extend(m.get("runs", []))
    for entry in merged["configs"]:
        entry.update(status="pending")
        for k in ("seconds", "finished"):
            entry.pop(k, None)
        for f, m in zip(folders, manifests, strict=True):
            src = m["configs"][entry["index"]]
            if _is_done(f, src):
                target = dest / src["output"]
                if target.resolve() != (f / src["output"]).resolve():
                    shutil.rmtree(target, ignore_errors=True)
                    shutil.copytree(f / src["output"], target)
                entry.update(status="done", seconds=src.get("seconds"), finished=src.get("finished"),
                             shard=m.get("shard"))
                break
    _write_manifest(dest, merged)
    return merged


def summary(manifest: dict[str, Any]) -> str:
    entries: Iterable[dict[str, Any]] = [e for e in manifest["configs"] if e["status"] != "other-shard"]
    entries = list(entries)
    done = [e for e in entries if e["status"] == "done"]
    text = f"{len(done)}/{len(entries)} configs done"
    missing = [e["name"] for e in entries if e["status"] != "done"]
    if missing:
        text += f"; not done: {', '.join(missing[:10])}" + (" ..." if len(missing) > 10 else "")
    return text
