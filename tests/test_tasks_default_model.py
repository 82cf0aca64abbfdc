"""The ValueBench questionnaire on the embedded default model (slow: ~15 tok/s on 2 cores)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import steering_models._bootstrap  # noqa: F401

pytestmark = pytest.mark.slow


def default_lm():
    """lm-eval's HFLM around the embedded default, loaded by transformers (its GGUF-backed config
    does not load through ``pretrained=<dir>`` in lm-eval's hf model)."""
    import torch
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lm_eval_tasks.embedded_models import embedded_model_path

    path = Path(embedded_model_path())
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return HFLM(pretrained=model, tokenizer=AutoTokenizer.from_pretrained(path), device="cpu")


@pytest.mark.parametrize("chat", [False, True])
def test_valuebench_cot_on_default_model(chat):
    import lm_eval

    res = lm_eval.simple_evaluate(
        model=default_lm(),
        tasks=["valuebench_cot_test_economic", "valuebench_ll_test_economic"],
        apply_chat_template=chat,
        log_samples=True,
        metadata={"num_roles": 1, "item_fraction": 0.34},
    )
    from lm_eval_tasks.valuebench.hooks import build_docs

    n_items = len(build_docs("Economic", "test", num_roles=1, item_fraction=0.34))
    samples = res["samples"]["valuebench_cot_test_economic"]
    assert n_items >= 2 and len(samples) == n_items
    for s in samples:
        judged = s["filtered_resps"][0]
        assert judged["output"] == s["resps"][0][0]
        if judged["label"] is not None:
            assert judged["judged_by"] == "rules" or judged["judged_by"]
            assert s["orientation"] in (-1.0, 0.0, 1.0)
        else:
            assert math.isnan(s["orientation"])
    ll = res["results"]["valuebench_ll_test_economic"]
    assert ll["n_scored,ll"] == n_items and -1.0 <= ll["orientation,ll"] <= 1.0
