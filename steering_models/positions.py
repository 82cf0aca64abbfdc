"""Which token positions an intervention touches.

Selectors (the spec's ``positions``):

* ``all``: every real token, prompt and generated (padding never);
* ``prompt``: the real tokens of the prompt (lm-eval's *context*);
* ``generated``: tokens produced while generating, and in loglikelihood scoring the continuation
  tokens fed back as input (lm-eval's *continuation*);
* ``last``: the last real prompt token (the one whose output predicts the first new token);
* ``{match: TEXT}``: the prompt tokens that overlap an occurrence of TEXT (all occurrences). The
  text is matched on the decoded prompt, so it works whether the tokenizer glued the leading space to
  the word (" your") or split a word across tokens. Leading/trailing whitespace of TEXT is ignored
  for matching, so ``" your values"`` and ``"your values"`` select the same tokens.

Positions are counted on real tokens, so left or right padding never shifts them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from steering_models.errors import SpecError, spec_error

KEYWORDS = ("all", "prompt", "generated", "last")


class PositionMatchError(SpecError):
    """A ``match`` selector's text is not in a prompt."""


@dataclass(frozen=True)
class Positions:
    kind: str  # one of KEYWORDS or "match"
    text: str | None = None

    @classmethod
    def from_value(cls, value: Any, where: str) -> Positions:
        if isinstance(value, str) and value in KEYWORDS:
            return cls(value)
        if isinstance(value, dict) and set(value) == {"match"}:
            text = value["match"]
            if not isinstance(text, str) or not text.strip():
                raise spec_error(where, "positions.match", text, "must be a non-empty string")
            return cls("match", text)
        raise spec_error(
            where, "positions", value,
            f"is not a position selector: expected one of {', '.join(KEYWORDS)} or {{match: TEXT}}",
        )

    def to_value(self) -> str | dict[str, str]:
        return {"match": self.text} if self.kind == "match" else self.kind

    @property
    def steers_generated(self) -> bool:
        """Whether tokens after the prompt (generated / continuation) are steered."""
        return self.kind in ("all", "generated")

    @property
    def depends_on_prompt_split(self) -> bool:
        """Whether the selection changes with where the prompt ends (not true of ``all``)."""
        return self.kind != "all"

    def prompt_indices(self, prompt_ids: Sequence[int], tokenizer: Any) -> list[int]:
        """Indices (0-based, within the real prompt tokens) this selector steers."""
        n = len(prompt_ids)
        if self.kind in ("all", "prompt"):
            return list(range(n))
        if self.kind == "generated" or n == 0:
            return []
        if self.kind == "last":
            return [n - 1]
        assert self.text is not None
        found = find_text_positions(tuple(prompt_ids), self.text, tokenizer)
        if not found:
            prompt = tokenizer.decode(list(prompt_ids), skip_special_tokens=False)
            raise PositionMatchError(
                f"steer spec field `positions.match`={self.text!r} does not occur in the prompt "
                f"(prompt starts {prompt[:120]!r}). Fix the `positions.match` text in the steering "
                "file, or use a task whose prompt contains it."
            )
        return found


_CACHE: OrderedDict[tuple[int, str, tuple[int, ...]], list[int]] = OrderedDict()
_CACHE_SIZE = 4096


def find_text_positions(ids: tuple[int, ...], text: str, tokenizer: Any) -> list[int]:
    """Token indices of ``ids`` whose decoded characters overlap an occurrence of ``text``."""
    key = (id(tokenizer), text, ids)
    hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
        return hit

    def decode(k: int) -> str:
        return tokenizer.decode(list(ids[:k]), skip_special_tokens=False, clean_up_tokenization_spaces=False)

    needle = text.strip()
    full = decode(len(ids))
    ends: dict[int, int] = {len(ids): len(full)}

    def end_of(k: int) -> int:  # number of characters decoded from the first k tokens
        if k not in ends:
            ends[k] = len(decode(k))
        return ends[k]

    def first_token_with_end_above(chars: int) -> int:
        lo, hi = 1, len(ids)  # smallest k with end_of(k) > chars; token index is k - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if end_of(mid) > chars:
                hi = mid
            else:
                lo = mid + 1
        return lo - 1

    out: list[int] = []
    start = full.find(needle)
    while start != -1:
        first = first_token_with_end_above(start)
        last = first_token_with_end_above(start + len(needle) - 1)
        out.extend(i for i in range(first, last + 1) if not out or i > out[-1])
        start = full.find(needle, start + 1)
    _CACHE[key] = out
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return out
