"""The Go expressions `--args` accepts, parsed into a selection path.

    expr  := path | "len(" path ")" | "cap(" path ")"
    path  := IDENT { "." IDENT | "[" INT "]" }

`entry.Key`, `c.Addr.Port`, `xs[2].Name`, `len(buf)`, `cap(q)`. Selection through a
pointer follows it (Go's automatic dereference of `p.f`), which the read plan turns
into a guarded read: a nil pointer or an index past the length makes the value
unavailable with that reason, never a read of address 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import DwarfgoError


@dataclass(frozen=True)
class FieldStep:
    name: str

    def __str__(self) -> str:
        return "." + self.name


@dataclass(frozen=True)
class IndexStep:
    index: int

    def __str__(self) -> str:
        return f"[{self.index}]"


@dataclass(frozen=True)
class ArgExpr:
    text: str  # as the user wrote it, normalised (no spaces)
    root: str  # the parameter name
    steps: tuple[FieldStep | IndexStep, ...]
    builtin: str | None = None  # "len", "cap" or None

    def path_text(self, upto: int | None = None) -> str:
        steps = self.steps if upto is None else self.steps[:upto]
        return self.root + "".join(str(s) for s in steps)


_TOKEN = re.compile(r"\s*(?:(?P<ident>[A-Za-z_\u00c0-\uffff][\w\u00c0-\uffff]*)|(?P<int>0[xX][0-9a-fA-F]+|\d+)"
                    r"|(?P<punct>[.\[\]()]))")


def parse(text: str) -> ArgExpr:
    """Parse one `--args` expression; a DwarfgoError says what is wrong and where."""
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    stripped = text.rstrip()
    while pos < len(stripped):
        m = _TOKEN.match(stripped, pos)
        if not m or m.end() == pos:
            raise DwarfgoError(f"--args {text!r}: unexpected {stripped[pos:].strip()[:10]!r} at column {pos + 1} "
                               f"(expressions are like a.b.c, xs[2], len(s), cap(s))")
        kind = m.lastgroup
        tokens.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()
    if not tokens:
        raise DwarfgoError("--args: empty expression")

    i = 0

    def expect(kind: str, value: str | None = None) -> str:
        nonlocal i
        if i >= len(tokens):
            want = value or {"ident": "a name", "int": "an integer index"}.get(kind, kind)
            raise DwarfgoError(f"--args {text!r}: ends early, expected {want}")
        k, v, at = tokens[i]
        if k != kind or (value is not None and v != value):
            want = repr(value) if value else {"ident": "a name", "int": "an integer index"}.get(kind, kind)
            raise DwarfgoError(f"--args {text!r}: expected {want} at column {at + 1}, found {v!r}")
        i += 1
        return v

    builtin = None
    if len(tokens) > 1 and tokens[0][0] == "ident" and tokens[0][1] in ("len", "cap") and tokens[1][1] == "(":
        builtin = tokens[0][1]
        i = 2
    root = expect("ident")
    steps: list[FieldStep | IndexStep] = []
    while i < len(tokens):
        k, v, at = tokens[i]
        if v == ".":
            i += 1
            steps.append(FieldStep(expect("ident")))
        elif v == "[":
            i += 1
            raw = expect("int")
            steps.append(IndexStep(int(raw, 0)))
            expect("punct", "]")
        elif v == ")" and builtin:
            break
        else:
            raise DwarfgoError(f"--args {text!r}: unexpected {v!r} at column {at + 1}")
    if builtin:
        expect("punct", ")")
        if i < len(tokens):
            raise DwarfgoError(f"--args {text!r}: unexpected {tokens[i][1]!r} after {builtin}(…)")
    path = root + "".join(str(s) for s in steps)
    return ArgExpr(f"{builtin}({path})" if builtin else path, root, tuple(steps), builtin)
