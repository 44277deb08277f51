"""Go runtime type descriptors: from a descriptor's address (an interface's type word) to its Go name.

The name is read from the descriptor itself, the way the runtime's `(*_type).string()` does:
`abi.Type.Str` is a name offset from the module's type section (`runtime.types`), and the
name record there is a flag byte, then the length (two big-endian bytes before Go 1.17, a
uvarint from 1.17), then the bytes. This costs a few small reads per distinct type, whatever
the size of the binary: nothing here walks the DWARF (which took seconds to minutes on big
binaries, with the trace's output stalled meanwhile).

The name is the one `%T` and `reflect.Type.String()` print: the package *name*, not its import
path (`*ast.Ident`, not `*go/ast.Ident`).

Layout of the descriptor's start (the same from Go 1.14 to 1.27, 64-bit):
    0 size uintptr, 8 ptrdata uintptr, 16 hash uint32, 20 tflag uint8, 21 align, 22 fieldAlign,
    23 kind, 24 equal func, 32 gcdata *byte, 40 str nameOff (int32), 44 ptrToThis typeOff
"""

from __future__ import annotations

import struct

from .errors import DwarfgoError, reading

_TFLAG_EXTRA_STAR = 2  # the name is stored with a leading '*' that is not part of it
_DESCRIPTOR_HEAD = 48
_MAX_NAME = 1 << 16


class RuntimeTypeNames:
    """`names(address)` -> Go type name or None. Results are cached per address."""

    def __init__(self, prog):
        self.prog = prog
        self.bias = 0  # load bias of a PIE process (runtime address - link address)
        self._cache: dict[int, str | None] = {}
        self._itab_types: dict[tuple, int | None] = {}
        self._relocations: dict = {}  # StaticItabs -> relative_relocations of its type words
        self._base: int | None = None
        self._varint: bool | None = None

    def _setup(self) -> bool:
        if self._varint is None:
            binary = self.prog.binary
            self._base = binary.data_symbol("runtime.types") if binary.ptr_size == 8 else None
            version = self.prog.version_tuple or (1, 0, 0)
            self._varint = tuple(version[:2]) >= (1, 17)
        return self._base is not None

    def __call__(self, address: int) -> str | None:
        link = address - self.bias
        if link not in self._cache:
            self._cache[link] = self._from_descriptor(link)
        return self._cache[link]

    def itab_type(self, itab: int, static) -> int | None:
        """The link address held by the type word of the static itab at link address `itab`
        (plan.StaticItabs `static`): the file's word, or in a PIE the addend of the relocation
        that fills it; None when the file does not say (see static_itabs)."""
        key = (itab, static)
        if key not in self._itab_types:
            self._itab_types[key] = self._itab_type(itab, static)
        return self._itab_types[key]

    def _itab_type(self, itab: int, static) -> int | None:
        binary = self.prog.binary
        slot = itab + static.type_offset
        if static.relocated:
            if static not in self._relocations:
                window = (static.first + static.type_offset, static.last + static.type_offset + 8)
                try:
                    with reading(binary.path, "relocations"):
                        self._relocations[static] = relative_relocations(binary, *window)
                except DwarfgoError:
                    self._relocations[static] = None
            return (self._relocations[static] or {}).get(slot)
        try:
            word = binary.read_memory(slot, 8)
        except (DwarfgoError, OSError):
            return None
        return int.from_bytes(word, "little" if binary.elf.little_endian else "big")

    def _from_descriptor(self, addr: int) -> str | None:
        if not self._setup():
            return None
        binary = self.prog.binary
        try:
            desc = binary.read_memory(addr, _DESCRIPTOR_HEAD)
            tflag = desc[20]
            name_off = int.from_bytes(desc[40:44], "little", signed=True)
            start = self._base + name_off
            if self._varint:
                head = _read_some(binary, start, 11)
                n, shift, i = 0, 0, 1
                while True:
                    if i >= len(head) or shift > 28:
                        return None
                    b = head[i]
                    n |= (b & 0x7F) << shift
                    i += 1
                    shift += 7
                    if not b & 0x80:
                        break
            else:
                head = binary.read_memory(start, 3)
                n, i = int.from_bytes(head[1:3], "big"), 3
            if n > _MAX_NAME:
                return None
            text = binary.read_memory(start + i, n)
        except (DwarfgoError, IndexError, ValueError, OSError):
            return None  # not a descriptor in the file (made at run time by reflect), or damaged
        name = text.decode("utf-8", "replace")
        return name[1:] if tflag & _TFLAG_EXTRA_STAR and name.startswith("*") else name


