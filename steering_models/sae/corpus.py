"""The text an SAE for the embedded default is trained on, from public data on this machine (no download).

Three sources, each with its licence (see ``shared/data/README.md``):

* ValueBench's rated LLM answers (``valuebench/QA-dataset-answers-rating.csv``, MIT): the free-text answers
  and judge explanations of six chat models to the questionnaire's advice-seeking questions: modern,
  value-laden English, the bulk of the corpus;
* Tiny Shakespeare (``corpus/tinyshakespeare.txt``, public domain): other registers of English;
* Kang et al.'s questionnaire prompt (Figure 2, rendered by ``lm_eval_tasks.valuebench.prompts`` from the
  shipped roles and items, MIT): so the residual stream at " your values" of that prompt is in the
  training distribution of the dictionary that steers there.

Documents are split into train / held-out by a stable hash of their text, packed into fixed-length
token windows (each document followed by the tokenizer's EOS), and the windows shuffled with a seed.
"""

from __future__ import annotations

import csv
import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

ANSWER_MODELS = ("gpt-4-1106-preview", "gpt-3.5-turbo-1106", "llama-7b-chat", "llama-70b-chat",
                 "mistral-7b-instruct", "mixtral-8x7b-instruct")
QA_FILE = ("valuebench", "QA-dataset-answers-rating.csv")
SHAKESPEARE_FILE = ("corpus", "tinyshakespeare.txt")
SOURCES = ("valuebench_answers", "shakespeare", "questionnaire_prompts")
SHAKESPEARE_DOC_CHARS = 1500


@dataclass(frozen=True)
class Doc:
    source: str
    text: str

    @property
    def heldout_bucket(self) -> int:
        """0-99, stable across runs and machines (the held-out split is bucket < heldout percent)."""
        return int(hashlib.sha256(self.text.encode()).hexdigest()[:8], 16) % 100


def _need(path: Path, what: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(
            f"SAE corpus file {path} ({what}) does not exist. Pass --data-dir pointing at the folder that "
            "holds valuebench/ and corpus/ (the project's ../shared/data)."
        )
    return path


def valuebench_answers(data_dir: Path) -> list[Doc]:
    path = _need(data_dir.joinpath(*QA_FILE), "ValueBench's rated LLM answers")
    docs: list[Doc] = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            for model in ANSWER_MODELS:
                for col in (f"{model}_answer", f"{model}_explanation"):
                    text = (row.get(col) or "").strip()
                    if len(text) > 40 and text.lower() != "nan":
                        docs.append(Doc("valuebench_answers", text))
    return docs


def shakespeare(data_dir: Path) -> list[Doc]:
    text = _need(data_dir.joinpath(*SHAKESPEARE_FILE), "Tiny Shakespeare").read_text(encoding="utf-8")
    docs, cur = [], ""
    for para in text.split("\n\n"):
        cur = f"{cur}\n\n{para}" if cur else para
        if len(cur) >= SHAKESPEARE_DOC_CHARS:
            docs.append(Doc("shakespeare", cur))
            cur = ""
    if cur:
        docs.append(Doc("shakespeare", cur))
    return docs


def questionnaire_prompts(n: int, seed: int) -> list[Doc]:
    """``n`` Figure-2 prompts (with the Thought cue) for random (train role incl. r0, item) pairs."""
    from lm_eval_tasks.valuebench.data import load_items, load_roles
    from lm_eval_tasks.valuebench.prompts import render_prompt

    rng = random.Random(f"sae-prompts-{seed}")
    roles = [r for r in load_roles() if r.split == "train"]
    items = list(load_items())
    return [Doc("questionnaire_prompts", render_prompt(rng.choice(items).question, rng.choice(roles).trait))
            for _ in range(n)]


def build_corpus(data_dir: Path, n_prompts: int = 400, seed: int = 0) -> list[Doc]:
    return valuebench_answers(data_dir) + shakespeare(data_dir) + questionnaire_prompts(n_prompts, seed)


def split_docs(docs: Sequence[Doc], heldout_percent: int) -> tuple[list[Doc], list[Doc]]:
    train = [d for d in docs if d.heldout_bucket >= heldout_percent]
    heldout = [d for d in docs if d.heldout_bucket < heldout_percent]
    return train, heldout


def pack_windows(tokenizer: Any, docs: Iterable[Doc], context_size: int, max_tokens: int,
                 seed: int) -> torch.Tensor:
    """``[n, context_size]`` token windows: shuffled documents, each + EOS, concatenated and cut.

    Stops once ``max_tokens`` tokens are packed (the last partial window is dropped)."""
    docs = list(docs)
    random.Random(f"sae-pack-{seed}").shuffle(docs)
    eos = tokenizer.eos_token_id
    stream: list[int] = []
    for d in docs:
        stream.extend(tokenizer(d.text, add_special_tokens=False)["input_ids"])
        stream.append(eos)
        if len(stream) >= max_tokens:
            break
    n = min(len(stream), max_tokens) // context_size
    if n == 0:
        raise ValueError(f"the SAE corpus gave {len(stream)} tokens, fewer than one window of {context_size}; "
                         "pass a larger corpus or a smaller --context-size.")
    return torch.tensor(stream[: n * context_size]).view(n, context_size)


def corpus_fingerprint(windows: torch.Tensor) -> str:
    return hashlib.sha256(windows.numpy().tobytes()).hexdigest()[:16]
