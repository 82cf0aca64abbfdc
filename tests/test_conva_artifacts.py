"""ConVA artifacts: round trip, damaged files refused, artifacts of another model refused before the
language model loads (the refusing folders hold a config.json only: loading weights would fail
differently)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conva_helpers import make_artifact
from transformers import AutoConfig, Gemma2Config

from steering_models.conva import artifacts
from steering_models.conva.artifacts import ArtifactError
from steering_models.lm import SteeredHFLM


def spec(art: Path) -> list[dict]:
    return [{"layer": [0, 1], "op": "conva", "artifact": str(art), "gate": "none"}]


def config_only(tmp: Path, config) -> Path:
    config.save_pretrained(tmp)
    assert not list(tmp.glob("*.safetensors"))
    return tmp


def test_round_trip(tmp_path, tiny_llama_dir):
    js = make_artifact(tiny_llama_dir, tmp_path / "a", layers=[0, 2])
    art = artifacts.load(js)
    assert art.value == "power" and art.layers == [0, 2] and art.d_model == 64 and art.n_layers == 3
    assert art.model["model_type"] == "llama" and art.model["embedding_fingerprint"]
    again = artifacts.load(artifacts.save(art, tmp_path / "b"))
    assert again.layers == art.layers and again.model == art.model and again.settings == art.settings
    assert set(again.tensors) == set(art.tensors)
    for key, t in art.tensors.items():
        assert torch.equal(again.tensors[key], t)
    # folder + value finds the same file
    assert artifacts.load(tmp_path / "a", "power").layers == [0, 2]


def test_damaged_tensor_file_is_refused(tmp_path, tiny_llama_dir):
    js = make_artifact(tiny_llama_dir, tmp_path)
    st = js.with_suffix(".safetensors")
    data = bytearray(st.read_bytes())
    data[-5] ^= 0xFF
    st.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="does not match the sha256"):
        artifacts.load(js)
    with pytest.raises(ArtifactError, match="does not match the sha256"):
        SteeredHFLM(pretrained=str(tiny_llama_dir), steer=spec(js), device="cpu")


def test_damaged_json_is_refused(tmp_path, tiny_llama_dir):
    js = make_artifact(tiny_llama_dir, tmp_path)
    js.write_text(js.read_text()[:40])
    with pytest.raises(ArtifactError, match="is not valid JSON"):
        artifacts.load(js)
    js.write_text(json.dumps({"value": "power"}))
    with pytest.raises(ArtifactError, match="is not a conva-artifact/1 file"):
        artifacts.load(js)


def test_other_d_model_refused_before_load(tmp_path, tiny_llama_dir):
    js = make_artifact(tiny_llama_dir, tmp_path / "art")
    config = AutoConfig.from_pretrained(str(tiny_llama_dir))
    config.hidden_size = 32
    other = config_only(tmp_path / "m32", config)
    with pytest.raises(ArtifactError, match="d_model=64 but this model's hidden size is 32"):
        SteeredHFLM(pretrained=str(other), steer=spec(js), device="cpu")


def test_other_architecture_refused_before_load(tmp_path, tiny_llama_dir):
    js = make_artifact(tiny_llama_dir, tmp_path / "art")
    llama = AutoConfig.from_pretrained(str(tiny_llama_dir))
    gemma = Gemma2Config(vocab_size=llama.vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16)
    other = config_only(tmp_path / "gemma", gemma)
    with pytest.raises(ArtifactError, match="fitted on another model .*model_type='llama'"):
        SteeredHFLM(pretrained=str(other), steer=spec(js), device="cpu")


def test_same_shapes_other_weights_refused(tmp_path, tiny_llama_dir, tiny_tokenizer):
    from conftest import build_model

    js = make_artifact(tiny_llama_dir, tmp_path / "art")
    other = tmp_path / "llama-seed1"
    build_model("llama", len(tiny_tokenizer), seed=1).save_pretrained(other)
    tiny_tokenizer.save_pretrained(other)
    with pytest.raises(ArtifactError, match="input embeddings differ"):
        SteeredHFLM(pretrained=str(other), steer=spec(js), device="cpu")


def test_probe_gate_needs_a_gate_in_the_artifact(tmp_path, tiny_llama_dir):
    from steering_models.errors import SpecError

    js = make_artifact(tiny_llama_dir, tmp_path)
    art = artifacts.load(js)
    for key in artifacts.GATE:
        del art.tensors[key]
    js = artifacts.save(art, tmp_path / "nogate")
    with pytest.raises(SpecError, match="fitted without one"):
        SteeredHFLM(pretrained=str(tiny_llama_dir), device="cpu",
                    steer=[{"layer": 0, "op": "conva", "artifact": str(js), "gate": {"type": "probe"}}])
