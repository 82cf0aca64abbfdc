"""PyTorch hooks that apply a bound steering spec during one model call, and always remove themselves.

One *call* is either a scoring forward pass (lm-eval loglikelihood: prompt + continuation in one
pass) or a whole ``generate`` (prefill, then one forward per new token). ``SteeringRuntime.call``
is a context manager: it registers a pre-hook on the model (to know which absolute positions each
forward pass covers) and one hook per steered block, and removes them all on exit, also on error.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from steering_models.calls import CallContext, OpFn, RowLayout
from steering_models.model_helpers import find_blocks
from steering_models.positions import Positions
from steering_models.spec import SteerSpec


def _prompt_mask(positions: Positions, ctx: CallContext, tokenizer: Any,
                 rows: torch.Tensor | None = None) -> torch.Tensor:
    """[B, T] mask over the call's input for one selector (only on ``rows`` when given)."""
    batch, width = ctx.input_ids.shape
    mask = torch.zeros(batch, width, dtype=torch.bool)
    for row, (lay, prompt) in enumerate(zip(ctx.layouts, ctx.prompt_ids, strict=True)):
        if rows is not None and not bool(rows[row]):
            continue
        idx = positions.prompt_indices(prompt, tokenizer)
        if idx:
            mask[row, torch.tensor(idx) + lay.offset] = True
        if positions.steers_generated and lay.length > lay.prompt_len:
            mask[row, lay.offset + lay.prompt_len: lay.offset + lay.length] = True
    return mask


class SteeringRuntime:
    """Specs bound to a loaded model: the functions to run at each block, in spec order.

    ``spec`` is one spec, or a sequence of specs for per-row steering (sweeps): spec ``k`` steers
    only the rows whose ``RowLayout.config == k``, so one forward pass serves several configs.
    """

    def __init__(self, model: torch.nn.Module, spec: SteerSpec | Sequence[SteerSpec], tokenizer: Any) -> None:
        specs = (spec,) if isinstance(spec, SteerSpec) else tuple(spec)
        if not specs:
            specs = (SteerSpec(),)
        self.model, self.specs, self.tokenizer = model, specs, tokenizer
        self.spec = specs[0]
        self.blocks = find_blocks(model) if any(not s.is_empty for s in specs) else None
        param = next(model.parameters())
        # (layer, hook, positions, fn, config index)
        self.bound: list[tuple[int, str, Positions, OpFn, int]] = []
        for config, one in enumerate(specs):
            for iv in one.interventions:
                for layer in iv.layers:
                    fn = iv.op.bind(layer, param.device, param.dtype)
                    if fn is not None:
                        self.bound.append((layer, iv.hook, iv.positions, fn, config))

    @property
    def active(self) -> bool:
        return bool(self.bound)

    @contextmanager
    def call(self, input_ids: torch.Tensor, layouts: list[RowLayout], phase: str,
             start: int = 0) -> Iterator[CallContext | None]:
        """Steer every forward pass inside this block; ``phase`` is "score" or "generate".

        ``input_ids`` are the rows' whole inputs; the first forward pass covers columns from ``start``
        on (``start > 0``: the columns before it were run earlier, e.g. a shared prefix in a KV cache).
        """
        if not self.bound:
            yield None
            return
        assert self.blocks is not None
        ctx = CallContext("score" if phase == "score" else "prefill", input_ids.cpu(), layouts)
        row_config = torch.tensor([lay.config for lay in layouts])
        per_row = len(self.specs) > 1
        # one mask per (selector, config), evaluated only on that config's rows (a `match` text need not
        # occur in the prompts of other configs' rows); each row belongs to one config, so every row's
        # selector is still evaluated once
        masks = {(pos, c): _prompt_mask(pos, ctx, self.tokenizer, (row_config == c) if per_row else None)
                 for pos, c in {(b[2], b[4]) for b in self.bound}}
        step_masks: dict[tuple[Positions, int], torch.Tensor] = {}
        n_input = input_ids.shape[1]
        forwards = 0

        def before_model(module: Any, args: tuple, kwargs: dict) -> None:
            nonlocal forwards
            ids = kwargs.get("input_ids", args[0] if args else None)
            if ids is None:
                ids = kwargs["inputs_embeds"]
            ctx.start = start if forwards == 0 else ctx.start + ctx.width
            ctx.width = ids.shape[1]
            if forwards > 0:
                ctx.phase = "decode"
            forwards += 1
            step_masks.clear()

        def mask_for(key: tuple[Positions, int], device: torch.device) -> torch.Tensor:
            if key not in step_masks:
                pos, config = key
                full = masks[key]
                lo, hi = ctx.start, ctx.start + ctx.width
                if hi <= n_input:
                    m = full[:, lo:hi]
                else:
                    tail = torch.full((full.shape[0], hi - max(lo, n_input)), pos.steers_generated)
                    if per_row:
                        tail &= (row_config == config).unsqueeze(1)
                    m = torch.cat([full[:, lo:n_input], tail], dim=1) if lo < n_input else tail
                step_masks[key] = m.to(device)
            return step_masks[key]

        def apply(layer: int, hook: str, hidden: torch.Tensor) -> torch.Tensor:
            for b_layer, b_hook, pos, fn, config in self.bound:
                if b_layer == layer and b_hook == hook:
                    hidden = fn(hidden, mask_for((pos, config), hidden.device), ctx)
            return hidden

        def post_hook(layer: int):  # type: ignore[no-untyped-def]
            def hook(module: Any, args: tuple, output: Any) -> Any:
                if isinstance(output, tuple):
                    return (apply(layer, "resid_post", output[0]), *output[1:])
                return apply(layer, "resid_post", output)
            return hook

        def pre_hook(layer: int):  # type: ignore[no-untyped-def]
            def hook(module: Any, args: tuple, kwargs: dict) -> Any:
                if args:
                    return (apply(layer, "resid_pre", args[0]), *args[1:]), kwargs
                kwargs = dict(kwargs)
                kwargs["hidden_states"] = apply(layer, "resid_pre", kwargs["hidden_states"])
                return args, kwargs
            return hook

        handles = [self.model.register_forward_pre_hook(before_model, with_kwargs=True)]
        try:
            for layer, hook in sorted({(b[0], b[1]) for b in self.bound}):
                block = self.blocks[layer]
                if hook == "resid_post":
                    handles.append(block.register_forward_hook(post_hook(layer)))
                else:
                    handles.append(block.register_forward_pre_hook(pre_hook(layer), with_kwargs=True))
            yield ctx
        finally:
            for h in handles:
                h.remove()
