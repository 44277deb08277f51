"""Layer 4a: the read plan: which raw words a probe reads, and how they make up Go values.

A plan is a tree of nodes mirroring each Go value (struct fields, string header,
slice items, pointed-to values to a depth). Every leaf that needs a word from the
traced process is a `Read` with a number; the bpftrace emitter prints each read as
`<number> <raw value>`, and the decoder walks the same tree to rebuild Go values.
Names from the binary never enter the generated program: only numbers do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from ..abi.assign import Location, RegisterPiece
from ..errors import DwarfgoError
from ..goexpr import ArgExpr, DerefStep, FieldStep, IndexStep, map_index_error
from ..gotypes import GoType, Kind

# how the decoder interprets a raw read
INT, UINT, BOOL, HEX, FLOAT32, FLOAT64, BYTES = "int", "uint", "bool", "hex", "f32", "f64", "bytes"


@dataclass
class Read:
    index: int
    kind: str  # INT, UINT, BOOL, HEX, FLOAT32 (raw bits), FLOAT64 (raw bits), BYTES
    expr: str  # bpftrace expression (BYTES: address expression)
    size: int = 8  # bytes of the scalar (BYTES: the length expression is in `length`)
    length: str | None = None  # BYTES only: bpftrace expression of the byte count (already clamped)


@dataclass
class Node:
    type: GoType | None


@dataclass
class Scalar(Node):
    read: Read | None = None  # None together with `unavailable`
    unavailable: str | None = None


@dataclass
class StringNode(Node):
    ptr: Read | None = None
    len: Read | None = None
    data: Read | None = None  # BYTES, only read when len > 0
    unavailable: str | None = None


@dataclass
class SliceNode(Node):
    ptr: Read | None = None
    len: Read | None = None
    cap: Read | None = None
    items: list[Node] = field(default_factory=list)  # item i is read only when i < len
    data: Read | None = None  # []byte: the bytes in one read
    unavailable: str | None = None


@dataclass
class ArrayNode(Node):
    items: list[Node] = field(default_factory=list)


@dataclass
class StructNode(Node):
    fields: list[tuple[str, Node]] = field(default_factory=list)


@dataclass
class PointerNode(Node):
    ptr: Read | None = None
    target: Node | None = None  # read only when ptr != 0; None past --depth
    unavailable: str | None = None


@dataclass(frozen=True)
class StaticItabs:
    """The itabs the linker laid out in the binary's data (`go:itab.*`, listed by the module data),
    as link addresses: an interface's itab word in [first, last] (less the load bias) is one of
    them, and its type word (at +type_offset) is known from the file: the file's word, or in a
    position-independent executable (`relocated`) the addend of its relocation (see
    runtime_types.static_itabs)."""

    first: int
    last: int
    type_offset: int
    relocated: bool = False


@dataclass
class InterfaceNode(Node):
    tab: Read | None = None  # itab (non-empty) or *_type (empty)
    # non-empty interfaces: itab->_type, read when tab != 0 and, with static_itabs, tab is not in
    # that range (the decoder then takes the type word from the file)
    type_ptr: Read | None = None
    data: Read | None = None
    unavailable: str | None = None
    static_itabs: StaticItabs | None = None


@dataclass
class MapNode(Node):
    ptr: Read | None = None
    count: Read | None = None  # read when ptr != 0
    unavailable: str | None = None


@dataclass
class ChanNode(Node):
    ptr: Read | None = None
    len: Read | None = None
    cap: Read | None = None
    unavailable: str | None = None


@dataclass
class FuncNode(Node):
    ptr: Read | None = None  # the func value (pointer to the closure object)
    code: Read | None = None  # *ptr: the code pointer, read when ptr != 0
    unavailable: str | None = None


@dataclass
class ComplexNode(Node):
    real: Scalar | None = None
    imag: Scalar | None = None


@dataclass
class GuardNode(Node):
    """A value reached through a pointer or a slice index (`--args p.Next.Val`, `xs[2]`): read
    only when `check` > `minimum` (pointer non-nil, length past the index). Otherwise the value
    is `otherwise` when Go defines one (len of a nil map is 0), else unavailable with `reason`."""

    check: Read | None = None
    minimum: int = 0
    target: Node | None = None
    reason: str = ""
    otherwise: int | None = None
    base: Read | None = None  # read before the check: the slice/string data pointer the target uses


@dataclass
class ValuePlan:
    """One parameter or result."""

    name: str
    location: Location
    node: Node


@dataclass
class RuntimeLayout:
    """Offsets inside runtime structures, from the binary's DWARF."""

    map_count_offset: int | None  # runtime.hmap.count (<=1.23) / maps.Map.used (1.24+)
    map_count_size: int
    chan_qcount_offset: int | None  # runtime.hchan.qcount
    chan_dataqsiz_offset: int | None
    itab_type_offset: int  # offset of _type in runtime.itab / internal/abi.ITab
    # finds the itabs whose type word the decoder takes from the file (runtime_types.static_itabs:
    # it reads the module data, 30-140 ms on cmd/compile), when a plan first holds an interface
    static_itabs_finder: Callable[[], StaticItabs | None] | None = None

    @cached_property
    def static_itabs(self) -> StaticItabs | None:
        return self.static_itabs_finder() if self.static_itabs_finder is not None else None


