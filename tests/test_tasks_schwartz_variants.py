"""The §4.4 (Fig. 4) task variants: ``schwartz_dilemmas_negative_*`` (ConVA's negative-value role prompt,
read from the ConVA data folder) and ``schwartz_dilemmas_positive_*`` (the ICA prompt), end to end through
the real ``lm_eval.simple_evaluate`` on the tiny random Llama, as raw prompts and chat-templated.

The golden prompts use a ConVA folder made in the test: ConVA's own ``run_cav_hyperparams.json`` (copied
from ``../shared/data/conva``; its wording is not shipped) and one made-up dilemma question.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from conftest import CHAT_TEMPLATE
from test_tasks_e2e import conva_dir

import steering_models._bootstrap  # noqa: F401  (adds lm_eval_tasks to every TaskManager)

QUESTION = "Should Mia take the promotion that puts her in charge of her former teammates?"
NEGATIVE_POWER = ("You have low level of power. Power means social status and prestige, control or dominance "
                  "over people and resources.")
POSITIVE_POWER = ("You have a high level of power. Power means social status and prestige, control or "
                  "dominance over people and resources.")
GOLDEN = {  # task: (variant, prompt)
    "schwartz_dilemmas_negative_power": ("negative", f"{NEGATIVE_POWER} {QUESTION}"),
    "schwartz_dilemmas_positive_power": ("positive", f"{POSITIVE_POWER} {QUESTION}"),
    "schwartz_dilemmas_power": ("plain", QUESTION),
}


def write_conva_dir(out: Path, questions: dict[str, list[str]], with_prompts: bool = True) -> Path:
    """A ConVA folder with ``value/test_<value>_new.csv`` per value (power is always there: the folder
    check looks for it) and, unless ``with_prompts`` is False, ConVA's run_cav_hyperparams.json."""
    (out / "value").mkdir(parents=True)
    for value, texts in {"power": ["x"], **questions}.items():
        with open(out / "value" / f"test_{value}_new.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["text"])
            writer.writerows([q] for q in texts)
    if with_prompts:
        shutil.copy(conva_dir() / "run_cav_hyperparams.json", out / "run_cav_hyperparams.json")
    return out


@pytest.fixture(scope="module")
def golden_dir(tmp_path_factory) -> Path:
    return write_conva_dir(tmp_path_factory.mktemp("conva-golden"),
                           {"power": [QUESTION, "Is a second question fine?"], "self-direction": ["A question?"]})


@pytest.fixture(scope="module")
def our_tasks(golden_dir):
    """A TaskManager that indexes only this package's tasks (seconds, not lm-eval's thousands); the task
    metadata (lm_eval --metadata) names the test's ConVA folder."""
    from lm_eval.tasks import TaskManager

    import lm_eval_tasks

    return TaskManager(include_path=str(Path(lm_eval_tasks.__file__).parent), include_defaults=False,
                       metadata={"conva_dir": str(golden_dir)})


@pytest.mark.parametrize("chat", [False, True], ids=["raw", "chat_template"])
def test_golden_prompts(golden_dir, tiny_llama_dir, our_tasks, chat):
    import lm_eval

    res = lm_eval.simple_evaluate(
        model="hf", model_args={"pretrained": str(tiny_llama_dir), "dtype": "float32"}, device="cpu",
        tasks=list(GOLDEN), limit=1, log_samples=True, gen_kwargs={"max_gen_toks": 2},
        apply_chat_template=chat, task_manager=our_tasks,
    )
    assert CHAT_TEMPLATE.startswith("{% for m in messages %}<|{{ m['role'] }}|>\n")  # the template below
    for task, (variant, text) in GOLDEN.items():
        (sample,) = res["samples"][task]
        want = f"<|user|>\n{text}\n<|assistant|>\n" if chat else text
        assert sample["arguments"][0][0] == want, task
        assert sample["doc"]["variant"] == variant
        assert sample["doc"]["question"] == QUESTION  # the judge reads the bare question


def test_positive_is_the_ica_prompt(golden_dir):
    from lm_eval_tasks.schwartz.hooks import dilemma_dataset, doc_to_text
    from lm_eval_tasks.schwartz.prompts import render_ica

    for value, question in (("power", QUESTION), ("self-direction", "A question?")):
        pos = dilemma_dataset(value, "positive", conva_dir=str(golden_dir))["test"][0]
        ica = dilemma_dataset(value, "ica", conva_dir=str(golden_dir))["test"][0]
        assert doc_to_text(pos) == doc_to_text(ica) == render_ica(value, pos["value_description"], question)
    neg = dilemma_dataset("self-direction", "negative", conva_dir=str(golden_dir))["test"][0]
    assert doc_to_text(neg) == ("You have low level of self-direction. Self-direction means independent thought "
                                "and action-choosing, creating, exploring. A question?")


def test_missing_negative_prompts_name_the_file_and_the_fix(tmp_path):
    from lm_eval_tasks.schwartz.hooks import dilemma_dataset

    folder = write_conva_dir(tmp_path / "c", {"power": [QUESTION]}, with_prompts=False)
    with pytest.raises(FileNotFoundError, match=r"run_cav_hyperparams\.json.*conva_dir"):
        dilemma_dataset("power", "negative", conva_dir=str(folder))
    assert len(dilemma_dataset("power", "positive", conva_dir=str(folder))["test"]) == 1  # others need no file
    (folder / "run_cav_hyperparams.json").write_text('{"negative_value_prompt_prefix": {"achievement": "x"}}')
    with pytest.raises(ValueError, match=r"negative_value_prompt_prefix\['power'\]"):
        dilemma_dataset("power", "negative", conva_dir=str(folder))


def test_groups_and_yamls(our_tasks):
    from lm_eval_tasks.schwartz._generate_yamls import HERE, expected_files

    for filename, text in expected_files().items():
        assert (HERE / filename).read_text(encoding="utf-8") == text, filename
    names = set(our_tasks.all_tasks)
    for group in ("schwartz_dilemmas_negative", "schwartz_dilemmas_positive"):
        assert group in names and f"{group}_self_direction" in names
