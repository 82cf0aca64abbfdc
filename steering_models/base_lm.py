"""The piece ``steered-hf`` (``lm.SteeredHFLM``) and the sweep's ``SweepLM`` share: HFLM with steering specs.

* before any weights load: ``pretrained=default`` resolves to the embedded model and every non-empty spec
  is checked against the model's config (layers, shapes, feature ids);
* after: the specs are bound to the model (``hooks.SteeringRuntime``), and a model that is not
  decoder-only is refused with the subclass's sentence;
* ``steer_spec`` is the spec the next lm-eval call is for: ``steering_info()`` puts it into the results
  JSON (``config.steering``) and ``set_cache_hook`` keys lm-eval's ``--use_cache`` database by it;
* generation: ``gen_engine=ragged`` (default) or ``hf`` and ``gen_share_prefix`` (model args), and
  ``generator()``, the ragged engine over the model and all its specs (steering_models.generation), which
  ``ragged_generate`` uses for greedy requests; ``dtype=auto`` given explicitly picks bfloat16 only where the
  device computes it natively (steering_models.precision).

How requests are scored and generated under the specs is each subclass's own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from lm_eval.models.huggingface import HFLM
from tqdm import tqdm

from steering_models.default_model import resolve_pretrained
from steering_models.errors import SpecError
from steering_models.gen_requests import engine_supports, generate_texts, model_blocks_engine
from steering_models.generation import RaggedGenerator
from steering_models.hooks import SteeringRuntime
from steering_models.model_helpers import model_config
from steering_models.precision import resolve_dtype
from steering_models.spec import SteerSpec

log = logging.getLogger(__name__)


class SteeringHFLM(HFLM):
    """HFLM whose model carries ``specs`` (module docstring). ``not_causal`` is the sentence raised when
    the loaded model is not decoder-only (None: no such check)."""

    def __init__(self, pretrained: Any, specs: Sequence[SteerSpec], not_causal: str | None,
                 gen_engine: str = "ragged", gen_share_prefix: bool = True, gen_share_trunk: bool = False,
                 **kwargs: Any) -> None:
        if gen_engine not in ("ragged", "hf"):
            raise SpecError(f"model argument `gen_engine`={gen_engine!r} is not a generation engine: expected "
                            "ragged or hf. Fix `gen_engine` in --model_args.")
        if kwargs.get("dtype") == "auto":
            kwargs["dtype"] = resolve_dtype("auto", kwargs.get("device"))
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
        self.gen_engine, self.gen_share_prefix = gen_engine, bool(gen_share_prefix)
        self.gen_share_trunk = bool(gen_share_trunk)  # several specs (a sweep): their prefixes share a trunk
        self._generator: RaggedGenerator | None = None

    # ------------------------------------------------------------------ generation
    def generator(self) -> RaggedGenerator:
        """The ragged generation engine over this model and all its specs (built once)."""
        if self._generator is None:
            bs = self.batch_size if isinstance(self.batch_size, int) and self.batch_size > 0 \
                else int(self._detect_batch_size())
            eos = self.model.generation_config.eos_token_id
            eos = self.tokenizer.eos_token_id if eos is None else eos
            pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
            self._generator = RaggedGenerator(
                self.model, self.tokenizer, self.steering, batch_size=bs,
                eos_token_ids=[eos] if isinstance(eos, int) else list(eos or ()), pad_token_id=pad,
                share_prefix=self.gen_share_prefix, share_trunk=self.gen_share_trunk,
                autocast=lambda: torch.autocast(device_type=self.device.type, dtype=self.mixed_precision_dtype,
                                                enabled=self.mixed_precision_dtype is not None))
        return self._generator

    def engine_takes(self, gen_kwargs: dict[str, Any]) -> bool:
        """Whether the ragged engine answers a request with these generation kwargs (greedy, engine on, and no
        logits processor in the model's generation config)."""
        if self.gen_engine != "ragged":
            return False
        blocked = model_blocks_engine(self.model.generation_config)
        if blocked:
            log.info("generation uses model.generate: %s", blocked)
            return False
        return engine_supports(gen_kwargs)

    def ragged_generate(self, items: Sequence[tuple[int, str, dict[str, Any]]], disable_tqdm: bool = False
                        ) -> list[str]:
        """The texts of ``(config, context, gen_kwargs)`` items (all ``engine_takes``) from the ragged engine."""
        n_configs = len({config for config, _, _ in items})
        with tqdm(total=len(items), disable=disable_tqdm or self.rank != 0,
                  desc=f"generate_until, ragged ({n_configs} config{'s' if n_configs > 1 else ''})") as pbar:
            return generate_texts(self, items, self.generator(), pbar=pbar)

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
