"""A small YAML writer for JSON-shaped documents, so no YAML library is needed.

It writes block style only: mappings in the order given, lists in order, and
scalars plain when a YAML 1.1 reader would read them back as the same string,
double-quoted otherwise. What it writes reads back equal to what it was given
(the tests check that against PyYAML), which is all `contractflow asyncapi`
asks of it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

INDENT = 2
# Plain scalars start with a letter, `$` or `/`, stay on printable ASCII, and
# avoid the two sequences that end a plain scalar early: `: ` and ` #`.
_PLAIN = re.compile(r"[A-Za-z$/][\x20-\x7e]*")
# Words a YAML 1.1 reader turns into booleans or null.
_RESERVED = frozenset(
    {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}
)
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def dumps(document: Any) -> str:
    """Return `document` (dicts, lists, strings, numbers, booleans, None) as YAML."""
    return "\n".join(_lines(document, 0)) + "\n"


def _lines(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(value, Mapping) and value:
        return _mapping_lines(value, indent)
    if _is_sequence(value) and value:
        return _sequence_lines(value, indent)
    return [pad + _scalar(value)]


def _mapping_lines(value: Mapping[Any, Any], indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    for key, item in value.items():
        if not isinstance(key, str):
            raise TypeError(f"mapping keys must be strings, not {type(key).__name__}")
        head = f"{pad}{_scalar(key)}:"
        if _is_block(item):
            lines.append(head)
            lines.extend(_lines(item, indent + INDENT))
        else:
            lines.append(f"{head} {_scalar(item)}")
    return lines


def _sequence_lines(value: Sequence[Any], indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    for item in value:
        if _is_block(item):
            # The item's first line moves up beside its dash.
            inner = _lines(item, indent + INDENT)
            lines.append(f"{pad}- {inner[0][indent + INDENT :]}")
            lines.extend(inner[1:])
        else:
            lines.append(f"{pad}- {_scalar(item)}")
    return lines


def _is_sequence(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _is_block(value: Any) -> bool:
    return bool(value) and (isinstance(value, Mapping) or _is_sequence(value))


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return value if _plain(value) else _quoted(value)
    if isinstance(value, Mapping):
        return "{}"
    if _is_sequence(value):
        return "[]"
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _float(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    # A YAML 1.1 float needs a dot in its mantissa and a sign on its exponent.
    mantissa, _, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    if exponent and exponent[0] not in "+-":
        exponent = "+" + exponent
    return f"{mantissa}e{exponent}" if exponent else mantissa


def _plain(text: str) -> bool:
    return (
        _PLAIN.fullmatch(text) is not None
        and text == text.rstrip()
        and ": " not in text
        and " #" not in text
        and not text.endswith(":")
        and text.lower() not in _RESERVED
    )


def _quoted(text: str) -> str:
    return '"' + "".join(_escaped(char) for char in text) + '"'


def _escaped(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    code = ord(char)
    if 0x20 <= code < 0x7F or (code >= 0xA0 and char.isprintable()):
        return char
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
