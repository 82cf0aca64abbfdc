"""ConVA (Jin et al., ACL 2025): value vectors from linear probes and gated minimal-perturbation steering.

Importing this package registers ``op: conva`` (see :mod:`steering_models.conva.op`). Modules:
``data`` (the value pairs, from a user-named folder), ``activations`` (pooled residual embeddings,
cached), ``probes`` (per-layer logistic regression, layer selection), ``artifacts`` (save / load /
model checks), ``gates`` (g(x)), ``caa`` (the CAA baseline vector), ``fit`` and ``__main__``
(``python -m steering_models.conva fit ...``).
"""

from steering_models.conva import op as _op  # noqa: F401  (registers `op: conva`)
