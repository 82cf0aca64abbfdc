"""SAE training, feature discovery and SAE steering on tiny models and tiny sae-lens SAEs (real code, no mocks)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from lm_eval.models.huggingface import HFLM
from test_steering import resid_after  # the residual probe the steering tests use
from transformers import AutoModelForCausalLM

from steering_models.lm import SteeredHFLM
from steering_models.sae import shipped_sae_dir
from steering_models.sae.top_features import top_features

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
PROMPT = ("Instruction:\nAnswer the Question according to your values.\n\nFirst write your Thought about the "
          "question, then Answer the question with 'yes' or 'no'.\n\nQuestion: Should I always be nice to others?"
          "\nThought:")


@pytest.fixture(scope="module")
def topk_sae_dir(tmp_path_factory) -> Path:
    from sae_lens import TopKSAE, TopKSAEConfig

    torch.manual_seed(2)
    sae = TopKSAE(TopKSAEConfig(d_in=64, d_sae=48, k=6))
    with torch.no_grad():
        sae.W_enc.copy_(torch.randn(64, 48))
        sae.W_dec.copy_(torch.randn(48, 64) / 8)
    sae.cfg.metadata.hook_name = "blocks.1.hook_resid_post"
    out = tmp_path_factory.mktemp("topk") / "sae"
    sae.save_model(out)
    return out


def span_token_indices(tokenizer, prompt: str, text: str) -> list[int]:
    """Independent of positions.find_text_positions: tokens whose character offsets overlap `text`."""
    start = prompt.index(text)
    end = start + len(text)
    offsets = tokenizer(prompt, return_offsets_mapping=True)["offset_mapping"]
    return [i for i, (a, b) in enumerate(offsets) if a < end and b > start and prompt[a:b].strip()]


def test_top_features_are_the_largest_activations_at_the_span(tiny_llama_dir, tiny_tokenizer, topk_sae_dir):
    from sae_lens import SAE

    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir)).eval()
    sae = SAE.load_from_disk(str(topk_sae_dir))
    got = top_features(model, tiny_tokenizer, sae, 1, PROMPT, "your values", k=5)

    ids = tiny_tokenizer(PROMPT)["input_ids"]
    pos = span_token_indices(tiny_tokenizer, PROMPT, "your values")
    assert got["positions"] == pos
    with torch.no_grad():
        hidden = model(torch.tensor([ids]), output_hidden_states=True).hidden_states[2][0]  # output of block 1
        acts = sae.encode(hidden[pos])
    peak = acts.max(0).values
    want = sorted(range(48), key=lambda f: -float(peak[f]))[:5]
    assert [f["feature"] for f in got["features"]] == want
    for f in got["features"]:
        assert f["activation"] == pytest.approx(float(peak[f["feature"]]), abs=1e-5)
    assert got["features"][0]["activation"] > 0


def test_top_features_rejects_absent_text(tiny_llama_dir, tiny_tokenizer, topk_sae_dir):
    from sae_lens import SAE

    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir)).eval()
    with pytest.raises(ValueError, match="does not occur in the prompt"):
        top_features(model, tiny_tokenizer, SAE.load_from_disk(str(topk_sae_dir)), 1, PROMPT, "no such words", 3)


def test_scale_x1_is_exact_noop_and_x100_only_touches_matched_tokens(tiny_llama_dir, tiny_tokenizer, topk_sae_dir):
    from sae_lens import SAE

    plain = HFLM(pretrained=str(tiny_llama_dir), device="cpu", batch_size=1)
    model = plain.model
    sae = SAE.load_from_disk(str(topk_sae_dir))
    feature = top_features(model, tiny_tokenizer, sae, 1, PROMPT, "your values", 1)["features"][0]["feature"]
    src = {"sae": str(topk_sae_dir), "feature": feature}
    match = {"match": " your values"}
    ids = torch.tensor([plain.tok_encode(PROMPT)])

    one = SteeredHFLM(pretrained=str(tiny_llama_dir), device="cpu", batch_size=1,
                      steer=[{"layer": 1, "op": "scale_feature", "factor": 1, "source": src, "positions": match}])
    with torch.no_grad():
        assert torch.equal(one._model_call(ids), plain._model_call(ids))

    base = resid_after(plain, 1, PROMPT)
    matched = span_token_indices(tiny_tokenizer, PROMPT, "your values")
    for spec, expect in (
        ({"op": "scale_feature", "factor": 100}, lambda f: (99 * f).unsqueeze(-1) * sae.W_dec[feature]),
        ({"op": "add", "strength": 100}, lambda f: 100 * sae.W_dec[feature].expand(len(f), -1)),
    ):
        lm = SteeredHFLM(pretrained=str(tiny_llama_dir), device="cpu", batch_size=1,
                         steer=[{"layer": 1, **spec, "source": src, "positions": match}])
        delta = resid_after(lm, 1, PROMPT) - base
        others = [i for i in range(len(base)) if i not in matched]
        assert torch.equal(delta[others], torch.zeros(len(others), 64)), f"{spec['op']} changed unmatched tokens"
        f_old = sae.encode(base[matched])[:, feature]
        torch.testing.assert_close(delta[matched], expect(f_old).detach(), rtol=1e-4, atol=1e-4)
        assert delta[matched].abs().max() > 1.0


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs ../shared/data (the corpus)")
def test_train_writes_a_loadable_sae_with_its_record(tiny_llama_dir, tmp_path):
    from sae_lens import SAE

    from steering_models.sae.train import TrainSettings, train_sae

    s = TrainSettings(layer=1, d_sae=32, k=4, context_size=64, train_tokens=64 * 24, heldout_tokens=64 * 4,
                      n_prompts=4, epochs=60, batch_size=256, lr=3e-3, dtype="float16")
    q = train_sae(str(tiny_llama_dir), SHARED_DATA, tmp_path / "sae", s, tmp_path / "cache")
    sae = SAE.load_from_disk(str(tmp_path / "sae"))
    assert sae.cfg.d_in == 64 and sae.cfg.d_sae == 32 and sae.cfg.metadata.hook_name == "blocks.1.hook_resid_post"
    assert sae.W_dec.dtype == torch.float16
    record = json.loads((tmp_path / "sae" / "training.json").read_text())
    assert record["settings"]["k"] == 4 and record["corpus"]["train_windows"] == 24
    assert json.loads((tmp_path / "sae" / "quality.json").read_text()) == q
    assert q["l0"] <= 4 + 1e-9 and q["n_tokens"] == 4 * 63
    assert q["explained_variance"] > 0.2  # 0.38 here; the initial dictionary explains < 0
    # the activation cache is reused: collecting the same windows again computes nothing
    from steering_models.model_helpers import load_lm
    from steering_models.sae.train import cached_activations, windows_for

    shards = sorted((tmp_path / "cache").rglob("acts_*.safetensors"))
    mtimes = [p.stat().st_mtime_ns for p in shards]
    model, tokenizer, identity = load_lm(str(tiny_llama_dir))
    train_w, _, desc = windows_for(tokenizer, SHARED_DATA, s)
    again = cached_activations(model, identity, train_w, desc["train_fingerprint"], s, tmp_path / "cache", "again")
    assert again.shape == (24 * 63, 64)
    assert [p.stat().st_mtime_ns for p in shards] == mtimes


def test_bad_settings_are_refused_before_any_model_loads(tmp_path):
    from steering_models.sae.train import TrainSettings, train_sae

    with pytest.raises(ValueError, match="`k`=0"):
        train_sae("/nonexistent-model", SHARED_DATA, tmp_path / "o", TrainSettings(k=0), tmp_path)
    with pytest.raises(FileNotFoundError, match="--data-dir"):
        train_sae("/nonexistent-model", tmp_path, tmp_path / "o", TrainSettings(), tmp_path)


SHIPPED_MAX_BYTES = 20 * 1024 * 1024


def test_shipped_sae_loads_offline_in_sae_lens_format():
    from sae_lens import SAE

    folder = shipped_sae_dir()
    sae = SAE.load_from_disk(str(folder))
    record = json.loads((folder / "training.json").read_text())
    quality = json.loads((folder / "quality.json").read_text())
    assert sae.cfg.d_in == 896 == record["model_identity"]["hidden_size"]  # Qwen2.5-Coder-0.5B's d_model
    assert sae.cfg.metadata.hook_name == f"blocks.{record['settings']['layer']}.hook_resid_post"
    assert sae.cfg.d_sae == record["settings"]["d_sae"] and sae.cfg.k == record["settings"]["k"]
    assert sae.W_dec.dtype == torch.float16
    assert sum(p.stat().st_size for p in folder.iterdir()) <= SHIPPED_MAX_BYTES
    # the bar for a usable dictionary, as measured on held-out text when it was trained
    assert quality["explained_variance"] >= 0.8 and quality["l0"] <= 64


def test_default_alias_names_the_shipped_sae():
    from steering_models.sae.ref import SAERef

    assert SAERef.from_value("default", "test", None).path == shipped_sae_dir()


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs ../shared/data (the held-out corpus)")
def test_shipped_sae_quality_remeasured_on_held_out_text():
    """The embedded default is run again on the held-out documents; the recorded figures must hold."""
    from steering_models.sae.train import remeasure

    folder = shipped_sae_dir()
    recorded = json.loads((folder / "quality.json").read_text())
    now = remeasure(folder, "default", SHARED_DATA)
    assert now["n_tokens"] == recorded["n_tokens"]
    assert abs(now["explained_variance"] - recorded["explained_variance"]) <= 0.02
    assert now["l0"] <= 64


def test_sweep_reads_a_top_features_file(tiny_llama_dir, tiny_tokenizer, topk_sae_dir, tmp_path):
    """The file `top-features` writes is a sweep's `features:` as is (its order, cut to top_k)."""
    from sae_lens import SAE

    from steering_models.sae.top_features import write
    from steering_models.sweep.config import load_sweep

    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir)).eval()
    result = top_features(model, tiny_tokenizer, SAE.load_from_disk(str(topk_sae_dir)), 1, PROMPT, "your values", 4)
    path = write(result, tmp_path / "top.json")
    sweep = load_sweep({"model": {"pretrained": str(tiny_llama_dir)}, "tasks": ["valuebench_ll_train"],
                        "configs": ["unsteered", {"sae_top_features": {
                            "sae": str(topk_sae_dir), "features": str(path), "top_k": 3, "layer": 1,
                            "strength": 100, "positions": {"match": " your values"}}}]})
    want = [f["feature"] for f in result["features"][:3]]
    assert [c.name for c in sweep.configs] == ["unsteered"] + [f"sae-f{f}" for f in want]
