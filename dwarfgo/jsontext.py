"""`json.dumps(value, indent=1)`, the text of the CLI's --json outputs, for large documents.

With an indent, the standard library encodes in pure Python, one generator step per token:
`abi '*' --json` of cmd/compile (20,000 records, 17 MB of text) spent 1.1 s there. This writes
the same text from the plain data the records are made of (dict with str keys, list, tuple, str,
int, float, bool, None), strings through the standard library's C escaping; for anything else
(another key type, a subclass of those types, or a cycle) it hands the whole value to json.dumps,
so the text is always json.dumps's.

A `Fragment` is a value's text written beforehand (by dumps_indent1, where the value was made: a
worker process sends the parent a string, cheaper to pickle and to keep than the value), placed
in a larger document as the value itself would be.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii as _string

_SCALARS = {True: "true", False: "false", None: "null"}


class Fragment:
    """dumps_indent1(value)'s text, standing for `value` in a document dumps_indent1 writes."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


class _Other(Exception):
    """A value this module does not write itself."""


def dumps_indent1(value) -> str:
    """json.dumps(value, indent=1)."""
    try:
        return _text(value, "\n")
    except (_Other, RecursionError):
        return json.dumps(value, indent=1, default=_fragment_value)


def _fragment_value(value):
    if type(value) is Fragment:
        return json.loads(value.text)  # (written as it was: json.dumps's text of the same data)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _text(value, newline: str) -> str:
    """`value` as json.dumps writes it when its first line starts after `newline` (a newline and
    the indent of the enclosing level)."""
    kind = type(value)
    if kind is str:
        return _string(value)
    if kind is int:
        return int.__repr__(value)
    if kind is dict:
        if not value:
            return "{}"
        inner = newline + " "
        parts = []
        for key, item in value.items():
            if type(key) is not str:
                raise _Other
            parts.append(_string(key) + ": " + _text(item, inner))
        return "{" + inner + ("," + inner).join(parts) + newline + "}"
    if kind is list or kind is tuple:
        if not value:
            return "[]"
        inner = newline + " "
        return "[" + inner + ("," + inner).join([_text(item, inner) for item in value]) + newline + "]"
    if kind is bool or value is None:
        return _SCALARS[value]
    if kind is float:
        return json.dumps(value)
    if kind is Fragment:
        # written at the top level: a newline in it is one of its own lines' (a string's newline
        # is escaped), indented here as this level's
        return value.text.replace("\n", newline)
    raise _Other
