"""``dtype=auto``: bfloat16 only where the device computes it natively (steering_models.precision)."""

from __future__ import annotations

import pytest
import torch

from steering_models import precision
from steering_models.lm import SteeredHFLM


@pytest.mark.parametrize(("flags", "expected"), [
    ("fpu sse2 avx2 avx512f avx512_bf16", "bfloat16"),
    ("fpu sse2 avx2 amx_bf16 amx_tile", "bfloat16"),
    ("fpu sse2 avx2 avx512f", "float32"),  # AVX2/AVX-512 without bf16: emulated, slower than float32
])
def test_auto_follows_the_cpu_flags(tmp_path, monkeypatch, flags, expected):
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nmodel name\t: test\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
    real = precision.cpu_flags
    monkeypatch.setattr(precision, "cpu_flags", lambda: real(info))
    assert precision.resolve_dtype("auto", "cpu") == expected
    assert precision.resolve_dtype("float16", "cpu") == "float16"  # anything else is kept


def test_unknown_devices_and_missing_cpuinfo_get_float32(tmp_path):
    assert precision.cpu_flags(tmp_path / "absent") == set()
    assert precision.resolve_dtype("auto", "mps") == "float32"
    if not torch.cuda.is_available():
        assert precision.resolve_dtype("auto", "cuda") == "float32"


def test_steered_hf_loads_the_auto_dtype(tiny_llama_dir):
    want = torch.bfloat16 if precision.native_bf16("cpu") else torch.float32
    lm = SteeredHFLM(pretrained=str(tiny_llama_dir), device="cpu", dtype="auto")
    assert lm.model.dtype == want
    assert SteeredHFLM(pretrained=str(tiny_llama_dir), device="cpu").model.dtype == torch.float32  # omitted: kept
