"""Where replies come from: an OpenAI-compatible endpoint (``openai`` client) or a local HF model.

A backend has ``judge_id`` (recorded with every verdict; never holds a key), ``endpoint`` (part of the
cache key), ``concurrency`` and ``complete(prompt, max_tokens) -> str`` (``VALUE_JUDGE_MAX_TOKENS``
overrides the template's budget). Endpoint failures become one
``JudgeError`` sentence naming the setting to fix; transient ones (429, 5xx, timeouts, dropped
connections) are retried by the openai client with exponential backoff first.
"""

from __future__ import annotations

from typing import Protocol

from analysis.judge.config import JudgeConfig
from analysis.judge.errors import JudgeError


class Backend(Protocol):
    judge_id: str
    endpoint: str
    concurrency: int

    def complete(self, prompt: str, max_tokens: int) -> str: ...


class OpenAIBackend:
    def __init__(self, config: JudgeConfig) -> None:
        import openai

        self._openai = openai
        self.config = config
        self.endpoint = config.endpoint
        host = self.endpoint.split("://", 1)[-1].split("/", 1)[0]
        self.judge_id = f"openai:{config.model}@{host}"
        self.concurrency = config.concurrency
        self._client = openai.OpenAI(
            base_url=config.base_url,
            api_key=config.api_key or "not-set",  # local servers need none; the client needs a value
            timeout=config.timeout,
            max_retries=config.max_retries,
        )

    def complete(self, prompt: str, max_tokens: int) -> str:
        openai, c = self._openai, self.config
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
        if not resp.choices:
            return ""
        return resp.choices[0].message.content or ""


class LocalBackend:
    def __init__(self, config: JudgeConfig) -> None:
        from analysis.judge.local_model import LocalGenerator

        self.config = config
        self._gen = LocalGenerator(config.pretrained or "default")
        self.judge_id = f"local:{self._gen.name}"
        self.endpoint = f"local:{self._gen.path}"
        self.concurrency = 1

    def complete(self, prompt: str, max_tokens: int) -> str:
        return self._gen.complete(prompt, self.config.max_tokens or max_tokens)


def make_backend(config: JudgeConfig) -> Backend:
    return LocalBackend(config) if config.kind == "local" else OpenAIBackend(config)
