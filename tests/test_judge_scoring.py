"""Log-probability scoring of a local judge (real tiny models, transformers backend): parity with the
generated verdict when one token dominates, the prefix cache, biases applied as the profile stores them,
and the bias fit."""

from __future__ import annotations

import json
import math

import pytest
from judge_helpers import save_dominant_model

from lm_eval_tasks.judge import build_judge
from lm_eval_tasks.judge.profiles import TemplateProfile
from lm_eval_tasks.judge.settings import load_settings

FIELDS = [{"question": "Should I keep a routine?", "answer": "It may help, it depends on you."},
          {"question": "Should I be kind?", "answer": "Being kind makes others happy."}]


@pytest.fixture(scope="module")
def dominant_dirs(tiny_llama_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("dominant")
    # one-token replies: "yes" and "no" are single tokens of the tiny tokenizer ("unsure" is not, and a model whose
    # every next token is one token cannot spell it)
    words = {"yes": "yes", "no": "no"}
    return {label: save_dominant_model(tiny_llama_dir, root / label, w) for label, w in words.items()}


def local_judge(model_dir, cache, **extra):
    env = {"VALUE_JUDGE_KIND": "local", "VALUE_JUDGE_PRETRAINED": str(model_dir), "VALUE_JUDGE_CACHE": str(cache),
           "VALUE_JUDGE_MAX_TOKENS": "1", **extra}
    return build_judge(load_settings(env))


@pytest.mark.parametrize("word", ["yes", "no"])
def test_logprob_verdict_equals_generated_verdict_when_one_token_dominates(dominant_dirs, tmp_path, word):
    judge = local_judge(dominant_dirs[word], tmp_path / "c.sqlite")
    for prompt in ("paper", "t1-qa"):
        gen = judge.judge_many("answer_judgment", FIELDS,
                               profile=TemplateProfile(prompt=prompt, scoring="generate"))
        lp = judge.judge_many("answer_judgment", FIELDS, profile=TemplateProfile(prompt=prompt, scoring="logprob"))
        assert [v.parsed for v in gen] == [word, word], [v.raw for v in gen]
        assert [v.parsed for v in lp] == [v.parsed for v in gen]
        assert all(v.scoring == "logprob" and v.prompt == prompt for v in lp)
        scores = json.loads(lp[0].raw)["label-logprobs"]
        assert scores[word] > -0.01 and scores[word] == pytest.approx(json.loads(lp[0].raw)["top"], abs=1e-6)


def test_prefix_cache_gives_the_logprobs_of_a_fresh_model(tiny_llama_dir):
    """The KV cache kept between prompts that share a prefix changes no log-probability."""
    from lm_eval_tasks.judge.local_model import LocalGenerator, resolve_local_model

    prompts = ["Here is a question.\nQuestion: Should I be kind?", "Here is a question.\nQuestion: Should I rest?",
               "Something else entirely.", "Here is a question.\nQuestion: Should I be kind?"]
    model = resolve_local_model(str(tiny_llama_dir))
    warm = LocalGenerator(model)
    for p in prompts:
        fresh = LocalGenerator(model).next_token_logprobs(p)
        got = warm.next_token_logprobs(p)
        assert (got - fresh).abs().max().item() < 1e-4


def test_biases_are_applied_as_stored_and_to_cached_replies(tiny_llama_dir, tmp_path, monkeypatch):
    """A profile's biases decide the verdict; a refitted profile re-decides cached replies, no new calls."""
    from lm_eval_tasks.judge.scoring import LabelScores

    cache = tmp_path / "c.sqlite"
    profile = tmp_path / "profile.json"

    def write(biases):
        profile.write_text(json.dumps({"judge_id": "x", "templates": {"answer_judgment": {
            "prompt": "t1-qa", "prompt_version": "vse-t1qa/v1", "scoring": "logprob", "biases": biases}}}))

    monkeypatch.setenv("VALUE_JUDGE_PROFILE", str(profile))
    write({})
    judge = local_judge(tiny_llama_dir, cache)
    plain = judge.judge_many("answer_judgment", FIELDS)
    scores = [LabelScores.from_raw(v.raw).logprobs for v in plain]
    assert [v.parsed for v in plain] == [max(s, key=s.get) for s in scores]
    # a bias that lifts "unsure" 5 nats above the best other label makes every verdict "unsure"
    lift = max(max(s.values()) - s["unsure"] for s in scores) + 5.0
    write({"unsure": lift})
    again = local_judge(tiny_llama_dir, cache)
    biased = again.judge_many("answer_judgment", FIELDS)
    assert again.calls == 0 and all(v.cached for v in biased)
    assert [v.parsed for v in biased] == ["unsure", "unsure"]
    # an entry fitted on another version of the prompt is ignored: back to the paper prompt, generated
    profile.write_text(profile.read_text().replace("vse-t1qa/v1", "vse-t1qa/v0"))
    old = local_judge(tiny_llama_dir, cache).judge_many("answer_judgment", FIELDS[:1])
    assert old[0].scoring == "generate" and old[0].prompt == "paper"


def test_fit_biases_recovers_a_shift():
    """Rows whose 'yes' is 2 nats too high: the fitted bias takes about 2 off it and kappa reaches 1."""
    from lm_eval_tasks.judge.scoring import fit_biases

    choices = (("yes", "Yes"), ("no", "No"), ("unsure", "Unsure"))
    gold, rows = [], []
    for i in range(30):
        label = ("yes", "no", "unsure")[i % 3]
        row = {k: -3.0 for k in ("yes", "no", "unsure")}
        row[label] = -1.0
        row["yes"] += 2.5  # the judge over-says yes
        gold.append(label)
        rows.append(row)
    biases, kappa = fit_biases(rows, gold, choices)
    assert kappa == pytest.approx(1.0)
    assert biases["no"] == 0.0 and -4.5 < biases["yes"] - biases["unsure"] < -0.5
    _, unbiased = fit_biases(rows, gold, choices, grid=[0.0])
    assert unbiased < 0.5 and not math.isnan(unbiased)


def test_shared_first_tokens_are_dropped_and_an_empty_label_is_refused():
    from lm_eval_tasks.judge.scoring import label_token_ids

    vocab = {"Yes": [1, 2], " Yes": [9, 1], "yes": [3], " yes": [4], "No": [5], " No": [9, 5], "no": [6], " no": [7]}
    ids = label_token_ids(lambda s: vocab[s], (("yes", "Yes"), ("no", "No")))
    assert ids == {"yes": [1, 3, 4], "no": [5, 6, 7]}  # 9 (" ") starts both: counted for neither
    with pytest.raises(ValueError, match="VALUE_JUDGE_SCORING=generate"):
        label_token_ids(lambda s: [9], (("yes", "Yes"), ("no", "No")))


def test_a_users_fit_of_one_template_keeps_the_shipped_entries_of_the_others(tmp_path, monkeypatch):
    """`judge-bench --fit` on CSR writes the user's profile of the engine-specific judge id; the shipped profile
    of the model still gives Template 1's entry, and the user's entry wins where both have one."""
    from lm_eval_tasks.judge import profiles
    from lm_eval_tasks.judge.profiles import load_profile, save_profile, user_profile_path

    monkeypatch.setenv("VALUE_STEERING_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("VALUE_JUDGE_PROFILE", raising=False)
    monkeypatch.setattr(profiles, "SHIPPED", tmp_path / "shipped")  # the package's folder, as shipped
    save_profile("local:judge-1.5b", {"answer_judgment": TemplateProfile(
        prompt="t1-qa", scoring="logprob", biases={"yes": -3.7, "no": 0.0, "unsure": 0.7}, prompt_version="vse-t1qa/v1")},
        tmp_path / "shipped" / "local_judge-1.5b.json")
    shipped = load_profile("local:judge-1.5b@llama.cpp")
    assert shipped["answer_judgment"].prompt == "t1-qa" and "csr" not in shipped
    csr = TemplateProfile(prompt="csr-oneword", scoring="logprob", biases={"True": -0.1, "False": 0.0},
                          prompt_version="vse-csr1w/v1")
    t1 = TemplateProfile(prompt="paper", scoring="logprob", biases={"yes": 1.0, "no": 0.0, "unsure": 0.0},
                         prompt_version="kang-t1/v1")
    save_profile("local:judge-1.5b@llama.cpp", {"csr": csr})
    assert user_profile_path("local:judge-1.5b@llama.cpp").is_file()
    merged = load_profile("local:judge-1.5b@llama.cpp")
    assert merged["csr"] == csr and merged["answer_judgment"] == shipped["answer_judgment"]
    save_profile("local:judge-1.5b", {"answer_judgment": t1})  # the user's refit of the model's Template 1
    assert load_profile("local:judge-1.5b@llama.cpp")["answer_judgment"] == t1
    assert load_profile("local:judge-1.5b@llama.cpp")["csr"] == csr
