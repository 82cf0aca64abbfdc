"""Residual-stream embeddings of texts at the output of every decoder block, cached on disk.

The representation of a text at block ``l`` is the block's output (``resid_post``, the hook point
``op: conva`` steers), pooled over the text's real tokens:

* ``last`` (default): the last token. ConVA's paper does not say which token it uses; its released
  code (hr-jin/ConVA, ``src/cav.py``) takes the last token of each sentence, so we do too.
* ``mean``: the average over all real tokens.

Texts are fed raw (no chat template), with the tokenizer's default special tokens, as in the
released code. Results are cached as safetensors under ``cache_dir``, keyed by the model identity,
the texts' hash, the pooling and the max length.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from steering_models.model_helpers import find_blocks

POOLINGS = ("last", "mean")


@torch.no_grad()
def collect(model: torch.nn.Module, tokenizer: Any, texts: list[str], pooling: str = "last",
            batch_size: int = 8, max_length: int = 256, desc: str = "activations") -> torch.Tensor:
    """``[N, n_layers, d_model]`` float32: pooled block outputs of every text."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling {pooling!r} is not one of {', '.join(POOLINGS)}. Fix --pooling.")
    blocks = find_blocks(model)
    device = next(model.parameters()).device
    outputs: list[torch.Tensor] = []
    seen: dict[int, torch.Tensor] = {}

    def hook(i: int):  # type: ignore[no-untyped-def]
        def fn(module: Any, args: tuple, out: Any) -> None:
            seen[i] = (out[0] if isinstance(out, tuple) else out).detach()
        return fn

    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    handles = [b.register_forward_hook(hook(i)) for i, b in enumerate(blocks)]
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "right"
    # batches of similar length (less padding); the result is put back in the input order
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    try:
        for start in tqdm(range(0, len(texts), batch_size), desc=desc, unit="batch"):
            batch = [texts[i] for i in order[start: start + batch_size]]
            enc = tokenizer(batch, return_tensors="pt", padding=True,
                            truncation=True, max_length=max_length).to(device)
            seen.clear()
            model(**enc)
            mask = enc["attention_mask"].bool()  # [B, T]
            stacked = torch.stack([seen[i] for i in range(len(blocks))], dim=1).float()  # [B, L, T, D]
            if pooling == "last":
                last = mask.sum(1) - 1
                pooled = stacked[torch.arange(stacked.shape[0]), :, last]  # [B, L, D]
            else:
                m = mask[:, None, :, None].float()
                pooled = (stacked * m).sum(2) / m.sum(2)
            outputs.append(pooled.cpu())
    finally:
        tokenizer.padding_side = old_side
        for h in handles:
            h.remove()
    pooled_all = torch.cat(outputs, dim=0)
    result = torch.empty_like(pooled_all)
    result[torch.tensor(order)] = pooled_all
    return result


def cache_key(identity: dict[str, Any], texts_hash: str, pooling: str, max_length: int) -> str:
    blob = json.dumps([identity, texts_hash, pooling, max_length], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def cached_collect(model: torch.nn.Module, tokenizer: Any, texts: list[str], identity: dict[str, Any],
                   texts_hash: str, cache_dir: Path | None, pooling: str = "last", batch_size: int = 8,
                   max_length: int = 256, desc: str = "activations") -> torch.Tensor:
    """:func:`collect`, read from / written to ``cache_dir`` (None = no cache)."""
    from safetensors.torch import load_file, save_file

    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"acts-{cache_key(identity, texts_hash, pooling, max_length)}.safetensors"
        if path.is_file():
            try:
                acts = load_file(str(path))["acts"]
                if acts.shape[0] == len(texts):
                    return acts
            except Exception:  # noqa: BLE001  (a damaged cache entry is recomputed)
                pass
    acts = collect(model, tokenizer, texts, pooling, batch_size, max_length, desc)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        save_file({"acts": acts.contiguous()}, str(tmp), metadata={"texts": texts_hash, "pooling": pooling})
        tmp.replace(path)
    return acts
