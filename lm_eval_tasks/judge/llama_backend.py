"""An embedded GGUF judge through llama.cpp (``llama-cpp-python``, the ``judge-llama`` extra; builds from
source from PyPI in minutes, CPU only here).

Why: the quantized GGUF runs as shipped (Q4_K_M, no float32 conversion), and llama.cpp keeps the KV cache
of the previous prompt, so the tokens a prompt shares with the one before (the chat template's system
text, a template's fixed instructions) are not computed again. ``label_logprobs`` evaluates the prompt
and reads the next-token distribution (one forward pass, no sampling); ``complete`` generates greedily.
The prompt goes through the GGUF's own chat template (its ``tokenizer.chat_template``, rendered by
llama-cpp-python's Jinja2 formatter) as one user message, as the transformers judge sends it.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from typing import Any

from lm_eval_tasks.judge.scoring import LabelScores, label_token_ids, scores_from_logprobs
from lm_eval_tasks.judge.settings import JudgeSettings


def llama_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


class LlamaBackend:
    def __init__(self, settings: JudgeSettings, name: str, n_ctx: int = 4096) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        from lm_eval_tasks.embedded_models import embedded_gguf_path

        self.settings = settings
        self.name = name
        self.path = embedded_gguf_path(name)
        threads = settings.threads or os.cpu_count() or 1
        self._llm = Llama(model_path=str(self.path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                          logits_all=False, verbose=False)
        meta = self._llm.metadata
        eos = self._llm.detokenize([self._llm.token_eos()]).decode("utf-8", "ignore")
        bos_id = self._llm.token_bos()
        bos = self._llm.detokenize([bos_id]).decode("utf-8", "ignore") if bos_id >= 0 else ""
        self._format = Jinja2ChatFormatter(template=meta["tokenizer.chat_template"], eos_token=eos, bos_token=bos)
        self.judge_id = f"local:{name}@llama.cpp"
        self.endpoint = f"llama.cpp:{self.path.name}"
        self.concurrency = 1
        self._lock = threading.Lock()
        self.reused_tokens = 0  # prompt tokens served from the kept KV cache (for the benchmark)
        self.computed_tokens = 0

    def _prompt_tokens(self, prompt: str) -> list[int]:
        text = self._format(messages=[{"role": "user", "content": prompt}]).prompt
        return self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)

    def encode(self, text: str) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def _eval(self, tokens: list[int]) -> None:
        """Evaluate ``tokens``, reusing the KV cache of the longest prefix shared with the last prompt."""
        llm = self._llm
        keep = 0
        for a, b in zip(llm.input_ids[: llm.n_tokens].tolist(), tokens[:-1], strict=False):
            if a != b:
                break
            keep += 1
        llm.n_tokens = keep  # eval() drops the cache beyond n_tokens before it appends
        llm.eval(tokens[keep:])
        self.reused_tokens += keep
        self.computed_tokens += len(tokens) - keep

    def label_logprobs(self, prompt: str, choices: Sequence[tuple[Any, str]]) -> LabelScores:
        import numpy as np

        ids = label_token_ids(self.encode, choices)
        with self._lock:
            self._eval(self._prompt_tokens(prompt))
            logits = self._last_logits().astype(np.float64)
        m = logits.max()
        logprobs = logits - (m + np.log(np.exp(logits - m).sum()))
        return scores_from_logprobs(logprobs, ids)

    def complete(self, prompt: str, max_tokens: int) -> str:
        n = self.settings.max_tokens or max_tokens
        with self._lock:
            tokens = self._prompt_tokens(prompt)
            self._eval(tokens)
            out: list[int] = []
            eos = self._llm.token_eos()
            for _ in range(n):
                tok = self._greedy()
                if tok == eos:
                    break
                out.append(tok)
                self._llm.eval([tok])
        return self._llm.detokenize(out).decode("utf-8", "ignore")

    def _last_logits(self):
        """The logits after the last evaluated token (llama.cpp keeps only those: ``logits_all=False``)."""
        import numpy as np

        return np.ctypeslib.as_array(self._llm._ctx.get_logits(), shape=(self._llm.n_vocab(),)).copy()

    def _greedy(self) -> int:
        import numpy as np

        return int(np.argmax(self._last_logits()))
