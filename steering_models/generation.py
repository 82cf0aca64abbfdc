"""Greedy generation in ragged batches: rows leave the batch when they finish, waiting rows take their place.

``RaggedGenerator(model, tokenizer, steering).generate(rows)`` continues every ``GenRow`` (prompt tokens,
``max_new_tokens``, stop strings, steering config) greedily and returns each row's new tokens. HF
``generate`` decodes a batch until its longest row ends; here a row that emits an EOS token, a stop string
or its last allowed token leaves the batch at once, and when ``refill`` slots are free the next waiting rows
are prefilled and join the running batch.

Batch layout: the running batch is one transformers ``DynamicCache`` (built without the model's config, so
every layer is a plain full-attention ``DynamicLayer`` whose tensors can be cut and joined), ``B`` rows by
``C`` columns, with a ``[B, C]`` mask of the columns that hold each row's tokens and each row's next
position id. Rows need not occupy the same columns: position ids are passed explicitly (the real-token
index, as HF ``generate`` derives them from a left-padded mask) and attention skips masked columns.
Entering rows are prefilled in a pass of their own (right-padded, so no real token attends to padding),
and their cache joins the running one right-aligned (the narrower side padded on the left); when rows
leave, the leading columns no remaining row uses are cut off, so the cache stays as wide as its widest
live row however long the run.

Steering: each prefill pass and each decoding step is one ``SteeringRuntime.call``. Prefill passes carry
the entering rows' ``RowLayout`` (with each row's config), so ``all``/``prompt``/``last``/``match`` masks are
built as in any call; decoding steps are phase "decode", where a new token is steered iff its config's
selector covers generated tokens. Per-prompt decisions (ConVA's gate, kept in ``CallContext.state`` as one
entry per row) are kept per row and follow the row through every change of the batch. Only the
interventions of the configs present in a pass are hooked.

Shared prefix (``share_prefix``): entering rows of one config whose ops are all position-local
(``SteeringOp.position_local``: add, scale_feature, clamp_feature) and whose prompts share at least
``min_shared_prefix`` tokens (one role's questionnaire preamble) run that prefix once (batch of one),
repeat its KV cache for every row, and run only their remaining tokens against it. The prefix ends before
each row's last prompt token and before the first column where the rows' steering masks differ, so every
position is steered exactly as in a whole-row pass. Prefix passes are kept (per config and tokens, the
``max_prefixes`` most recent): a row admitted later, alone or in a small group (ragged refills admit a few rows
at a time), takes its role's prefix KV from there when its tokens and steering masks match that far.

Shared trunk (``share_trunk``, the sweep's ``share_trunk``): with several position-local configs, rows are
admitted prompt-major (each prompt under every config in turn) and a prefix is run for *all* of them in one
pass through ``steering_models.trunk``: the blocks below the lowest steered block of those configs run it
once, the blocks above on one copy per config (each steered as its config says). Each config's prefix KV
(the trunk layers' rows shared, the branched layers' own) is kept as above, ending before the first column
where that config's steering marks the group's prompts differently, and its rows take it from there. A
config whose kept prefix already covers half of a group's common prefix (its role's preamble, before the
item's own text) is served by that one (our choice: the item's remaining tokens then run in the rows' own
prefill, as without the trunk).

Exactness: the tokens equal HF greedy ``generate``'s (tests/test_generation.py: tiny Llama/Gemma, float32,
every op and selector, ragged and prefix on/off); batch composition and padding change float summation
order only. Greedy only: sampling, beams and logits processors stay with HF ``generate``
(``steering_models.gen_requests`` falls back to it). A sliding-window model (Gemma-2) is run with full
caches and its sliding mask over columns, as HF ``generate`` does for a left-padded batch.
"""

from __future__ import annotations

import inspect
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from steering_models.calls import CallContext, RowLayout
from steering_models.hooks import SteeringRuntime
from steering_models.model_helpers import find_blocks
from steering_models.trunk import branch_point, branched, trunk_blocks


