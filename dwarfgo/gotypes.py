"""Layer 2a: Go's type system, as Go's linker writes it into DWARF.

`TypeReader.type_at(offset)` resolves one type DIE (and, lazily, only what it
references) into a `GoType`. Types are cached by DIE offset, so cycles
(`type Node struct{ Next *Node }`) resolve to the same object.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import DamagedBinary, reading

# Go-specific DWARF attributes (cmd/link/internal/dwarf), as pyelftools reports them: integer keys.
DW_AT_GO_KIND = 0x2900
DW_AT_GO_KEY = 0x2901
DW_AT_GO_ELEM = 0x2902
DW_AT_GO_EMBEDDED_FIELD = 0x2903
DW_AT_GO_RUNTIME_TYPE = 0x2904
DW_AT_GO_PACKAGE_NAME = 0x2905
DW_AT_GO_DICT_INDEX = 0x2906


class Kind(enum.Enum):
    BOOL = "bool"
    INT = "int"  # signed integers of any width
    UINT = "uint"  # unsigned integers of any width (not uintptr)
    UINTPTR = "uintptr"
    FLOAT = "float"
    COMPLEX = "complex"
    STRING = "string"
    POINTER = "pointer"
    UNSAFE_POINTER = "unsafe.Pointer"
    SLICE = "slice"
    ARRAY = "array"
    STRUCT = "struct"
    INTERFACE = "interface"
    MAP = "map"
    CHAN = "chan"
    FUNC = "func"


# reflect.Kind numbers, as in DW_AT_go_kind
_REFLECT_KIND = {
    1: Kind.BOOL,
    2: Kind.INT, 3: Kind.INT, 4: Kind.INT, 5: Kind.INT, 6: Kind.INT,
    7: Kind.UINT, 8: Kind.UINT, 9: Kind.UINT, 10: Kind.UINT, 11: Kind.UINT,
    12: Kind.UINTPTR,
    13: Kind.FLOAT, 14: Kind.FLOAT,
    15: Kind.COMPLEX, 16: Kind.COMPLEX,
    17: Kind.ARRAY, 18: Kind.CHAN, 19: Kind.FUNC, 20: Kind.INTERFACE, 21: Kind.MAP,
    22: Kind.POINTER, 23: Kind.SLICE, 24: Kind.STRING, 25: Kind.STRUCT, 26: Kind.UNSAFE_POINTER,
}

# DW_ATE_* encodings of DW_TAG_base_type
_ENCODING_KIND = {0x2: Kind.BOOL, 0x4: Kind.FLOAT, 0x5: Kind.INT, 0x7: Kind.UINT, 0x3: Kind.COMPLEX, 0x8: Kind.UINT}


@dataclass(eq=False)
class Field:
    name: str
    type: "GoType"
    offset: int
    embedded: bool = False


@dataclass(eq=False)
class GoType:
    """One Go type with its exact memory layout.

    `name` is the Go spelling DWARF uses (`main.Pair`, `*main.Node`, `[]uint8`,
    `map[string]int`, `interface {}`), package-path qualified.
    """

    offset: int  # DIE offset of the outermost DIE (the one the reference pointed at)
    name: str
    kind: Kind
    size: int
    align: int = 1
    # element (pointer, slice, array, chan, map value) and map key: resolved on first use, so that
    # looking at one function's parameters does not pull in everything reachable through pointers
    elem_offset: int | None = None
    key_offset: int | None = None
    length: int | None = None  # array length
    fields: list[Field] = field(default_factory=list)  # struct fields; for string/slice/interface: the header
    empty_interface: bool = False
    runtime_type: int | None = None  # DW_AT_go_runtime_type: address offset of the runtime type descriptor
    shape_param: int | None = None  # generic shape functions: index in the dictionary

    reader: "TypeReader | None" = None

    @property
    def elem(self) -> "GoType | None":
        if self.elem_offset is None or self.reader is None:
            return None
        return self.reader.type_at(self.elem_offset)

    @property
    def key(self) -> "GoType | None":
        if self.key_offset is None or self.reader is None:
            return None
        return self.reader.type_at(self.key_offset)

    @property
    def is_named(self) -> bool:
        """A defined type (`main.Pair`, `time.Duration`), as opposed to a type literal or a basic type."""
        n = self.name
        return "." in n and not n.startswith(("*", "[", "map[", "chan ", "<-chan", "func(", "struct {", "interface {"))

    @property
    def signed(self) -> bool:
        return self.kind is Kind.INT

    def __repr__(self) -> str:  # cycles make the dataclass repr recurse forever
        return f"GoType({self.name!r}, {self.kind.value}, size={self.size})"


class TypeReader:
    """Resolves DWARF type DIEs to GoType objects, on demand, by offset."""

    def __init__(self, dwarf, ptr_size: int = 8, path: str = "binary",
                 unit_of: Callable[[int], int | None] | None = None):
        self.dwarf = dwarf
        self.ptr_size = ptr_size
        self.path = path
        # the offset of the unit holding a DIE (None: not known), so that pyelftools does not
        # parse every unit header before it to find it (a tenth of the type reading of a warm `sig`)
        self.unit_of = unit_of
        self._cache: dict[int, GoType] = {}
        self._filling: set[int] = set()  # types being laid out: met again, they contain themselves
        self._go_unit: dict[int, bool] = {}  # CU offset -> produced by the Go compiler

    def die(self, offset: int):
        unit = self.unit_of(offset) if self.unit_of is not None else None
        if unit is None:
            return self.dwarf.get_DIE_from_refaddr(offset)
        return self.dwarf.get_DIE_from_refaddr(offset, self.dwarf.get_CU_at(unit))

    def damaged(self, offset: int, what: str) -> DamagedBinary:
        return DamagedBinary(f"{self.path}: damaged DWARF in .debug_info at offset {offset:#x}: {what}")

    def type_at(self, offset: int) -> GoType:
        cached = self._cache.get(offset)
        if cached is not None:
            if offset in self._filling:
                raise self.damaged(offset, f"type {cached.name} contains itself by value")
            return cached
        with reading(self.path, f"DWARF in .debug_info at offset {offset:#x} (a type)"):
            return self._resolve(offset)

    def _is_go_unit(self, die) -> bool:
        cu = die.cu
        known = self._go_unit.get(cu.cu_offset)
        if known is None:
            producer = cu.get_top_DIE().attributes.get("DW_AT_producer")
            value = producer.value if producer is not None else b""
            known = isinstance(value, bytes) and value.startswith(b"Go ")
            self._go_unit[cu.cu_offset] = known
        return known

    def _resolve(self, offset: int) -> GoType:
        die = self.die(offset)
        # Follow typedefs down to the DIE that describes the representation, keeping the
        # outermost name (the Go name of a defined type) and the first go_kind seen.
        name = _name(die)
        kind_num = die.attributes.get(DW_AT_GO_KIND)
        runtime_type = _attr(die, DW_AT_GO_RUNTIME_TYPE)
        dict_index = _attr(die, DW_AT_GO_DICT_INDEX)
        chain = die
        seen = {die.offset}
        while chain.tag in _CHAINED or (chain.tag == "DW_TAG_typedef" and "DW_AT_type" in chain.attributes):
            if chain.tag != "DW_TAG_typedef":  # C's const/volatile/restrict/atomic: the type itself
                if "DW_AT_type" not in chain.attributes:
                    break  # `const void`
                chain = self._next(chain, seen)
                continue
            if kind_num is None and DW_AT_GO_KIND in chain.attributes:
                kind_num = chain.attributes[DW_AT_GO_KIND]
            if runtime_type is None:
                runtime_type = _attr(chain, DW_AT_GO_RUNTIME_TYPE)
            k = _attr(chain, DW_AT_GO_KIND)
            if k == 20 or k == 21 or k == 18 or k == 19:
                # interface/map/chan/func: the typedef is the Go type; what follows is its representation
                break
            chain = self._next(chain, seen)
        if dict_index is not None:
            # `.param0` typedef of a generic shape function: the Go type is what it refers to
            name = _name(chain) or name
        if kind_num is None:
            kind_num = chain.attributes.get(DW_AT_GO_KIND)
        kind_value = kind_num.value if kind_num is not None else None
        kind = _REFLECT_KIND.get(kind_value) if kind_value is not None else None
        if kind is None:
            kind = self._kind_from_tag(chain)
        t = GoType(offset=offset, name=name or _name(chain) or "?", kind=kind, size=0, reader=self)
        t.runtime_type = runtime_type
        t.shape_param = dict_index
        self._cache[offset] = t
        self._filling.add(offset)
        try:
            self._fill(t, chain)
        except BaseException:
            del self._cache[offset]  # never leave a half-made type behind
            raise
        finally:
            self._filling.discard(offset)
        self._check(t)
        return t

    def _next(self, die, seen: set[int]):
        """The DIE a typedef (or C type modifier) refers to; a chain that comes back is damage."""
        target = ref_offset(die)
        if target in seen:
            raise self.damaged(die.offset, f"a typedef chain loops back to the DIE at {target:#x}")
        seen.add(target)
        return self.die(target)

    def _check(self, t: GoType) -> None:
        """A layout DWARF could not have come from a compiler: members outside their struct, an
        array whose length and element do not make its size."""
        if t.kind in (Kind.STRUCT, Kind.STRING, Kind.SLICE, Kind.INTERFACE):
            for f in t.fields:
                if f.offset + f.type.size > t.size:
                    raise self.damaged(t.offset, f"member {f.name} of {t.name} (offset {f.offset}, size "
                                                 f"{f.type.size}) lies outside the type's {t.size} bytes")
        if t.kind is Kind.ARRAY and t.elem is not None and t.elem.size and t.size and \
                (t.length or 0) * t.elem.size != t.size:
            raise self.damaged(t.offset, f"array {t.name} of {t.length} x {t.elem.size} bytes has size {t.size}")

    def _kind_from_tag(self, die) -> Kind:
        tag = die.tag
        if tag == "DW_TAG_base_type":
            enc = _attr(die, "DW_AT_encoding")
            name = _name(die)
            if name == "uintptr":
                return Kind.UINTPTR
            return _ENCODING_KIND.get(enc, Kind.UINT)
        if tag == "DW_TAG_pointer_type":
            return Kind.POINTER if "DW_AT_type" in die.attributes else Kind.UNSAFE_POINTER
        if tag == "DW_TAG_structure_type":
            return Kind.STRUCT
        if tag == "DW_TAG_array_type":
            # C arrays may have no size, no bound or a run-time bound: opaque outside Go units
            return Kind.ARRAY if self._is_go_unit(die) else Kind.STRUCT
        if tag == "DW_TAG_subroutine_type":
            return Kind.FUNC
        if not self._is_go_unit(die):
            # C units (cgo, musl, a C library linked in) have types Go never writes (unions,
            # enums, const/restrict...): opaque bytes of their size, never an error for Go code
            return Kind.STRUCT
        raise self.damaged(die.offset, f"unexpected type DIE {tag} in a Go compile unit")

    def _fill(self, t: GoType, die) -> None:
        p = self.ptr_size
        k = t.kind
        if k in _SCALAR_SIZES:
            t.size = _int(die, "DW_AT_byte_size") or 0
            if t.size not in _SCALAR_SIZES[k]:
                if self._is_go_unit(die):
                    raise self.damaged(die.offset, f"{k.value} type {t.name} of {t.size} bytes")
                t.kind = k = Kind.STRUCT  # a C unit's __int128 or long double: opaque bytes (below)
            else:
                t.align = max(1, min(t.size // 2 if k is Kind.COMPLEX else t.size, p))
                return
        if k in (Kind.POINTER, Kind.UNSAFE_POINTER):
            t.size, t.align = p, p
            if k is Kind.POINTER and "DW_AT_type" in die.attributes:
                t.elem_offset = ref_offset(die)
        elif k in (Kind.MAP, Kind.CHAN, Kind.FUNC):
            t.size, t.align = p, p
            t.key_offset, t.elem_offset = _int(die, DW_AT_GO_KEY), _int(die, DW_AT_GO_ELEM)
        elif k is Kind.INTERFACE:
            t.size, t.align = 2 * p, p
            rep = self._representation(die)
            rep_name = _name(rep)
            t.empty_interface = rep_name == "runtime.eface" or t.name == "interface {}"
            t.fields = self._members(rep)
        elif k in (Kind.STRING, Kind.SLICE, Kind.STRUCT):
            rep = self._representation(die)
            t.size = _int(rep, "DW_AT_byte_size") or 0
            t.fields = self._members(rep)
            if k is Kind.SLICE:
                t.elem_offset = _int(rep, DW_AT_GO_ELEM)
                if t.elem_offset is None and t.fields:
                    t.elem_offset = t.fields[0].type.elem_offset
            t.align = max([f.type.align for f in t.fields], default=1)
            if k is Kind.STRING:
                t.align = p
        elif k is Kind.ARRAY:
            t.size = _int(die, "DW_AT_byte_size") or 0
            t.elem_offset = ref_offset(die)
            t.length = 0
            for child in die.iter_children():
                if child.tag == "DW_TAG_subrange_type":
                    count = _int(child, "DW_AT_count")
                    if count is None and _int(child, "DW_AT_upper_bound") is not None:
                        count = _int(child, "DW_AT_upper_bound") + 1
                    t.length = count or 0
            t.align = t.elem.align
        else:  # pragma: no cover - Kind is closed
            raise ValueError(k)

    def _representation(self, die):
        """Follow typedefs (e.g. `main.Shape` -> `runtime.iface`) to the structure DIE."""
        seen = {die.offset}
        while die.tag == "DW_TAG_typedef" and "DW_AT_type" in die.attributes:
            die = self._next(die, seen)
        return die

    def _members(self, die) -> list[Field]:
        out = []
        if not die.has_children or die.tag != "DW_TAG_structure_type":
            return out  # (C unions and enums: opaque)
        for child in die.iter_children():
            if child.tag != "DW_TAG_member":
                continue
            loc = child.attributes.get("DW_AT_data_member_location")
            offset = loc.value if loc is not None and isinstance(loc.value, int) else 0
            if not 0 <= offset < _MAX_SIZE:
                raise self.damaged(child.offset, f"member offset {offset}")
            out.append(
                Field(
                    name=_name(child) or "",
                    type=self.type_at(ref_offset(child)),
                    offset=offset,
                    embedded=bool(_attr(child, DW_AT_GO_EMBEDDED_FIELD)),
                )
            )
        return out


_SCALAR_SIZES = {Kind.BOOL: (1,), Kind.INT: (1, 2, 4, 8), Kind.UINT: (1, 2, 4, 8), Kind.UINTPTR: (4, 8),
                 Kind.FLOAT: (4, 8), Kind.COMPLEX: (8, 16)}

# C type modifiers, seen through to the type they modify (in C units only)
_CHAINED = {"DW_TAG_const_type", "DW_TAG_volatile_type", "DW_TAG_restrict_type", "DW_TAG_atomic_type",
            "DW_TAG_immutable_type", "DW_TAG_packed_type", "DW_TAG_shared_type"}


def ref_offset(die, key: str = "DW_AT_type") -> int:
    """Absolute .debug_info offset of a reference attribute (ref_addr, or CU-relative ref4/ref8...)."""
    a = die.attributes[key]
    if a.form == "DW_FORM_ref_addr":
        return a.value
    return a.value + die.cu.cu_offset


_MAX_SIZE = 1 << 48  # no Go type, offset or length is larger (the address space)


def _int(die, key) -> int | None:
    """An attribute that must be a size, count or offset: an integer in range, else the DWARF is
    damaged (a flipped form gives bytes or a list; a flipped value gives 2^63)."""
    a = die.attributes.get(key)
    if a is None:
        return None
    if not isinstance(a.value, int) or isinstance(a.value, bool) or not 0 <= a.value < _MAX_SIZE:
        raise ValueError(f"attribute {key} of the DIE at {die.offset:#x} is {a.value!r:.40}, not a size")
    return a.value


def _attr(die, key):
    a = die.attributes.get(key)
    return a.value if a is not None else None


def _name(die) -> str | None:
    a = die.attributes.get("DW_AT_name")
    if a is None:
        return None
    v = a.value
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else v
