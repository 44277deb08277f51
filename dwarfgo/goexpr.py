"""The Go expressions `--args` accepts, parsed into a selection path.

    expr    := path | "len(" path ")" | "cap(" path ")"
    path    := "*" path | primary { "." IDENT | "[" INT "]" }
    primary := IDENT | "(" path ")"

`entry.Key`, `c.Addr.Port`, `xs[2].Name`, `len(buf)`, `cap(q)`, `*p`, `(*p).f`, `(*a)[1]`,
`len(*p)`. IDENT names a parameter or, printed on the return event (`--ret`), a result
(`sum`, or an unnamed one as `r0` or DWARF's `~r0`). Selection through a pointer follows
it (Go's automatic dereference of `p.f`), as does an explicit `*p`; the read plan turns
each into a guarded read: a nil pointer or an index past the length makes the value
unavailable with that reason, never a read of address 0. Map indexing (`m["k"]`) is not
supported: finding a key needs Go's hash function.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from .errors import DwarfgoError


@dataclass(frozen=True)
class FieldStep:
    name: str


@dataclass(frozen=True)
class IndexStep:
    index: int


@dataclass(frozen=True)
class DerefStep:
    """`*x`: the value x points to."""


Step = FieldStep | IndexStep | DerefStep

_MAP_INDEX = "indexing a map needs Go's hash function; print len({}) or the map"


@dataclass(frozen=True)
class ArgExpr:
    text: str  # as the user wrote it, normalised (no spaces, no redundant parentheses)
    root: str  # the parameter or result name
    steps: tuple[Step, ...]  # applied to the root in order: `(*p).f` is (DerefStep(), FieldStep("f"))
    builtin: str | None = None  # "len", "cap" or None

    def path_text(self, upto: int | None = None) -> str:
        """Go syntax of the root with the first `upto` steps applied (all by default)."""
        text, starred = self.root, False
        for s in self.steps if upto is None else self.steps[:upto]:
            if isinstance(s, DerefStep):
                text, starred = "*" + text, True
                continue
            if starred:
                text, starred = f"({text})", False
            text += f".{s.name}" if isinstance(s, FieldStep) else f"[{s.index}]"
        return text


def map_index_error(text: str, map_path: str) -> DwarfgoError:
    """The one error for every form of map indexing."""
    return DwarfgoError(f"--args {text}: {_MAP_INDEX.format(map_path)}")


@functools.cache
def _token() -> re.Pattern:
    """The tokens of an expression (compiled when first used: the ranges of non-ASCII letters take
    re some 10 ms to compile, which a probe without --args need not pay)."""
    return re.compile(r"\s*(?:(?P<ident>~?[A-Za-z_\u00c0-\uffff][\w\u00c0-\uffff]*)|(?P<int>0[xX][0-9a-fA-F]+|\d+)"
                      r"|(?P<key>\"(?:[^\"\\]|\\.)*\"|`[^`]*`|'(?:[^'\\]|\\.)+')"
                      r"|(?P<punct>[.\[\]()*]))")
_WANT = {"ident": "a name", "int": "an integer index"}
MAX_NESTING = 64  # parentheses and `*` in one expression
MAX_INDEX = (1 << 31) - 1
_HINT = "expressions are like a.b.c, xs[2], *p, (*p).f, len(s), cap(s)"


class _Parser:
    """Recursive descent over the tokens of one expression."""

    def __init__(self, text: str):
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        stripped = text.rstrip()
        pos = 0
        while pos < len(stripped):
            m = _token().match(stripped, pos)
            if not m or m.end() == pos:
                at = len(stripped) - len(stripped[pos:].lstrip())
                self.fail(f"unexpected {stripped[at:at + 10]!r} at column {at + 1} ({_HINT})")
            kind = m.lastgroup
            self.tokens.append((kind, m.group(kind), m.start(kind)))
            pos = m.end()
        if not self.tokens:
            raise DwarfgoError("--args: empty expression")
        self.i = 0
        self.depth = 0

    def fail(self, why: str):
        shown = self.text if len(self.text) <= 80 else self.text[:60] + "…" + self.text[-10:]
        raise DwarfgoError(f"--args {shown!r}: {why}")

    def peek(self, ahead: int = 0) -> str | None:
        j = self.i + ahead
        return self.tokens[j][1] if j < len(self.tokens) else None

    def expect(self, kind: str, value: str | None = None) -> str:
        want = repr(value) if value else _WANT.get(kind, kind)
        if self.i >= len(self.tokens):
            self.fail(f"ends early, expected {want}")
        k, v, at = self.tokens[self.i]
        if k != kind or (value is not None and v != value):
            self.fail(f"expected {want} at column {at + 1}, found {v!r}")
        self.i += 1
        return v

    def expr(self) -> ArgExpr:
        builtin = None
        if self.tokens[0][0] == "ident" and self.peek() in ("len", "cap") and self.peek(1) == "(":
            builtin, self.i = self.peek(), 2
        root, steps = self.path()
        if builtin:
            self.expect("punct", ")")
        if self.i < len(self.tokens):
            _, v, at = self.tokens[self.i]
            self.fail(f"unexpected {v!r} " + (f"after {builtin}(…)" if builtin else f"at column {at + 1} ({_HINT})"))
        return ArgExpr("", root, tuple(steps), builtin)

    def path(self) -> tuple[str, list[Step]]:
        self.depth += 1
        if self.depth > MAX_NESTING:
            self.fail(f"nested more than {MAX_NESTING} levels deep (parentheses and `*`)")
        if self.peek() == "*":
            self.i += 1
            root, steps = self.path()
            return root, steps + [DerefStep()]
        if self.peek() == "(":
            self.i += 1
            root, steps = self.path()
            self.expect("punct", ")")
        else:
            root, steps = self.expect("ident"), []
        while self.peek() in (".", "["):
            if self.expect("punct") == ".":
                steps.append(FieldStep(self.expect("ident")))
                continue
            if self.i < len(self.tokens) and self.tokens[self.i][0] == "key":
                self.fail(_MAP_INDEX.format(ArgExpr("", root, tuple(steps)).path_text()))
            at = self.tokens[self.i][2] if self.i < len(self.tokens) else len(self.text)
            digits = self.expect("int")
            try:
                index = int(digits, 16) if digits[:2] in ("0x", "0X") else int(digits, 10)
            except ValueError:
                self.fail(f"bad index {digits!r} at column {at + 1}")
            if index > MAX_INDEX:
                self.fail(f"index {digits} at column {at + 1} is out of range (at most {MAX_INDEX})")
            steps.append(IndexStep(index))
            self.expect("punct", "]")
        return root, steps


def parse(text: str) -> ArgExpr:
    """Parse one `--args` expression; a DwarfgoError says what is wrong and where."""
    e = _Parser(text).expr()
    path = e.path_text()
    return ArgExpr(f"{e.builtin}({path})" if e.builtin else path, e.root, e.steps, e.builtin)
