"""`python -m steering_models.conva fit` on a tiny model with synthetic value pairs, and one run of
`op: conva` through lm_eval.simple_evaluate with steered-hf."""

from __future__ import annotations

import csv
from pathlib import Path

import lm_eval
import pytest
import torch
import yaml
from lm_eval.tasks import TaskManager
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from steering_models.calls import RowLayout
from steering_models.conva import artifacts
from steering_models.conva.__main__ import main
from steering_models.lm import SteeredHFLM
from steering_models.model_helpers import find_blocks

CONTEXTS = ["Answer the Question", "Should I always be nice to others", "Now it is your turn",
            "Refer to the format of the following Examples", "First write your Thought about the question",
            "Being nice to others may make me feel more", "Should I always be a happy person",
            "Here is your trait", "live in a good mood", "Answer the question with yes or no",
            "Instruction", "Thought about the Examples"]


def pairs(n: int) -> list[tuple[str, str]]:
    """Same context, different ending: positives end with the value words, negatives do not."""
    return [(f"{CONTEXTS[i % 12]} {i} according to your values.", f"{CONTEXTS[i % 12]} {i} in a good mood.")
            for i in range(n)]


def block_outputs(model, tok, text: str) -> list[torch.Tensor]:
    """Every block's output [T, D] for one text alone (no padding at all)."""
    outs: list[torch.Tensor] = []
    handles = [b.register_forward_hook(lambda m, a, o: outs.append((o[0] if isinstance(o, tuple) else o)[0]))
               for b in find_blocks(model)]
    try:
        with torch.no_grad():
            model(**tok(text, return_tensors="pt"))
    finally:
        for h in handles:
            h.remove()
    return outs


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shared")
    conva = root / "conva" / "value"
    conva.mkdir(parents=True)
    for value, n in (("power", 30), ("security", 5)):
        with open(conva / f"{value}_context_controlled.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["question_1", "question_2"])
            writer.writerows(pairs(n))
    (conva / "test_power_new.csv").write_text("text\nShould I?\n")
    mmlu = root / "mmlu" / "test"
    mmlu.mkdir(parents=True)
    with open(mmlu / "anatomy_test.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["question", "choice0", "choice1", "choice2", "choice3", "answer"])
        writer.writerows([[f"What is {i} plus {i}?", "a", "b", "c", "d", 0] for i in range(40)])
    return root / "conva"


def fit(tiny_llama_dir: Path, data_dir: Path, out: Path, *extra: str) -> int:
    return main(["fit", "--pretrained", str(tiny_llama_dir), "--values", "power", "--data-dir", str(data_dir),
                 "--out", str(out), "--exclude-last", "0", "--cache-dir", str(out / "cache"),
                 "--gate-negatives-n", "40", *extra])


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, tiny_llama_dir, data_dir) -> Path:
    out = tmp_path_factory.mktemp("conva-out")
    assert fit(tiny_llama_dir, data_dir, out) == 0
    return out


def test_fit_writes_artifact_vectors_and_steering_files(fitted, tiny_llama_dir):
    art = artifacts.load(fitted, "power")
    assert art.layers and all(float(art.tensors["test_acc"][i]) > 0.9 for i in art.layers)
    assert art.has_gate and art.settings["n_pairs"] == 30 and art.settings["pooling"] == "last"
    for name in ("steer_conva_power.yaml", "steer_conva_nogate_power.yaml", "steer_caa_power.yaml"):
        SteeredHFLM(pretrained=str(tiny_llama_dir), steer=str(fitted / name), device="cpu")  # parses + validates
    caa_spec = yaml.safe_load((fitted / "steer_caa_power.yaml").read_text())
    assert caa_spec["interventions"][0]["op"] == "add"
    unembed = load_file(str(fitted / "unembed.safetensors"))
    assert unembed["W_U"].shape[1] == 64 and unembed["norm_scale"].shape == (64,)
    assert list((fitted / "cache").glob("acts-*.safetensors"))


def test_caa_vector_is_the_hand_computed_mean_difference(fitted, tiny_llama_dir):
    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir), dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(str(tiny_llama_dir))

    def last_token_outputs(text: str) -> list[torch.Tensor]:
        return [o[-1] for o in block_outputs(model, tok, text)]

    data = pairs(30)
    pos = torch.stack([torch.stack(last_token_outputs(p)) for p, _ in data])
    neg = torch.stack([torch.stack(last_token_outputs(n)) for _, n in data])
    want = pos.sum(0) / 30 - neg.sum(0) / 30
    vectors = load_file(str(fitted / "caa_power.safetensors"))
    for layer in range(3):
        assert torch.allclose(vectors[f"layer_{layer}"], want[layer], atol=1e-4)


def test_too_few_pairs_is_a_clear_error(tiny_llama_dir, data_dir, tmp_path, capsys):
    code = main(["fit", "--pretrained", str(tiny_llama_dir), "--values", "security", "--data-dir", str(data_dir),
                 "--out", str(tmp_path), "--no-cache"])
    assert code == 2
    assert "has 5 usable pairs" in capsys.readouterr().err


