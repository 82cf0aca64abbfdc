"""Sweeps: many steering configs evaluated with one model load, rows of several configs per batch.

Python API::

    from steering_models.sweep import load_sweep, run_sweep, merge_sweeps
    manifest = run_sweep("sweep.yaml", "out/")          # or run_sweep(load_sweep({...}), ...)
    manifest = run_sweep_ray("sweep.yaml", "out/", workers=2)   # on Ray workers (needs `ray`)

Command line: ``python -m steering_models.sweep run sweep.yaml --out DIR [--shard i/n] [--fresh] [--ray [ADDRESS]]``,
``python -m steering_models.sweep merge DIR1 DIR2 ... --out DIR``,
``python -m steering_models.sweep check sweep.yaml`` (validate only).
The sweep file format: :mod:`steering_models.sweep.config`.
"""

from steering_models.sweep.config import Sweep, SweepError, load_sweep
from steering_models.sweep.ray_backend import run_sweep_ray
from steering_models.sweep.runner import check, merge_sweeps, run_sweep

__all__ = ["Sweep", "SweepError", "check", "load_sweep", "merge_sweeps", "run_sweep", "run_sweep_ray"]
