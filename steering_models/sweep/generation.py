"""How a sweep answers ``generate_until`` requests of many configs: rows of several configs per batch.

Greedy requests (``lm.engine_takes``: ``gen_engine=ragged``, the default) go to the ragged engine
(steering_models.generation through ``lm.ragged_generate``): the rows of every config of the pass in one
ragged batch, rows leaving as they finish and waiting rows (of any config) taking their place, each config's
rows sharing their role's prompt prefix, and with ``share_trunk`` (the default) the prefixes of all the pass's
position-local configs computed in one pass through a shared trunk (``steering_models.trunk``). Greedy
generations equal each config alone with HF ``generate`` (tests/test_generation.py).

Otherwise (``gen_engine=hf``, sampling) this reproduces HFLM's ``generate_until``: requests are grouped by their generation kwargs, encoded with
left padding (``left_truncate_len`` = max_length - max_gen_toks), generated with HFLM's ``_model_generate``
(stop sequences included) and post-processed as HFLM does (think-end token, stop strings). Each row of a
batch carries its config (``RowLayout.config``), so the steering hooks steer it by its own spec. Greedy
decoding gives each config's solo answers (parity: tests/test_sweep_parity.py); sampled decoding draws from
the same distribution but not the same random numbers as a solo run.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import handle_stop_sequences, normalize_gen_kwargs
from tqdm import tqdm

from steering_models.calls import generation_layouts
from steering_models.gen_requests import decode_generated
from steering_models.hooks import SteeringRuntime
from steering_models.sweep.counts import PassCounts


class GenKey(NamedTuple):
    """A ``generate_until`` request as the key its answer is kept under."""

    context: str
    kwargs: str  # the generation kwargs as sorted JSON


def gen_key(context: str, gen_kwargs: dict[str, Any]) -> GenKey:
    return GenKey(context, json.dumps(gen_kwargs, sort_keys=True, default=str))


class GenRequest(NamedTuple):
    """One request to generate under one config."""

    config: int
    key: GenKey
    context: str
    kwargs: dict[str, Any]


def generate(lm: HFLM, runtime: SteeringRuntime, todo: list[GenRequest], answers: dict[int, dict[GenKey, str]],
             batch_size: int, counts: PassCounts, show_progress: bool = True) -> None:
    """Generate every request of ``todo`` on ``lm`` (an HFLM) under ``runtime``, ``batch_size`` rows a call,
    into ``answers[config][key]`` (module docstring)."""
    if all(lm.engine_takes(req.kwargs) for req in todo):
        texts = lm.ragged_generate([(req.config, req.context, req.kwargs) for req in todo],
                                   disable_tqdm=not show_progress)
        for req, text in zip(todo, texts, strict=True):
            answers[req.config][req.key] = text
        counts.forward_rows += len(todo)
        return
    by_kwargs: dict[str, list[GenRequest]] = {}
    for req in todo:
        by_kwargs.setdefault(req.key.kwargs, []).append(req)
    eos = lm.tok_decode(lm.eot_token_id, skip_special_tokens=False)
    n_configs = len({req.config for req in todo})
    with tqdm(total=len(todo), disable=not show_progress, desc=f"Sweep generate_until ({n_configs} configs)") as pbar:
        for group in by_kwargs.values():
            lengths = {c: len(lm.tok_encode(c)) for c in {r.context for r in group}}
            group.sort(key=lambda r: (-lengths[r.context], r.context, r.config))
            for start in range(0, len(group), batch_size):
                chunk = group[start:start + batch_size]
                for req, text in zip(chunk, generate_batch(lm, runtime, chunk, eos), strict=True):
                    answers[req.config][req.key] = text
                counts.forward_rows += len(chunk)
                pbar.update(len(chunk))


def generate_batch(lm: HFLM, runtime: SteeringRuntime, chunk: list[GenRequest], eos: str) -> list[str]:
    """One ``generate`` call for requests that share their generation kwargs; the answers in order."""
    kwargs = normalize_gen_kwargs(dict(chunk[0].kwargs), lm.max_gen_toks)
    until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
    max_gen_toks = kwargs.pop("max_gen_toks")
    max_ctx_len = lm.max_length - max_gen_toks
    if max_ctx_len <= 0:
        raise ValueError(f"max_gen_toks={max_gen_toks} leaves no room for the prompt in the "
                         f"model's max_length={lm.max_length}. Lower max_gen_toks.")
    context_enc, attn = lm.tok_batch_encode([r.context for r in chunk], left_truncate_len=max_ctx_len,
                                            truncation=lm.truncation)
    context_enc, attn = context_enc.to(lm.device), attn.to(lm.device)
    max_length = kwargs.pop("max_length", context_enc.shape[1] + max_gen_toks)
    layouts = generation_layouts(context_enc, attn, [r.config for r in chunk])
    with runtime.call(context_enc, layouts, "generate"):
        cont = lm._model_generate(context=context_enc, attention_mask=attn, stop=until,
                                  max_length=max_length, **kwargs)
    return [decode_generated(lm, toks[context_enc.shape[1]:], until) for toks in cont.tolist()]
