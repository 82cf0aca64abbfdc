"""One LLM judge for every judged step of both papers (prompts in ``lm_eval_tasks.judge.templates``).

It lives on the ground floor, beside the tasks whose filters call it; ``analysis`` re-judges logged
samples, measures agreement and serves models with it (``python -m analysis judge|judge-agreement|
judge-serve``).

``get_judge()`` -> a ``Judge`` built from the environment / ``VALUE_JUDGE_CONFIG`` (see
``lm_eval_tasks.judge.settings`` for every setting), or None when no judge is configured.
``judge.judge(template, fields) -> Verdict``; ``judge.judge_many(template, [fields, ...])``.
Templates: ``answer_judgment`` (field ``answer``; Kang Template 1), ``thought_inclination``
(``thought``; Template 1 on the thought, Table 2), ``causal_graph`` (``values``, default the 17
ValueBench values; Template 5), ``csr`` (``basic_value``, ``value_description``, ``question``,
``answer``; ConVA Table 11) and ``fluency`` (``answer``; Table 13).
``Verdict.parsed``: "yes"/"no"/"unsure" (``lm_eval_tasks.judge.labels``), True/False,
[(cause, effect), ...], or None when the reply did not parse (unscored); ``.raw``, ``.judge_id``,
``.template_version``, ``.cached``, ``.scoring``, ``.prompt``, ``.members`` (a panel's,
``VALUE_JUDGE_PANEL``: ``lm_eval_tasks.judge.panel``).
"""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from typing import Any

from lm_eval_tasks.judge.errors import JudgeError
from lm_eval_tasks.judge.judge import Judge, MemberVerdict, Verdict
from lm_eval_tasks.judge.settings import JudgeSettings, JudgeSettingsError, load_settings

__all__ = ["Judge", "JudgeError", "JudgeSettings", "JudgeSettingsError", "MemberVerdict", "Verdict", "build_configured",
           "build_judge", "get_judge", "load_settings", "require_judge"]

_JUDGES: dict[Any, Any] = {}
_LOCK = threading.Lock()


def build_judge(settings: JudgeSettings, progress: bool = False) -> Judge:
    """A new Judge for ``settings`` (its backend and cache opened now)."""
    from lm_eval_tasks.judge.backends import make_backend
    from lm_eval_tasks.judge.cache import ReplyCache

    cache = None if settings.no_cache else ReplyCache(settings.cache_path)
    judge = Judge(make_backend(settings), cache, progress=progress)
    judge.scoring = settings.scoring or ""
    return judge


def panel_file(env: Any = None) -> str | None:
    return (os.environ if env is None else env).get("VALUE_JUDGE_PANEL") or None


def build_configured(progress: bool = False, no_cache: bool = False) -> Any:
    """A new judge (or panel) from the environment, or None when none is configured.

    ``no_cache=True`` bypasses the reply cache for this judge (every member of a panel), as
    ``VALUE_JUDGE_NO_CACHE=1`` would, without touching the process environment.
    """
    panel = panel_file()
    if panel:
        from lm_eval_tasks.judge.panel import PanelJudge, panel_configs

        configs = [replace(c, no_cache=True) if no_cache else c for c in panel_configs(panel)]
        return PanelJudge([build_judge(c, progress=progress) for c in configs])
    settings = load_settings()
    if settings is None:
        return None
    return build_judge(replace(settings, no_cache=True) if no_cache else settings, progress=progress)


def get_judge(settings: JudgeSettings | None = None) -> Any:
    """The judge (or panel) configured by ``settings`` or the environment (one per setting per process), or None."""
    panel = panel_file() if settings is None else None
    if panel:
        from lm_eval_tasks.judge.panel import PanelJudge, panel_configs

        configs = tuple(panel_configs(panel))
        with _LOCK:
            if configs not in _JUDGES:
                _JUDGES[configs] = PanelJudge([build_judge(c) for c in configs])
            return _JUDGES[configs]
    settings = settings if settings is not None else load_settings()
    if settings is None:
        return None
    with _LOCK:
        if settings not in _JUDGES:
            _JUDGES[settings] = build_judge(settings)
        return _JUDGES[settings]


def require_judge(purpose: str) -> Judge:
    """The configured judge, or a ValueError saying that ``purpose`` needs one and how to configure it."""
    judge = get_judge()
    if judge is None:
        raise ValueError(f"{purpose} needs a judge: set VALUE_JUDGE_BASE_URL + VALUE_JUDGE_MODEL (or "
                         "VALUE_JUDGE_PRETRAINED for a local one) in the environment.")
    return judge
