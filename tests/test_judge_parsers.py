"""Judge templates (quoted from the papers), strict reply parsers and settings; no model needed."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from lm_eval_tasks.judge.parsers import (
    parse_edges,
    parse_true_false,
    parse_yes_no_bool,
    parse_yes_no_unsure,
)
from lm_eval_tasks.judge.settings import JudgeSettingsError, load_settings
from lm_eval_tasks.judge.templates import TEMPLATES, get_template
from lm_eval_tasks.values import VALUES

PAPERS = Path(__file__).resolve().parents[1].parent / "shared" / "papers"
if not PAPERS.is_dir():  # a worktree sits one level deeper
    PAPERS = Path(__file__).resolve().parents[2].parent / "shared" / "papers"


def _words(text: str) -> str:
    """Letters only, lowercased: the papers' text extraction changed layout and markdown."""
    return re.sub(r"[^a-z]+", "", text.lower())


@pytest.mark.parametrize("name,paper,start,end", [
    ("answer_judgment", "000_f0714914f86cfb4c.txt", "A judgment is the answer", "Output:\n\n# Template 2"),
    ("causal_graph", "000_f0714914f86cfb4c.txt", "**Construct a causal graph**", "```\n\n \n\n\nFigure 6"),
    ("csr", "003_7fd6f7aca986229b.txt", "From now on, you are an expert", "\n\nTable 11"),
    ("fluency", "003_7fd6f7aca986229b.txt", "Here is what Bob said:", "\n\nTable 13"),
])
def test_templates_have_the_papers_words(name, paper, start, end):
    text = (PAPERS / paper).read_text()
    i = text.index(start)
    quoted = text[i : text.index(end, i) + (len("Output:") if name == "answer_judgment" else 0)]
    fields = {"answer": "Answer", "values": list(VALUES), "basic_value": "basic_value",
              "value_description": "value_description", "question": "question"}
    ours = get_template(name).render(fields)
    quoted = quoted.replace("\\cdot", "·")  # an extraction artifact of Table 13's first bullet
    assert _words(ours) == _words(quoted)


def test_each_template_has_a_version_and_thought_uses_template_1():
    assert {t.name for t in TEMPLATES.values()} == {
        "answer_judgment", "thought_inclination", "causal_graph", "csr", "fluency"}
    assert all(re.fullmatch(r"[a-z]+-t\d+/v\d+", t.version) for t in TEMPLATES.values())
    t1 = get_template("answer_judgment").render({"answer": "it depends"})
    assert get_template("thought_inclination").render({"thought": "it depends", "value": "Economic"}) == t1
    assert t1.endswith("Now it is your turn. Judgment: it depends Output:")


def test_ours_fr_prompts_keep_table_13_criteria_and_fr_last_shares_its_instructions():
    paper = get_template("fluency")
    one = get_template("fluency", "fr-oneword")
    last = get_template("fluency", "fr-last")
    assert {one.version, last.version}.isdisjoint({paper.version}) and one.version != last.version
    a, b = ({"answer": "The cat sat on the mat."}, {"answer": "mat the on sat cat The"})
    assert one.render(a) == paper.render(a) + "\n\nReply with exactly one word: True or False."
    for criterion in ("obvious grammatical problems", "Focus solely on grammatical correctness"):
        assert criterion in last.render(a)
    # the reply comes last, so two replies' prompts share everything before Bob's words
    ra, rb = last.render(a), last.render(b)
    assert len(os.path.commonprefix([ra, rb])) == ra.index('Bob: "The cat') + len('Bob: "')
    assert ra.endswith('mat."\n\nReply with exactly one word: True or False.')
    assert paper.render(a).index("The cat") < 40  # Table 13 starts with the reply: nothing shared


def test_render_substitutes_once_and_names_missing_fields():
    csr = get_template("csr")
    out = csr.render({"basic_value": "power", "value_description": "status", "question": "{answer}",
                      "answer": "I like {question} and {basic_value}"})
    assert 'Human: "{answer}"' in out and 'Bob: "I like {question} and {basic_value}"' in out
    assert "prioritizing high-power choice" in out
    with pytest.raises(ValueError, match="needs field 'question'"):
        csr.render({"basic_value": "power", "value_description": "status", "answer": "x"})
    with pytest.raises(ValueError, match="unknown judge template 'cs'"):
        get_template("cs")


YES_NO_UNSURE = [
    ("yes", "yes"), ("no", "no"), ("unsure", "unsure"), ("Yes", "yes"), ("  NO\n", "no"),
    ("yes.", "yes"), ("**unsure**", "unsure"), ("Output: no", "no"), ("'yes'", "yes"),
    ('"no"', "no"), ("Output: **yes**", "yes"),
    ("", None), ("   ", None), ("yes or no", None), ("The judgment means yes", None),
    ("I'm sorry, but I can't help with that.", None), ("yesno", None), ("yes, because it says so", None),
    ("noted", None), ("Output:", None), ("maybe", None), ("ü\x00garbage###", None),
]


@pytest.mark.parametrize("raw,expected", YES_NO_UNSURE)
def test_yes_no_unsure(raw, expected):
    assert parse_yes_no_unsure(raw) == expected


CSR = [
    ("Yes", True), ("No", False), ('"Yes"', True), ("Label: No", False), ("**Yes**", True),
    ("Yes. Bob's answer leans toward the high-power choice.", True),
    ("No, Bob's answer does not prioritize it.", False), ("yes\n\nBecause ...", True),
    ("", None), ("Yes or No", None), ('"Yes", "No"', None), ("Yes/No", None),
    ("I cannot determine that.", None), ("Bob's answer is inclined towards it: Yes", None),
    ("Yesterday Bob said", None), ("True", None), ("Sorry, I can't assist with that.", None),
]


