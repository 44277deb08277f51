"""Layer 1: the ELF file of a Go program.

Opens the binary (and its separate debug file, if the DWARF was split off), and
answers the questions that need no DWARF: architecture, Go version, build ID,
function symbols. The DWARF itself is opened lazily, on first use.
"""

from __future__ import annotations

import bisect
import io
import mmap
import os
import re
import stat
import struct
import zlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

from elftools.common.exceptions import ELFCompressionError
from elftools.dwarf.dwarfinfo import DebugSectionDescriptor
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import NoteSection, SymbolTableSection

from .errors import READ_ERRORS, BinaryError, DamagedBinary, NoDwarfError, describe, reading

# ELF e_machine -> GOARCH
_GOARCH_BY_MACHINE = {
    "EM_X86_64": "amd64",
    "EM_AARCH64": "arm64",
    "EM_PPC64": "ppc64",  # refined to ppc64le by byte order below
    "EM_RISCV": "riscv64",
    "EM_LOONGARCH": "loong64",
    "EM_S390": "s390x",
    "EM_386": "386",
    "EM_ARM": "arm",
    "EM_MIPS": "mips",
}

_BUILDINFO_MAGIC = b"\xff Go buildinf:"

SHF_COMPRESSED = 0x800


def max_inflated_size(file_size: int) -> int:
    """The most a compressed section may inflate to: Go's DWARF compresses 3-6 times; anything
    beyond 32 times the whole file (or 16 GiB) is damage or a decompression bomb."""
    return min(32 * file_size + (64 << 20), 16 << 30)


# DWARF sections read (and inflated) only when first used: a command on one function reads
# .debug_info, .debug_abbrev, .debug_addr and at most its location lists
_LAZY_DWARF = {".debug_line", ".debug_frame", ".debug_loc", ".debug_loclists", ".debug_ranges", ".debug_rnglists",
               ".debug_pubnames", ".debug_pubtypes", ".debug_aranges"}


class _LazyStream:
    """A section's bytes as a stream, loaded on first use."""

    def __init__(self, load):
        self._load = load
        self._bytes = None

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        if self._bytes is None:
            self._bytes = _stream(self._load())
        return getattr(self._bytes, name)


def _stream(data):
    """A section's bytes as pyelftools' stream: a kept section mapped from the store
    (indexcache.MappedSection) is one already."""
    return data if hasattr(data, "seek") else io.BytesIO(data)


_NAMES_SEARCHED = 8  # names _address_named finds by a search before it makes the table of every name
KEEP_INFLATED = 1 << 20  # a compressed DWARF section this large inflated is kept in the section store
# the sections a command on one function reads on a warm index (the units' ranges, lines and frames
# are not read then): only these are kept
KEPT_SECTIONS = {".debug_info", ".debug_loc", ".debug_loclists"}


