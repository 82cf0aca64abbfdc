"""The ground floor's shared words: lm-eval's output files (names as lm-eval 0.4.13 writes them, and the
`:` spelling of copies), the one JSONL reader, the 17 values, and the embedded-model registry (sha check,
cache folder, messages) that both the steered model and the local judge resolve `default` through."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from lm_eval_tasks.embedded_models import (
    EMBEDDED,
    EmbeddedModelError,
    assemble_gguf,
    embedded_model,
    part_paths,
    resolve_pretrained,
)
from lm_eval_tasks.lm_eval_outputs import (
    LmEvalOutputError,
    logged_dict,
    read_jsonl,
    results_date_id,
    samples_name,
)
from lm_eval_tasks.values import VALUES, canonical_value, check_value, value_slug


def test_the_names_lm_eval_writes_are_read(tmp_path):
    """lm-eval's own EvaluationTracker writes the files; we find the task and the shared date id."""
    from lm_eval.loggers import EvaluationTracker

    tracker = EvaluationTracker(output_path=str(tmp_path))
    tracker.general_config_tracker.model_name_sanitized = "m"
    tracker.save_results_aggregated(results={"results": {"valuebench_ll_test_social": {"acc,none": 1.0}},
                                             "config": {}}, samples={})
    sample = {"doc_id": 0, "doc": {}, "target": 0, "arguments": [], "resps": [], "filtered_resps": [],
              "filter": "none", "metrics": ["acc"], "doc_hash": "", "prompt_hash": "", "target_hash": ""}
    tracker.save_results_samples(task_name="valuebench_ll_test_social", samples=[sample])
    (results,) = (tmp_path / "m").glob("results_*.json")
    (samples,) = (tmp_path / "m").glob("samples_*.jsonl")
    date_id = results_date_id(results.name)
    assert date_id is not None and ":" not in date_id
    assert samples_name(samples.name) == ("valuebench_ll_test_social", date_id)
    assert [s["doc_id"] for s in read_jsonl(samples)] == [0]


@pytest.mark.parametrize("date_id", ["2026-11-30T12-00-00.123456", "2026-11-30T12:00:00.123456",
                                     "2026-11-30T12-00-00"])
def test_both_spellings_of_the_date_id(date_id):
    name = samples_name(f"samples_schwartz_dilemmas_ica_self_direction_{date_id}.jsonl")
    assert name is not None and name.task == "schwartz_dilemmas_ica_self_direction" and name.date_id == date_id
    assert results_date_id(f"results_{date_id}.json") == date_id


def test_names_lm_eval_did_not_write_are_not_read():
    assert samples_name("samples_power.jsonl") is None
    assert samples_name("samples_power_2026-11-30T12-00-00.json") is None
    assert results_date_id("results_latest.json") is None
    assert results_date_id("results.json") is None


def test_read_jsonl_names_the_file_and_line(tmp_path):
    path = tmp_path / "samples_x_2026-11-30T12-00-00.jsonl"
    path.write_text('{"doc_id": 0}\n\n{"doc_id": 1}\n{"doc_id": 2, "resps"\n')  # a run killed mid-write
    with pytest.raises(LmEvalOutputError, match=rf"{path}:4 is not a JSON line .*lm-eval samples file"):
        list(read_jsonl(path))
    path.write_text('{"doc_id": 0}\n[1, 2]\n')
    with pytest.raises(LmEvalOutputError, match=rf"{path}:2 is a JSON list, not an object"):
        list(read_jsonl(path))
    path.write_text('{"doc_id": 0, "resps": []}\n{"doc_id": 1}\n')
    with pytest.raises(LmEvalOutputError, match=rf"{path}:2 lacks resps; is it a judged.jsonl\?"):
        list(read_jsonl(path, "a judged.jsonl", required=("doc_id", "resps")))


def test_logged_dict_reads_lm_eval_s_str_of_a_filter_dict():
    assert logged_dict("{'label': 'yes', 'p_yes_minus_p_no': nan}")["label"] == "yes"
    assert logged_dict({"a": 1}) == {"a": 1}
    assert logged_dict("yes") is None and logged_dict("{not python") is None


