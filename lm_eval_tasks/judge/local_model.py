"""A HF causal LM answering judge prompts greedily through transformers (no server).

Used by the local judge (``VALUE_JUDGE_KIND=local``) and by ``python -m analysis judge-serve``.
``LocalGenerator`` takes a resolved model folder (``resolve_local_model``: an embedded model's name,
e.g. ``default``, from :mod:`lm_eval_tasks.embedded_models`, or a saved HF folder). The prompt is sent
as one user message through the tokenizer's chat template when it has one, else as plain text.
Weights load from safetensors. One generation at a time (a lock). ``next_token_logprobs`` reads the
first reply token's distribution; the KV cache of the previous prompt is kept, so prompts sharing a
prefix (a template's fixed text) compute it once. ``auto`` = the embedded judge model (``judge-1.5b``)
when installed, else ``default``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lm_eval_tasks.embedded_models import EMBEDDED, embedded_model, embedded_model_path


@dataclass(frozen=True)
class LocalModel:
    """A resolved local judge model: the name it is recorded under and its HF folder."""

    name: str
    path: Path


def embedded_name(pretrained: str) -> str | None:
    """The embedded model ``pretrained`` names (``auto`` = ``judge-1.5b`` when its extra is installed, else
    ``default``), or None for a folder."""
    if pretrained == "auto":
        return "judge-1.5b" if EMBEDDED["judge-1.5b"].installed() else "default"
    model = embedded_model(pretrained)
    return None if model is None else model.name


def resolve_local_model(pretrained: str) -> LocalModel:
    """An embedded model's name (``default``, ``judge-1.5b``, ``auto``) -> its folder; else the folder itself,
    checked."""
    name = embedded_name(pretrained)
    embedded = None if name is None else embedded_model(name)
    if embedded is not None:
        return LocalModel(embedded.name, embedded_model_path(embedded.name))
    path = Path(pretrained).expanduser()
    if not (path / "config.json").is_file():
        raise ValueError(
            f"judge pretrained={pretrained!r} is not a HF model folder (no config.json); set "
            "VALUE_JUDGE_PRETRAINED (or --pretrained) to a saved model folder or 'default'."
        )
    return LocalModel(path.name, path)


class LocalGenerator:
    def __init__(self, model: LocalModel, device: str | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.path = model.path
        self.name = model.name
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.path))
        self.model = AutoModelForCausalLM.from_pretrained(
            str(self.path), use_safetensors=True,
            dtype=torch.bfloat16 if self.device == "cuda" else torch.float32,
        ).to(self.device).eval()
        self._lock = threading.Lock()
        self._prefix: list[int] = []  # the tokens whose KV cache ``self._kv`` holds
        self._kv = None

    def _input_ids(self, messages: Sequence[dict[str, str]]):
        if getattr(self.tokenizer, "chat_template", None):
            ids = self.tokenizer.apply_chat_template(
                list(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
            )["input_ids"]
        else:
            text = "\n\n".join(m["content"] for m in messages)
            ids = self.tokenizer(text, return_tensors="pt")["input_ids"]
        return ids.to(self.device)

    def chat(self, messages: Sequence[dict[str, str]], max_new_tokens: int) -> tuple[str, int, int]:
        """Greedy reply to ``messages``: (text, prompt tokens, completion tokens)."""
        import torch

        ids = self._input_ids(messages)
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id
        with self._lock, torch.inference_mode():
            out = self.model.generate(
                ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                do_sample=False, pad_token_id=pad,
            )
        new = out[0, ids.shape[1]:]
        return self.tokenizer.decode(new, skip_special_tokens=True), int(ids.shape[1]), int(new.shape[0])

    def complete(self, prompt: str, max_new_tokens: int) -> str:
        return self.chat([{"role": "user", "content": prompt}], max_new_tokens)[0]

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def next_token_logprobs(self, prompt: str):
        """log p(first reply token) over the vocabulary (a 1-D float tensor), for one user message."""
        import inspect

        import torch
        from transformers import DynamicCache

        ids = self._input_ids([{"role": "user", "content": prompt}])[0].tolist()
        arg = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
        with self._lock, torch.inference_mode():
            keep = 0
            for a, b in zip(self._prefix, ids[:-1], strict=False):  # at least the last token is run again
                if a != b:
                    break
                keep += 1
            if keep == 0 or self._kv is None:
                self._kv, keep = DynamicCache(), 0
            elif len(self._prefix) > keep:
                self._kv.crop(keep - len(self._prefix))  # drop the tokens after the shared prefix
            new = torch.tensor([ids[keep:]], device=self.device)
            out = self.model(new, use_cache=True, **{arg: self._kv})
            self._kv = out["cache"] if "cache" in out else out["past_key_values"]
            self._prefix = ids
            return torch.log_softmax(out.logits[0, -1].float(), dim=-1).cpu()