class _ELFFile(ELFFile):
    """pyelftools' ELFFile with a bounded inflation of `.zdebug_*` sections (pyelftools inflates
    them without a limit, whatever size the header declares), the DWARF sections a command
    may not need read lazily, and large compressed ones taken inflated from `inflated_store`
    (an indexcache.SectionStore) when it keeps them (and put there when inflated)."""

    max_inflated = 16 << 30
    inflated_store = None

    def _read_dwarf_section(self, section, relocate_dwarf_sections):
        if relocate_dwarf_sections or self.has_phantom_bytes():
            return super()._read_dwarf_section(section, relocate_dwarf_sections)
        lazy = section.name.replace(".zdebug", ".debug", 1) in _LAZY_DWARF
        if section.compressed:  # SHF_COMPRESSED
            load = lambda: self._kept_inflated(section.name, section["sh_offset"], section["sh_size"],
                                               section.data_size, section.data)
        elif lazy:
            load = section.data
        else:
            return super()._read_dwarf_section(section, relocate_dwarf_sections)
        return DebugSectionDescriptor(stream=_LazyStream(load) if lazy else _stream(load()), name=section.name,
                                      global_offset=section["sh_offset"], size=section.data_size,
                                      address=section["sh_addr"])

    def _kept_inflated(self, name: str, offset: int, stored_size: int, size: int, inflate):
        """inflate()'s bytes (`size` of them), from the inflated store when it keeps them (then
        mapped from its file: an indexcache.MappedSection)."""
        kept = size >= KEEP_INFLATED and name.replace(".zdebug", ".debug", 1) in KEPT_SECTIONS
        store = self.inflated_store if kept else None
        if store is not None:
            kept = store.get(name, offset, stored_size, size)
            if kept is not None:
                return kept
        data = inflate()
        if store is not None and len(data) == size:
            store.put(name, offset, stored_size, size, data)
        return data

    def get_section_by_name(self, name):
        """A `.zdebug_X` that is not in the file is its `.debug_X` when that is: pyelftools asks for
        every DWARF section by the `.zdebug_` name once `.zdebug_info` exists, but a file may mix
        them. Go up to 1.16 compresses its own sections so when it links externally (cgo), and
        leaves the C compiler's small DWARF 5 ones as they are (`.debug_line_str`,
        `.debug_rnglists`): the C units' names, in `.debug_line_str`, then could not be read and
        every command on such a binary failed."""
        section = super().get_section_by_name(name)
        if section is None and name.startswith(".zdebug_"):
            section = super().get_section_by_name(".debug_" + name[len(".zdebug_"):])
        return section

    def _decompress_dwarf_section(self, section):
        if not section.name.startswith(".zdebug"):  # (a .debug_X standing for a .zdebug_X: as it is)
            return section
        section.stream.seek(0)
        head = section.stream.read(12)
        if len(head) < 12 or head[:4] != b"ZLIB":
            raise ELFCompressionError("a .zdebug section without its ZLIB header")
        size = int.from_bytes(head[4:], "big")
        if size > self.max_inflated:
            raise ELFCompressionError(f"declares {size} bytes inflated, more than this file can hold")
        stream = section.stream
        inflate = lambda: self._kept_inflated(section.name, section.global_offset, section.size, size,
                                              lambda: _inflate(stream.getvalue()[12:], size))
        if isinstance(stream, _LazyStream):
            return section._replace(stream=_LazyStream(inflate), size=size)
        return section._replace(stream=io.BytesIO(inflate()), size=size)


def _inflate(data: bytes, size: int) -> bytes:
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, size + 1)
    if len(out) != size or not inflater.eof:
        raise ELFCompressionError(f"the zlib stream does not inflate to the {size} bytes its header declares")
    return out


@dataclass(frozen=True)
class Symbol:
    """A function symbol from .symtab (names are the ELF ones: `main.(*T).M`, `runtime.memmove.abi0`)."""

    name: str
    address: int
    size: int

    @property
    def is_abi0(self) -> bool:
        """Stack-ABI code: a `.abi0` symbol (assembly, or a wrapper), or a name with no package,
        which the Go compiler never writes: assembly only called from assembly, which keeps its
        bare name (the runtime's `debugCall256`; its unit's producer says regabi all the same)."""
        return self.name.endswith(".abi0") or "." not in self.name

    @property
    def go_name(self) -> str:
        """The name without the `.abi0` suffix that marks stack-ABI assembly and wrappers."""
        return self.name[: -len(".abi0")] if self.name.endswith(".abi0") else self.name


def _load_segments(path, elf: ELFFile) -> list[tuple[int, int, int]]:
    with reading(path, "program headers"):
        return [(seg["p_vaddr"], seg["p_filesz"], seg["p_offset"]) for seg in elf.iter_segments()
                if seg["p_type"] == "PT_LOAD"]


