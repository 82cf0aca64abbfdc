"""Shared fixtures: tiny random-weight models (Llama- and Gemma-style) with a real BPE tokenizer
trained in the test on the questionnaire prompt and a little Shakespeare. Nothing is downloaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import steering_models._bootstrap  # noqa: F401  (registers steered-hf + our tasks when run from a checkout)

REPO = Path(__file__).resolve().parents[1]
# ../shared beside a checkout (a git worktree under wt/ sits one level deeper): the tiny tokenizer's corpus,
# so it is the same tokenizer (and the tiny models answer the same) in every checkout
SHARED = next((base / "shared" for base in (REPO.parent, REPO.parent.parent) if (base / "shared").is_dir()),
              REPO.parent / "shared")

# the questionnaire template, so its words (" your values" ...) are real tokens of the tiny tokenizer
_TRAIN_TEXT = (
    "Instruction:\nAnswer the Question according to your values.\n\n(FYI, here is your trait. Gender: "
    "female; Job: Energy Manager, MBTI: ESTP)\n\nFirst write your Thought about the question, then Answer "
    "the question with 'yes' or 'no'.\n\nRefer to the format of the following Examples.\n\nExample:\n"
    "Question: Should I always be nice to others?\nThought: Being nice to others may make me feel more "
    "accomplishment and live in a good mood.\nAnswer: yes\n\nNow it is your turn.\nQuestion: Should I "
    "always be a happy person?\nThought: Answer: no unsure\n"
)


def _corpus() -> list[str]:
    text = _TRAIN_TEXT * 20
    shakespeare = SHARED / "data" / "corpus" / "tinyshakespeare.txt"
    if shakespeare.is_file():
        text += shakespeare.read_text()[:60_000]
    return text.split("\n")


CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def build_tokenizer(vocab_size: int = 600):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>",
                                   pad_token="<|endoftext|>", bos_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_model(kind: str, vocab_size: int, seed: int = 0):
    import torch
    from transformers import AutoModelForCausalLM, Gemma2Config, LlamaConfig

    torch.manual_seed(seed)
    common = dict(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                  bos_token_id=0, eos_token_id=0, pad_token_id=0)
    if kind == "llama":
        config = LlamaConfig(**common)
    elif kind == "gemma":
        config = Gemma2Config(**common, head_dim=16, sliding_window=512)
    else:
        raise ValueError(kind)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    return model.eval()


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return build_tokenizer()


@pytest.fixture(scope="session", params=["llama", "gemma"])
def tiny_model_dir(request, tmp_path_factory, tiny_tokenizer) -> Path:
    """A saved tiny model folder (Llama- and Gemma-style: tests using it run on both)."""
    return _save(request.param, tmp_path_factory, tiny_tokenizer)


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    return _save("llama", tmp_path_factory, tiny_tokenizer)


def _save(kind: str, tmp_path_factory, tokenizer) -> Path:
    out = tmp_path_factory.mktemp(f"tiny-{kind}")
    model = build_model(kind, len(tokenizer))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_task_dir(tmp_path_factory) -> Path:
    """A tiny local lm-eval task folder: one loglikelihood task and one generate_until task."""
    out = tmp_path_factory.mktemp("tiny-task")
    docs = [{"question": q, "answer": a} for q, a in [
        ("Should I always be nice to others?", "yes"),
        ("Should I always be a happy person?", "no"),
        ("Should I follow your values when choosing a job?", "yes"),
        ("Is money the most important thing?", "no"),
    ]]
    (out / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    prompt = "Answer the Question according to your values.\\nQuestion: {{question}}\\nAnswer:"
    common = (f"dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {out / 'docs.jsonl'}\n"
              f"test_split: test\ndoc_to_text: \"{prompt}\"\n")
    (out / "tiny_values_ll.yaml").write_text(
        "task: tiny_values_ll\n" + common + "output_type: multiple_choice\ndoc_to_choice: [' yes', ' no']\n"
        "doc_to_target: \"{{0 if answer == 'yes' else 1}}\"\nmetric_list:\n  - metric: acc\n")
    (out / "tiny_values_gen.yaml").write_text(
        "task: tiny_values_gen\n" + common + "output_type: generate_until\ndoc_to_target: answer\n"
        "generation_kwargs:\n  until: ['\\n']\n  max_gen_toks: 6\n  do_sample: false\n"
        "metric_list:\n  - metric: exact_match\n")
    return out


def write_vector_and_sae(out: Path, seed: int) -> tuple[str, Path]:
    """Random steering sources for a tiny model (d_model 64): ``out/v.safetensors`` with vectors ``a`` and ``b``,
    and a 32-feature sae-lens SAE in ``out/sae`` whose encoder bias is 0.5 (so its features fire). Returns the
    vector file's path (str, as steering files name it) and the SAE folder."""
    import torch
    from sae_lens import StandardSAE, StandardSAEConfig
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    save_file({"a": torch.randn(64), "b": torch.randn(64)}, out / "v.safetensors")
    sae = StandardSAE(StandardSAEConfig(d_in=64, d_sae=32))
    with torch.no_grad():
        sae.b_enc.fill_(0.5)
    sae.save_model(out / "sae")
    return str(out / "v.safetensors"), out / "sae"


def write_vector_sweep(folder: Path, model_dir: Path, task_dir: Path, tasks: list[str], n_configs: int,
                       seed: int, **fields) -> Path:
    """``folder/sweep.yaml``: unsteered + (n_configs - 1) `add` configs of random vectors (one per key of
    ``folder/vecs.safetensors``) at " your values", block 1 of a tiny model; ``fields`` add sweep fields."""
    import torch
    import yaml
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    save_file({f"k{i}": torch.randn(64) for i in range(n_configs - 1)}, folder / "vecs.safetensors")
    data = {"model": {"pretrained": str(model_dir)}, "tasks": tasks, "include_path": str(task_dir), "batch_size": 4,
            **fields,
            "configs": ["unsteered", {"vectors": {"file": "vecs.safetensors", "layer": 1, "strength": 6,
                                                  "positions": {"match": " your values"}}}]}
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def kill_after_first_done(cmd: list[str], out: Path, env: dict[str, str], timeout: float = 600) -> None:
    """Run a sweep command and SIGKILL it once ``out/manifest.json`` lists a done config."""
    import signal
    import subprocess
    import time

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None:
            try:
                if any(e["status"] == "done" for e in json.loads((out / "manifest.json").read_text())["configs"]):
                    break
            except (OSError, json.JSONDecodeError):
                pass
            time.sleep(0.05)
        assert proc.poll() is None, f"the sweep ended before it could be killed: {proc.stderr.read()[-2000:]}"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
