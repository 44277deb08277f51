"""A DWARF twin (`--debug-from TWIN`): the same program rebuilt without `-s -w`, whose DWARF
and symbol table describe a stripped binary once dwarfgo has proved that they are the same
program.

Proof, in two steps:
  * the build: same Go version, main package and module, dependencies and build settings
    (`.go.buildinfo`), the strip flags `-s -w` inside -ldflags (and the VCS time) aside;
  * per function used: the same name, entry and code end in both function tables
    (.gopclntab), and the same machine code. Dropping the symbol table and DWARF shrinks the
    build info, which can move the data after it: an instruction may then differ in the
    address it refers to, and is accepted only if both addresses are the same offset in the
    same section, or the same offset in a read-only object (a symbol of the twin) whose bytes
    are the same in both, pointer words pointing to the same data again (amd64; other
    architectures need identical bytes). A function that moved is refused, never relocated.
"""

from __future__ import annotations

import bisect
from functools import cached_property

from .binary import GoBinary, Symbol, same_place
from .errors import DwarfgoError, NoDwarfError
from .pclntab import PclnFunction, read_table


_MAX_OBJECTS = 256  # data objects one proof of "same data" may visit


class TwinMismatch(DwarfgoError):
    """The twin is not the stripped binary's program (or not for this function)."""


class DwarfTwin:
    def __init__(self, stripped: GoBinary, twin_path):
        self.stripped = stripped
        self.twin = GoBinary(twin_path)
        self._verified: dict[int, str | None] = {}
        self._proved: dict[tuple[int, int], bool] = {}  # (twin address, stripped address): same data?

    def close(self) -> None:
        self.twin.close()

    # ------------------------------------------------------------ the build
    def check_build(self) -> None:
        """Raises TwinMismatch naming every difference of version and build settings."""
        t, s = self.twin, self.stripped
        if not t.has_dwarf:
            raise NoDwarfError(f"--debug-from {t.path}: the twin has no DWARF either; rebuild it without -s -w")
        if t.arch != s.arch:
            raise TwinMismatch(f"--debug-from {t.path}: built for {t.arch}, {s.path} for {s.arch}")
        a, b = s.build_info, t.build_info
        if a is None or b is None:
            which = s.path if a is None else t.path
            raise TwinMismatch(f"--debug-from: {which} has no Go build information (.go.buildinfo): cannot prove "
                               f"the twin is the same build")
        diffs = []
        if a.go_version != b.go_version:
            diffs.append(f"Go version {b.go_version} (stripped: {a.go_version})")
        if (a.path, a.module, a.module_version) != (b.path, b.module, b.module_version):
            diffs.append(f"main package {b.path} of module {b.module} {b.module_version} (stripped: {a.path} of "
                         f"{a.module} {a.module_version})")
        if a.deps != b.deps:
            only = sorted(set(a.deps) ^ set(b.deps))
            diffs.append(f"dependencies ({len(only)} lines differ, e.g. {only[0]!r})" if only else "dependency order")
        sa, sb = a.comparable_settings(), b.comparable_settings()
        for key in dict.fromkeys(list(sa) + list(sb)):
            if sa.get(key) != sb.get(key):
                diffs.append(f"{key}={sb.get(key, '(unset)')} (stripped: {sa.get(key, '(unset)')})")
        if diffs:
            raise TwinMismatch(f"--debug-from {t.path} is another build than {s.path}: " + "; ".join(diffs)
                               + f". Rebuild the twin with: {a.rebuild_command(str(t.path))}")

    # ------------------------------------------------------------ per function
    @cached_property
    def _stripped_table(self) -> dict[int, PclnFunction]:
        return _by_entry(self.stripped)

    @cached_property
    def _twin_table(self) -> dict[int, PclnFunction]:
        return _by_entry(self.twin)

    def refusal(self, sym: Symbol) -> str | None:
        """None if the twin's description of `sym` holds for the stripped binary, else why not."""
        if sym.address not in self._verified:
            self._verified[sym.address] = self._check(sym)
        return self._verified[sym.address]

    def verify(self, sym: Symbol) -> None:
        reason = self.refusal(sym)
        if reason:
            raise TwinMismatch(f"{sym.name}: the twin {self.twin.path} does not describe it in {self.stripped.path}: "
                               f"{reason}")

    def _check(self, sym: Symbol) -> str | None:
        mine = self._twin_table.get(sym.address)
        theirs = self._stripped_table.get(sym.address)
        if mine is None:
            return f"the twin's function table has no function at {sym.address:#x}"
        if theirs is None or theirs.name != mine.name:
            elsewhere = [f.entry for f in self._stripped_table.values() if f.name == mine.name]
            where = f"; the stripped binary's {mine.name} is at {elsewhere[0]:#x}" if elsewhere else ""
            found = f"{theirs.name}" if theirs else "no function"
            return f"the layout moved: the stripped binary has {found} at {sym.address:#x}{where} (not relocated)"
        if theirs.end != mine.end:
            return (f"code size differs: {mine.size} bytes in the twin, {theirs.size} in the stripped binary "
                    f"(another build)")
        code_twin = self.twin.read_memory(mine.entry, mine.size)
        code_stripped = self.stripped.read_memory(theirs.entry, theirs.size)
        if code_twin == code_stripped:
            return None
        if self.stripped.arch != "amd64":
            first = next(i for i, (x, y) in enumerate(zip(code_twin, code_stripped)) if x != y)
            return f"machine code differs at {mine.entry + first:#x} (data references are compared only on amd64)"
        return _compare_amd64(self._same_data, mine.entry, code_twin, code_stripped)

    @cached_property
    def _twin_objects(self) -> tuple[list[int], list[tuple[int, int]]]:
        """The twin's data symbols (start, size), sorted, for the data references that moved."""
        from elftools.elf.sections import SymbolTableSection

        tab = self.twin.elf.get_section_by_name(".symtab")
        spans = []
        if isinstance(tab, SymbolTableSection):
            for sym in tab.iter_symbols():
                if sym["st_info"]["type"] == "STT_OBJECT" and sym["st_size"] > 0:
                    spans.append((sym["st_value"], sym["st_size"]))
        spans.sort()
        return [a for a, _ in spans], spans

    def _same_data(self, in_twin: int, in_stripped: int) -> bool:
        """Do the two addresses name the same data? The same offset in the same section, or the
        same offset in a read-only object (the twin's symbol) whose bytes are the same in both,
        where a pointer-sized word may differ only if it points to the same data again (a
        generic dictionary pointing to itself and to type descriptors that moved). Proved as a
        bisimulation: a pair assumed equal while its own words are compared, kept only if the
        whole proof holds; at most _MAX_OBJECTS objects per proof."""
        key = (in_twin, in_stripped)
        if key not in self._proved:
            assumed: set[tuple[int, int]] = set()
            ok = self._same_object(in_twin, in_stripped, assumed)
            if ok:
                self._proved.update(dict.fromkeys(assumed, True))
            self._proved[key] = ok
        return self._proved[key]

    def _same_object(self, in_twin: int, in_stripped: int, assumed: set) -> bool:
        if same_place(self.twin.elf, self.stripped.elf, in_twin) == in_stripped:
            return True
        if (in_twin, in_stripped) in assumed or self._proved.get((in_twin, in_stripped)):
            return True
        if len(assumed) >= _MAX_OBJECTS:
            return False
        starts, spans = self._twin_objects
        i = bisect.bisect_right(starts, in_twin) - 1
        if i < 0:
            return False
        start, size = spans[i]
        if not start <= in_twin < start + size or size > 1 << 20:
            return False
        other_start = in_stripped - (in_twin - start)
        sec = _section_of(self.twin.elf, start)
        if sec is None or sec["sh_flags"] & 1 or sec["sh_type"] == "SHT_NOBITS":  # writable or bss: no content
            return False
        other = _section_of(self.stripped.elf, other_start)
        if other is None or other.name != sec.name:
            return False
        try:
            a, b = self.twin.read_memory(start, size), self.stripped.read_memory(other_start, size)
        except DwarfgoError:
            return False
        if a == b:
            return True
        assumed.add((in_twin, in_stripped))
        ptr = self.twin.ptr_size
        order = "little" if self.twin.elf.little_endian else "big"
        for off in range(0, size, ptr):
            wa, wb = a[off : off + ptr], b[off : off + ptr]
            if wa == wb:
                continue
            if len(wa) < ptr or start % ptr:
                return False
            pa, pb = int.from_bytes(wa, order), int.from_bytes(wb, order)
            if not self._same_object(pa, pb, assumed):
                return False
        return True

