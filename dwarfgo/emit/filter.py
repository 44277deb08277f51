"""`--filter`: a Go boolean expression over a function's arguments, decided in the probe.

    filter  := [FUNC ":"] or
    or      := and { "||" and }
    and     := unary { "&&" unary }
    unary   := "!" unary | compare
    compare := operand [ ("==" | "!=" | "<" | "<=" | ">" | ">=") operand ]
    operand := "(" or ")" | literal | value
    literal := ["-"] INT | "true" | "false" | "nil" | "…" | `…`
    value   := an `--args` expression (goexpr.py): entry.Key, *p, xs[2], (*p).f, len(s), cap(s)

Go's rules, checked against the function's DWARF types before anything runs (a one-line error
otherwise): integers compare with integers of the same type or with a constant that fits it;
bools with bools; a string with a string constant (its whole length, then every byte: a NUL in
either, or one being a prefix of the other, never makes them equal); pointers, slices, maps,
chans, funcs and interfaces with nil (pointers also with pointers of their type); `<` and the
other orderings only on integers. With `FUNC:` the filter applies to that probed function;
without, to every probed function that has all the parameters it names.

Evaluation follows Go's: `&&` and `||` short-circuit, so `p != nil && p.n > 0` never reads
through a nil p. Where Go would panic (a nil pointer followed, an index out of range) the
filter is false: the call is not printed.

`compile_filter` gives a `FilterCode`: bpftrace statements that compute the decision, and the
condition that holds when the call passes. Any program writer puts the statements at the top of
the entry probe and its whole body (event counting included, so that a filtered-out call is
not counted as lost) under `if (condition) { … }`. Only numbers and the program's own variables
(`$dgf_…`) enter the statements; the literal's bytes are compared as integers.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from ..errors import DwarfgoError
from ..goexpr import ArgExpr, DerefStep, FieldStep, IndexStep, Step
from ..gotypes import GoType, Kind

INT64_MIN, INT64_MAX, UINT64_MAX = -(1 << 63), (1 << 63) - 1, (1 << 64) - 1
MAX_STRING_LITERAL = 1024  # bytes a string constant may have (each 8 are one read and compare)
_ORDER = ("<", "<=", ">", ">=")
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


# ------------------------------------------------------------------ syntax tree
@dataclass(frozen=True)
class Literal:
    kind: str  # "int", "string", "bool", "nil"
    value: object  # int, bytes, bool, None
    text: str


@dataclass(frozen=True)
class Value:
    expr: ArgExpr


@dataclass(frozen=True)
class Compare:
    op: str
    left: "Literal | Value"
    right: "Literal | Value"


@dataclass(frozen=True)
class Truth:
    """A bool value or constant standing alone as a condition."""
    operand: "Literal | Value"


@dataclass(frozen=True)
class Not:
    inner: "Cond"


@dataclass(frozen=True)
class Logic:
    op: str  # "&&" or "||"
    left: "Cond"
    right: "Cond"


Cond = Compare | Truth | Not | Logic
_CONDS = (Compare, Truth, Not, Logic)


@dataclass(frozen=True)
class Filter:
    text: str  # as given (for messages)
    function: str | None  # FUNC of `FUNC: EXPR`: the probed function it is for (None: every one with its names)
    cond: Cond

    @property
    def roots(self) -> set[str]:
        out: set[str] = set()
        _roots(self.cond, out)
        return out


def _roots(c, out: set[str]) -> None:
    if isinstance(c, Value):
        out.add(c.expr.root)
    elif isinstance(c, Compare):
        _roots(c.left, out)
        _roots(c.right, out)
    elif isinstance(c, Truth):
        _roots(c.operand, out)
    elif isinstance(c, Not):
        _roots(c.inner, out)
    elif isinstance(c, Logic):
        _roots(c.left, out)
        _roots(c.right, out)


# ------------------------------------------------------------------ parsing
# (compiled when first used: the ranges of non-ASCII letters take re some 10 ms each to compile,
# which a probe without --filter need not pay)
@functools.cache
def _token() -> re.Pattern:
    return re.compile(r"""\s*(?:
    (?P<string>"(?:[^"\\\n]|\\.)*"|`[^`]*`)
  | (?P<int>0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|\d[\d_]*)
  | (?P<ident>~?[A-Za-z_\u00c0-\uffff][\w\u00c0-\uffff]*)
  | (?P<op>==|!=|<=|>=|&&|\|\||[<>!*.\[\]()-])
)""", re.X)


_SIMPLE_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, '"': 34, "'": 39}


@functools.cache
def _func_prefix() -> re.Pattern:
    return re.compile(r"^\s*([\w.()*/\[\],\u00c0-\uffff-]+)\s*:\s*(.*)$", re.S)


def _unquote(text: str) -> bytes:
    """The bytes of a Go string literal (interpreted "…" with Go's escapes, or raw `…`)."""
    if text.startswith("`"):
        return text[1:-1].replace("\r", "").encode("utf-8")
    out = bytearray()
    body, i = text[1:-1], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out += ch.encode("utf-8")
            i += 1
            continue
        esc = body[i + 1]
        if esc in _SIMPLE_ESCAPES and esc != "'":
            out.append(_SIMPLE_ESCAPES[esc])
            i += 2
        elif esc == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", body[i + 2:i + 4]):
            out.append(int(body[i + 2:i + 4], 16))
            i += 4
        elif esc in "01234567" and re.fullmatch(r"[0-7]{3}", body[i + 1:i + 4]) and int(body[i + 1:i + 4], 8) < 256:
            out.append(int(body[i + 1:i + 4], 8))
            i += 4
        elif esc in "uU":
            n = 4 if esc == "u" else 8
            digits = body[i + 2:i + 2 + n]
            if not re.fullmatch(r"[0-9a-fA-F]{%d}" % n, digits) or not (
                    int(digits, 16) < 0xD800 or 0xDFFF < int(digits, 16) <= 0x10FFFF):
                raise ValueError(f"bad escape \\{esc}{digits}")
            out += chr(int(digits, 16)).encode("utf-8")
            i += 2 + n
        else:
            raise ValueError(f"unknown escape sequence \\{esc}")
    return bytes(out)


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        body = text.rstrip()
        pos = 0
        while pos < len(body):
            m = _token().match(body, pos)
            if not m or m.end() == pos:
                at = len(body) - len(body[pos:].lstrip())
                self.fail(f"unexpected {body[at:at + 10]!r} at column {at + 1}")
            kind = m.lastgroup
            self.tokens.append((kind, m.group(kind), m.start(kind)))
            pos = m.end()
        if not self.tokens:
            self.fail("empty expression")
        self.i = 0
        self.depth = 0

    def fail(self, why: str):
        shown = self.text if len(self.text) <= 80 else self.text[:60] + "…" + self.text[-10:]
        raise DwarfgoError(f"--filter {shown!r}: {why}")

    def peek(self, ahead: int = 0) -> tuple[str, str, int] | None:
        j = self.i + ahead
        return self.tokens[j] if j < len(self.tokens) else None

    def at(self, value: str) -> bool:
        t = self.peek()
        return t is not None and t[0] == "op" and t[1] == value

    def take(self, value: str) -> None:
        t = self.peek()
        if t is None:
            self.fail(f"ends early, expected {value!r}")
        if t[0] != "op" or t[1] != value:
            self.fail(f"expected {value!r} at column {t[2] + 1}, found {t[1]!r}")
        self.i += 1

    def parse(self) -> Cond:
        c = self.or_()
        t = self.peek()
        if t is not None:
            self.fail(f"unexpected {t[1]!r} at column {t[2] + 1}")
        return c

    def nest(self):
        self.depth += 1
        if self.depth > 64:
            self.fail("nested more than 64 levels deep")

    def or_(self) -> Cond:
        c = self.and_()
        while self.at("||"):
            self.i += 1
            c = Logic("||", c, self.and_())
        return c

    def and_(self) -> Cond:
        c = self.unary()
        while self.at("&&"):
            self.i += 1
            c = Logic("&&", c, self.unary())
        return c

    def unary(self) -> Cond:
        if self.at("!"):
            self.i += 1
            self.nest()
            return Not(self.unary())
        left = self.operand()
        t = self.peek()
        if t is not None and t[0] == "op" and t[1] in ("==", "!=", "<", "<=", ">", ">="):
            self.i += 1
            right = self.operand()
            if isinstance(left, _CONDS) or isinstance(right, _CONDS):
                self.fail(f"{t[1]} compares values, not conditions (at column {t[2] + 1})")
            return Compare(t[1], left, right)
        if isinstance(left, _CONDS):
            return left
        return Truth(left)

    def operand(self):
        t = self.peek()
        if t is None:
            self.fail("ends early, expected a value")
        kind, value, col = t
        if kind == "string":
            self.i += 1
            try:
                return Literal("string", _unquote(value), value)
            except ValueError as e:
                self.fail(f"string at column {col + 1}: {e}")
        if kind == "int" or (kind == "op" and value == "-"):
            return self.integer()
        if kind == "ident" and value in ("true", "false", "nil") and not self._path_follows():
            self.i += 1
            return Literal("nil", None, value) if value == "nil" else Literal("bool", value == "true", value)
        if kind == "op" and value == "(":
            # `(` opens a condition, or a path like `(*p).f`: a path if one parses to a value
            start, depth = self.i, self.depth
            try:
                return Value(self.path_expr())
            except DwarfgoError:
                self.i, self.depth = start, depth
            self.i += 1
            self.nest()
            inner = self.or_()
            self.take(")")
            if isinstance(inner, Truth):
                return inner.operand  # `(x)` of a value stays a value
            return inner
        return Value(self.path_expr())

    def _path_follows(self) -> bool:
        nxt = self.peek(1)
        return nxt is not None and nxt[0] == "op" and nxt[1] in (".", "[")

    def integer(self) -> Literal:
        negative = False
        start = self.peek()[2]
        if self.at("-"):
            self.i += 1
            negative = True
        t = self.peek()
        if t is None or t[0] != "int":
            self.fail(f"expected an integer at column {start + 1}")
        self.i += 1
        digits = t[1].replace("_", "")
        try:
            n = int(digits, 0) if digits[:2].lower() in ("0x", "0o", "0b") else int(digits, 10)
        except ValueError:
            self.fail(f"bad integer {t[1]!r} at column {t[2] + 1}")
        n = -n if negative else n
        return Literal("int", n, ("-" if negative else "") + t[1])

    def path_expr(self) -> ArgExpr:
        """An --args expression: [len|cap (] path [)], the same grammar as goexpr.py."""
        builtin = None
        t = self.peek()
        if t and t[0] == "ident" and t[1] in ("len", "cap") and self.peek(1) and self.peek(1)[1] == "(":
            builtin = t[1]
            self.i += 2
        root, steps = self.path()
        if builtin:
            self.take(")")
        e = ArgExpr("", root, tuple(steps), builtin)
        text = e.path_text()
        return ArgExpr(f"{builtin}({text})" if builtin else text, root, tuple(steps), builtin)

    def path(self) -> tuple[str, list[Step]]:
        self.nest()
        if self.at("*"):
            self.i += 1
            root, steps = self.path()
            return root, steps + [DerefStep()]
        if self.at("("):
            self.i += 1
            root, steps = self.path()
            self.take(")")
        else:
            t = self.peek()
            if t is None or t[0] != "ident":
                self.fail("expected a parameter name" + (f" at column {t[2] + 1}, found {t[1]!r}" if t else ""))
            if t[1] in ("true", "false", "nil", "len", "cap"):
                self.fail(f"{t[1]} at column {t[2] + 1} is not a parameter")
            self.i += 1
            root, steps = t[1], []
        while self.at(".") or self.at("["):
            if self.at("."):
                self.i += 1
                t = self.peek()
                if t is None or t[0] != "ident":
                    self.fail("expected a field name after '.'")
                self.i += 1
                steps.append(FieldStep(t[1]))
                continue
            self.i += 1
            t = self.peek()
            if t is not None and t[0] == "string":
                self.fail("indexing a map needs Go's hash function; filter on len(m) or a non-map value")
            if t is None or t[0] != "int":
                self.fail("expected an integer index after '['")
            self.i += 1
            steps.append(IndexStep(int(t[1].replace("_", ""), 0) if t[1][:2].lower() in ("0x", "0o", "0b")
                                   else int(t[1].replace("_", ""))))
            self.take("]")
        return root, steps


def parse(text: str) -> Filter:
    """Parse one `--filter` (syntax only; types are checked per function by compile_filter)."""
    function = None
    m = _func_prefix().match(text)
    body = text
    if m:
        function, body = m.group(1), m.group(2)
    return Filter(text, function, _Parser(body).parse())


# ------------------------------------------------------------------ types
_INTEGER = (Kind.INT, Kind.UINT, Kind.UINTPTR)
_NILABLE = (Kind.POINTER, Kind.UNSAFE_POINTER, Kind.SLICE, Kind.MAP, Kind.CHAN, Kind.FUNC, Kind.INTERFACE)
_INT_TYPE = GoType(offset=-1, name="int", kind=Kind.INT, size=8, align=8)
_BYTE_TYPE = GoType(offset=-1, name="uint8", kind=Kind.UINT, size=1, align=1)


def _range(t: GoType) -> tuple[int, int]:
    bits = t.size * 8
    if t.kind is Kind.INT:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


# ------------------------------------------------------------------ code
@dataclass
class FilterCode:
    """A filter compiled for one probe: run `statements` (in order, at the top of the probe; they
    only read, guarded against nil and short lengths), then the call passes when `condition` holds."""

    statements: list[str]
    condition: str
    text: str  # the filter(s) as given, for a comment


@dataclass
class _Walk:
    """Where a value is, as bpftrace sees it: words at offsets from a source (plan.py's register or
    memory sources), reached under the guards opened so far."""
    source: object
    offset: int
    type: GoType


@dataclass
class _Compiler:
    """Compiles the filters of one function. Every variable is set to a typed zero first (a variable
    keeps one type, and exists where it is used), then the code only assigns."""

    fn_name: str
    params: dict  # name -> (Location, plan source or None, why not readable)
    version: tuple[int, int, int]
    ptr_size: int
    map_count: tuple[int | None, int] = (None, 8)  # offset and size of a map's count in its header
    chan_counts: tuple[int | None, int | None] = (None, None)  # qcount, dataqsiz offsets in hchan
    itab_type: int = 8  # offset of the type descriptor in an itab
    prefix: str = "$dgf_"  # of its variables (aggregations compile beside a filter with "$dga_")
    decls: dict[str, str] = field(default_factory=dict)
    n: int = 0
    text: str = ""

    def use_runtime(self, runtime) -> None:
        """Offsets in the runtime's structures (emit/plan.py RuntimeLayout), for len(map), len(chan)
        and an interface's dynamic type."""
        if runtime is not None:
            self.map_count = (runtime.map_count_offset, runtime.map_count_size)
            self.chan_counts = (runtime.chan_qcount_offset, runtime.chan_dataqsiz_offset)
            self.itab_type = runtime.itab_type_offset

    def var(self, zero: str) -> str:
        name = f"{self.prefix}{self.n}"
        self.n += 1
        self.decls[name] = zero
        return name

    def fail(self, why: str):
        raise DwarfgoError(f"--filter {self.text!r}: {why} (in {self.fn_name})")

    # ---------------------------------------------------------- conditions
    def cond(self, c: Cond, out: list[str]) -> str:
        """Code appended to `out` that sets the returned variable to 1 when `c` holds (0 if not,
        and $dgf_nil to 1 where Go would panic)."""
        if isinstance(c, Logic):
            left = self.cond(c.left, out)
            result = self.var("(uint64)0")
            inner: list[str] = []
            right = self.cond(c.right, inner)
            inner.append(f"if ({right} == 1) {{")
            inner += [f"{result} = 1;", "}"]
            if c.op == "&&":
                out += [f"if ({left} == 1) {{", *inner, "}"]
            else:
                out += [f"if ({left} == 1) {{", f"{result} = 1;", "} else {", *inner, "}"]
            return result
        if isinstance(c, Not):
            inner_var = self.cond(c.inner, out)
            result = self.var("(uint64)0")
            out += [f"if ({inner_var} == 0) {{", f"{result} = 1;", "}"]
            return result
        if isinstance(c, Truth):
            if isinstance(c.operand, Literal):
                if c.operand.kind != "bool":
                    self.fail(f"non-boolean {c.operand.text} used as condition")
                result = self.var("(uint64)0")
                if c.operand.value:
                    out.append(f"{result} = 1;")
                return result
            return self.compare(Compare("!=", c.operand, Literal("bool", False, "false")), out, truth=True)
        return self.compare(c, out)

    def compare(self, c: Compare, out: list[str], truth: bool = False) -> str:
        left, right, op = c.left, c.right, c.op
        if isinstance(left, Literal) and isinstance(right, Literal):
            self.fail(f"{left.text} {op} {right.text} compares two constants")
        if isinstance(left, Literal):
            left, right, op = right, left, _FLIP[op]
        lt = self.type_of(left.expr)
        rt = self.type_of(right.expr) if isinstance(right, Value) else None
        what = left.expr.text
        if truth:
            if lt.kind is not Kind.BOOL:
                self.fail(f"non-boolean {what} (type {lt.name}) used as condition")
        else:
            self.check(op, left.expr, lt, right, rt)
        result = self.var("(uint64)0")
        ok_l, words_l = self.operand(left.expr, lt, out)
        body: list[str] = []
        if isinstance(right, Value):
            ok_r, words_r = self.operand(right.expr, rt, out)
            body += [f"if ({ok_r} == 1) {{"]
            body += [f"if ({words_l[0]} {op} {words_r[0]}) {{", f"{result} = 1;", "}"]
            body += ["} else {", "$dgf_nil = 1;", "}"]
        else:
            body += self.against_literal(op, lt, words_l, right, result)
        out += [f"if ({ok_l} == 1) {{", *body, "} else {", "$dgf_nil = 1;", "}"]
        return result

    def check(self, op: str, expr: ArgExpr, t: GoType, right, rt: GoType | None) -> None:
        """Go's typing of `expr op right` (the left side is a value of type t)."""
        what = expr.text
        k = t.kind
        if k in (Kind.FLOAT, Kind.COMPLEX):
            self.fail(f"{what} is {t.name}: floats cannot be compared in the probe (registers of "
                      f"floating-point values are not readable by bpftrace)")
        if k in (Kind.STRUCT, Kind.ARRAY):
            self.fail(f"{what} is {t.name}: compare its fields or elements one by one")
        if op in _ORDER and k not in _INTEGER:
            if k is Kind.STRING:
                self.fail(f"{what} {op} …: strings compare only with == and != in filters")
            self.fail(f"invalid operation: operator {op} not defined on {what} (type {t.name})")
        if rt is not None:
            if rt.name != t.name:
                self.fail(f"invalid operation: {what} {op} {right.expr.text} (mismatched types {t.name} and {rt.name})")
            if k in (Kind.SLICE, Kind.MAP, Kind.FUNC):
                self.fail(f"invalid operation: {t.name} can only be compared to nil")
            if k in (Kind.STRING, Kind.INTERFACE, Kind.CHAN):
                self.fail(f"{what} {op} {right.expr.text}: compare a {k.value} with "
                          f"{'a string constant' if k is Kind.STRING else 'nil'} in filters")
            return
        lit: Literal = right
        if lit.kind == "nil":
            if k not in _NILABLE:
                self.fail(f"invalid operation: {what} {op} nil (mismatched types {t.name} and untyped nil)")
            return
        if k in _NILABLE:
            self.fail(f"invalid operation: {what} {op} {lit.text} (mismatched types {t.name} and untyped {lit.kind})")
        if lit.kind == "int":
            if k not in _INTEGER:
                self.fail(f"invalid operation: {what} {op} {lit.text} (mismatched types {t.name} and untyped int)")
            lo, hi = _range(t)
            if not lo <= lit.value <= hi:
                self.fail(f"cannot use {lit.text} as {t.name} value: it overflows {t.name} ({lo} to {hi})")
        elif lit.kind == "bool":
            if k is not Kind.BOOL:
                self.fail(f"invalid operation: {what} {op} {lit.text} (mismatched types {t.name} and untyped bool)")
        elif lit.kind == "string":
            if k is not Kind.STRING:
                self.fail(f"invalid operation: {what} {op} {lit.text} (mismatched types {t.name} and untyped string)")
            if len(lit.value) > MAX_STRING_LITERAL:
                self.fail(f"string constant of {len(lit.value)} bytes: at most {MAX_STRING_LITERAL}")

    def against_literal(self, op: str, t: GoType, words: list[str], lit: Literal, result: str) -> list[str]:
        k = t.kind
        if lit.kind == "nil":
            # a slice's nil-ness is its data pointer's; an interface's its type word's
            return [f"if ({words[0]} {op} 0) {{", f"{result} = 1;", "}"]
        if lit.kind == "bool":
            want = 1 if lit.value else 0
            test = f"{words[0]} != 0" if want else f"{words[0]} == 0"
            if op == "!=":
                test = f"{words[0]} == 0" if want else f"{words[0]} != 0"
            return [f"if ({test}) {{", f"{result} = 1;", "}"]
        if lit.kind == "int":
            return [f"if ({words[0]} {op} {self.int_literal(lit.value, signed=k is Kind.INT)}) {{",
                    f"{result} = 1;", "}"]
        # a string: the length, then the bytes 8 (then 4, 2, 1) at a time as integers
        data: bytes = lit.value
        ptr, length = words[0], words[1]
        equal = self.var("(uint64)0")
        code = [f"if ({length} == {len(data)}) {{", f"{equal} = 1;"]
        pos = 0
        while pos < len(data):
            size = next(s for s in (8, 4, 2, 1) if len(data) - pos >= s)
            chunk = int.from_bytes(data[pos:pos + size], "little")
            addr = f"{ptr} + {pos}" if pos else ptr
            code += [f"if (*(uint{size * 8}*)uptr({addr}) != {self.int_literal(chunk, signed=False)}) {{",
                     f"{equal} = 0;", "}"]
            pos += size
        code.append("}")
        want = 1 if op == "==" else 0
        return code + [f"if ({equal} == {want}) {{", f"{result} = 1;", "}"]

    def int_literal(self, value: int, signed: bool) -> str:
        """A constant compared with a 64-bit value of that signedness, written so that no bpftrace
        warns (checked on 0.17, 0.23, 0.27): INT64_MIN as an expression; before 0.27 a cast where
        the literal's own type has the other sign (0.17 takes one above INT64_MAX as signed, 0.23
        one above INT32_MAX as unsigned), which 0.27 calls unnecessary."""
        if value == INT64_MIN:
            return "(-9223372036854775807 - 1)"
        if self.version < (0, 27, 0):
            if not signed and value > INT64_MAX:
                return f"(uint64){value}"
            if signed and value > (1 << 31) - 1:
                return f"(int64){value}"
        return str(value)

    # ---------------------------------------------------------- values
    def type_of(self, expr: ArgExpr) -> GoType:
        if expr.root not in self.params:
            names = ", ".join(sorted(self.params)) or "none"
            self.fail(f"{expr.root} is not a parameter (parameters: {names})")
        loc = self.params[expr.root][0]
        return self._walk_types(expr, loc.param.type)

    def _walk_types(self, expr: ArgExpr, t: GoType) -> GoType:
        for i, step in enumerate(expr.steps):
            here = expr.path_text(i)
            t = self._step_type(expr, here, t, step)
        if expr.builtin:
            if t.kind is Kind.POINTER and t.elem is not None and t.elem.kind is Kind.ARRAY:
                t = t.elem
            ok = (t.kind in (Kind.SLICE, Kind.ARRAY, Kind.CHAN) or (t.kind is Kind.STRING and expr.builtin == "len")
                  or (t.kind is Kind.MAP and expr.builtin == "len"))
            if not ok:
                self.fail(f"invalid argument: {expr.path_text()} ({t.name}) for {expr.builtin}")
            return _INT_TYPE
        return t

    def _step_type(self, expr: ArgExpr, here: str, t: GoType, step) -> GoType:
        if isinstance(step, DerefStep):
            if t.kind is not Kind.POINTER or t.elem is None:
                self.fail(f"cannot indirect {here}: it is {t.name}, not a pointer")
            return t.elem
        if t.kind is Kind.POINTER and t.elem is not None and (
                (isinstance(step, FieldStep) and t.elem.kind is Kind.STRUCT)
                or (isinstance(step, IndexStep) and t.elem.kind is Kind.ARRAY)):
            t = t.elem
        if isinstance(step, FieldStep):
            if t.kind is not Kind.STRUCT:
                self.fail(f"{here} is {t.name}, which has no fields")
            for f in t.fields:
                if f.name == step.name:
                    return f.type
            self.fail(f"{t.name} has no field {step.name} (fields: {', '.join(f.name for f in t.fields) or 'none'})")
        if t.kind is Kind.ARRAY:
            if t.elem is None or step.index >= (t.length or 0):
                self.fail(f"index {step.index} out of range for {t.name}")
            return t.elem
        if t.kind is Kind.SLICE and t.elem is not None:
            return t.elem
        if t.kind is Kind.STRING:
            return _BYTE_TYPE
        if t.kind is Kind.MAP:
            self.fail("indexing a map needs Go's hash function; filter on len(m) or a non-map value")
        self.fail(f"cannot index {here} of type {t.name}")

    def operand(self, expr: ArgExpr, t: GoType, out: list[str], dynamic_type: bool = False) -> tuple[str, list[str]]:
        """Code appended to `out` that reads the value of `expr` (of type t, already checked): the
        variable set to 1 once it is read (0: a nil pointer or a short length on the way), and the
        variables holding its words (one; a string's: data pointer, length)."""
        loc, src, why = self.params[expr.root]
        if src is None:
            self.fail(f"{expr.root} cannot be read at entry: {why}")
        ok = self.var("(uint64)0")
        words = [self.var("(int64)0" if t.kind is Kind.INT else "(uint64)0")]
        if t.kind is Kind.STRING:
            words.append(self.var("(int64)0"))
        closes = 0
        walk = _Walk(src, 0, loc.param.type)

        def guard(cond: str) -> None:
            nonlocal closes
            out.append(f"if ({cond}) {{")
            closes += 1

        def pointer_word(w: _Walk) -> str:
            p = self.var("(uint64)0")
            out.append(f"{p} = {self.word(w, self.ptr_size, 'hex')};")
            return p

        from .plan import memory_source
        steps = list(expr.steps)
        i = 0
        while i < len(steps):
            step = steps[i]
            t_here = walk.type
            auto = t_here.kind is Kind.POINTER and t_here.elem is not None and not isinstance(step, DerefStep) and (
                (isinstance(step, FieldStep) and t_here.elem.kind is Kind.STRUCT)
                or (isinstance(step, IndexStep) and t_here.elem.kind is Kind.ARRAY))
            if isinstance(step, DerefStep) or auto:
                p = pointer_word(walk)
                guard(f"{p} != 0")
                walk = _Walk(memory_source(p, 0, user=True), 0, t_here.elem)
                if isinstance(step, DerefStep):
                    i += 1
                continue
            if isinstance(step, FieldStep):
                f = next(f for f in t_here.fields if f.name == step.name)
                walk = _Walk(walk.source, walk.offset + f.offset, f.type)
            elif t_here.kind is Kind.ARRAY:
                walk = _Walk(walk.source, walk.offset + step.index * t_here.elem.size, t_here.elem)
            else:  # slice or string element: in range only below the length
                p = pointer_word(walk)
                n = self.var("(int64)0")
                out.append(f"{n} = {self.word(_Walk(walk.source, walk.offset + self.ptr_size, _INT_TYPE), 8, 'int')};")
                guard(f"{n} > {step.index}")
                elem = t_here.elem if t_here.kind is Kind.SLICE else _BYTE_TYPE
                walk = _Walk(memory_source(p, step.index * elem.size, user=True), 0, elem)
            i += 1
        v = walk.type
        if expr.builtin:
            if v.kind is Kind.POINTER and v.elem is not None and v.elem.kind is Kind.ARRAY:
                v = v.elem  # len(*p) of an array pointer: its length, p unread
            if v.kind is Kind.ARRAY:
                out.append(f"{words[0]} = {v.length or 0};")
            elif v.kind in (Kind.SLICE, Kind.STRING):
                word = 1 if expr.builtin == "len" else 2
                out.append(f"{words[0]} = {self.word(_Walk(walk.source, walk.offset + word * self.ptr_size, _INT_TYPE), 8, 'int')};")
            else:  # map, chan: a count in the header it points to; nil has 0
                p = pointer_word(walk)
                off, size = (self.map_count if v.kind is Kind.MAP else
                             (self.chan_counts[0] if expr.builtin == "len" else self.chan_counts[1], 8))
                if off is None:
                    self.fail(f"{expr.text}: the {v.kind.value} layout is not in this binary's DWARF")
                ctype = {1: "int8", 2: "int16", 4: "int32", 8: "int64"}[size]
                out += [f"if ({p} != 0) {{", f"{words[0]} = {_as_int64(f'*({ctype}*)uptr({p} + {off})')};", "}"]
        elif v.kind is Kind.STRING:
            out.append(f"{words[0]} = {self.word(walk, self.ptr_size, 'hex')};")
            out.append(f"{words[1]} = {self.word(_Walk(walk.source, walk.offset + self.ptr_size, _INT_TYPE), 8, 'int')};")
        elif v.kind in (Kind.INT,):
            out.append(f"{words[0]} = {self.word(walk, v.size, 'int')};")
        elif v.kind in (Kind.UINT, Kind.UINTPTR, Kind.BOOL):
            out.append(f"{words[0]} = {self.word(walk, v.size, 'uint')};")
        else:  # pointer-shaped: pointer, unsafe.Pointer, map, chan, func; a slice's data pointer;
            # an interface's type word
            out.append(f"{words[0]} = {self.word(walk, self.ptr_size, 'hex')};")
            if dynamic_type and v.kind is Kind.INTERFACE and not v.empty_interface:
                # the itab's type descriptor: what an empty interface holds directly
                out += [f"if ({words[0]} != 0) {{", f"{words[0]} = *(uint64*)uptr({words[0]} + {self.itab_type});", "}"]
        out.append(f"{ok} = 1;")
        out += ["}"] * closes
        return ok, words

    def word(self, w: _Walk, size: int, kind: str) -> str:
        """A word of the value at `w` as a 64-bit bpftrace expression: int64 for "int", uint64 else."""
        from .plan import INT, UINT, HEX
        plan_kind = {"int": INT, "uint": UINT, "hex": HEX}[kind]
        expr, why = w.source.word(w.offset, size, plan_kind)
        if expr is None:
            self.fail(f"cannot read {w.type.name} at entry: {why}")
        return _as_int64(expr) if kind == "int" else _as_uint64(expr)


def _as_int64(expr: str) -> str:
    from .bpftrace import _cast
    return _cast(expr, "int64")


def _as_uint64(expr: str) -> str:
    from .bpftrace import _u64
    return _u64(expr)


# ------------------------------------------------------------------ per function
def filters_for(filters: list[Filter], fn, named: dict[str, object]) -> list[Filter]:
    """The filters that apply to `fn`: those naming it (`FUNC:`; `named` maps each FUNC to the probed
    function it resolved to), and those without a function whose every name is a parameter of fn."""
    names = set(fn.names_of([p for p in fn.inputs if not p.is_hidden]))
    return [f for f in filters
            if (getattr(named.get(f.function), "address", None) == fn.address if f.function is not None
                else f.roots <= names)]


def compile_filter(filters: list[Filter], fn, layout, dialect, ptr_size: int = 8, runtime=None) -> FilterCode | None:
    """The code of `filters` (all must hold) for the entry probe of `fn` with `layout`; None when
    there are none. A DwarfgoError (one line) for a name fn does not have or a type error."""
    if not filters:
        return None
    comp = _Compiler(fn.name, _params_of(fn, layout), dialect.version, ptr_size)
    comp.use_runtime(runtime)
    body: list[str] = []
    results = []
    for f in filters:
        comp.text = f.text
        results.append(comp.cond(f.cond, body))
    passed = "$dgf_pass"
    tail = ["if ($dgf_nil == 0) {"] + [f"if ({r} == 1) {{" for r in results] + [f"{passed} = 1;"]
    tail += ["}"] * (len(results) + 1)
    decls = [f"{v} = {z};" for v, z in comp.decls.items()]
    statements = ["$dgf_nil = (uint64)0;", f"{passed} = (uint64)0;"] + decls + body + tail
    return FilterCode(statements, f"{passed} == 1", " && ".join(f"({f.text})" for f in filters))


def _params_of(fn, layout) -> dict:
    """Parameter name (every name --args accepts) -> (Location, its plan source or None, why not)."""
    from .plan import source_of

    params = {}
    loc_of = {id(loc.param): loc for loc in layout.inputs}
    for name, p in fn.names_of([p for p in fn.inputs if not p.is_hidden]).items():
        loc = loc_of.get(id(p))
        if loc is None:
            continue
        src, why = source_of(loc, layout.unknown, user=True)
        params[name] = (loc, src, why)
    return params


def check_filters(filters: list[Filter], functions, named: dict[str, object]) -> None:
    """Every filter applies to at least one probed function (else a one-line error)."""
    for f in filters:
        if any(f in filters_for([f], fn, named) for fn in functions):
            continue
        if f.function is not None:
            raise DwarfgoError(f"--filter {f.text!r}: {f.function} is not one of the probed functions")
        have = sorted({n for fn in functions for n in fn.names_of([p for p in fn.inputs if not p.is_hidden])})
        raise DwarfgoError(f"--filter {f.text!r}: no probed function has all of {', '.join(sorted(f.roots))} "
                           f"as parameters (parameters: {', '.join(have) or 'none'})")


@dataclass
class FilterSet:
    """The `--filter` options of one program, parsed and checked against the probed functions:
    what a program writer asks for each function's entry probe.

        filters = FilterSet.parse(prog, texts, functions)      # one-line DwarfgoError on a mistake
        code = filters.code_for(fn, layout, dialect, runtime)  # FilterCode or None (unfiltered)
        body = code.statements + [f"if ({code.condition}) {{", *probe_body, "}"]
    """

    filters: list[Filter]
    named: dict[str, object]  # FUNC of `FUNC: EXPR` -> the probed function it names
    ptr_size: int = 8

    @classmethod
    def parse(cls, prog, texts: list[str] | None, functions) -> "FilterSet":
        filters = [parse(t) for t in texts or []]
        named = {f.function: prog.probe_function(f.function) for f in filters if f.function is not None}
        check_filters(filters, functions, named)
        return cls(filters, named, prog.binary.ptr_size)

    def code_for(self, fn, layout, dialect, runtime=None) -> FilterCode | None:
        return compile_filter(filters_for(self.filters, fn, self.named), fn, layout, dialect, self.ptr_size, runtime)
