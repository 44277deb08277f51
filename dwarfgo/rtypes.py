"""Go runtime type descriptors (`abi.Type`, `runtime._type` before Go 1.21), read without DWARF.

Every type that reaches an interface or reflection has a descriptor in the binary, which
survives `-ldflags='-s -w'`. `RuntimeTypes.at(address)` decodes one into an `RType`; `all()`
lists every descriptor the linker records (see moduledata).

Layout, 64-bit, the same from Go 1.14 to 1.27 unless said (read from runtime/type.go up to
1.20 and internal/abi/type.go from 1.21, in each toolchain's GOROOT):

  Type       0 size, 8 ptrdata, 16 hash u32, 20 tflag u8, 21 align u8, 22 fieldAlign u8,
             23 kind u8 (reflect.Kind in the low 5 bits; up to 1.26 also flag bits above),
             24 equal func, 32 gcdata, 40 str nameOff i32, 44 ptrToThis typeOff i32  (48 bytes)
  tflag      1 uncommon, 2 extra star (the name has a leading '*' to drop), 4 named
  per kind, after the 48 bytes (their sizes place the uncommon type):
    Pointer, Slice   48 elem *Type                                            (56)
    Array            48 elem, 56 slice *Type, 64 len uintptr                  (72)
    Chan             48 elem, 56 dir (1 recv, 2 send, 3 both)                 (64)
    Func             48 inCount u16, 50 outCount u16 (top bit: variadic)      (56), then
                     after the uncommon type (if any) inCount+outCount *Type
    Interface        48 pkgPath Name, 56 methods []Imethod{name nameOff, typ typeOff}   (80)
    Struct           48 pkgPath Name, 56 fields []StructField{name Name, typ *Type,
                     offset uintptr} (before Go 1.19: offsetAnon = offset<<1 | embedded)  (80)
    Map              48 key, 56 elem *Type; size 88 (hash maps: up to 1.23, and 1.24-1.25 with
                     GOEXPERIMENT=noswissmap), 112 (swiss maps 1.24-1.26), 136 (1.27)
  UncommonType (16)  0 pkgPath nameOff, 4 mcount u16, 6 xcount u16, 8 moff u32 (from itself)
  Method (16)        name nameOff, mtyp typeOff, ifn textOff, tfn textOff; -1 (Go 1.16+) or 0
                     (before): dropped by the linker (the mtyp of a method no interface needs,
                     code never called)
  Name record        flags (1 exported, 2 tag follows, 4 pkgPath follows, 8 embedded from
                     Go 1.19), the length (2 bytes big-endian before Go 1.17, a uvarint from
                     1.17), the bytes; then the tag likewise.

nameOff and typeOff are relative to moduledata.types, textOff to moduledata.text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from .errors import BinaryError, DamagedBinary, DwarfgoError, reading
from .moduledata import LoadedImage, ModuleData, find_moduledata

# reflect.Kind numbers
BOOL, INT, INT8, INT16, INT32, INT64 = 1, 2, 3, 4, 5, 6
UINT, UINT8, UINT16, UINT32, UINT64, UINTPTR = 7, 8, 9, 10, 11, 12
FLOAT32, FLOAT64, COMPLEX64, COMPLEX128 = 13, 14, 15, 16
ARRAY, CHAN, FUNC, INTERFACE, MAP, POINTER, SLICE, STRING, STRUCT, UNSAFE_POINTER = range(17, 27)
_KIND_MASK = 0x1F

TFLAG_UNCOMMON, TFLAG_EXTRA_STAR, TFLAG_NAMED = 1, 2, 4

_HEAD = 48
_UNCOMMON = 16
_METHOD = 16
_BASE_SIZE = {ARRAY: 72, CHAN: 64, FUNC: 56, INTERFACE: 80, POINTER: 56, SLICE: 56, STRUCT: 80}
_MAX_COUNT = 1 << 16  # counts are uint16 in the descriptors; a slice longer is damage


@dataclass(frozen=True)
class RField:
    name: str
    type: int  # descriptor address
    offset: int
    embedded: bool


@dataclass(frozen=True)
class RMethod:
    """A method of a type's method table."""

    name: str
    mtyp: int | None  # descriptor of its func type (no receiver); None: the linker dropped it
    ifn: int | None  # code called through an interface (pointer receiver form); None: dropped
    tfn: int | None  # code of a direct call; None: dropped
    exported: bool


@dataclass(frozen=True)
class RIMethod:
    name: str
    type: int | None  # func type descriptor
    pkg_path: str | None = None  # of an unexported method


@dataclass(eq=False)
class RType:
    """One decoded type descriptor. Addresses are the binary's link-time addresses."""

    address: int
    kind: int  # reflect.Kind
    size: int
    ptrdata: int
    align: int
    field_align: int
    tflag: int
    string: str  # as the runtime prints it: package *names* (`*ast.Ident`)
    pkg_path: str | None = None  # a named type's import path (uncommon type), '' for predeclared ones
    elem: int | None = None
    key: int | None = None
    length: int | None = None  # arrays
    chan_dir: int | None = None
    fields: list[RField] = field(default_factory=list)
    params: list[int] = field(default_factory=list)
    results: list[int] = field(default_factory=list)
    variadic: bool = False
    imethods: list[RIMethod] = field(default_factory=list)
    methods: list[RMethod] = field(default_factory=list)
    ptr_to_this: int | None = None

    @property
    def named(self) -> bool:
        return bool(self.tflag & TFLAG_NAMED)


