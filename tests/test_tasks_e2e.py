"""Every task family end to end through the real ``lm_eval.simple_evaluate`` on a tiny random model.

The tiny Llama is built in conftest (random weights, a BPE tokenizer trained in the test); nothing
is mocked. Random weights never produce a parseable answer, so the CoT samples must come out unscored
(NaN, n_scored 0) while the loglikelihood variant always scores.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import steering_models._bootstrap  # noqa: F401  (adds lm_eval_tasks to every TaskManager)

REPO = Path(__file__).resolve().parents[1]
VALUEBENCH_FIELDS = {"role_id", "role_name", "role_split", "value", "item_id", "agreement",
                     "question", "instruction"}


def conva_dir() -> Path:
    """``../shared/data/conva`` beside the repository (CI); worktrees sit one level deeper."""
    for base in (REPO.parent, REPO.parent.parent):
        path = base / "shared" / "data" / "conva"
        if path.is_dir():
            return path
    pytest.skip("ConVA data (../shared/data/conva) is not beside this checkout")


@pytest.fixture(scope="module")
def tiny_model(tiny_llama_dir) -> str:
    """The tiny random Llama of conftest (its BPE tokenizer is trained in the test)."""
    return str(tiny_llama_dir)


@pytest.fixture(scope="module")
def run(tiny_model):
    import lm_eval

    return lm_eval.simple_evaluate(
        model="hf",
        model_args={"pretrained": tiny_model, "dtype": "float32"},
        device="cpu",
        tasks=["valuebench_cot_test", "valuebench_ll_train_economic",
               "valuebench_explicit_aesthetic", "mmlu_conva4_astronomy",
               "schwartz_dilemmas_ica_power"],
        limit=2,
        log_samples=True,
        gen_kwargs={"max_gen_toks": 4},
        metadata={"num_roles": 1, "conva_dir": str(conva_dir())},
    )


def test_valuebench_cot_group_reports_17_orientations(run):
    from lm_eval_tasks.values import VALUES, value_slug

    res = run["results"]
    for value in VALUES:
        entry = res[f"valuebench_cot_test_{value_slug(value)}"]
        assert entry["alias"] == value
        assert "orientation,a1" in entry and entry["n_scored,a1"] == 0.0
        assert math.isnan(entry["orientation,a1"])  # random weights: nothing parseable
    samples = run["samples"]["valuebench_cot_test_empathy"]
    assert len(samples) == 2
    for s in samples:
        assert VALUEBENCH_FIELDS <= s["doc"].keys()
        assert s["doc"]["role_id"] == "r101" and s["doc"]["role_split"] == "test"
        assert s["doc"]["value"] == "Empathy" and s["doc"]["agreement"] in (1, -1)
        judged = s["filtered_resps"][0]
        assert {"thought", "answer", "label", "judged_by", "output"} <= judged.keys()
        assert judged["output"] == s["resps"][0][0]
        assert s["arguments"][0][0].endswith(f"Question: {s['doc']['question']}\nThought:")
        assert math.isnan(s["orientation"])
    json.dumps(samples, default=str)  # loggable


def test_valuebench_ll_scores_every_item(run):
    entry = run["results"]["valuebench_ll_train_economic"]
    assert entry["n_scored,ll"] == 2.0
    samples = run["samples"]["valuebench_ll_train_economic"]
    for s in samples:
        assert s["doc"]["role_id"] == "r0" and s["doc"]["role_name"] == ""
        judged = s["filtered_resps"][0]
        ll_yes, ll_no = s["resps"][0][0][0], s["resps"][1][0][0]
        assert judged["ll_yes"] == ll_yes and judged["ll_no"] == ll_no
        assert judged["label"] == ("yes" if ll_yes >= ll_no else "no")
        assert judged["p_yes_minus_p_no"] == pytest.approx(math.tanh((ll_yes - ll_no) / 2))
        sign = 1 if judged["label"] == "yes" else -1
        assert s["orientation"] == sign * s["doc"]["agreement"]
        assert s["arguments"][0][1] == " yes" and s["arguments"][1][1] == " no"
    assert entry["orientation,ll"] == pytest.approx(sum(s["orientation"] for s in samples) / 2)


def test_valuebench_explicit_logs_instruction(run):
    samples = run["samples"]["valuebench_explicit_aesthetic"]
    assert [s["doc"]["instruction"] for s in samples] == ["inclined", "disinclined"]
    assert 'You are inclined to the value of Aesthetic, which means "Harmony and beauty")' in (
        samples[0]["arguments"][0][0])
    assert "orientation_inclined,a1" in run["results"]["valuebench_explicit_aesthetic"]


def test_mmlu_prompt_matches_lm_eval_builtin(run):
    """Our task's 5-shot context equals lm-eval's built-in mmlu_astronomy on the same docs."""
    import lm_eval
    from lm_eval.api.task import ConfigurableTask
    from lm_eval.tasks._yaml_loader import load_yaml

    from lm_eval_tasks.mmlu_conva4.hooks import mmlu_dataset

    builtin_yaml = Path(lm_eval.__file__).parent / "tasks/mmlu/default/mmlu_astronomy.yaml"
    cfg = load_yaml(builtin_yaml, resolve_func=True)
    cfg.pop("tag", None)
    cfg.update(custom_dataset=mmlu_dataset, dataset_kwargs={"mmlu_subject": "astronomy"})
    builtin = ConfigurableTask(config=cfg)
    sample = run["samples"]["mmlu_conva4_astronomy"][0]
    ours = sample["arguments"][0][0]
    theirs = builtin.fewshot_context(sample["doc"], num_fewshot=5)
    assert ours == theirs
    assert [a[1] for a in sample["arguments"]] == [" A", " B", " C", " D"]
    assert run["results"]["mmlu_conva4_astronomy"]["acc,none"] in (0.0, 0.5, 1.0)


def test_schwartz_ica_unscored_without_judge(run):
    samples = run["samples"]["schwartz_dilemmas_ica_power"]
    s = samples[0]
    assert s["arguments"][0][0].startswith(
        "You have a high level of power. Power means social status and prestige, control or "
        "dominance over people and resources. "
    )
    assert s["arguments"][0][0].endswith(s["doc"]["question"])
    assert math.isnan(s["csr"]) and math.isnan(s["fr"])
    assert run["results"]["schwartz_dilemmas_ica_power"]["n_scored_csr,judge"] == 0.0


def test_schwartz_missing_data_names_the_setting(tmp_path, monkeypatch):
    from lm_eval_tasks.schwartz.hooks import dilemma_dataset

    monkeypatch.delenv("VALUE_STEERING_CONVA_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="VALUE_STEERING_CONVA_DIR"):
        dilemma_dataset("power", "plain", conva_dir=str(tmp_path))
    monkeypatch.setenv("VALUE_STEERING_CONVA_DIR", str(conva_dir()))
    ds = dilemma_dataset("power", "plain")["test"]
    assert len(ds) == 100 and ds[0]["question_id"] == "power-000"


def test_tasks_found_by_bootstrap_and_by_include_path():
    from lm_eval.tasks import TaskManager

    import lm_eval_tasks

    names = set(TaskManager().all_tasks)
    for name in ("valuebench_cot_test", "valuebench_ll_train", "valuebench_explicit",
                 "schwartz_dilemmas", "schwartz_dilemmas_ica", "mmlu_conva4",
                 "valuebench_cot_train_social_cynicism"):
        assert name in names
    only_ours = TaskManager(include_path=str(Path(lm_eval_tasks.__file__).parent),
                            include_defaults=False)
    assert "valuebench_cot_test" in only_ours.all_tasks
    assert "hellaswag" not in only_ours.all_tasks


def test_generated_yamls_are_up_to_date():
    from lm_eval_tasks.valuebench._generate_yamls import HERE, expected_files

    for filename, text in expected_files().items():
        assert (HERE / filename).read_text(encoding="utf-8") == text, filename


def test_building_our_tasks_logs_no_custom_kwargs_warning(caplog):
    """lm-eval warns "Custom kwargs can be passed to `--metadata`" for every task built with a
    ``custom_dataset``; ours are built by ``MetadataTask``, which reads the metadata without it, and the
    docs still follow the metadata (num_roles / item_fraction)."""
    import logging

    from lm_eval.tasks import TaskManager, get_task_dict

    import lm_eval_tasks
    from lm_eval_tasks.metadata_task import MetadataTask

    manager = TaskManager(include_path=str(Path(lm_eval_tasks.__file__).parent), include_defaults=False,
                          metadata={"num_roles": 2, "item_fraction": 0.2, "conva_dir": str(conva_dir())})
    with caplog.at_level(logging.WARNING, logger="lm_eval"):
        tasks = get_task_dict(["valuebench_ll_train", "mmlu_conva4_astronomy", "schwartz_dilemmas_power"], manager)
    leaves = {name: task for name, task in _leaves(tasks)}
    assert not [r.getMessage()[:60] for r in caplog.records if "Custom kwargs" in r.getMessage()]
    assert len(leaves) == 19 and all(isinstance(t, MetadataTask) for t in leaves.values())
    docs = list(leaves["valuebench_ll_train_economic"].test_docs())
    assert {d["role_id"] for d in docs} == {"r0", "r1"}


def _leaves(tasks):
    for key, value in tasks.items():
        if isinstance(value, dict):
            yield from _leaves(value)
        else:
            yield getattr(key, "group_name", key) if not isinstance(key, str) else key, value
