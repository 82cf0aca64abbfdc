"""Every bad steering spec gives one clear SpecError, raised before any weights load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from steering_models.errors import SpecError
from steering_models.spec import SteerSpec, load_spec


@pytest.fixture()
def config_only_dir(tmp_path: Path, tiny_llama_dir: Path) -> Path:
    """A model folder with config and tokenizer but NO weights: loading weights would fail loudly."""
    out = tmp_path / "config-only"
    out.mkdir()
    for f in tiny_llama_dir.iterdir():
        if not f.name.endswith(".safetensors"):
            (out / f.name).write_bytes(f.read_bytes())
    return out


@pytest.fixture()
def tiny_sae_dir(tmp_path: Path) -> Path:
    from sae_lens import StandardSAE, StandardSAEConfig

    torch.manual_seed(0)
    sae = StandardSAE(StandardSAEConfig(d_in=64, d_sae=32))
    sae.cfg.metadata.hook_name = "blocks.1.hook_resid_post"
    sae.save_model(tmp_path / "sae")
    return tmp_path / "sae"


def write(tmp_path: Path, spec: object, name: str = "steer.yaml") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(spec))
    return path


def make_lm(config_only_dir: Path, steer: Path):
    from steering_models.lm import SteeredHFLM

    return SteeredHFLM(pretrained=str(config_only_dir), steer=str(steer), device="cpu")


def vec_file(tmp_path: Path, dim: int = 64) -> Path:
    save_file({"v": torch.ones(dim)}, tmp_path / "v.safetensors")
    return tmp_path / "v.safetensors"


@pytest.mark.parametrize("bad, expected", [
    ({"interventions": [{"layer": 40, "op": "add", "strength": 1}]}, "`layer`=40 is out of range: model has 3 layers (0-2)"),
    ({"interventions": [{"layer": 1, "op": "add", "strenght": 1}]}, "`strenght`=1 is not a field of op `add`"),
    ({"interventions": [{"layer": "1", "op": "add"}]}, "`layer`='1' must be an integer"),
    ({"interventions": [{"layer": 1, "op": "multiply"}]}, "`op`='multiply' is not a steering op"),
    ({"interventions": [{"layer": 1, "op": "add", "positions": "middle"}]}, "`positions`='middle' is not a position selector"),
    ({"interventions": [{"layer": 1, "op": "add", "strength": "big"}]}, "`strength`='big' must be a finite number"),
    ({"interventionz": []}, "`interventionz`=[] is not a steer spec field"),
    ({"interventions": [{"layer": 1, "op": "add", "hook": "attn_out"}]}, "`hook`='attn_out' is not a hook point"),
    ({"interventions": [{"layer": 1, "op": "scale_feature", "factor": 2, "source": {"sae": "nowhere", "feature": 1}}]},
     "`source.sae`='nowhere' is not an SAE directory"),
])
def test_bad_spec_is_one_clear_error_before_weights_load(bad, expected, tmp_path, config_only_dir):
    if "source" not in json.dumps(bad) and bad.get("interventions") and "op" in bad["interventions"][0] \
            and bad["interventions"][0]["op"] == "add":
        bad["interventions"][0]["source"] = {"vector": str(vec_file(tmp_path))}
    with pytest.raises(SpecError) as err:
        make_lm(config_only_dir, write(tmp_path, bad))
    message = str(err.value)
    assert expected in message
    assert "Fix" in message or "Remove" in message or "Add" in message or "Point" in message


def test_feature_id_out_of_range(tmp_path, config_only_dir, tiny_sae_dir):
    spec = [{"layer": 1, "op": "add", "strength": 100, "source": {"sae": str(tiny_sae_dir), "feature": 32}}]
    with pytest.raises(SpecError, match=r"`source.feature`=32 is out of range: the SAE has 32 features \(0-31\)"):
        make_lm(config_only_dir, write(tmp_path, spec))


def test_vector_of_wrong_size(tmp_path, config_only_dir):
    spec = [{"layer": 1, "op": "add", "source": {"vector": str(vec_file(tmp_path, 65))}}]
    with pytest.raises(SpecError, match=r"holds a tensor of shape \[65\], but the model needs \[64\]"):
        make_lm(config_only_dir, write(tmp_path, spec))


def test_missing_steer_file_and_bad_yaml(tmp_path, config_only_dir):
    with pytest.raises(SpecError, match="`steer`='.*nope.yaml' is not a file"):
        make_lm(config_only_dir, tmp_path / "nope.yaml")
    bad = tmp_path / "broken.yaml"
    bad.write_text("interventions: [ {layer: 1\n")
    with pytest.raises(SpecError, match=r"broken.yaml: line 2: not valid YAML \(expected"):
        make_lm(config_only_dir, bad)


def test_sae_at_other_layer_warns(tmp_path, config_only_dir, tiny_sae_dir):
    spec = SteerSpec.from_dict([{"layer": 0, "op": "scale_feature", "factor": 2,
                                 "source": {"sae": str(tiny_sae_dir), "feature": 3}}])
    from transformers import AutoConfig

    with pytest.warns(UserWarning, match="trained on block 1 but is applied at layer"):
        spec.validate(AutoConfig.from_pretrained(config_only_dir))


def test_kang_setting_in_one_spec_and_round_trip(tmp_path, tiny_sae_dir):
    """Kang et al.'s released setting: add 100 x W_dec[f] after the SAE's block at " your values"."""
    path = tmp_path / "kang.yaml"
    path.write_text(
        "name: kang-f3\nmeta: {kind: sae_feature, feature: 3}\ninterventions:\n"
        f"  - {{layer: 1, op: add, strength: 100, source: {{sae: {tiny_sae_dir}, feature: 3}},"
        " positions: {match: ' your values'}}\n")
    spec = load_spec(path)
    assert spec.name == "kang-f3" and spec.meta == {"kind": "sae_feature", "feature": 3}
    (iv,) = spec.interventions
    assert iv.layers == (1,) and iv.hook == "resid_post" and iv.op.name == "add"
    assert iv.positions.kind == "match" and iv.positions.text == " your values"
    again = SteerSpec.from_dict(spec.to_dict())
    assert again.fingerprint() == spec.fingerprint()
    other = SteerSpec.from_dict({**spec.to_dict(), "interventions": [{**spec.to_dict()["interventions"][0], "strength": 50}]})
    assert other.fingerprint() != spec.fingerprint()


def test_shipped_example_spec_parses():
    """examples/kang_sae_gemma2b_f1312.yaml (README) is a valid spec: add x100 of an SAE decoder row."""
    from steering_models.spec import load_spec

    spec = load_spec(Path(__file__).resolve().parents[1] / "examples" / "kang_sae_gemma2b_f1312.yaml")
    (iv,) = spec.interventions
    d = iv.to_dict()
    assert spec.name == "kang-gemma2b-sae-f1312-x100" and d["op"] == "add"
    assert d["strength"] == 100 and d["positions"] == {"match": " your values"}
    assert d["source"]["feature"] == 1312
