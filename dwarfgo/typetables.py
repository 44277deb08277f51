"""What the runtime type tables tell without DWARF: Go types (as `GoType`, the model the DWARF
reader builds) and method signatures, from the runtime type descriptors (see rtypes).

Type names are spelled as Go's DWARF spells them, so that they compare with a DWARF build's:
a named type is its import path (escaped as in symbol names: `v1%2e0%2e0`) and name
(`go/ast.Ident`; the descriptor itself prints the package *name*, `ast.Ident`), composite types
are spelled from their parts (`[]*main.Pair`, `map[string]int`, `struct { A int; runtime.b
string }`). Not recovered: a generic type's type arguments keep the descriptor's spelling
(package names), and a type declared inside a function lacks DWARF's `·N` suffix.

A method's signature comes from its type's method table: the name, the func type `mtyp`
(parameter and result types; Go records no parameter names, so they are named by position:
p0, p1, ... and r0, r1, ...) and the code address (`tfn` for a direct call, `ifn` for a call
through an interface), matched to the function at that address. The receiver is the type
whose table lists the method. The linker drops a method's `mtyp` when nothing needs it
(no interface has the method, no reflection): that method's signature is unknown and said so.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cached_property

from . import rtypes as rt
from .errors import DamagedBinary, DwarfgoError, TypeNotFound, reading
from .gotypes import _REFLECT_KIND, Field, GoType, Kind

SOURCE = "runtime type table"

_CHAN_PREFIX = {1: "<-chan ", 2: "chan<- ", 3: "chan "}


@dataclass(frozen=True)
class MethodSignature:
    """A method of a type's method table, and the function its code address names."""

    receiver: GoType  # the type whose method table lists it (`main.Rect` or `*main.Circle`)
    method: str
    function: str | None  # the symbol at the code address, None if the code was dropped
    address: int | None
    params: list[GoType] | None  # None: the linker dropped the method's type (mtyp)
    results: list[GoType] | None
    variadic: bool = False

    @property
    def known(self) -> bool:
        return self.params is not None

    def text(self) -> str:
        """Go syntax, parameters named by position: `func (recv main.Rect) Area() (r0 float64)`."""
        head = f"func (recv {self.receiver.name}) {self.method}"
        if self.params is None:
            return head + "(?) /* the linker dropped this method's type (mtyp): signature unknown */"
        params = []
        for i, p in enumerate(self.params):
            name = p.name
            if self.variadic and i == len(self.params) - 1 and name.startswith("[]"):
                name = "..." + name[2:]
            params.append(f"p{i} {name}")
        out = f"{head}({', '.join(params)})"
        if self.results:
            out += " (" + ", ".join(f"r{i} {r.name}" for i, r in enumerate(self.results)) + ")"
        return out


def symbol_prefix(path: str) -> str:
    """An import path as the linker spells it in symbol (and so DWARF) names: a '.' in the last
    element, '%', '"', spaces, control and non-ASCII bytes escaped as %xx (objabi.PathToPrefix)."""
    slash = path.rfind("/")
    out = []
    for i, c in enumerate(path.encode("utf-8")):
        if c <= 0x20 or (c == 0x2E and i > slash) or c in (0x25, 0x22) or c >= 0x7F:
            out.append(f"%{c:02x}")
        else:
            out.append(chr(c))
    return "".join(out)


