"""One LLM judge for every judged step of both papers (prompts in ``analysis.judge.templates``).

``get_judge()`` -> a ``Judge`` built from the environment / ``VALUE_JUDGE_CONFIG`` (see
``analysis.judge.config`` for every setting), or None when no judge is configured.
``judge.judge(template, fields) -> Verdict``; ``judge.judge_many(template, [fields, ...])``.
Templates: ``answer_judgment`` (field ``answer``; Kang Template 1), ``thought_inclination``
(``thought``; Template 1 on the thought, Table 2), ``causal_graph`` (``values``, default the 17
ValueBench values; Template 5), ``csr`` (``basic_value``, ``value_description``, ``question``,
``answer``; ConVA Table 11) and ``fluency`` (``answer``; Table 13).
``Verdict.parsed``: "yes"/"no"/"unsure", True/False, [(cause, effect), ...], or None when the reply did
not parse (unscored); ``.raw``, ``.judge_id``, ``.template_version``, ``.cached``.
"""

from __future__ import annotations

import threading

from analysis.judge.config import JudgeConfig, JudgeConfigError, load_config
from analysis.judge.errors import JudgeError
from analysis.judge.judge import Judge, Verdict

__all__ = ["Judge", "require_judge", "JudgeConfig", "JudgeConfigError", "JudgeError", "Verdict", "build_judge",
           "get_judge"]

_JUDGES: dict[JudgeConfig, Judge] = {}
_LOCK = threading.Lock()


def build_judge(config: JudgeConfig, progress: bool = False) -> Judge:
    """A new Judge for ``config`` (its backend and cache opened now)."""
    from analysis.judge.backends import make_backend
    from analysis.judge.cache import ReplyCache

    cache = None if config.no_cache else ReplyCache(config.cache_path)
    return Judge(make_backend(config), cache, progress=progress)


def get_judge(config: JudgeConfig | None = None) -> Judge | None:
    """The judge configured by ``config`` or the environment (one per config per process), or None."""
    config = config if config is not None else load_config()
    if config is None:
        return None
    with _LOCK:
        if config not in _JUDGES:
            _JUDGES[config] = build_judge(config)
        return _JUDGES[config]


def require_judge(purpose: str) -> Judge:
    """The configured judge, or a ValueError saying that ``purpose`` needs one and how to configure it."""
    judge = get_judge()
    if judge is None:
        raise ValueError(f"{purpose} needs a judge: set VALUE_JUDGE_BASE_URL + VALUE_JUDGE_MODEL (or "
                         "VALUE_JUDGE_PRETRAINED for a local one) in the environment.")
    return judge

