"""Residual-stream activations at one block's output, for SAE training and evaluation, cached as shards.

The forward pass stops after block ``layer`` (an exception raised by the block's hook), so collecting
layer 12 of 24 costs about half a full forward pass. Position 0 of every window is dropped: it is the
attention sink of these models, with a residual norm ~60x the others (1,250 vs ~20 at block 12 of the
embedded default); an SAE trained with it spends its capacity on one token. Shards of fp16 activations
are written as they are computed, so a killed collection resumes at the first missing shard.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from steering_models.model_helpers import find_blocks

SKIP_POSITIONS = 1  # the attention-sink position at the start of each window


class _Stop(Exception):
    pass


@torch.no_grad()
def block_outputs(model: torch.nn.Module, layer: int, input_ids: torch.Tensor) -> torch.Tensor:
    """``[B, T, d_model]`` output of block ``layer`` (``blocks.{layer}.hook_resid_post``); later blocks never run."""
    blocks = find_blocks(model)
    if not 0 <= layer < len(blocks):
        raise ValueError(f"SAE layer {layer} is out of range: the model has {len(blocks)} blocks "
                         f"(0-{len(blocks) - 1}). Fix --layer.")
    seen: dict[str, torch.Tensor] = {}

    def hook(module: Any, args: tuple, out: Any) -> None:
        seen["x"] = (out[0] if isinstance(out, tuple) else out).detach()
        raise _Stop

    handle = blocks[layer].register_forward_hook(hook)
    try:
        model(input_ids=input_ids.to(next(model.parameters()).device), use_cache=False)
    except _Stop:
        pass
    finally:
        handle.remove()
    return seen["x"]


def token_activations(model: torch.nn.Module, layer: int, windows: torch.Tensor, batch_size: int = 8,
                      bar: Any = None) -> torch.Tensor:
    """``[n_windows * (T - SKIP_POSITIONS), d_model]`` fp16 block outputs of every window's positions >= 1."""
    parts = []
    for s in range(0, len(windows), batch_size):
        x = block_outputs(model, layer, windows[s: s + batch_size])
        parts.append(x[:, SKIP_POSITIONS:].reshape(-1, x.shape[-1]).to(torch.float16).cpu())
        if bar is not None:
            bar.update(len(windows[s: s + batch_size]))
    return torch.cat(parts)


def collect_shards(model: torch.nn.Module, layer: int, windows: torch.Tensor, out_dir: Path,
                   batch_size: int = 8, windows_per_shard: int = 64, desc: str = "SAE activations") -> list[Path]:
    """:func:`token_activations` of ``windows`` as shards in ``out_dir``; resumes at missing shards."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    n_shards = (len(windows) + windows_per_shard - 1) // windows_per_shard
    paths = [out_dir / f"acts_{i:05d}.safetensors" for i in range(n_shards)]
    todo = [i for i, p in enumerate(paths) if not p.is_file()]
    bar = tqdm(total=len(windows), initial=(n_shards - len(todo)) * windows_per_shard, desc=desc, unit="window")
    for i in todo:
        chunk = windows[i * windows_per_shard: (i + 1) * windows_per_shard]
        acts = token_activations(model, layer, chunk, batch_size, bar)
        tmp = paths[i].with_suffix(".tmp")
        save_file({"acts": acts.contiguous()}, str(tmp))
        tmp.replace(paths[i])
    bar.close()
    return paths


def load_shards(paths: list[Path]) -> torch.Tensor:
    from safetensors.torch import load_file

    return torch.cat([load_file(str(p))["acts"] for p in paths])


def write_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
