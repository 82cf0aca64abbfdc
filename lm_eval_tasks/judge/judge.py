"""The judge: template -> exact prompt -> cache or backend -> strict parse -> Verdict.

``judge_many`` asks the backend for the uncached prompts with up to ``concurrency`` threads and
writes each reply to the cache the moment it arrives; when the endpoint fails, the replies already
received stay cached and one ``JudgeError`` is raised (the run can be resumed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from lm_eval_tasks.judge.backends import Backend
from lm_eval_tasks.judge.cache import ReplyCache, cache_key
from lm_eval_tasks.judge.parsers import PARSERS
from lm_eval_tasks.judge.templates import get_template


@dataclass(frozen=True)
class Verdict:
    """One judged sample. ``parsed`` is None when the reply did not parse (unscored, never 0/"no")."""

    parsed: Any
    raw: str
    judge_id: str
    template: str
    template_version: str
    cached: bool

    @property
    def scored(self) -> bool:
        return self.parsed is not None


class Judge:
    def __init__(self, backend: Backend, cache: ReplyCache | None, progress: bool = False) -> None:
        self.backend = backend
        self.cache = cache
        self.progress = progress
        self.judge_id = backend.judge_id
        self.calls = 0  # backend calls made by this judge (cache hits excluded)

    def judge(self, template_name: str, fields: Mapping[str, Any]) -> Verdict:
        return self.judge_many(template_name, [fields])[0]

    def judge_many(self, template_name: str, items: Sequence[Mapping[str, Any]],
                   progress: bool | None = None) -> list[Verdict]:
        template = get_template(template_name)
        parse = PARSERS[template.parser]
        full = [template.with_defaults(f) for f in items]
        prompts = [template.render(f) for f in full]
        keys = [cache_key(self.judge_id, self.backend.endpoint, template.version, p) for p in prompts]
        raws: list[str | None] = [None] * len(prompts)
        cached = [False] * len(prompts)
        todo: dict[str, list[int]] = {}  # one call per distinct prompt
        for i, key in enumerate(keys):
            hit = self.cache.get(key) if self.cache is not None else None
            if hit is not None:
                raws[i], cached[i] = hit, True
            else:
                todo.setdefault(key, []).append(i)
        if todo:
            self._ask(template.version, template.max_tokens, prompts, todo, raws, progress)

        def verdict(i: int) -> Verdict:
            raw = raws[i] or ""
            return Verdict(parse(raw, full[i]), raw, self.judge_id, template.name, template.version,
                           cached[i])

        return [verdict(i) for i in range(len(prompts))]

    def _ask(self, version: str, max_tokens: int, prompts: list[str], todo: dict[str, list[int]],
             raws: list[str | None], progress: bool | None) -> None:
        from tqdm.auto import tqdm

        show = self.progress if progress is None else progress
        bar = tqdm(total=len(todo), desc=f"judge {self.judge_id}", disable=not show, unit="call")

        def one(key: str) -> tuple[str, str]:
            prompt = prompts[todo[key][0]]
            raw = self.backend.complete(prompt, max_tokens)
            if self.cache is not None:  # write now: a killed run keeps it
                self.cache.put(key, self.judge_id, self.backend.endpoint, version, prompt, raw)
            return key, raw

        pool = ThreadPoolExecutor(max_workers=max(1, min(self.backend.concurrency, len(todo))))
        try:
            futures = [pool.submit(one, k) for k in todo]
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    if fut.exception() is not None:
                        for other in pending:
                            other.cancel()
                        raise fut.exception()  # type: ignore[misc]
                    key, raw = fut.result()
                    self.calls += 1
                    for i in todo[key]:
                        raws[i] = raw
                    bar.update(1)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
