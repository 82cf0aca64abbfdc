"""Shared trunk: run the blocks below the lowest steered block once per input, branch the configs above.

Configs that steer from block L up (``resid_pre`` of L, or ``resid_post`` of L-1) see the same hidden
states as the unsteered model in every block below the branch point, for the same input tokens. So a
forward pass can carry each distinct input once (``n`` rows) up to the branch point, and there repeat the
batch ``k`` times, one copy per config, *config-major*: expanded row ``c * n + j`` is input ``j`` under
config ``c``. The blocks from the branch point on (and the head) run on ``k * n`` rows, the steering
hooks steer each copy as its config says, and the model's per-layer arguments that carry a batch dimension
(attention mask, position ids/embeddings) are repeated alike before every branched block.

A KV cache of such a pass holds ``n`` rows in the trunk's layers and ``k * n`` in the branched layers
(each layer of a transformers ``DynamicCache`` is its own tensor); ``cache.batch_repeat_interleave(m)``
turns a prefix's cache of one input into the cache of ``m`` rows continuing it, config-major again.

Exactness: the trunk computes, per row, what the whole model computes below the branch point (the same
kernels on the same rows; only the batch composition differs, which changes float summation order at
most), so scores equal the per-config scores within float tolerance (tests/test_sweep_trunk.py).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import torch

from steering_models.hooks import BoundOp


class BranchPoint(NamedTuple):
    block: int
    after: int  # 0: before the block (its resid_pre) | 1: after it (its resid_post)


def branch_point(bound: Sequence[BoundOp], configs: Collection[int], n_layers: int) -> BranchPoint:
    """Where the configs' hidden states can first differ: before the lowest ``resid_pre`` block, or after
    the lowest ``resid_post`` block, of any intervention of ``configs`` (``bound``: the runtime's bound
    ops). Unsteered configs only: before the last block."""
    points = [BranchPoint(b.layer, 0 if b.hook == "resid_pre" else 1) for b in bound if b.config in configs]
    return min(points) if points else BranchPoint(n_layers - 1, 0)


def trunk_blocks(point: BranchPoint) -> int:
    """Blocks run once per input (below the branch point)."""
    return point.block + point.after


def _repeat(value: Any, n: int, k: int) -> Any:
    """``value`` with its batch dimension (size n, on tensors of 2+ dims) repeated k times, config-major."""
    if isinstance(value, torch.Tensor):
        if value.dim() >= 2 and value.shape[0] == n:
            return value.repeat(k, *([1] * (value.dim() - 1)))
        return value
    if isinstance(value, tuple):
        return tuple(_repeat(v, n, k) for v in value)
    if isinstance(value, list):
        return [_repeat(v, n, k) for v in value]
    return value


@contextmanager
def branched(blocks: torch.nn.ModuleList, point: BranchPoint, n: int, k: int) -> Iterator[None]:
    """Inside this block, every forward pass of the model branches its ``n`` rows into ``k`` copies at
    ``point``. Enter it *before* the steering runtime's call, so that its hooks on the branch block run
    before the steering hooks there (PyTorch runs hooks in registration order)."""
    if k == 1:
        yield
        return
    layer, after = point.block, point.after
    handles = []

    def expand_kwargs(module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        return args, {key: (val if key == "hidden_states" else _repeat(val, n, k)) for key, val in kwargs.items()}

    def expand_input(module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        if args:
            args = (_repeat(args[0], n, k), *(_repeat(a, n, k) for a in args[1:]))
        else:
            kwargs = dict(kwargs, hidden_states=_repeat(kwargs["hidden_states"], n, k))
        return expand_kwargs(module, args, kwargs)

    def expand_output(module: Any, args: tuple, output: Any) -> Any:
        if isinstance(output, tuple):
            return (_repeat(output[0], n, k), *output[1:])
        return _repeat(output, n, k)

    try:
        if after:
            handles.append(blocks[layer].register_forward_hook(expand_output))
        else:
            handles.append(blocks[layer].register_forward_pre_hook(expand_input, with_kwargs=True))
        for i in range(layer + 1, len(blocks)):
            handles.append(blocks[i].register_forward_pre_hook(expand_kwargs, with_kwargs=True))
        yield
    finally:
        for h in handles:
            h.remove()