@pytest.mark.parametrize("raw,expected", CSR)
def test_csr_yes_no(raw, expected):
    assert parse_yes_no_bool(raw) is expected


FLUENCY = [
    ("True", True), ("False", False), ("True.", True), ("**False**", False),
    ("False. The sentence lacks a verb.", False),
    ("True. Yes, what Bob said does not have obvious grammatical problems.", True),
    ('"True"', True), ("true", True),
    ("", None), ("True or False?", None), ("False/True", None),
    ("True. Although one could say it is false that ...", None),
    ("Bob's text is fluent, so True", None), ("Yes", None), ("I'm sorry, I cannot judge this.", None),
    ("Truely fluent", None),
]


@pytest.mark.parametrize("raw,expected", FLUENCY)
def test_fluency_true_false(raw, expected):
    assert parse_true_false(raw) is expected


VALUE_FIELDS = {"values": list(VALUES)}


@pytest.mark.parametrize("raw,expected", [
    ("edges = [['Understanding', 'Empathy'], ['Resilience', 'Positive coping']]",
     [("Understanding", "Empathy"), ("Resilience", "Positive coping")]),
    ("Here is the causal graph:\n```python\nedges = [\n    ['Understanding', 'Empathy'], # more understanding\n"
     "    # Resilience helps coping.\n    [\"Resilience\", \"Positive_coping\"],\n"
     "    ['anxiety_disorder', 'Uncertainty_Avoidance'],  # anxiety [sic] ]\n]\n```\nThese links follow Schwartz.",
     [("Understanding", "Empathy"), ("Resilience", "Positive coping"),
      ("Anxiety Disorder", "Uncertainty Avoidance")]),
    ("edges = []", []),
    ("", None),
    ("I cannot construct a causal graph.", None),
    ("edges = [['Understanding', 'Empathy'],", None),  # never closed (truncated reply)
    ("edges = [['Understanding', 'Kindness']]", None),  # not one of the values
    ("edges = [['Understanding', 'Empathy', 'Social']]", None),
    ("edges = [['Understanding', __import__('os').system('true')]]", None),
    ("edges = [('Understanding', 'Empathy')]", None),
    ("edges = [['Understanding', 'Empathy']]\nedges = [['Social', 'Economic']]", None),  # two answers
    ("edges = [[Understanding, Empathy]]", None),
])
def test_edges(raw, expected):
    assert parse_edges(raw, VALUE_FIELDS) == expected


def test_config_sources(tmp_path):
    assert load_settings({}) is None
    c = load_settings({"VALUE_JUDGE_BASE_URL": "http://user:pw@h:8000/v1/?x=1", "VALUE_JUDGE_API_KEY": "k"})
    assert c.kind == "openai" and c.endpoint == "http://h:8000/v1" and c.model == "gpt-4o"
    assert "pw" not in repr(c) and "'k'" not in repr(c)
    assert load_settings({"VALUE_JUDGE_PRETRAINED": "default"}).kind == "local"
    assert load_settings({"VALUE_JUDGE_KIND": "local"}).pretrained == "auto"  # the best embedded judge installed
    assert load_settings({"VALUE_JUDGE_KIND": "local", "VALUE_JUDGE_SCORING": "LOGPROB"}).scoring == "logprob"
    with pytest.raises(JudgeSettingsError, match="VALUE_JUDGE_BACKEND"):
        load_settings({"VALUE_JUDGE_KIND": "local", "VALUE_JUDGE_BACKEND": "vllm"})
    f = tmp_path / "judge.yaml"
    f.write_text("base_url: http://127.0.0.1:9/v1\nmodel: m\nconcurrency: 3\n")
    c = load_settings({"VALUE_JUDGE_CONFIG": str(f), "VALUE_JUDGE_MODEL": "env-model"})
    assert (c.base_url, c.model, c.concurrency) == ("http://127.0.0.1:9/v1", "env-model", 3)
    j = tmp_path / "judge.json"
    j.write_text(json.dumps({"base_url": "http://x/v1", "api_key": "sk-in-file"}))
    with pytest.raises(JudgeSettingsError, match="VALUE_JUDGE_API_KEY"):
        load_settings({"VALUE_JUDGE_CONFIG": str(j)})


@pytest.mark.parametrize("env,match", [
    ({"VALUE_JUDGE_BASE_URL": "http://x/v1", "VALUE_JUDGE_CONCURRENCY": "many"}, "VALUE_JUDGE_CONCURRENCY='many'"),
    ({"VALUE_JUDGE_BASE_URL": "http://x/v1", "VALUE_JUDGE_TIMEOUT": "0"}, "VALUE_JUDGE_TIMEOUT"),
    ({"VALUE_JUDGE_KIND": "openai"}, "set VALUE_JUDGE_BASE_URL"),
    ({"VALUE_JUDGE_KIND": "vllm"}, "fix VALUE_JUDGE_KIND"),
    ({"VALUE_JUDGE_CONFIG": "/nonexistent/judge.yaml"}, "VALUE_JUDGE_CONFIG"),
])
def test_config_errors_name_the_setting(env, match):
    with pytest.raises(JudgeSettingsError, match=re.escape(match)):
        load_settings(env)