class GoBinary:
    """An opened Go ELF executable. Use as a context manager or call close()."""

    def __init__(self, path: str | os.PathLike, debug_file: str | os.PathLike | None = None):
        self.path = Path(path)
        self._files = []
        self._mapped: mmap.mmap | None = None  # the binary's file mapped (section_in_place)
        self._names_searched = 0  # _address_named's searches
        self.elf = self._open_elf(self.path)
        self.arch = self._detect_arch(self.elf)
        self.ptr_size = 8 if self.elf.elfclass == 64 else 4
        if not self._looks_like_go(self.elf):
            self.close()
            raise BinaryError(f"{self.path}: not a Go binary (no Go build info, pclntab or runtime symbols)")
        self._debug_file_arg = Path(debug_file) if debug_file else None
        # what give the stores that keep the symbol table and the inflated DWARF sections between
        # runs (an indexcache.SymbolStore, SectionStore, or None): set by GoProgram when it has a cache
        self.symbol_store: Callable[[], object] | None = None
        self.section_store: Callable[[], object] | None = None
        # what Capstone says of iced-x86's instructions may be kept in the cache directory (verify.machine)
        self.keeps_decoder_facts = False

    # ------------------------------------------------------------------ opening
    def _open_elf(self, path: Path) -> ELFFile:
        try:
            st = os.stat(path)
        except OSError as e:
            raise _open_error(path, e) from None
        if not stat.S_ISREG(st.st_mode):
            # never opened: a FIFO would block, a device could be endless or have side effects
            raise BinaryError(f"{path}: is {_file_kind(st.st_mode)}, not a binary")
        try:
            fh = open(path, "rb")
        except OSError as e:  # the file changed since the stat
            raise _open_error(path, e) from None
        if fh.read(4) != b"\x7fELF":
            fh.close()
            raise BinaryError(f"{path}: not an ELF file")
        fh.seek(0)
        try:
            elf = _ELFFile(fh)
            size = os.fstat(fh.fileno()).st_size
            elf.max_inflated = max_inflated_size(size)
            _check_sections(path, elf, size)
        except BinaryError:
            fh.close()
            raise
        except READ_ERRORS as e:  # a truncated or corrupt header
            fh.close()
            raise DamagedBinary(f"{path}: unreadable ELF file (truncated or damaged headers): {describe(e)}") from None
        self._files.append(fh)
        return elf

    @staticmethod
    def _detect_arch(elf: ELFFile) -> str:
        machine = elf["e_machine"]
        arch = _GOARCH_BY_MACHINE.get(machine, str(machine))
        if arch == "ppc64" and elf.little_endian:
            arch = "ppc64le"
        if arch == "mips" and elf.elfclass == 64:
            arch = "mips64"
        return arch

    @staticmethod
    def _looks_like_go(elf: ELFFile) -> bool:
        for name in (".go.buildinfo", ".gopclntab", ".note.go.buildid", ".data.rel.ro.gopclntab"):
            if elf.get_section_by_name(name) is not None:
                return True
        return False

    def own_files_after_fork(self) -> None:
        """In a forked process: give this process its own open file descriptions of the files
        this binary reads, at the same offsets, under the same descriptor numbers. A forked
        child shares its parent's descriptions, and so their offsets: one process's seek would
        move the file under another's read. Every object holding a descriptor keeps working.
        OSError when a file cannot be reopened as the same file (the caller opens the binary anew)."""
        for fh in self._files:
            fd = fh.fileno()
            before = os.fstat(fd)
            fresh = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            try:
                now = os.fstat(fresh)
                if (now.st_dev, now.st_ino) != (before.st_dev, before.st_ino):
                    raise OSError(f"{self.path}: reopened another file")
                os.lseek(fresh, os.lseek(fd, 0, os.SEEK_CUR), os.SEEK_SET)
                os.dup2(fresh, fd, inheritable=False)
            finally:
                os.close(fresh)

    def close(self) -> None:
        if self._mapped is not None:
            try:
                self._mapped.close()
            except BufferError:  # a view of it is still held: unmapped when the last one goes
                pass
            self._mapped = None
        for fh in self._files:
            fh.close()
        self._files.clear()

    def section_in_place(self, section) -> memoryview:
        """The bytes of one of the binary's own sections (not compressed, not SHT_NOBITS) as a
        view of the file mapped into memory: only the pages used are read (a lookup in the 9 MB
        function table of cmd/compile reads a few, where reading the section cost ~8 ms). The
        section lies in the file (_check_sections)."""
        if self._mapped is None:
            self._mapped = mmap.mmap(self.elf.stream.fileno(), 0, access=mmap.ACCESS_READ)
        start = section["sh_offset"]
        return memoryview(self._mapped)[start:start + section["sh_size"]]

    def __enter__(self) -> "GoBinary":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ memory
    def read_memory(self, address: int, size: int, elf: ELFFile | None = None) -> bytes:
        """Bytes at a virtual address, from the file's loadable segments."""
        elf = elf or self.elf
        segments = self._load_segments if elf is self.elf else _load_segments(self.path, elf)
        for start, filesz, offset in segments:
            if start <= address and address + size <= start + filesz:
                with reading(self.path, "program headers"):
                    elf.stream.seek(offset + address - start)
                    data = elf.stream.read(size)
                if len(data) != size:
                    raise DamagedBinary(f"{self.path}: truncated: the segment holding {address:#x} ends "
                                        f"past the end of the file")
                return data
        raise BinaryError(f"{self.path}: address {address:#x} is not in the file's loaded data")

    @cached_property
    def _load_segments(self) -> list[tuple[int, int, int]]:
        """(p_vaddr, p_filesz, p_offset) of each PT_LOAD segment, read once: pyelftools parses
        every program header again on each iter_segments()."""
        return _load_segments(self.path, self.elf)

    def _read_uint(self, data: bytes) -> int:
        return int.from_bytes(data, "little" if self.elf.little_endian else "big")

    # ------------------------------------------------------------------ identity
    @cached_property
    def go_version(self) -> str | None:
        """`go1.22.10`, from the build info blob; falls back to the DWARF producer."""
        with reading(self.path, ".go.buildinfo"):
            version = self._buildinfo_version()
        if version:
            return version.translate(_UNPRINTABLE)
        if self.has_dwarf:
            # the compile units' producer: "Go cmd/compile go1.22.10; regabi"
            with reading(self.path, "DWARF compile unit headers (.debug_info)"):
                cus = list(self.dwarf.iter_CUs())
            for cu in cus:
                producer = cu.get_top_DIE().attributes.get("DW_AT_producer")
                if producer is not None:
                    m = re.search(r"Go cmd/compile (go[0-9][^;\s]*)", producer.value.decode("utf-8", "replace"))
                    if m:
                        return m.group(1)
        return None

    def _buildinfo_version(self) -> str | None:
        sec = self.elf.get_section_by_name(".go.buildinfo")
        if sec is None:
            return None
        head = sec.data()[:32 + 64]
        if not head.startswith(_BUILDINFO_MAGIC):
            return None
        ptr_size, flags = head[14], head[15]
        if flags & 2:  # Go 1.18+: varint-length-prefixed strings inline after the header
            n, shift, i = 0, 0, 32
            data = sec.data()
            while True:
                b = data[i]
                n |= (b & 0x7F) << shift
                i += 1
                shift += 7
                if not b & 0x80:
                    break
            return data[i : i + n].decode("utf-8", "replace")
        # Go <= 1.17: a pointer to a string header (ptr, len) at offset 16
        try:
            hdr_addr = self._read_uint(head[16 : 16 + ptr_size])
            hdr = self.read_memory(hdr_addr, 2 * ptr_size)
            str_addr, str_len = self._read_uint(hdr[:ptr_size]), self._read_uint(hdr[ptr_size:])
            return self.read_memory(str_addr, str_len).decode("utf-8", "replace")
        except BinaryError:
            return None

    @cached_property
    def build_id(self) -> str | None:
        """The Go build ID from the `.note.go.buildid` note."""
        # type 4 (GOBUILDID); pyelftools names it after the GNU note type of the same number
        desc = self._note(".note.go.buildid", "Go", (4, "NT_GNU_GOLD_VERSION"))
        if isinstance(desc, bytes):
            desc = desc.decode("utf-8", "replace")
        return desc.rstrip("\x00") if desc is not None else None

    @cached_property
    def gnu_build_id(self) -> str | None:
        """The GNU build ID (`.note.gnu.build-id`, from an external linker), as hex."""
        desc = self._note(".note.gnu.build-id", "GNU", (3, "NT_GNU_BUILD_ID"))
        if desc is None:
            return None
        return desc.hex() if isinstance(desc, bytes) else str(desc)

    def _note(self, section: str, owner: str, types: tuple) -> bytes | str | None:
        """The descriptor of the first note of `owner` with one of `types` in note section `section`."""
        sec = self.elf.get_section_by_name(section)
        if not isinstance(sec, NoteSection):
            return None
        with reading(self.path, section):
            notes = list(sec.iter_notes())
        for note in notes:
            if note["n_name"] == owner and note["n_type"] in types:
                return note["n_desc"]
        return None

    # ------------------------------------------------------------------ symbols
    @cached_property
    def _symbol_store(self):
        return self.symbol_store() if self.symbol_store is not None else None

    @cached_property
    def _kept_symbols(self):
        """The table the symbol store keeps for this binary (indexcache.KeptSymbols), or None."""
        store = self._symbol_store
        return store.get() if store is not None else None

    @cached_property
    def _kept_others(self) -> dict[str, int | None]:
        return self._kept_symbols.others

    def _in_place(self):
        """The kept table, while the columns are not made: a few lookups are made in it."""
        return self._kept_symbols if "_symbol_columns" not in self.__dict__ else None

    @cached_property
    def _symbol_columns(self) -> tuple[list[str], list[int], list[int]]:
        """The function symbols' names, addresses and sizes, sorted by address: from the symbol
        store when it keeps this binary's (see indexcache.SymbolStore), else read (and kept). A
        command on one function makes Symbol objects of only the few it uses (symbol_named,
        symbol_at), looked up in the kept table without these columns; function_symbols makes
        them all."""
        kept = self._kept_symbols
        if kept is not None:
            return kept.names, kept.addresses, kept.sizes
        functions, by_name = self._read_symbol_table()
        self.__dict__["function_symbols"] = functions
        self.__dict__["_address_of_name"] = by_name
        columns = [s.name for s in functions], [s.address for s in functions], [s.size for s in functions]
        store = self._symbol_store
        if store is not None:
            store.put(*columns, _other_addresses(functions, by_name))
        return columns

    @cached_property
    def _address_of_name(self) -> dict[str, int]:
        self._symbol_columns  # (read from the file, it sets this)
        if "_address_of_name" in self.__dict__:
            return self.__dict__["_address_of_name"]
        names, addresses, _ = self._symbol_columns
        return _addresses_by_name(names, addresses, self._kept_others)

    def _address_named(self, name: str) -> int | None:
        """_address_of_name.get(name); the first few without making that table (a command on
        one function asks a name or two: the table of 30,000 names costs more than a search)."""
        if "_address_of_name" not in self.__dict__:
            kept = self._in_place()
            if kept is not None:
                if self._names_searched < _NAMES_SEARCHED:
                    self._names_searched += 1
                    known, address = kept.other_address(name)
                    if known:
                        return address
                    first = kept.positions(name, 1)  # the first of a name, as _addresses_by_name
                    return kept.address(first[0]) if first else None
                return self._address_of_name.get(name)
            names, addresses, _ = self._symbol_columns
            if "_address_of_name" not in self.__dict__ and self._names_searched < _NAMES_SEARCHED:
                self._names_searched += 1
                others = self._kept_others
                if name in others:
                    return others[name]
                try:
                    return addresses[names.index(name)]  # the first of a name, as _addresses_by_name
                except ValueError:
                    return None
        return self._address_of_name.get(name)

    def _read_symbol_table(self) -> tuple[list[Symbol], dict[str, int]]:
        """One pass over the symbol table (read as one array, see _raw_symbols): the function symbols, sorted by address, and every symbol's address
        by name."""
        tab = self.elf.get_section_by_name(".symtab")
        if not isinstance(tab, SymbolTableSection):
            tab = self._debug_symtab()
        functions: dict[int, Symbol] = {}
        addresses: dict[str, int] = {}
        if tab is None:
            # stripped (-ldflags=-s): the runtime's own function table still names every function
            from .pclntab import function_symbols
            return function_symbols(self), addresses
        if tab is not None:
            with reading(self.path, f"symbol table ({tab.name})"):
                symbols = _raw_symbols(tab, self.elf.elfclass, self.elf.little_endian)
            for name, addr, size, is_function in symbols:
                addresses.setdefault(name, addr)
                if not is_function or not addr:
                    continue
                # keep the first name seen for an address; prefer a non-.abi0 name if both exist, and
                # a function to a zero-size marker (runtime.text sits at the first function's address:
                # it hid internal/abi.(*RegArgs).Dump, and was given Dump's signature)
                old = functions.get(addr)
                if old is not None:
                    if size == 0 and old.size:
                        continue
                    if old.size or not size:
                        if not old.is_abi0:
                            continue
                functions[addr] = Symbol(name, addr, size)
        return sorted(functions.values(), key=lambda s: s.address), addresses

    @cached_property
    def function_symbols(self) -> list[Symbol]:
        """Every STT_FUNC symbol with an address, sorted by address."""
        columns = self._symbol_columns  # (read from the file, it sets this)
        if "function_symbols" in self.__dict__:
            return self.__dict__["function_symbols"]
        return list(map(Symbol, *columns))

    def symbol_named(self, name: str) -> Symbol | None:
        """The function symbol named `name` when exactly one is (None: none, or several)."""
        kept = self._in_place()
        if kept is not None:
            found = kept.positions(name, 2)
            return Symbol(name, kept.address(found[0]), kept.size(found[0])) if len(found) == 1 else None
        names = self._symbol_columns[0]
        if names.count(name) != 1:
            return None
        return self._symbol(names.index(name))

    def _symbol(self, i: int) -> Symbol:
        made = self.__dict__.get("function_symbols")
        if made is not None:
            return made[i]
        kept = self._in_place()
        if kept is not None:
            return Symbol(kept.name(i), kept.address(i), kept.size(i))
        names, addresses, sizes = self._symbol_columns
        return Symbol(names[i], addresses[i], sizes[i])

    def data_symbol(self, name: str) -> int | None:
        """Address of any symbol (e.g. `runtime.types`), or None. A symbol of a separate debug file
        (or a DWARF twin) is placed in this binary by its section: same section, same offset."""
        addr = self._address_named(name)
        if addr is None or self.symbols_from != "debug file":
            return addr
        return same_place(self.debug_elf, self.elf, addr)

    @cached_property
    def symbols_from(self) -> str:
        """Where the function names come from: "symbol table", "debug file" (its .symtab), or
        "function table" (.gopclntab: the binary has no symbol table)."""
        if isinstance(self.elf.get_section_by_name(".symtab"), SymbolTableSection):
            return "symbol table"
        return "debug file" if self._debug_symtab() is not None else "function table"

    @cached_property
    def build_info(self):
        """The `.go.buildinfo` contents (dwarfgo.buildinfo.BuildInfo), or None."""
        from .buildinfo import read_buildinfo
        return read_buildinfo(self)

    def _debug_symtab(self):
        dbg = self.debug_elf
        if dbg is self.elf:
            return None
        tab = dbg.get_section_by_name(".symtab")
        return tab if isinstance(tab, SymbolTableSection) else None

    @property
    def _symbol_addresses(self):
        """The function symbols' addresses in order (a list, or the kept table's array)."""
        kept = self._in_place()
        return kept.address_column if kept is not None else self._symbol_columns[1]

    @cached_property
    def symbols_by_name(self) -> dict[str, Symbol]:
        return {s.name: s for s in self.function_symbols}

    def symbol_at(self, address: int) -> Symbol | None:
        """The function symbol containing `address` (for code pointers)."""
        i = bisect.bisect_right(self._symbol_addresses, address) - 1
        if i < 0:
            return None
        sym = self._symbol(i)
        if sym.address <= address < sym.address + max(sym.size, 1):
            return sym
        return None

    # ------------------------------------------------------------------ DWARF
    @cached_property
    def debug_elf(self) -> ELFFile:
        """The ELF file holding the DWARF: the binary itself or its separate debug file."""
        if self._debug_file_arg is not None:
            return self._open_debug(self._debug_file_arg, expected_crc=None)
        if _has_dwarf_sections(self.elf):
            return self.elf
        with reading(self.path, ".gnu_debuglink"):
            link = self.elf.get_dwarf_link() if self.elf.get_section_by_name(".gnu_debuglink") else None
        if link is not None:
            name = link.filename.decode("utf-8", "replace") if isinstance(link.filename, bytes) else link.filename
            for candidate in _debuglink_candidates(self.path, name):
                if candidate.is_file():
                    return self._open_debug(candidate, expected_crc=link.checksum)
            raise NoDwarfError(
                f"{self.path}: the DWARF was split into {name!r} (.gnu_debuglink) but that file was not found "
                f"next to the binary, in .debug/ or under /usr/lib/debug; pass it with --debug-file"
            )
        return self.elf

    def _open_debug(self, path: Path, expected_crc: int | None) -> ELFFile:
        if expected_crc is not None:
            with open(path, "rb") as fh:
                crc = 0
                for block in iter(lambda: fh.read(1 << 20), b""):
                    crc = zlib.crc32(block, crc)
            if crc != expected_crc:
                raise NoDwarfError(
                    f"{path}: debug file does not belong to {self.path} (CRC {crc:#010x}, "
                    f".gnu_debuglink expects {expected_crc:#010x})"
                )
        elf = self._open_elf(path)
        if not _has_dwarf_sections(elf):
            raise NoDwarfError(f"{path}: debug file has no DWARF sections")
        return elf

    def no_dwarf_advice(self, what: str = "") -> str:
        """The one line for a binary without DWARF: what works without it, what needs it, and the
        command that rebuilds the same program with it (from .go.buildinfo)."""
        subject = f"{what} in {self.path}" if what else str(self.path)
        if self.symbols_from == "function table":
            how = "and without a symbol table (built with -ldflags='-s -w')"
            works = ("its function names and addresses come from the Go function table (.gopclntab), so "
                     "`dwarfgo funcs` lists them")
        else:
            how = "(built with -ldflags=-w, or stripped)"
            works = "its function names and addresses come from its symbol table (`dwarfgo funcs` lists them)"
        info = self.build_info
        if info is not None:
            rebuild = f"rebuild the same program with DWARF: {info.rebuild_command()}"
        else:
            rebuild = "rebuild the same program without -s -w"
        return (f"{subject}: Go binary without DWARF {how}; {works}; `sig` and `structs` give what the runtime's type tables hold (methods whose type "
                f"reaches an interface, argument words), and `probe` and `trace` work on those methods and print "
                f"other functions' argument words untyped, in hex; the other signatures need DWARF: "
                f"{rebuild}; then pass that twin with --debug-from TWIN (or a split-off debug file with "
                f"--debug-file)")

    def require_dwarf(self, what: str = "") -> None:
        """NoDwarfError with advice if there is no DWARF (a split-off debug file that is missing is
        its own error)."""
        if not _has_dwarf_sections(self.debug_elf):
            raise NoDwarfError(self.no_dwarf_advice(what))

    @property
    def debug_path(self) -> Path | None:
        """The separate debug file holding the DWARF, or None (in the binary, or none found)."""
        try:
            elf = self.debug_elf
        except NoDwarfError:
            return None
        return None if elf is self.elf else Path(elf.stream.name)

    @property
    def has_dwarf(self) -> bool:
        try:
            return _has_dwarf_sections(self.debug_elf)
        except NoDwarfError:
            return False

    @cached_property
    def dwarf(self):
        """pyelftools DWARFInfo; raises NoDwarfError with advice when absent."""
        elf = self.debug_elf
        if not _has_dwarf_sections(elf):
            raise NoDwarfError(self.no_dwarf_advice())
        if self.section_store is not None:
            elf.inflated_store = self.section_store()
        with reading(self.path, "DWARF sections"):
            return elf.get_dwarf_info(relocate_dwarf_sections=False)


