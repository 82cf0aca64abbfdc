"""How good an SAE dictionary is on held-out activations: explained variance, L0, dead features.

* explained variance = 1 - sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 over held-out tokens (the
  definition sae-lens's evals use per batch, here over the whole held-out set);
* L0 = mean number of non-zero features per token;
* dead = features that never fire on any held-out token (fraction of d_sae).
"""

from __future__ import annotations

from typing import Any

import torch


@torch.no_grad()
def measure(sae: Any, acts: torch.Tensor, batch_size: int = 4096) -> dict[str, float]:
    """Quality of ``sae`` (a sae-lens SAE) on ``acts`` ``[n, d_in]`` (any float dtype)."""
    dtype = next(sae.parameters()).dtype
    mean = acts.float().mean(0)
    sse = sst = l0 = 0.0
    fired = torch.zeros(sae.cfg.d_sae, dtype=torch.bool)
    for s in range(0, len(acts), batch_size):
        x = acts[s: s + batch_size].to(dtype)
        f = sae.encode(x)
        x_hat = sae.decode(f).float()
        xf = x.float()
        sse += float(((xf - x_hat) ** 2).sum())
        sst += float(((xf - mean) ** 2).sum())
        active = f != 0
        l0 += float(active.sum())
        fired |= active.any(0).cpu()
    n = len(acts)
    return {
        "explained_variance": 1.0 - sse / sst,
        "mse_per_token": sse / n,
        "l0": l0 / n,
        "dead_fraction": float((~fired).float().mean()),
        "n_tokens": int(n),
    }