def test_no_layer_passing_is_a_clear_error(tiny_llama_dir, data_dir, tmp_path, capsys):
    assert fit(tiny_llama_dir, data_dir, tmp_path, "--threshold", "1.0", "--no-unembed") == 1
    assert "no layer has probe test accuracy > 1.0" in capsys.readouterr().out
    assert not (tmp_path / "power.json").exists()


def test_conva_through_simple_evaluate(fitted, tiny_llama_dir, tiny_task_dir):
    results = lm_eval.simple_evaluate(
        model="steered-hf", model_args={"pretrained": str(tiny_llama_dir), "steer": str(fitted / "steer_conva_power.yaml")},
        tasks=["tiny_values_ll", "tiny_values_gen"], task_manager=TaskManager(include_path=str(tiny_task_dir)),
        batch_size=2, device="cpu")
    steering = results["config"]["steering"]
    assert "acc,none" in results["results"]["tiny_values_ll"]
    assert "exact_match,none" in results["results"]["tiny_values_gen"]
    assert steering["name"] == "conva-power" and steering["meta"] == {"kind": "conva", "value": "power", "gate": "probe"}
    assert steering["spec"]["interventions"][0]["op"] == "conva"


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_batched_activations_equal_one_text_at_a_time(pooling, tiny_llama_dir):
    from steering_models.conva.activations import collect

    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir), dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(str(tiny_llama_dir))
    texts = ["Answer the Question according to your values.", "Now", "Should I always be nice to others? yes",
             "Thought:", "Here is your trait"]
    got = collect(model, tok, texts, pooling=pooling, batch_size=2)
    assert got.shape == (5, 3, 64)
    for i, text in enumerate(texts):
        outs = block_outputs(model, tok, text)
        want = torch.stack([o[-1] if pooling == "last" else o.mean(0) for o in outs])
        assert torch.allclose(got[i], want, atol=1e-4), text


def test_gate_check_on_the_real_task_prompts(fitted, tiny_llama_dir, tmp_path, capsys):
    out = tmp_path / "gc"
    assert main(["gate-check", "--pretrained", str(tiny_llama_dir), "--artifacts", str(fitted), "--values", "power",
                 "--n", "1", "--max-length", "2000", "--out", str(out)]) == 0
    table = __import__("pandas").read_csv(out / "gate_check.csv")
    assert set(table["task"]) == {"schwartz_dilemmas_power", "mmlu_conva4"}
    assert len(table) == 1 + 4  # one dilemma, one question of each of the four MMLU subjects
    assert ((table["g"] > 0.5) == table["open"]).all()  # the probe gate's default g0
    assert "gate_accuracy" in capsys.readouterr().out


@pytest.mark.slow  # ~30 s; gate-check itself is covered by test_gate_check_on_the_real_task_prompts
def test_gate_check_offset_reads_the_prompts_after_the_runs_limit(fitted, tiny_llama_dir, tmp_path, capsys):
    """--offset 1 --n 1 scores exactly the second prompt of each task of an --n 2 check, and the printed
    separating interval is (highest unrelated g, lowest related g) of its table."""
    import pandas as pd

    def check(out, *extra):
        assert main(["gate-check", "--pretrained", str(tiny_llama_dir), "--artifacts", str(fitted), "--values",
                     "power", "--max-length", "2000", "--out", str(out), *extra]) == 0
        return pd.read_csv(out / "gate_check.csv"), capsys.readouterr().out

    both, _ = check(tmp_path / "two", "--n", "2")
    later, printed = check(tmp_path / "later", "--n", "1", "--offset", "1")
    dilemmas = both[both["task"] != "mmlu_conva4"]["g"].tolist()
    mmlu = both[both["task"] == "mmlu_conva4"]["g"].tolist()  # subject by subject, 2 questions each
    assert later[later["task"] != "mmlu_conva4"]["g"].tolist() == pytest.approx([dilemmas[1]], abs=1e-6)
    assert later[later["task"] == "mmlu_conva4"]["g"].tolist() == pytest.approx(mmlu[1::2], abs=1e-6)
    assert (later["offset"] == 1).all()
    hi, lo = later.loc[~later["value_related"], "g"].max(), later.loc[later["value_related"], "g"].min()
    if hi < lo:
        assert f"any g0 in ({hi:.4f}, {lo:.4f})" in printed
    else:
        assert f"no single g0 separates these prompts: an unrelated prompt has g = {hi:.4f}" in printed