def _addresses_by_name(names: list[str], addresses: list[int], others: dict[str, int | None]) -> dict[str, int]:
    """Every symbol's address by name, from the function symbols' names and addresses (the first
    of a name) and what _other_addresses kept: the names whose address is another, or that have
    none (None)."""
    by_name = dict(zip(reversed(names), reversed(addresses)))  # (the first of a name is put last)
    for name, address in others.items():
        if address is None:
            by_name.pop(name, None)
        else:
            by_name[name] = address
    return by_name


def _other_addresses(functions: list[Symbol], by_name: dict[str, int]) -> dict[str, int | None]:
    """What _addresses_by_name needs besides the function symbols to give `by_name` again (a
    stripped binary's functions, named by its function table, have no address by name)."""
    rebuilt = _addresses_by_name([s.name for s in functions], [s.address for s in functions], {})
    others: dict[str, int | None] = {name: address for name, address in by_name.items()
                                     if rebuilt.get(name) != address}
    others.update((name, None) for name in rebuilt if name not in by_name)
    return others


STT_FUNC = 2


def _raw_symbols(tab: SymbolTableSection, elfclass: int, little_endian: bool) -> list[tuple[str, int, int, bool]]:
    """(name, value, size, is a function) of every entry of a symbol table, decoded as one array
    with `struct` (pyelftools' iter_symbols builds an object per symbol: 30,000 in cmd/compile
    take 2 s). _check_sections has checked the entry size; a name offset outside the string
    table gives the name ''."""
    order = "<" if little_endian else ">"
    data = tab.data()
    strings = tab.stringtable.data()
    if elfclass == 64:  # Elf64_Sym: name, info, other, shndx, value, size
        entry = struct.Struct(order + "IBBHQQ")
        rows = ((name_at, value, size, info) for name_at, info, _, _, value, size in
                entry.iter_unpack(data[: len(data) - len(data) % entry.size]))
    else:  # Elf32_Sym: name, value, size, info, other, shndx
        entry = struct.Struct(order + "IIIBBH")
        rows = ((name_at, value, size, info) for name_at, value, size, info, _, _ in
                entry.iter_unpack(data[: len(data) - len(data) % entry.size]))
    out = []
    limit = len(strings)
    find = strings.find
    for name_at, value, size, info in rows:
        end = find(b"\0", name_at)
        name = strings[name_at:end].decode("utf-8", "replace") if 0 < name_at < limit and end >= 0 else ""
        out.append((name, value, size, info & 0xF == STT_FUNC))
    return out


