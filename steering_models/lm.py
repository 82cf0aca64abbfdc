"""``steered-hf``: lm-eval's ``HFLM`` plus a steering spec, applied in every forward pass.

``--model_args pretrained=...,steer=steer.yaml,...``: ``pretrained`` is a hub id, a local folder, or
``default`` (the embedded model; also when omitted); ``steer`` is a YAML/JSON steering file
(steering_models.spec); everything else goes to HFLM unchanged. The spec is parsed and checked
against the model's config before any weights load.

Caches: HFLM's logits cache shares one forward pass between requests whose context+continuation[:-1]
coincide; when the spec's positions depend on where the prompt ends, that sharing could mix
steerings, so it is turned off (with a log line). lm-eval's ``--use_cache`` database keys on the
request only; for a steered model the entries go to a table named after the spec's fingerprint, so a
steered result is never served from an unsteered (or differently steered) entry.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

from steering_models.calls import RowLayout, generation_layouts
from steering_models.default_model import resolve_pretrained
from steering_models.errors import SpecError
from steering_models.hooks import SteeringRuntime
from steering_models.model_helpers import model_config
from steering_models.spec import SteerSpec, load_spec

log = logging.getLogger(__name__)


@register_model("steered-hf")
class SteeredHFLM(HFLM):
    """A HuggingFace causal LM evaluated under a steering spec (see the module docstring)."""

    def __init__(self, pretrained: Any = "default", steer: str | dict | list | SteerSpec | None = None,
                 **kwargs: Any) -> None:
        spec = load_spec(steer)
        pretrained = resolve_pretrained(pretrained)
        if not spec.is_empty:
            spec.validate(model_config(pretrained, kwargs), kwargs.get("dtype"))
            # HFLM's logits cache stays on: it shares one forward pass between requests whose model
            # input tokens (context + continuation[:-1]) are identical. Requests that give the same
            # input with different prompt/continuation splits are refused in _score_layout whether or
            # not the cache is on, so a shared pass always carries the same steering.
        super().__init__(pretrained=pretrained, **kwargs)
        if not spec.is_empty and self.backend != "causal":
            raise SpecError(f"model argument `steer` is set, but {pretrained} is a {self.backend} model: "
                            "steered-hf steers decoder-only (causal) models. Use a causal LM.")
        self.steer_spec = spec
        self.steering = SteeringRuntime(self.model, spec, self.tokenizer)
        self._score_table: dict[int, dict[tuple[int, ...], int]] | None = None

    # ------------------------------------------------------------------ scoring (loglikelihood)
    def _loglikelihood_tokens(self, requests: list, disable_tqdm: bool = False,
                              override_bs: int | None = None) -> list:
        if not self.steering.active:
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
        # HFLM feeds (context + continuation)[-(max_length+1):][:-1]; remember where each such input's
        # prompt ends, to find it again from the padded batch in _model_call.
        table: dict[int, dict[tuple[int, ...], int]] = {}
        for _, context_enc, continuation_enc in requests:
            inp = tuple((context_enc + continuation_enc)[-(self.max_length + 1):][:-1])
            prompt_len = max(0, len(inp) + 1 - len(continuation_enc))
            by_len = table.setdefault(len(inp), {})
            if by_len.get(inp, prompt_len) != prompt_len and self.steer_spec.depends_on_prompt_split:
                by_len[inp] = -1  # two requests split the same tokens differently
            else:
                by_len[inp] = prompt_len
        self._score_table = table
        try:
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
        finally:
            self._score_table = None

    def _score_layout(self, row: list[int]) -> RowLayout:
        table = self._score_table or {}
        nonzero = [i for i, t in enumerate(row) if t != 0]
        shortest = (nonzero[-1] + 1) if nonzero else 0  # right padding is token 0 (HFLM's pad_and_concat)
        for length in sorted(n for n in table if shortest <= n <= len(row)):
            prompt_len = table[length].get(tuple(row[:length]))
            if prompt_len == -1:
                raise RuntimeError(
                    "steered-hf: two loglikelihood requests give the same input tokens with different "
                    "context/continuation splits, so prompt-relative positions are ambiguous. Use "
                    "`positions: all` or make the contexts distinct.")
            if prompt_len is not None:
                return RowLayout(0, prompt_len, length)
        return RowLayout(0, len(row), len(row))  # not a request (e.g. batch-size probing): all prompt

    def _model_call(self, inps: torch.Tensor, attn_mask: torch.Tensor | None = None,
                    labels: torch.Tensor | None = None) -> torch.Tensor:
        if not self.steering.active:
            return super()._model_call(inps, attn_mask=attn_mask, labels=labels)
        layouts = [self._score_layout(row) for row in inps.tolist()]
        with self.steering.call(inps, layouts, "score"):
            return super()._model_call(inps, attn_mask=attn_mask, labels=labels)

    # ------------------------------------------------------------------ generation
    def _model_generate(self, context: torch.Tensor, max_length: int, stop: list[str],
                        **generation_kwargs: Any) -> torch.Tensor:
        if not self.steering.active:
            return super()._model_generate(context, max_length, stop, **generation_kwargs)
        layouts = generation_layouts(context, generation_kwargs.get("attention_mask"))
        with self.steering.call(context, layouts, "generate"):
            return super()._model_generate(context, max_length, stop, **generation_kwargs)

    # ------------------------------------------------------------------ results and caches
    def steering_info(self) -> dict[str, Any]:
        spec = self.steer_spec
        return {"name": spec.name, "hash": spec.fingerprint(), "meta": dict(spec.meta),
                "path": spec.path, "spec": spec.to_dict()}

    def get_model_info(self) -> dict:
        info = super().get_model_info()
        info["steering"] = self.steering_info()
        return info

    def set_cache_hook(self, cache_hook: Any) -> None:
        dbdict = getattr(cache_hook, "dbdict", None)
        spec = getattr(self, "steer_spec", None)
        if dbdict is not None and spec is not None and not spec.is_empty:
            table = f"steered_{spec.fingerprint()[:32]}"
            try:  # sqlitedict builds each query from .tablename: switch the shared db to our table
                dbdict.conn.execute(f'CREATE TABLE IF NOT EXISTS "{table}" (key TEXT PRIMARY KEY, value BLOB)')
                dbdict.conn.commit()
                dbdict.tablename = table
            except AttributeError as e:
                raise SpecError("lm-eval's --use_cache database could not be keyed by the steering spec "
                                f"({e}). Run without --use_cache.") from e
            log.info("steered-hf: --use_cache entries go to table %s of %s", table, dbdict.filename)
        super().set_cache_hook(cache_hook)