class RuntimeTypes:
    """The runtime type descriptors of one binary."""

    def __init__(self, binary):
        self.binary = binary
        version = _version(binary)
        if version is None:
            raise BinaryError(f"{binary.path}: Go version unknown (no build info): cannot read its runtime type "
                              f"tables")
        self.version = version
        with reading(binary.path, "runtime module data (moduledata)"):
            self.image = LoadedImage(binary)
            self.module: ModuleData = find_moduledata(binary, self.image, version)
        self._varint_names = version >= (1, 17)
        self._offset_anon = version < (1, 19)
        self._map_size = _map_descriptor_size(binary, version)
        self._cache: dict[int, RType] = {}
        self.unreadable: dict[int, str] = {}  # descriptor address -> why `all` left it out

    # ---------------------------------------------------------------- offsets
    def type_off(self, off: int) -> int | None:
        """A typeOff's descriptor address; None for -1 (dropped) or 0."""
        return None if off in (-1, 0) else self.module.types + off

    def text_off(self, off: int) -> int | None:
        """A textOff's code address; None for code the linker dropped: -1 from Go 1.16, and before
        it left the offset 0 (cmd/link skipped the relocation of an unreachable method)."""
        if off == -1 or (off == 0 and self.version < (1, 16)):
            return None
        return self.module.text + (off & 0xFFFFFFFF)

    def name_at(self, address: int) -> tuple[str, int, int]:
        """(text, flags, address after the name) of a name record."""
        img = self.image
        flags = img.uint(address, 1)
        pos = address + 1
        if self._varint_names:
            n, shift = 0, 0
            while True:
                b = img.uint(pos, 1)
                pos += 1
                n |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
                if shift > 28:
                    raise DamagedBinary(f"{self.binary.path}: damaged runtime type name at {address:#x}")
        else:
            n = int.from_bytes(img.read(pos, 2), "big")
            pos += 2
        return img.read(pos, n).decode("utf-8", "replace"), flags, pos + n

    def name_pkg_path(self, address: int) -> str | None:
        """The import path a name record carries after its text and tag (flag 4: an unexported
        name of an interface or struct literal), or None."""
        _, flags, pos = self.name_at(address)
        if not flags & 4:
            return None
        if flags & 2:  # a tag, then the path
            if self._varint_names:
                n, shift = 0, 0
                while True:
                    b = self.image.uint(pos, 1)
                    pos += 1
                    n |= (b & 0x7F) << shift
                    shift += 7
                    if not b & 0x80 or shift > 28:
                        break
            else:
                n = int.from_bytes(self.image.read(pos, 2), "big")
                pos += 2
            pos += n
        return self.name_off(self.image.int(pos, 4))

    def name_off(self, off: int) -> str:
        return self.name_at(self.module.types + off)[0] if off else ""

    # ---------------------------------------------------------------- descriptors
    def at(self, address: int) -> RType:
        t = self._cache.get(address)
        if t is None:
            try:
                t = self._decode(address)
            except (BinaryError, IndexError, ValueError) as e:
                if isinstance(e, DwarfgoError) and "not in the file" not in str(e):
                    raise
                why = str(e).removeprefix(f"{self.binary.path}: ")
                raise DamagedBinary(f"{self.binary.path}: no runtime type descriptor at {address:#x} ({why})") from None
            self._cache[address] = t
        return t

    def _decode(self, a: int) -> RType:
        img = self.image
        if not self.module.types <= a < self.module.etypes:
            raise DamagedBinary(f"{self.binary.path}: damaged runtime type tables: a type at {a:#x}, outside the "
                                f"type descriptors ({self.module.types:#x}-{self.module.etypes:#x})")
        head = img.read(a, _HEAD)
        u = lambda o, n: int.from_bytes(head[o:o + n], img.order)
        tflag, kind = head[20], head[23] & _KIND_MASK
        if not BOOL <= kind <= UNSAFE_POINTER:
            raise DamagedBinary(f"{self.binary.path}: descriptor at {a:#x} has kind {kind}")
        text = self.name_off(int.from_bytes(head[40:44], img.order, signed=True))
        if tflag & TFLAG_EXTRA_STAR and text.startswith("*"):
            text = text[1:]
        ptr_to_this = self.type_off(int.from_bytes(head[44:48], img.order, signed=True))
        t = RType(a, kind, u(0, 8), u(8, 8), head[21], head[22], tflag, text, ptr_to_this=ptr_to_this)
        w = img.word
        if kind in (POINTER, SLICE, ARRAY, CHAN, MAP):
            t.elem = w(a + 48) if kind != MAP else w(a + 56)
        if kind == MAP:
            t.key = w(a + 48)
        elif kind == ARRAY:
            t.length = w(a + 64)
        elif kind == CHAN:
            t.chan_dir = w(a + 56)
        elif kind == STRUCT:
            data, n = self._slice(a + 56)
            for i in range(n):
                f = data + 24 * i
                name, flags, _ = self.name_at(w(f))
                off = w(f + 16)
                if self._offset_anon:
                    embedded, off = bool(off & 1), off >> 1
                else:
                    embedded = bool(flags & 8)
                t.fields.append(RField(name, w(f + 8), off, embedded))
        elif kind == INTERFACE:
            data, n = self._slice(a + 56)
            for i in range(n):
                m = data + 8 * i
                name_at = self.module.types + img.int(m, 4)
                name = self.name_at(name_at)[0]
                pkg = None if name[:1].isupper() else self.name_pkg_path(name_at)
                t.imethods.append(RIMethod(name, self.type_off(img.int(m + 4, 4)), pkg))
        uncommon = a + self._base_size(kind) if tflag & TFLAG_UNCOMMON else None
        if kind == FUNC:
            n_in, n_out = img.uint(a + 48, 2), img.uint(a + 50, 2)
            t.variadic = bool(n_out & 0x8000)
            n_out &= 0x7FFF
            p = a + _BASE_SIZE[FUNC] + (_UNCOMMON if uncommon else 0)
            words = [w(p + 8 * i) for i in range(n_in + n_out)]
            t.params, t.results = words[:n_in], words[n_in:]
        if uncommon is not None:
            t.pkg_path = self.name_off(img.int(uncommon, 4))
            mcount, moff = img.uint(uncommon + 4, 2), img.uint(uncommon + 8, 4)
            for i in range(mcount):
                m = uncommon + moff + _METHOD * i
                name_off, mtyp, ifn, tfn = (img.int(m + 4 * j, 4) for j in range(4))
                name, flags, _ = self.name_at(self.module.types + name_off)
                t.methods.append(RMethod(name, self.type_off(mtyp), self.text_off(ifn), self.text_off(tfn),
                                         bool(flags & 1)))
        elif t.named:
            t.pkg_path = ""  # predeclared (int, error): named, no package
        return t

    def _slice(self, address: int) -> tuple[int, int]:
        data, n = self.image.word(address), self.image.word(address + 8)
        if n > _MAX_COUNT:
            raise DamagedBinary(f"{self.binary.path}: damaged runtime type descriptor: a list of {n} at {address:#x}")
        return data, n

    def _base_size(self, kind: int) -> int:
        if kind == MAP:
            return self._map_size
        return _BASE_SIZE.get(kind, _HEAD)

    def descriptor_size(self, t: RType) -> int:
        """The bytes of the descriptor with what follows it (Go 1.27's DescriptorSize)."""
        size = self._base_size(t.kind)
        if t.tflag & TFLAG_UNCOMMON:
            size += _UNCOMMON + _METHOD * len(t.methods)
        if t.kind == FUNC:
            size += 8 * (len(t.params) + len(t.results))
        elif t.kind == INTERFACE:
            size += 8 * len(t.imethods)
        elif t.kind == STRUCT:
            size += 24 * len(t.fields)
        return size

    # ---------------------------------------------------------------- every type
    @cached_property
    def all(self) -> dict[int, RType]:
        """Every descriptor the module leads to, by address: the typelinks (Go 1.27: the
        descriptors laid out one after another at the start of the types), the itabs' types, and
        every type they lead to (elements, fields, keys, parameters, method types, the pointer to
        each)."""
        md = self.module
        found: dict[int, RType] = {}
        todo = list(md.typelinks)
        if md.typedesc_end is not None:
            a = md.types + 8
            while a < md.typedesc_end:
                a = (a + 7) & ~7
                todo.append(a)
                try:
                    a += self.descriptor_size(self.at(a))
                except DamagedBinary as e:
                    self.unreadable[a] = str(e)  # the walk cannot step over it: the others come from links
                    break
        for itab in md.itabs:
            todo.append(self.image.word(itab + 8))  # itab: inter *interfacetype, _type *_type
        while todo:
            a = todo.pop()
            if a in found or a is None or a in self.unreadable:
                continue
            try:
                t = found[a] = self.at(a)
            except DamagedBinary as e:
                self.unreadable[a] = str(e)  # damaged: left out, the others still answer
                continue
            todo += [x for x in (t.elem, t.key, t.ptr_to_this) if x]
            todo += [f.type for f in t.fields] + t.params + t.results
            todo += [m.mtyp for m in t.methods if m.mtyp] + [m.type for m in t.imethods if m.type]
        return found


def _version(binary) -> tuple[int, int] | None:
    from .binary import parse_go_version

    v = parse_go_version(binary.go_version)
    return v[:2] if v else None


def _map_descriptor_size(binary, version: tuple[int, int]) -> int:
    if version < (1, 24):
        return 88
    if version >= (1, 27):
        return 136
    if version < (1, 26):
        info = binary.build_info
        experiments = (info.settings.get("GOEXPERIMENT", "") if info is not None else "").split(",")
        if "noswissmap" in experiments:
            return 88
    return 112
