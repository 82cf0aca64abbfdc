"""Parity and locality of steering on tiny Llama- and Gemma-style models (real HF models, real hooks)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
from safetensors.torch import save_file

from steering_models.lm import SteeredHFLM
from steering_models.positions import PositionMatchError, find_text_positions

PROMPT = "Instruction:\nAnswer the Question according to your values.\n\nQuestion: Should I always be nice to others?\nThought:"


@pytest.fixture(scope="module")
def sae_dir(tmp_path_factory) -> Path:
    from sae_lens import StandardSAE, StandardSAEConfig

    torch.manual_seed(1)
    sae = StandardSAE(StandardSAEConfig(d_in=64, d_sae=48))
    with torch.no_grad():  # make features fire on random residuals: positive encoder bias
        sae.b_enc.fill_(0.5)
    sae.cfg.metadata.hook_name = "blocks.1.hook_resid_post"
    out = tmp_path_factory.mktemp("sae") / "sae"
    sae.save_model(out)
    return out


def vector(tmp_path: Path, seed: int = 3) -> Path:
    torch.manual_seed(seed)
    save_file({"v": torch.randn(64)}, tmp_path / "v.safetensors")
    return tmp_path / "v.safetensors"


def logits(lm: HFLM, text: str) -> torch.Tensor:
    ids = torch.tensor([lm.tok_encode(text)])
    with torch.no_grad():
        return lm._model_call(ids)[0]


def resid_after(lm: HFLM, layer: int, text: str) -> torch.Tensor:
    """The residual stream leaving block `layer` (read as the input of block layer+1)."""
    from steering_models.model_helpers import find_blocks

    seen = {}

    def capture(module, args, kwargs) -> None:
        seen["h"] = (args[0] if args else kwargs["hidden_states"]).clone()

    handle = find_blocks(lm.model)[layer + 1].register_forward_pre_hook(capture, with_kwargs=True)
    try:
        logits(lm, text)
    finally:
        handle.remove()
    return seen["h"][0]


@pytest.fixture(scope="module")
def plain(tiny_model_dir):
    return HFLM(pretrained=str(tiny_model_dir), device="cpu", batch_size=1)


def steered(model_dir: Path, spec) -> SteeredHFLM:
    return SteeredHFLM(pretrained=str(model_dir), steer=spec, device="cpu", batch_size=1)


@pytest.mark.parametrize("make_spec", [
    lambda tmp, sae: None,
    lambda tmp, sae: [{"layer": 1, "op": "add", "strength": 0, "source": {"vector": str(vector(tmp))}}],
    lambda tmp, sae: [{"layer": 1, "op": "scale_feature", "factor": 1, "source": {"sae": str(sae), "feature": 5},
                       "positions": "all"}],
], ids=["empty", "add-strength-0", "scale-factor-1"])
def test_noop_specs_give_bit_identical_logits(make_spec, tmp_path, sae_dir, tiny_model_dir, plain):
    lm = steered(tiny_model_dir, make_spec(tmp_path, sae_dir))
    assert torch.equal(logits(lm, PROMPT), logits(plain, PROMPT))


def test_clamp_to_own_value_is_noop_via_delta(tmp_path, sae_dir, tiny_llama_dir):
    """Only (f_new - f_old) * W_dec is added: reconstruction error never enters the result."""
    from sae_lens import SAE

    plain_lm = HFLM(pretrained=str(tiny_llama_dir), device="cpu")
    base = resid_after(plain_lm, 1, PROMPT)
    sae = SAE.load_from_disk(str(sae_dir))
    f = sae.encode(base)[:, 7]
    lm = steered(tiny_llama_dir, [{"layer": 1, "op": "clamp_feature", "value": 2.5,
                                   "source": {"sae": str(sae_dir), "feature": 7}}])
    after = resid_after(lm, 1, PROMPT)
    expected = base + (2.5 - f).unsqueeze(-1) * sae.W_dec[7].detach()
    torch.testing.assert_close(after, expected, rtol=1e-5, atol=1e-5)
    lm2 = steered(tiny_llama_dir, [{"layer": 1, "op": "scale_feature", "factor": 3.0,
                                    "source": {"sae": str(sae_dir), "feature": 7}}])
    expected2 = base + (2.0 * f).unsqueeze(-1) * sae.W_dec[7].detach()
    torch.testing.assert_close(resid_after(lm2, 1, PROMPT), expected2, rtol=1e-5, atol=1e-5)
    assert (f > 0).any(), "the test SAE should have the feature active somewhere"


def test_add_changes_only_selected_positions(tmp_path, tiny_model_dir, plain):
    v = vector(tmp_path)
    lm = steered(tiny_model_dir, [{"layer": 1, "op": "add", "strength": 4.0,
                                   "source": {"vector": str(v)}, "positions": {"match": " your values"}}])
    ids = lm.tok_encode(PROMPT)
    selected = find_text_positions(tuple(ids), " your values", lm.tokenizer)
    assert lm.tokenizer.decode([ids[i] for i in selected]).strip() == "your values"
    delta = resid_after(lm, 1, PROMPT) - resid_after(plain, 1, PROMPT)
    from safetensors.torch import load_file

    want = 4.0 * load_file(str(v))["v"]
    for pos in range(len(ids)):
        if pos in selected:
            torch.testing.assert_close(delta[pos], want, rtol=1e-5, atol=1e-5)
        else:
            assert torch.equal(delta[pos], torch.zeros(64)), f"position {pos} changed"
    # logits before the first steered position are bit-identical; at it they differ
    a, b = logits(lm, PROMPT), logits(plain, PROMPT)
    first = selected[0]
    for pos in range(first):
        assert torch.equal(a[pos], b[pos]), f"logits at {pos} changed"
    assert not torch.equal(a[first], b[first])


@pytest.mark.parametrize("selector, expect", [
    ("prompt", lambda n_prompt, n_total: range(n_prompt)),
    ("last", lambda n_prompt, n_total: [n_prompt - 1]),
    ("generated", lambda n_prompt, n_total: range(n_prompt, n_total)),
    ("all", lambda n_prompt, n_total: range(n_total)),
])
def test_selectors_in_loglikelihood_scoring(selector, expect, tmp_path, tiny_llama_dir):
    """Scoring feeds prompt + continuation[:-1]; `generated` = the continuation tokens fed back."""
    from steering_models.model_helpers import find_blocks

    lm = steered(tiny_llama_dir, [{"layer": 0, "op": "add", "strength": 1.0,
                                   "source": {"vector": str(vector(tmp_path))}, "positions": selector}])
    context, continuation = "Should I always be nice", " to others? yes"
    n_prompt = len(lm.tok_encode(context))
    n_cont = len(lm.tok_encode(continuation))
    n_total = n_prompt + n_cont - 1
    plain_lm = HFLM(pretrained=str(tiny_llama_dir), device="cpu")
    seen = []

    def capture(module, args, kwargs) -> None:
        seen.append((args[0] if args else kwargs["hidden_states"])[0].clone())

    for model in (lm, plain_lm):
        h = find_blocks(model.model)[1].register_forward_pre_hook(capture, with_kwargs=True)
        try:
            model.loglikelihood([Instance("loglikelihood", {}, (context, continuation), 0)], disable_tqdm=True)
        finally:
            h.remove()
    changed = [p for p in range(n_total) if not torch.equal(seen[0][p], seen[1][p])]
    assert changed == list(expect(n_prompt, n_total))


def test_match_split_across_tokens_and_absent(tiny_tokenizer):
    ids = tuple(tiny_tokenizer(PROMPT)["input_ids"])
    # a span that starts and ends inside tokens selects every token it touches
    pos = find_text_positions(ids, "ccording to yo", tiny_tokenizer)
    text = tiny_tokenizer.decode([ids[i] for i in pos])
    assert "ccording to yo" in text and len(pos) >= 3
    assert find_text_positions(ids, "your values", tiny_tokenizer) == \
        find_text_positions(ids, " your values", tiny_tokenizer)
    assert find_text_positions(ids, "no such text", tiny_tokenizer) == []


def test_absent_match_is_a_clear_error(tmp_path, tiny_llama_dir):
    lm = steered(tiny_llama_dir, [{"layer": 0, "op": "add", "source": {"vector": str(vector(tmp_path))},
                                   "positions": {"match": "your salary"}}])
    with pytest.raises(PositionMatchError, match="`positions.match`='your salary' does not occur in the prompt"):
        lm.loglikelihood([Instance("loglikelihood", {}, ("Question: Should I?", " yes"), 0)], disable_tqdm=True)


def test_batching_and_padding_do_not_move_positions(tmp_path, tiny_llama_dir):
    """Rows of different lengths, batched (right padding when scoring, left when generating),
    give what each row gives alone."""
    spec = [{"layer": 1, "op": "add", "strength": 8.0, "source": {"vector": str(vector(tmp_path))},
             "positions": {"match": " your values"}}]
    prompts = [PROMPT, "Answer according to your values.\nQuestion: Is it good?\nThought:"]
    reqs = [Instance("loglikelihood", {}, (p, " yes"), i) for i, p in enumerate(prompts)]
    one = SteeredHFLM(pretrained=str(tiny_llama_dir), steer=spec, device="cpu", batch_size=1)
    two = SteeredHFLM(pretrained=str(tiny_llama_dir), steer=spec, device="cpu", batch_size=2)
    plain_lm = HFLM(pretrained=str(tiny_llama_dir), device="cpu", batch_size=2)
    ll1 = [r[0] for r in one.loglikelihood(reqs, disable_tqdm=True)]
    ll2 = [r[0] for r in two.loglikelihood(reqs, disable_tqdm=True)]
    ll0 = [r[0] for r in plain_lm.loglikelihood(reqs, disable_tqdm=True)]
    assert ll1 == pytest.approx(ll2, abs=1e-4) and ll1 != pytest.approx(ll0, abs=1e-4)
    gen = [Instance("generate_until", {}, (p, {"until": ["\n\n"], "max_gen_toks": 5, "do_sample": False}), i)
           for i, p in enumerate(prompts)]
    g1 = one.generate_until(gen, disable_tqdm=True)
    g2 = two.generate_until(gen, disable_tqdm=True)
    assert g1 == g2