_INT_CAST = {1: "int8", 2: "int16", 4: "int32", 8: "int64"}
_UINT_CAST = {1: "uint8", 2: "uint16", 4: "uint32", 8: "uint64"}


class PlanBuilder:
    """Builds the node tree of each value and numbers its reads."""

    def __init__(self, runtime: RuntimeLayout, depth: int = 1, max_str: int = 64, max_items: int = 4,
                 ptr_size: int = 8):
        self.runtime = runtime
        self.depth = depth
        self.max_str = max_str
        self.max_items = max_items
        self.ptr_size = ptr_size
        self.reads: list[Read] = []

    # ------------------------------------------------------------------ reads
    def _read(self, kind: str, expr: str, size: int = 8, length: str | None = None) -> Read:
        r = Read(len(self.reads), kind, expr, size, length)
        self.reads.append(r)
        return r

    @staticmethod
    def _mem(ctype: str, addr: str, off: int) -> str:
        a = f"{addr} + {off}" if off else addr
        return f"*({ctype}*)({a})"

    # ------------------------------------------------------------------ sources
    def value(self, loc: Location, name: str | None = None, sp: str = 'reg("sp")',
              unknown: str | None = None) -> ValuePlan:
        """The plan of one parameter/result at its location (registers or stack)."""
        try:
            return self._value(loc, name, sp, unknown)
        except RecursionError:
            raise _too_deep(loc) from None

    def _value(self, loc: Location, name: str | None, sp: str, unknown: str | None) -> ValuePlan:
        t = loc.param.type
        if unknown:
            node = Scalar(t, None, unknown)
        elif loc.in_registers:
            regs = {p.leaf.offset: p for p in loc.pieces if isinstance(p, RegisterPiece)}
            node = self._build(t, _RegisterSource(regs), 0, self.depth)
        elif loc.pieces or loc.stack_offset is not None:
            node = self._build(t, _MemorySource(f"{sp}", loc.stack_offset or 0), 0, self.depth)
        else:
            node = Scalar(t, None, "no location")
        return ValuePlan(name or loc.param.source_name or loc.param.name, loc, node)

    def selection(self, expr: ArgExpr, loc: Location, unknown: str | None = None) -> ValuePlan:
        """The plan of one `--args` expression rooted at the parameter at `loc`."""
        t = loc.param.type
        if unknown:
            return ValuePlan(expr.text, loc, Scalar(t, None, unknown))
        if loc.in_registers:
            regs = {p.leaf.offset: p for p in loc.pieces if isinstance(p, RegisterPiece)}
            src = _RegisterSource(regs)
        elif loc.pieces or loc.stack_offset is not None:
            src = _MemorySource('reg("sp")', loc.stack_offset or 0)
        else:
            return ValuePlan(expr.text, loc, Scalar(t, None, "no location"))
        try:
            return ValuePlan(expr.text, loc, self._select(expr, 0, t, src, 0))
        except RecursionError:
            raise _too_deep(loc) from None

    def _select(self, expr: ArgExpr, i: int, t: GoType, src, off: int) -> Node:
        """Walk expr.steps[i:] from a value of type t at (src, off)."""
        here = expr.path_text(i)
        if i == len(expr.steps):
            return self._builtin(expr, t, src, off) if expr.builtin else self._build(t, src, off, self.depth)
        step = expr.steps[i]
        if isinstance(step, DerefStep):
            if t.kind is not Kind.POINTER or t.elem is None:
                raise DwarfgoError(f"--args {expr.text}: cannot indirect {here}: it is {t.name}, not a pointer")
            if t.name.startswith("go.shape."):
                raise DwarfgoError(f"--args {expr.text}: cannot indirect {here}: {t.name} is a generic pointer "
                                   f"shape, which stands for any pointer type")
            if expr.builtin and i + 1 == len(expr.steps) and t.elem.kind is Kind.ARRAY:
                return self._builtin(expr, t.elem, src, off)  # len(*p) of an array pointer: a constant, p unread
            return self._follow(expr, i + 1, t, src, off, here)
        auto = t.kind is Kind.POINTER and t.elem is not None and (
            (isinstance(step, FieldStep) and t.elem.kind is Kind.STRUCT)
            or (isinstance(step, IndexStep) and t.elem.kind is Kind.ARRAY))
        if auto:  # Go's automatic dereference: p.f is (*p).f, p[i] is (*p)[i] for a pointer to an array
            return self._follow(expr, i, t, src, off, here)
        if isinstance(step, FieldStep):
            if t.kind is not Kind.STRUCT:
                hint = ""
                if t.kind is Kind.POINTER:  # Go follows one pointer only
                    explicit = ArgExpr("", expr.root, expr.steps[:i] + (DerefStep(), step)).path_text()
                    hint = f" (Go follows one pointer only: {explicit})"
                raise DwarfgoError(f"--args {expr.text}: {here} is {t.name}, which has no fields{hint}")
            for f in t.fields:
                if f.name == step.name:
                    return self._select(expr, i + 1, f.type, src, off + f.offset)
            names = ", ".join(f.name for f in t.fields) or "none"
            raise DwarfgoError(f"--args {expr.text}: {t.name} has no field {step.name} (fields: {names})")
        n = step.index
        if t.kind is Kind.ARRAY:
            if t.elem is None or n >= (t.length or 0):
                raise DwarfgoError(f"--args {expr.text}: index {n} out of range for {t.name}")
            return self._select(expr, i + 1, t.elem, src, off + n * t.elem.size)
        if t.kind in (Kind.SLICE, Kind.STRING):
            ptr_e, why = src.word(off, self.ptr_size, HEX)
            len_e, why2 = src.word(off + self.ptr_size, self.ptr_size, INT)
            if ptr_e is None or len_e is None:
                return Scalar(t, None, why or why2)
            ptr, ln = self._read(HEX, ptr_e), self._read(INT, len_e)
            if t.kind is Kind.STRING:
                if i + 1 < len(expr.steps) or expr.builtin:
                    raise DwarfgoError(f"--args {expr.text}: {here}[{n}] is a byte")
                inner: Node = Scalar(_BYTE, self._read(UINT, self._mem("uint8", f"$r{ptr.index}", n), 1))
            else:
                inner = self._select(expr, i + 1, t.elem, _MemorySource(f"$r{ptr.index}", n * t.elem.size), 0)
            return GuardNode(inner.type, ln, n, inner, f"index {n} out of range: {here} is shorter", base=ptr)
        if t.kind is Kind.MAP:
            raise map_index_error(expr.text, here)
        raise DwarfgoError(f"--args {expr.text}: cannot index {here} of type {t.name}")

    def _follow(self, expr: ArgExpr, i: int, t: GoType, src, off: int, pointer: str) -> Node:
        """The pointer `pointer` of type t at (src, off), followed: expr.steps[i:] walk what it points
        to, read only when the pointer is not nil."""
        e, why = src.word(off, self.ptr_size, HEX)
        if e is None:
            return Scalar(t, None, why)
        ptr = self._read(HEX, e)
        inner = self._select(expr, i, t.elem, _MemorySource(f"$r{ptr.index}", 0), 0)
        return GuardNode(inner.type, ptr, 0, inner, f"{pointer} is nil")

    def _builtin(self, expr: ArgExpr, t: GoType, src, off: int) -> Node:
        """len(x) / cap(x) with Go's meaning for each kind."""
        what, here = expr.builtin, expr.path_text()
        if t.kind is Kind.ARRAY:
            return Scalar(_INT, self._read(INT, str(t.length or 0)))
        if t.kind is Kind.SLICE or (t.kind is Kind.STRING and what == "len"):
            word = 1 if what == "len" else 2
            e, why = src.word(off + word * self.ptr_size, self.ptr_size, INT)
            return Scalar(_INT, self._read(INT, e)) if e else Scalar(_INT, None, why)
        if t.kind in (Kind.MAP, Kind.CHAN) and not (t.kind is Kind.MAP and what == "cap"):
            e, why = src.word(off, self.ptr_size, HEX)
            if e is None:
                return Scalar(_INT, None, why)
            if t.kind is Kind.MAP:
                field_off, size = self.runtime.map_count_offset, self.runtime.map_count_size
            else:
                field_off = self.runtime.chan_qcount_offset if what == "len" else self.runtime.chan_dataqsiz_offset
                size = 8
            if field_off is None:
                return Scalar(_INT, None, f"{t.kind.value} layout not found in this binary's DWARF")
            ptr = self._read(HEX, e)
            count = Scalar(_INT, self._read(INT, self._mem(_INT_CAST[size], f"$r{ptr.index}", field_off), size))
            return GuardNode(_INT, ptr, 0, count, f"{here} is nil", otherwise=0)
        raise DwarfgoError(f"--args {expr.text}: invalid argument: {here} ({t.name}) for {what}")

    def _scalar(self, t: GoType, src, off: int, kind: str) -> Scalar:
        expr, why = src.word(off, t.size, kind)
        if expr is None:
            return Scalar(t, None, why)
        return Scalar(t, self._read(kind, expr, t.size))

    def _build(self, t: GoType, src, off: int, depth: int) -> Node:
        k = t.kind
        if k is Kind.INT:
            return self._scalar(t, src, off, INT)
        if k is Kind.UINT:
            return self._scalar(t, src, off, UINT)
        if k is Kind.BOOL:
            return self._scalar(t, src, off, BOOL)
        if k in (Kind.UINTPTR, Kind.UNSAFE_POINTER):
            return self._scalar(t, src, off, HEX)
        if k is Kind.FLOAT:
            return self._scalar(t, src, off, FLOAT32 if t.size == 4 else FLOAT64)
        if k is Kind.COMPLEX:
            half = t.size // 2
            ft = _float_type(half)
            kind = FLOAT32 if half == 4 else FLOAT64
            return ComplexNode(t, self._scalar(ft, src, off, kind), self._scalar(ft, src, off + half, kind))
        if k is Kind.STRING:
            ptr_e, why = src.word(off, self.ptr_size, HEX)
            len_e, why2 = src.word(off + self.ptr_size, self.ptr_size, INT)
            if ptr_e is None or len_e is None:
                return StringNode(t, unavailable=why or why2)
            ptr = self._read(HEX, ptr_e)
            ln = self._read(INT, len_e)
            data = self._read(BYTES, f"$r{ptr.index}", length=self._clamp(f"$r{ln.index}", self.max_str))
            return StringNode(t, ptr, ln, data)
        if k is Kind.SLICE:
            ptr_e, why = src.word(off, self.ptr_size, HEX)
            len_e, _ = src.word(off + self.ptr_size, self.ptr_size, INT)
            cap_e, _ = src.word(off + 2 * self.ptr_size, self.ptr_size, INT)
            if ptr_e is None or len_e is None or cap_e is None:
                return SliceNode(t, unavailable=why or "slice header not readable")
            ptr, ln, cp = self._read(HEX, ptr_e), self._read(INT, len_e), self._read(INT, cap_e)
            node = SliceNode(t, ptr, ln, cp)
            elem = t.elem
            if elem is not None and elem.size == 1 and elem.kind in (Kind.UINT, Kind.INT):
                node.data = self._read(BYTES, f"$r{ptr.index}", length=self._clamp(f"$r{ln.index}", self.max_str))
            elif elem is not None and elem.size > 0 and depth > 0:
                for i in range(self.max_items):
                    node.items.append(self._build(elem, _MemorySource(f"$r{ptr.index}", i * elem.size), 0, depth - 1))
            return node
        if k is Kind.ARRAY:
            items = [self._build(t.elem, src, off + i * t.elem.size, depth) for i in range(min(t.length or 0, max(self.max_items, 1 if t.length else 0)))]
            return ArrayNode(t, items)
        if k is Kind.STRUCT:
            return StructNode(t, [(f.name, self._build(f.type, src, off + f.offset, depth)) for f in t.fields])
        if k is Kind.POINTER:
            e, why = src.word(off, self.ptr_size, HEX)
            if e is None:
                return PointerNode(t, unavailable=why)
            ptr = self._read(HEX, e)
            node = PointerNode(t, ptr)
            target = t.elem
            if t.name.startswith("go.shape."):
                # a generic pointer shape (`go.shape.*uint8`) stands for any pointer type: what it
                # points to is not known here, so only the address is read
                target = None
            if depth > 0 and target is not None and target.size > 0:
                node.target = self._build(target, _MemorySource(f"$r{ptr.index}", 0), 0, depth - 1)
            return node
        if k is Kind.INTERFACE:
            tab_e, why = src.word(off, self.ptr_size, HEX)
            data_e, why2 = src.word(off + self.ptr_size, self.ptr_size, HEX)
            if tab_e is None or data_e is None:
                return InterfaceNode(t, unavailable=why or why2)
            tab = self._read(HEX, tab_e)
            type_ptr = None
            if not t.empty_interface:
                type_ptr = self._read(HEX, self._mem("uint64", f"$r{tab.index}", self.runtime.itab_type_offset))
            data = self._read(HEX, data_e)
            return InterfaceNode(t, tab, type_ptr, data,
                                 static_itabs=self.runtime.static_itabs if type_ptr is not None else None)
        if k is Kind.MAP:
            e, why = src.word(off, self.ptr_size, HEX)
            if e is None:
                return MapNode(t, unavailable=why)
            ptr = self._read(HEX, e)
            count = None
            if self.runtime.map_count_offset is not None:
                ctype = _INT_CAST[self.runtime.map_count_size]
                count = self._read(INT, self._mem(ctype, f"$r{ptr.index}", self.runtime.map_count_offset))
            return MapNode(t, ptr, count)
        if k is Kind.CHAN:
            e, why = src.word(off, self.ptr_size, HEX)
            if e is None:
                return ChanNode(t, unavailable=why)
            ptr = self._read(HEX, e)
            ln = cp = None
            if self.runtime.chan_qcount_offset is not None:
                ln = self._read(INT, self._mem("int64", f"$r{ptr.index}", self.runtime.chan_qcount_offset))
                cp = self._read(INT, self._mem("int64", f"$r{ptr.index}", self.runtime.chan_dataqsiz_offset))
            return ChanNode(t, ptr, ln, cp)
        if k is Kind.FUNC:
            e, why = src.word(off, self.ptr_size, HEX)
            if e is None:
                return FuncNode(t, unavailable=why)
            ptr = self._read(HEX, e)
            code = self._read(HEX, self._mem("uint64", f"$r{ptr.index}", 0))
            return FuncNode(t, ptr, code)
        return Scalar(t, None, f"kind {k.value} not supported")

    def _clamp(self, length: str, limit: int) -> str:
        return f"({length} > {limit} ? {limit} : ({length} < 0 ? 0 : {length}))"


