"""The piece ``steered-hf`` (``lm.SteeredHFLM``) and the sweep's ``SweepLM`` share: HFLM with steering specs.

* before any weights load: ``pretrained=default`` resolves to the embedded model and every non-empty spec
  is checked against the model's config (layers, shapes, feature ids);
* after: the specs are bound to the model (``hooks.SteeringRuntime``), and a model that is not
  decoder-only is refused with the subclass's sentence;
* ``steer_spec`` is the spec the next lm-eval call is for: ``steering_info()`` puts it into the results
  JSON (``config.steering``) and ``set_cache_hook`` keys lm-eval's ``--use_cache`` database by it.

How requests are scored and generated under the specs is each subclass's own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from lm_eval.models.huggingface import HFLM

from steering_models.default_model import resolve_pretrained
from steering_models.errors import SpecError
from steering_models.hooks import SteeringRuntime
from steering_models.model_helpers import model_config
from steering_models.spec import SteerSpec

log = logging.getLogger(__name__)


class SteeringHFLM(HFLM):
    """HFLM whose model carries ``specs`` (module docstring). ``not_causal`` is the sentence raised when
    the loaded model is not decoder-only (None: no such check)."""

    def __init__(self, pretrained: Any, specs: Sequence[SteerSpec], not_causal: str | None, **kwargs: Any) -> None:
        specs = tuple(specs) or (SteerSpec(),)
        pretrained = resolve_pretrained(pretrained)
        if any(not spec.is_empty for spec in specs):
            config = model_config(pretrained, kwargs)
            for spec in specs:
                spec.validate(config, kwargs.get("dtype"))
        super().__init__(pretrained=pretrained, **kwargs)
        if not_causal is not None and self.backend != "causal":
            raise SpecError(not_causal.format(pretrained=pretrained, backend=self.backend))
        self.specs = specs
        self.steer_spec = specs[0]
        self.steering = SteeringRuntime(self.model, specs, self.tokenizer)

    def steering_info(self) -> dict[str, Any]:
        """``config.steering`` of the results JSON: the current spec's name, hash, tags, file and fields."""
        spec = self.steer_spec
        return {"name": spec.name, "hash": spec.fingerprint(), "meta": dict(spec.meta),
                "path": spec.path, "spec": spec.to_dict()}

    def get_model_info(self) -> dict:
        info = super().get_model_info()
        info["steering"] = self.steering_info()
        return info

    def set_cache_hook(self, cache_hook: Any) -> None:
        """lm-eval's ``--use_cache`` entries of a steered spec go to a table named after its fingerprint."""
        dbdict = getattr(cache_hook, "dbdict", None)
        spec = getattr(self, "steer_spec", None)
        if dbdict is not None and spec is not None and not spec.is_empty:
            table = f"steered_{spec.fingerprint()[:32]}"
            try:  # sqlitedict builds each query from .tablename: switch the shared db to our table
                dbdict.conn.execute(f'CREATE TABLE IF NOT EXISTS "{table}" (key TEXT PRIMARY KEY, value BLOB)')
                dbdict.conn.commit()
                dbdict.tablename = table
            except AttributeError as e:
                raise SpecError("lm-eval's --use_cache database could not be keyed by the steering spec "
                                f"({e}). Run without --use_cache.") from e
            log.info("steered-hf: --use_cache entries go to table %s of %s", table, dbdict.filename)
        super().set_cache_hook(cache_hook)
