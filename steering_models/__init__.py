"""`steered-hf`: a HuggingFace model for lm-eval with steering (SAE features, vectors, ConVA).

Importing this package is cheap (no torch). The lm-eval model lives in ``steering_models.lm``;
the steering file format in ``steering_models.spec``.
"""

__version__ = "0.1.0"
