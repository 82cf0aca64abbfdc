"""PyTorch hooks that apply a bound steering spec during one model call, and always remove themselves.

One *call* is either a scoring forward pass (lm-eval loglikelihood: prompt + continuation in one
pass) or a whole ``generate`` (prefill, then one forward per new token). ``SteeringRuntime.call``
is a context manager: it registers a pre-hook on the model (to know which absolute positions each
forward pass covers) and one hook per steered block, and removes them all on exit, also on error.

What the sweep needs of a runtime is public: ``bound_for(configs)`` (the bound ops of some configs),
``selectors(configs)``, ``prompt_mask(...)`` (the positions a selector marks in a call's input) and
``call(..., configs=...)`` (hook only those configs' interventions).

Every steered block's output is checked for inf/NaN at the positions it steered, and the last block's
output on the steered rows (a finite but huge edit overflows a later layer), on the device without a sync;
at the end of a call that made any, ``NonFiniteSteering`` (a ``SpecError``) names the spec, intervention and
layer, instead of lm-eval scoring NaN silently.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import torch

from steering_models.calls import CallContext, OpFn, RowLayout
from steering_models.errors import SpecError
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


class NonFiniteSteering(SpecError):
    """Steering made hidden states inf/NaN at run time; ``config`` is the index of the spec that did."""

    def __init__(self, message: str, config: int) -> None:
        super().__init__(message)
        self.config = config


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
        self.dtype = param.dtype
        self._origin: dict[int, tuple[int, int, Any]] = {}  # id(fn) -> (config, intervention number, intervention)
        for config, one in enumerate(specs):
            for number, iv in enumerate(one.interventions, 1):
                for layer in iv.layers:
                    fn = iv.op.bind(layer, param.device, param.dtype)
                    if fn is not None:
                        bound.append(BoundOp(layer, iv.hook, iv.positions, fn, config))
                        self._origin[id(fn)] = (config, number, iv)
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

        nonfinite: dict[tuple[int, int, str], torch.Tensor] = {}  # (id(fn), layer, hook) -> any inf/NaN made

        def apply(layer: int, hook: str, hidden: torch.Tensor) -> torch.Tensor:
            for b in bound:
                if b.layer == layer and b.hook == hook:
                    mask = mask_for((b.positions, b.config), hidden.device)
                    hidden = b.fn(hidden, mask, ctx)
                    bad = (~torch.isfinite(hidden) & mask.unsqueeze(-1)).any()  # stays on the device
                    key = (id(b.fn), layer, hook)
                    nonfinite[key] = bad if key not in nonfinite else nonfinite[key] | bad
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

        steered = sorted({b.config for b in bound})
        final_bad: dict[int, torch.Tensor] = {}  # config -> any inf/NaN on its rows at the last block

        def last_block(module: Any, args: tuple, output: Any) -> None:
            hidden = output[0] if isinstance(output, tuple) else output
            rows = (~torch.isfinite(hidden)).flatten(1).any(1)  # [B]
            for c in steered:
                bad = (rows & (row_config.to(rows.device) == c)).any() if per_row else rows.any()
                final_bad[c] = bad if c not in final_bad else final_bad[c] | bad

        handles = [self.model.register_forward_pre_hook(before_model, with_kwargs=True),
                   self.blocks[len(self.blocks) - 1].register_forward_hook(last_block)]
        try:
            for layer, hook in sorted({(b.layer, b.hook) for b in bound}):
                block = self.blocks[layer]
                if hook == "resid_post":
                    handles.append(block.register_forward_hook(post_hook(layer)))
                else:
                    handles.append(block.register_forward_pre_hook(pre_hook(layer), with_kwargs=True))
            yield ctx
            self._check_finite(nonfinite, final_bad)
        finally:
            for h in handles:
                h.remove()

    def _check_finite(self, nonfinite: dict[tuple[int, int, str], torch.Tensor],
                      final_bad: dict[int, torch.Tensor]) -> None:
        """One sentence for the first steered block (in spec order) that made an inf/NaN hidden value, or for
        the first spec whose rows reach the last block inf/NaN."""
        flags = list(nonfinite.values()) + list(final_bad.values())
        if not flags or not bool(torch.stack(flags).any()):  # the call's one host sync
            return
        order = sorted(nonfinite.items(), key=lambda kv: (self._origin[kv[0][0]][:2], kv[0][1]))
        for (fn_id, layer, hook), bad in order:
            if bool(bad):
                config, number, iv = self._origin[fn_id]
                raise self._error(config, number, iv, f"at layer {layer} ({hook})")
        for config, bad in sorted(final_bad.items()):
            if bool(bad):
                fn_id, layer, hook = min((k for k in nonfinite if self._origin[k[0]][0] == config),
                                         key=lambda k: (k[1], self._origin[k[0]][1]))
                _, number, iv = self._origin[fn_id]
                raise self._error(config, number, iv, f"by the last layer, downstream of its edit at layer {layer} "
                                                      f"({hook})")

    def _error(self, config: int, number: int, iv: Any, where: str) -> NonFiniteSteering:
        spec = self.specs[config]
        fields = iv.op.to_dict()
        amount = next((f"{k} {fields[k]!r}" for k in ("strength", "factor", "value") if k in fields), "")
        return NonFiniteSteering(
            f"steering spec {spec.name!r} made hidden states inf/NaN {where}, intervention {number} (op "
            f"{iv.op.name}{', ' + amount if amount else ''}) in {str(self.dtype).replace('torch.', '')}, so its scores "
            f"would be NaN; lower the amount or check the source in {spec.path or 'the steering spec'}.", config)