def _by_entry(binary: GoBinary) -> dict[int, PclnFunction]:
    table = read_table(binary)
    if table is None:
        raise TwinMismatch(f"{binary.path}: no Go function table (.gopclntab): not a Go binary, or damaged")
    return {f.entry: f for f in table.functions}


def _section_of(elf, address: int):
    for sec in elf.iter_sections():
        h = sec.header
        if h["sh_flags"] & 2 and h["sh_addr"] <= address < h["sh_addr"] + h["sh_size"]:
            return sec
    return None


def _compare_amd64(same_data, entry: int, a: bytes, b: bytes) -> str | None:
    """Instruction by instruction: equal bytes, or the same instruction whose only difference is
    an address of the same data in both binaries (`same_data(twin address, stripped address)`)."""
    import capstone
    from capstone import x86_const

    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    md.detail = True
    ia, ib = list(md.disasm(a, entry)), list(md.disasm(b, entry))
    if sum(i.size for i in ia) != len(a) or sum(i.size for i in ib) != len(b):
        return "machine code does not disassemble to the end (data in the code?): cannot compare"
    for x, y in zip(ia, ib):
        if x.bytes == y.bytes:
            continue
        what = f"machine code differs at {x.address:#x} ({x.mnemonic} {x.op_str} / {y.mnemonic} {y.op_str})"
        if x.size != y.size or x.address != y.address or x.opcode != y.opcode or x.modrm != y.modrm \
                or x.prefix != y.prefix or x.rex != y.rex or len(x.operands) != len(y.operands):
            return what
        for p, q in zip(x.operands, y.operands):
            if p.type != q.type:
                return what
            if p.type == x86_const.X86_OP_MEM:
                if (p.mem.base, p.mem.index, p.mem.scale, p.mem.segment) != (q.mem.base, q.mem.index, q.mem.scale,
                                                                              q.mem.segment):
                    return what
                if p.mem.disp == q.mem.disp:
                    continue
                if p.mem.base == x86_const.X86_REG_RIP:
                    ta, tb = x.address + x.size + p.mem.disp, y.address + y.size + q.mem.disp
                else:
                    ta, tb = p.mem.disp, q.mem.disp
                if not same_data(ta, tb):
                    return what + ": not the same data"
            elif p.type == x86_const.X86_OP_IMM:
                if p.imm != q.imm and not same_data(p.imm, q.imm):
                    return what
            elif p.reg != q.reg:
                return what
    return None
