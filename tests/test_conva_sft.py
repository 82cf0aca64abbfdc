"""The SFT baseline (``python -m steering_models.conva sft``) on the tiny random models: real peft, real
transformers, real lm-eval (``steered-hf`` with HFLM's own ``peft=``); nothing mocked.

- the untrained adapter (LoRA B = 0) gives the base model's scores bit for bit through ``steered-hf``;
- training lowers the loss, writes the adapter, record, plot and steering file, and the trained adapter
  changes the scores;
- a run interrupted after an epoch resumes from that epoch's checkpoint and ends exactly where an
  uninterrupted run ends; a finished run is not redone; other settings in the same folder are refused.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
import yaml
from lm_eval.api.instance import Instance
from safetensors.torch import load_file

from steering_models.conva.sft import SFTError, SFTSettings, lora_model, run_sft
from steering_models.lm import SteeredHFLM

SUBJECTS = ["I", "She", "He", "The mayor", "Our team", "My sister"]
ACTS = ["took control of the council", "won the contest for leadership", "gained influence over the board",
        "secured the top position"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A ConVA folder with 24 made-up power pairs (the real data is not needed to train a tiny model)."""
    root = tmp_path_factory.mktemp("conva-sft-data")
    (root / "value").mkdir()
    with open(root / "value" / "power_context_controlled.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["question_1", "question_2"])
        for subject in SUBJECTS:
            for act in ACTS:
                w.writerow([f"{subject} {act} and enjoyed the power.", f"{subject} refused to lead and shared it."])
    (root / "value" / "test_power_new.csv").write_text("text\nShould I lead?\n")
    return root


FAST = dict(epochs=3, lr=5e-3, batch_size=4, grad_accum=2, sentences=12, max_length=48)


def ll_requests() -> list[Instance]:
    pairs = [("<|user|>\nShould I lead the team?\n<|assistant|>\n", c) for c in (" I", " yes", " power")]
    pairs += [("Is money the most important thing?", " no")]
    return [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]


def scores(**model_args) -> list[float]:
    lm = SteeredHFLM(device="cpu", batch_size=2, **model_args)
    return [s for s, _ in lm.loglikelihood(ll_requests(), disable_tqdm=True)]


def test_untrained_adapter_is_the_base_model_bit_for_bit(tiny_llama_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32).eval()
    ids = torch.tensor([[5, 17, 42, 99, 3, 250]])
    with torch.no_grad():
        want = base(ids).logits
        peft_model = lora_model(base, SFTSettings()).eval()
        got = peft_model(ids).logits
    lora_b = [p for n, p in peft_model.named_parameters() if "lora_B" in n]
    assert lora_b and all(torch.count_nonzero(p) == 0 for p in lora_b)
    assert torch.equal(got, want)
    peft_model.save_pretrained(tmp_path / "untrained")
    assert scores(pretrained=str(tiny_llama_dir), peft=str(tmp_path / "untrained")) == \
        scores(pretrained=str(tiny_llama_dir))


def test_training_lowers_the_loss_and_steered_hf_loads_the_adapter(tiny_model_dir, data_dir, tmp_path):
    out = tmp_path / "sft"
    logs: list[str] = []
    record = run_sft(str(tiny_model_dir), "power", str(data_dir), out, SFTSettings(**FAST), progress=False,
                     log=logs.append)
    assert record.status == "done" and [e.epoch for e in record.epochs] == [1, 2, 3]
    assert record.epochs[-1].loss < record.epochs[0].loss
    steps_per_epoch = 2  # 12 sentences / batch 4 = 3 micro-batches, 2 accumulated per step
    assert [s.step for s in record.steps] == list(range(1, 3 * steps_per_epoch + 1))
    assert record.steps[0].lr == pytest.approx(5e-3) and record.steps[-1].lr < record.steps[0].lr  # linear decay
    assert (out / "loss_curve.png").stat().st_size > 1000
    saved = json.loads((out / "sft_record.json").read_text())
    assert saved["data"]["n_sentences"] == 12 and "FULCRA" in saved["data"]["note"]
    assert saved["settings"]["rank"] == 8 and saved["settings"]["target_modules"] == ["q_proj", "k_proj", "v_proj"]
    steer = yaml.safe_load((out / "steer_sft_power.yaml").read_text())
    assert steer["name"] == "sft-power" and steer["interventions"] == []
    assert steer["meta"]["kind"] == "sft" and steer["meta"]["data"] == "conva_positive_sentences"
    assert steer["meta"]["adapter_sha256"] == saved["adapter_sha256"]
    assert "loss" in logs[-1]

    lm = SteeredHFLM(pretrained=str(tiny_model_dir), peft=str(out / "adapter"),
                     steer=str(out / "steer_sft_power.yaml"), device="cpu", batch_size=2)
    trained = [s for s, _ in lm.loglikelihood(ll_requests(), disable_tqdm=True)]
    info = lm.get_model_info()["steering"]
    assert info["name"] == "sft-power" and info["meta"]["kind"] == "sft"
    base = scores(pretrained=str(tiny_model_dir))
    assert all(abs(a - b) > 1e-4 for a, b in zip(trained, base, strict=True))


def test_interrupted_run_resumes_from_the_last_epoch(tiny_llama_dir, data_dir, tmp_path):
    settings = SFTSettings(**FAST)
    whole = run_sft(str(tiny_llama_dir), "power", str(data_dir), tmp_path / "whole", settings, progress=False,
                    log=lambda _: None)

    def interrupt(epoch, record):
        if epoch == 2:
            raise KeyboardInterrupt

    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        run_sft(str(tiny_llama_dir), "power", str(data_dir), out, settings, progress=False, log=lambda _: None,
                on_epoch_end=interrupt)
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["epoch-0002"]  # only the last one is kept
    assert json.loads((out / "sft_record.json").read_text())["status"] == "running"
    assert not (out / "adapter").exists()
    logs: list[str] = []
    resumed = run_sft(str(tiny_llama_dir), "power", str(data_dir), out, settings, progress=False, log=logs.append)
    assert logs[0].startswith("power: resuming after epoch 2 of 3")
    assert resumed.starts == [0, 2] and resumed.status == "done"
    assert [s.loss for s in resumed.steps] == [s.loss for s in whole.steps]
    a = load_file(tmp_path / "whole" / "adapter" / "adapter_model.safetensors")
    b = load_file(out / "adapter" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    logs.clear()  # finished: not redone, and no model is loaded
    again = run_sft(str(tiny_llama_dir), "power", str(data_dir), out, settings, progress=False, log=logs.append)
    assert "already trained" in logs[0] and again.starts == [0, 2]
    with pytest.raises(SFTError, match="other settings.*--fresh"):
        run_sft(str(tiny_llama_dir), "power", str(data_dir), out, SFTSettings(**{**FAST, "lr": 1e-3}),
                progress=False, log=lambda _: None)


def test_bad_settings_are_refused_before_the_model_loads(tiny_llama_dir, data_dir, tmp_path):
    with pytest.raises(SFTError, match="`grad_accum`=0 must be a positive integer. Fix --grad-accum"):
        SFTSettings(grad_accum=0)
    with pytest.raises(SFTError, match="no linear layer named qkv_proj .*Fix --target-modules"):
        run_sft(str(tiny_llama_dir), "power", str(data_dir), tmp_path / "x",
                SFTSettings(**{**FAST, "target_modules": ("qkv_proj",)}), progress=False)
    with pytest.raises(SFTError, match="Fix --value"):
        run_sft(str(tiny_llama_dir), "powers", str(data_dir), tmp_path / "x", SFTSettings(), progress=False)


def test_command_line_passes_every_setting(tiny_llama_dir, data_dir, tmp_path, capsys):
    from steering_models.conva.__main__ import main

    out = tmp_path / "cli"
    argv = ["sft", "--pretrained", str(tiny_llama_dir), "--value", "power", "--data-dir", str(data_dir),
            "--out", str(out), "--sentences", "12", "--format", "plain", "--rank", "4", "--alpha", "8",
            "--dropout", "0", "--target-modules", "q_proj,v_proj", "--lr", "5e-3", "--epochs", "1",
            "--batch-size", "3", "--grad-accum", "2", "--lr-schedule", "constant", "--max-length", "40",
            "--seed", "3", "--no-progress"]
    assert main(argv) == 0
    settings = json.loads((out / "sft_record.json").read_text())["settings"]
    assert settings == {**SFTSettings().to_dict(), "sentences": 12, "format": "plain", "rank": 4, "alpha": 8.0,
                        "dropout": 0.0, "target_modules": ["q_proj", "v_proj"], "lr": 5e-3, "epochs": 1,
                        "batch_size": 3, "grad_accum": 2, "schedule": "constant", "max_length": 40, "seed": 3}
    assert "power: 1 epochs, loss" in capsys.readouterr().out
    assert main(argv[:-1] + ["--value", "powers"]) == 2
    assert "Fix --value" in capsys.readouterr().err


def test_examples_put_the_loss_on_the_sentence_only(tiny_tokenizer):
    from steering_models.conva.sft_data import IGNORE, build_examples, collate

    sentence = "I took control of the council."
    (chat,) = build_examples([sentence], tiny_tokenizer, "chat", 128)
    target = [t for t, lab in zip(chat.input_ids, chat.labels, strict=True) if lab != IGNORE]
    assert tiny_tokenizer.decode(chat.input_ids) == f"<|assistant|>\n{sentence}\n"  # conftest's template
    assert tiny_tokenizer.decode(target) == f"{sentence}\n"
    (plain,) = build_examples([sentence], tiny_tokenizer, "plain", 128)
    assert tiny_tokenizer.decode(plain.input_ids) == sentence + "<|endoftext|>" and IGNORE not in plain.labels
    batch = collate([chat, plain], pad_id=0)
    assert batch["attention_mask"].sum().item() == len(chat.input_ids) + len(plain.input_ids)
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE).all()
