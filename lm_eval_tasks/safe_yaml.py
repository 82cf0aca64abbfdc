"""Reading the YAML/JSON files users hand us (steering specs, sweeps, the judge config, panels) safely.

``yaml.safe_load`` executes no code, but a ~1 KB alias bomb expands to gigabytes, 5,000-deep nesting
raises a RecursionError traceback, a 400-digit integer overflows later, and duplicate keys silently
keep the last. ``load_file`` / ``load_text`` refuse each of these with one sentence naming the file,
the line and the fix (a ``ConfigFileError``, a ``ValueError``), before anything reads the values:

- files over ``max_bytes`` (1 MiB; our files are a few KB),
- more than ``MAX_NODES`` nodes once aliases are expanded (an alias bomb) or more than ``MAX_ALIASES``
  aliases,
- nesting deeper than ``MAX_DEPTH``,
- integers with more than ``MAX_INT_DIGITS`` digits,
- a key given twice in one mapping.

YAML is read with PyYAML's pure-Python ``SafeLoader`` (the checks hook its composer; our files are
small), JSON (``.json``) with the standard library and the same limits.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_NODES = 100_000
MAX_ALIASES = 1_000
MAX_INT_DIGITS = 30

__all__ = ["ConfigFileError", "load_file", "load_text"]


class ConfigFileError(ValueError):
    """A config file we refuse to read; the message is one sentence naming the file and the fix."""


def _line(mark: Any) -> str:
    return f"line {mark.line + 1}" if mark is not None else "somewhere"


class _Loader(yaml.SafeLoader):
    """SafeLoader that counts what it composes (depth, expanded nodes, aliases) and refuses duplicate
    keys and huge integers."""

    source = "<text>"

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0
        self._aliases = 0
        self._sizes: dict[int, int] = {}  # id(node) -> its node count with aliases expanded

    def _refuse(self, what: str, mark: Any) -> ConfigFileError:
        return ConfigFileError(f"{self.source}: {_line(mark)}: {what}; fix the file.")

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise self._refuse(f"more than {MAX_ALIASES} YAML aliases (*name), refused as a likely "
                                   "alias bomb", event.start_mark)
            node = super().compose_node(parent, index)
            self._count(self._sizes.get(id(node), 1), event.start_mark)
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise self._refuse(f"nesting deeper than {MAX_DEPTH} levels", self.peek_event().start_mark)
        before = self._nodes
        node = super().compose_node(parent, index)
        self._depth -= 1
        self._nodes += 1
        self._count(0, node.start_mark)
        self._sizes[id(node)] = self._nodes - before
        return node

    def _count(self, extra: int, mark: Any) -> None:
        self._nodes += extra
        if self._nodes > MAX_NODES:
            raise self._refuse(f"more than {MAX_NODES} values once YAML aliases (*name) are expanded, refused "
                               "as an alias bomb", mark)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    if key in seen:
                        raise self._refuse(f"key {key!r} is given twice (first on {_line(seen[key])})",
                                           key_node.start_mark)
                    seen[key] = key_node.start_mark
                except TypeError:  # an unhashable key: PyYAML's own error below names it
                    pass
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: Any) -> int:
        digits = sum(ch.isdigit() for ch in str(node.value))
        if digits > MAX_INT_DIGITS:
            raise self._refuse(f"an integer of {digits} digits (at most {MAX_INT_DIGITS}); write a float such "
                               "as 1.0e+30 if you mean a large number", node.start_mark)
        return super().construct_yaml_int(node)


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)
_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_yaml_map)


def load_text(text: str, source: str = "<text>", json_only: bool = False) -> Any:
    """The data in ``text`` (YAML, or JSON when ``json_only``); ``source`` names it in errors."""
    if json_only:
        return _load_json(text, source)
    loader = _Loader(text)
    loader.source = source
    try:
        return loader.get_single_data()
    except ConfigFileError:
        raise
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigFileError(f"{source}: {_line(mark)}: not valid YAML ({problem}); fix the file.") from None
    except RecursionError:
        raise ConfigFileError(f"{source}: nesting too deep to read; fix the file.") from None
    finally:
        loader.dispose()


def _load_json(text: str, source: str) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                raise ConfigFileError(f"{source}: key {k!r} is given twice; fix the file.")
            out[k] = v
        return out

    def big_int(s: str) -> int:
        if sum(ch.isdigit() for ch in s) > MAX_INT_DIGITS:
            raise ConfigFileError(f"{source}: an integer of {len(s.lstrip('-'))} digits (at most "
                                  f"{MAX_INT_DIGITS}); write a float such as 1.0e+30 if you mean a large number; "
                                  "fix the file.")
        return int(s)

    if _json_depth(text) > MAX_DEPTH:
        raise ConfigFileError(f"{source}: nesting deeper than {MAX_DEPTH} levels; fix the file.")
    try:
        return json.loads(text, object_pairs_hook=pairs, parse_int=big_int)
    except json.JSONDecodeError as e:
        raise ConfigFileError(f"{source}: line {e.lineno}: not valid JSON ({e.msg}); fix the file.") from None
    except RecursionError:
        raise ConfigFileError(f"{source}: nesting too deep to read; fix the file.") from None


def _json_depth(text: str) -> int:
    """Bracket depth outside JSON strings."""
    depth = level = 0
    in_str = escaped = False
    for ch in text:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            level += 1
            depth = max(depth, level)
        elif ch in "]}":
            level -= 1
    return depth


def load_file(path: str | Path, what: str = "config file", max_bytes: int = MAX_BYTES) -> Any:
    """The data of the YAML/JSON file ``path`` (JSON when it ends in ``.json``), with the limits above.

    ``what`` names the file's role in errors ("judge config", "panel file", "steering file", ...).
    """
    p = Path(path).expanduser()
    source = f"{what} {p}"
    try:
        size = p.stat().st_size
    except OSError as e:
        raise ConfigFileError(f"{source} cannot be read ({e.strerror}); check the path.") from None
    if not p.is_file():
        raise ConfigFileError(f"{source} is not a file; check the path.")
    if size > max_bytes:
        raise ConfigFileError(f"{source} is {size} bytes, over the {max_bytes}-byte limit for a config file; "
                              "point at the right file.")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigFileError(f"{source} is not UTF-8 text (byte {e.start}); point at the right file.") from None
    return load_text(text, source, json_only=p.suffix.lower() == ".json")
