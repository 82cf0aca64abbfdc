"""A panel of judges: every member judges each item, the verdict is the majority.

``VALUE_JUDGE_PANEL`` names a YAML/JSON file::

    members:
      - {kind: local, pretrained: judge-1.5b}
      - {kind: local, pretrained: default}
      - {base_url: "https://api.openai.com/v1", model: gpt-4o, api_key_env: OPENAI_API_KEY}

Each member takes the settings of ``lm_eval_tasks.judge.settings`` (lowercase, without the ``VALUE_JUDGE_``
prefix); a member's key comes only from the environment variable its ``api_key_env`` names. Settings
not given by a member (the cache, timeouts, ...) come from the environment, as for a single judge.
The verdict is the label more than half of the members who gave one gave; a tie, or no member giving a
label, is unscored (None). A member that fails (its endpoint down, a key rejected) is recorded with
its error and counts as giving no label. ``Verdict.members`` keeps each member's verdict.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lm_eval_tasks.judge.errors import JudgeError
from lm_eval_tasks.judge.judge import Judge, MemberVerdict, Verdict
from lm_eval_tasks.judge.settings import PREFIX, JudgeSettings, JudgeSettingsError, load_settings
from lm_eval_tasks.safe_yaml import ConfigFileError, load_file

PANEL_ENV = PREFIX + "PANEL"


def _hashable(parsed: Any) -> Any:
    return tuple(tuple(e) for e in parsed) if isinstance(parsed, list) else parsed


def majority(parsed: Sequence[Any]) -> Any:
    """The label more than half of the labelled members gave, else None (a tie or no label)."""
    counts = Counter(_hashable(p) for p in parsed if p is not None)
    if not counts:
        return None
    (top, n), *rest = counts.most_common()
    if rest and rest[0][1] == n:
        return None
    for p in parsed:  # the member's own value (a list stays a list)
        if p is not None and _hashable(p) == top:
            return p
    return None


def panel_configs(path: str | Path, env: Mapping[str, str] | None = None) -> list[JudgeSettings]:
    """One JudgeSettings per member of the panel file (a member's settings over the environment's)."""
    env = os.environ if env is None else env
    p = Path(path).expanduser()
    where = f"{PANEL_ENV}={str(path)!r}"
    if not p.is_file():
        raise JudgeSettingsError(f"{where} is not a file; point it at a YAML/JSON panel file or unset it.")
    try:  # size, alias, depth and duplicate-key limits: one sentence naming the file and line
        data = load_file(p, "panel file")
    except ConfigFileError as e:
        raise JudgeSettingsError(str(e)) from None
    members = data.get("members") if isinstance(data, dict) else None
    if not isinstance(members, list) or len(members) < 2 or not all(isinstance(m, dict) for m in members):
        raise JudgeSettingsError(f"panel file {p} needs `members:` with at least two judge settings mappings; "
                               "fix the file.")
    base = {k: v for k, v in env.items() if k.startswith(PREFIX) and k not in (PANEL_ENV, PREFIX + "CONFIG")}
    for k in ("BASE_URL", "MODEL", "API_KEY", "KIND", "PRETRAINED"):  # who the judge is: the member's alone
        base.pop(PREFIX + k, None)
    configs = []
    for i, member in enumerate(members):
        settings = dict(base)
        for key, value in member.items():
            key = str(key).lower()
            if key == "api_key":
                raise JudgeSettingsError(f"panel file {p}, member {i + 1}, contains an API key; name the environment "
                                       "variable that holds it with `api_key_env:` instead.")
            if key == "api_key_env":
                if not env.get(str(value)):
                    raise JudgeSettingsError(f"panel file {p}, member {i + 1}: api_key_env {value!r} is not set in "
                                           "the environment; export it.")
                settings[PREFIX + "API_KEY"] = env[str(value)]
                continue
            settings[PREFIX + key.upper()] = str(value)
        try:
            config = load_settings(settings)
        except JudgeSettingsError as e:
            raise JudgeSettingsError(f"panel file {p}, member {i + 1}: {e}") from None
        if config is None:
            raise JudgeSettingsError(f"panel file {p}, member {i + 1} names no judge; give it `base_url` or "
                                   "`kind: local`.")
        configs.append(config)
    return configs


class PanelJudge:
    """Judges like a ``Judge``; each verdict is the members' majority (``Verdict.members``)."""

    def __init__(self, members: Sequence[Judge]) -> None:
        self.members = list(members)
        self.judge_id = "panel[" + ",".join(m.judge_id for m in self.members) + "]"

    @property
    def calls(self) -> int:
        return sum(m.calls for m in self.members)

    @property
    def call_seconds(self) -> float:
        return sum(m.call_seconds for m in self.members)

    def judge(self, template_name: str, fields: Mapping[str, Any]) -> Verdict:
        return self.judge_many(template_name, [fields])[0]

    def judge_many(self, template_name: str, items: Sequence[Mapping[str, Any]],
                   progress: bool | None = None, on_error: str = "keep") -> list[Verdict]:
        """Verdicts in order; a member that fails gives no label (``on_error`` is accepted for the
        ``Judge`` interface: a panel always keeps going)."""
        per_member: list[list[MemberVerdict]] = []
        for m in self.members:
            try:
                vs = m.judge_many(template_name, items, progress=progress, on_error="keep")
                per_member.append([MemberVerdict(v.judge_id, v.parsed, v.raw, v.error) for v in vs])
            except JudgeError as e:  # this member gives no label; the others still decide
                per_member.append([MemberVerdict(m.judge_id, None, "", str(e))] * len(items))
        from lm_eval_tasks.judge.templates import get_template

        template = get_template(template_name)
        out = []
        for i in range(len(items)):
            members = tuple(pm[i] for pm in per_member)
            raw = json.dumps([[mv.judge_id, mv.raw] for mv in members], ensure_ascii=False)
            failed = [mv.error for mv in members if mv.error]
            error = "; ".join(failed) if len(failed) == len(members) else None  # no member replied
            out.append(Verdict(majority([mv.parsed for mv in members]), raw, self.judge_id, template.name,
                               template.version, False, "panel", "panel", members, error))
        return out
