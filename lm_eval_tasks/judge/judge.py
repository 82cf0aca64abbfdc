"""The judge: template -> exact prompt -> cache or backend -> strict parse -> Verdict.

``judge_many`` asks the backend for the uncached prompts with up to ``concurrency`` threads and
writes each non-empty reply to the cache the moment it arrives (an empty reply is unscored and asked
again next time). A call whose reply is unusable (``ReplyError``: HTML or truncated JSON with HTTP 200,
JSON that is not a chat completion) leaves that item unscored with ``Verdict.error`` and the others go
on. When the endpoint itself fails (unreachable, key rejected, timeouts), the replies already received
stay cached and, by default, one ``JudgeError`` is raised (the run can be resumed); with
``on_error="keep"`` (the tasks' filters) the received verdicts are returned and every other item is
unscored with that sentence as its ``error``.

Per template the judge's profile (``lm_eval_tasks.judge.profiles``) picks the prompt variant and the
scoring: ``generate`` (a reply, parsed strictly) or ``logprob`` (the label words' next-token
log-probabilities + the profile's biases, ``lm_eval_tasks.judge.scoring``; local backends only).
``VALUE_JUDGE_SCORING`` (or ``judge_many``'s ``profile``) overrides it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any

from lm_eval_tasks.judge.backends import Backend
from lm_eval_tasks.judge.cache import ReplyCache, cache_key
from lm_eval_tasks.judge.errors import JudgeError, ReplyError
from lm_eval_tasks.judge.parsers import LABEL_WORDS, PARSERS
from lm_eval_tasks.judge.profiles import TemplateProfile, load_profile
from lm_eval_tasks.judge.scoring import LabelScores, decide
from lm_eval_tasks.judge.templates import Template, get_template


@dataclass(frozen=True)
class MemberVerdict:
    """One panel member's verdict (``error``: why it gave none)."""

    judge_id: str
    parsed: Any
    raw: str
    error: str | None = None


