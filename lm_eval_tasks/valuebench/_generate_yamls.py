"""Writes the per-value task YAMLs and group YAMLs of this folder (run after changing VALUES).

``python -m lm_eval_tasks.valuebench._generate_yamls``; tests check the files are up to date.
"""

from __future__ import annotations

from pathlib import Path

from lm_eval_tasks.generated_yamls import HEADER, group_yaml, write_files
from lm_eval_tasks.values import VALUES, value_slug

HERE = Path(__file__).resolve().parent

# variant -> (template file, role split, explicit instruction?)
VARIANTS: dict[str, tuple[str, str, bool]] = {
    "valuebench_cot_train": ("_cot_template_yaml", "train", False),
    "valuebench_cot_test": ("_cot_template_yaml", "test", False),
    "valuebench_ll_train": ("_ll_template_yaml", "train", False),
    "valuebench_ll_test": ("_ll_template_yaml", "test", False),
    "valuebench_explicit": ("_explicit_template_yaml", "test", True),
}


def expected_files() -> dict[str, str]:
    files: dict[str, str] = {}
    for group, (template, split, explicit) in VARIANTS.items():
        names = []
        for value in VALUES:
            name = f"{group}_{value_slug(value)}"
            names.append(name)
            body = (
                f"include: {template}\n"
                f"task: {name}\n"
                f'task_alias: "{value}"\n'
                "dataset_kwargs:\n"
                f'  vb_value: "{value}"\n'
                f"  vb_split: {split}\n"
            )
            if explicit:
                body += "  vb_explicit: true\n"
            files[f"{name}.yaml"] = HEADER + body
        files[f"{group}.yaml"] = group_yaml(group, names)
    return files


def main() -> None:
    write_files(HERE, expected_files())


if __name__ == "__main__":
    main()
