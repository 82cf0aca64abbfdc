"""`op: conva` on tiny real models: Eq. 6 exactly, P_V >= P_0 after steering, bit-identical when the
gate is shut or P_V(e) >= P_0 already, layers in sequence, gates (none / probe / hf-classifier)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from conva_helpers import make_artifact
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from steering_models.conva.op import closed_form_eps
from steering_models.errors import SpecError
from steering_models.lm import SteeredHFLM
from steering_models.model_helpers import find_blocks

PROMPT = "Instruction:\nAnswer the Question according to your values.\n\nQuestion: Should I always be nice to others?\nThought:"


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def logits(lm: HFLM, text: str = PROMPT) -> torch.Tensor:
    ids = torch.tensor([lm.tok_encode(text)])
    with torch.no_grad():
        return lm._model_call(ids)[0]


def steered(model_dir: Path, spec) -> SteeredHFLM:
    return SteeredHFLM(pretrained=str(model_dir), steer=spec, device="cpu", batch_size=1)


def conva(art: Path, layers, **kw) -> list[dict]:
    return [{"layer": layers, "op": "conva", "artifact": str(art.parent), "value": "power", **kw}]


@pytest.fixture(scope="module")
def plain(tiny_llama_dir):
    return HFLM(pretrained=str(tiny_llama_dir), device="cpu", batch_size=1)


def test_closed_form_by_hand():
    # e=(1,0), w=(2,0), b=0: P_V(e)=sigmoid(2) < P_0=sigmoid(4); eps = (4 - 2)/(w.v = 2) = 1
    e, w, v = torch.tensor([[1.0, 0.0]]), torch.tensor([2.0, 0.0]), torch.tensor([1.0, 0.0])
    p0 = 1 / (1 + math.exp(-4))
    assert torch.allclose(closed_form_eps(e, w, 0.0, v, p0), torch.tensor([1.0], dtype=torch.float64))
    # already above P_0 (e=(3,0): wᵀe=6 > 4): eps = 0
    assert closed_form_eps(torch.tensor([[3.0, 0.0]]), w, 0.0, v, p0).item() == 0.0
    # gate shut: eps = 0 even below P_0
    assert closed_form_eps(e, w, 0.0, v, p0, torch.tensor([False])).item() == 0.0


def capture(lm: HFLM, layers: list[int]) -> dict[str, dict[int, torch.Tensor]]:
    """Block outputs before ConVA's hook ("before") and the next block's input ("after")."""
    blocks = find_blocks(lm.model)
    seen: dict[str, dict[int, torch.Tensor]] = {"before": {}, "after": {}}
    handles = []
    for layer in layers:
        def out_hook(module, args, output, layer=layer):
            seen["before"][layer] = (output[0] if isinstance(output, tuple) else output)[0].clone()

        def in_hook(module, args, kwargs, layer=layer):
            seen["after"][layer] = (args[0] if args else kwargs["hidden_states"])[0].clone()

        handles.append(blocks[layer].register_forward_hook(out_hook))  # registered first: runs before ConVA's
        handles.append(blocks[layer + 1].register_forward_pre_hook(in_hook, with_kwargs=True))
    try:
        logits(lm)
    finally:
        for h in handles:
            h.remove()
    return seen


def test_eps_is_the_closed_form_and_reaches_p0(tmp_path, tiny_llama_dir, plain):
    p0 = 0.8
    # bias so that about half of the prompt's positions are below P_0 at layer 0
    art0 = make_artifact(tiny_llama_dir, tmp_path / "probe0")
    import steering_models.conva.artifacts as A
    w0 = A.load(art0).tensors["w"][0].double()
    unsteered = capture(plain, [0])["before"][0].double()
    b = float(logit(p0) - (unsteered @ w0).median())
    art = make_artifact(tiny_llama_dir, tmp_path / "probe", b=b)
    tensors = A.load(art).tensors
    lm = steered(tiny_llama_dir, conva(art, [0, 1], p0=p0, gate={"type": "probe"}))
    seen = capture(lm, [0, 1])
    assert torch.equal(seen["before"][0], unsteered.float())  # nothing upstream of layer 0 changed
    for layer in (0, 1):
        w, v = tensors["w"][layer].double(), tensors["v"][layer].double()
        e, after = seen["before"][layer].double(), seen["after"][layer].double()
        b_l = float(tensors["b"][layer])  # the stored (float32) bias
        z = e @ w + b_l
        need = torch.sigmoid(z) < p0
        eps = torch.where(need, (logit(p0) - z) / 0.5, torch.zeros_like(z))  # wᵀv = ‖w‖ = 0.5
        assert torch.allclose(after, e + eps[:, None] * v, atol=1e-5)
        assert torch.equal(seen["after"][layer][~need], seen["before"][layer][~need])  # untouched
        assert (torch.sigmoid(after @ w + b_l) >= p0 - 1e-6).all()  # P_V(e) >= P_0 everywhere now
        if layer == 0:
            assert need.any() and (~need).any()
    # layer 1 saw layer 0's steering: its input differs from the unsteered run's
    assert not torch.equal(seen["before"][1], capture(plain, [1])["before"][1])


@pytest.mark.parametrize("case", ["gate-shut", "already-above-p0"])
def test_no_change_is_bit_identical(case, tmp_path, tiny_llama_dir, plain):
    if case == "gate-shut":
        art = make_artifact(tiny_llama_dir, tmp_path, gate_b=-50.0)
        spec = conva(art, [0, 1, 2], p0=0.999, g0=0.5, gate={"type": "probe"})
    else:
        art = make_artifact(tiny_llama_dir, tmp_path, b=1000.0)
        spec = conva(art, [0, 1, 2], p0=0.999, gate="none")
    assert torch.equal(logits(steered(tiny_llama_dir, spec)), logits(plain))


def test_gate_open_changes_and_generation_runs(tmp_path, tiny_llama_dir, plain):
    art = make_artifact(tiny_llama_dir, tmp_path, gate_b=50.0)
    lm = steered(tiny_llama_dir, conva(art, [0, 1], p0=0.999, g0=0.5))
    assert not torch.allclose(logits(lm), logits(plain))
    req = Instance("generate_until", {}, (PROMPT, {"until": ["\n\n"], "max_gen_toks": 4, "do_sample": False}), 0)
    assert isinstance(lm.generate_until([req])[0], str)
    shut = steered(tiny_llama_dir, conva(make_artifact(tiny_llama_dir, tmp_path / "s", gate_b=-50.0), [0, 1],
                                         p0=0.999, g0=0.5))
    assert shut.generate_until([req]) == plain.generate_until([req])


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory, tiny_tokenizer) -> Path:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tiny_tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, num_labels=2, id2label={0: "value", 1: "other"},
                        label2id={"value": 0, "other": 1})
    out = tmp_path_factory.mktemp("gate-clf")
    BertForSequenceClassification(config).eval().save_pretrained(out)
    tiny_tokenizer.save_pretrained(out)
    return out


def test_hf_classifier_gate(tmp_path, tiny_llama_dir, tiny_classifier, plain):
    art = make_artifact(tiny_llama_dir, tmp_path)
    gate = {"type": "hf-classifier", "model": str(tiny_classifier), "label": "value"}
    opened = steered(tiny_llama_dir, conva(art, [0, 1], p0=0.999, g0=0.0, gate=gate))  # score > 0 always
    assert not torch.allclose(logits(opened), logits(plain))
    shut = steered(tiny_llama_dir, conva(art, [0, 1], p0=0.999, g0=1.0, gate=gate))  # score > 1 never
    assert torch.equal(logits(shut), logits(plain))
    op = shut.steer_spec.interventions[0].op
    assert op.gate_counts == {"open": 0, "total": 1}
    bad = steered(tiny_llama_dir, conva(art, [0], p0=0.999, gate={**gate, "label": "nope"}))
    with pytest.raises(ValueError, match="has no label 'nope'"):
        logits(bad)


@pytest.mark.parametrize("params, message", [
    ({"p0": 1.5}, "strictly between 0 and 1"),
    ({"gate": {"type": "deberta"}}, "is not a ConVA gate"),
    ({"gate": {"type": "hf-classifier"}}, "gate.model"),
    ({"strength": 3}, "is not a field of op `conva`"),
    ({"value": "security"}, "holds value 'power'"),
])
def test_bad_spec_fields_are_clear(params, message, tmp_path, tiny_llama_dir):
    art = make_artifact(tiny_llama_dir, tmp_path)
    spec = [{"layer": 0, "op": "conva", "artifact": str(art), **params}]
    with pytest.raises(SpecError, match=message):
        steered(tiny_llama_dir, spec)


def test_missing_artifact(tmp_path, tiny_llama_dir):
    with pytest.raises(SpecError, match="does not exist"):
        steered(tiny_llama_dir, conva(tmp_path / "nothing" / "power.json", [0]))


def test_default_gate_thresholds(tmp_path, tiny_llama_dir):
    """The probe gate decides at its own 0.5; Table 16's g0 (DeBERTa scores) is the hf-classifier's."""
    from steering_models.spec import load_spec

    art = make_artifact(tiny_llama_dir, tmp_path)

    def g0(**kw) -> float:
        return load_spec(conva(art, [0], **kw)).interventions[0].op.g0

    assert g0(gate={"type": "probe"}) == 0.5
    assert g0(gate={"type": "hf-classifier", "model": "x"}) == 0.06  # Table 16, power
    assert g0(gate={"type": "probe"}, g0=0.2) == 0.2


def test_the_op_comes_through_its_entry_point_only_when_named():
    """The steering core never imports ConVA: `op: conva` is found in the `steering_models.ops` entry-point
    group (pyproject.toml) and imported the first time a steering file names it."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from steering_models.errors import SpecError\n"
        "from steering_models.spec import SteerSpec\n"
        "try:\n"
        "    SteerSpec.from_dict([{'layer': 0, 'op': 'nope'}], where='steer.yaml')\n"
        "except SpecError as e:\n"
        "    print('error:', e)\n"
        "print('imported before:', 'steering_models.conva' in sys.modules)\n"
        "from steering_models.ops import get_op\n"
        "cls = get_op('conva', 'steer.yaml')\n"
        "print('op:', cls.__module__, cls.__name__, cls.position_local)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert "expected one of add, clamp_feature, conva, scale_feature" in out, out
    assert "imported before: False" in out, out
    assert "op: steering_models.conva.op ConvaOp False" in out, out
