"""Per-row steering: a batch mixing N configs gives what each config gives alone (tiny Llama, float32).

Tolerance: loglikelihoods within 1e-5 absolute (batch composition and padding change float summation
order only), greedy flags and greedy generations exactly equal.
"""

from __future__ import annotations

import pytest
import torch
from conftest import write_vector_and_sae
from lm_eval.api.instance import Instance
from safetensors.torch import save_file

from steering_models.lm import SteeredHFLM
from steering_models.spec import SteerSpec
from steering_models.sweep.lm import SweepLM

ROLE = ("Instruction:\nAnswer the Question according to your values.\n\n(FYI, here is your trait. Gender: female; "
        "Job: Energy Manager, MBTI: ESTP)\n\nNow it is your turn.\nQuestion: ")
PROMPTS = [
    "Instruction:\nAnswer the Question according to your values.\n\nQuestion: Should I always be nice to others?\nThought:",
    ROLE + "Should I always be nice to others?\nAnswer:",
    ROLE + "Is money the most important thing?\nAnswer:",
    "Answer according to your values.\nQuestion: Is it good?\nThought:",
    "Now it is your turn. Answer the question according to your values.\nQuestion: Should I always be a happy person?",
]


@pytest.fixture(scope="module")
def specs(tmp_path_factory) -> list[SteerSpec]:
    out = tmp_path_factory.mktemp("sweep-parity")
    vec, _ = write_vector_and_sae(out, seed=11)
    return [
        SteerSpec(),
        SteerSpec.from_dict({"name": "add-a", "interventions": [
            {"layer": 1, "op": "add", "strength": 8, "source": {"vector": vec, "key": "a"},
             "positions": {"match": " your values"}}]}),
        SteerSpec.from_dict({"name": "add-b-all", "interventions": [
            {"layer": 0, "op": "add", "strength": 3, "source": {"vector": vec, "key": "b"}, "positions": "all"}]}),
        SteerSpec.from_dict({"name": "scale", "interventions": [
            {"layer": 1, "op": "scale_feature", "factor": 4, "source": {"sae": str(out / "sae"), "feature": 3},
             "positions": "prompt"},
            {"layer": 2, "op": "add", "strength": 2, "source": {"vector": vec, "key": "a"}, "positions": "generated"}]}),
    ]


def ll_requests() -> list[Instance]:
    pairs = [(p, c) for p in PROMPTS for c in (" no", " to", " to others? yes")]
    return [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]


def gen_requests() -> list[Instance]:
    kwargs = {"until": ["\n\n"], "max_gen_toks": 6, "do_sample": False}
    return [Instance("generate_until", {}, (p, dict(kwargs)), i) for i, p in enumerate(PROMPTS)]


@pytest.mark.parametrize(("share_prefix", "share_trunk"), [(False, True), (True, True), (True, False)],
                         ids=["rows", "shared-prefix-kv", "no-trunk"])
def test_mixed_batch_equals_each_config_alone(specs, tiny_model_dir, share_prefix, share_trunk):
    """Llama- and Gemma-style (sliding-window KV cache) models; rows only, and shared prefixes in a KV cache;
    with the shared trunk (default) and without (per-config prefix groups)."""
    solo_ll, solo_gen = [], []
    for spec in specs:
        lm = SteeredHFLM(pretrained=str(tiny_model_dir), steer=spec, device="cpu", batch_size=1)
        solo_ll.append(lm.loglikelihood(ll_requests(), disable_tqdm=True))
        solo_gen.append(lm.generate_until(gen_requests(), disable_tqdm=True))
    # every steering changes the scores (so equality below is not vacuous)
    for k in range(1, len(specs)):
        assert [s for s, _ in solo_ll[k]] != pytest.approx([s for s, _ in solo_ll[0]], abs=1e-3)

    sweep = SweepLM(pretrained=str(tiny_model_dir), specs=specs, device="cpu", batch_size=5,
                    share_prefix=share_prefix, share_trunk=share_trunk)
    # model inputs (context + continuation[:-1]): " no" and " to" are one token each, so they share a row
    inputs = set()
    for r in ll_requests():
        ctx, cont = sweep._encode_pair(*r.args)
        inputs.add(tuple((ctx + cont)[:-1]))
    assert len(inputs) == len(PROMPTS) * 2
    wave = range(len(specs))
    for k in wave:
        sweep.select(k, wave)
        before = sweep.forward_rows
        got = sweep.loglikelihood(ll_requests(), disable_tqdm=True)
        # every config's rows go through the model in the first call of the wave, none afterwards
        assert sweep.forward_rows - before == (len(inputs) * len(specs) if k == 0 else 0)
        assert [s for s, _ in got] == pytest.approx([s for s, _ in solo_ll[k]], abs=1e-5, rel=0)
        assert [g for _, g in got] == [g for _, g in solo_ll[k]]
        assert sweep.generate_until(gen_requests(), disable_tqdm=True) == solo_gen[k]
        assert sweep.get_model_info()["steering"]["name"] == specs[k].name
        sweep.release(k)  # the runner releases a config once written: it is never recomputed
    padded = sum(len(x) for x in inputs)  # a lower bound of the columns run without prefix sharing
    if share_prefix:  # the two ROLE prompts' 4 rows per config ran their common prefix once
        assert sweep.forward_tokens < padded * len(specs)
    else:
        assert sweep.forward_tokens >= padded * len(specs)


def test_match_is_only_required_on_rows_of_configs_that_use_it(specs, tiny_llama_dir, tmp_path):
    """A config whose `match` text is absent fails; the other configs' rows never look for it."""
    from steering_models.positions import PositionMatchError

    save_file({"v": torch.ones(64)}, tmp_path / "v.safetensors")
    absent = SteerSpec.from_dict({"name": "absent", "interventions": [
        {"layer": 0, "op": "add", "source": {"vector": str(tmp_path / "v.safetensors")},
         "positions": {"match": "your salary"}}]})
    sweep = SweepLM(pretrained=str(tiny_llama_dir), specs=[specs[0], specs[1], absent], device="cpu", batch_size=4)
    sweep.select(1, [0, 1])
    assert len(sweep.loglikelihood(ll_requests(), disable_tqdm=True)) == len(PROMPTS) * 3
    sweep.select(2, [2])
    with pytest.raises(PositionMatchError, match="'your salary' does not occur"):
        sweep.loglikelihood(ll_requests(), disable_tqdm=True)


def test_one_spec_runtime_is_unchanged(tiny_llama_dir, specs):
    """RowLayout.config defaults to 0, so single-spec callers (steered-hf) are untouched."""
    lm = SteeredHFLM(pretrained=str(tiny_llama_dir), steer=specs[1], device="cpu", batch_size=2)
    assert lm.steering.specs == (specs[1],) and lm.steering.spec is specs[1]
    assert all(b.config == 0 for b in lm.steering.bound)

