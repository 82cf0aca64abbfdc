"""A judge's profile: per template, which prompt it reads, how its reply is scored, and the fitted biases.

A profile is a JSON file per judge id::

    {"judge_id": "local:qwen2.5-coder-1.5b-instruct@llama.cpp",
     "templates": {"answer_judgment": {"prompt": "t1-qa", "prompt_version": "vse-t1qa/v1",
                                       "scoring": "logprob", "biases": {"yes": -2.0, "no": 0.0, "unsure": -1.5},
                                       "fitted": {"set": "valuebench-t1", "n": 150, "seed": 0, "kappa": 0.71}}}}

Where it is read from, first found wins: the file named by ``VALUE_JUDGE_PROFILE``; the profile
``python -m analysis judge-bench --fit`` wrote for that judge id under
``$VALUE_STEERING_CACHE/judge-profiles/``; the profile shipped with the package
(``lm_eval_tasks/judge/data/profiles/``, fitted by the measurements in bench/RESULTS.md); a judge id with an
engine suffix (``@llama.cpp``) falls back to its model's profile. An entry whose
``prompt_version`` is not the prompt's current version is ignored (a changed prompt needs a new fit).
A template without an entry is judged with the paper's prompt, by generation.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lm_eval_tasks.resources import cache_root

log = logging.getLogger(__name__)

SHIPPED = Path(__file__).resolve().parent / "data" / "profiles"
SCORINGS = ("generate", "logprob")
PROFILE_ENV = "VALUE_JUDGE_PROFILE"


@dataclass(frozen=True)
class TemplateProfile:
    prompt: str = "paper"
    prompt_version: str | None = None
    scoring: str = "generate"
    biases: dict[str, float] = field(default_factory=dict)
    fitted: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        bias = ", ".join(f"{k} {v:+.2f}" for k, v in self.biases.items() if v)
        return f"prompt {self.prompt}, {self.scoring}" + (f", biases {bias}" if bias else "")


def safe_name(judge_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", judge_id).strip("_")


def user_profile_path(judge_id: str) -> Path:
    return cache_root() / "judge-profiles" / f"{safe_name(judge_id)}.json"


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
        if not isinstance(data.get("templates"), dict):
            raise ValueError("no `templates` mapping")
        return data
    except (OSError, ValueError, AttributeError) as e:
        raise ValueError(f"judge profile {path} is not a profile JSON ({e}); fix or delete it "
                         f"(or unset {PROFILE_ENV}).") from None


def profile_files(judge_id: str) -> list[Path]:
    """The profile files of ``judge_id``, least specific first: the shipped one, then the user's (fitted by
    ``judge-bench --fit``), each for the model (``local:judge-1.5b``) before the engine-specific id
    (``local:judge-1.5b@llama.cpp``: the engines read the same weights). ``VALUE_JUDGE_PROFILE`` alone when set."""
    if os.environ.get(PROFILE_ENV):
        return [Path(os.environ[PROFILE_ENV]).expanduser()]
    names = list(dict.fromkeys((judge_id.split("@", 1)[0], judge_id)))
    candidates = [SHIPPED / f"{safe_name(n)}.json" for n in names] + [user_profile_path(n) for n in names]
    return [path for path in candidates if path.is_file()]


def load_profile(judge_id: str) -> dict[str, TemplateProfile]:
    """template name -> its entry for this judge: each template's entry from the most specific file that has
    one (a user's fit of one template keeps the shipped entries of the others); entries of an outdated prompt
    version dropped."""
    from lm_eval_tasks.judge.templates import VARIANTS

    out: dict[str, TemplateProfile] = {}
    for path in profile_files(judge_id):
        if not path.is_file():
            raise ValueError(f"{PROFILE_ENV}={str(path)!r} is not a file; point it at a judge profile JSON or "
                             "unset it.")
        for name, entry in _read(path)["templates"].items():
            try:
                prof = TemplateProfile(**entry)
            except TypeError as e:
                raise ValueError(f"judge profile {path}: entry {name!r} is malformed ({e}); fix or refit it.") from None
            variant = VARIANTS.get(name, {}).get(prof.prompt)
            if variant is None or prof.scoring not in SCORINGS:
                raise ValueError(f"judge profile {path}: entry {name!r} names prompt {prof.prompt!r} / scoring "
                                 f"{prof.scoring!r}, which this version does not have; refit it with judge-bench --fit.")
            if prof.prompt_version not in (None, variant.version):
                log.warning("judge profile %s: %s was fitted on prompt version %s, now %s; ignoring it (refit with "
                            "`python -m analysis judge-bench --fit`).", path, name, prof.prompt_version,
                            variant.version)
                continue
            out[name] = prof
    return out


def save_profile(judge_id: str, entries: dict[str, TemplateProfile], path: Path | None = None) -> Path:
    """Merge ``entries`` into the judge's user profile (or ``path``) and write it atomically."""
    path = path or user_profile_path(judge_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = _read(path) if path.is_file() else {"judge_id": judge_id, "templates": {}}
    data["judge_id"] = judge_id
    for name, prof in entries.items():
        data["templates"][name] = asdict(prof)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path
