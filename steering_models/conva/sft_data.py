"""The SFT baseline's training examples: a value's positive sentences as targets.

The paper fine-tunes on FULCRA (Yao et al., 2024), which is not available offline; what is at hand are
ConVA's own sentences that hold the value (``question_1`` of ``value/<value>_<pair set>.csv``, read from the
user-named ConVA folder like every ConVA file). Each sentence is one example, in one of two formats:

* ``chat`` (default): the sentence is the assistant's turn of the model's chat template (no user turn; the
  template's default system prompt, if any, stays), so the adapter learns to *say* value-holding things in
  the role the dilemma replies are generated in (the experiment runs with ``--apply_chat_template``). The
  loss is on the reply and the template's end-of-turn tokens only.
* ``plain``: the sentence as plain text followed by the EOS token, the loss on every token.

The prompt part and the target part are tokenised separately and concatenated, as lm-eval tokenises a
context and its continuation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from steering_models.conva.data import ConvaDataError

FORMATS = ("chat", "plain")
IGNORE = -100  # label of a token the loss skips (transformers' convention)


@dataclass(frozen=True)
class Example:
    input_ids: list[int]
    labels: list[int]  # IGNORE where the loss does not look


def split_example(sentence: str, tokenizer: Any, fmt: str) -> tuple[str, str]:
    """(prompt text, target text) of one sentence."""
    if fmt == "plain":
        return "", sentence + (tokenizer.eos_token or "")
    if fmt != "chat":
        raise ConvaDataError(f"SFT format {fmt!r} is not one of {', '.join(FORMATS)}. Fix --format.")
    if not getattr(tokenizer, "chat_template", None):
        raise ConvaDataError("--format chat needs a tokenizer with a chat template; this one has none. "
                             "Use --format plain.")
    try:
        text = tokenizer.apply_chat_template([{"role": "assistant", "content": sentence}], tokenize=False)
    except Exception as e:  # noqa: BLE001  (jinja templates raise their own errors, e.g. "roles must alternate")
        raise ConvaDataError(f"this model's chat template refuses a conversation that is one assistant turn "
                             f"({e}). Use --format plain.") from e
    start = text.rfind(sentence)
    if start < 0:
        raise ConvaDataError("this model's chat template rewrites the assistant's text, so the reply cannot be "
                             "found in it. Use --format plain.")
    return text[:start], text[start:]


def build_examples(sentences: list[str], tokenizer: Any, fmt: str, max_length: int) -> list[Example]:
    """One example per sentence, cut to ``max_length`` tokens; the loss only on the target tokens."""
    examples = []
    for sentence in sentences:
        prompt, target = split_example(sentence, tokenizer, fmt)
        # the empty prompt of `plain` still gets the tokenizer's own start tokens (e.g. a BOS), if it adds any
        prompt_ids = tokenizer(prompt, add_special_tokens=fmt == "plain")["input_ids"]
        target_ids = tokenizer(target, add_special_tokens=False)["input_ids"]
        ids = (prompt_ids + target_ids)[:max_length]
        labels = ([IGNORE] * len(prompt_ids) + target_ids)[:max_length]
        if all(t == IGNORE for t in labels[1:]):
            raise ConvaDataError(f"--max-length {max_length} leaves no target token of the sentence "
                                 f"{sentence[:60]!r}... after the {len(prompt_ids)} prompt tokens. Raise --max-length.")
        examples.append(Example(ids, labels))
    return examples


def collate(examples: list[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch: input_ids, attention_mask, labels (IGNORE on padding)."""
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        labels[i, :n] = torch.tensor(e.labels)
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
