"""Strict parsers of judge replies: a reply that does not clearly give one label is None (unscored).

- ``yes_no_unsure`` (Template 1, thought inclination): the reply, after dropping markdown emphasis,
  quotes, an "Output:"/"Answer:" prefix and final punctuation, is exactly "yes", "no" or "unsure"
  (any case) -> that label.
- ``yes_no_bool`` (CSR, labels "Yes"/"No"): the reply starts with the label as a word (after the same
  decorations and an optional "Label:"), not followed by "or"/"/" -> True/False.
- ``true_false`` (FR, "Directly assign False or True first ... give the reason"): starts with
  "True"/"False" as a word and the other label does not occur in the rest -> bool.
- ``edges`` (Template 5): exactly one ``edges = [ [a, b], ... ]`` block with quoted names and ``#``
  comments, read by a small tokenizer (no ``eval``); names are matched to the template's values
  (case, ``_`` vs space ignored); a name outside them makes the reply unscored -> [(from, to), ...].
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lm_eval_tasks.judge.labels import ANSWER_LABELS

_DECOR = "*_`\"'“”‘’ \t\r\n"
_PREFIX_RE = re.compile(r"^(?:output|answer|label|judgment|final answer)\s*[:：-]\s*", re.IGNORECASE)


def _clean(raw: str) -> str:
    text = raw.strip().strip(_DECOR)
    for _ in range(2):
        text = _PREFIX_RE.sub("", text).strip().strip(_DECOR)
    return text


def parse_yes_no_unsure(raw: str, fields: Mapping[str, Any] | None = None) -> str | None:
    text = _clean(raw).rstrip(".!").strip(_DECOR).lower()
    return text if text in ANSWER_LABELS else None


def _leading_label(raw: str, labels: tuple[str, str]) -> str | None:
    text = _clean(raw)
    m = re.match(r"([A-Za-z]+)\b(.*)$", text, re.DOTALL)
    if not m or m.group(1).lower() not in labels:
        return None
    label = m.group(1).lower()
    other = labels[1] if label == labels[0] else labels[0]
    # "Yes or No", "True/False", '"Yes", "No"': both labels offered, no choice made
    if re.match(rf"[\s,/|*\"'`]*(?:or\b|/|{other}\b)", m.group(2), re.IGNORECASE):
        return None
    return label


def parse_yes_no_bool(raw: str, fields: Mapping[str, Any] | None = None) -> bool | None:
    label = _leading_label(raw, ("yes", "no"))
    return None if label is None else label == "yes"


def parse_true_false(raw: str, fields: Mapping[str, Any] | None = None) -> bool | None:
    label = _leading_label(raw, ("true", "false"))
    if label is None:
        return None
    other = "false" if label == "true" else "true"
    rest = _clean(raw)[len(label):]
    if re.search(rf"\b{other}\b", rest, re.IGNORECASE):
        return None
    return label == "true"


_TOKEN_RE = re.compile(
    r"""\s+|\#[^\n]*|(?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')|(?P<punct>[\[\],])|(?P<bad>.)""",
    re.DOTALL,
)


def _tokens(text: str) -> list[str] | None:
    out = []
    for m in _TOKEN_RE.finditer(text):
        if m.group("bad") is not None:
            return None
        if m.group("str") is not None:
            out.append(m.group("str"))
        elif m.group("punct") is not None:
            out.append(m.group("punct"))
    return out


def _list_body(text: str, start: int) -> str | None:
    """The text of the bracketed list opening at ``text[start] == '['`` (brackets in strings and
    comments are skipped), or None if it never closes."""
    depth, i, quote = 0, start, None
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote or c == "\n":
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "#":
            nl = text.find("\n", i)
            i = len(text) if nl < 0 else nl
            continue
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
        i += 1
    return None


def _norm(name: str) -> str:
    return re.sub(r"[\s_]+", " ", name).strip().lower()


def parse_edges(raw: str, fields: Mapping[str, Any] | None = None) -> list[tuple[str, str]] | None:
    starts = [m.end() - 1 for m in re.finditer(r"\bedges\s*=\s*\[", raw)]
    if len(starts) != 1:  # none, or several (e.g. the format example echoed before the answer)
        return None
    body = _list_body(raw, starts[0])
    if body is None:
        return None
    toks = _tokens(body)
    if toks is None:
        return None
    values: Sequence[str] = (fields or {}).get("values") or []
    if isinstance(values, str):
        return None
    by_norm = {_norm(v): v for v in values}
    edges: list[tuple[str, str]] = []
    i = 1  # after the outer "["
    while i < len(toks) and toks[i] != "]":
        pair = toks[i : i + 5]
        if len(pair) < 5 or pair[0] != "[" or pair[2] != "," or pair[4] != "]":
            return None
        if not (pair[1][0] in "\"'" and pair[3][0] in "\"'"):
            return None
        names = []
        for tok in (pair[1], pair[3]):
            name = tok[1:-1]
            if by_norm:
                if _norm(name) not in by_norm:
                    return None
                name = by_norm[_norm(name)]
            names.append(name)
        edges.append((names[0], names[1]))
        i += 5
        if i < len(toks) and toks[i] == ",":
            i += 1
    if i != len(toks) - 1:
        return None
    return edges


PARSERS: dict[str, Callable[[str, Mapping[str, Any] | None], Any]] = {
    "yes_no_unsure": parse_yes_no_unsure,
    "yes_no_bool": parse_yes_no_bool,
    "true_false": parse_true_false,
    "edges": parse_edges,
}

# For scoring by next-token log-probabilities (lm_eval_tasks.judge.scoring): each parser's labels and the
# words that start a reply giving that label (each also tried with a leading space and in lowercase).
LABEL_WORDS: dict[str, tuple[tuple[Any, str], ...]] = {
    "yes_no_unsure": (("yes", "Yes"), ("no", "No"), ("unsure", "Unsure")),
    "yes_no_bool": ((True, "Yes"), (False, "No")),
    "true_false": ((True, "True"), (False, "False")),
}
