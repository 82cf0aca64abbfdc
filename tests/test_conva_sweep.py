"""`op: conva` in a sweep (per-row steering, as examples/conva_experiment.sh runs CAA, ConVA w/o gate and ConVA
together): a batch mixing the configs gives what each config gives alone with `steered-hf`, including a
probe gate that opens on some prompts and stays shut on others (tiny Llama, float32; loglikelihoods within
1e-5, greedy generations equal)."""

from __future__ import annotations

import pytest
import torch
from conva_helpers import make_artifact
from lm_eval.api.instance import Instance
from safetensors.torch import save_file

from steering_models.conva import artifacts
from steering_models.lm import SteeredHFLM
from steering_models.spec import SteerSpec
from steering_models.sweep.lm import SweepLM

PROMPTS = [
    "Should I always be nice to others?",
    "Is money the most important thing in life? Answer briefly.",
    "What is the capital of France?",
    "Tell me about power and status.",
    "A B C D",
    "Now it is your turn. Answer the question according to your values.",
]


@pytest.fixture(scope="module")
def specs(tmp_path_factory, tiny_llama_dir) -> list[SteerSpec]:
    out = tmp_path_factory.mktemp("conva-sweep")
    js = make_artifact(tiny_llama_dir, out / "art", layers=[0, 1])
    # a gate that separates the prompts: random direction, bias 0 (seeded: some prompts open, some shut)
    a = artifacts.load(js)
    gen = torch.Generator().manual_seed(3)
    a.tensors["gate_w"] = torch.randn(a.tensors["gate_w"].shape, generator=gen) * 4
    a.tensors["gate_b"] = torch.zeros_like(a.tensors["gate_b"])
    artifacts.save(a, out / "art2")
    art = str(out / "art2")
    save_file({"caa": torch.randn(64, generator=gen)}, out / "caa.safetensors")
    conva = {"layer": [0, 1], "op": "conva", "artifact": art, "value": "power", "p0": 0.9}
    return [
        SteerSpec(),
        SteerSpec.from_dict({"name": "caa", "interventions": [
            {"layer": 1, "op": "add", "strength": 2, "source": {"vector": str(out / "caa.safetensors")}}]}),
        SteerSpec.from_dict({"name": "conva-nogate", "interventions": [{**conva, "gate": "none"}]}),
        SteerSpec.from_dict({"name": "conva", "interventions": [{**conva, "g0": 0.5, "gate": {"type": "probe"}}]}),
    ]


def ll_requests() -> list[Instance]:
    pairs = [(p, c) for p in PROMPTS for c in (" A", " B", " yes")]
    return [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]


def gen_requests() -> list[Instance]:
    kwargs = {"until": ["\n\n"], "max_gen_toks": 6, "do_sample": False}
    return [Instance("generate_until", {}, (p, dict(kwargs)), i) for i, p in enumerate(PROMPTS)]


def test_conva_configs_in_one_batch_equal_each_alone(specs, tiny_llama_dir):
    solo_ll, solo_gen = [], []
    for spec in specs:
        lm = SteeredHFLM(pretrained=str(tiny_llama_dir), steer=spec, device="cpu", batch_size=1)
        solo_ll.append([s for s, _ in lm.loglikelihood(ll_requests(), disable_tqdm=True)])
        solo_gen.append(lm.generate_until(gen_requests(), disable_tqdm=True))
    base, gated = solo_ll[0], solo_ll[3]
    per_prompt = [(base[3 * i: 3 * i + 3], gated[3 * i: 3 * i + 3]) for i in range(len(PROMPTS))]
    shut = [b == g for b, g in per_prompt]  # a shut gate leaves the scores bit-identical
    assert any(shut) and not all(shut), "the gate must open on some prompts and stay shut on others"
    assert solo_ll[1] != pytest.approx(base, abs=1e-3) and solo_ll[2] != pytest.approx(base, abs=1e-3)

    sweep = SweepLM(pretrained=str(tiny_llama_dir), specs=specs, device="cpu", batch_size=8)
    wave = range(len(specs))
    for k in wave:
        sweep.select(k, wave)
        got = [s for s, _ in sweep.loglikelihood(ll_requests(), disable_tqdm=True)]
        assert got == pytest.approx(solo_ll[k], abs=1e-5, rel=0), specs[k].name
        assert sweep.generate_until(gen_requests(), disable_tqdm=True) == solo_gen[k], specs[k].name
        sweep.release(k)
