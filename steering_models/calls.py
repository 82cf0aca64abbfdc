"""What a steering op sees during one model call: the rows' layouts, the call's context, the op's function type.

One *call* is either a scoring forward pass (lm-eval loglikelihood: prompt + continuation in one pass) or a
whole ``generate`` (prefill, then one forward per new token). ``hooks.SteeringRuntime.call`` builds a
``CallContext`` per call; every op's bound function (``OpFn``) receives it. This module imports nothing
of ``steering_models``, so ops, hooks and the sweep all import it one way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class RowLayout:
    """Where a row's real tokens sit in the padded input of a call."""

    offset: int  # index of the first real token (left padding shifts it)
    prompt_len: int  # real prompt (context) tokens
    length: int  # real tokens in the input: prompt + continuation tokens fed back (scoring)
    config: int = 0  # which of the runtime's specs steers this row (sweeps: several per batch)


@dataclass
class CallContext:
    """What a steering op may look at while its hook runs (see ops.SteeringOp.bind)."""

    phase: str  # "score" | "prefill" | "decode"
    input_ids: torch.Tensor  # the padded input of the call ([B, T])
    layouts: list[RowLayout]
    start: int = 0  # absolute position of the current forward pass's first column
    width: int = 0  # columns in the current forward pass
    state: dict[str, Any] = field(default_factory=dict)  # per call; ops keep per-row decisions here

    @property
    def prompt_ids(self) -> list[list[int]]:
        return [self.input_ids[i, lay.offset: lay.offset + lay.prompt_len].tolist()
                for i, lay in enumerate(self.layouts)]

    @property
    def attention_mask(self) -> torch.Tensor:
        """Real tokens among the current forward pass's columns ([B, width])."""
        cols = torch.arange(self.start, self.start + self.width)
        offsets = torch.tensor([lay.offset for lay in self.layouts]).unsqueeze(1)
        ends = torch.tensor([lay.offset + lay.length for lay in self.layouts]).unsqueeze(1)
        in_input = (cols >= offsets) & (cols < ends)
        return in_input | (cols >= self.input_ids.shape[1])


# a bound op: (hidden [B, T, D], mask [B, T] of the positions to steer, the call) -> hidden
OpFn = Callable[[torch.Tensor, torch.Tensor, CallContext], torch.Tensor]


def generation_layouts(context: torch.Tensor, attention_mask: torch.Tensor | None,
                       configs: Sequence[int] | None = None) -> list[RowLayout]:
    """Layouts of a left-padded ``generate`` input: each row's real tokens are all prompt.

    ``configs`` gives each row's spec index (sweeps); default 0 for every row."""
    layouts = []
    for i in range(context.shape[0]):
        real = (attention_mask[i] != 0).nonzero().flatten() if attention_mask is not None \
            else torch.arange(context.shape[1])
        offset = int(real[0]) if len(real) else context.shape[1]
        layouts.append(RowLayout(offset, len(real), len(real), configs[i] if configs is not None else 0))
    return layouts
