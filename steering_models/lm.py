"""``steered-hf``: lm-eval's ``HFLM`` plus a steering spec, applied in every forward pass.

``--model_args pretrained=...,steer=steer.yaml,...``: ``pretrained`` is a hub id, a local folder, or
``default`` (the embedded model; also when omitted); ``steer`` is a YAML/JSON steering file
(steering_models.spec); everything else goes to HFLM unchanged. The spec is parsed and checked
against the model's config before any weights load.

Caches: HFLM's logits cache stays on: it shares one forward pass between requests whose model input
tokens (context + continuation[:-1]) are identical; requests that give the same input with different
prompt/continuation splits are refused when the spec's positions depend on that split, so a shared pass
always carries the same steering. lm-eval's ``--use_cache`` database keys on the request only; for a
steered model the entries go to a table named after the spec's fingerprint (``base_lm``), so a steered
result is never served from an unsteered (or differently steered) entry.
"""

from __future__ import annotations

from typing import Any

import torch
from lm_eval.api.registry import register_model

from steering_models.base_lm import SteeringHFLM
from steering_models.calls import RowLayout, generation_layouts
from steering_models.spec import SteerSpec, load_spec


@register_model("steered-hf")
class SteeredHFLM(SteeringHFLM):
    """A HuggingFace causal LM evaluated under a steering spec (see the module docstring)."""

    def __init__(self, pretrained: Any = "default", steer: str | dict | list | SteerSpec | None = None,
                 **kwargs: Any) -> None:
        spec = load_spec(steer)
        not_causal = None if spec.is_empty else (
            "model argument `steer` is set, but {pretrained} is a {backend} model: steered-hf steers "
            "decoder-only (causal) models. Use a causal LM.")
        super().__init__(pretrained, [spec], not_causal, **kwargs)
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