@dataclass(frozen=True)
class GenRow:
    """One prompt to continue greedily."""

    prompt: tuple[int, ...]  # real prompt tokens (no padding)
    max_new_tokens: int
    config: int = 0  # which of the steering runtime's specs steers this row
    stop: tuple[str, ...] = ()  # the row ends once its new text contains one of these


@dataclass
class GenStats:
    """What a generator ran (for benchmarks and tests)."""

    prompt_tokens: int = 0  # prompt tokens of the rows generated for
    prefill_tokens: int = 0  # prompt columns run (a shared prefix counts once; padding not counted)
    shared_prefixes: int = 0  # prefix passes whose KV cache served several rows
    prefix_reuses: int = 0  # admitted groups that took a prefix's KV cache kept from an earlier admission
    trunk_passes: int = 0  # prefix passes that ran several configs' prefixes through one shared trunk
    trunk_prefixes: int = 0  # configs' prefixes those passes computed
    trunk_saved: int = 0  # token columns x blocks the shared trunk did not run (vs one prefix pass per config)
    decode_steps: int = 0  # forward passes of one new token per row
    decode_rows: int = 0  # rows summed over decoding steps
    new_tokens: int = 0  # tokens returned
    joins: int = 0  # times entering rows joined a running batch
    prefill_s: float = 0.0  # wall time in prefill passes (joins included)
    decode_s: float = 0.0  # wall time in decoding steps


@dataclass
class _Live:
    """A row in the running batch."""

    index: int
    row: GenRow
    tokens: list[int] = field(default_factory=list)  # new tokens; the last is not yet fed to the model


@dataclass
class _Prefix:
    """A prefix pass kept for later admissions: its tokens, KV cache (batch of one) and steering masks."""

    tokens: tuple[int, ...]
    keys: list[torch.Tensor]  # per layer [1, heads, len(tokens), head_dim]
    values: list[torch.Tensor]
    masks: dict[Any, torch.Tensor]  # selector -> [len(tokens)] bool, as the config's steering marked them


class _Batch:
    """Running rows: their KV cache, which cache columns are theirs, next position ids, per-row steering state."""

    def __init__(self, live: list[_Live], cache: DynamicCache, mask: torch.Tensor, pos: torch.Tensor,
                 state: dict[str, Any]) -> None:
        self.live, self.cache, self.mask, self.pos, self.state = live, cache, mask, pos, state

    def __len__(self) -> int:
        return len(self.live)

    def keep(self, idx: list[int]) -> None:
        """Keep only rows ``idx``; cut the leading columns no kept row uses."""
        sel = torch.tensor(idx, dtype=torch.long)
        self.live = [self.live[i] for i in idx]
        self.mask, self.pos = self.mask[sel], self.pos[sel]
        self.state = {k: (None if v is None else v[sel]) for k, v in self.state.items()}
        used = self.mask.any(dim=0)
        lead = int(used.float().argmax()) if bool(used.any()) else self.mask.shape[1]
        self.mask = self.mask[:, lead:]
        dev_sel = sel.to(self.cache.layers[0].keys.device)
        for layer in self.cache.layers:
            layer.keys = layer.keys[dev_sel, :, lead:]
            layer.values = layer.values[dev_sel, :, lead:]

    def join(self, other: _Batch) -> None:
        """Append ``other``'s rows, right-aligning both caches (the narrower padded on the left)."""
        width = max(self.mask.shape[1], other.mask.shape[1])

        def left_pad(t: torch.Tensor, cols: int, dim: int) -> torch.Tensor:
            if cols == width:
                return t
            pad = [0, 0] * (t.dim() - 1 - dim) + [width - cols, 0]
            return F.pad(t, pad)

        for mine, theirs in zip(self.cache.layers, other.cache.layers, strict=True):
            ca, cb = mine.keys.shape[2], theirs.keys.shape[2]
            mine.keys = torch.cat([left_pad(mine.keys, ca, 2), left_pad(theirs.keys, cb, 2)])
            mine.values = torch.cat([left_pad(mine.values, ca, 2), left_pad(theirs.values, cb, 2)])
        self.mask = torch.cat([left_pad(self.mask, self.mask.shape[1], 1),
                               left_pad(other.mask, other.mask.shape[1], 1)])
        self.pos = torch.cat([self.pos, other.pos])
        state: dict[str, Any] = {}
        for key in {*self.state, *other.state}:
            a, b = self.state.get(key), other.state.get(key)
            if a is None and b is None:
                state[key] = None
                continue
            ref = a if a is not None else b
            # a row whose pass did not hook this op belongs to another config: the op never reads its entry
            a = a if a is not None else torch.zeros((len(self), *ref.shape[1:]), dtype=ref.dtype)
            b = b if b is not None else torch.zeros((len(other), *ref.shape[1:]), dtype=ref.dtype)
            state[key] = torch.cat([a, b])
        self.state = state
        self.live = self.live + other.live


