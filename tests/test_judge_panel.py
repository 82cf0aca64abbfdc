"""Panels of judges (VALUE_JUDGE_PANEL): majority verdict, ties and all-unparseable -> unscored, each
member's verdict kept; real tiny local judges that always answer one word."""

from __future__ import annotations

import json

import pytest
from judge_helpers import save_dominant_model

from lm_eval_tasks.judge.panel import PanelJudge, majority, panel_configs

FIELDS = [{"answer": "It may help, it depends on you."}]


def test_majority_ties_and_no_label_are_unscored():
    assert majority(["yes", "yes", "no"]) == "yes"
    assert majority(["yes", None, None]) == "yes"  # the only label given
    assert majority(["yes", "no"]) is None  # a tie
    assert majority(["yes", "no", None]) is None
    assert majority([None, None]) is None  # no member gave a label
    assert majority([True, False, True]) is True
    assert majority([[("A", "B")], [("A", "B")], None]) == [("A", "B")]  # causal graphs compare as edge sets


@pytest.fixture(scope="module")
def word_models(tiny_llama_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("panel")
    return {w: save_dominant_model(tiny_llama_dir, root / w, w) for w in ("yes", "no")}


def write_panel(path, members):
    path.write_text(json.dumps({"members": members}))
    return path


def build_panel(path, cache, monkeypatch):
    from lm_eval_tasks.judge import build_configured

    monkeypatch.setenv("VALUE_JUDGE_PANEL", str(path))
    monkeypatch.setenv("VALUE_JUDGE_CACHE", str(cache))
    monkeypatch.setenv("VALUE_JUDGE_MAX_TOKENS", "1")
    return build_configured()


def test_panel_majority_tie_and_members_recorded(word_models, tiny_llama_dir, tmp_path, monkeypatch):
    yes, no = str(word_models["yes"]), str(word_models["no"])
    local = lambda d: {"kind": "local", "pretrained": d}  # noqa: E731
    two_to_one = build_panel(write_panel(tmp_path / "p3.json", [local(yes), local(no), local(yes)]),
                             tmp_path / "c.sqlite", monkeypatch)
    assert isinstance(two_to_one, PanelJudge)
    (v,) = two_to_one.judge_many("answer_judgment", FIELDS)
    assert v.parsed == "yes" and [m.parsed for m in v.members] == ["yes", "no", "yes"]
    assert v.judge_id == "panel[local:yes,local:no,local:yes]" and [m.raw for m in v.members] == ["yes", "no", "yes"]
    tie = build_panel(write_panel(tmp_path / "p2.json", [local(yes), local(no)]), tmp_path / "c.sqlite", monkeypatch)
    (v,) = tie.judge_many("answer_judgment", FIELDS)
    assert v.parsed is None and [m.parsed for m in v.members] == ["yes", "no"]
    # a random tiny model writes no label: with one "yes" member, its "yes" is the majority of the labels given
    rnd = build_panel(write_panel(tmp_path / "pr.json", [local(str(tiny_llama_dir)), local(yes)]),
                      tmp_path / "c.sqlite", monkeypatch)
    (v,) = rnd.judge_many("answer_judgment", FIELDS)
    assert v.members[0].parsed is None and v.parsed == "yes"
    unparsed = build_panel(write_panel(tmp_path / "pn.json", [local(str(tiny_llama_dir))] * 2), tmp_path / "c.sqlite",
                           monkeypatch)
    (v,) = unparsed.judge_many("answer_judgment", FIELDS)
    assert v.parsed is None and all(m.parsed is None and m.raw for m in v.members)


def test_panel_file_errors_are_one_sentence(tmp_path):
    from lm_eval_tasks.judge.settings import JudgeSettingsError

    with pytest.raises(JudgeSettingsError, match="at least two"):
        panel_configs(write_panel(tmp_path / "one.json", [{"kind": "local"}]), env={})
    with pytest.raises(JudgeSettingsError, match="api_key_env"):
        panel_configs(write_panel(tmp_path / "key.json", [{"kind": "local"}, {"base_url": "http://x/v1",
                                                                            "api_key": "sk-1"}]), env={})
    with pytest.raises(JudgeSettingsError, match="MY_KEY"):
        panel_configs(write_panel(tmp_path / "env.json", [{"kind": "local"}, {"base_url": "http://x/v1",
                                                                            "api_key_env": "MY_KEY"}]), env={})
    got = panel_configs(write_panel(tmp_path / "ok.json", [{"kind": "local"}, {"base_url": "http://x/v1",
                                                                             "api_key_env": "MY_KEY"}]),
                        env={"MY_KEY": "sk-secret", "VALUE_JUDGE_TIMEOUT": "7"})
    assert got[1].api_key == "sk-secret" and got[1].timeout == 7.0 and "sk-secret" not in repr(got[1])
    with pytest.raises(JudgeSettingsError, match="member 2"):
        panel_configs(write_panel(tmp_path / "bad.json", [{"kind": "local"}, {"kind": "nope"}]), env={})
