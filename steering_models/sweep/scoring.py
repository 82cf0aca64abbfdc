"""How a sweep scores loglikelihood requests of many configs: three strategies over one set of rows.

A *row* is one (config, model input, prompt length); requests that give the same row share its pass. The
scoring math is HFLM's: the input is ``(context + continuation)[-(max_length+1):][:-1]`` right-padded with
0, the score is the sum of ``log_softmax`` (in HFLM's ``softmax_dtype``) at the continuation tokens,
``is_greedy`` is "argmax equals the continuation at every position". Rows are shared only within one
config and only when input tokens *and* prompt length coincide (HFLM's one-token-continuation sharing,
" yes"/" no"); identical token rows of different configs never share a pass.

* **plain**: rows sorted by length, ``batch_size`` a pass, each row steered by its own config
  (``RowLayout.config``).
* **shared prefix** (``share_prefix``, trunk off): rows of one config are sorted by tokens, and neighbours
  with a long common prefix (one role's questionnaire items) form a group of at most 4 x ``batch_size``
  rows. The group's prefix runs once (batch of 1, steered as in the whole row), its KV cache is repeated
  for every row, and the rows' remaining columns run against it (the hooks are told the columns start at
  the prefix length).
* **shared trunk** (``share_trunk``, the default): each distinct input runs once below the branch point
  (``steering_models.trunk``) for all the configs that need it, then branches per config; with ``share_prefix`` its
  groups of inputs also share one prefix pass per config.

A prefix ends before the first continuation logit any row needs and before the first column where the
rows' steering masks differ, and it is used only for configs whose ops are all ``position_local`` (add,
scale_feature, clamp_feature), so the steering is the same as in a whole-row pass; parity within float
tolerance is tested on Llama- and Gemma-style models (tests/test_sweep_parity.py, test_sweep_trunk.py).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from lm_eval.models.huggingface import HFLM
from tqdm import tqdm

from steering_models.calls import CallContext, RowLayout
from steering_models.hooks import SteeringRuntime
from steering_models.model_helpers import find_blocks
from steering_models.sweep.counts import PassCounts
from steering_models.trunk import branch_point, branched, trunk_blocks

Answer = tuple[float, bool]  # lm-eval's (loglikelihood, is_greedy)


class LLRequest(NamedTuple):
    """A loglikelihood request as tokens (the key its answer is kept under)."""

    context: tuple[int, ...]
    continuation: tuple[int, ...]


class Input(NamedTuple):
    """A model input and where its prompt ends (shared by every config that scores it)."""

    tokens: tuple[int, ...]
    prompt_len: int


class Row(NamedTuple):
    """One row of a pass: an input under one config."""

    config: int
    tokens: tuple[int, ...]
    prompt_len: int

    @property
    def input(self) -> Input:
        return Input(self.tokens, self.prompt_len)


@dataclass(frozen=True)
class Sharing:
    """Which passes a sweep may share (``sweep.yaml``'s ``share_prefix`` / ``share_trunk``)."""

    prefix: bool = True
    trunk: bool = True
    min_prefix: int = 16  # shorter common prefixes are not worth a pass of their own


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def rows_of(todo: dict[int, list[LLRequest]], max_length: int) -> dict[Row, list[LLRequest]]:
    """One row per (config, model input, prompt length), with the requests it answers."""
    rows: dict[Row, list[LLRequest]] = {}
    for config, requests in todo.items():
        for ctx, cont in requests:
            if not ctx or not cont:
                raise ValueError("loglikelihood request with an empty context or continuation "
                                 f"(context tokens {len(ctx)}, continuation tokens {len(cont)})")
            inp = (ctx + cont)[-(max_length + 1):][:-1]
            prompt_len = max(0, len(inp) + 1 - len(cont))
            rows.setdefault(Row(config, inp, prompt_len), []).append(LLRequest(ctx, cont))
    return rows


class SweepScorer:
    """Scores rows of several configs on ``lm``'s model (an HFLM) under ``runtime`` (module docstring);
    writes each answer into ``answers[config][request]`` and counts what it ran into ``counts``."""

    def __init__(self, lm: HFLM, runtime: SteeringRuntime, sharing: Sharing, counts: PassCounts,
                 answers: dict[int, dict[LLRequest, Answer]]) -> None:
        self.lm, self.runtime, self.sharing, self.counts, self.answers = lm, runtime, sharing, counts, answers
        self.model = lm.model
        self.blocks = find_blocks(self.model)
        self.n_layers = len(self.blocks)
        forward = inspect.signature(self.model.forward).parameters
        self.takes_logits_to_keep = "logits_to_keep" in forward
        # the KV-cache argument of the model's forward (``cache`` in transformers >= 5.2x)
        self.cache_arg = "cache" if "cache" in forward else "past_key_values"

    def score(self, todo: dict[int, list[LLRequest]], batch_size: Callable[[list[int] | None], int],
              show_progress: bool = True) -> None:
        """Answer ``todo`` (per config, its requests; ``answers[config]`` exists for each); ``batch_size(
        probe_tokens)`` gives the rows of a plain pass (``probe_tokens``: the longest input, to size it)."""
        rows = rows_of(todo, self.lm.max_length)
        order = sorted(rows, key=lambda r: (-len(r.tokens), r.tokens, r.config))
        bs = batch_size(list(order[0].tokens) if order else None)
        with tqdm(total=len(order), disable=not show_progress, desc=f"Sweep loglikelihood ({len(todo)} configs)") \
                as pbar:
            if self.sharing.trunk:
                self.score_trunk(rows, 4 * bs, pbar)
                return
            plain: list[Row] = []
            for group in self.prefix_groups(order, 4 * bs):
                if len(group) < 2 or not self.score_shared_prefix(group, rows):
                    plain.extend(group)
                else:
                    pbar.update(len(group))
            self.score_plain(plain, rows, bs, pbar)

    # ------------------------------------------------------------------ plain
    def score_plain(self, plain: list[Row], rows: dict[Row, list[LLRequest]], bs: int, pbar: Any) -> None:
        """Whole rows, longest first, ``bs`` a pass."""
        plain = sorted(plain, key=lambda r: (-len(r.tokens), r.tokens, r.config))
        for start in range(0, len(plain), bs):
            chunk = plain[start:start + bs]
            batch = self.pad([r.tokens for r in chunk])
            layouts = [RowLayout(0, r.prompt_len, len(r.tokens), r.config) for r in chunk]
            cols = self.needed_columns(chunk, rows, 0)
            with torch.no_grad(), self.autocast(), self.runtime.call(batch, layouts, "score"):
                logits = self.head(self.model(input_ids=batch, **self.keep(cols)).logits, cols)
            self.counts.forward_rows += len(chunk)
            self.counts.forward_tokens += batch.numel()
            self.counts.layer_tokens += batch.numel() * self.n_layers
            self.collect(chunk, logits, cols, 0, rows)
            pbar.update(len(chunk))

    # ------------------------------------------------------------------ shared prompt prefixes
    def prefix_groups(self, order: list[Row], most: int) -> list[list[Row]]:
        """Rows of one config whose inputs share a long prefix (sorted, greedy, at most ``most`` a group)."""
        if not self.sharing.prefix:
            return [[r] for r in order]
        by_config: dict[int, list[Row]] = {}
        for r in order:
            by_config.setdefault(r.config, []).append(r)
        groups: list[list[Row]] = []
        for config, rs in by_config.items():
            if not self.runtime.specs[config].position_local:
                groups.extend([r] for r in rs)
                continue
            rs.sort(key=lambda r: r.tokens)
            groups.extend(self.neighbour_groups(rs, lambda r: r.tokens, most))
        return groups

    def neighbour_groups(self, items: list, tokens: Callable[[Any], Sequence[int]],
                         most: int | None = None) -> list[list]:
        """Sorted ``items`` -> runs of neighbours whose ``tokens(item)`` share a prefix of at least
        ``min_prefix`` tokens and at least half the run's first shared length (one role's items; the
        next role starts a new run); at most ``most`` items a run when given."""
        groups: list[list] = []
        shared = 0
        for item in items:
            if groups:
                group = groups[-1]
                n = common_prefix(tokens(group[0]), tokens(item))
                if (most is None or len(group) < most) and n >= self.sharing.min_prefix \
                        and (len(group) == 1 or n >= 0.5 * shared):
                    shared = n if len(group) == 1 else shared
                    group.append(item)
                    continue
            groups.append([item])
        return groups

    def score_shared_prefix(self, group: list[Row], rows: dict[Row, list[LLRequest]]) -> bool:
        """Run the group's common prefix once (batch of 1), then every row's rest against its KV cache.

        The prefix stops before the first continuation logit any row needs and before the first
        column where the rows' steering masks differ; False (nothing run) when it would be too short.
        """
        config = group[0].config
        prefix = self.shared_prefix([r.input for r in group], [config])
        if not prefix:
            return False
        batch = self.pad([r.tokens for r in group])
        layouts = [RowLayout(0, r.prompt_len, len(r.tokens), config) for r in group]
        cols = self.needed_columns(group, rows, prefix)
        with torch.no_grad(), self.autocast():
            with self.runtime.call(batch[:1], layouts[:1], "score"):
                out = self.model(input_ids=batch[:1, :prefix], use_cache=True, **self.keep(None))
            cache = out["cache"] if "cache" in out else out["past_key_values"]
            cache.batch_repeat_interleave(len(group))
            with self.runtime.call(batch, layouts, "score", start=prefix):
                logits = self.head(self.model(input_ids=batch[:, prefix:], use_cache=True, **self.keep(cols),
                                              **{self.cache_arg: cache}).logits, cols)
        self.counts.forward_rows += len(group)
        self.counts.forward_tokens += prefix + batch[:, prefix:].numel()
        self.counts.layer_tokens += (prefix + batch[:, prefix:].numel()) * self.n_layers
        self.collect(group, logits, cols, prefix, rows)
        return True

    def shared_prefix(self, group: list[Input], configs: Sequence[int]) -> int:
        """Columns the group's inputs can take from one prefix pass: their common prefix, before the first
        continuation logit any needs and before the first column where a steering selector of ``configs``
        marks the inputs differently; 0 when under ``min_prefix`` or for a single input (nothing run)."""
        if len(group) < 2:
            return 0
        prefix = min(common_prefix(group[0].tokens, inp.tokens) for inp in group)
        prefix = min([prefix] + [inp.prompt_len - 1 for inp in group])
        selectors = self.runtime.selectors(configs)
        if selectors and prefix >= self.sharing.min_prefix:
            batch = self.pad([inp.tokens for inp in group])
            probe = CallContext("score", batch.cpu(), [RowLayout(0, inp.prompt_len, len(inp.tokens))
                                                       for inp in group])
            for pos in selectors:
                mask = self.runtime.prompt_mask(pos, probe)[:, :prefix]
                differs = (mask != mask[:1]).any(dim=0).nonzero()
                if len(differs):
                    prefix = int(differs[0])
        return prefix if prefix >= self.sharing.min_prefix else 0

    # ------------------------------------------------------------------ shared trunk (all configs of a pass)
    def score_trunk(self, rows: dict[Row, list[LLRequest]], most: int, pbar: Any) -> None:
        """Score every row with a shared trunk (``steering_models.trunk``): each distinct input runs once below the
        branch point for all the configs that need it. Inputs with a long common prefix (one role's
        items) form one group however many they are: its prefix runs once per config (chunks of at most
        ``most`` configs), and its inputs then run against that prefix's KV cache ``max(1, most // k)`` at
        a time, so no pass holds more than ``max(most, k)`` rows' activations and KV cache."""
        need: dict[Input, list[int]] = {}
        for row in rows:
            need.setdefault(row.input, []).append(row.config)
        by_set: dict[tuple[tuple[int, ...], bool], list[Input]] = {}
        for inp, configs in need.items():
            local = tuple(sorted(c for c in configs if self.runtime.specs[c].position_local))
            other = tuple(sorted(c for c in configs if not self.runtime.specs[c].position_local))
            for part, ok in ((local, True), (other, False)):
                if part:
                    by_set.setdefault((part, ok), []).append(inp)
        for (configs, ok), inputs in by_set.items():
            inputs.sort()
            share = ok and self.sharing.prefix
            groups = self.neighbour_groups(inputs, lambda i: i.tokens) if share else [inputs]
            for group in groups:
                for start in range(0, len(configs), most):
                    part = configs[start:start + most]
                    self.score_branched(group, part, rows, most, share)
                    pbar.update(len(group) * len(part))

    def score_branched(self, group: list[Input], configs: Sequence[int], rows: dict[Row, list[LLRequest]],
                       most: int, share: bool) -> None:
        k = len(configs)
        point = branch_point(self.runtime.bound, configs, self.n_layers)
        trunk_layers = trunk_blocks(point)
        prefix = self.shared_prefix(group, configs) if share else 0
        cache = None
        if prefix:
            first = group[0]
            one = self.pad([first.tokens])
            layouts = [RowLayout(0, first.prompt_len, len(first.tokens), c) for c in configs]
            with torch.no_grad(), self.autocast(), branched(self.blocks, point, 1, k), \
                    self.runtime.call(one.repeat(k, 1), layouts, "score", configs=configs):
                out = self.model(input_ids=one[:, :prefix], use_cache=True, **self.keep(None))
            cache = out["cache"] if "cache" in out else out["past_key_values"]
            self.counts.forward_tokens += k * prefix
            self.counts.layer_tokens += prefix * (trunk_layers + k * (self.n_layers - trunk_layers))
        m = max(1, most // k)
        for start in range(0, len(group), m):
            chunk = group[start:start + m]
            width = max(len(inp.tokens) for inp in chunk)
            batch = self.pad([inp.tokens for inp in chunk])
            expanded = [Row(c, *inp) for c in configs for inp in chunk]  # config-major
            layouts = [RowLayout(0, r.prompt_len, len(r.tokens), r.config) for r in expanded]
            cols = self.needed_columns(expanded, rows, prefix)
            kwargs: dict[str, Any] = {"use_cache": False}
            if cache is not None:
                rep = copy.deepcopy(cache)
                rep.batch_repeat_interleave(len(chunk))
                kwargs = {"use_cache": True, self.cache_arg: rep}
            with torch.no_grad(), self.autocast(), branched(self.blocks, point, len(chunk), k), \
                    self.runtime.call(batch.repeat(k, 1), layouts, "score", start=prefix, configs=configs):
                logits = self.head(self.model(input_ids=batch[:, prefix:], **self.keep(cols), **kwargs).logits, cols)
            cols_run = len(chunk) * (width - prefix)
            self.counts.forward_rows += len(expanded)
            self.counts.forward_tokens += k * cols_run
            self.counts.layer_tokens += cols_run * (trunk_layers + k * (self.n_layers - trunk_layers))
            self.collect(expanded, logits, cols, prefix, rows)

    # ------------------------------------------------------------------ shared by the strategies
    def pad(self, inputs: Sequence[Sequence[int]]) -> torch.Tensor:
        """The inputs right-padded with 0 to the longest, as HFLM does, on the model's device."""
        batch = torch.zeros(len(inputs), max(len(t) for t in inputs), dtype=torch.long)
        for i, tokens in enumerate(inputs):
            batch[i, :len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        return batch.to(self.lm.device)

    @staticmethod
    def needed_columns(chunk: list[Row], rows: dict[Row, list[LLRequest]], first_col: int) -> torch.Tensor:
        """The columns (counted from first_col) whose logits score a continuation token of some row: the
        model's head runs on these only (``logits_to_keep``), not on every prompt position."""
        cols = {c - first_col for row in chunk for req in rows[row]
                for c in range(len(row.tokens) - len(req.continuation), len(row.tokens))}
        return torch.tensor(sorted(cols), dtype=torch.long)

    def keep(self, cols: torch.Tensor | None) -> dict[str, Any]:
        """``logits_to_keep`` for models whose forward takes it (cols None: the last column only)."""
        if not self.takes_logits_to_keep:
            return {}
        return {"logits_to_keep": 1 if cols is None else cols.to(self.lm.device)}

    def head(self, logits: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Logits at ``cols`` (already so when the model took ``logits_to_keep``)."""
        if logits.shape[1] == len(cols) and self.takes_logits_to_keep:
            return logits
        return logits[:, cols.to(logits.device)]

    def autocast(self) -> Any:
        dtype = self.lm.mixed_precision_dtype
        return torch.autocast(device_type=self.lm.device.type, dtype=dtype, enabled=dtype is not None)

    def collect(self, chunk: list[Row], logits: torch.Tensor, cols: torch.Tensor, first_col: int,
                rows: dict[Row, list[LLRequest]]) -> None:
        """HFLM's scoring of each request from its row's logits (``logits[:, j]`` is column
        first_col + cols[j])."""
        where = {int(c): j for j, c in enumerate(cols)}
        logp_all = torch.log_softmax(logits, dim=-1, dtype=self.lm.softmax_dtype)  # one call for the whole pass
        best = logp_all.argmax(dim=-1).tolist()
        for i, row in enumerate(chunk):
            for req in rows[row]:
                cont = req.continuation
                idx = [where[c - first_col] for c in range(len(row.tokens) - len(cont), len(row.tokens))]
                greedy = all(best[i][j] == t for j, t in zip(idx, cont, strict=True))
                score = float(logp_all[i, idx, list(cont)].sum())
                self.answers[row.config][req] = (score, greedy)
