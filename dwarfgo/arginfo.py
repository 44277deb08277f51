"""The argument words the runtime prints in tracebacks (FUNCDATA_ArgInfo, Go 1.17+), read
without DWARF: for each input (receiver and arguments, not results, not a generic function's
dictionary) the offset and size of each word, with structs, arrays, strings, slices,
interfaces and complex numbers grouped, for at most 10 words (cmd/compile's EmitArgInfo).

Offsets are from the start of the argument area (SP + 8 at entry on amd64 and arm64); a
register argument's words are at its spill slot's offset. Which register holds a word is not
recorded there: it comes from the machine code, whose morestack tail stores every register
argument at its spill slot (`mov [rsp+off], REG`). A word with no such store is a stack word
when that tail exists; without a tail nothing says, and the word's place is unknown.

Encoding (runtime/traceback.go printArgs; internal/abi TraceArgs*): bytes, each either an
offset followed by a size byte, or 0xff end, 0xfe start of an aggregate, 0xfd its end,
0xfc "..." (more words than recorded), 0xfb an offset too large to record (>= 0xf0).

Where it is (Go 1.18+): the function's `_func` record in the function table ends with
`npcdata` uint32 pcdata offsets then `nfuncdata` uint32 funcdata offsets, relative to
moduledata.gofunc (0xffffffff: none); ArgInfo is funcdata 5. `_func`: entryOff 0, nameOff 4,
args 8, deferreturn 12, pcsp 16, pcfile 20, pcln 24, npcdata 28, cuOffset 32, then (Go 1.20+)
startLine 36, then funcID, flag, a pad byte and nfuncdata (uint8), ending the 40 (44) bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .errors import DamagedBinary, reading

FUNCDATA_ARGS_POINTER_MAPS = 0
FUNCDATA_ARGINFO = 5
FUNC_FLAG_ASM = 4  # internal/abi.FuncFlagAsm (runtime funcFlag_ASM in 1.18-1.20)
END_SEQ, START_AGG, END_AGG, DOTDOTDOT, OFFSET_TOO_LARGE = 0xFF, 0xFE, 0xFD, 0xFC, 0xFB
_MAX_LEN = (5 * 3 + 2) * 10 + 1  # abi.TraceArgsMaxLen


@dataclass(frozen=True)
class Word:
    offset: int | None  # from the argument area's start; None: too large to record
    size: int


@dataclass
class Group:
    """One recorded value: a word, or an aggregate of values; `more`: the runtime records no more."""

    items: list["Word | Group"] = field(default_factory=list)
    more: bool = False

    def words(self) -> list[Word]:
        out = []
        for i in self.items:
            out += i.words() if isinstance(i, Group) else [i]
        return out


def describe_words(values: Group) -> str:
    """The sizes of a record's words, grouped as recorded: `8, {8, 8}` (`?`: an offset too large
    to record; `...`: more words than recorded)."""
    def one(v) -> str:
        if isinstance(v, Group):
            return "{" + describe_words(v) + "}"
        return str(v.size) if v.offset is not None else "?"
    items = [one(v) for v in values.items] + (["..."] if values.more else [])
    return ", ".join(items) if items else "none"


def decode(raw: bytes) -> Group:
    """The values of an ArgInfo record (a Group of the top-level values)."""
    stack = [Group()]
    i = 0
    while i < len(raw):
        b = raw[i]
        i += 1
        if b == END_SEQ:
            if len(stack) != 1:
                raise ValueError("ArgInfo ends inside an aggregate")
            return stack[0]
        if b == START_AGG:
            g = Group()
            stack[-1].items.append(g)
            stack.append(g)
        elif b == END_AGG:
            if len(stack) == 1:
                raise ValueError("ArgInfo closes an aggregate it did not open")
            stack.pop()
        elif b == DOTDOTDOT:
            stack[-1].more = True
        elif b == OFFSET_TOO_LARGE:
            stack[-1].items.append(Word(None, 0))
        else:
            stack[-1].items.append(Word(b, raw[i]))
            i += 1
    raise ValueError("ArgInfo without its end byte")


class ArgInfoTable:
    """The ArgInfo records of a binary's functions, by entry address."""

    def __init__(self, binary, tables):
        """`tables`: rtypes.RuntimeTypes (its loaded image and module data)."""
        from .pclntab import locate
        with reading(binary.path, "function table (.gopclntab)"):
            self._index(binary, tables, locate)

    def _index(self, binary, tables, locate) -> None:
        self.binary = binary
        self.image = tables.image
        self.module = tables.module
        self.version = tables.version
        found = locate(binary)
        if found is None or self.version < (1, 18) or self.module.gofunc is None:
            self._funcs: dict[int, int] = {}
            return
        data = found[1]
        self._data = data
        ptr = binary.ptr_size
        order = "<" if binary.elf.little_endian else ">"
        self._u32 = struct.Struct(order + "I")
        nfunc = int.from_bytes(data[8:8 + ptr], "little" if order == "<" else "big")
        tab = int.from_bytes(data[8 + 7 * ptr: 8 + 8 * ptr], "little" if order == "<" else "big")
        if tab + 8 * nfunc > len(data):
            raise DamagedBinary(f"{binary.path}: damaged function table: {nfunc} functions do not fit")
        text = self.module.text
        self._funcs = {}
        for entryoff, funcoff in struct.iter_unpack(order + "II", data[tab: tab + 8 * nfunc]):
            self._funcs[text + entryoff] = tab + funcoff
        self._header = 44 if self.version >= (1, 20) else 40

    def raw(self, entry: int) -> bytes | None:
        """The ArgInfo bytes of the function at `entry`, or None (none recorded, or Go < 1.18)."""
        with reading(self.binary.path, f"function table record of the function at {entry:#x}"):
            return self._raw(entry)

    def _funcdata(self, entry: int, index: int) -> int | None:
        """The address of funcdata `index` of the function at `entry`, or None (none)."""
        f = self._funcs.get(entry)
        if f is None:
            return None
        data = self._data
        npcdata = self._u32.unpack_from(data, f + 28)[0]
        nfuncdata = data[f + self._header - 1]
        if index >= nfuncdata:
            return None
        off = self._u32.unpack_from(data, f + self._header + 4 * npcdata + 4 * index)[0]
        if off == 0xFFFFFFFF:
            return None
        return self.module.gofunc + off

    def is_assembly(self, entry: int) -> bool | None:
        """Whether the function table flags the function at `entry` as assembly (FuncFlagAsm,
        the `_func` flag byte; Go 1.18+), or None when the function is not in the table."""
        f = self._funcs.get(entry)
        if f is None:
            return None
        return bool(self._data[f + self._header - 3] & FUNC_FLAG_ASM)

    def func_id(self, entry: int) -> int | None:
        """The function table's funcID of the function at `entry` (0: an ordinary function; any
        other value a special runtime function or compiler-generated code, ABI wrappers among
        them; the numbering of the others changes between versions), or None."""
        f = self._funcs.get(entry)
        return None if f is None else self._data[f + self._header - 4]

    def entry_pointer_words(self, entry: int) -> set[int] | None:
        """The argument-area offsets of the words the args pointer map (FUNCDATA_ArgsPointerMaps,
        funcdata 0) marks as pointers at the function's entry (stack map 0): a word of an input
        value, register arguments at their spill slot's offset (cmd/compile liveness: a register
        argument's spill slot is live at entry when the code reads the register). None: no map."""
        with reading(self.binary.path, f"args pointer map of the function at {entry:#x}"):
            at = self._funcdata(entry, FUNCDATA_ARGS_POINTER_MAPS)
            if at is None:
                return None
            head = self.image.read(at, 8)
            count, nbit = self._u32.unpack_from(head, 0)[0], self._u32.unpack_from(head, 4)[0]
            if count == 0 or nbit > 8 * 4096:
                raise DamagedBinary(f"{self.binary.path}: damaged args pointer map of the function at {entry:#x}: "
                                    f"{count} maps of {nbit} bits")
            bits = self.image.read(at + 8, (nbit + 7) // 8)
            ptr = self.binary.ptr_size
            return {i * ptr for i in range(nbit) if bits[i // 8] >> (i % 8) & 1}

    def _raw(self, entry: int) -> bytes | None:
        start = self._funcdata(entry, FUNCDATA_ARGINFO)
        if start is None:
            return None
        record = _until_end(self.image.read_upto(start, _MAX_LEN))
        if not record.endswith(bytes([END_SEQ])):
            raise DamagedBinary(f"{self.binary.path}: damaged ArgInfo of the function at {entry:#x}: no end byte")
        return record

    def values(self, entry: int) -> Group | None:
        raw = self.raw(entry)
        if raw is None:
            return None
        try:
            return decode(raw)
        except (ValueError, IndexError) as e:
            raise DamagedBinary(f"{self.binary.path}: damaged ArgInfo of the function at {entry:#x}: {e}") from None


def _until_end(head: bytes) -> bytes:
    """The record up to and with its end byte, item by item: an offset (below 0xf0) is followed
    by its size byte, any other byte stands alone."""
    i = 0
    while i < len(head):
        b = head[i]
        if b == END_SEQ:
            return head[: i + 1]
        i += 1 if b >= 0xF0 else 2
    return head