class RuntimeTypeModel:
    """GoType objects for a binary's runtime type descriptors; `type_at(address)` is also the
    `reader` of each GoType (elements and keys resolve on use, by descriptor address)."""

    def __init__(self, binary):
        self.binary = binary
        self.tables = rt.RuntimeTypes(binary)
        self.ptr_size = binary.ptr_size
        self._cache: dict[int, GoType] = {}
        self._names: dict[int, str] = {}
        self._synthetic: dict[str, GoType] = {}

    # ---------------------------------------------------------------- names
    def name_of(self, address: int) -> str:
        known = self._names.get(address)
        if known is not None:
            return known
        self._names[address] = "?"  # a type that contains itself by name only (never by value)
        t = self.tables.at(address)
        name = self._spell(t)
        self._names[address] = name
        return name

    def _spell(self, t: rt.RType) -> str:
        if t.named:
            if t.pkg_path and t.string.startswith(t.pkg_path + "."):
                return t.string  # main.Pair, go.shape.int
            if t.pkg_path:
                # `json.Decoder` of encoding/json/v2: the package name is not the path's last
                # element, but has no dot; the name before any type arguments has one
                head = t.string.split("[", 1)[0]
                local = t.string[head.index(".") + 1:] if "." in head else t.string
                return f"{symbol_prefix(t.pkg_path)}.{local}"
            return t.string
        k = t.kind
        if k == rt.POINTER:
            return "*" + self.name_of(t.elem)
        if k == rt.SLICE:
            return "[]" + self.name_of(t.elem)
        if k == rt.ARRAY:
            return f"[{t.length}]" + self.name_of(t.elem)
        if k == rt.MAP:
            return f"map[{self.name_of(t.key)}]{self.name_of(t.elem)}"
        if k == rt.CHAN:
            return _CHAN_PREFIX.get(t.chan_dir, "chan ") + self.name_of(t.elem)
        if k == rt.FUNC:
            return "func" + self._func_text(t)
        if k == rt.STRUCT:
            if not t.fields:
                return "struct {}"
            pkg = self._struct_pkg(t)
            parts = []
            for f in t.fields:
                tname = self.name_of(f.type)
                if f.embedded:
                    parts.append(tname)
                else:
                    qualified = f"{pkg}.{f.name}" if pkg and not f.name[:1].isupper() else f.name
                    parts.append(f"{qualified} {tname}")
            return "struct { " + "; ".join(parts) + " }"
        if k == rt.INTERFACE:
            if not t.imethods:
                return "interface {}"
            pkg = self._struct_pkg(t)  # the interface's pkgPath, at the same place as a struct's
            ms = [(f"{symbol_prefix(m.pkg_path or pkg)}.{m.name}" if (m.pkg_path or pkg) and not m.name[:1].isupper()
                   else m.name) + (self._func_text(self.tables.at(m.type)) if m.type else "()") for m in t.imethods]
            return "interface { " + "; ".join(ms) + " }"
        return t.string

    def _func_text(self, t: rt.RType) -> str:
        params = [self.name_of(p) for p in t.params]
        if t.variadic and params and params[-1].startswith("[]"):
            params[-1] = "..." + params[-1][2:]
        out = "(" + ", ".join(params) + ")"
        results = [self.name_of(r) for r in t.results]
        if len(results) == 1:
            out += " " + results[0]
        elif results:
            out += " (" + ", ".join(results) + ")"
        return out

    def _struct_pkg(self, t: rt.RType) -> str:
        """The package path of a struct or interface literal's unexported names (its pkgPath)."""
        name = self.tables.image.word(t.address + 48)
        return self.tables.name_at(name)[0] if name else ""

    # ---------------------------------------------------------------- types
    def type_at(self, address: int) -> GoType:
        t = self._cache.get(address)
        if t is None:
            with reading(self.binary.path, f"runtime type descriptor at {address:#x}"):
                t = self._build(address)
        return t

    def _build(self, address: int) -> GoType:
        r = self.tables.at(address)
        kind = _REFLECT_KIND[r.kind]
        t = GoType(offset=address, name=self.name_of(address), kind=kind, size=r.size, align=r.align or 1,
                   runtime_type=address, reader=self)
        self._cache[address] = t
        p = self.ptr_size
        if kind in (Kind.POINTER, Kind.SLICE, Kind.ARRAY, Kind.CHAN, Kind.MAP):
            t.elem_offset = r.elem
        if kind is Kind.MAP:
            t.key_offset = r.key
        if kind is Kind.ARRAY:
            t.length = r.length
        if kind is Kind.STRUCT:
            t.fields = [Field(f.name, self.type_at(f.type), f.offset, f.embedded) for f in r.fields]
        elif kind is Kind.STRING:
            t.fields = [Field("str", self._pointer_to("uint8"), 0), Field("len", self._basic("int", Kind.INT), p)]
        elif kind is Kind.SLICE:
            t.fields = [Field("array", self._pointer(r.elem), 0), Field("len", self._basic("int", Kind.INT), p),
                        Field("cap", self._basic("int", Kind.INT), 2 * p)]
        elif kind is Kind.INTERFACE:
            t.empty_interface = not r.imethods
            first = ("_type", "*runtime._type") if t.empty_interface else ("tab", "*runtime.itab")
            t.fields = [Field(first[0], self._opaque_pointer(first[1]), 0),
                        Field("data", self._basic("unsafe.Pointer", Kind.UNSAFE_POINTER), p)]
        return t

    def _basic(self, name: str, kind: Kind) -> GoType:
        return self._synthetic_type(name, kind, 1 if name == "uint8" else self.ptr_size)

    def _pointer_to(self, basic: str) -> GoType:
        return self._synthetic_type("*" + basic, Kind.POINTER, self.ptr_size)

    def _opaque_pointer(self, name: str) -> GoType:
        """A pointer to a runtime structure the tables do not describe (itab, _type)."""
        return self._synthetic_type(name, Kind.UNSAFE_POINTER, self.ptr_size)

    def _synthetic_type(self, name: str, kind: Kind, size: int) -> GoType:
        """A type no descriptor gives (a string's or interface's words), made once per name."""
        t = self._synthetic.get(name)
        if t is None:
            t = GoType(offset=-1, name=name, kind=kind, size=size, align=size)
            self._synthetic[name] = t
        return t

    def _pointer(self, elem: int) -> GoType:
        """`*T` for a slice's array field; T's own pointer descriptor when the binary has one."""
        ptr = self.tables.at(elem).ptr_to_this
        if ptr is not None:
            return self.type_at(ptr)
        return GoType(offset=-1, name="*" + self.name_of(elem), kind=Kind.POINTER, size=self.ptr_size,
                      align=self.ptr_size, elem_offset=elem, reader=self)

    # ---------------------------------------------------------------- lookups
    @cached_property
    def types_by_name(self) -> dict[str, int]:
        """DWARF-spelled name -> descriptor address, for every descriptor the tables lead to."""
        out: dict[str, int] = {}
        for address in self.tables.all:
            try:
                with reading(self.binary.path, f"runtime type descriptor at {address:#x}"):
                    out.setdefault(self.name_of(address), address)
            except DamagedBinary as e:
                self.tables.unreadable[address] = str(e)  # a part damaged: left out, the others answer
                self._names.pop(address, None)
        return out

    def type_named(self, name: str) -> GoType | None:
        address = self.types_by_name.get(name)
        return self.type_at(address) if address is not None else None

    def lookup(self, name: str) -> GoType:
        """The type of this name, or of the one name ending in `.name` or `/name` (`Pair`,
        `main.Pair`); TypeNotFound or an ambiguity error otherwise."""
        names = self.types_by_name
        if name in names:
            return self.type_at(names[name])
        candidates = [n for n in names if n.endswith("." + name) or n.endswith("/" + name)]
        if len(candidates) == 1:
            return self.type_at(names[candidates[0]])
        if candidates:
            raise DwarfgoError(f"type {name!r} is ambiguous: " + ", ".join(sorted(candidates)[:10]))
        raise TypeNotFound(name, difflib.get_close_matches(name, list(names), n=5))

    @cached_property
    def arginfo(self):
        """The traceback argument records (arginfo.ArgInfoTable) of the same binary."""
        from .arginfo import ArgInfoTable
        return ArgInfoTable(self.binary, self.tables)

    @cached_property
    def methods(self) -> list[MethodSignature]:
        """Every method of every method table, with the function at its code address."""
        with reading(self.binary.path, "runtime type tables (method tables)"):
            return self._methods()

    def _methods(self) -> list[MethodSignature]:
        out = []
        for address, r in self.tables.all.items():
            try:
                out += self._methods_of(address, r)
            except DamagedBinary as e:
                self.tables.unreadable[address] = str(e)  # a damaged method table: left out
        return out

    def _methods_of(self, address: int, r: rt.RType) -> list[MethodSignature]:
        out = []
        with reading(self.binary.path, f"method table of the runtime type at {address:#x}"):
            for m in r.methods:
                # a value receiver's ifn is the (*T).M wrapper, another function: only tfn is T.M
                code = m.tfn if m.tfn is not None or r.kind != rt.POINTER else m.ifn
                sym = self.binary.symbol_at(code) if code is not None else None
                if sym is not None and sym.address != code:
                    sym = None
                params = results = None
                variadic = False
                if m.mtyp is not None:
                    ft = self.tables.at(m.mtyp)
                    params = [self.type_at(a) for a in ft.params]
                    results = [self.type_at(a) for a in ft.results]
                    variadic = ft.variadic
                out.append(MethodSignature(self.type_at(address), m.name, sym.name if sym else None, code, params,
                                           results, variadic))
        return out

    @cached_property
    def methods_by_address(self) -> dict[int, MethodSignature]:
        """Code address -> method: a signature known wins over one whose type was dropped."""
        out: dict[int, MethodSignature] = {}
        for m in self.methods:
            if m.address is None:
                continue
            if m.address not in out or (m.known and not out[m.address].known):
                out[m.address] = m
        return out
