"""ConVA on the embedded default model (slow): fit one value on 20 pairs, then steer one prompt."""

from __future__ import annotations

import pytest
import torch

from steering_models.conva import artifacts
from steering_models.conva.__main__ import main
from steering_models.lm import SteeredHFLM

pytestmark = pytest.mark.slow

PROMPT = "Should Emma use her knowledge strategically to keep her influence over the team?"


def test_fit_and_steer_power_on_default_model(tmp_path):
    out = tmp_path / "conva"
    assert main(["fit", "--pretrained", "default", "--values", "power", "--pairs", "20", "--gate-negatives", "none",
                 "--no-unembed", "--cache-dir", str(tmp_path / "cache"), "--out", str(out)]) == 0
    art = artifacts.load(out, "power")
    assert art.n_layers == 24 and art.d_model == 896 and all(x < 19 for x in art.layers)
    assert art.model["id"].startswith("default")

    def last_logits(spec) -> torch.Tensor:
        lm = SteeredHFLM(pretrained="default", steer=spec, device="cpu", batch_size=1)
        with torch.no_grad():
            return lm._model_call(torch.tensor([lm.tok_encode(PROMPT)]))[0, -1]

    base = last_logits(None)
    steer = {"layer": art.layers, "op": "conva", "artifact": str(out), "value": "power", "gate": "none"}
    assert not torch.allclose(last_logits([{**steer, "p0": 0.999}]), base)
    # fitted with --gate-negatives none: the probe gate is refused, before the model loads
    from steering_models.errors import SpecError

    with pytest.raises(SpecError, match="fitted without one"):
        last_logits([{**steer, "gate": {"type": "probe"}}])
