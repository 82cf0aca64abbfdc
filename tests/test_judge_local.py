"""The local judge (transformers, no server), the agreement statistics, and (slow) the embedded
default model as a judge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lm_eval_tasks.judge import build_judge
from lm_eval_tasks.judge.settings import load_settings


def test_local_judge_records_its_id_and_caches(tiny_llama_dir, tmp_path):
    env = {"VALUE_JUDGE_KIND": "local", "VALUE_JUDGE_PRETRAINED": str(tiny_llama_dir),
           "VALUE_JUDGE_MAX_TOKENS": "5", "VALUE_JUDGE_CACHE": str(tmp_path / "c.sqlite")}
    judge = build_judge(load_settings(env))
    fields = [{"thought": "Money matters to me."}, {"thought": "I do not care."}]
    first = judge.judge_many("thought_inclination", fields)
    assert judge.calls == 2
    assert {v.judge_id for v in first} == {f"local:{Path(tiny_llama_dir).name}"}
    assert all(v.parsed is None and v.raw for v in first)  # random weights: unscored, raw kept
    again = build_judge(load_settings(env)).judge_many("thought_inclination", fields)
    assert [v.raw for v in again] == [v.raw for v in first] and all(v.cached for v in again)


def test_local_judge_names_a_bad_folder(tmp_path):
    env = {"VALUE_JUDGE_PRETRAINED": str(tmp_path / "nope"), "VALUE_JUDGE_CACHE": str(tmp_path / "c")}
    with pytest.raises(ValueError, match="VALUE_JUDGE_PRETRAINED"):
        build_judge(load_settings(env))


def _records(path: Path, labels: list) -> Path:
    path.write_text("".join(
        json.dumps({"task": "t", "doc_id": i, "template": "answer_judgment", "judge_id": path.stem,
                    "parsed": label, "raw": str(label)}) + "\n"
        for i, label in enumerate(labels)))
    return path


def test_agreement_kappa_by_hand(tmp_path):
    from analysis.judge.agreement import agreement

    a = _records(tmp_path / "a.jsonl", ["yes", "yes", "no", "no", "unsure", "no"])
    b = _records(tmp_path / "b.jsonl", ["yes", "no", "no", "no", None, "no"][:5])
    r = agreement(a, b)["templates"]["answer_judgment"]
    # both scored: (yes,yes) (yes,no) (no,no) (no,no): p_o = 3/4; A: yes 1/2, no 1/2; B: yes 1/4,
    # no 3/4 -> p_e = 1/2 * 1/4 + 1/2 * 3/4 = 1/2; kappa = (3/4 - 1/2) / (1 - 1/2) = 1/2
    assert r["n_paired"] == 5 and r["n_both_scored"] == 4
    assert r["kappa"] == pytest.approx(0.5) and r["raw_agreement"] == pytest.approx(0.75)
    # alpha: coincidences o_yy = 2, o_yn = o_ny = 1, o_nn = 4; n_y = 3, n_n = 5, n = 8:
    # D_o = 2, D_e = 2 * 3 * 5 / 7 -> alpha = 1 - 2 * 7 / 30
    assert r["alpha"] == pytest.approx(1 - 14 / 30)
    assert r["n_unscored_a"] == 0 and r["n_unscored_b"] == 1
    assert r["confusion"]["yes"]["no"] == 1 and r["confusion"]["unsure"]["(unscored)"] == 1


def test_agreement_needs_shared_samples(tmp_path):
    from analysis.judge.agreement import agreement

    a = _records(tmp_path / "a.jsonl", ["yes"])
    b = tmp_path / "b.jsonl"
    b.write_text(json.dumps({"task": "other", "doc_id": 0, "template": "csr", "parsed": True}) + "\n")
    with pytest.raises(ValueError, match="share no"):
        agreement(a, b)


@pytest.mark.slow
def test_default_model_judges_template_1(tmp_path):
    """The embedded default (Qwen2.5-Coder-0.5B-Instruct) as a local judge on Template 1's own
    examples, generating (its shipped profile scores by log-probabilities): its replies must parse (a small
    instruct model follows the one-word format)."""
    env = {"VALUE_JUDGE_KIND": "local", "VALUE_JUDGE_PRETRAINED": "default", "VALUE_JUDGE_SCORING": "generate",
           "VALUE_JUDGE_MAX_TOKENS": "8", "VALUE_JUDGE_CACHE": str(tmp_path / "c.sqlite")}
    judge = build_judge(load_settings(env))
    vs = judge.judge_many("answer_judgment", [{"answer": "for sure"}, {"answer": "the answer is no"}])
    assert judge.judge_id == "local:default"
    assert [v.parsed for v in vs] == ["yes", "no"], [v.raw for v in vs]


def test_causal_graph_reply_parses_against_the_default_values(tiny_llama_dir, tmp_path):
    """Template 5 with no fields uses Kang's 17 values for both the prompt and the parser (a reply
    that an earlier judge left in the cache is parsed on read)."""
    from lm_eval_tasks.judge.cache import cache_key
    from lm_eval_tasks.judge.templates import get_template
    from lm_eval_tasks.values import VALUES

    env = {"VALUE_JUDGE_KIND": "local", "VALUE_JUDGE_PRETRAINED": str(tiny_llama_dir),
           "VALUE_JUDGE_CACHE": str(tmp_path / "c.sqlite")}
    judge = build_judge(load_settings(env))
    t = get_template("causal_graph")
    prompt = t.render({})
    assert all(f'"{v}"' in prompt for v in VALUES)
    reply = ("Sure! Here is the graph.\n```python\nedges = [\n    ['Resilience', 'Positive_coping'],  # copes\n"
             "    ['Social_Cynicism', 'Social_Complexity'],\n]\n```")
    key = cache_key(judge.judge_id, judge.backend.endpoint, t.version, prompt)
    judge.cache.put(key, judge.judge_id, judge.backend.endpoint, t.version, prompt, reply)
    v = judge.judge("causal_graph", {})
    assert v.cached and judge.calls == 0
    assert v.parsed == [("Resilience", "Positive coping"), ("Social Cynicism", "Social Complexity")]