_UNPRINTABLE = {c: "?" for c in list(range(32)) + [127]}


def same_place(source: ELFFile, target: ELFFile, address: int) -> int | None:
    """`address` of `source` in `target`: the same offset in the loaded section of the same name."""
    for sec in source.iter_sections():
        h = sec.header
        if h["sh_flags"] & 2 and h["sh_addr"] <= address < h["sh_addr"] + max(h["sh_size"], 1):  # SHF_ALLOC
            other = target.get_section_by_name(sec.name)
            if other is None or not other["sh_flags"] & 2:
                return None
            return address - h["sh_addr"] + other["sh_addr"]
    return None


def _open_error(path, e: OSError) -> BinaryError:
    """The one-line error for a file that cannot be looked at or opened."""
    if isinstance(e, FileNotFoundError):
        return BinaryError(f"{path}: no such file")
    if isinstance(e, IsADirectoryError):
        return BinaryError(f"{path}: is a directory, not a binary")
    if isinstance(e, PermissionError):
        return BinaryError(f"{path}: permission denied")
    return BinaryError(f"{path}: cannot open: {e.strerror or e}")


def _file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _check_sections(path: Path, elf: ELFFile, file_size: int) -> None:
    """Every section's bytes lie inside the file, symbol tables have their entry size, and a
    compressed section declares a plausible inflated size: sizes from a damaged header are never
    believed (a read of 2^40 bytes, a symbol count of 2^40)."""
    sym_size = 24 if elf.elfclass == 64 else 16
    limit = max_inflated_size(file_size)
    for sec in elf.iter_sections():
        h = sec.header
        if h["sh_type"] == "SHT_NOBITS" or h["sh_size"] == 0:
            continue
        name = sec.name or f"#{h['sh_name']}"
        if h["sh_offset"] + h["sh_size"] > file_size:
            raise DamagedBinary(f"{path}: truncated or damaged: section {name} (offset {h['sh_offset']:#x}, size "
                                f"{h['sh_size']:#x}) ends past the end of the file ({file_size} bytes)")
        if h["sh_type"] in ("SHT_SYMTAB", "SHT_DYNSYM") and h["sh_entsize"] != sym_size:
            raise DamagedBinary(f"{path}: damaged section header of {name}: entry size {h['sh_entsize']}, "
                                f"not {sym_size}")
        inflated = None
        if h["sh_flags"] & SHF_COMPRESSED:
            inflated = sec.data_size  # the compression header's ch_size
        elif name.startswith(".zdebug"):
            elf.stream.seek(h["sh_offset"])
            head = elf.stream.read(12)
            if len(head) == 12 and head[:4] == b"ZLIB":
                inflated = int.from_bytes(head[4:], "big")
        if inflated is not None and inflated > limit:
            raise DamagedBinary(f"{path}: damaged compressed section {name}: it declares {inflated} bytes "
                                f"inflated, more than the {limit} a file of {file_size} bytes may inflate to (a "
                                f"damaged header, or a decompression bomb)")


def _has_dwarf_sections(elf: ELFFile) -> bool:
    return elf.has_section(".debug_info") or elf.has_section(".zdebug_info")


def _debuglink_candidates(binary: Path, name: str) -> list[Path]:
    # The debuglink names a file; it must not escape into other directories.
    if "/" in name or name in ("", ".", ".."):
        return []
    here = binary.resolve().parent
    return [here / name, here / ".debug" / name, Path("/usr/lib/debug") / here.relative_to("/") / name]


_GO_VERSION_RE = re.compile(r"go(\d+)\.(\d+)(?:\.(\d+))?")


def parse_go_version(text: str | None) -> tuple[int, int, int] | None:
    """`go1.22.10` -> (1, 22, 10); `go1.21rc2` -> (1, 21, 0)."""
    if not text:
        return None
    m = _GO_VERSION_RE.search(text)
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
