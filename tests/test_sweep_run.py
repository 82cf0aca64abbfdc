"""Sweep runner on a tiny Llama with real lm_eval.simple_evaluate: outputs equal separate steered-hf runs,
validation before loading, the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import lm_eval
import pytest
import torch
import yaml
from lm_eval.tasks import TaskManager
from safetensors.torch import save_file

from steering_models.errors import SpecError
from steering_models.sweep import SweepError, check, load_sweep, run_sweep

TASKS = ["tiny_values_ll", "tiny_values_gen"]


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> Path:
    from sae_lens import StandardSAE, StandardSAEConfig

    out = tmp_path_factory.mktemp("sweep-assets")
    torch.manual_seed(21)
    save_file({"v": torch.randn(64), "w": torch.randn(64)}, out / "v.safetensors")
    sae = StandardSAE(StandardSAEConfig(d_in=64, d_sae=16))
    sae.save_model(out / "sae")
    (out / "features.txt").write_text("4\n9\n2\n")
    (out / "steer.yaml").write_text(
        "name: file-add\nmeta: {kind: vector}\ninterventions:\n"
        "  - {layer: 1, op: add, strength: 12, source: {vector: v.safetensors, key: v}, "
        "positions: {match: ' your values'}}\n")
    return out


def sweep_dict(model_dir: Path, task_dir: Path, assets: Path, **extra) -> dict:
    return {
        "model": {"pretrained": str(model_dir)},
        "tasks": TASKS,
        "include_path": str(task_dir),
        "batch_size": 4,
        "configs_per_pass": 3,
        "configs": [
            "unsteered",
            str(assets / "steer.yaml"),
            {"name": "all-w", "interventions": [{"layer": 0, "op": "add", "strength": 3, "positions": "all",
                                                 "source": {"vector": str(assets / "v.safetensors"), "key": "w"}}]},
            {"sae_top_features": {"sae": str(assets / "sae"), "features": str(assets / "features.txt"), "top_k": 2,
                                  "layer": 1, "strength": 40, "positions": {"match": " your values"}}},
        ],
        **extra,
    }


def write_sweep(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def config_files(out: Path, entry: dict) -> tuple[dict, dict[str, list[dict]]]:
    folder = out / entry["output"]
    (results_file,) = folder.rglob("results_*.json")
    samples = {}
    for f in folder.rglob("samples_*.jsonl"):
        task = next(t for t in TASKS if f.name.startswith(f"samples_{t}_"))
        samples[task] = [json.loads(line) for line in f.read_text().splitlines()]
    return json.loads(results_file.read_text()), samples


def test_sweep_equals_separate_steered_runs(tmp_path, tiny_llama_dir, tiny_task_dir, assets):
    sweep = load_sweep(sweep_dict(tiny_llama_dir, tiny_task_dir, assets))
    assert [c.name for c in sweep.configs] == ["unsteered", "file-add", "all-w", "sae-f4", "sae-f9"]
    out = tmp_path / "out"
    manifest = run_sweep(sweep, out, progress=False)
    assert [e["status"] for e in manifest["configs"]] == ["done"] * 5
    assert (out / "manifest.json").is_file() and len(manifest["runs"]) == 1
    manager = TaskManager(include_path=str(tiny_task_dir))
    for entry, spec in zip(manifest["configs"], sweep.configs, strict=True):
        results, samples = config_files(out, entry)
        assert results["config"]["steering"]["name"] == spec.name
        assert results["config"]["steering"]["hash"] == entry["spec_hash"] == spec.fingerprint()
        assert set(samples) == set(TASKS) and all(len(s) == 4 for s in samples.values())
        alone = lm_eval.simple_evaluate(model="steered-hf", model_args={"pretrained": str(tiny_llama_dir), "steer": spec},
                                        tasks=TASKS, task_manager=manager, batch_size=1, device="cpu", log_samples=True)
        for task in TASKS:
            ours = sorted(samples[task], key=lambda s: s["doc_id"])
            ref = sorted(alone["samples"][task], key=lambda s: s["doc_id"])
            if task == "tiny_values_gen":
                assert [s["resps"] for s in ours] == [s["resps"] for s in ref]
            else:
                got = [float(r[0][0]) for s in ours for r in s["resps"]]
                want = [float(r[0][0]) for s in ref for r in s["resps"]]
                assert got == pytest.approx(want, abs=1e-5, rel=0)
            assert results["results"][task] == pytest.approx(
                {k: v for k, v in alone["results"][task].items()}, abs=1e-6) or task == "tiny_values_ll"
    # a second run of the same sweep recomputes nothing
    again = run_sweep(sweep, out, progress=False)
    assert len(again["runs"]) == 1


def test_validation_happens_before_any_weights_load(tmp_path, tiny_llama_dir, tiny_task_dir, assets, capsys):
    config_only = tmp_path / "no-weights"
    config_only.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (config_only / name).write_bytes((tiny_llama_dir / name).read_bytes())
    data = sweep_dict(config_only, tiny_task_dir, assets)
    # every spec checked against config.json alone: no weights needed
    from steering_models.sweep.__main__ import main

    assert main(["check", str(write_sweep(tmp_path / "sweep.yaml", data))]) == 0
    assert f"ok: 5 configs x 2 tasks on {config_only}" in capsys.readouterr().out
    bad = dict(data, configs=data["configs"] + [{"name": "deep", "interventions": [
        {"layer": 7, "op": "add", "source": {"vector": str(assets / "v.safetensors"), "key": "v"}}]}])
    with pytest.raises(SpecError, match=r"`layer`=7 is out of range: model has 3 layers"):
        run_sweep(load_sweep(bad), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    too_big = dict(data, configs=[{"sae_top_features": {"sae": str(assets / "sae"), "features": [3, 16],
                                                        "layer": 1}}])
    with pytest.raises(SpecError, match=r"`source.feature`=16 .* out of range: the SAE has 16 features"):
        check(load_sweep(too_big))
    with pytest.raises(SweepError, match="`modle`"):
        load_sweep(dict(data, modle={}))
    with pytest.raises(SweepError, match="names 'no_such_task'"):
        check(load_sweep(dict(data, tasks=["no_such_task"])))
    with pytest.raises(SweepError, match="two configs named 'unsteered'"):
        load_sweep(dict(data, configs=["unsteered", "unsteered"]))
    with pytest.raises(SpecError, match="`strengh`"):
        load_sweep(dict(data, configs=[{"sae_top_features": {"sae": str(assets / "sae"), "features": [1],
                                                             "layer": 1, "strengh": 3}}]))


def test_example_sweep_file_parses():
    """The paper-scale example (Gemma-2B-IT, 24 SAE features + unsteered) expands as documented."""
    sweep = load_sweep(Path(__file__).resolve().parents[1] / "examples" / "kang_sweep_gemma2b.yaml")
    assert len(sweep.configs) == 25 and sweep.configs[0].is_empty
    assert [c.name for c in sweep.configs[1:3]] == ["sae-f428", "sae-f1025"]
    iv = sweep.configs[3].to_dict()["interventions"][0]
    assert iv["source"]["feature"] == 1312 and iv["strength"] == 100 and iv["positions"] == {"match": " your values"}


def test_failing_config_is_recorded_and_earlier_ones_kept(tmp_path, tiny_llama_dir, tiny_task_dir, assets):
    data = sweep_dict(tiny_llama_dir, tiny_task_dir, assets, configs_per_pass=1, tasks=["tiny_values_ll"])
    data["configs"] = ["unsteered", {"name": "absent", "interventions": [
        {"layer": 0, "op": "add", "source": {"vector": str(assets / "v.safetensors"), "key": "v"},
         "positions": {"match": "your salary"}}]}]
    out = tmp_path / "out"
    with pytest.raises(SpecError, match="'your salary' does not occur in the prompt"):
        run_sweep(load_sweep(data), out, progress=False)
    entries = json.loads((out / "manifest.json").read_text())["configs"]
    assert [e["status"] for e in entries] == ["done", "failed"]
    assert "does not occur in the prompt" in entries[1]["error"]
    assert any((out / entries[0]["output"]).rglob("results_*.json"))


def test_gen_kwargs_override_the_tasks_generation_kwargs(tmp_path, tiny_llama_dir, tiny_task_dir):
    """`gen_kwargs:` is lm_eval's --gen_kwargs for every config (here: 1 new token instead of the task's 6)."""
    from transformers import AutoTokenizer

    from lm_eval_tasks.lm_eval_outputs import read_jsonl

    data = {"model": {"pretrained": str(tiny_llama_dir)}, "tasks": ["tiny_values_gen"],
            "include_path": str(tiny_task_dir), "batch_size": 4, "configs": ["unsteered"],
            "gen_kwargs": {"max_gen_toks": 1}}
    with pytest.raises(SweepError, match=r"`gen_kwargs`=\[1\] \(sweep\) must be a mapping of generation kwargs"):
        load_sweep(dict(data, gen_kwargs=[1]))
    run_sweep(load_sweep(data), tmp_path / "out", progress=False)
    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    texts = [s["resps"][0][0] for f in (tmp_path / "out").rglob("samples_*.jsonl") for s in read_jsonl(f)]
    one_token = {tok.decode([i]) for i in range(len(tok))}
    assert len(texts) == 4 and all(t in one_token for t in texts)
    assert any(t.strip() for t in texts)


def test_console_shows_one_tokenizing_bar_per_wave(tmp_path, tiny_llama_dir, tiny_task_dir, assets, capfd):
    """Configs served from answers computed alongside the wave's first show no lm-eval "Tokenizing inputs" bar."""
    data = sweep_dict(tiny_llama_dir, tiny_task_dir, assets, tasks=["tiny_values_ll"], limit=2)
    data["configs"] = data["configs"][:3]  # one wave of 3 configs
    manifest = run_sweep(load_sweep(data), tmp_path / "out", progress=True)
    assert [e["status"] for e in manifest["configs"]] == ["done"] * 3
    err = capfd.readouterr().err
    assert err.count("Tokenizing inputs: 100%") == 1, err
