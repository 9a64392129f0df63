"""Reading user files strictly: text is UTF-8 and small, JSON and YAML have no duplicate keys,
no huge integers, no runaway nesting and no alias bombs. Every failure is one NasError line.

`short(value)` shows a value read from a file in an error message without ever printing (or
even computing) the repr of something huge.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from pathlib import Path
from typing import Any

import yaml

from nas.errors import NasError

MAX_FILE_BYTES = 1 << 20      # architecture, recipe and space files are a few kB
MAX_DEPTH = 64                # nesting of lists/objects; our files use at most 4
MAX_INT_DIGITS = 30           # far beyond any count in our files (int64 has 19 digits)
MAX_YAML_VALUES = 100_000     # scalars + containers after expanding YAML aliases


def short(value: Any, limit: int = 60) -> str:
    """A repr of `value` for an error message, at most about `limit` characters. Containers of
    more than a few plain values are summarised, so a YAML alias bomb is never expanded."""
    if isinstance(value, (list, tuple, dict, set)):
        flat = [x for pair in value.items() for x in pair] if isinstance(value, dict) else value
        if len(value) <= 8 and all(_plain(x) for x in flat):
            return _clip(repr(value), limit)
        return f"<a {type(value).__name__} of {len(value)} items>"
    if not _plain(value):
        return f"<an integer of about {int(value.bit_length() * 0.30103):,} digits>"
    return _clip(repr(value[: limit] if isinstance(value, (str, bytes)) else value), limit)


def _plain(value: Any) -> bool:
    """Not a container, and cheap to repr (Python refuses to print integers over 4300 digits)."""
    if isinstance(value, int):
        return value.bit_length() <= 200
    return not isinstance(value, (list, tuple, dict, set))


def field_name(key: Any) -> str:
    """A mapping key as it can follow `where.` in a one-line message."""
    text = str(key)[:40] if isinstance(key, str) else short(key, 40)
    return text if text.isprintable() and text else short(text, 40)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_text(path: str | Path, what: str = "file", max_bytes: int = MAX_FILE_BYTES) -> str:
    """The contents of a UTF-8 text file of at most `max_bytes` bytes; NasError naming the
    path otherwise (missing, empty, a folder, unreadable, too big, not UTF-8)."""
    if isinstance(path, str) and not path.strip():
        raise NasError(f"{what} path {path!r} is empty; expected the path of a {what}")
    path = Path(path)
    if not path.is_file():
        raise NasError(f"{path}: no such {what}")
    try:
        with open(path, "rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as e:
        raise NasError(f"{path}: cannot read {what} ({e.strerror or e})") from None
    if len(raw) > max_bytes:
        raise NasError(f"{path}: {what} is larger than {max_bytes:,} bytes; expected a small text file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise NasError(f"{path}: {what} is not UTF-8 text (byte 0x{raw[e.start]:02x} at offset "
                       f"{e.start}); save it as UTF-8") from None
    return text.removeprefix("\ufeff")


# ---------------------------------------------------------------- JSON

def _json_object(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise NasError(f"duplicate key {short(key)}; each key may appear once per object")
        out[key] = value
    return out


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise NasError(f"an integer of {len(text)} digits; at most {MAX_INT_DIGITS} digits are allowed")
    return int(text)


def _json_constant(name: str) -> float:
    raise NasError(f"{name} is not JSON; write a finite number")


def _max_depth(text: str) -> int:
    """Deepest nesting of [ and { outside strings (cheap, so it can run before parsing)."""
    brackets = re.sub(r'"(?:[^"\\]|\\.)*"|[^\[\]{}"]+', "", text)
    return max(accumulate(1 if c in "[{" else -1 if c in "]}" else 0 for c in brackets), default=0)


def loads_json(text: str, where: str) -> Any:
    """Decode JSON text strictly; NasError starting with `where` for malformed text, duplicate
    keys, NaN/Infinity, integers over MAX_INT_DIGITS digits or nesting over MAX_DEPTH."""
    if _max_depth(text) > MAX_DEPTH:
        raise NasError(f"{where}: nested more than {MAX_DEPTH} levels deep; expected a flat document")
    try:
        return json.loads(text, object_pairs_hook=_json_object, parse_int=_json_int,
                          parse_constant=_json_constant)
    except json.JSONDecodeError as e:
        raise NasError(f"{where}: malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except NasError as e:
        raise NasError(f"{where}: {e}") from None
    except RecursionError:
        raise NasError(f"{where}: nested more than {MAX_DEPTH} levels deep; expected a flat document") from None


def read_json(path: str | Path, what: str = "file") -> Any:
    """`loads_json` of `read_text(path)`; errors start with the path."""
    return loads_json(read_text(path, what), str(path))


# ---------------------------------------------------------------- YAML

class _StrictLoader(yaml.SafeLoader):
    """safe_load that refuses duplicate keys and keys that are not strings."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                raise NasError(f"line {line}: key {short(key)} is not allowed; keys are names (strings)")
            if key in seen:
                raise NasError(f"line {line}: duplicate key {short(key)}; each key may appear once per mapping")
            seen.add(key)
        mapping = super().construct_mapping(node, deep)
        if not all(isinstance(k, str) for k in mapping):  # a key brought in by a `<<` merge
            raise NasError(f"line {node.start_mark.line + 1}: keys are names (strings)")
        return mapping

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        super().flatten_mapping(node)
        if len(node.value) > MAX_YAML_VALUES:  # chained `<<` merges double a mapping per level
            raise NasError(f"line {node.start_mark.line + 1}: a mapping of more than "
                           f"{MAX_YAML_VALUES:,} keys after `<<` merges; expected a small document")

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        digits = len(node.value.lstrip("+-"))
        if digits > MAX_INT_DIGITS:
            raise NasError(f"line {node.start_mark.line + 1}: an integer of {digits} digits; "
                           f"at most {MAX_INT_DIGITS} digits are allowed")
        return super().construct_yaml_int(node)


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _StrictLoader.construct_yaml_int)


def _check_expanded_size(data: Any, where: str) -> None:
    """Refuse a document that expands (through YAML aliases) to more than MAX_YAML_VALUES values
    or MAX_DEPTH levels; iterative, so a self-referencing alias cannot recurse or loop."""
    stack, count = [(data, 0)], 0
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > MAX_YAML_VALUES or depth > MAX_DEPTH:
            raise NasError(f"{where}: expands to more than {MAX_YAML_VALUES:,} values or {MAX_DEPTH} "
                           f"levels (YAML aliases?); expected a small document")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def loads_yaml(text: str, where: str) -> Any:
    """Decode YAML text with safe_load semantics, strictly: NasError starting with `where` for
    malformed text, duplicate or non-string keys, or a document that expands past the caps."""
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as e:
        raise NasError(f"{where}: malformed YAML: {_clip(str(e).splitlines()[0], 200)}") from None
    except NasError as e:
        raise NasError(f"{where}: {e}") from None
    except RecursionError:
        raise NasError(f"{where}: nested more than {MAX_DEPTH} levels deep; expected a small document") from None
    except ValueError as e:  # e.g. a timestamp like 2024-13-45, or an integer too long to convert
        raise NasError(f"{where}: bad YAML value: {_clip(str(e), 200)}") from None
    _check_expanded_size(data, where)
    return data


def read_yaml(path: str | Path, what: str = "file") -> Any:
    """`loads_yaml` of `read_text(path)`; errors start with the path."""
    return loads_yaml(read_text(path, what), str(path))
