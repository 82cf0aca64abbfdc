"""ConVA interpretation subcommands on hand-made artifacts and data (no language model anywhere)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

from analysis.cli import main
from steering_models.conva import artifacts

IDENTITY = {"id": "toy", "model_type": "toy", "hidden_size": 3, "num_hidden_layers": 2, "vocab_size": 4,
            "embedding_fingerprint": None}


def toy_artifacts(out: Path) -> Path:
    vs = {"power": [[0.8, 0.0, 0.6], [0.0, 1.0, 0.0]],
          "security": [[0.6, 0.8, 0.0], [-0.6, -0.8, 0.0]]}
    for value, v in vs.items():
        t = torch.tensor(v)
        artifacts.save(artifacts.Artifact(value, [0], IDENTITY, "h", {
            "w": 2 * t, "b": torch.zeros(2), "v": t, "train_acc": torch.ones(2), "test_acc": torch.ones(2)}), out)
    # unembedding: token i reads coordinate i (token 3 reads -coordinate 0); norm scale doubles coord 2
    w_u = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [-1.0, 0, 0]])
    save_file({"W_U": w_u.half(), "norm_scale": torch.tensor([1.0, 1.0, 2.0])}, str(out / "unembed.safetensors"))
    (out / "vocab.json").write_text(json.dumps({"model": IDENTITY, "tokens": ["a", "b", "c", "d"]}))
    return out


def test_value_vectors_cosine(tmp_path):
    art = toy_artifacts(tmp_path / "art")
    assert main(["value-vectors-cosine", "--artifacts", str(art), "--out", str(tmp_path / "o")]) == 0
    table = pd.read_csv(tmp_path / "o" / "value_vectors_cosine.csv")
    got = table.set_index(["layer", "value_a", "value_b"])["cosine"]
    assert got[(0, "power", "security")] == pytest.approx(0.48)  # 0.8 * 0.6
    assert got[(1, "power", "security")] == pytest.approx(-0.8)
    assert got[(0, "power", "power")] == pytest.approx(1.0)
    assert (tmp_path / "o" / "value_vectors_cosine.png").stat().st_size > 0


def test_logit_lens(tmp_path):
    art = toy_artifacts(tmp_path / "art")
    assert main(["logit-lens", "--artifacts", str(art), "--layer", "0", "--top", "2", "--out", str(tmp_path / "o")]) == 0
    top = pd.read_csv(tmp_path / "o" / "logit_lens_layer0.csv").groupby("value")["token"].apply(list).to_dict()
    # layer 0, logits = W_U (scale * v): power a=0.8 b=0 c=2*0.6=1.2 d=-0.8; security a=0.6 b=0.8 c=0 d=-0.6
    assert top == {"power": ["c", "a"], "security": ["b", "a"]}
    assert main(["logit-lens", "--artifacts", str(art), "--top", "1", "--out", str(tmp_path / "o2")]) == 0
    last = pd.read_csv(tmp_path / "o2" / "logit_lens_layer1.csv")  # default: the last layer (1)
    assert set(last["layer"]) == {1}
    # power (0,1,0) -> b=1; security (-0.6,-0.8,0) -> d=0.6
    assert last.set_index("value")["token"].to_dict() == {"power": "b", "security": "d"}


def test_context_words(tmp_path):
    value_dir = tmp_path / "conva" / "value"
    value_dir.mkdir(parents=True)
    pos = ["safe home safe family", "secure home family", "safe family"]
    neg = ["risky home family", "risky home adventure", "free family"]
    with open(value_dir / "security_context_controlled.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["question_1", "question_2"])
        w.writerows(zip(pos, neg, strict=True))
    (value_dir / "test_power_new.csv").write_text("text\nq\n")
    out = tmp_path / "o"
    assert main(["context-words", "--data-dir", str(tmp_path / "conva"), "--values", "security",
                 "--pair-sets", "context_controlled", "--top", "3", "--out", str(out)]) == 0
    words = pd.read_csv(out / "context_words.csv").set_index("word")
    # positive top-3: family 3, safe 3, home 2 ; negative top-3: family 2, home 2, risky 2
    assert words.loc["safe", "category"] == "unique_positive" and words.loc["safe", "count_positive"] == 3
    assert words.loc["risky", "category"] == "unique_negative"
    assert words.loc["family", "category"] == "common" and words.loc["home", "category"] == "common"
    summary = pd.read_csv(out / "context_words_summary.csv").iloc[0]
    assert (summary["unique_positive"], summary["unique_negative"], summary["common"]) == (1, 1, 2)
