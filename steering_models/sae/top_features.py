"""Feature discovery: the SAE features most active at a text span of the questionnaire prompt.

Kang et al. take the questionnaire prompt without a role, read the SAE's feature activations at the
tokens of " your values" (per feature, the maximum over those tokens), and steer the 25 largest, one per
run. :func:`top_features` does exactly that for any model + sae-lens SAE; ``interpret`` adds, where
cheap, the tokens of a held-out corpus on which each feature fires most (a short interpretation).
The result file is read by the sweep (``sae_top_features: {features: FILE}``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from steering_models.positions import find_text_positions
from steering_models.sae.activations import SKIP_POSITIONS, block_outputs


def sae_layer(sae: Any) -> int:
    from steering_models.sae.ref import sae_hook_layer

    layer = sae_hook_layer({"metadata": sae.cfg.metadata.to_dict()})
    if layer is None:
        raise ValueError(f"the SAE's hook name {sae.cfg.metadata.hook_name!r} names no block "
                         "(expected blocks.N.hook_resid_post). Pass --layer.")
    return layer


@torch.no_grad()
def top_features(model: Any, tokenizer: Any, sae: Any, layer: int, prompt: str, text: str,
                 k: int) -> dict[str, Any]:
    """The ``k`` features with the largest activation (max over the tokens of ``text`` in ``prompt``)."""
    ids = tokenizer(prompt)["input_ids"]
    positions = find_text_positions(tuple(ids), text, tokenizer)
    if not positions:
        raise ValueError(f"--text {text!r} does not occur in the prompt (it starts {prompt[:80]!r}). "
                         "Fix --text or --prompt.")
    resid = block_outputs(model, layer, torch.tensor([ids]))[0, positions].float()  # [P, D]
    acts = sae.encode(resid.to(next(sae.parameters()).dtype)).float()  # [P, d_sae]
    peak = acts.max(0).values
    order = torch.argsort(peak, descending=True, stable=True)[:k]
    return {
        "prompt": prompt, "text": text, "layer": layer, "positions": positions,
        "tokens": [tokenizer.decode([ids[i]]) for i in positions],
        "features": [{"feature": int(f), "activation": float(peak[f]),
                      "per_token": [float(a) for a in acts[:, f]]} for f in order],
    }


@torch.no_grad()
def interpret(model: Any, tokenizer: Any, sae: Any, layer: int, windows: torch.Tensor, features: list[int],
              n_examples: int = 5, context: int = 8, batch_size: int = 8) -> dict[int, list[dict[str, Any]]]:
    """Per feature, the ``n_examples`` corpus tokens it fires on most, each with ``context`` tokens before it."""
    idx = torch.tensor(features)
    best: dict[int, list[tuple[float, int, int]]] = {f: [] for f in features}
    for s in tqdm(range(0, len(windows), batch_size), desc="top contexts", unit="batch"):
        x = block_outputs(model, layer, windows[s: s + batch_size])[:, SKIP_POSITIONS:]  # not the attention sink
        f = sae.encode(x.float().to(next(sae.parameters()).dtype)).float()[..., idx]  # [B, T-1, F]
        for j, feat in enumerate(features):
            vals, flat = f[..., j].flatten().topk(min(n_examples, f[..., j].numel()))
            for v, pos in zip(vals.tolist(), flat.tolist(), strict=True):
                if v > 0:
                    best[feat].append((v, s + pos // f.shape[1], pos % f.shape[1] + SKIP_POSITIONS))
    out: dict[int, list[dict[str, Any]]] = {}
    for feat, hits in best.items():
        hits.sort(reverse=True)
        out[feat] = [{"activation": round(v, 3), "token": tokenizer.decode([int(windows[w, p])]),
                      "context": tokenizer.decode(windows[w, max(0, p - context): p + 1].tolist())}
                     for v, w, p in hits[:n_examples]]
    return out


def write(result: dict[str, Any], out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    return out
