"""PyTorch hooks that apply a bound steering spec during one model call, and always remove themselves.

One *call* is either a scoring forward pass (lm-eval loglikelihood: prompt + continuation in one
pass) or a whole ``generate`` (prefill, then one forward per new token). ``SteeringRuntime.call``
is a context manager: it registers a pre-hook on the model (to know which absolute positions each
forward pass covers) and one hook per steered block, and removes them all on exit, also on error.

What the sweep needs of a runtime is public: ``bound_for(configs)`` (the bound ops of some configs),
``selectors(configs)``, ``prompt_mask(...)`` (the positions a selector marks in a call's input) and
``call(..., configs=...)`` (hook only those configs' interventions).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

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


class BoundOp(NamedTuple):
    """One intervention of one spec at one layer, bound to the loaded model."""

    layer: int
    hook: str  # "resid_post" | "resid_pre"
    positions: Positions
    fn: OpFn
    config: int  # the spec's index in the runtime (the rows whose RowLayout.config is this)


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
        bound = []
        for config, one in enumerate(specs):
            for iv in one.interventions:
                for layer in iv.layers:
                    fn = iv.op.bind(layer, param.device, param.dtype)
                    if fn is not None:
                        bound.append(BoundOp(layer, iv.hook, iv.positions, fn, config))
        self.bound: tuple[BoundOp, ...] = tuple(bound)

    def bound_for(self, configs: Collection[int] | None = None) -> list[BoundOp]:
        """The bound ops of ``configs`` (None: of every spec), in spec order."""
        return [b for b in self.bound if configs is None or b.config in configs]

    def selectors(self, configs: Collection[int] | None = None) -> set[Positions]:
        """The position selectors the bound ops of ``configs`` use."""
        return {b.positions for b in self.bound_for(configs)}

    def prompt_mask(self, positions: Positions, ctx: CallContext, rows: torch.Tensor | None = None) -> torch.Tensor:
        """[B, T] mask of the positions ``positions`` marks in ``ctx``'s input (only on ``rows`` when given)."""
        return _prompt_mask(positions, ctx, self.tokenizer, rows)

    @property
    def active(self) -> bool:
        return bool(self.bound)

    @contextmanager
    def call(self, input_ids: torch.Tensor, layouts: list[RowLayout], phase: str,
             start: int = 0, configs: Collection[int] | None = None) -> Iterator[CallContext | None]:
        """Steer every forward pass inside this block; ``phase`` is "score" or "generate".

        ``input_ids`` are the rows' whole inputs; the first forward pass covers columns from ``start``
        on (``start > 0``: the columns before it were run earlier, e.g. a shared prefix in a KV cache).
        ``configs``: hook only these specs' interventions (a pass that carries no other config's rows).
        """
        bound = self.bound_for(configs)
        if not bound:
            yield None
            return
        assert self.blocks is not None
        ctx = CallContext("score" if phase == "score" else "prefill", input_ids.cpu(), layouts)
        row_config = torch.tensor([lay.config for lay in layouts])
        per_row = len(self.specs) > 1
        # one mask per (selector, config), evaluated only on that config's rows (a `match` text need not
        # occur in the prompts of other configs' rows); each row belongs to one config, so every row's
        # selector is still evaluated once
        masks = {(pos, c): self.prompt_mask(pos, ctx, (row_config == c) if per_row else None)
                 for pos, c in {(b.positions, b.config) for b in bound}}
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
            for b in bound:
                if b.layer == layer and b.hook == hook:
                    hidden = b.fn(hidden, mask_for((b.positions, b.config), hidden.device), ctx)
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
            for layer, hook in sorted({(b.layer, b.hook) for b in bound}):
                block = self.blocks[layer]
                if hook == "resid_post":
                    handles.append(block.register_forward_hook(post_hook(layer)))
                else:
                    handles.append(block.register_forward_pre_hook(pre_hook(layer), with_kwargs=True))
            yield ctx
        finally:
            for h in handles:
                h.remove()