@dataclass(frozen=True)
class Verdict:
    """One judged sample. ``parsed`` is None when the reply did not parse (unscored, never 0/"no")."""

    parsed: Any
    raw: str
    judge_id: str
    template: str
    template_version: str
    cached: bool
    scoring: str = "generate"
    prompt: str = "paper"
    members: tuple[MemberVerdict, ...] = ()  # a panel's verdict: each member's
    error: str | None = None  # why there is no reply (unscored); None when the judge replied

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
        self.call_seconds = 0.0  # wall time spent waiting for those calls
        self.scoring = ""  # VALUE_JUDGE_SCORING: "" = each template's profile decides
        self._profile: dict[str, TemplateProfile] | None = None

    def profile(self, template_name: str) -> TemplateProfile:
        """How this judge judges ``template_name``: its profile's entry with the scoring override applied."""
        if self._profile is None:
            self._profile = load_profile(self.judge_id)
        prof = self._profile.get(template_name, TemplateProfile())
        if self.scoring and self.scoring != prof.scoring:  # the biases were fitted for the other scoring
            prof = replace(prof, scoring=self.scoring, biases={})
        return prof

    def judge(self, template_name: str, fields: Mapping[str, Any]) -> Verdict:
        return self.judge_many(template_name, [fields])[0]

    def judge_many(self, template_name: str, items: Sequence[Mapping[str, Any]],
                   progress: bool | None = None, profile: TemplateProfile | None = None,
                   on_error: str = "raise") -> list[Verdict]:
        """Verdicts in order; ``profile`` (prompt, scoring, biases) replaces the judge's own for this call.

        ``on_error``: ``"raise"`` a ``JudgeError`` when the endpoint fails, or ``"keep"`` the verdicts
        received and mark the rest unscored with the error (a reply that is unusable is always kept so).
        """
        if on_error not in ("raise", "keep"):
            raise ValueError(f"judge_many's on_error={on_error!r} is not 'raise' or 'keep'.")
        prof = profile or self.profile(template_name)
        template = get_template(template_name, prof.prompt)
        if prof.scoring == "logprob":
            if not hasattr(self.backend, "label_logprobs") or template.parser not in LABEL_WORDS:
                raise JudgeError(f"judge {self.judge_id} cannot score template {template_name!r} by "
                                 "log-probabilities (an endpoint, or a template without label words); set "
                                 "VALUE_JUDGE_SCORING=generate.")
            choices = LABEL_WORDS[template.parser]

            def parse(raw: str, fields: Mapping[str, Any]) -> Any:
                scores = LabelScores.from_raw(raw)
                return None if scores is None else decide(scores, choices, prof.biases)
        else:
            choices = ()
            parse = PARSERS[template.parser]
        endpoint = self.backend.endpoint + ("#logprob" if prof.scoring == "logprob" else "")
        full = [template.with_defaults(f) for f in items]
        prompts = [template.render(f) for f in full]
        keys = [cache_key(self.judge_id, endpoint, template.version, p) for p in prompts]
        raws: list[str | None] = [None] * len(prompts)
        cached = [False] * len(prompts)
        errors: list[str | None] = [None] * len(prompts)
        todo: dict[str, list[int]] = {}  # one call per distinct prompt
        for i, key in enumerate(keys):
            hit = self.cache.get(key) if self.cache is not None else None
            if hit:  # an empty reply (cached by older versions) is asked again
                raws[i], cached[i] = hit, True
            else:
                todo.setdefault(key, []).append(i)
        if todo:
            self._ask(template, endpoint, choices, prompts, todo, raws, errors, progress, on_error)

        def verdict(i: int) -> Verdict:
            raw = raws[i] or ""
            parsed = None if errors[i] is not None else parse(raw, full[i])
            return Verdict(parsed, raw, self.judge_id, template.name, template.version,
                           cached[i], prof.scoring, template.variant, error=errors[i])

        return [verdict(i) for i in range(len(prompts))]

    def _ask(self, template: Template, endpoint: str, choices: Sequence[tuple[Any, str]], prompts: list[str],
             todo: dict[str, list[int]], raws: list[str | None], errors: list[str | None],
             progress: bool | None, on_error: str) -> None:
        from tqdm.auto import tqdm

        show = self.progress if progress is None else progress
        bar = tqdm(total=len(todo), desc=f"judge {self.judge_id}", disable=not show, unit="call")

        def one(key: str) -> tuple[str, str, str | None]:
            prompt = prompts[todo[key][0]]
            try:
                if choices:
                    raw = self.backend.label_logprobs(prompt, choices).to_raw()  # type: ignore[attr-defined]
                else:
                    raw = self.backend.complete(prompt, template.max_tokens)
            except ReplyError as e:  # this call only: unscored with the reason, never cached
                return key, "", str(e)
            if not raw:
                return key, "", f"judge {self.judge_id} replied with empty text (not cached: asked again next time)"
            if self.cache is not None:  # write now: a killed run keeps it
                self.cache.put(key, self.judge_id, endpoint, template.version, prompt, raw)
            return key, raw, None

        def record(fut: Any) -> None:
            key, raw, why = fut.result()
            self.calls += 1
            for i in todo[key]:
                raws[i], errors[i] = raw, why
            bar.update(1)

        pool = ThreadPoolExecutor(max_workers=max(1, min(self.backend.concurrency, len(todo))))
        start = time.perf_counter()
        failure: BaseException | None = None
        futures = []
        try:
            futures = [pool.submit(one, k) for k in todo]
            pending = set(futures)
            while pending and failure is None:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    if fut.exception() is None:
                        record(fut)
                    elif failure is None:  # the endpoint failed: ask nothing more
                        failure = fut.exception()
                        for other in pending:
                            other.cancel()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self.call_seconds += time.perf_counter() - start
        if failure is not None:
            for fut in pending:  # calls already running at the failure: their replies count (and are cached)
                if not fut.cancelled() and fut.exception() is None:
                    record(fut)
        bar.close()
        if failure is None:
            return
        if on_error == "raise" or not isinstance(failure, JudgeError):
            raise failure
        for idx in todo.values():  # every item not answered: unscored with the endpoint's sentence
            for i in idx:
                if raws[i] is None and errors[i] is None:
                    errors[i] = str(failure)