def test_one_list_of_values():
    from lm_eval_tasks.judge.templates import get_template

    assert len(VALUES) == 17 and VALUES[0] == "Positive coping" and VALUES[-1] == "Understanding"
    prompt = get_template("causal_graph").render(get_template("causal_graph").with_defaults({}))
    assert json.dumps(list(VALUES)) in prompt  # Template 5's default value list is this one
    assert canonical_value("positive_coping") == "Positive coping" and canonical_value("Power") is None
    assert value_slug("Breadth of Interest") == "breadth_of_interest"
    with pytest.raises(ValueError, match="not one of Kang et al.'s 17 ValueBench values"):
        check_value("breadth of interest")


def test_embedded_default_keeps_its_cache_folder_and_aliases(tmp_path, monkeypatch):
    """The folder name is what an earlier conversion wrote under the cache: a rename would convert again."""
    model = EMBEDDED["default"]
    monkeypatch.setenv("VALUE_STEERING_CACHE", str(tmp_path))
    assert model.cache_dir == tmp_path / "qwen2.5-coder-0.5b-instruct-1d9614638d18"
    assert embedded_model("default") is embedded_model("") is embedded_model(None) is model
    assert embedded_model("gpt2") is None and resolve_pretrained("gpt2") == "gpt2"
    model.cache_dir.mkdir()
    (model.cache_dir / "READY").write_text("built\n")  # a finished conversion: nothing is rebuilt
    assert resolve_pretrained("default") == str(model.cache_dir)

    from lm_eval_tasks.judge.local_model import resolve_local_model

    local = resolve_local_model("default")
    assert local.name == "default" and local.path == model.cache_dir


def fake_model(tmp_path: Path, data: bytes, declared: bytes) -> tuple:
    parts = [tmp_path / "p1.bin", tmp_path / "p2.bin"]
    parts[0].write_bytes(data[:7])
    parts[1].write_bytes(data[7:])
    model = dataclasses.replace(EMBEDDED["default"], name="tiny", gguf_bytes=len(declared),
                                gguf_sha256=hashlib.sha256(declared).hexdigest(), extra="tiny-model")
    return model, parts


def test_the_parts_are_checked_before_anything_is_built(tmp_path):
    good = b"GGUF" + bytes(range(40))
    model, parts = fake_model(tmp_path, good, good)
    assert assemble_gguf(model, tmp_path / "m.gguf", parts).read_bytes() == good
    model, parts = fake_model(tmp_path, good[:-1] + b"X", good)  # one byte damaged
    with pytest.raises(EmbeddedModelError) as err:
        assemble_gguf(model, tmp_path / "m.gguf", parts)
    assert f"expected {len(good)} bytes and {model.gguf_sha256}: the download is damaged" in str(err.value)
    assert "pip install --force-reinstall --no-cache-dir 'value-steering-eval[tiny-model]'" in str(err.value)
    assert not (tmp_path / "m.gguf").exists()  # a damaged file is never left behind


def test_a_missing_part_package_is_one_sentence_and_a_spec_error_for_steering(tmp_path, monkeypatch):
    missing = dataclasses.replace(EMBEDDED["default"], part_modules=("no_such_part_module_1",))
    with pytest.raises(EmbeddedModelError, match=r"model argument `pretrained`='default' needs the package "
                       r"no-such-part-module-1, which is not installed\. Install the default model with: "
                       r"pip install 'value-steering-eval\[default-model\]'"):
        part_paths(missing)
    from steering_models.default_model import resolve_pretrained as steering_resolve
    from steering_models.errors import SpecError

    monkeypatch.setenv("VALUE_STEERING_CACHE", str(tmp_path))  # nothing converted here yet
    monkeypatch.setitem(EMBEDDED, "default", missing)
    with pytest.raises(SpecError, match="needs the package no-such-part-module-1"):
        steering_resolve("default")
