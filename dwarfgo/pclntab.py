"""The Go runtime's own function table (.gopclntab): every function's name, entry, end and
argument-area size, with or without a symbol table.

`args` is what the runtime itself uses to scan and copy a frame's incoming arguments: for
ABI0 the bytes of arguments and results on the stack; for ABIInternal the stack arguments,
stack results and the spill area of the register arguments. It does not depend on DWARF,
so it is an independent witness that the parameter list is complete: Go writes no DWARF
entry for blank or unnamed parameters before 1.22, but they still occupy this area.

The table survives `-ldflags='-s -w'` (the runtime needs it for tracebacks and the garbage
collector), so it is where the names and addresses of a stripped binary come from.

Layouts (read from the runtime's symtab.go and runtime2.go of each version):
  header: magic uint32, 0, 0, pc quantum uint8, pointer size uint8, then
  Go 1.2-1.15   (0xfffffffb)  nfunc uintptr; functab: nfunc x (entry uintptr, funcoff uintptr)
                              and the end pc; funcoff, nameoff and pc-table offsets from the
                              table's start.
  Go 1.16-1.17  (0xfffffffa)  nfunc, nfiles, funcnametab, cutab, filetab, pctab, functab offsets
                              (uintptr each); functab as before but funcoff from functab's start;
                              nameoff from funcnametab, pc-table offsets from pctab.
  Go 1.18-1.19  (0xfffffff0)  nfunc, nfiles, textStart, then the five offsets as in 1.16;
  Go 1.20+      (0xfffffff1)  functab: (entryoff uint32, funcoff uint32) pairs, entries relative
                              to the module's text start. textStart is 0 in later versions (it
                              needed a relocation): the text start then comes from moduledata.
  _func: entry (uintptr; uint32 entryoff from 1.18), nameoff int32, args int32, deferreturn
  uint32, pcsp uint32, ... The pcsp table covers exactly the function's code, so its last pc
  is the function's end (the symbol's size, without the padding to the next function).
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass
from functools import cached_property

from .errors import BinaryError, DamagedBinary, reading
from .varint import uvarint as _uvarint

_MAGIC_12 = 0xFFFFFFFB  # Go 1.2 - 1.15
_MAGIC_116 = 0xFFFFFFFA  # Go 1.16 - 1.17
_MAGIC_118 = 0xFFFFFFF0  # Go 1.18 - 1.19
_MAGIC_120 = 0xFFFFFFF1  # Go 1.20 +
_MAGICS = {_MAGIC_12: "1.2", _MAGIC_116: "1.16", _MAGIC_118: "1.18", _MAGIC_120: "1.20"}
_SECTIONS = (".gopclntab", ".data.rel.ro.gopclntab")
_MAX_PCTABLE_STEPS = 1 << 20


@dataclass(frozen=True)
class PclnFunction:
    """One function of the runtime's table. `name` is the Go name, never `.abi0`-suffixed."""

    name: str
    entry: int
    end: int  # the end of its code (exclusive)
    args: int  # the runtime's argument-area size; negative: unknown (some assembly)

    @property
    def size(self) -> int:
        return self.end - self.entry


@dataclass(frozen=True)
class PclnTable:
    layout: str  # "1.2", "1.16", "1.18", "1.20": the first Go version of this layout
    address: int  # where the table is loaded
    where: str  # how it was found: a section name, or "found by its header in the loaded data"
    functions: list[PclnFunction]


def locate(binary, in_place: bool = False) -> tuple[int, bytes, str] | None:
    """(address, bytes, where) of the function table: its section, else the runtime.pclntab
    symbol, else a scan of the read-only loaded data for a valid table header (a binary
    whose section headers were stripped). `in_place`: a section's bytes as a view of the mapped
    file (GoBinary.section_in_place), for a reader that looks at a few of them."""
    elf = binary.elf
    for name in _SECTIONS:
        sec = elf.get_section_by_name(name)
        if sec is not None and sec["sh_type"] != "SHT_NOBITS":
            if in_place and not sec.compressed:
                return sec["sh_addr"], binary.section_in_place(sec), name
            return sec["sh_addr"], sec.data(), name
    addr = _symbol(binary, "runtime.pclntab")
    end = _symbol(binary, "runtime.epclntab")
    if addr and end and end > addr:
        return addr, binary.read_memory(addr, end - addr), "runtime.pclntab"
    return _scan_segments(binary)


