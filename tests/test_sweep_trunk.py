"""Shared trunk + one prefix pass per (role, config): the Kang workload shape (a role's items share the
Figure-2 prompt head, configs `add` at " your values" at one block) gives each config's solo scores.

Tolerance: loglikelihoods within 1e-5 absolute (batch composition changes float summation order only),
greedy flags exactly equal.
"""

from __future__ import annotations

import pytest
import torch
from lm_eval.api.instance import Instance
from safetensors.torch import save_file

from lm_eval_tasks.valuebench.prompts import render_ll_context, render_prompt
from steering_models.hooks import BoundOp
from steering_models.lm import SteeredHFLM
from steering_models.spec import SteerSpec
from steering_models.sweep.lm import SweepLM
from steering_models.trunk import branch_point

QUESTIONS = ["Should I always be nice to others?", "Is money the most important thing?",
             "Should I always be a happy person?", "Is it good to be tough?", "Should I protect myself?"]
ROLES = ["", "Gender: female; Job: Energy Manager, MBTI: ESTP", "Gender: male; Job: Nurse, MBTI: INFP"]


def requests() -> list[Instance]:
    """3 roles x 5 items x " yes"/" no" (the loglikelihood questionnaire)."""
    pairs = [(render_ll_context(render_prompt(q, trait)), c) for trait in ROLES for q in QUESTIONS
             for c in (" yes", " no")]
    return [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]


def add(name: str, vec: str, key: str, layer: int, strength: float, hook: str = "resid_post",
        positions: object = None) -> SteerSpec:
    return SteerSpec.from_dict({"name": name, "interventions": [
        {"layer": layer, "hook": hook, "op": "add", "strength": strength, "source": {"vector": vec, "key": key},
         "positions": positions or {"match": " your values"}}]})


@pytest.fixture(scope="module")
def vec(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("sweep-trunk")
    torch.manual_seed(5)
    save_file({k: torch.randn(64) for k in "abcd"}, out / "v.safetensors")
    return str(out / "v.safetensors")


_SOLO: dict[tuple[str, str], list[tuple[float, bool]]] = {}


def solo(model_dir: str, specs: list[SteerSpec]) -> list[list[tuple[float, bool]]]:
    """Each config alone in steered-hf (one model per config, as a naive run); kept across this file's tests."""
    for spec in specs:
        if (model_dir, spec.name) not in _SOLO:
            lm = SteeredHFLM(pretrained=model_dir, steer=spec, device="cpu", batch_size=4)
            _SOLO[model_dir, spec.name] = lm.loglikelihood(requests(), disable_tqdm=True)
    return [_SOLO[model_dir, spec.name] for spec in specs]


def block_columns(sweep: SweepLM) -> tuple[list[int], list]:
    """rows x columns each decoder block runs (forward hooks on the blocks; counted, not changed)."""
    from steering_models.model_helpers import find_blocks

    seen = [0] * sweep.n_layers
    handles = []
    for i, block in enumerate(find_blocks(sweep.model)):
        def hook(module, args, output, i=i):  # noqa: ANN001
            hidden = output[0] if isinstance(output, tuple) else output
            seen[i] += hidden.shape[0] * hidden.shape[1]
        handles.append(block.register_forward_hook(hook))
    return seen, handles


def assert_each_config_is_solo(sweep: SweepLM, specs: list, expected: list) -> None:
    """Each config scored by the sweep (all configs selected together) equals its solo steered-hf run."""
    for k in range(len(specs)):
        sweep.select(k, range(len(specs)))
        got = sweep.loglikelihood(requests(), disable_tqdm=True)
        assert [s for s, _ in got] == pytest.approx([s for s, _ in expected[k]], abs=1e-5, rel=0)
        assert [g for _, g in got] == [g for _, g in expected[k]]
        sweep.release(k)


def test_branch_point_is_the_lowest_steered_boundary():
    bound = [BoundOp(3, "resid_post", None, None, 1), BoundOp(2, "resid_pre", None, None, 2),
             BoundOp(1, "resid_post", None, None, 3)]
    assert branch_point(bound, (1,), 24) == (3, 1)  # after block 3
    assert branch_point(bound, (1, 2), 24) == (2, 0)  # before block 2
    assert branch_point(bound, (1, 2, 3), 24) == (1, 1)
    assert branch_point(bound, (0,), 24) == (23, 0)  # unsteered only: before the last block


@pytest.mark.parametrize("share_prefix", [True, False], ids=["prefix-per-role", "rows"])
def test_kang_workload_equals_each_config_alone(tiny_model_dir, vec, share_prefix):
    """Unsteered + 3 adds after block 1 (2 resid_post, 1 resid_pre of block 2): blocks 0-1 run once per
    input for all 4 configs, block 2 four times; each role's prompt head runs once per config."""
    specs = [SteerSpec(), add("a", vec, "a", 1, 6.0), add("b", vec, "b", 1, -6.0),
             add("c", vec, "c", 2, 4.0, hook="resid_pre")]
    expected = solo(str(tiny_model_dir), specs)
    for k in range(1, len(specs)):  # every steering changes the scores (so equality is not vacuous)
        assert [s for s, _ in expected[k]] != pytest.approx([s for s, _ in expected[0]], abs=1e-3)

    # batch_size 2: passes of at most 8 rows, so 2 inputs x 4 configs a pass
    sweep = SweepLM(pretrained=str(tiny_model_dir), specs=specs, device="cpu", batch_size=2,
                    share_prefix=share_prefix)
    seen, handles = block_columns(sweep)
    calls: list[tuple[int, int]] = []
    handles.append(sweep.model.register_forward_pre_hook(
        lambda m, a, kw: calls.append(tuple(kw["input_ids"].shape)), with_kwargs=True))
    try:
        assert_each_config_is_solo(sweep, specs, expected)
    finally:
        for h in handles:
            h.remove()
    # one row per distinct model input (context + continuation[:-1]) and config, all in the first call
    inputs = {tuple((c + t)[:-1]) for c, t in (sweep._encode_pair(*r.args) for r in requests())}
    per_role = len(inputs) // 3
    assert len(inputs) == 3 * per_role and per_role in (5, 10)
    assert sweep.forward_rows == len(inputs) * 4
    # blocks 0 and 1 are the trunk (each input once), block 2 runs every input for each of the 4 configs
    assert seen[0] == seen[1] and seen[2] == 4 * seen[0]
    if share_prefix:
        # per role: one prefix pass (a batch of one row), then its inputs 2 at a time against the cache
        assert len(calls) == 3 * (1 + (per_role + 1) // 2)
        assert sum(1 for c in calls if c[0] == 1) == 3 + 3 * (per_role % 2)
    else:
        assert len(calls) == (len(inputs) + 1) // 2


def test_config_chunks_and_a_config_below_the_others(tiny_model_dir, vec):
    """More configs than rows a pass holds (chunks of configs), and one chunk whose lowest steering is at
    block 0 on every position: still each config's solo scores."""
    specs = [add("all0", vec, "d", 0, 2.0, positions="all"), SteerSpec(), add("a", vec, "a", 1, 6.0),
             add("b", vec, "b", 1, -6.0), add("c", vec, "c", 2, 4.0, hook="resid_pre")]
    expected = solo(str(tiny_model_dir), specs)
    sweep = SweepLM(pretrained=str(tiny_model_dir), specs=specs, device="cpu", batch_size=1)  # 4 rows a pass
    assert_each_config_is_solo(sweep, specs, expected)
