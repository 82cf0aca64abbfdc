"""Judge settings (``JudgeSettings``), from the environment or a file named by ``VALUE_JUDGE_CONFIG``.

Environment (each overrides the same key of the config file; file keys are the names below in
lowercase without the ``VALUE_JUDGE_`` prefix, e.g. ``base_url: http://127.0.0.1:8000/v1``):

- ``VALUE_JUDGE_BASE_URL``   an OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp, Ollama, ...)
- ``VALUE_JUDGE_MODEL``      the model name at that endpoint (default ``gpt-4o``, as in the papers)
- ``VALUE_JUDGE_API_KEY``    its key; **only** from the environment (a key in the file is an error)
- ``VALUE_JUDGE_KIND``       ``openai`` (default when a base URL is set) or ``local``
- ``VALUE_JUDGE_PRETRAINED`` the local judge: ``auto`` (the default: the embedded 1.5B judge when the
                             ``judge-model`` extra is installed, else ``default``), ``judge-1.5b``
                             (Qwen2.5-Coder-1.5B-Instruct), ``default`` (the embedded 0.5B default model)
                             or a HF folder; set alone (no base URL), it selects the local judge
- ``VALUE_JUDGE_BACKEND``    the local judge's engine: ``auto`` (llama.cpp for ``judge-1.5b`` when
                             ``llama-cpp-python`` is installed, else transformers), ``llama`` (an embedded
                             model's GGUF) or ``transformers``
- ``VALUE_JUDGE_THREADS``    CPU threads of the llama.cpp backend (default: all cores)
- ``VALUE_JUDGE_SCORING``    ``generate`` or ``logprob`` for every template (default: per template, as the
                             judge's profile says, see ``lm_eval_tasks.judge.profiles``; ``VALUE_JUDGE_PROFILE``
                             names a profile file)
- ``VALUE_JUDGE_PANEL``      a YAML/JSON file listing several judges (``lm_eval_tasks.judge.panel``): the
                             verdict is their majority
- ``VALUE_JUDGE_CONCURRENCY`` (8), ``VALUE_JUDGE_TIMEOUT`` seconds (60), ``VALUE_JUDGE_MAX_RETRIES`` (4;
  the openai client retries 408/409/429/5xx, timeouts and dropped connections with exponential
  backoff), ``VALUE_JUDGE_MAX_TOKENS`` (default: per template, 16 for
  Template 1, 64 for CSR/FR, 1024 for Template 5), ``VALUE_JUDGE_TEMPERATURE`` (0)
- ``VALUE_JUDGE_CACHE`` the SQLite cache file (default ``~/.cache/value-steering-eval/judge.sqlite``),
  ``VALUE_JUDGE_NO_CACHE=1`` bypasses it. Request options (max tokens, temperature) are not part of the
  cache key: after changing them, re-judge with ``--no-cache`` / ``VALUE_JUDGE_NO_CACHE=1``.

Nothing is read from command-line arguments; the key is never part of ``repr``, judge ids or records.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from lm_eval_tasks.resources import cache_root
from lm_eval_tasks.safe_yaml import ConfigFileError, load_file

PREFIX = "VALUE_JUDGE_"
KINDS = ("openai", "local")
BACKENDS = ("auto", "llama", "transformers")
SCORINGS = ("generate", "logprob")
_CHOICES = {"backend": BACKENDS, "scoring": SCORINGS}
_INT = {"concurrency": (1, 256), "max_retries": (0, 20), "max_tokens": (1, 32768), "threads": (1, 512)}
_FLOAT = {"timeout": (0.1, 3600.0), "temperature": (0.0, 2.0)}
_STR = ("base_url", "model", "kind", "pretrained", "cache", "backend", "scoring")
_BOOL = ("no_cache",)


class JudgeSettingsError(ValueError):
    """A judge setting is missing or malformed; the message names the setting to fix."""


@dataclass(frozen=True)
class JudgeSettings:
    kind: str = "openai"
    base_url: str | None = None
    model: str = "gpt-4o"
    api_key: str | None = field(default=None, repr=False)
    pretrained: str | None = None
    concurrency: int = 8
    timeout: float = 60.0
    max_retries: int = 4
    max_tokens: int | None = None  # None: each template's own reply budget (Template.max_tokens)
    temperature: float = 0.0
    cache: str | None = None
    no_cache: bool = False
    backend: str = "auto"
    threads: int | None = None
    scoring: str | None = None  # None: each template's profile decides

    def __repr__(self) -> str:  # never the key, nor credentials inside the base URL
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("api_key", "base_url")}
        args = ", ".join(f"{k}={v!r}" for k, v in shown.items())
        return f"JudgeSettings(endpoint={self.endpoint!r}, {args})"

    @property
    def endpoint(self) -> str:
        """The base URL without credentials or query (safe to record)."""
        return safe_url(self.base_url or "")

    @property
    def cache_path(self) -> Path:
        if self.cache:
            return Path(self.cache).expanduser()
        return cache_root() / "judge.sqlite"


def safe_url(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def _file_settings(path: str) -> dict[str, Any]:
    p = Path(path).expanduser()
    if not p.is_file():
        raise JudgeSettingsError(
            f"VALUE_JUDGE_CONFIG={path!r} is not a file; point it at a YAML/JSON judge config or unset it."
        )
    try:  # size, alias, depth and duplicate-key limits: one sentence naming the file and line
        data = load_file(p, "judge config")
    except ConfigFileError as e:
        raise JudgeSettingsError(str(e)) from None
    data = data or {}
    if not isinstance(data, dict):
        raise JudgeSettingsError(f"judge config {p} must be a mapping of settings, got {type(data).__name__}.")
    data = {str(k).lower(): v for k, v in data.items()}
    if "api_key" in data:
        raise JudgeSettingsError(
            f"judge config {p} contains an API key; remove it from the file and set VALUE_JUDGE_API_KEY "
            "in the environment instead."
        )
    known = {f.name for f in fields(JudgeSettings)} - {"api_key"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise JudgeSettingsError(f"judge config {p} has unknown settings {unknown}; allowed: {sorted(known)}.")
    return data


def _coerce(name: str, raw: Any, origin: str) -> Any:
    env = PREFIX + name.upper()
    bounds = _INT.get(name) or _FLOAT.get(name)
    try:
        if name in _INT:
            value: Any = int(raw)
        elif name in _FLOAT:
            value = float(raw)
        elif name in _BOOL:
            value = str(raw).strip().lower() in ("1", "true", "yes", "on")
        else:
            value = str(raw).strip()
        ok = bool(value) or name in _BOOL if bounds is None else bounds[0] <= value <= bounds[1]
    except (TypeError, ValueError):
        ok = False
    if not ok:
        kind = "an integer" if name in _INT else "a number" if name in _FLOAT else "a non-empty value"
        rng = f" in [{bounds[0]}, {bounds[1]}]" if bounds else ""
        raise JudgeSettingsError(f"{env}={raw!r} (from {origin}) is not {kind}{rng}; fix {env}.")
    return value


def load_settings(env: Mapping[str, str] | None = None) -> JudgeSettings | None:
    """The configured judge settings, or None when no judge is configured (no base URL, not local)."""
    env = os.environ if env is None else env
    settings: dict[str, Any] = {}
    origin: dict[str, str] = {}
    if env.get(PREFIX + "CONFIG"):
        for k, v in _file_settings(env[PREFIX + "CONFIG"]).items():
            settings[k], origin[k] = v, f"VALUE_JUDGE_CONFIG={env[PREFIX + 'CONFIG']}"
    for f in fields(JudgeSettings):
        value = env.get(PREFIX + f.name.upper())
        if value is not None and value != "":
            settings[f.name], origin[f.name] = value, "the environment"
    values = {k: (v if k == "api_key" else _coerce(k, v, origin[k])) for k, v in settings.items()}
    kind = values.get("kind")
    if kind is None:
        if values.get("base_url"):
            kind = "openai"
        elif values.get("pretrained"):
            kind = "local"
        else:
            return None
    kind = str(kind).lower()
    if kind not in KINDS:
        raise JudgeSettingsError(f"VALUE_JUDGE_KIND={kind!r} is not one of {list(KINDS)}; fix VALUE_JUDGE_KIND.")
    values["kind"] = kind
    for name, allowed in _CHOICES.items():
        if name in values and str(values[name]).lower() not in allowed:
            env_name = PREFIX + name.upper()
            raise JudgeSettingsError(f"{env_name}={values[name]!r} is not one of {list(allowed)}; fix {env_name}.")
        if name in values:
            values[name] = str(values[name]).lower()
    if kind == "openai" and not values.get("base_url"):
        raise JudgeSettingsError(
            "VALUE_JUDGE_KIND=openai needs an endpoint; set VALUE_JUDGE_BASE_URL (e.g. "
            "https://api.openai.com/v1 or http://127.0.0.1:8000/v1)."
        )
    if kind == "local":
        values.setdefault("pretrained", "auto")
        values.setdefault("concurrency", 1)
    return JudgeSettings(**values)