def _symbol(binary, name: str) -> int | None:
    """A symbol's address, if the binary has a symbol table (without one, the symbols come from
    this very table)."""
    return None if binary.symbols_from == "function table" else binary.data_symbol(name)


def _scan_segments(binary) -> tuple[int, bytes, str] | None:
    order = "little" if binary.elf.little_endian else "big"
    for seg in binary.elf.iter_segments():
        if seg["p_type"] != "PT_LOAD" or seg["p_flags"] & 1:  # not executable text
            continue
        data = seg.data()
        for magic in _MAGICS:
            pattern = magic.to_bytes(4, order) + b"\0\0"
            at = data.find(pattern)
            while at >= 0:
                q, p = data[at + 6 : at + 8] if at + 8 <= len(data) else (0, 0)
                if q in (1, 2, 4) and p == binary.ptr_size:
                    try:
                        table = _parse(data[at:], seg["p_vaddr"] + at, binary, "found by its header in the loaded data")
                    except (DamagedBinary, struct.error, IndexError, UnicodeDecodeError):
                        table = None
                    if table is not None and table.functions:
                        return seg["p_vaddr"] + at, data[at:], "found by its header in the loaded data"
                at = data.find(pattern, at + 1)
    return None


def read_table(binary) -> PclnTable | None:
    """The parsed function table, or None if the binary has none."""
    with reading(binary.path, "function table (.gopclntab)"):
        found = locate(binary)
        if found is None:
            return None
        address, data, where = found
        return _parse(data, address, binary, where)


_LOOKUPS_IN_PLACE = 16  # index_of searches the table in place this many times before reading every entry


