"""The Go runtime's module data (`runtime.firstmoduledata`): where the type descriptors are, where
the code starts, and which types and itabs the linker listed. Found without a symbol table.

`moduledata` lives in the writable data and begins with a pointer to the function table's
header (Go 1.16+: `pcHeader *pcHeader`; Go 1.15: the `pclntable []byte` slice whose data is the
table). Its fields, in pointer-sized words on 64-bit (read from runtime/symtab.go of each
version; a slice takes three words):

  Go 1.15      pclntable 0, ftab 3, filetab 6, findfunctab 9, minpc 10, maxpc 11, text 12,
               etext 13, ... end 22, gcdata 23, gcbss 24, types 25, etypes 26,
               textsectmap 27, typelinks 30, itablinks 33
  Go 1.18-1.19 pcHeader 0, funcnametab 1, cutab 4, filetab 7, pctab 10, pclntable 13, ftab 16,
               findfunctab 19, minpc 20, maxpc 21, text 22, etext 23, ... end 32, gcdata 33,
               gcbss 34, types 35, etypes 36, rodata 37, gofunc 38, textsectmap 39,
               typelinks 42, itablinks 45
  Go 1.20-1.25 as 1.18, with covctrs/ecovctrs (32, 33) before end: types 37, etypes 38,
               gofunc 40, textsectmap 41, typelinks 44, itablinks 47
  Go 1.26      as 1.20, with epclntab (41) after gofunc: typelinks 45, itablinks 48
  Go 1.27      no typelinks or itablinks: types 37, typedesclen 38, etypes 39, itaboffset 40,
               itabsize 41, rodata 42, gofunc 43; the descriptors of the types typelinks
               listed before lie in [types + 8, types + typedesclen), one after another,
               each aligned to the pointer size (runtime.moduleTypelinks); the itabs in
               [types + itaboffset, + itabsize), each 32 bytes (inter, type, hash, fun[0])
               and, when fun[0] is not 0, a code pointer more for each method of the
               interface after the first (abi.ITab.Size)

`typelinks` are offsets from `types` of the unnamed pointer, array, chan, func, map, slice and
struct types (cmd/compile's reflectdata); named types are reached from them (a `*T` leads to `T`).
Go 1.16 and 1.17 are not read (their layout was not checked here).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import BinaryError


@dataclass(frozen=True)
class _Layout:
    text: int
    types: int
    etypes: int
    typelinks: int | None  # word of the typelinks slice, None when the version has none
    itablinks: int | None
    typedesclen: int | None = None  # Go 1.27+
    itaboffset: int | None = None  # Go 1.27+, then itabsize
    gofunc: int | None = None  # Go 1.18+: base of the functions' funcdata offsets (go:func.*)


_LAYOUT_115 = _Layout(text=12, types=25, etypes=26, typelinks=30, itablinks=33)
_LAYOUT_118 = _Layout(text=22, types=35, etypes=36, typelinks=42, itablinks=45, gofunc=38)
_LAYOUT_120 = _Layout(text=22, types=37, etypes=38, typelinks=44, itablinks=47, gofunc=40)
_LAYOUT_126 = _Layout(text=22, types=37, etypes=38, typelinks=45, itablinks=48, gofunc=40)
_LAYOUT_127 = _Layout(text=22, types=37, etypes=39, typelinks=None, itablinks=None, typedesclen=38,
                      itaboffset=40, gofunc=43)


def layout_for(version: tuple[int, int]) -> _Layout | None:
    if version <= (1, 15):
        return _LAYOUT_115 if version >= (1, 12) else None
    if version < (1, 18):
        return None
    if version < (1, 20):
        return _LAYOUT_118
    if version < (1, 26):
        return _LAYOUT_120
    if version < (1, 27):
        return _LAYOUT_126
    return _LAYOUT_127


class LoadedImage:
    """The file's loaded segments (their file bytes), read once, addressed by virtual address."""

    def __init__(self, binary):
        self.path = binary.path
        self.order = "little" if binary.elf.little_endian else "big"
        self.ptr_size = binary.ptr_size
        self.segments: list[tuple[int, bytes, int]] = []  # (address, bytes, p_flags)
        for seg in binary.elf.iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_filesz"]:
                self.segments.append((seg["p_vaddr"], seg.data(), seg["p_flags"]))

    def read(self, address: int, size: int) -> bytes:
        for start, data, _ in self.segments:
            if start <= address and address + size <= start + len(data):
                return data[address - start: address - start + size]
        raise BinaryError(f"{self.path}: address {address:#x} (+{size}) is not in the file's loaded data")

    def read_upto(self, address: int, size: int) -> bytes:
        """Up to `size` bytes at `address`: fewer where its segment's file bytes end."""
        for start, data, _ in self.segments:
            if start <= address < start + len(data):
                return data[address - start: address - start + size]
        raise BinaryError(f"{self.path}: address {address:#x} is not in the file's loaded data")

    def contains(self, address: int) -> bool:
        return any(start <= address < start + len(data) for start, data, _ in self.segments)

    def uint(self, address: int, size: int) -> int:
        return int.from_bytes(self.read(address, size), self.order)

    def int(self, address: int, size: int) -> int:
        return int.from_bytes(self.read(address, size), self.order, signed=True)

    def word(self, address: int) -> int:
        return self.uint(address, self.ptr_size)


