"""``SweepLM``: one loaded model that answers lm-eval's requests for many steering configs at once.

lm-eval evaluates one model under one setting per ``simple_evaluate`` call. A sweep calls
``simple_evaluate`` once per config against the same ``SweepLM`` object; ``select(k, wave)`` says which
config the next call is for and which configs (the *wave*) to compute alongside it. The first call of a
wave scores every request for all the wave's configs in shared batches: each row of a forward pass
carries its config index (``RowLayout.config``) and the steering hooks steer only their own config's
rows (``SteeringRuntime`` with several specs). The answers of the other configs are kept, and their
``simple_evaluate`` calls are served from them, so every config still gets lm-eval's own request
building, filters, metrics and output files.

The batching loop is our own (not HFLM's ``Collator``): HFLM groups requests with identical input
tokens into one forward pass (its logits cache), and identical token rows of different configs must
never share one. The scoring math is HFLM's: the input is ``(context + continuation)[-(max_length+1):][:-1]``
right-padded with 0, the score is the sum of ``log_softmax`` (in HFLM's ``softmax_dtype``) at the
continuation tokens, ``is_greedy`` is "argmax equals the continuation at every position". Rows are
shared only within one config and only when input tokens *and* prompt length coincide (HFLM's
one-token-continuation sharing, " yes"/" no"). Generation reproduces HFLM's ``generate_until``
(grouping by generation kwargs, left padding, stop sequences, post-processing); greedy decoding
gives each config's solo answers (parity tests: tests/test_sweep_parity.py); sampled decoding draws
from the same distribution but not the same random numbers as a solo run.

Shared prefixes (loglikelihood, ``share_prefix=True``): rows of one config are sorted by tokens, and
neighbours with a long common prefix (one role's questionnaire items) form a group of at most
4 x ``batch_size`` rows (their remaining columns are short). The group's prefix runs once (batch of 1,
steered as in the whole row), its KV cache is repeated for every row, and the rows' remaining columns
run against it (the hooks are told the columns start at the prefix length). The prefix ends before the first continuation logit any row needs
and before the first column where the rows' steering masks differ, and it is used only for configs whose
ops act on each position alone (add, scale_feature, clamp_feature), so the steering is the same as in a
whole-row pass; parity within float tolerance is tested on Llama- and Gemma-style models.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import (
    handle_stop_sequences,
    normalize_gen_kwargs,
    postprocess_generated_text,
)
from tqdm import tqdm

from steering_models.calls import RowLayout, generation_layouts
from steering_models.default_model import resolve_pretrained
from steering_models.errors import SpecError
from steering_models.hooks import SteeringRuntime
from steering_models.lm import SteeredHFLM
from steering_models.model_helpers import find_blocks, model_config
from steering_models.spec import SteerSpec
from steering_models.sweep.trunk import branch_point, branched

log = logging.getLogger(__name__)

LLKey = tuple[tuple[int, ...], tuple[int, ...]]
GenKey = tuple[str, str]
Row = tuple[int, tuple[int, ...], int]  # (config, model input tokens, prompt length)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def _gen_key(context: str, gen_kwargs: dict[str, Any]) -> GenKey:
    return context, json.dumps(gen_kwargs, sort_keys=True, default=str)


class SweepLM(SteeredHFLM):
    """A HuggingFace causal LM with N steering specs, evaluated config by config (module docstring)."""

    def __init__(self, pretrained: Any = "default", specs: Sequence[SteerSpec] = (), share_prefix: bool = True,
                 min_shared_prefix: int = 16, share_trunk: bool = True, **kwargs: Any) -> None:
        specs = tuple(specs) or (SteerSpec(),)
        pretrained = resolve_pretrained(pretrained)
        if any(not s.is_empty for s in specs):
            config = model_config(pretrained, kwargs)
            for spec in specs:
                spec.validate(config, kwargs.get("dtype"))
        super().__init__(pretrained=pretrained, steer=None, **kwargs)
        if self.backend != "causal":
            raise SpecError(f"a sweep needs a decoder-only (causal) model, but {pretrained} is a "
                            f"{self.backend} model. Use a causal LM.")
        self.specs = specs
        self.steering = SteeringRuntime(self.model, specs, self.tokenizer)
        self.active = 0
        self.wave: tuple[int, ...] = (0,)
        self._ll: dict[int, dict[LLKey, tuple[float, bool]]] = {}
        self._gen: dict[int, dict[GenKey, str]] = {}
        self._released: set[int] = set()
        self.share_prefix, self.min_shared_prefix, self.share_trunk = share_prefix, min_shared_prefix, share_trunk
        self.n_layers = len(find_blocks(self.model))
        self.forward_rows = 0  # rows (one per config and input) scored by the model (for benchmarks)
        self.forward_tokens = 0  # token columns run per config, padding included (for benchmarks)
        self.layer_tokens = 0  # token columns x blocks actually run (a shared trunk counts once; benchmarks)
        self.select(0)

    # ------------------------------------------------------------------ which config is evaluated
    def select(self, config: int, wave: Sequence[int] | None = None) -> None:
        """The next lm-eval call is for ``config``; compute the configs of ``wave`` alongside it."""
        if not 0 <= config < len(self.specs):
            raise ValueError(f"config index {config} is out of range: the sweep has {len(self.specs)} configs")
        self.active = config
        self._released.discard(config)
        self.wave = tuple(sorted((set(wave or ()) - self._released) | {config}))
        self.steer_spec = self.specs[config]

    def release(self, config: int) -> None:
        """Forget the kept answers of ``config`` (its output is written) and compute it no more."""
        self._ll.pop(config, None)
        self._gen.pop(config, None)
        self._released.add(config)
        self.wave = tuple(c for c in self.wave if c != config)

    def _row_batch_size(self, n_rows: int, probe: list[int] | None = None) -> int:
        if isinstance(self.batch_size, int) and self.batch_size > 0:
            return self.batch_size
        if probe is not None and n_rows:
            return max(1, int(self._detect_batch_size([(None, probe + [0], [0])])))
        return max(1, int(self._detect_batch_size()))

    # ------------------------------------------------------------------ loglikelihood
    def _loglikelihood_tokens(self, requests: list, disable_tqdm: bool = False,
                              override_bs: int | None = None) -> list:
        keys: list[LLKey] = [(tuple(ctx), tuple(cont)) for _, ctx, cont in requests]
        todo: dict[int, list[LLKey]] = {}
        for config in self.wave:
            store = self._ll.setdefault(config, {})
            missing = list(dict.fromkeys(k for k in keys if k not in store))
            if missing:
                todo[config] = missing
        if todo:
            self._score(todo, disable_tqdm)
        store = self._ll[self.active]
        out = []
        for (req_str, _, _), key in zip(requests, keys, strict=True):
            answer = store[key]
            out.append(answer)
            if req_str is not None:
                self.cache_hook.add_partial("loglikelihood", req_str, answer)
        return out

    def _score(self, todo: dict[int, list[LLKey]], disable_tqdm: bool) -> None:
        # one row per (config, model input, prompt length); requests that share it share the pass
        rows: dict[Row, list[LLKey]] = {}
        for config, keys in todo.items():
            for ctx, cont in keys:
                if not ctx or not cont:
                    raise ValueError("loglikelihood request with an empty context or continuation "
                                     f"(context tokens {len(ctx)}, continuation tokens {len(cont)})")
                inp = (ctx + cont)[-(self.max_length + 1):][:-1]
                prompt_len = max(0, len(inp) + 1 - len(cont))
                rows.setdefault((config, inp, prompt_len), []).append((ctx, cont))
        order = sorted(rows, key=lambda r: (-len(r[1]), r[1], r[0]))
        bs = self._row_batch_size(len(order), list(order[0][1]) if order else None)
        pbar = tqdm(total=len(order), disable=disable_tqdm or self.rank != 0,
                    desc=f"Sweep loglikelihood ({len(todo)} configs)")
        plain: list[Row] = []
        if self.share_trunk:
            self._score_trunk(rows, 4 * bs, pbar)
            order = []
        for group in self._prefix_groups(order, 4 * bs):
            if len(group) < 2 or not self._score_shared(group, rows):
                plain.extend(group)
            else:
                pbar.update(len(group))
        plain.sort(key=lambda r: (-len(r[1]), r[1], r[0]))
        for start in range(0, len(plain), bs):
            chunk = plain[start:start + bs]
            width = max(len(r[1]) for r in chunk)
            batch = self._pad(chunk, width)
            layouts = [RowLayout(0, prompt_len, len(inp), config) for config, inp, prompt_len in chunk]
            cols = self._needed_columns(chunk, rows, 0)
            with torch.no_grad(), self._autocast(), self.steering.call(batch, layouts, "score"):
                logits = self._head(self.model(input_ids=batch, **self._keep(cols)).logits, cols)
            self.forward_rows += len(chunk)
            self.forward_tokens += batch.numel()
            self.layer_tokens += batch.numel() * self.n_layers
            self._collect(chunk, logits, cols, 0, rows)
            pbar.update(len(chunk))
        pbar.close()

    def _pad(self, chunk: list[Row], width: int) -> torch.Tensor:
        batch = torch.zeros(len(chunk), width, dtype=torch.long)  # right padding with 0, as HFLM
        for i, (_, inp, _) in enumerate(chunk):
            batch[i, :len(inp)] = torch.tensor(inp, dtype=torch.long)
        return batch.to(self.device)

    @staticmethod
    def _needed_columns(chunk: list[Row], rows: dict[Row, list[LLKey]], first_col: int) -> torch.Tensor:
        """The columns (counted from first_col) whose logits score a continuation token of some row: the
        model's head runs on these only (``logits_to_keep``), not on every prompt position."""
        cols = {c - first_col for row in chunk for _, cont in rows[row]
                for c in range(len(row[1]) - len(cont), len(row[1]))}
        return torch.tensor(sorted(cols), dtype=torch.long)

    def _keep(self, cols: torch.Tensor | None) -> dict[str, Any]:
        """``logits_to_keep`` for models whose forward takes it (cols None: the last column only)."""
        import inspect

        if "logits_to_keep" not in inspect.signature(self.model.forward).parameters:
            return {}
        return {"logits_to_keep": 1 if cols is None else cols.to(self.device)}

    def _head(self, logits: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Logits at ``cols`` (already so when the model took ``logits_to_keep``)."""
        return logits if logits.shape[1] == len(cols) and self._keep(cols) else logits[:, cols.to(logits.device)]

    def _autocast(self) -> Any:
        return torch.autocast(device_type=self.device.type, dtype=self.mixed_precision_dtype,
                              enabled=self.mixed_precision_dtype is not None)

    def _collect(self, chunk: list[Row], logits: torch.Tensor, cols: torch.Tensor, first_col: int,
                 rows: dict[Row, list[LLKey]]) -> None:
        """HFLM's scoring of each request from its row's logits (``logits[:, j]`` is column
        first_col + cols[j])."""
        where = {int(c): j for j, c in enumerate(cols)}
        logp_all = torch.log_softmax(logits, dim=-1, dtype=self.softmax_dtype)  # one call for the whole pass
        best = logp_all.argmax(dim=-1).tolist()
        for i, row in enumerate(chunk):
            config, inp, _ = row
            for ctx, cont in rows[row]:
                idx = [where[c - first_col] for c in range(len(inp) - len(cont), len(inp))]
                greedy = all(best[i][j] == t for j, t in zip(idx, cont, strict=True))
                score = float(logp_all[i, idx, list(cont)].sum())
                self._ll[config][(ctx, cont)] = (score, greedy)

    # ------------------------------------------------------------------ shared prompt prefixes
    @property
    def _cache_arg(self) -> str:
        """The KV-cache argument of the model's forward (``cache`` in transformers >= 5.2x, else
        ``past_key_values``)."""
        import inspect

        return "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"

    def _prefix_safe(self, config: int) -> bool:
        """Whether a config's steering at a position depends only on that position (so a prefix run alone
        is steered exactly as inside the whole row): every op ``position_local`` (add, scale_feature,
        clamp_feature), or none."""
        return all(iv.op.position_local for iv in self.specs[config].interventions)

    def _prefix_groups(self, order: list[Row], most: int) -> list[list[Row]]:
        """Rows of one config whose inputs share a long prefix (sorted, greedy, at most ``most`` a group)."""
        if not self.share_prefix:
            return [[r] for r in order]
        by_config: dict[int, list[Row]] = {}
        for r in order:
            by_config.setdefault(r[0], []).append(r)
        groups: list[list[Row]] = []
        for config, rs in by_config.items():
            if not self._prefix_safe(config):
                groups.extend([r] for r in rs)
                continue
            rs.sort(key=lambda r: r[1])
            groups.extend(self._neighbour_groups(rs, lambda r: r[1], most))
        return groups

    def _neighbour_groups(self, items: list, tokens: Any, most: int | None = None) -> list[list]:
        """Sorted ``items`` -> runs of neighbours whose ``tokens(item)`` share a prefix of at least
        ``min_shared_prefix`` tokens and at least half the run's first shared length (one role's items; the
        next role starts a new run); at most ``most`` items a run when given."""
        groups: list[list] = []
        shared = 0
        for item in items:
            if groups:
                group = groups[-1]
                n = _common_prefix(tokens(group[0]), tokens(item))
                if (most is None or len(group) < most) and n >= self.min_shared_prefix \
                        and (len(group) == 1 or n >= 0.5 * shared):
                    shared = n if len(group) == 1 else shared
                    group.append(item)
                    continue
            groups.append([item])
        return groups

    def _score_shared(self, group: list[Row], rows: dict[Row, list[LLKey]]) -> bool:
        """Run the group's common prefix once (batch of 1), then every row's rest against its KV cache.

        The prefix stops before the first continuation logit any row needs and before the first
        column where the rows' steering masks differ; False (nothing run) when it would be too short.
        """
        config = group[0][0]
        prefix = self._shared_prefix([(inp, prompt_len) for _, inp, prompt_len in group], [config])
        if not prefix:
            return False
        batch = self._pad(group, max(len(r[1]) for r in group))
        layouts = [RowLayout(0, prompt_len, len(inp), config) for _, inp, prompt_len in group]
        cols = self._needed_columns(group, rows, prefix)
        with torch.no_grad(), self._autocast():
            with self.steering.call(batch[:1], layouts[:1], "score"):
                out = self.model(input_ids=batch[:1, :prefix], use_cache=True, **self._keep(None))
            cache = out["cache"] if "cache" in out else out["past_key_values"]
            cache.batch_repeat_interleave(len(group))
            with self.steering.call(batch, layouts, "score", start=prefix):
                logits = self._head(self.model(input_ids=batch[:, prefix:], use_cache=True, **self._keep(cols),
                                               **{self._cache_arg: cache}).logits, cols)
        self.forward_rows += len(group)
        self.forward_tokens += prefix + batch[:, prefix:].numel()
        self.layer_tokens += (prefix + batch[:, prefix:].numel()) * self.n_layers
        self._collect(group, logits, cols, prefix, rows)
        return True

    # ------------------------------------------------------------------ shared trunk (all configs of a pass)
    def _score_trunk(self, rows: dict[Row, list[LLKey]], most: int, pbar: Any) -> None:
        """Score every row with a shared trunk (``trunk.py``): each distinct input runs once below the
        branch point for all the configs that need it. Inputs with a long common prefix (one role's
        items) form one group however many they are: its prefix runs once per config (chunks of at most
        ``most`` configs), and its inputs then run against that prefix's KV cache ``max(1, most // k)`` at
        a time, so no pass holds more than ``max(most, k)`` rows' activations and KV cache."""
        need: dict[tuple[tuple[int, ...], int], list[int]] = {}
        for config, inp, prompt_len in rows:
            need.setdefault((inp, prompt_len), []).append(config)
        by_set: dict[tuple[tuple[int, ...], bool], list[tuple[tuple[int, ...], int]]] = {}
        for key, configs in need.items():
            safe = tuple(sorted(c for c in configs if self._prefix_safe(c)))
            other = tuple(sorted(c for c in configs if not self._prefix_safe(c)))
            for part, ok in ((safe, True), (other, False)):
                if part:
                    by_set.setdefault((part, ok), []).append(key)
        for (configs, ok), inputs in by_set.items():
            inputs.sort()
            share = ok and self.share_prefix
            groups = self._neighbour_groups(inputs, lambda i: i[0]) if share else [inputs]
            for group in groups:
                for start in range(0, len(configs), most):
                    part = configs[start:start + most]
                    self._score_branched(group, part, rows, most, share)
                    pbar.update(len(group) * len(part))

    def _shared_prefix(self, group: list[tuple[tuple[int, ...], int]], configs: Sequence[int]) -> int:
        """Columns the group's inputs can take from one prefix pass: their common prefix, before the first
        continuation logit any needs and before the first column where a steering selector of ``configs``
        marks the inputs differently; 0 when under ``min_shared_prefix`` or for a single input (nothing run)."""
        from steering_models.calls import CallContext
        from steering_models.hooks import _prompt_mask

        if len(group) < 2:
            return 0
        prefix = min(_common_prefix(group[0][0], inp) for inp, _ in group)
        prefix = min([prefix] + [pl - 1 for _, pl in group])
        selectors = {b[2] for b in self.steering.bound if b[4] in configs}
        if selectors and prefix >= self.min_shared_prefix:
            batch = self._pad([(0, inp, pl) for inp, pl in group], max(len(inp) for inp, _ in group))
            probe = CallContext("score", batch.cpu(), [RowLayout(0, pl, len(inp)) for inp, pl in group])
            for pos in selectors:
                mask = _prompt_mask(pos, probe, self.tokenizer)[:, :prefix]
                differs = (mask != mask[:1]).any(dim=0).nonzero()
                if len(differs):
                    prefix = int(differs[0])
        return prefix if prefix >= self.min_shared_prefix else 0

    @contextmanager
    def _steering_of(self, configs: Sequence[int]) -> Iterator[None]:
        """Only the interventions of ``configs`` are hooked (a branched pass carries no other config's
        rows, and a hook below the branch point would see the trunk's unrepeated batch)."""
        bound = self.steering.bound
        self.steering.bound = [b for b in bound if b[4] in configs]
        try:
            yield
        finally:
            self.steering.bound = bound

    def _score_branched(self, group: list[tuple[tuple[int, ...], int]], configs: Sequence[int],
                        rows: dict[Row, list[LLKey]], most: int, share: bool) -> None:
        import copy

        k = len(configs)
        point = branch_point(self.steering.bound, configs, self.n_layers)
        trunk_layers = point[0] + point[1]
        blocks = find_blocks(self.model)
        prefix = self._shared_prefix(group, configs) if share else 0
        cache = None
        if prefix:
            inp, prompt_len = group[0]
            one = self._pad([(0, inp, prompt_len)], len(inp))
            layouts = [RowLayout(0, prompt_len, len(inp), c) for c in configs]
            with torch.no_grad(), self._autocast(), branched(blocks, point, 1, k), \
                    self._steering_of(configs), self.steering.call(one.repeat(k, 1), layouts, "score"):
                out = self.model(input_ids=one[:, :prefix], use_cache=True, **self._keep(None))
            cache = out["cache"] if "cache" in out else out["past_key_values"]
            self.forward_tokens += k * prefix
            self.layer_tokens += prefix * (trunk_layers + k * (self.n_layers - trunk_layers))
        m = max(1, most // k)
        for start in range(0, len(group), m):
            chunk = group[start:start + m]
            width = max(len(inp) for inp, _ in chunk)
            batch = self._pad([(0, inp, pl) for inp, pl in chunk], width)
            expanded: list[Row] = [(c, inp, pl) for c in configs for inp, pl in chunk]  # config-major
            layouts = [RowLayout(0, pl, len(inp), c) for c, inp, pl in expanded]
            cols = self._needed_columns(expanded, rows, prefix)
            kwargs: dict[str, Any] = {"use_cache": False}
            if cache is not None:
                rep = copy.deepcopy(cache)
                rep.batch_repeat_interleave(len(chunk))
                kwargs = {"use_cache": True, self._cache_arg: rep}
            with torch.no_grad(), self._autocast(), branched(blocks, point, len(chunk), k), \
                    self._steering_of(configs), self.steering.call(batch.repeat(k, 1), layouts, "score", start=prefix):
                logits = self._head(self.model(input_ids=batch[:, prefix:], **self._keep(cols), **kwargs).logits, cols)
            cols_run = len(chunk) * (width - prefix)
            self.forward_rows += len(expanded)
            self.forward_tokens += k * cols_run
            self.layer_tokens += cols_run * (trunk_layers + k * (self.n_layers - trunk_layers))
            self._collect(expanded, logits, cols, prefix, rows)

    # ------------------------------------------------------------------ generation
    def generate_until(self, requests: list, disable_tqdm: bool = False) -> list[str]:
        args = [req.args for req in requests]
        keys = [_gen_key(context, kwargs) for context, kwargs in args]
        todo: dict[int, dict[GenKey, tuple[str, dict]]] = {}
        for config in self.wave:
            store = self._gen.setdefault(config, {})
            for key, (context, kwargs) in zip(keys, args, strict=True):
                if key not in store:
                    todo.setdefault(config, {})[key] = (context, kwargs)
        if todo:
            self._generate(todo, disable_tqdm)
        store = self._gen[self.active]
        out = []
        for key, (context, kwargs) in zip(keys, args, strict=True):
            out.append(store[key])
            self.cache_hook.add_partial("generate_until", (context, kwargs), store[key])
        return out

    def _generate(self, todo: dict[int, dict[GenKey, tuple[str, dict]]], disable_tqdm: bool) -> None:
        by_kwargs: dict[str, list[tuple[int, GenKey, str, dict]]] = {}
        for config, items in todo.items():
            for key, (context, kwargs) in items.items():
                by_kwargs.setdefault(key[1], []).append((config, key, context, kwargs))
        total = sum(len(v) for v in by_kwargs.values())
        pbar = tqdm(total=total, disable=disable_tqdm or self.rank != 0,
                    desc=f"Sweep generate_until ({len(todo)} configs)")
        eos = self.tok_decode(self.eot_token_id, skip_special_tokens=False)
        bs = self._row_batch_size(total)
        for group in by_kwargs.values():
            lengths = {c: len(self.tok_encode(c)) for c in {g[2] for g in group}}
            group.sort(key=lambda g: (-lengths[g[2]], g[2], g[0]))
            for start in range(0, len(group), bs):
                chunk = group[start:start + bs]
                kwargs = normalize_gen_kwargs(dict(chunk[0][3]), self.max_gen_toks)
                until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
                max_gen_toks = kwargs.pop("max_gen_toks")
                max_ctx_len = self.max_length - max_gen_toks
                if max_ctx_len <= 0:
                    raise ValueError(f"max_gen_toks={max_gen_toks} leaves no room for the prompt in the "
                                     f"model's max_length={self.max_length}. Lower max_gen_toks.")
                context_enc, attn = self.tok_batch_encode([g[2] for g in chunk], left_truncate_len=max_ctx_len,
                                                          truncation=self.truncation)
                context_enc, attn = context_enc.to(self.device), attn.to(self.device)
                max_length = kwargs.pop("max_length", context_enc.shape[1] + max_gen_toks)
                layouts = generation_layouts(context_enc, attn, [g[0] for g in chunk])
                with self.steering.call(context_enc, layouts, "generate"):
                    cont = HFLM._model_generate(self, context=context_enc, attention_mask=attn, stop=until,
                                                max_length=max_length, **kwargs)
                self.forward_rows += len(chunk)
                for (config, key, _, _), toks in zip(chunk, cont.tolist(), strict=True):
                    self._gen[config][key] = self._decode_generated(toks[context_enc.shape[1]:], until)
                pbar.update(len(chunk))
        pbar.close()

    def _decode_generated(self, toks: list[int], until: list[str]) -> str:
        """HFLM.generate_until's post-processing of one row's new tokens."""
        if isinstance(self.think_end_token, int):
            idx = [i for i, t in enumerate(toks) if t == self.think_end_token]
            if idx:
                toks = toks[idx[-1] + 1:]
        s = self.tok_decode(toks)
        if isinstance(self.think_end_token, int):
            s = s.lstrip()
        return postprocess_generated_text(
            generation=s, stop=until,
            think_end_token=self.think_end_token if isinstance(self.think_end_token, str) else None)