class _Functab:
    """The header and function index of one table, read in place: entry and `_func` record of the
    i-th function (the index is sorted by entry), and the record's fields."""

    def __init__(self, data: bytes | memoryview, address: int, binary, where: str):
        path = binary.path
        self.data, self.path, self.where = data, path, where
        if len(data) < 16:
            raise DamagedBinary(f"{path}: damaged function table ({where}): {len(data)} bytes")
        order = "<" if binary.elf.little_endian else ">"
        magic = struct.unpack_from(order + "I", data, 0)[0]
        if magic not in _MAGICS:
            raise DamagedBinary(f"{path}: damaged function table ({where}): unknown magic {magic:#x}")
        quantum, ptr = data[6], data[7]
        if ptr not in (4, 8) or quantum not in (1, 2, 4):
            raise DamagedBinary(f"{path}: damaged function table ({where}): pointer size {ptr}, pc quantum {quantum}")
        self.layout, self.quantum, self.ptr = _MAGICS[magic], quantum, ptr
        self._word = struct.Struct(order + ("Q" if ptr == 8 else "I"))
        self._u32, self._i32 = struct.Struct(order + "I"), struct.Struct(order + "i")
        self._pair = struct.Struct(order + "II")
        self.nfunc = self.word(8)
        self._lookups = 0  # index_of calls (see there)
        self.old = magic in (_MAGIC_12, _MAGIC_116)  # uintptr entries and funcoffs, fields after a uintptr entry
        if magic == _MAGIC_12:
            self.tab, self.names, self.pctab, self.base, self.text = 8 + ptr, 0, 0, 0, 0
        elif magic == _MAGIC_116:
            self.names, self.pctab, self.tab = self.word(8 + 2 * ptr), self.word(8 + 5 * ptr), self.word(8 + 6 * ptr)
            self.base, self.text = self.tab, 0
        else:
            self.names, self.pctab, self.tab = self.word(8 + 3 * ptr), self.word(8 + 6 * ptr), self.word(8 + 7 * ptr)
            self.base = self.tab
            self.text = self.word(8 + 2 * ptr) or _text_start(binary, address, self.names, ptr, order)
        # a count from the header: its index must fit in the data (a flipped count is not a loop
        # of 2^63 iterations)
        if self.tab + self.nfunc * (2 * ptr if self.old else 8) > len(data):
            raise DamagedBinary(f"{path}: damaged function table ({where}): {self.nfunc} functions do not fit in "
                                f"its {len(data)} bytes")
        # the fields of a _func record after its entry: nameoff, args, deferreturn, pcsp
        self._fields = ptr if self.old else 4

    def word(self, off: int) -> int:
        return self._word.unpack_from(self.data, off)[0]

    def entry(self, i: int) -> int:
        """The i-th function's entry; i == nfunc gives the end of the last one."""
        if self.old:
            return self.word(self.tab + 2 * i * self.ptr)
        return self.text + self._u32.unpack_from(self.data, self.tab + 8 * i)[0]

    def record(self, i: int) -> int:
        """Offset of the i-th function's _func record in the table."""
        if self.old:
            return self.base + self.word(self.tab + (2 * i + 1) * self.ptr)
        return self.base + self._pair.unpack_from(self.data, self.tab + 8 * i)[1]

    def name(self, f: int) -> str:
        off = self.names + self._i32.unpack_from(self.data, f + self._fields)[0]
        return _c_string(self.data, off).decode("utf-8", "replace")

    def args(self, f: int) -> int:
        return self._i32.unpack_from(self.data, f + self._fields + 4)[0]

    def pcsp(self, f: int) -> int:
        """Offset of the record's pcsp table in the table, or 0 when it has none."""
        off = self._u32.unpack_from(self.data, f + self._fields + 12)[0]
        return self.pctab + off if off else 0

    def index_of(self, entry: int) -> int | None:
        """The index of the function whose entry is `entry` (a binary search), or None. The first
        few lookups search the table in place (a command on one function reads some 15 entries);
        later ones read every entry once (_entries), as a whole-binary run looks up each."""
        self._lookups += 1
        entries = self._entries if self._lookups > _LOOKUPS_IN_PLACE else None
        if entries is not None:
            i = bisect.bisect_left(entries, entry)
            return i if i < len(entries) and entries[i] == entry else None
        lo, hi = 0, self.nfunc
        while lo < hi:
            mid = (lo + hi) // 2
            if self.entry(mid) < entry:
                lo = mid + 1
            else:
                hi = mid
        return lo if lo < self.nfunc and self.entry(lo) == entry else None

    @cached_property
    def _entries(self) -> list[int] | None:
        """Every function's entry in index order, read at once (a whole-binary run looks up
        every function: 15 entries read one by one each); None when they are out of order, where
        index_of searches the table itself, as it would search a sorted one."""
        fields = struct.unpack_from(f"{self._word.format[0]}{2 * self.nfunc}{self._word.format[1] if self.old else 'I'}",
                                    self.data, self.tab)[::2]
        entries = list(fields) if self.old else [self.text + e for e in fields]
        if any(a > b for a, b in zip(entries, entries[1:])):
            return None
        return entries

    def code_end(self, entry: int, pctab_off: int, fallback: int) -> int:
        """The last pc of the function's pcsp table: the end of its code."""
        if pctab_off == 0:
            return fallback
        off, pc, first, data, quantum = pctab_off, entry, True, self.data, self.quantum
        # the table ends at or before the next function's entry: a step per instruction at most
        for _ in range(min(_MAX_PCTABLE_STEPS, max(fallback - entry, 0) // quantum + 2)):
            uv, off = _uvarint(data, off)
            if uv == 0 and not first:
                if pc > fallback:
                    break
                return pc
            first = False
            delta, off = _uvarint(data, off)
            pc += delta * quantum
        raise DamagedBinary(f"{self.path}: damaged function table ({self.where}): the pc table at {pctab_off:#x} "
                            f"of the function at {entry:#x} runs past the next function")


def _c_string(data: bytes | memoryview, off: int) -> bytes:
    """The bytes at `off` up to the next NUL (ValueError without one, as bytes.index)."""
    if not isinstance(data, memoryview):
        return data[off:data.index(b"\0", off)]
    window = 256
    while True:
        chunk = bytes(data[off:off + window])
        end = chunk.find(b"\0")
        if end >= 0:
            return chunk[:end]
        if off + window >= len(data):
            raise ValueError("subsection not found")
        window *= 8


def _parse(data: bytes, address: int, binary, where: str) -> PclnTable:
    tab = _Functab(data, address, binary, where)
    out: list[PclnFunction] = []
    for i in range(tab.nfunc):
        entry, next_entry, f = tab.entry(i), tab.entry(i + 1), tab.record(i)
        end = tab.code_end(entry, tab.pcsp(f), next_entry)
        out.append(PclnFunction(tab.name(f), entry, end, tab.args(f)))
    return PclnTable(tab.layout, address, where, out)


def _text_start(binary, pclntab: int, funcnames_off: int, ptr: int, order: str) -> int:
    """The module's text start (moduledata.text) for Go 1.18+ tables that no longer record it.

    moduledata, in the writable data, begins with a pointer to the table's header, then the
    funcnametab slice (whose data pointer is the header plus its funcnametab offset); the text
    start is its 23rd word (pcHeader, six slices, findfunctab, minpc, maxpc, text)."""
    addr = _symbol(binary, "runtime.text")
    if addr:
        return addr
    endian = "little" if order == "<" else "big"
    head = pclntab.to_bytes(ptr, endian) + (pclntab + funcnames_off).to_bytes(ptr, endian)
    for seg in binary.elf.iter_segments():
        if seg["p_type"] != "PT_LOAD" or not seg["p_flags"] & 2:  # writable
            continue
        data = seg.data()
        at = data.find(head)
        while at >= 0:
            if at % ptr == 0 and at + 23 * ptr <= len(data):
                minpc = int.from_bytes(data[at + 20 * ptr : at + 21 * ptr], endian)
                text = int.from_bytes(data[at + 22 * ptr : at + 23 * ptr], endian)
                if text and minpc >= text:
                    return text
            at = data.find(head, at + 1)
    raise BinaryError(f"{binary.path}: the function table records no text start and the runtime's module data "
                      f"(moduledata) was not found: cannot place its functions")


class FuncTable:
    """The runtime's function table of one binary: argument-area sizes by entry."""

    def __init__(self, binary):
        self.binary = binary

    @cached_property
    def _index(self) -> _Functab | None:
        with reading(self.binary.path, "function table (.gopclntab)"):
            found = locate(self.binary, in_place=True)
            return _Functab(found[1], found[0], self.binary, found[2]) if found else None

    def args_size(self, entry: int) -> int | None:
        """The runtime's argument-area size of the function starting at `entry` (None if unknown).
        One function is looked up in the sorted index (reading all 20k records of cmd/compile
        cost 0.28 s of a 1 s `sig`)."""
        tab = self._index
        with reading(self.binary.path, "function table (.gopclntab)"):
            i = tab.index_of(entry) if tab is not None else None
            v = tab.args(tab.record(i)) if i is not None else None
        if v is None or v < 0:  # ArgsSizeUnknown (-0x80000000) for some assembly
            return None
        return v


def function_symbols(binary) -> list:
    """The functions of a binary without a symbol table, as symbols (sorted by address): names
    from the runtime's table, with the linker's `.` for the `·` the table keeps (as the symbol
    table has them). ABI0 functions carry no `.abi0` suffix here: the table does not record the
    ABI. Go 1.18-1.19 write type arguments as `[...]`, so instances of a generic function share
    one name."""
    from .binary import Symbol

    table = read_table(binary)
    if table is None:
        raise BinaryError(f"{binary.path}: no symbol table and no Go function table (.gopclntab): not a Go "
                          f"binary, or a damaged one")
    seen: dict[int, Symbol] = {}
    for f in table.functions:
        seen.setdefault(f.entry, Symbol(f.name.replace("\u00b7", "."), f.entry, f.size))
    return sorted(seen.values(), key=lambda s: s.address)
