"""Where replies come from: an OpenAI-compatible endpoint (``openai`` client), a local HF model
(transformers) or an embedded GGUF judge through llama.cpp (``lm_eval_tasks.judge.llama_backend``).

A backend has ``judge_id`` (recorded with every verdict; never holds a key), ``endpoint`` (part of the
cache key), ``concurrency`` and ``complete(prompt, max_tokens) -> str`` (``VALUE_JUDGE_MAX_TOKENS``
overrides the template's budget); local backends also have ``label_logprobs(prompt, choices) ->
LabelScores`` (``lm_eval_tasks.judge.scoring``). Endpoint failures become one
``JudgeError`` sentence naming the setting to fix; transient ones (429, 5xx, timeouts, dropped
connections) are retried by the openai client with exponential backoff first. A reply that is not a
chat completion (HTML or truncated JSON with HTTP 200, JSON without ``choices``, no message text) is a
``ReplyError`` for that one call: the judge leaves that item unscored with the reason and goes on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from lm_eval_tasks.judge.errors import JudgeError, ReplyError
from lm_eval_tasks.judge.scoring import LabelScores, label_token_ids, scores_from_logprobs
from lm_eval_tasks.judge.settings import JudgeSettings


class Backend(Protocol):
    judge_id: str
    endpoint: str
    concurrency: int

    def complete(self, prompt: str, max_tokens: int) -> str: ...


class OpenAIBackend:
    def __init__(self, settings: JudgeSettings) -> None:
        import openai

        self._openai = openai
        self.settings = settings
        self.endpoint = settings.endpoint
        host = self.endpoint.split("://", 1)[-1].split("/", 1)[0]
        self.judge_id = f"openai:{settings.model}@{host}"
        self.concurrency = settings.concurrency
        self._client = openai.OpenAI(
            base_url=settings.base_url,
            api_key=settings.api_key or "not-set",  # local servers need none; the client needs a value
            timeout=settings.timeout,
            max_retries=settings.max_retries,
        )

    def complete(self, prompt: str, max_tokens: int) -> str:
        openai, c = self._openai, self.settings
        try:
            resp = self._client.chat.completions.create(
                model=c.model,
                messages=[{"role": "user", "content": prompt}],
                max_tokens=c.max_tokens or max_tokens,
                temperature=c.temperature,
            )
        except openai.AuthenticationError:
            raise JudgeError(
                f"the judge endpoint {self.endpoint} rejected the API key (HTTP 401); set "
                "VALUE_JUDGE_API_KEY to a valid key for this endpoint."
            ) from None
        except openai.PermissionDeniedError:
            raise JudgeError(
                f"the judge endpoint {self.endpoint} refused access to model {c.model!r} (HTTP 403); "
                "set VALUE_JUDGE_API_KEY to a key allowed to use it, or change VALUE_JUDGE_MODEL."
            ) from None
        except openai.NotFoundError:
            raise JudgeError(
                f"the judge endpoint {self.endpoint} has no model {c.model!r} or no chat completions "
                "route (HTTP 404); set VALUE_JUDGE_MODEL to a model it serves (see GET "
                f"{self.endpoint}/models) or fix VALUE_JUDGE_BASE_URL."
            ) from None
        except openai.APITimeoutError:
            raise JudgeError(
                f"the judge endpoint {self.endpoint} did not answer within {c.timeout:g} s after "
                f"{c.max_retries} retries; raise VALUE_JUDGE_TIMEOUT or check the server."
            ) from None
        except openai.APIConnectionError as e:
            cause = e.__cause__ or e.__context__
            why = f" ({type(cause).__name__})" if cause is not None else ""
            raise JudgeError(
                f"cannot connect to the judge endpoint {self.endpoint}{why} after {c.max_retries} "
                "retries; start the server or fix VALUE_JUDGE_BASE_URL."
            ) from None
        except openai.APIStatusError as e:
            raise JudgeError(
                f"the judge endpoint {self.endpoint} answered HTTP {e.status_code} after "
                f"{c.max_retries} retries; check the server or VALUE_JUDGE_BASE_URL/VALUE_JUDGE_MODEL."
            ) from None
        except (ValueError, openai.APIResponseValidationError) as e:  # JSONDecodeError is a ValueError
            raise ReplyError(f"the judge endpoint {self.endpoint} answered with a body that is not valid JSON "
                             f"({type(e).__name__}: {str(e)[:80]}); check the server behind "
                             "VALUE_JUDGE_BASE_URL.") from None
        return reply_text(resp, self.endpoint)


def reply_text(resp: Any, endpoint: str) -> str:
    """The message text of a chat completion the openai client returned, or a ``ReplyError`` saying
    why ``resp`` is not one (the client hands back HTML as a ``str``, and JSON of any shape unchecked)."""
    where = f"the judge endpoint {endpoint} answered HTTP 200 with"
    fix = "check the server behind VALUE_JUDGE_BASE_URL (a proxy or login page in front of it?)."
    if isinstance(resp, (str, bytes)):
        head = resp[:60] if isinstance(resp, str) else resp[:60].decode("utf-8", "replace")
        raise ReplyError(f"{where} a body that is not JSON (starting {head!r}); {fix}")
    choices = getattr(resp, "choices", None)
    if not isinstance(choices, list):
        raise ReplyError(f"{where} JSON that is not a chat completion (no `choices` list); {fix}")
    if not choices:
        raise ReplyError(f"{where} a chat completion without choices; {fix}")
    message = getattr(choices[0], "message", None)
    if message is None:
        raise ReplyError(f"{where} a chat completion whose first choice has no message; {fix}")
    content = getattr(message, "content", None)
    if content is not None and not isinstance(content, str):
        raise ReplyError(f"{where} a chat completion whose message content is a {type(content).__name__}, "
                         f"not text; {fix}")
    return content or ""


class LocalBackend:
    def __init__(self, settings: JudgeSettings) -> None:
        from lm_eval_tasks.judge.local_model import LocalGenerator, resolve_local_model

        self.settings = settings
        self._gen = LocalGenerator(resolve_local_model(settings.pretrained or "auto"))
        self.judge_id = f"local:{self._gen.name}"
        self.endpoint = f"local:{self._gen.path}"
        self.concurrency = 1

    def complete(self, prompt: str, max_tokens: int) -> str:
        return self._gen.complete(prompt, self.settings.max_tokens or max_tokens)

    def label_logprobs(self, prompt: str, choices: Sequence[tuple[Any, str]]) -> LabelScores:
        ids = label_token_ids(self._gen.encode, choices)
        return scores_from_logprobs(self._gen.next_token_logprobs(prompt).tolist(), ids)


def make_backend(settings: JudgeSettings) -> Backend:
    if settings.kind != "local":
        return OpenAIBackend(settings)
    from lm_eval_tasks.judge.llama_backend import llama_available
    from lm_eval_tasks.judge.local_model import embedded_name

    name = embedded_name(settings.pretrained or "auto")
    # auto: llama.cpp for the embedded judge model when installed; the default model stays on transformers
    if settings.backend == "llama" or (settings.backend == "auto" and name == "judge-1.5b" and llama_available()):
        from lm_eval_tasks.judge.llama_backend import LlamaBackend

        if name is None:
            raise JudgeError(f"VALUE_JUDGE_BACKEND=llama reads an embedded GGUF judge, and "
                             f"VALUE_JUDGE_PRETRAINED={settings.pretrained!r} is a folder; set VALUE_JUDGE_PRETRAINED "
                             "to judge-1.5b or default, or VALUE_JUDGE_BACKEND=transformers.")
        return LlamaBackend(settings, name)
    return LocalBackend(settings)
