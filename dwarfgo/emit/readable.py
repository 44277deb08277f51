"""Layer 4c: the readable bpftrace program (the default of `dwarfgo probe`).

A program a person reads, edits and runs with bpftrace alone: the C struct definitions the
probed functions need, one named variable per pointer argument (typed with its struct, so
`$entry->Key` reads a field), a comment per parameter giving its Go type and location, and one
`printf` per event that prints Go-like text by itself:

    main.(*BarrierView).Put(v=0xc000010030, ctx={tab:0x5043d8, data:0xc000012120}, entry=&{Key:"config"(len 6), ...})

One printf per event, so that a line is never mixed with another CPU's output. A pointer
that is followed is tested first (`if ($entry != 0)`), and each outcome has its own printf:
nil prints `nil` and is never dereferenced. A string or `[]byte` prints its bytes up to
`--max-str` with `buf()` and `%r` (exactly n bytes, NUL bytes too), and its true length.
What bpftrace cannot show exactly prints `<unavailable: reason>` in its place.

Names from the binary reach the program only escaped: in comments (one line each), in the
printf format text (quotes, backslashes and `%` escaped, anything else non-printable as `?`)
and in variable names (letters, digits and `_` only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..abi.assign import FunctionLayout, Location, RegisterPiece
from ..cheaders import CHeaderWriter, needs_struct
from ..errors import DwarfgoError
from ..functions import Function
from ..gotypes import GoType, Kind
from ..verify.machine import MachineReport
from .bpftrace import ProbePlan, ProgramWriter, _call_key, _cast, _config_block, _u64, goid_statements
from .dialect import Dialect
from .probe import _comment_safe as comment_safe
from .stackcheck import CompileVerdict, compile_verdict

_INT_C = {1: "int8", 2: "int16", 4: "int32", 8: "int64"}
_UINT_C = {1: "uint8", 2: "uint16", 4: "uint32", 8: "uint64"}
# bytes each printf argument takes in bpftrace's output record: bpftrace 0.17 builds the record on
# the 512-byte BPF stack (measured: three 64-byte buf() and 20 integers fit, four do not with more).
# Not exact (what else the stack holds depends on the shape): six methods of gofmt's ~40-field
# *parser went over it at 360 with -kk, so generate_readable compiles a program near it and lowers
# the budget until bpftrace accepts it (_STACK_CHECK_FROM, _STACK_STEP)
_STACK_BUDGET_017 = 360
_STACK_CHECK_FROM = 240
_STACK_STEP = 24
_STACK_TRIES = 5
_STACK_BUDGET = 4096
# the variables the program itself uses (goroutine, latency, re-entry mark, filter, raw reads)
_PROGRAM_VARIABLES = frozenset({"g", "goid", "t0", "deleted", "again", "c", "g0", "gk", "keep", "n", "seq"})


def _program_variable(name: str) -> bool:
    return (name in _PROGRAM_VARIABLES or name.startswith(("dgf_", "dga_", "v_"))
            or re.fullmatch(r"r\d+", name) is not None)


_WHO_COST = 16  # the goroutine and tid at the end of every line
_RECORD_FULL = "<unavailable: not printed: this bpftrace's output record is full>"
_POINTEE_NOT_PRINTED = "what it points to is not printed: this bpftrace's output record is full"
_CONVERSION = re.compile(r"%[-0-9.]*(?:ll|l|h|hh)?[a-zA-Z]")
# followed pointers per event: each doubles the printf variants (nil / not nil)
MAX_BRANCHES = 3


# ---------------------------------------------------------------- the event's text, as a tree
@dataclass
class Text:
    """Format text and the arguments its conversions print."""

    fmt: str
    args: list[str] = field(default_factory=list)
    cost: int = 0  # bytes the arguments take in the output record


@dataclass
class Stmt:
    """A statement the text after it needs (a variable)."""

    code: str


@dataclass
class Branch:
    """Two outcomes of a test, each with its own text (and everything after it)."""

    cond: str
    then: list
    otherwise: list


Item = Text | Stmt | Branch


def fmt_text(text: str) -> str:
    """Text from the binary inside a printf format: printable ASCII, `"` `\\` `%` escaped."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "%":
            out.append("%%")
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append("?")
    return "".join(out)


