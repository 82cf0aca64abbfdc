"""Writes the per-value task YAMLs and group YAMLs of this folder (run after changing VALUES or VARIANTS).

``python -m lm_eval_tasks.schwartz._generate_yamls``; tests check the files are up to date.
"""

from __future__ import annotations

from pathlib import Path

from lm_eval_tasks.generated_yamls import HEADER, group_yaml, write_files
from lm_eval_tasks.schwartz.data import VALUES, value_slug

HERE = Path(__file__).resolve().parent

# group -> the `sv_variant` its subtasks pass to hooks.dilemma_dataset (see prompts.VARIANT_PROMPTS)
VARIANTS: dict[str, str] = {
    "schwartz_dilemmas": "plain",
    "schwartz_dilemmas_ica": "ica",
    "schwartz_dilemmas_negative": "negative",
    "schwartz_dilemmas_positive": "positive",
}


def expected_files() -> dict[str, str]:
    files: dict[str, str] = {}
    for group, variant in VARIANTS.items():
        names = []
        for value in VALUES:
            name = f"{group}_{value_slug(value)}"
            names.append(name)
            files[f"{name}.yaml"] = (
                HEADER +
                "include: _template_yaml\n"
                f"task: {name}\n"
                f'task_alias: "{value}"\n'
                "dataset_kwargs:\n"
                f'  sv_value: "{value}"\n'
                f"  sv_variant: {variant}\n"
            )
        files[f"{group}.yaml"] = group_yaml(group, names)
    return files


def main() -> None:
    write_files(HERE, expected_files())


if __name__ == "__main__":
    main()
