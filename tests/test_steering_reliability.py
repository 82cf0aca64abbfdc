"""Hostile or careless steering files on a tiny Llama: refused before any weights load in one sentence naming the
field and the file (duplicate layers, an empty file, a YAML bomb, a pickle renamed .safetensors, NaN vectors, a
strength that overflows the model's dtype), and a steering that turns inf/NaN at run time raises one sentence
naming the spec and layer instead of lm-eval scoring NaN; in a sweep that config fails and the others are done."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from steering_models.errors import SpecError
from steering_models.hooks import NonFiniteSteering
from steering_models.lm import SteeredHFLM
from steering_models.spec import load_spec


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def add_spec(folder: Path, name: str, vec: torch.Tensor, strength: float, layer: int | str = 1) -> Path:
    save_file({"v": vec.contiguous()}, str(folder / f"{name}.safetensors"))
    return write(folder / f"{name}.yaml", f"name: {name}\ninterventions:\n  - {{layer: {layer}, op: add, strength: "
                                          f"{strength:.6e}, source: {{vector: {name}.safetensors}}}}\n")


@pytest.fixture(scope="module")
def config_only(tiny_llama_dir, tmp_path_factory) -> Path:
    """The tiny model's config and tokenizer without its weights: loading it would fail, so a SpecError from it
    proves the check ran before any weights load."""
    out = tmp_path_factory.mktemp("no-weights")
    for f in tiny_llama_dir.iterdir():
        if f.suffix != ".safetensors":
            shutil.copy(f, out / f.name)
    return out


def refused(pretrained: Path, spec: Path, **kwargs) -> str:
    with pytest.raises(SpecError) as e:
        SteeredHFLM(pretrained=str(pretrained), steer=str(spec), device="cpu", **kwargs)
    return str(e.value)


def test_careless_files_are_refused_in_one_sentence(tmp_path):
    vec = tmp_path / "v.safetensors"
    save_file({"v": torch.ones(64)}, str(vec))
    cases = {
        "layer: [1, 1]": ("interventions:\n  - {layer: [1, 1], op: add, source: {vector: v.safetensors}}\n",
                          "names layer 1 twice"),
        "empty file": ("", "is empty (or only comments)"),
        "comments only": ("# steer.yaml\n# TODO\n", "is empty (or only comments)"),
        "no interventions": ("name: x\nmeta: {kind: sae_feature}\n", "has no `interventions`"),
        "duplicate key": ("name: a\nname: b\ninterventions: []\n", "key 'name' is given twice"),
        "400-digit strength": ("interventions:\n  - {layer: 1, op: add, strength: " + "9" * 400
                               + ", source: {vector: v.safetensors}}\n", "an integer of 400 digits"),
        "alias bomb in meta": ("meta:\n  a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
            f"  {c}: &{c} [{','.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
            + "interventions: []\n", "alias bomb"),
    }
    for case, (text, why) in cases.items():
        path = write(tmp_path / "steer.yaml", text)
        with pytest.raises(SpecError) as e:
            load_spec(path)
        assert why in str(e.value) and ("steer.yaml" in str(e.value)), (case, str(e.value))
    # unsteered on purpose is still fine
    assert load_spec(write(tmp_path / "steer.yaml", "name: sft\ninterventions: []\n")).is_empty


def test_files_that_are_not_safetensors_are_named(tiny_llama_dir, tmp_path):
    torch.save({"v": torch.ones(64)}, tmp_path / "pickled.safetensors")  # a torch/pickle file, renamed
    (tmp_path / "text.safetensors").write_text("not a tensor file\n")
    for name in ("pickled", "text"):
        spec = write(tmp_path / f"{name}.yaml", f"interventions:\n  - {{layer: 1, op: add, source: {{vector: "
                                                 f"{name}.safetensors}}}}\n")
        msg = refused(tiny_llama_dir, spec)
        assert "`source.vector`" in msg and f"{name}.safetensors" in msg and "is not a safetensors file" in msg


def test_non_finite_steering_is_refused_before_weights_load(config_only, tmp_path):
    nan = torch.ones(64)
    nan[3] = float("nan")
    msg = refused(config_only, add_spec(tmp_path, "nan", nan, 1.0))
    assert "holds 1 NaN/inf value(s) among its 64" in msg and "nan.safetensors" in msg
    # 3e38 is a finite float64 (the YAML number) but 3e38 x 2 overflows float32
    msg = refused(config_only, add_spec(tmp_path, "huge", 2 * torch.ones(64), 3.0e38))
    assert "adds up to 6e+38" in msg and "float32's largest number 3.4e+38" in msg and "Lower `strength`" in msg
    # what float32 holds, float16 does not
    spec = add_spec(tmp_path, "big", torch.ones(64), 1.0e5)
    assert "float16's largest number 6.55e+04" in refused(config_only, spec, dtype="float16")
    with pytest.raises(OSError):  # in float32 it passes the checks, and only then fails to find the weights
        SteeredHFLM(pretrained=str(config_only), steer=str(spec), device="cpu")


def test_run_time_overflow_raises_naming_spec_and_layer(tiny_llama_dir, tiny_task_dir, tmp_path):
    """3e38 x a vector of ones passes the check before loading (finite in float32), but added at two layers
    the residual stream overflows at the second."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    spec = add_spec(tmp_path, "overflow", torch.ones(64), 3.0e38, layer="[0, 1]")
    manager = TaskManager(include_path=str(tiny_task_dir), include_defaults=False)
    with pytest.raises(NonFiniteSteering) as e:
        lm_eval.simple_evaluate(model="steered-hf", model_args={"pretrained": str(tiny_llama_dir), "steer": str(spec)},
                                tasks=["tiny_values_ll"], task_manager=manager, device="cpu", batch_size=4, limit=2)
    msg = str(e.value)
    assert "'overflow' made hidden states inf/NaN at layer 1 (resid_post), intervention 1 (op add" in msg
    assert "strength 3e+38" in msg and str(spec) in msg and msg.count(". ") == 0


