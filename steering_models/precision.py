"""``dtype=auto``: bfloat16 where the device computes it natively, else float32.

Measured (bench/dtype_drift.py, bench/RESULTS.md): on a CPU with ``avx512_bf16`` bfloat16 scored 4.4x and
generated 1.3x faster than float32 with no label or greedy token changed; the issue reports an AVX2-only CPU
where it ran ~2.5x slower (emulated there). So ``auto`` picks bfloat16 only on
a CUDA GPU that reports ``torch.cuda.is_bf16_supported()`` or a CPU whose ``/proc/cpuinfo`` flags include
``avx512_bf16`` or ``amx_bf16``; everything else (other CPUs, MPS, unknown) runs float32.
"""

from __future__ import annotations

from pathlib import Path

import torch

_NATIVE_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU feature flags the kernel reports (empty where there is no /proc/cpuinfo)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags") and ":" in line:
            return set(line.split(":", 1)[1].split())
    return set()


def native_bf16(device: str | None) -> bool:
    """Whether ``device`` ("cpu", "cuda", "cuda:1", None = HFLM's default: cuda when present) runs bfloat16
    matmuls natively."""
    name = (device or ("cuda" if torch.cuda.is_available() else "cpu")).lower()
    if name.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if name == "cpu":
        return any(flag in cpu_flags() for flag in _NATIVE_CPU_FLAGS)
    return False


def resolve_dtype(dtype: str, device: str | None) -> str:
    """``auto`` -> "bfloat16" or "float32" for ``device``; any other value unchanged."""
    if dtype != "auto":
        return dtype
    return "bfloat16" if native_bf16(device) else "float32"
