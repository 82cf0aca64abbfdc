"""The YAML/JSON loader for every file users hand us: hostile files are refused in one sentence naming the
file and the line, quickly and before anything reads them; ordinary files (anchors, merges) still load."""

from __future__ import annotations

import time

import pytest

from lm_eval_tasks.judge.panel import panel_configs
from lm_eval_tasks.judge.settings import JudgeSettingsError, load_settings
from lm_eval_tasks.safe_yaml import MAX_DEPTH, ConfigFileError, load_file, load_text


def alias_bomb(levels: int = 9) -> str:
    """~1 KB of YAML that expands to 9**levels strings."""
    text = 'l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for i in range(1, levels):
        text += f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]\n"
    return text


def one_sentence(msg: str) -> bool:
    return msg.endswith(".") and msg.count(". ") == 0 and "\n" not in msg


HOSTILE = {
    "alias bomb in meta": ("name: x\nmeta:\n  " + alias_bomb().replace("\n", "\n  ") + "\ninterventions: []\n",
                           "alias bomb"),
    "5000-deep nesting": ("meta: " + "[" * 5000 + "]" * 5000 + "\n", f"nesting deeper than {MAX_DEPTH}"),
    "200-deep block mappings": ("".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "v: 1\n",
                                 f"nesting deeper than {MAX_DEPTH}"),
    "400-digit integer": ("interventions:\n  - layer: 1\n    strength: " + "9" * 400 + "\n", "400 digits"),
    "duplicate key": ("name: a\ninterventions: []\nname: b\n", "key 'name' is given twice (first on line 1)"),
    "syntax error": ("a: [1, 2\n", "not valid YAML"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_yaml_is_one_sentence_naming_file_and_line(case, tmp_path):
    text, why = HOSTILE[case]
    path = tmp_path / "steer.yaml"
    path.write_text(text)
    start = time.perf_counter()
    with pytest.raises(ConfigFileError) as e:
        load_file(path, "steering file")
    assert time.perf_counter() - start < 2.0
    msg = str(e.value)
    assert why in msg and f"steering file {path}: line " in msg and one_sentence(msg), msg


def test_json_gets_the_same_limits(tmp_path):
    for text, why in [('{"a": 1, "a": 2}', "key 'a' is given twice"), ("[" * 5000 + "]" * 5000, "nesting deeper"),
                      ("[" + "9" * 400 + "]", "400 digits"), ('{"a": ', "line 1: not valid JSON")]:
        (tmp_path / "c.json").write_text(text)
        with pytest.raises(ConfigFileError, match="judge config .*c.json") as e:
            load_file(tmp_path / "c.json", "judge config")
        assert why in str(e.value) and one_sentence(str(e.value))
    (tmp_path / "c.json").write_text('{"a": "[[[{{", "b": [1, 2.5]}')  # brackets inside strings are text
    assert load_file(tmp_path / "c.json") == {"a": "[[[{{", "b": [1, 2.5]}


def test_ordinary_yaml_still_loads(tmp_path):
    text = ("base: &src {sae: ./sae, feature: 428}\ninterventions:\n  - {layer: 1, source: *src, strength: 3.0e+38}\n"
            "  - {<<: *src, layer: 2, feature: 7, hex: 0x1F, big: 123456789012345678901234567890}\n")
    data = load_text(text)
    assert data["interventions"][0]["source"] == {"sae": "./sae", "feature": 428}
    assert data["interventions"][1] == {"sae": "./sae", "feature": 7, "layer": 2, "hex": 31,
                                        "big": 123456789012345678901234567890}
    assert data["interventions"][0]["strength"] == 3.0e38


def test_oversized_and_non_text_files_are_refused(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("a: 1\n" * 10)
    with pytest.raises(ConfigFileError, match="over the 20-byte limit"):
        load_file(big, max_bytes=20)
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\x80\x81\xff")
    with pytest.raises(ConfigFileError, match="not UTF-8 text"):
        load_file(binary)


def test_judge_config_and_panel_files_go_through_it(tmp_path):
    cfg = tmp_path / "judge.yaml"
    cfg.write_text("base_url: http://127.0.0.1:1/v1\nmodel: m\nmodel: n\n")
    with pytest.raises(JudgeSettingsError, match=r"judge config .*judge.yaml: line 3: key 'model' is given twice"):
        load_settings({"VALUE_JUDGE_CONFIG": str(cfg)})
    panel = tmp_path / "panel.yaml"
    panel.write_text("members:\n" + "  - {kind: local, pretrained: default}\n" * 2 + "x: " + "[" * 3000 + "]" * 3000)
    with pytest.raises(JudgeSettingsError, match=r"panel file .*panel.yaml: line 4: nesting deeper"):
        panel_configs(panel, env={})
