"""The ragged generation engine equals HF greedy ``generate`` token for token (tiny Llama/Gemma, float32).

Every steering op and selector (add at `match`/`all`/`last`, scale_feature at `prompt` with add at
`generated`, ConVA with a probe gate that opens for some prompts only, ConVA ungated at `generated`) is run
by steered-hf with ``gen_engine=hf`` (HFLM's batches and ``model.generate``) and with the ragged engine,
ragged refilling on/off and the shared prompt prefix on/off; the generated texts must be identical. Prompts
end at different points (stop strings), so rows really leave and join a running batch.
"""

from __future__ import annotations

import pytest
import torch
from conftest import write_vector_and_sae
from conva_helpers import make_artifact
from lm_eval.api.instance import Instance

from steering_models.errors import SpecError
from steering_models.generation import GenRow, RaggedGenerator
from steering_models.lm import SteeredHFLM
from steering_models.spec import SteerSpec

ROLE = ("Instruction:\nAnswer the Question according to your values.\n\n(FYI, here is your trait. Gender: female; "
        "Job: Energy Manager, MBTI: ESTP)\n\nNow it is your turn.\nQuestion: ")
PROMPTS = [
    ROLE + "Should I always be nice to others?\nThought:",
    ROLE + "Is money the most important thing?\nThought:",
    ROLE + "Should I always be a happy person?\nThought:",
    ROLE + "Should I follow your values when choosing a job?\nThought:",
    "Instruction:\nAnswer the Question according to your values.\n\nQuestion: Should I always be nice?\nThought:",
    "Answer according to your values.\nQuestion: Is it good?\nThought:",
    "Now it is your turn. Answer the question according to your values.\nQuestion: Should I always be a happy person?",
]
KWARGS = {"until": ["e", "\n\n"], "max_gen_toks": 8, "do_sample": False}  # "e": rows end at different steps


def requests(kwargs: dict = KWARGS) -> list[Instance]:
    return [Instance("generate_until", {}, (p, dict(kwargs)), i) for i, p in enumerate(PROMPTS)]


@pytest.fixture(scope="module")
def specs(tmp_path_factory, tiny_model_dir) -> dict[str, SteerSpec]:
    out = tmp_path_factory.mktemp("gen-specs")
    vec, _ = write_vector_and_sae(out, seed=5)
    gated = make_artifact(tiny_model_dir, out / "gated", gate_b=0.0, gate_w=40.0, seed=3)
    ungated = make_artifact(tiny_model_dir, out / "ungated", seed=4)

    def add(key: str, layer: int, strength: float, positions) -> dict:  # noqa: ANN001
        return {"layer": layer, "op": "add", "strength": strength, "source": {"vector": vec, "key": key},
                "positions": positions}

    raw = {
        "unsteered": [],
        "add-match": [add("a", 1, 16, {"match": " your values"})],
        "add-all": [add("b", 0, 3, "all")],
        "add-last": [add("a", 1, 6, "last")],
        "scale-prompt+add-generated": [
            {"layer": 1, "op": "scale_feature", "factor": 4, "source": {"sae": str(out / "sae"), "feature": 3},
             "positions": "prompt"}, add("b", 2, 4, "generated")],
        "conva-gated": [{"layer": [1, 2], "op": "conva", "artifact": str(gated.parent), "value": "power",
                         "p0": 0.999, "g0": 0.5, "gate": {"type": "probe"}}],
        "conva-ungated-generated": [{"layer": [1, 2], "op": "conva", "artifact": str(ungated.parent),
                                     "value": "power", "p0": 0.999, "gate": "none", "positions": "generated"}],
    }
    return {name: SteerSpec.from_dict({"name": name, "interventions": ivs}) for name, ivs in raw.items()}


def run(model_dir, spec: SteerSpec, batch_size: int = 3, **engine) -> tuple[list[str], SteeredHFLM]:  # noqa: ANN001
    lm = SteeredHFLM(pretrained=str(model_dir), steer=spec, device="cpu", batch_size=batch_size, **engine)
    return lm.generate_until(requests(), disable_tqdm=True), lm