def test_fit_writes_g0_into_the_gated_steering_file(fitted, tiny_llama_dir, data_dir, tmp_path, capsys):
    assert fit(tiny_llama_dir, data_dir, tmp_path, "--g0", "0.08", "--no-unembed") == 0
    spec = yaml.safe_load((tmp_path / "steer_conva_power.yaml").read_text())
    assert spec["interventions"][0]["g0"] == 0.08 and spec["meta"]["g0"] == 0.08
    assert "g0" not in yaml.safe_load((tmp_path / "steer_conva_nogate_power.yaml").read_text())["interventions"][0]
    lm = SteeredHFLM(pretrained=str(tiny_llama_dir), steer=str(tmp_path / "steer_conva_power.yaml"), device="cpu")
    assert lm.steer_spec.interventions[0].op.g0 == 0.08
    # a threshold outside [0, 1) is refused before any model loads (the model path does not exist)
    assert main(["fit", "--pretrained", str(tmp_path / "no-model"), "--values", "power", "--data-dir",
                 str(data_dir), "--out", str(tmp_path / "x"), "--g0", "1.5"]) == 2
    assert "g0=1.5 is not a gate threshold in [0, 1)" in capsys.readouterr().err


def test_gate_fitted_on_chat_templated_texts(fitted, tiny_llama_dir, data_dir, tmp_path):
    assert fit(tiny_llama_dir, data_dir, tmp_path, "--gate-format", "chat", "--no-unembed") == 0
    chat, raw = artifacts.load(tmp_path, "power"), artifacts.load(fitted, "power")
    assert chat.settings["gate_format"] == "chat" and raw.settings["gate_format"] == "raw"
    assert torch.equal(chat.tensors["w"], raw.tensors["w"])  # the value probes do not change
    assert not torch.equal(chat.tensors["gate_w"], raw.tensors["gate_w"])


def test_steering_gate_reads_the_mean_over_the_prompt(fitted, tiny_llama_dir):
    """The probe gate inside `op: conva` scores g = sigmoid(gate_w . mean(block output over the prompt's
    tokens) + gate_b) at the lowest steered layer (hand-computed here), as `fit` trains it by default."""
    art = artifacts.load(fitted, "power")
    assert art.settings["gate_pooling"] == "mean"
    text = "Should I always be nice to others? Question: Is money the most important thing?"
    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir)).eval()
    tok = AutoTokenizer.from_pretrained(str(tiny_llama_dir))
    layer = min(art.layers)
    pooled = block_outputs(model, tok, text)[layer].double().mean(0)
    want = torch.sigmoid(pooled @ art.tensors["gate_w"][layer].double() + float(art.tensors["gate_b"][layer]))

    lm = SteeredHFLM(pretrained=str(tiny_llama_dir), steer=str(fitted / "steer_conva_power.yaml"), device="cpu",
                     batch_size=1)
    op = lm.steer_spec.interventions[0].op
    ids = torch.tensor([lm.tok_encode(text)])
    with lm.steering.call(ids, [RowLayout(0, ids.shape[1], ids.shape[1])], "score") as ctx, torch.no_grad():
        lm.model(ids)
    got = ctx.state[f"conva-g:{id(op)}"]
    assert torch.allclose(got.double(), want.reshape(1), atol=1e-5)


def test_gate_fitted_at_the_lowest_selected_layer_only(fitted, tiny_llama_dir, data_dir, tmp_path):
    """--gate-layers lowest: the same gate probe as --gate-layers all at the lowest selected layer (same
    split, same seed), nothing elsewhere; the written steering files work, a spec steering from a layer
    without a gate probe is refused before any weights load."""
    from steering_models.errors import SpecError

    assert fit(tiny_llama_dir, data_dir, tmp_path, "--gate-layers", "lowest", "--no-unembed") == 0
    low, full = artifacts.load(tmp_path, "power"), artifacts.load(fitted, "power")
    first = min(low.layers)
    assert low.layers == full.layers
    assert torch.equal(low.tensors["gate_w"][first], full.tensors["gate_w"][first])
    assert float(low.tensors["gate_b"][first]) == float(full.tensors["gate_b"][first])
    others = [i for i in range(low.n_layers) if i != first]
    assert not low.tensors["gate_w"][others].any()
    assert torch.isnan(low.tensors["gate_test_acc"][others]).all()
    assert torch.equal(low.tensors["w"], full.tensors["w"])  # the value probes do not change
    SteeredHFLM(pretrained=str(tiny_llama_dir), steer=str(tmp_path / "steer_conva_power.yaml"), device="cpu")
    later = [i for i in range(low.n_layers) if i > first][:1]
    spec = [{"layer": later, "op": "conva", "artifact": str(tmp_path), "value": "power", "gate": {"type": "probe"}}]
    with pytest.raises(SpecError, match=rf"starts at layer {later[0]}, where the probe gate is read, .* "
                                        rf"gate probe at layer\(s\) \[{first}\] only"):
        SteeredHFLM(pretrained=str(tiny_llama_dir), steer=spec, device="cpu")
    nogate = [{**spec[0], "gate": "none"}]  # no gate: any layer
    SteeredHFLM(pretrained=str(tiny_llama_dir), steer=nogate, device="cpu")
