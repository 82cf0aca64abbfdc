"""What steering_models reads of a HuggingFace causal LM: its config, its decoder blocks, which model it is.

* ``text_config``: the decoder's config (multimodal configs nest it); ``model_config``: the config of
  ``pretrained=`` without loading weights (validation before weights load).
* ``find_blocks``: the decoder blocks the steering hooks attach to.
* ``model_identity`` / ``named_identity`` / ``identity_mismatch``: which model an artifact belongs to,
  decided from the config and the weights' files (no model load): the architecture fields that make a
  value vector meaningless on another model (``model_type``, ``hidden_size`` = d_model,
  ``num_hidden_layers``, ``vocab_size``) and, when the model is a local folder of safetensors, a
  fingerprint of the first rows of its input embedding (so a base model and its chat fine-tune, same
  shapes, are told apart).
* ``load_lm``: model, tokenizer and identity for the tools that run a model outside lm-eval (SAE training,
  ConVA fitting).

Imports only the leaves of steering_models (``default_model``, ``vectors``) and the ground floor.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import torch

FINGERPRINT_ROWS = 8


def text_config(config: Any) -> Any:
    """The decoder's config (multimodal configs nest it)."""
    getter = getattr(config, "get_text_config", None)
    return getter() if callable(getter) else config


def model_config(pretrained: Any, hf_kwargs: dict[str, Any]) -> Any:
    """The HF config of ``pretrained`` (a loaded model's own, or read from the hub id / folder with
    ``revision`` and ``trust_remote_code`` of ``hf_kwargs``), without loading weights."""
    if not isinstance(pretrained, str):
        return pretrained.config
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(
        pretrained,
        revision=hf_kwargs.get("revision", "main"),
        trust_remote_code=bool(hf_kwargs.get("trust_remote_code", False)),
    )


def find_blocks(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The decoder blocks of a HF causal LM (the ModuleList as long as the model's layer count)."""
    import torch

    n_layers = text_config(model.config).num_hidden_layers
    candidates = [(name, mod) for name, mod in model.named_modules()
                  if isinstance(mod, torch.nn.ModuleList) and len(mod) == n_layers]
    if not candidates:
        raise RuntimeError(f"cannot find the {n_layers} decoder blocks of {type(model).__name__}")
    return min(candidates, key=lambda c: c[0].count("."))[1]


def embedding_fingerprint(name_or_path: str) -> str | None:
    folder = Path(name_or_path)
    if not folder.is_dir() or not any(folder.glob("*.safetensors")):
        return None
    from steering_models.vectors import embedding_rows

    try:
        rows = embedding_rows(folder, list(range(FINGERPRINT_ROWS)))
    except Exception:  # noqa: BLE001  (an unusual checkpoint layout: fall back to the config fields)
        return None
    return hashlib.sha256(rows.float().numpy().round(5).tobytes()).hexdigest()[:16]


def model_identity(config: Any) -> dict[str, Any]:
    cfg = text_config(config)
    name = str(getattr(config, "name_or_path", "") or getattr(config, "_name_or_path", ""))
    return {
        "id": name,
        "model_type": str(getattr(cfg, "model_type", "")),
        "hidden_size": int(cfg.hidden_size),
        "num_hidden_layers": int(cfg.num_hidden_layers),
        "vocab_size": int(getattr(cfg, "vocab_size", 0) or 0),
        "embedding_fingerprint": embedding_fingerprint(name) if name else None,
    }


def named_identity(pretrained: object, config: Any) -> dict[str, Any]:
    """``model_identity`` with the embedded model's name as its id when ``pretrained`` names one."""
    from lm_eval_tasks.embedded_models import embedded_model

    identity = model_identity(config)
    embedded = embedded_model(pretrained)
    if embedded is not None:
        identity["id"] = f"{embedded.name} ({embedded.model_id})"
    return identity


def identity_mismatch(saved: dict[str, Any], current: dict[str, Any]) -> str | None:
    """None if ``current`` is the model ``saved`` was fitted on, else the reason (one clause)."""
    if saved["hidden_size"] != current["hidden_size"]:
        return (f"was fitted on a model with d_model={saved['hidden_size']} but this model's hidden size "
                f"is {current['hidden_size']}")
    for key in ("model_type", "num_hidden_layers", "vocab_size"):
        if saved.get(key) != current.get(key):
            return (f"was fitted on another model ({saved['id']!r}: {key}={saved.get(key)!r}, "
                    f"this model has {current.get(key)!r})")
    a, b = saved.get("embedding_fingerprint"), current.get("embedding_fingerprint")
    if a and b and a != b:
        return (f"was fitted on another model ({saved['id']!r}): the input embeddings differ from "
                f"{current['id']!r}'s")
    return None


class LoadedLM(NamedTuple):
    model: Any  # in eval mode
    tokenizer: Any
    identity: dict[str, Any]  # named_identity


def load_lm(pretrained: str, device: str = "cpu", dtype: str = "float32") -> LoadedLM:
    """The model, tokenizer and identity of ``pretrained`` (``default``: the embedded model)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from steering_models.default_model import resolve_pretrained

    path = str(resolve_pretrained(pretrained))
    config = AutoConfig.from_pretrained(path)
    identity = named_identity(pretrained, config)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype)).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    return LoadedLM(model, tokenizer, identity)