def _too_deep(loc: Location) -> DwarfgoError:
    return DwarfgoError(f"{loc.param.name or 'a value'}: its type {loc.param.type.name} nests too deeply to read "
                        f"(damaged DWARF: a type containing itself?)")


_INT = GoType(offset=-1, name="int", kind=Kind.INT, size=8, align=8)
_BYTE = GoType(offset=-1, name="uint8", kind=Kind.UINT, size=1, align=1)


def _float_type(size: int) -> GoType:
    return GoType(offset=-1, name=f"float{size * 8}", kind=Kind.FLOAT, size=size, align=size)


class _RegisterSource:
    """A register-assigned value: each leaf (by offset inside the value) is one register."""

    def __init__(self, pieces: dict[int, RegisterPiece]):
        self.pieces = pieces

    def word(self, off: int, size: int, kind: str) -> tuple[str | None, str | None]:
        piece = self.pieces.get(off)
        if piece is None:
            return None, f"no register holds offset {off}"
        if not piece.readable:
            return None, piece.unavailable_reason
        raw = f'reg("{piece.bpf_name}")'
        if kind == INT:
            return f"({_INT_CAST[size]}){raw}", None
        if kind in (UINT, BOOL) or (kind == HEX and size < 8):  # HEX: an untyped word smaller than a register
            return f"({_UINT_CAST[size]}){raw}", None
        return raw, None


