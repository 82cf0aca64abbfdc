"""The lm-eval Task class of our tasks whose docs are built from ``--metadata`` (``custom_dataset``).

Why a class: lm-eval 0.4.13's ``ConfigurableTask.download`` logs, for every task whose YAML sets
``custom_dataset`` and every time the task is built, the warning "<task>: Custom kwargs can be passed to
`--metadata` in console ...". It is advice for users of a task they did not write, not a problem with the
run, yet our groups have 10-17 subtasks, so a run printed it dozens of times. The YAMLs therefore name this
class (``class: !function hooks.MetadataTask``, re-exported by each task folder's ``hooks``); it builds the
dataset exactly as lm-eval does, ``custom_dataset(**metadata, **dataset_kwargs)``, without that warning.
Everything else is lm-eval's ``ConfigurableTask``.
"""

from __future__ import annotations

from typing import Any

from lm_eval.api.task import ConfigurableTask


class MetadataTask(ConfigurableTask):
    """``ConfigurableTask`` whose ``custom_dataset`` is called with the task metadata, quietly."""

    def __init__(self, config: dict[str, Any] | None = None, **kwargs: Any) -> None:
        # lm-eval hands a `class:` task its whole YAML; `class` itself is not a TaskConfig field
        config = {k: v for k, v in (config or {}).items() if k != "class"}
        super().__init__(config=config, **kwargs)

    def download(self, dataset_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        build = self.config.custom_dataset
        if not callable(build):
            raise ValueError(f"task {self.config.task!r} uses {type(self).__name__}, which needs `custom_dataset: "
                             "!function hooks.<builder>` in its YAML; add it or drop the `class:` line.")
        self.dataset = build(**(self.config.metadata or {}), **(self.config.dataset_kwargs or {}))
