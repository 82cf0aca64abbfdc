"""``gate-check``: how well the offline probe gate separates the real evaluation prompts (ConVA Fig. 3).

Builds the exact lm-eval prompts of ``schwartz_dilemmas_<value>`` (value-related) and ``mmlu_conva4``
(value-unrelated, 5-shot), optionally chat-templated as with ``--apply_chat_template``, reads each
prompt's pooled embedding at the artifact's lowest selected layer (where ``op: conva`` decides the
gate) and reports the share of prompts with g(x) > g_0 on each side and the gate's accuracy.
Writes ``gate_check.csv`` (value, task, prompt index, g, open) into ``--out``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import torch

from steering_models.conva import artifacts
from steering_models.conva.activations import collect
from steering_models.conva.defaults import PROBE_GATE_G0


def _tasks(obj: Any) -> list[Any]:
    from lm_eval.api.task import Task

    if isinstance(obj, Task):
        return [obj]
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in _tasks(v)]
    return []


def task_prompts(task: str, n: int, tokenizer: Any, chat: bool, offset: int = 0) -> list[str]:
    """The contexts lm-eval builds for docs ``offset`` .. ``offset + n - 1`` of each subtask of ``task``
    (``offset`` = the runs' ``--limit``: prompts the runs do not evaluate, to choose g_0 on)."""
    from lm_eval.tasks import TaskManager, get_task_dict

    def template(history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        return tokenizer.apply_chat_template(history, tokenize=False, add_generation_prompt=add_generation_prompt)

    prompts: list[str] = []
    for t in _tasks(get_task_dict([task], TaskManager())):
        t.build_all_requests(limit=offset + n, apply_chat_template=chat, chat_template=template if chat else None,
                             tokenizer_name=getattr(tokenizer, "name_or_path", ""))
        prompts += list(dict.fromkeys(inst.args[0] for inst in t.instances))[offset:]
    return prompts


def gate_scores(model: Any, tokenizer: Any, art: artifacts.Artifact, prompts: list[str],
                max_length: int, batch_size: int, acts: torch.Tensor | None = None) -> torch.Tensor:
    """g(x) of each prompt; ``acts`` ([N, layers, D], pooled as the artifact's gate pools) when already
    collected (the MMLU prompts are the same for every value: collected once)."""
    layer = min(art.layers)
    if acts is None:
        acts = collect(model, tokenizer, prompts, gate_pooling(art), batch_size, max_length,
                       desc=f"{art.value}: gate")
    z = acts[:, layer].double() @ art.tensors["gate_w"][layer].double() + float(art.tensors["gate_b"][layer])
    return torch.sigmoid(z)


def gate_pooling(art: artifacts.Artifact) -> str:
    return str(art.settings.get("gate_pooling", art.settings.get("pooling", "last")))


def run_gate_check(pretrained: str, artifact_dir: Path, values: list[str], n: int, chat: bool,
                   g0: float | None, out: Path, max_length: int = 4096, batch_size: int = 2,
                   device: str = "cpu", offset: int = 0) -> pd.DataFrame:
    from steering_models.model_helpers import load_lm

    arts = [artifacts.load(artifact_dir, v) for v in values]
    model, tokenizer, identity = load_lm(pretrained, device)
    for art in arts:
        artifacts.check_model(artifacts.load_meta(artifact_dir, art.value), identity)
        if not art.has_gate:
            raise artifacts.ArtifactError(f"ConVA artifact for {art.value!r} has no probe gate; refit with "
                                          "--gate-negatives.")
    unrelated = task_prompts("mmlu_conva4", n, tokenizer, chat, offset)
    unrelated_acts: dict[str, torch.Tensor] = {}  # per pooling: one pass over the MMLU prompts for all values
    rows = []
    for art in arts:
        threshold = g0 if g0 is not None else PROBE_GATE_G0
        related = task_prompts(f"schwartz_dilemmas_{art.value.replace('-', '_')}", n, tokenizer, chat, offset)
        pooling = gate_pooling(art)
        if pooling not in unrelated_acts:
            unrelated_acts[pooling] = collect(model, tokenizer, unrelated, pooling, batch_size, max_length,
                                              desc="mmlu_conva4: gate")
        for task, prompts in ((f"schwartz_dilemmas_{art.value}", related), ("mmlu_conva4", unrelated)):
            acts = unrelated_acts[pooling] if task == "mmlu_conva4" else None
            g = gate_scores(model, tokenizer, art, prompts, max_length, batch_size, acts)
            rows += [{"value": art.value, "task": task, "prompt": i, "offset": offset, "g": float(x), "g0": threshold,
                      "open": bool(x > threshold), "value_related": task != "mmlu_conva4"}
                     for i, x in enumerate(g)]
    table = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "gate_check.csv", index=False)
    return table


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    correct = table["open"] == table["value_related"]
    summary = table.assign(correct=correct).groupby(["value", "task"], sort=False).agg(
        prompts=("g", "size"), open_share=("open", "mean"), mean_g=("g", "mean"), g0=("g0", "first"))
    acc = table.assign(correct=correct).groupby("value", sort=False)["correct"].mean().rename("gate_accuracy")
    return summary.reset_index().merge(acc.reset_index(), on="value")


def separating_range(table: pd.DataFrame) -> tuple[float, float]:
    """(highest g of a value-unrelated prompt, lowest g of a value-related one) over all values: any g_0
    strictly between them opens the gate on every value-related prompt and on no unrelated one (the
    paper tunes g_0 per value, Table 16; the interval is empty when the first number is not below the
    second)."""
    related = table["value_related"].astype(bool)
    return float(table.loc[~related, "g"].max()), float(table.loc[related, "g"].min())
