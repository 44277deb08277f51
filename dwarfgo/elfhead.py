"""The few facts of an ELF file that the index cache keys a binary by (its build ID, whether its
DWARF is in the file itself), read with `struct` from the section headers and notes alone.

A command whose answer is already stored (indexcache.stored_result) checks it with these before
it opens the binary through pyelftools, whose import and parse cost more than the answer. Any
doubt (not ELF, a header that does not parse, sections past the end) is None: the command then
takes its ordinary path, which says what is wrong.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

SHT_NOTE = 7


@dataclass(frozen=True)
class ElfHead:
    build_id: str | None  # the Go build ID, else the GNU build ID as hex (as GoBinary gives them)
    has_dwarf: bool  # .debug_info or .zdebug_info in this file
    has_debuglink: bool  # .gnu_debuglink: the DWARF may live in another file


def read_head(path) -> ElfHead | None:
    try:
        with open(path, "rb") as fh:
            return _read(fh)
    except (OSError, struct.error, ValueError, IndexError, OverflowError):
        return None


def _read(fh) -> ElfHead | None:
    size = os.fstat(fh.fileno()).st_size
    ident = fh.read(64)
    if len(ident) < 52 or ident[:4] != b"\x7fELF" or ident[4] not in (1, 2) or ident[5] not in (1, 2):
        return None
    wide, order = ident[4] == 2, "<" if ident[5] == 1 else ">"
    if wide:
        shoff, = struct.unpack_from(order + "Q", ident, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", ident, 0x3A)
        header = struct.Struct(order + "IIQQQQIIQQ")  # name, type, flags, addr, offset, size, link, info, align, entsize
    else:
        shoff, = struct.unpack_from(order + "I", ident, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", ident, 0x2E)
        header = struct.Struct(order + "IIIIIIIIII")
    if shoff == 0 or shentsize != header.size or not 0 < shnum < 1 << 16 or shstrndx >= shnum \
            or shoff + shnum * shentsize > size:
        return None
    fh.seek(shoff)
    table = fh.read(shnum * shentsize)
    if len(table) != shnum * shentsize:
        return None
    sections = [header.unpack_from(table, i * shentsize) for i in range(shnum)]
    names_at, names_size = sections[shstrndx][4], sections[shstrndx][5]
    if names_at + names_size > size:  # (a damaged header's sizes are never read)
        return None
    fh.seek(names_at)
    names = fh.read(names_size)
    by_name: dict[str, tuple] = {}
    for sec in sections:
        end = names.find(b"\0", sec[0])
        name = names[sec[0]:end].decode("utf-8", "replace") if end >= 0 else ""
        by_name.setdefault(name, sec)  # the first of a name, as pyelftools' get_section_by_name

    def note(section: str, owner: str, kind: int) -> bytes | None:
        sec = by_name.get(section)
        if sec is None or sec[1] != SHT_NOTE or sec[4] + sec[5] > size:
            return None
        fh.seek(sec[4])
        data = fh.read(sec[5])
        at = 0
        while at + 12 <= len(data):
            namesz, descsz, ntype = struct.unpack_from(order + "III", data, at)
            at += 12
            name = data[at:at + namesz].split(b"\0", 1)[0].decode("utf-8", "replace")
            at += (namesz + 3) & ~3
            desc = data[at:at + descsz]
            at += (descsz + 3) & ~3
            if name == owner and ntype == kind:
                return desc
        return None

    go = note(".note.go.buildid", "Go", 4)
    build_id = go.decode("utf-8", "replace").rstrip("\x00") if go is not None else None
    if not build_id:
        gnu = note(".note.gnu.build-id", "GNU", 3)
        build_id = gnu.hex() if gnu else None
    return ElfHead(build_id or None, ".debug_info" in by_name or ".zdebug_info" in by_name,
                   ".gnu_debuglink" in by_name)