@pytest.fixture(scope="module")
def reference(specs, tiny_model_dir) -> dict[str, list[str]]:
    """HF ``generate`` answers of every spec (gen_engine=hf), and checks they are worth comparing."""
    ref = {name: run(tiny_model_dir, spec, gen_engine="hf")[0] for name, spec in specs.items()}
    for name, texts in ref.items():
        if name != "unsteered":  # every steering changes some generation, so equality is not vacuous
            assert texts != ref["unsteered"], name
    lengths = {len(t) for t in ref["unsteered"]}
    assert len(lengths) > 2  # rows end at different steps
    return ref


@pytest.mark.parametrize(("ragged", "share_prefix"), [
    (True, True), (False, False),
    pytest.param(True, False, marks=pytest.mark.slow), pytest.param(False, True, marks=pytest.mark.slow)],
    ids=["ragged+prefix", "static", "ragged", "static+prefix"])
def test_engine_equals_hf_generate(specs, reference, tiny_model_dir, ragged, share_prefix):
    joins = reuses = 0
    for name, spec in specs.items():
        lm = SteeredHFLM(pretrained=str(tiny_model_dir), steer=spec, device="cpu", batch_size=3,
                         gen_share_prefix=share_prefix)
        gen = lm.generator()
        gen.ragged = ragged
        assert lm.generate_until(requests(), disable_tqdm=True) == reference[name], name
        stats = gen.stats
        assert stats.new_tokens > 0
        position_local = name not in ("conva-gated", "conva-ungated-generated")
        joins += stats.joins
        reuses += stats.prefix_reuses
        assert stats.prefix_reuses == 0 or (share_prefix and position_local), name
        # the 4 ROLE prompts share a long prefix: it ran once per admitted group, for position-local ops only
        assert (stats.shared_prefixes > 0) == (share_prefix and position_local), name
        assert (stats.prefill_tokens < stats.prompt_tokens) == (share_prefix and position_local), name
        if name == "conva-gated":
            op = spec.interventions[0].op
            assert 0 < op.gate_counts["open"] < op.gate_counts["total"]  # the gate differs between rows
    assert (joins > 0) == ragged  # rows joined a running batch (ragged) or never did (static batches)
    if ragged and share_prefix:  # rows admitted one at a time took their role's prefix from an earlier pass
        assert reuses > 0


def test_batch_size_one_and_large_batches_agree(specs, reference, tiny_model_dir):
    """One row at a time (no padding at all) and all rows in one batch give HF's answers too."""
    for name, bs in (("conva-gated", 1), ("add-match", 16)):
        assert run(tiny_model_dir, specs[name], batch_size=bs)[0] == reference[name], (name, bs)


