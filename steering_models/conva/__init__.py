"""ConVA (Jin et al., ACL 2025): value vectors from linear probes and gated minimal-perturbation steering.

``op: conva`` (:mod:`steering_models.conva.op`) is registered through the ``steering_models.ops`` entry-point
group (pyproject.toml), so the steering core never imports this package. Modules:
``data`` (the value pairs, from a user-named folder), ``activations`` (pooled residual embeddings,
cached), ``probes`` (per-layer logistic regression, layer selection), ``artifacts`` (save / load /
model checks), ``gates`` (g(x)), ``caa`` (the CAA baseline vector), ``fit`` and ``__main__``
(``python -m steering_models.conva fit ...``).
"""