@dataclass(frozen=True)
class ModuleData:
    address: int
    text: int  # code addresses (a method's textOff) are relative to this
    types: int  # type and name offsets (typeOff, nameOff) are relative to this
    etypes: int
    typelinks: list[int] = field(default_factory=list)  # descriptor addresses (Go <= 1.26)
    itabs: list[int] = field(default_factory=list)  # itab addresses (Go <= 1.26)
    typedesc_end: int | None = None  # Go 1.27+: typelinked descriptors lie in [types + ptr, typedesc_end)
    gofunc: int | None = None  # Go 1.18+: funcdata offsets are relative to this


def find_moduledata(binary, image: LoadedImage, version: tuple[int, int]) -> ModuleData:
    """The first module's data, found by the function table address it starts with."""
    from .pclntab import locate

    layout = layout_for(version)
    if layout is None:
        raise BinaryError(f"{binary.path}: reading runtime type tables of Go {version[0]}.{version[1]} is not "
                          f"supported (Go 1.12-1.15 and 1.18+ are)")
    if image.ptr_size != 8:
        raise BinaryError(f"{binary.path}: reading runtime type tables of a 32-bit binary is not supported")
    found = locate(binary)
    if found is None:
        raise BinaryError(f"{binary.path}: no Go function table (.gopclntab), so no runtime module data")
    pclntab = found[0]
    ptr = image.ptr_size
    needle = pclntab.to_bytes(ptr, image.order)
    for start, data, flags in image.segments:
        if not flags & 2:  # moduledata is in the writable data
            continue
        at = data.find(needle)
        while at >= 0:
            if at % ptr == 0 and at + (layout.itablinks or layout.etypes + 8) * ptr <= len(data):
                md = _read(image, start + at, layout)
                if md is not None:
                    return md
            at = data.find(needle, at + 1)
    raise BinaryError(f"{binary.path}: the runtime's module data (moduledata) was not found: no runtime type "
                      f"tables to read")


def _read(image: LoadedImage, address: int, layout: _Layout) -> ModuleData | None:
    """The module data at `address` if its fields are coherent (types before etypes, both in the
    file, text in executable code), else None."""
    ptr = image.ptr_size

    def w(i: int) -> int:
        return image.word(address + i * ptr)

    text, types, etypes = w(layout.text), w(layout.types), w(layout.etypes)
    if not (0 < types < etypes and image.contains(types) and image.contains(etypes - 1)):
        return None
    if not any(s <= text < s + len(d) and f & 1 for s, d, f in image.segments):
        return None
    typelinks: list[int] = []
    itabs: list[int] = []
    end = None
    try:
        if layout.typelinks is not None:
            data, n = w(layout.typelinks), w(layout.typelinks + 1)
            raw = image.read(data, 4 * n) if n else b""
            offs = [int.from_bytes(raw[i:i + 4], image.order, signed=True) for i in range(0, len(raw), 4)]
            typelinks = [types + o for o in offs]
        if layout.itablinks is not None:
            data, n = w(layout.itablinks), w(layout.itablinks + 1)
            itabs = [image.word(data + i * ptr) for i in range(n)]
        if layout.typedesclen is not None:
            end = types + w(layout.typedesclen)
            if not types < end <= etypes:
                return None
        if layout.itaboffset is not None:
            p, size = types + w(layout.itaboffset), w(layout.itaboffset + 1)
            stop = p + size
            if size and not (types <= p and stop <= etypes):
                return None
            while p < stop:
                itabs.append(p)
                try:
                    inter, fun0 = image.word(p), image.word(p + 24)
                    methods = image.word(inter + 64) if fun0 else 1
                except BinaryError:
                    break  # a damaged itab: the walk cannot step over it
                p += 32 + 8 * min(max(methods - 1, 0), 1 << 16)
    except BinaryError:
        return None
    if any(not types <= t < etypes for t in typelinks):
        return None
    gofunc = w(layout.gofunc) if layout.gofunc is not None else None
    return ModuleData(address, text, types, etypes, typelinks, itabs, end, gofunc)