class _MemorySource:
    """A value in memory at `addr + base` (a stack slot at entry, or behind a pointer)."""

    def __init__(self, addr: str, base: int, user: bool = False):
        self.addr = addr
        self.base = base
        self.user = user  # loads through uptr(): the address is said to be user memory

    def word(self, off: int, size: int, kind: str) -> tuple[str | None, str | None]:
        ctype = _INT_CAST[size] if kind == INT else _UINT_CAST.get(size, "uint64")
        o = self.base + off
        a = f"{self.addr} + {o}" if o else self.addr
        return (f"*({ctype}*)uptr({a})" if self.user else f"*({ctype}*)({a})"), None


def source_of(loc: Location, unknown: str | None = None, user: bool = False):
    """Where the words of the value at `loc` are read at entry: (source, None), or (None, why not).
    A source's `word(offset, size, kind)` gives a bpftrace expression (emit/filter.py uses it)."""
    if unknown:
        return None, unknown
    if loc.in_registers:
        return _RegisterSource({p.leaf.offset: p for p in loc.pieces if isinstance(p, RegisterPiece)}), None
    if loc.pieces or loc.stack_offset is not None:
        return _MemorySource('reg("sp")', loc.stack_offset or 0, user), None
    return None, "no location"


def memory_source(addr: str, base: int, user: bool = False) -> "_MemorySource":
    """The words of a value in memory at `addr` (a bpftrace expression) + `base`; `user`: loads
    through uptr(), which bpftrace 0.17 needs to know a variable holds a user address (else it
    warns "Addrspace is not set" when the program loads)."""
    return _MemorySource(addr, base, user)