def _read_some(binary, address: int, size: int) -> bytes:
    """Up to `size` bytes at `address` (fewer at the end of a segment)."""
    while size > 0:
        try:
            return binary.read_memory(address, size)
        except DwarfgoError:
            size -= 1
    return b""


def static_itabs(binary, type_offset: int):
    """The range of the itabs the linker laid out (`go:itab.*`, the module data's itab list), as a
    plan.StaticItabs, when a probe need not follow an interface's itab word that lies in it: the
    decoder knows that itab's type word from the file, because nothing writes a static itab at
    run time and every byte from the first itab to the last one's type word lies in data that is
    read-only in the process:
      - a binary loaded at its link addresses (ET_EXEC): a read-only segment's file bytes;
      - a position-independent one (ET_DYN): data the loader relocates, then makes read-only
        (PT_GNU_RELRO), where each itab's type word is filled by a relative relocation (the link
        address of the type in its addend, plus the load bias); the probe compares the itab's
        address less the load bias.
    Itabs the runtime builds (a type asserted to an interface no code converts it to statically)
    are allocated outside the binary's image, so they are never in the range, and their type word
    is still read by the probe. None when any of that does not hold, or the module data cannot be
    read (Go 1.16-1.17, 32-bit, damaged tables): then every itab is followed in the probe."""
    try:
        with reading(binary.path, "runtime itab list or relocations"):
            return _static_itabs(binary, type_offset)
    except DwarfgoError:
        return None  # damaged: every itab followed in the probe, as without a range


def _static_itabs(binary, type_offset: int):
    """static_itabs, its reads of the file not guarded."""
    from .emit.plan import StaticItabs
    from .rtypes import RuntimeTypes

    kind = binary.elf.header["e_type"]
    if kind not in ("ET_EXEC", "ET_DYN") or binary.ptr_size != 8:
        return None
    tables = RuntimeTypes(binary)
    itabs = tables.module.itabs
    if not itabs:
        return None
    first, last = min(itabs), max(itabs)
    end = last + type_offset + 8
    if kind == "ET_EXEC":
        for start, data, flags in tables.image.segments:
            if start <= first and end <= start + len(data):
                return None if flags & 2 else StaticItabs(first, last, type_offset)
        return None
    if not any(seg["p_type"] == "PT_GNU_RELRO" and seg["p_vaddr"] <= first
               and end <= seg["p_vaddr"] + seg["p_memsz"] for seg in binary.elf.iter_segments()):
        return None
    relocations = relative_relocations(binary, first + type_offset, end)
    if relocations is None or any(itab + type_offset not in relocations for itab in itabs):
        return None
    return StaticItabs(first, last, type_offset, relocated=True)


# R_X86_64_RELATIVE, R_AARCH64_RELATIVE: the word is the load bias plus the addend
_RELATIVE = {"EM_X86_64": 8, "EM_AARCH64": 1027}


def relative_relocations(binary, start: int, end: int) -> dict[int, int] | None:
    """The words in [start, end) (link addresses) that the loader fills with a relative relocation:
    address -> its addend (a link address). None when another relocation touches a word there, or
    the binary holds relocations this does not read (REL or RELR tables, a machine without a
    known relative type), so that a word's value in the process is not known from this."""
    elf = binary.elf
    relative = _RELATIVE.get(elf.header["e_machine"])
    if relative is None or not elf.little_endian:
        return None
    found: dict[int, int] = {}
    for section in elf.iter_sections():
        kind = section["sh_type"]
        if not section["sh_flags"] & 2:  # SHF_ALLOC: what the loader applies
            continue
        if kind in ("SHT_REL", "SHT_RELR"):
            return None
        if kind != "SHT_RELA":
            continue
        if section["sh_entsize"] != 24:
            return None
        data = section.data()
        for offset, info, addend in struct.iter_unpack("<QQq", data[:len(data) - len(data) % 24]):
            if start - 7 <= offset < end:
                if info & 0xFFFFFFFF != relative or offset < start or (offset - start) % 8:
                    return None
                found[offset] = addend
    return found