# ---------------------------------------------------------------- where a value is
@dataclass(frozen=True)
class Registers:
    """A register-assigned value: its leaves by offset inside the value."""

    pieces: dict  # offset -> RegisterPiece
    base: int = 0

    def at(self, off: int) -> "Registers":
        return Registers(self.pieces, self.base + off)


@dataclass(frozen=True)
class Memory:
    """A value in the traced process's memory: at `address` + `offset`; `members` is the C
    member-access prefix that names it (`$entry->`, `$entry->Key.`) when the header has it."""

    address: str
    offset: int = 0
    members: str | None = None

    @property
    def lvalue(self) -> str | None:
        """The C expression naming this value itself (a struct member), if any."""
        return self.members[:-1] if self.members and self.members.endswith(".") else None

    def addr(self, off: int = 0) -> str:
        o = self.offset + off
        return f"{self.address} + {o}" if o else self.address


class ReadableBuilder:
    """Turns one value (its Go type and location) into Text/Stmt/Branch items."""

    def __init__(self, header: CHeaderWriter, dialect: Dialect, depth: int, max_str: int, max_items: int = 4,
                 ptr_size: int = 8):
        self.header = header
        self.max_items = max_items
        self.dialect = dialect
        self.depth = depth
        self.max_str = max_str
        self.ptr_size = ptr_size
        self.branches = 0
        self.cost = 0
        self.budget = _STACK_BUDGET if dialect.version >= (0, 23, 0) else _STACK_BUDGET_017
        self.peak = 0  # the largest record cost of a probe so far
        self.copies = 0  # byte copies (strings, byte slices) made
        # record bytes kept for the values still to come on the line: their own words (a pointer's
        # address, a string's bytes), so that one value's fields cannot crowd out a later argument
        self.reserved = 0
        self._names: set[str] = set()

    def reset(self) -> None:
        self.peak = max(self.peak, self.cost)
        self.branches = 0
        self.cost = 0
        self.reserved = 0
        self._names = set()

    def values(self, named: list[tuple[Location, str]], separator: str = ", ") -> list[Item]:
        """`name=value` for each, in order: each value's fields and pointees may take the record's
        room only past what the later values take at depth 0 (bpftrace 0.17's record holds about
        45 values: cmd/compile's (*Block).NewValue3 printed its receiver's fields and then nothing
        of its other five arguments, not even their addresses)."""
        own = [self._shallow_cost(loc, name) for loc, name in named]
        items: list[Item] = []
        for i, (loc, name) in enumerate(named):
            if i:
                items.append(Text(separator))
            items.append(Text(fmt_text(name) + "="))
            self.reserved = sum(own[i + 1:])
            items += self.value(loc, name)
        self.reserved = 0
        return items

    def _shallow_cost(self, loc: Location, name: str) -> int:
        """The record bytes `loc`'s value takes at depth 0 (measured by building it aside)."""
        aside = ReadableBuilder(self.header, self.dialect, 0, self.max_str, self.max_items, self.ptr_size)
        aside.budget = 1 << 30
        aside.value(loc, name)
        return aside.cost

    def var(self, *parts: str) -> str:
        base = "_".join(re.sub(r"[^A-Za-z0-9_]", "_", p) for p in parts if p) or "v"
        if base[0].isdigit() or _program_variable(base):
            base = "v_" + base  # a parameter named g would have been the goroutine pointer's $g
        name, n = base, 1
        while name in self._names:
            n += 1
            name = f"{base}{n}"
        self._names.add(name)
        if self.dialect.version < (0, 23, 0):
            # 0.17 keeps each variable on the same 512-byte stack as the record: print's receiver
            # loaded with two, writeCommentPrefix's (the same fields, one more pointer) did not
            self.cost += 8
        return "$" + name

    # ------------------------------------------------------------ sources
    def value(self, loc: Location, name: str, sp: str = 'reg("sp")') -> list[Item]:
        t = loc.param.type
        if t.size == 0:
            return [Text(self._zero_size(t))]
        if loc.in_registers:
            regs = {p.leaf.offset: p for p in loc.pieces if isinstance(p, RegisterPiece)}
            return self.show(t, Registers(regs), self.depth, name)
        if loc.pieces or loc.stack_offset is not None:
            return self.show(t, Memory(sp, loc.stack_offset or 0), self.depth, name)
        return [Text(unavailable("no location"))]

    def _word(self, src, off: int, size: int, signed: bool | None, t: GoType | None = None) -> tuple[str | None, str | None]:
        """A scalar word as a bpftrace expression: int64 (signed), uint64 (unsigned or None)."""
        if isinstance(src, Registers):
            piece = src.pieces.get(src.base + off)
            if piece is None:
                return None, f"no register holds offset {src.base + off}"
            if not piece.readable:
                return None, piece.unavailable_reason
            raw = f'reg("{piece.bpf_name}")'
            if signed:
                return (f"({_INT_C[size]}){raw}" if size == 8 else _cast(f"({_INT_C[size]}){raw}", "int64")), None
            return (raw if size == 8 else _u64(f"({_UINT_C[size]}){raw}")), None
        if off == 0 and src.lvalue is not None and t is not None:
            member = src.lvalue
            if t.kind is Kind.POINTER or t.kind in (Kind.UNSAFE_POINTER, Kind.MAP, Kind.CHAN, Kind.FUNC):
                return f"(uint64){member}", None
            if size == 8:
                return member, None
            return _cast(member, "int64" if signed else "uint64"), None
        ctype = (_INT_C if signed else _UINT_C).get(size, "uint64")
        load = f"*({ctype}*)({src.addr(off)})"
        if size == 8:
            return load, None
        return _cast(load, "int64" if signed else "uint64"), None

    # ------------------------------------------------------------ values
    def show(self, t: GoType, src, depth: int, path: str) -> list[Item]:
        k = t.kind
        if k in (Kind.INT, Kind.UINT, Kind.BOOL):
            return [self._scalar(t, src)]
        if k in (Kind.UINTPTR, Kind.UNSAFE_POINTER, Kind.MAP, Kind.CHAN, Kind.FUNC):
            # a uintptr is pointer-sized; an untyped argument word (wordprobe) may be smaller
            e, why = self._word(src, 0, t.size if k is Kind.UINTPTR else self.ptr_size, None, t)
            if e is None:
                return [Text(unavailable(why))]
            shown = {Kind.UINTPTR: "0x%lx", Kind.UNSAFE_POINTER: "unsafe.Pointer(0x%lx)"}.get(
                k, fmt_text(t.name) + "(0x%lx)")
            return [self._arg(shown, e)]
        if k is Kind.FLOAT:
            return [self._float(t.size, src, 0)]
        if k is Kind.COMPLEX:
            half = t.size // 2
            return [Text("complex("), self._float(half, src, 0), Text(", "), self._float(half, src, half), Text(")")]
        if k is Kind.STRING:
            return self._string(src, path, t)
        if k is Kind.SLICE:
            return self._slice(t, src, path)
        if k is Kind.ARRAY:
            n = t.length or 0
            items: list[Item] = [Text("[")]
            shown = min(n, self.max_items)
            for i in range(shown):
                if i:
                    items.append(Text(" "))
                items += self.show(t.elem, _element(src, i * t.elem.size), depth, f"{path}_{i}")
            if n > shown:
                items.append(Text(f" ...{n - shown} more"))
            return items + [Text("]")]
        if k is Kind.STRUCT:
            names = self.header.member_names(t)
            items = [Text("{")]
            first = True
            for i, f in enumerate(t.fields):
                if not first:
                    items.append(Text(", "))
                first = False
                items.append(Text(fmt_text(f.name or "_") + ":"))
                cname = names.get(i)
                if f.type.size == 0:
                    items.append(Text(self._zero_size(f.type)))
                    continue
                sub = _field(src, f.offset, cname)
                items += self.show(f.type, sub, depth, f"{path}_{f.name}")
            return items + [Text("}")]
        if k is Kind.POINTER:
            return self._pointer(t, src, depth, path)
        if k is Kind.INTERFACE:
            tab, why = self._word(src, 0, self.ptr_size, None)
            data, why2 = self._word(src, self.ptr_size, self.ptr_size, None)
            if tab is None or data is None:
                return [Text(unavailable(why or why2))]
            first = "type" if t.empty_interface else "tab"
            return [self._arg("{" + first + ":0x%lx", tab), self._arg(", data:0x%lx}", data)]
        return [Text(unavailable(f"kind {k.value} not supported"))]

    def _zero_size(self, t: GoType) -> str:
        return {Kind.STRUCT: "{}", Kind.ARRAY: "[]"}.get(t.kind, "{}")

    def _arg(self, fmt: str, expr: str, cost: int = 8) -> Text:
        """One printf conversion of `expr`; past the record's budget, the conversion's place says
        so instead (the text around it stays, so the line keeps its shape)."""
        if self._full(cost):
            return Text(_CONVERSION.sub(_RECORD_FULL.replace("%", "%%"), fmt, count=1))
        self.cost += cost
        return Text(fmt, [expr], cost)

    def _full(self, cost: int) -> bool:
        """Would `cost` more bytes overflow the output record (the goroutine and tid that end every
        line are kept room for)?"""
        return self.cost + cost > self.budget - _WHO_COST - self.reserved

    def _scalar(self, t: GoType, src) -> Text:
        signed = t.kind is Kind.INT
        e, why = self._word(src, 0, t.size, signed, t)
        if e is None:
            return Text(unavailable(why))
        if t.kind is Kind.BOOL:
            if isinstance(src, Memory) and src.lvalue is not None:
                e = src.lvalue  # a uint8_t member: tested as it is
            if self.dialect.version >= (0, 23, 0):
                return self._arg("%s", f'({e} != 0 ? "true" : "false")')
            return self._arg("%lu", e)  # 0.17: a string per bool does not fit its 512-byte stack
        return self._arg("%ld" if signed else "%lu", e)

    def _float(self, size: int, src, off: int) -> Text:
        if isinstance(src, Registers):
            piece = src.pieces.get(src.base + off)
            return Text(unavailable(piece.unavailable_reason if piece else f"no register holds offset {src.base + off}"))
        e, _ = self._word(src, off, size, False)
        fn = "math.Float32frombits(0x%lx)" if size == 4 else "math.Float64frombits(0x%lx)"
        return self._arg(fn, e)

    def _bytes(self, ptr: str, length: str, path: str) -> tuple[list[Item], Text]:
        """The first --max-str bytes at ptr (length clamped), printed exactly with %r."""
        cost = self.max_str + 8
        if self._full(cost):
            return [], Text(_RECORD_FULL)
        n = self.var(path, "n")
        stmts = [Stmt(f"{n} = (uint64){length};")]
        if self.dialect.copy_record_size(self.max_str) is None:
            # one unsigned comparison: a negative (corrupt) length copies max_str bytes, as
            # bpftrace's own buf() does, and its printed length says it is corrupt
            stmts.append(Stmt(f"{n} = {n} > {self.max_str} ? (uint64){self.max_str} : {n};"))
        # 0.23+: no clamp here; buf() clamps to the program's max_strlen (render_readable sets it
        # to max_str + 4). Each clamp of our own doubled the states the verifier walks, on top of
        # buf()'s own: with -k's read checks, gofmt's writeCommentPrefix (nine strings) went over
        # its million-instruction limit (E2BIG); without them it loads in 2 s.
        self.cost += cost
        self.copies += 1
        return stmts, Text('\\"%r\\"', [f"buf({ptr}, {n})"], cost)

    def _string(self, src, path: str, t: GoType) -> list[Item]:
        ptr, why = self._word(src, 0, self.ptr_size, None)
        ln, why2 = self._word(src, self.ptr_size, self.ptr_size, True)
        if ptr is None or ln is None:
            return [Text(unavailable(why or why2))]
        names = self.header.member_names(t)
        if isinstance(src, Memory) and src.members is not None:
            ptr = f"(uint64){src.members}{names.get(0, 'str')}"
            ln = f"{src.members}{names.get(1, 'len')}"
        stmts, data = self._bytes(ptr, ln, path)
        return [*stmts, data, self._arg("(len %ld)", ln)]

    def _slice(self, t: GoType, src, path: str) -> list[Item]:
        ptr, why = self._word(src, 0, self.ptr_size, None)
        ln, _ = self._word(src, self.ptr_size, self.ptr_size, True)
        cp, _ = self._word(src, 2 * self.ptr_size, self.ptr_size, True)
        if ptr is None or ln is None or cp is None:
            return [Text(unavailable(why or "slice header not readable"))]
        names = self.header.member_names(t)
        if isinstance(src, Memory) and src.members is not None:
            ptr = f"(uint64){src.members}{names.get(0, 'array')}"
            ln = f"{src.members}{names.get(1, 'len')}"
            cp = f"{src.members}{names.get(2, 'cap')}"
        items: list[Item] = [Text(fmt_text(t.name)), self._arg("(len %ld", ln), self._arg(", cap %ld)", cp)]
        elem = t.elem
        if elem is not None and elem.size == 1 and elem.kind in (Kind.UINT, Kind.INT):
            stmts, data = self._bytes(ptr, ln, path)
            items = stmts + items + [data]
        else:
            items.append(self._arg(" 0x%lx", ptr))
        return items

    def _pointer(self, t: GoType, src, depth: int, path: str) -> list[Item]:
        e, why = self._word(src, 0, self.ptr_size, None, t)
        if e is None:
            return [Text(unavailable(why))]
        target = t.elem
        follow = (depth > 0 and target is not None and target.size > 0 and not t.name.startswith("go.shape.")
                  and self.branches < MAX_BRANCHES)
        if not follow:
            return [self._arg("0x%lx", e)]
        as_struct = needs_struct(target) and target.kind is Kind.STRUCT

        def pointee(v: str):
            return Memory(f"(uint64){v}", 0, f"{v}->") if as_struct else Memory(v, 0, None)

        aside = ReadableBuilder(self.header, self.dialect, 0, self.max_str, self.max_items, self.ptr_size)
        aside.budget = 1 << 30
        aside.var(path)  # the pointer's variable (on 0.17, stack beside the record)
        aside.show(target, pointee("$v"), 0, path)
        if self._full((aside.cost + 1) // 2):
            # not half of the pointee's own words fit the record: its address, not a line of blanks
            return [self._arg("0x%lx", e), Text(" " + unavailable(_POINTEE_NOT_PRINTED))]
        self.branches += 1
        v = self.var(path)
        decl = f"{v} = (struct {self.header.struct_tag(target)} *){e};" if as_struct else f"{v} = {e};"
        inner = pointee(v)
        then = [Text("&")] + self.show(target, inner, depth - 1, path)
        return [Stmt(decl), Branch(f"{v} != 0", then, [Text("nil")])]


def _field(src, off: int, cname: str | None):
    if isinstance(src, Registers):
        return src.at(off)
    members = f"{src.members}{cname}." if (src.members is not None and cname) else None
    return Memory(src.address, src.offset + off, members)


def _element(src, off: int):
    if isinstance(src, Registers):
        return src.at(off)
    return Memory(src.address, src.offset + off, None)


def unavailable(reason: str | None) -> str:
    return f"<unavailable: {fmt_text(reason or 'unknown')}>"


# ---------------------------------------------------------------- from items to statements
def render_items(items: list[Item], end: str, prefix_args: list[str] | None = None) -> list[str]:
    """Statements that print the items as one printf per outcome of the branches."""
    return _expand(list(items), [], list(prefix_args or []), end)


def _expand(items: list[Item], fmt: list[str], args: list[str], end: str) -> list[str]:
    out: list[str] = []
    fmt = list(fmt)
    args = list(args)
    for i, item in enumerate(items):
        if isinstance(item, Text):
            fmt.append(item.fmt)
            args.extend(item.args)
        elif isinstance(item, Stmt):
            out.append(item.code)
        else:
            rest = items[i + 1:]
            out.append(f"if ({item.cond}) {{")
            out += _expand(item.then + rest, fmt, args, end)
            out.append("} else {")
            out += _expand(item.otherwise + rest, fmt, args, end)
            out.append("}")
            return out
    text = "".join(fmt) + end
    out.append(f'printf("{text}\\n"' + "".join(f", {a}" for a in args) + ");")
    return out


# ---------------------------------------------------------------- the program
class ReadableWriter(ProgramWriter):
    """Entry and RET probes that print Go-like lines; the attach, filter and re-entry machinery is
    the raw program's (ProgramWriter)."""

    def __init__(self, binary_path: str, dialect: Dialect, header: CHeaderWriter, pid: int | None = None,
                 goid_offset: int | None = None, arch: str = "amd64", max_str: int = 64):
        super().__init__(binary_path, dialect, pid, goid_offset, arch=arch, max_str=max_str)
        self.header = header
        self.run_env.update(dialect.copy_env(max_str))

    def _prelude(self, g_expr: str | None) -> list[str]:
        lines = [f"$g = {_u64(g_expr)};"] if g_expr else []
        if g_expr and self.goid_offset is not None:
            lines += goid_statements(g_expr, self.goid_offset)
        return lines

    def _who(self, g_expr: str | None) -> tuple[str, list[str]]:
        if g_expr and self.goid_offset is not None:
            return "  goroutine %ld tid %d", ["$goid", "tid"]
        return "  tid %d", ["tid"]

    def add_entry_readable(self, fn: Function, layout: FunctionLayout, machine: MachineReport | None,
                           builder: ReadableBuilder, g_expr: str | None, keep: str | None, at: int,
                           returns: bool, reentry=None, filter_code=None) -> ProbePlan:
        probe = ProbePlan(len(self.probes), fn, "call", fn.address, [], [], keep, unknown=layout.unknown,
                          attach_address=at)
        self.probes.append(probe)
        builder.reset()
        names = fn.display_names()
        items: list[Item] = [Text(fmt_text(fn.name) + "(")]
        # in declaration order (the ABI's order can differ: zero-size values, the generic dictionary)
        position = {id(p): i for i, p in enumerate(fn.inputs)}
        shown = sorted((loc for loc in layout.inputs if not loc.param.is_hidden),
                       key=lambda loc: position.get(id(loc.param), len(position)))
        if layout.unknown:  # no value can be located: say why, once
            items.append(Text(unavailable(layout.unknown)))
            shown_values = []
        else:
            shown_values = shown
        items += builder.values([(loc, names.get(id(loc.param)) or loc.param.source_name or loc.param.name or f"_{i}")
                                 for i, loc in enumerate(shown_values)])
        who, who_args = self._who(g_expr)
        items.append(Text(")" + who, who_args))
        body = self._prelude(g_expr)
        if g_expr and returns:
            body.append(f"@dg_start[{_call_key(probe)}] = nsecs;")
        body += render_items(items, "")
        if filter_code is not None:
            # --filter: the call is printed (and its return, marked by @dg_start) only when it holds
            # a filtered-out call marks its start 0 (not deleted: the return's lookup then finds it,
            # with no warning from bpftrace -k), and its return prints nothing
            otherwise = ([f"@dg_start[{_call_key(probe)}] = 0;"] if g_expr and returns else [])
            pre = self._prelude(g_expr) if g_expr and returns else []
            body = (list(filter_code.statements) + [f"if ({filter_code.condition}) {{", *body, "}"]
                    + (["else {", *pre, *otherwise, "}"] if otherwise else []))
        if reentry is not None and g_expr:
            body = self._unless_reentry(probe, reentry, g_expr, body)
        comments = [f"// {comment_safe(fn.signature())}"]
        for loc in shown:
            comments.append(f"//   {comment_safe(loc.param.source_name or loc.param.name or '_'):<10} "
                            f"{comment_safe(loc.param.type.name):<24} {loc.describe()}")
        self.blocks.append("\n".join(comments) + "\n" + self._block(self._attach(at), keep, body))
        return probe

    def add_returns_readable(self, fn: Function, layout: FunctionLayout, sites: list[int],
                             builder: ReadableBuilder, g_expr: str | None, entry_probe: ProbePlan,
                             filtered: bool = False) -> None:
        if not sites:
            self.warnings.append(f"{fn.name}: no RET instruction found; no return probe")
            return
        if self.dialect.no_ret_probes:
            self.warnings.append(f"{fn.name}: results are not traced: {self.dialect.no_ret_probes}")
            return
        names = fn.display_names()
        key = _call_key(entry_probe)
        for site in sites:
            builder.reset()
            items: list[Item] = [Text(fmt_text(fn.name) + " returned (")]
            if layout.unknown:
                items.append(Text(unavailable(layout.unknown)))
            items += builder.values([(loc, names.get(id(loc.param)) or loc.param.name or f"r{i}")
                                     for i, loc in enumerate([] if layout.unknown else layout.results)])
            who, who_args = self._who(g_expr)
            items.append(Text(")"))
            if g_expr and not filtered:
                items.append(Branch("$t0 > 0", [Text(" in %ld ns", ["(int64)nsecs - (int64)$t0"])], []))
            elif g_expr:
                items.append(Text(" in %ld ns", ["(int64)nsecs - (int64)$t0"]))
            items.append(Text(who, who_args))
            body = self._prelude(g_expr)
            if g_expr:
                body += [f"$t0 = @dg_start[{key}];", self._delete(f"@dg_start[{key}]")]
            if filtered and g_expr:  # the return of a call the filter kept (its start is marked)
                body += ["if ($t0 > 0) {", *render_items(items, ""), "}"]
            else:
                body += render_items(items, "")
            comment = f"// {comment_safe(fn.name)}: RET at {site:#x} (+{site - fn.address:#x})"
            self.blocks.append(comment + "\n" + self._block(self._attach(site), None, body))

    def render_readable(self, header: str) -> str:
        config = _config_block(self.dialect, self.buffer_pages, self.max_str)
        text = header + self.header.render() + "\n" + config + "\n".join(self.blocks)
        maps = [m for m in ("@dg_reenter", "@dg_start") if m + "[" in text]
        if maps:
            text += "\nEND\n{\n" + "".join(f"\tclear({m});\n" for m in maps) + "}\n"
        return text


@dataclass
class ReadableProgram:
    text: str
    warnings: list[str]
    run_env: dict[str, str] = field(default_factory=dict)  # environment bpftrace needs (said in the header)


def generate_readable(prog, functions, dialect: Dialect, options, bpftrace: str | None = None) -> ReadableProgram:
    """The readable program for `functions` (ProbeOptions: ret, depth, max_str, max_items, pid).

    bpftrace before 0.23 builds each output record on the 512-byte BPF stack, and how much else a
    probe keeps there depends on its shape; with the `bpftrace` binary at hand, a program near the
    budget is compiled (stackcheck: nothing is loaded) and rebuilt with less room per record until
    it fits: values past the room then say so, and the program loads."""
    budget = None
    for _ in range(_STACK_TRIES):
        program, peak = _generate_readable(prog, functions, dialect, options, budget)
        if bpftrace is None or dialect.version >= (0, 23, 0) or peak < _STACK_CHECK_FROM:
            return program
        verdict = compile_verdict(bpftrace, dialect, program, str(prog.binary.path.resolve()),
                                  cached=getattr(prog, "cache", None) is not None)
        if verdict is CompileVerdict.FITS:
            return program
        if verdict is CompileVerdict.TOO_LARGE:
            from .probe import too_large
            raise too_large(functions, dialect, options.depth, args=False)  # (readable: no --args)
        budget = min(budget or _STACK_BUDGET_017, peak) - _STACK_STEP
    raise DwarfgoError(f"the readable program does not fit bpftrace {dialect.version_text}'s 512-byte BPF stack even "
                       f"with {budget} bytes per record: use --depth 0, fewer functions, or --format raw")


def _generate_readable(prog, functions, dialect: Dialect, options, budget: int | None) -> tuple[ReadableProgram, int]:
    from ..verify.evidence import trusted_layout
    from .probe import _attach_flags, attach_delta, entry_point, g_expression, goid_offset

    if options.max_str > dialect.max_strlen:
        raise DwarfgoError(f"--max-str {options.max_str} exceeds bpftrace {dialect.version_text}'s limit of {dialect.max_strlen}")
    from .probe import table_source
    # layouts from the runtime type tables, no DWARF (untyped argument words need no C layout);
    # wordprobe (and the type tables it reads) is imported only for functions that do not come from DWARF
    tabled = [fn for fn in functions if table_source(fn)]
    tables = words_only = False
    if tabled:
        from ..wordprobe import WordFunction
        tables = any(not isinstance(fn, WordFunction) for fn in tabled)
        words_only = len(tabled) == len(functions) and all(isinstance(fn, WordFunction) for fn in tabled)
    source = ("the runtime type tables, no DWARF (source: runtime type table)" if tables else
              "no DWARF and no type: untyped argument words only" if words_only else "DWARF")
    header = CHeaderWriter(ptr_size=prog.binary.ptr_size, source=source, layouts=not words_only)
    writer = ReadableWriter(str(prog.binary.path.resolve()), dialect, header, options.pid, goid_offset(prog),
                            arch=prog.binary.arch, max_str=options.max_str)
    if options.buffer_pages:
        writer.buffer_pages = options.buffer_pages
    attach_flags = _attach_flags(prog, dialect)  # a binary without a symbol table: --unsafe, file offsets
    if attach_flags:
        writer.attach_delta = attach_delta(prog.binary, [fn.address for fn in functions])
    builder = ReadableBuilder(header, dialect, options.depth, options.max_str, options.max_items, prog.binary.ptr_size)
    if budget is not None:
        builder.budget = budget
    from .bpftrace import runtime_layout
    filters = runtime = None  # (the filter compiler is imported only for a program with --filter)
    if options.filter:
        from .filter import FilterSet
        filters = FilterSet.parse(prog, options.filter, functions)
        runtime = runtime_layout(prog)
    abis = set()
    for fn in functions:
        layout, machine = trusted_layout(prog, fn)
        abis.add(layout.abi)
        for loc in layout.inputs + (layout.results if options.ret else []):
            if not loc.param.is_hidden:
                header.add(loc.param.type, options.depth)
        g = g_expression(prog, fn)
        where = entry_point(fn, machine, g, dialect)
        if where.warning:
            writer.warnings.append(f"{fn.name}: {where.warning}")
        returns = options.ret and dialect.supports_mid_function_probes
        code = filters.code_for(fn, layout, dialect, runtime) if options.filter else None
        if code is not None and returns and not g:
            raise DwarfgoError(f"{fn.name}: --filter with --ret needs the goroutine pointer, not found for "
                               f"{prog.binary.arch}")
        entry = writer.add_entry_readable(fn, layout, machine, builder, g, where.predicate, where.address,
                                          returns, where.reentry, code)
        if options.ret:
            writer.add_returns_readable(fn, layout, machine.ret_sites if machine else [], builder, g, entry,
                                        filtered=code is not None)
    room = dialect.copy_room(options.max_str)
    shown = room if builder.copies and room is not None else options.max_str
    if shown > options.max_str:
        # (no clamp of its own: see ReadableBuilder._bytes)
        writer.warnings.append(f"--max-str {options.max_str}: bpftrace {dialect.version_text}'s own library needs "
                               f"room for {shown} bytes a copy, so this program shows up to {shown} bytes of each "
                               f"string or byte slice (and its length); --format raw keeps to {options.max_str}")
    env = "".join(f"{k}={v} " for k, v in writer.run_env.items())
    flags = " ".join(dialect.read_error_flags + attach_flags)
    lines = [
        f"// Generated by dwarfgo {_version()} from {comment_safe(str(prog.binary.path))}",
        f"// {prog.binary.go_version} {prog.binary.arch}, ABI {', '.join(sorted(abis)) or '-'}, "
        f"for bpftrace {dialect.version_text}",
        f"// Run: sudo {env}bpftrace {flags} FILE    (add -p PID for one process, or -c 'CMD')",
        f"// {' '.join(dialect.read_error_flags)}: a memory read that fails (page not resident, bad pointer) is reported on stderr; "
        "the value printed for it is then 0.",
        "// One line per call (and per return with results); strings print their first "
        f"{shown} bytes and their "
        "length.",
    ]
    if attach_flags:
        lines.append("// --unsafe: the binary has no symbol table, so bpftrace cannot check that a probe sits on an "
                     "instruction boundary (dwarfgo placed each on one it disassembled); the attach points are "
                     "file offsets, as bpftrace reads them then.")
    if dialect.version < (0, 23, 0):
        lines.append(f"// bpftrace {dialect.version_text}: bools print as 1/0 (a string per bool does not fit "
                     "its 512-byte stack).")
    if dialect.command_note and options.pid is None:
        lines.append(f"// {dialect.command_note}.")
    if "BPFTRACE_MAP_KEYS_MAX" in writer.run_env:
        lines.append("// BPFTRACE_MAP_KEYS_MAX: one map entry per goroutine marks the re-entry after morestack, "
                     "so that a call gives one line.")
        if "-kk" in dialect.read_error_flags:
            lines.append("// With -kk, the first call on each goroutine prints one 'Failed to map_lookup_elem' "
                         "warning (its mark is not set yet): harmless.")
    lines += [f"// {fn.name}{table_source(fn)}" for fn in functions if table_source(fn)]
    for w in writer.warnings:
        lines.append(f"// warning: {comment_safe(w)}")
    builder.reset()
    return (ReadableProgram(writer.render_readable("\n".join(lines) + "\n\n"), writer.warnings, dict(writer.run_env)),
            builder.peak)


def _version() -> str:
    from .. import __version__
    return __version__
