"""The Go runtime's own function table (.gopclntab): each function's argument-area size.

`args` is what the runtime itself uses to scan and copy a frame's incoming arguments: for
ABI0 the bytes of arguments and results on the stack; for ABIInternal the stack arguments,
stack results and the spill area of the register arguments. It does not depend on DWARF,
so it is an independent witness that the parameter list is complete: Go writes no DWARF
entry for blank or unnamed parameters before 1.22, but they still occupy this area.
"""

from __future__ import annotations

import struct
from functools import cached_property

from .binary import GoBinary
from .errors import DamagedBinary, reading

_MAGIC_12 = 0xFFFFFFFB  # Go 1.2 - 1.15
_MAGIC_116 = 0xFFFFFFFA  # Go 1.16 - 1.17
_MAGIC_118 = 0xFFFFFFF0  # Go 1.18 - 1.19
_MAGIC_120 = 0xFFFFFFF1  # Go 1.20 +


class FuncTable:
    def __init__(self, binary: GoBinary):
        self.binary = binary

    @cached_property
    def _data(self) -> bytes | None:
        for name in (".gopclntab", ".data.rel.ro.gopclntab"):
            sec = self.binary.elf.get_section_by_name(name)
            if sec is not None:
                return sec.data()
        addr = self.binary.data_symbol("runtime.pclntab")
        end = self.binary.data_symbol("runtime.epclntab")
        if addr and end and end > addr:
            return self.binary.read_memory(addr, end - addr)
        return None

    @cached_property
    def args_by_entry(self) -> dict[int, int]:
        with reading(self.binary.path, "function table (.gopclntab)"):
            return self._parse()

    def _parse(self) -> dict[int, int]:
        data = self._data
        if not data or len(data) < 16:
            return {}
        order = "<" if self.binary.elf.little_endian else ">"
        magic = struct.unpack_from(order + "I", data, 0)[0]
        ptr = data[7]
        pfmt = order + ("Q" if ptr == 8 else "I")

        if ptr not in (4, 8):
            raise DamagedBinary(f"{self.binary.path}: damaged function table (.gopclntab): pointer size {ptr}")

        def word(off: int) -> int:
            return struct.unpack_from(pfmt, data, off)[0]

        def count(n: int, entry: int) -> int:
            # a count from the header: its table must fit in the section (a flipped count is not
            # a loop of 2^63 iterations)
            if n * entry > len(data):
                raise DamagedBinary(f"{self.binary.path}: damaged function table (.gopclntab): {n} functions "
                                    f"do not fit in its {len(data)} bytes")
            return n

        out: dict[int, int] = {}
        if magic == _MAGIC_12:
            nfunc = count(word(8), 2 * ptr)
            tab = 8 + ptr
            for i in range(nfunc):
                entry, funcoff = word(tab + 2 * i * ptr), word(tab + (2 * i + 1) * ptr)
                out[entry] = struct.unpack_from(order + "i", data, funcoff + ptr + 4)[0]
        elif magic == _MAGIC_116:
            nfunc = count(word(8), 2 * ptr)
            pcln = word(8 + 6 * ptr)
            for i in range(nfunc):
                entry, funcoff = word(pcln + 2 * i * ptr), word(pcln + (2 * i + 1) * ptr)
                out[entry] = struct.unpack_from(order + "i", data, pcln + funcoff + ptr + 4)[0]
        elif magic in (_MAGIC_118, _MAGIC_120):
            nfunc = count(word(8), 8)
            text_start = word(8 + 2 * ptr) or (self.binary.data_symbol("runtime.text") or 0)
            pcln = word(8 + 7 * ptr)
            for i in range(nfunc):
                entryoff, funcoff = struct.unpack_from(order + "II", data, pcln + 8 * i)
                out[text_start + entryoff] = struct.unpack_from(order + "i", data, pcln + funcoff + 8)[0]
        return out

    def args_size(self, entry: int) -> int | None:
        """The runtime's argument-area size of the function starting at `entry` (None if unknown)."""
        v = self.args_by_entry.get(entry)
        if v is None or v < 0:  # ArgsSizeUnknown (-0x80000000) for some assembly
            return None
        return v