class RaggedGenerator:
    """Greedy decoding of many prompts, ``batch_size`` rows at a time, refilled as rows finish (module docstring).

    ``ragged=False`` admits new rows only when the whole batch has finished (static batches, as HF
    ``generate`` batches; finished rows still stop costing compute). ``refill``: free slots that trigger
    admitting waiting rows (default a quarter of the batch: each join copies the running cache once).
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Any, steering: SteeringRuntime | None = None, *,
                 batch_size: int = 32, eos_token_ids: Sequence[int] = (), pad_token_id: int = 0,
                 ragged: bool = True, refill: int | None = None, share_prefix: bool = True,
                 min_shared_prefix: int = 16, share_trunk: bool = False,
                 autocast: Callable[[], Any] = nullcontext) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be at least 1")
        self.model, self.tokenizer, self.steering = model, tokenizer, steering
        self.batch_size, self.ragged = batch_size, ragged
        self.refill = max(1, refill if refill is not None else batch_size // 4)
        self.eos = frozenset(int(t) for t in eos_token_ids)
        self.pad = int(pad_token_id)
        self.share_prefix, self.min_shared_prefix = share_prefix, max(1, min_shared_prefix)
        self.share_trunk = share_trunk and share_prefix and steering is not None and bool(steering.bound)
        self._blocks = find_blocks(model) if self.share_trunk else None
        self._trunk_configs: tuple[int, ...] = ()  # position-local configs of the current generate() call
        self.autocast = autocast
        params = inspect.signature(model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        self._takes_keep = "logits_to_keep" in params
        self.device = next(model.parameters()).device
        self.stats = GenStats()
        self._lookback: dict[tuple[str, ...], int] = {}
        # prefix passes by (config, tokens), most recent last: a row admitted later (ragged refills admit a few
        # rows at a time) reuses its role's prefix instead of running it again
        self._prefixes: OrderedDict[tuple[int, tuple[int, ...]], _Prefix] = OrderedDict()
        self.max_prefixes = 32

    # ------------------------------------------------------------------ public
    def generate(self, rows: Sequence[GenRow], on_done: Callable[[int, list[int]], None] | None = None
                 ) -> list[list[int]]:
        """Each row's new tokens (the EOS token included when one ended it; stop strings are not cut)."""
        out: list[list[int] | None] = [None] * len(rows)
        for i, row in enumerate(rows):
            if not row.prompt:
                raise ValueError(f"generation row {i} has an empty prompt: every prompt needs at least one "
                                 "token. Give the request a non-empty context.")
            if row.max_new_tokens <= 0:
                out[i] = []
        todo = [i for i in range(len(rows)) if out[i] is None]
        self._trunk_configs = ()
        if self.share_trunk:
            local = sorted({rows[i].config for i in todo if self._position_local(rows[i].config)})
            if len(local) > 1:
                self._trunk_configs = tuple(local)
                # every config's prefix of a role stays kept until that config's rows of the role arrive
                self.max_prefixes = max(self.max_prefixes, 2 * len(local))
        if self._trunk_configs:  # prompt-major: one prompt under every config, then the next
            order = sorted(todo, key=lambda i: (rows[i].prompt, rows[i].config))
        else:
            order = sorted(todo, key=lambda i: (rows[i].config, rows[i].prompt))
        waiting = deque(order)
        batch: _Batch | None = None

        def finish(b: _Batch) -> _Batch | None:
            keep = []
            for j, lv in enumerate(b.live):
                if self._finished(lv):
                    out[lv.index] = lv.tokens
                    self.stats.new_tokens += len(lv.tokens)
                    if on_done is not None:
                        on_done(lv.index, lv.tokens)
                else:
                    keep.append(j)
            if not keep:
                return None
            if len(keep) < len(b):
                b.keep(keep)
            return b

        while waiting or batch is not None:
            free = self.batch_size - (len(batch) if batch is not None else 0)
            if waiting and (batch is None or (self.ragged and free >= min(self.refill, len(waiting)))):
                take = [waiting.popleft() for _ in range(min(free, len(waiting)))]
                t0 = time.perf_counter()
                entering = self._prefill([(i, rows[i]) for i in take])
                entering = finish(entering)
                if entering is not None:
                    if batch is None:
                        batch = entering
                    else:
                        batch.join(entering)
                        self.stats.joins += 1
                self.stats.prefill_s += time.perf_counter() - t0
                continue
            assert batch is not None
            t0 = time.perf_counter()
            self._step(batch)
            batch = finish(batch)
            self.stats.decode_s += time.perf_counter() - t0
        return [o if o is not None else [] for o in out]

    # ------------------------------------------------------------------ one forward pass
    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, pos: torch.Tensor, cache: DynamicCache,
                 keep: int | list[int]) -> torch.Tensor:
        kwargs: dict[str, Any] = {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device).long(),
                                  "position_ids": pos.to(self.device), self._cache_arg: cache, "use_cache": True}
        if self._takes_keep:
            kwargs["logits_to_keep"] = keep if isinstance(keep, int) else torch.tensor(keep, device=self.device)
        logits = self.model(**kwargs).logits
        if not self._takes_keep:
            logits = logits[:, -keep:] if isinstance(keep, int) else logits[:, keep]
        return logits

    @contextmanager
    def _hooked(self, configs: set[int], input_ids: torch.Tensor, layouts: list[RowLayout], phase: str,
                start: int = 0, state: dict[str, Any] | None = None) -> Iterator[CallContext | None]:
        """A steering call with only the interventions of ``configs`` hooked."""
        if self.steering is None:
            yield None
            return
        with self.steering.call(input_ids, layouts, phase, start=start, configs=configs, state=state) as ctx:
            yield ctx

    def _step(self, batch: _Batch) -> None:
        ids = torch.tensor([[lv.tokens[-1]] for lv in batch.live], dtype=torch.long)
        batch.mask = torch.cat([batch.mask, torch.ones(len(batch), 1, dtype=torch.bool)], dim=1)
        layouts = [RowLayout(0, 0, 0, lv.row.config) for lv in batch.live]
        configs = {lv.row.config for lv in batch.live}
        with torch.no_grad(), self.autocast(), \
                self._hooked(configs, ids[:, :0], layouts, "decode", state=batch.state):
            logits = self._forward(ids, batch.mask, batch.pos.unsqueeze(1), batch.cache, 1)
        batch.pos = batch.pos + 1
        for lv, tok in zip(batch.live, logits[:, -1].argmax(dim=-1).tolist(), strict=True):
            lv.tokens.append(int(tok))
        self.stats.decode_steps += 1
        self.stats.decode_rows += len(batch)

    # ------------------------------------------------------------------ prefill of entering rows
    def _prefill(self, entering: list[tuple[int, GenRow]]) -> _Batch:
        if self._trunk_configs:
            self._trunk_prefixes(entering)
        plain: list[tuple[int, GenRow]] = []
        parts: list[_Batch] = []
        for group in self._prefix_groups(entering):
            prefix, kept = self._choose_prefix(group)
            if prefix:
                parts.append(self._run(group, prefix, kept))
            else:
                plain.extend(group)
        if plain:
            parts.insert(0, self._run(plain, 0))
        batch = parts[0]
        for part in parts[1:]:
            batch.join(part)
        for _, row in entering:
            self.stats.prompt_tokens += len(row.prompt)
        return batch

    def _position_local(self, config: int) -> bool:
        if self.steering is None:
            return True
        return self.steering.specs[config].position_local

    def _prefix_groups(self, entering: list[tuple[int, GenRow]]) -> list[list[tuple[int, GenRow]]]:
        """Runs of neighbours (sorted by config, prompt) of one position-local config sharing a long prefix."""
        if not self.share_prefix:
            return [[e] for e in entering]
        groups: list[list[tuple[int, GenRow]]] = []
        for item in sorted(entering, key=lambda e: (e[1].config, e[1].prompt)):
            if groups:
                head = groups[-1][0][1]
                if head.config == item[1].config and self._position_local(head.config) \
                        and _common_prefix(head.prompt, item[1].prompt) >= self.min_shared_prefix:
                    groups[-1].append(item)
                    continue
            groups.append([item])
        return groups

    def _shared_prefix(self, group: list[tuple[int, GenRow]]) -> int:
        """Columns the group can take from one prefix pass (0: none): the common prefix, before every row's
        last prompt token and before the first column where a selector of the config marks rows differently."""
        if len(group) < 2:
            return 0
        rows = [r for _, r in group]
        prefix = min(_common_prefix(rows[0].prompt, r.prompt) for r in rows)
        prefix = min([prefix] + [len(r.prompt) - 1 for r in rows])
        if prefix >= self.min_shared_prefix:
            for mask in self._masks(rows[0].config, rows).values():
                mask = mask[:, :prefix]
                differs = (mask != mask[:1]).any(dim=0).nonzero()
                if len(differs):
                    prefix = int(differs[0])
        return prefix if prefix >= self.min_shared_prefix else 0

    def _masks(self, config: int, rows: Sequence[GenRow]) -> dict[Any, torch.Tensor]:
        """Each steering selector of ``config``: its [rows, width] mask over the rows' (right-padded) prompts."""
        if self.steering is None:
            return {}
        selectors = self.steering.selectors({config})
        if not selectors:
            return {}
        ids, _ = _right_padded(rows, self.pad)
        probe = CallContext("prefill", ids, [RowLayout(0, len(r.prompt), len(r.prompt)) for r in rows])
        return {pos: self.steering.prompt_mask(pos, probe) for pos in selectors}

    def _choose_prefix(self, group: list[tuple[int, GenRow]]) -> tuple[int, _Prefix | None]:
        """The group's shared prefix: a kept prefix pass (any group size) when it is at least as long as the
        group's own common prefix, else the own one (groups of 2+), else none."""
        rows = [r for _, r in group]
        config = rows[0].config
        if not self.share_prefix or not self._position_local(config):
            return 0, None
        own = self._shared_prefix(group)
        best, best_len = None, 0
        masks: dict[Any, torch.Tensor] | None = None
        for (c, _), kept in self._prefixes.items():
            if c != config:
                continue
            n = min(min(_common_prefix(kept.tokens, r.prompt) for r in rows), min(len(r.prompt) for r in rows) - 1)
            if n < max(self.min_shared_prefix, best_len, 1):
                continue
            if kept.masks:
                masks = masks if masks is not None else self._masks(config, rows)
                for pos, mask in masks.items():
                    differs = (mask[:, :n] != kept.masks[pos][:n]).any(dim=0).nonzero()
                    if len(differs):
                        n = int(differs[0])
            if n >= max(self.min_shared_prefix, best_len, 1):
                best, best_len = kept, n
        if best is not None and best_len >= own:
            self._prefixes.move_to_end((config, best.tokens))
            return best_len, best
        return own, None

    def _run(self, group: list[tuple[int, GenRow]], prefix: int, kept: _Prefix | None = None) -> _Batch:
        """Prefill ``group`` (right-padded; its first ``prefix`` columns once, shared, or taken from ``kept``)
        -> a batch with each row's first new token."""
        rows = [r for _, r in group]
        n = len(rows)
        ids, mask = _right_padded(rows, self.pad)
        width = ids.shape[1]
        layouts = [RowLayout(0, len(r.prompt), len(r.prompt), r.config) for r in rows]
        configs = {r.config for r in rows}
        cache = DynamicCache()
        with torch.no_grad(), self.autocast():
            if kept is not None:
                for i, (k, v) in enumerate(zip(kept.keys, kept.values, strict=True)):
                    cache.update(k[:, :, :prefix], v[:, :, :prefix], i)
                cache.batch_repeat_interleave(n)
                self.stats.prefix_reuses += 1
            elif prefix:
                with self._hooked(configs, ids[:1], layouts[:1], "generate"):
                    self._forward(ids[:1, :prefix], mask[:1, :prefix], torch.arange(prefix).unsqueeze(0), cache, 1)
                self._keep_prefix(rows[0], prefix, cache)
                cache.batch_repeat_interleave(n)
                self.stats.shared_prefixes += 1
            cols = sorted({len(r.prompt) - 1 - prefix for r in rows})
            pos = torch.arange(prefix, width).unsqueeze(0).expand(n, -1)
            with self._hooked(configs, ids, layouts, "generate", start=prefix) as ctx:
                logits = self._forward(ids[:, prefix:], mask, pos, cache, cols)
            state = dict(ctx.state) if ctx is not None else {}
        self.stats.prefill_tokens += (0 if kept is not None else prefix) + sum(len(r.prompt) - prefix for r in rows)
        for key, value in state.items():
            if value is not None and not (isinstance(value, torch.Tensor) and value.shape[:1] == (n,)):
                raise RuntimeError(f"steering state {key!r} is not one entry per row (got "
                                   f"{type(value).__name__}); ragged generation cannot carry it across batches.")
        where = {c: j for j, c in enumerate(cols)}
        first = logits[torch.arange(n), [where[len(r.prompt) - 1 - prefix] for r in rows]].argmax(dim=-1).tolist()
        live = [_Live(i, r, [int(t)]) for (i, r), t in zip(group, first, strict=True)]
        return _Batch(live, cache, mask, torch.tensor([len(r.prompt) for r in rows], dtype=torch.long),
                      {k: (None if v is None else v.cpu()) for k, v in state.items()})

    # ------------------------------------------------------------------ prefixes of all configs, one trunk
    def _trunk_prefixes(self, entering: list[tuple[int, GenRow]]) -> None:
        """Keep the prefix of every trunk config for each group of entering prompts with a long common prefix
        (any configs: the prompts are what the trunk shares), computing the missing ones in one branched pass."""
        local = [r for _, r in entering if r.config in self._trunk_configs]
        groups: list[list[GenRow]] = []
        for row in sorted(local, key=lambda r: r.prompt):
            if groups and _common_prefix(groups[-1][0].prompt, row.prompt) >= self.min_shared_prefix:
                groups[-1].append(row)
            else:
                groups.append([row])
        for group in groups:
            prefix = min(min(_common_prefix(group[0].prompt, r.prompt) for r in group),
                         min(len(r.prompt) for r in group) - 1)
            if prefix < self.min_shared_prefix:
                continue
            tokens = group[0].prompt[:prefix]
            covered: dict[int, int] = {}
            for kc, kt in self._prefixes:
                covered[kc] = max(covered.get(kc, 0), _common_prefix(kt, tokens))
            # a config whose kept prefix covers half of these tokens (a role's preamble before this item's
            # text) is served by it; the rest of its rows' tokens run in their own prefill
            missing = [c for c in self._trunk_configs if 2 * covered.get(c, 0) < prefix]
            if missing:
                self._run_trunk(group, tokens, missing)

    def _run_trunk(self, group: list[GenRow], tokens: tuple[int, ...], configs: list[int]) -> None:
        """One pass of ``tokens`` for ``configs``: the blocks below their branch point once, the rest per config;
        each config's prefix (cut where its steering marks the group's prompts differently) is kept."""
        assert self.steering is not None and self._blocks is not None
        k, prefix, row = len(configs), len(tokens), group[0]
        point = branch_point(self.steering.bound, configs, len(self._blocks))
        full = torch.tensor([row.prompt], dtype=torch.long)
        layouts = [RowLayout(0, len(row.prompt), len(row.prompt), c) for c in configs]
        cache = DynamicCache()
        with torch.no_grad(), self.autocast(), branched(self._blocks, point, 1, k), \
                self._hooked(set(configs), full.repeat(k, 1), layouts, "generate"):
            self._forward(full[:, :prefix], torch.ones(1, prefix, dtype=torch.bool), torch.arange(prefix).unsqueeze(0),
                          cache, 1)
        shared = trunk_blocks(point)
        self.stats.trunk_passes += 1
        self.stats.trunk_prefixes += k
        self.stats.trunk_saved += (k - 1) * prefix * shared
        self.stats.prefill_tokens += prefix
        for j, config in enumerate(configs):
            masks = self._masks(config, group)
            keep = prefix
            for mask in masks.values():
                differs = (mask[:, :keep] != mask[:1, :keep]).any(dim=0).nonzero()
                if len(differs):
                    keep = int(differs[0])
            if keep < self.min_shared_prefix:
                continue
            self._store_prefix(config, tokens[:keep], [_row_of(layer.keys, j, keep) for layer in cache.layers],
                               [_row_of(layer.values, j, keep) for layer in cache.layers],
                               {pos: m[0, :keep].clone() for pos, m in masks.items()})

    def _keep_prefix(self, row: GenRow, prefix: int, cache: DynamicCache) -> None:
        masks = {pos: m[0, :prefix].clone() for pos, m in self._masks(row.config, [row]).items()}
        self._store_prefix(row.config, row.prompt[:prefix], [layer.keys.clone() for layer in cache.layers],
                           [layer.values.clone() for layer in cache.layers], masks)

    def _store_prefix(self, config: int, tokens: tuple[int, ...], keys: list[torch.Tensor],
                      values: list[torch.Tensor], masks: dict[Any, torch.Tensor]) -> None:
        self._prefixes[(config, tokens)] = _Prefix(tokens, keys, values, masks)
        self._prefixes.move_to_end((config, tokens))
        while len(self._prefixes) > self.max_prefixes:
            self._prefixes.popitem(last=False)

    # ------------------------------------------------------------------ when a row is done
    def _finished(self, lv: _Live) -> bool:
        if lv.tokens[-1] in self.eos or len(lv.tokens) >= lv.row.max_new_tokens:
            return True
        stop = lv.row.stop
        if not stop:
            return False
        if stop not in self._lookback:  # as lm-eval's stop criterion: the stop's token length + 2
            self._lookback[stop] = max(len(self.tokenizer.encode(s, add_special_tokens=False)) for s in stop) + 2
        tail = self.tokenizer.decode(lv.tokens[-self._lookback[stop]:], skip_special_tokens=False)
        return any(s in tail for s in stop)


def _row_of(t: torch.Tensor, j: int, cols: int) -> torch.Tensor:
    """Copy ``j``'s first ``cols`` columns of a branched pass's cache layer (a trunk layer holds one row for all)."""
    r = 0 if t.shape[0] == 1 else j
    return t[r:r + 1, :, :cols].clone()


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def _right_padded(rows: Sequence[GenRow], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r.prompt) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, r in enumerate(rows):
        ids[i, :len(r.prompt)] = torch.tensor(r.prompt, dtype=torch.long)
        mask[i, :len(r.prompt)] = True
    return ids, mask