@pytest.mark.slow  # a whole sweep with its task indexing (~15-45 s on the busy 2-core machine)
def test_sweep_marks_the_overflowing_config_failed_and_keeps_the_others(tiny_llama_dir, tiny_task_dir, tmp_path):
    import yaml

    from steering_models.sweep import run_sweep

    torch.manual_seed(0)
    save_file({"ok": torch.randn(64), "overflow": torch.ones(64)},
              str(tmp_path / "vecs.safetensors"))
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({
        "model": {"pretrained": str(tiny_llama_dir)}, "tasks": ["tiny_values_ll"], "include_path": str(tiny_task_dir),
        "batch_size": 4, "configs_per_pass": 3, "configs": [
            "unsteered",
            {"name": "overflow", "interventions": [{"layer": [0, 1], "op": "add", "strength": 3.0e38,
                                                    "source": {"vector": "vecs.safetensors", "key": "overflow"}}]},
            {"name": "ok", "interventions": [{"layer": 1, "op": "add", "strength": 4,
                                              "source": {"vector": "vecs.safetensors", "key": "ok"}}]}]}))
    manifest = run_sweep(sweep, tmp_path / "out", progress=False)
    status = {e["name"]: e["status"] for e in manifest["configs"]}
    assert status == {"unsteered": "done", "overflow": "failed", "ok": "done"}
    failed = next(e for e in manifest["configs"] if e["name"] == "overflow")
    assert "NonFiniteSteering" in failed["error"] and "inf/NaN" in failed["error"]
    assert not (tmp_path / "out" / failed["output"]).exists()
    for entry in manifest["configs"]:
        if entry["status"] == "done":
            (results,) = (tmp_path / "out" / entry["output"]).rglob("results_*.json")
            acc = json.loads(results.read_text())["results"]["tiny_values_ll"]["acc,none"]
            assert not math.isnan(acc)
