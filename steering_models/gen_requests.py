"""lm-eval ``generate_until`` requests answered by the ragged generator (``steering_models.generation``).

``generate_texts(lm, items, engine)`` does what HFLM's ``generate_until`` does around ``model.generate``:
groups by generation kwargs, ``normalize_gen_kwargs`` / ``handle_stop_sequences`` (the EOS text joins the
stop strings), prompt encoding with ``tok_batch_encode`` (left truncation to ``max_length - max_gen_toks``),
``max_gen_toks`` new tokens per row, and the post-processing of each row's new tokens (``think_end_token``,
``postprocess_generated_text``). Only greedy requests are the engine's (``engine_supports``); the caller
sends the others to HF ``generate``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from lm_eval.models.utils import (
    handle_stop_sequences,
    normalize_gen_kwargs,
    postprocess_generated_text,
)

from steering_models.generation import GenRow, RaggedGenerator

# generation_config fields whose non-default values change greedy decoding (HF logits processors)
_PROCESSORS = {"repetition_penalty": 1.0, "no_repeat_ngram_size": 0, "bad_words_ids": None, "min_length": 0,
               "min_new_tokens": None, "suppress_tokens": None, "begin_suppress_tokens": None,
               "forced_bos_token_id": None, "forced_eos_token_id": None, "sequence_bias": None,
               "encoder_repetition_penalty": 1.0, "exponential_decay_length_penalty": None,
               "num_beams": 1, "renormalize_logits": False}
_GREEDY_KWARGS = {"until", "max_gen_toks", "do_sample", "temperature"}


def model_blocks_engine(generation_config: Any) -> str | None:
    """Why the model's own generation config needs HF ``generate`` (a logits processor is set), or None."""
    for name, default in _PROCESSORS.items():
        value = getattr(generation_config, name, default)
        if value is not None and value != default:
            return f"its generation_config sets {name}={value!r}"
    return None


def engine_supports(gen_kwargs: dict[str, Any]) -> bool:
    """Whether a request's generation kwargs ask for plain greedy decoding (HFLM's default)."""
    if set(gen_kwargs) - _GREEDY_KWARGS:
        return False
    temperature = gen_kwargs.get("temperature", 0.0)
    return not gen_kwargs.get("do_sample", False) and (temperature in (0, 0.0, None))


def decode_generated(lm: Any, toks: list[int], until: list[str]) -> str:
    """HFLM.generate_until's post-processing of one row's new tokens."""
    if isinstance(lm.think_end_token, int):
        idx = [i for i, t in enumerate(toks) if t == lm.think_end_token]
        if idx:
            toks = toks[idx[-1] + 1:]
    s = lm.tok_decode(toks)
    if isinstance(lm.think_end_token, int):
        s = s.lstrip()
    return postprocess_generated_text(
        generation=s, stop=until,
        think_end_token=lm.think_end_token if isinstance(lm.think_end_token, str) else None)


def generate_texts(lm: Any, items: Sequence[tuple[int, str, dict[str, Any]]], engine: RaggedGenerator,
                   encode_chunk: int = 256, pbar: Any = None) -> list[str]:
    """The generated text of each ``(config, context, gen_kwargs)`` item (greedy kwargs only), as HFLM's
    ``generate_until`` post-processes it. ``lm`` is an HFLM (its tokenizer, lengths and decoding)."""
    eos = lm.tok_decode(lm.eot_token_id, skip_special_tokens=False)
    by_kwargs: dict[str, list[int]] = {}
    for i, (_, _, kwargs) in enumerate(items):
        if not engine_supports(kwargs):
            raise ValueError(f"generation kwargs {kwargs} are not greedy: the ragged engine decodes greedily "
                             "only. Use gen_engine=hf for sampling.")
        by_kwargs.setdefault(json.dumps(kwargs, sort_keys=True, default=str), []).append(i)
    texts: list[str] = [""] * len(items)
    for idx in by_kwargs.values():
        kwargs = normalize_gen_kwargs(dict(items[idx[0]][2]), lm.max_gen_toks)
        until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
        max_gen_toks = int(kwargs.pop("max_gen_toks"))
        max_ctx_len = lm.max_length - max_gen_toks
        if max_ctx_len <= 0:
            raise ValueError(f"max_gen_toks={max_gen_toks} leaves no room for the prompt in the model's "
                             f"max_length={lm.max_length}. Lower max_gen_toks.")
        rows: list[GenRow] = []
        for start in range(0, len(idx), encode_chunk):
            part = idx[start:start + encode_chunk]
            enc, attn = lm.tok_batch_encode([items[i][1] for i in part], left_truncate_len=max_ctx_len,
                                            truncation=lm.truncation)
            for i, ids, m in zip(part, enc.tolist(), attn.tolist(), strict=True):
                prompt = tuple(t for t, keep in zip(ids, m, strict=True) if keep)
                rows.append(GenRow(prompt, max_gen_toks, items[i][0], tuple(until)))
        outs = engine.generate(rows, on_done=(lambda j, toks: pbar.update(1)) if pbar is not None else None)
        for i, toks in zip(idx, outs, strict=True):
            texts[i] = decode_generated(lm, toks, until)
    return texts
