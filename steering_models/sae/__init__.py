"""SAEs for steering: the SAE shipped for the embedded default model, its training, feature discovery.

``python -m steering_models.sae train|top-features|quality``. The shipped SAE (``SHIPPED_SAE``) is in
sae-lens's on-disk format: ``SAE.load_from_disk(shipped_sae_dir())`` reads it, and a steering file or a
sweep names it ``sae: default``.
"""

from __future__ import annotations

from pathlib import Path

SHIPPED_SAE = "qwen2.5-coder-0.5b-instruct-blocks.12.hook_resid_post-topk"
DEFAULT_ALIASES = ("default",)


def shipped_sae_dir() -> Path:
    """The folder of the SAE trained for the embedded default model (shipped inside the package)."""
    return Path(__file__).parent / "data" / SHIPPED_SAE
