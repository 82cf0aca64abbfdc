"""What a sweep's passes ran, counted for the benchmarks (bench/throughput.py, bench/sweep_vs_naive.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PassCounts:
    forward_rows: int = 0  # rows (one per config and input) the model scored or generated
    forward_tokens: int = 0  # token columns run per config, padding included
    layer_tokens: int = 0  # token columns x blocks actually run (a shared trunk counts once)