def test_engine_tokens_equal_hf_generate_tokens(tiny_llama_dir):
    """Below lm-eval: the engine's new tokens equal ``model.generate``'s, EOS included, row by row."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32).eval()
    prompts = [tuple(tok.encode(p)) for p in PROMPTS]
    eos = int(model.generate(torch.tensor([prompts[0]]), max_new_tokens=1, do_sample=False)[0, -1])
    engine = RaggedGenerator(model, tok, batch_size=2, eos_token_ids=[eos], refill=1)
    got = engine.generate([GenRow(p, 8) for p in prompts])
    assert got[0] == [eos]  # the EOS token ends a row and is returned
    for p, toks in zip(prompts, got, strict=True):
        with torch.no_grad():
            ref = model.generate(torch.tensor([p]), max_new_tokens=8, do_sample=False, eos_token_id=eos,
                                 pad_token_id=0)[0, len(p):].tolist()
        assert toks == ref[:len(toks)] and (len(toks) == 8 or toks[-1] == eos)


def test_sampling_requests_go_to_hf_generate(tiny_llama_dir):
    lm = SteeredHFLM(pretrained=str(tiny_llama_dir), device="cpu", batch_size=2)
    sampled = dict(KWARGS, do_sample=True, temperature=1.0)
    greedy_and_sampled = requests() + [Instance("generate_until", {}, (PROMPTS[0], sampled), 99)]
    out = lm.generate_until(greedy_and_sampled, disable_tqdm=True)
    assert len(out) == len(PROMPTS) + 1 and all(isinstance(t, str) for t in out)
    assert lm.generator().stats.new_tokens > 0  # the greedy ones ran on the engine


def test_bad_engine_name_is_one_sentence(tiny_llama_dir):
    with pytest.raises(SpecError, match=r"`gen_engine`='fast' is not a generation engine: expected ragged or hf"):
        SteeredHFLM(pretrained=str(tiny_llama_dir), device="cpu", gen_engine="fast")


@pytest.mark.parametrize("share_trunk", [True, False], ids=["trunk", "no-trunk"])
def test_mixed_sweep_generations_equal_each_config_alone(specs, reference, tiny_model_dir, share_trunk):
    """All configs' rows in one ragged batch (SweepLM) give each config's HF ``generate`` answers, with the
    position-local configs' prefixes through one shared trunk or each config's own."""
    from steering_models.sweep.lm import SweepLM

    names = list(specs)
    sweep = SweepLM(pretrained=str(tiny_model_dir), specs=[specs[n] for n in names], device="cpu", batch_size=8,
                    share_trunk=share_trunk)
    wave = range(len(names))
    for k, name in enumerate(names):
        sweep.select(k, wave)
        assert sweep.generate_until(requests(), disable_tqdm=True) == reference[name], name
    stats = sweep.generator().stats
    assert stats.new_tokens > 0 and stats.joins > 0
    assert (stats.trunk_passes > 0) == share_trunk
    assert stats.shared_prefixes > 0 or stats.prefix_reuses > 0
    # rows of several configs decoded in the same steps: fewer steps than the configs' own runs would take
    assert stats.decode_steps < stats.decode_rows / 4


def test_trunk_runs_each_prefix_below_the_lowest_steered_block_once(specs, reference, tiny_model_dir):
    """Configs steering from block 1 up: one trunk pass computes every config's prefix of a prompt group (block
    0 once for all), rows admitted later (batch 3: a prompt's configs arrive in several admissions) take their
    config's prefix from it, and every generation equals the config's HF ``generate`` answer."""
    from steering_models.sweep.lm import SweepLM

    names = ["unsteered", "add-match", "add-last", "scale-prompt+add-generated"]
    sweep = SweepLM(pretrained=str(tiny_model_dir), specs=[specs[n] for n in names], device="cpu", batch_size=3)
    for k, name in enumerate(names):
        sweep.select(k, range(len(names)))
        assert sweep.generate_until(requests(), disable_tqdm=True) == reference[name], name
    stats = sweep.generator().stats
    assert stats.trunk_passes > 0 and stats.trunk_prefixes >= len(names) * stats.trunk_passes - stats.trunk_passes
    assert stats.trunk_saved > 0  # block 0 ran once for all configs' prefixes
    assert stats.prefix_reuses > stats.trunk_passes  # later admissions took their config's kept prefix
    assert stats.prefill_tokens < stats.prompt_tokens / 2


def test_sweep_with_gen_engine_hf_keeps_hf_batches(specs, reference, tiny_model_dir):
    """``gen_engine=hf`` in a sweep: rows of several configs per ``model.generate`` (the engine never runs)."""
    from steering_models.sweep.lm import SweepLM

    names = ["unsteered", "add-match", "conva-gated"]
    sweep = SweepLM(pretrained=str(tiny_model_dir), specs=[specs[n] for n in names], device="cpu", batch_size=8,
                    gen_engine="hf")
    for k, name in enumerate(names):
        sweep.select(k, range(len(names)))
        assert sweep.generate_until(requests(), disable_tqdm=True) == reference[name], name
    assert sweep._generator is None
