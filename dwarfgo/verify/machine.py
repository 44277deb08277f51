"""Cross-check 2: the machine code (Capstone; iced-x86 finds the instruction boundaries of
amd64 bodies).

* Prologue: how the function checks its stack bound: through g in R14 (amd64) / R28
  (arm64) with the register ABI, through thread-local storage under ABI0 on amd64,
  or not at all (NOSPLIT / frameless leaf).
* The morestack tail: a regabi function stores every register argument at its spill
  slot before calling runtime.morestack*; those stores are an independent witness of
  the register assignment (register, SP offset, width).
* RET sites: every return instruction (probes on them replace uretprobe, which
  breaks Go programs); the jump back to the entry after morestack is not an exit.
"""

from __future__ import annotations

import itertools
import operator
import os
import re
import struct
from dataclasses import dataclass, field
from typing import NamedTuple

# capstone (and iced-x86, which sweeps amd64 bodies) are imported on first use: commands that
# never read machine code (`funcs`, `structs`) do not pay for their import
capstone = x86_const = arm64_const = None
ctypes = None  # imported with Capstone (its binding's records are read with it): ~3 ms a process without it
iced_x86 = None

from ..abi.assign import FunctionLayout, RegisterPiece
from ..binary import GoBinary
from ..errors import DwarfgoError


@dataclass(frozen=True)
class SpillStore:
    register: str  # Go name
    sp_offset: int  # from SP at entry
    width: int


STACK_PREEMPT = 0xFFFFFFFFFFFFFADE  # stackguard0 value that requests preemption (uintptr(-1314))


@dataclass
class StackCheck:
    """The prologue's stack-bound check (shown by `dwarfgo abi`; the entry probe of bpftrace 0.23+
    sits on its decision branch).

    `keep` is the condition under which the prologue does NOT branch to morestack, written
    with `{sp}` (SP at entry) and `{guard}` (g.stackguard0) for the emitter to fill in;
    comparisons are unsigned, as the machine code's."""

    kind: str  # "g-register" (regabi g in R14/R28), "tls" (ABI0 amd64), "none"
    shape: str = ""  # "small", "frame" (SP - N), "huge" (SP - N with underflow check), "huge-preempt" (Go <= 1.16)
    keep: str | None = None
    guard_offset: int = 16  # offset of stackguard0 in g as the prologue reads it
    branch_address: int | None = None  # the first conditional branch to the tail
    tail_address: int | None = None  # the morestack tail the branch goes to
    sp_adjust: int = 0
    decision_address: int | None = None  # the last conditional branch to the tail: whether to grow
    decision: str | None = None  # its mnemonic (jbe, b.ls): the flags at it say if the call proceeds


@dataclass(frozen=True)
class MorestackCall:
    """The morestack tail's call: after it returns, the tail jumps back to the entry."""

    site: int  # the CALL/BL instruction
    return_address: int  # the instruction after it: the return address morestack sees
    target: int  # runtime.morestack* (link-time addresses)


@dataclass
class MachineReport:
    prologue: str  # human summary
    stack_check: StackCheck
    frame_size: int | None
    spills: list[SpillStore] = field(default_factory=list)
    morestack_target: str | None = None
    morestack_call: MorestackCall | None = None
    ret_sites: list[int] = field(default_factory=list)  # absolute addresses
    instruction_starts: list[int] = field(default_factory=list)  # (or a _SweptStarts: as a list)
    problems: list[str] = field(default_factory=list)


_X86_REG = {}
for _go, _names in {
    "AX": ("rax", "eax", "ax", "al"), "BX": ("rbx", "ebx", "bx", "bl"), "CX": ("rcx", "ecx", "cx", "cl"),
    "DX": ("rdx", "edx", "dx", "dl"), "DI": ("rdi", "edi", "di", "dil"), "SI": ("rsi", "esi", "si", "sil"),
    "BP": ("rbp", "ebp", "bp", "bpl"), "SP": ("rsp", "esp", "sp", "spl"),
}.items():
    for _n in _names:
        _X86_REG[_n] = _go
for _i in range(8, 16):
    for _suffix in ("", "d", "w", "b"):
        _X86_REG[f"r{_i}{_suffix}"] = f"R{_i}"
for _i in range(16):
    _X86_REG[f"xmm{_i}"] = f"X{_i}"


def _arm64_reg(name: str) -> str:
    if name[0] in "xw" and name[1:].isdigit():
        return f"R{name[1:]}"
    if name[0] in "dsqhb" and name[1:].isdigit():
        return f"F{name[1:]}"
    return name.upper()


def _import_capstone() -> None:
    global capstone, x86_const, arm64_const, ctypes
    if capstone is None:
        import ctypes as c
        import capstone as cs
        from capstone import arm64_const as arm64, x86_const as x86
        ctypes, capstone, x86_const, arm64_const = c, cs, x86, arm64


_DECODERS: dict[tuple[str, bool], object] = {}  # (arch, detail) -> Cs, made once per process
HEAD = 16  # instructions the prologue checks read (the stack check, the frame size)


def _decoder(arch: str, detail: bool):
    _import_capstone()
    md = _DECODERS.get((arch, detail))
    if md is None:
        if arch == "amd64":
            md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        elif arch == "arm64":
            md = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
        else:
            raise NotImplementedError(f"machine-code check for {arch}")
        md.detail = detail
        _DECODERS[(arch, detail)] = md
    return md


def disassemble(binary: GoBinary, address: int, size: int):
    """Every instruction of [address, address+size), with operand details (Capstone stops at
    the first bytes that do not decode)."""
    code = binary.read_memory(address, size)
    return list(_decoder(binary.arch, True).disasm(code, address))


@dataclass
class _Body:
    """What the checks read of a function's machine code: the address of every instruction (the
    linear sweep Capstone makes) and of its RET instructions, the first HEAD instructions (the
    prologue), and the instructions from any instruction start on (the morestack tail), whose
    operands the checks may read."""

    starts: list[int]
    rets: list[int]
    head: list
    _from: object  # (address) -> iterator of detailed instructions from that instruction start

    def from_address(self, address: int):
        return self._from(address)


def _full_body(insns) -> _Body:
    """The body from a complete detailed disassembly (the reference for the light one)."""
    by_address = {insn.address: k for k, insn in enumerate(insns)}
    return _Body([i.address for i in insns], [i.address for i in insns if i.mnemonic == "ret"], insns[:HEAD],
                 lambda address: iter(insns[by_address[address]:]))


class _SweptInsn:
    """One instruction of the detail-less sweep: its address, size, mnemonic and operand text,
    as Capstone printed them; its operands (and anything else of a detailed instruction) are
    decoded from its own bytes when first asked for. x86 and arm64 decode each instruction from
    its start alone, so that is the instruction a detailed sweep would give. An x86
    instruction's operands are read from Capstone's detail record directly (`_x86_operands`:
    the binding copies the whole record into Python objects, several times the cost)."""

    __slots__ = ("address", "size", "mnemonic", "op_str", "_code", "_offset", "_decoder", "_detailed", "_operands")

    def __init__(self, address: int, size: int, mnemonic: str, op_str: str, code: bytes, offset: int, decoder):
        self.address, self.size, self.mnemonic, self.op_str = address, size, mnemonic, op_str
        self._code, self._offset, self._decoder, self._detailed = code, offset, decoder, None
        self._operands = None

    @property
    def operands(self) -> list:
        if self._operands is None:
            ops = None
            if self._decoder.arch == capstone.CS_ARCH_X86:
                ops = _x86_operands(self._decoder, self._code[self._offset:self._offset + self.size], self.address)
            self._operands = ops if ops is not None else self.__getattr__("operands")
        return self._operands

    def reg_name(self, reg_id: int) -> str | None:
        return _reg_name(self._decoder, reg_id)

    def __getattr__(self, name):  # _cs ...: the detailed instruction's
        if self._detailed is None:
            self._detailed = next(self._decoder.disasm(self._code[self._offset:self._offset + self.size], self.address, 1))
        return getattr(self._detailed, name)


_REG_NAMES: dict[tuple[int, int], str | None] = {}  # (Capstone arch, register id) -> name


def _reg_name(md, reg_id: int) -> str | None:
    """Capstone's name of a register (what CsInsn.reg_name gives: the same C call)."""
    key = (md.arch, reg_id)
    name = _REG_NAMES.get(key, _REG_NAMES)
    if name is _REG_NAMES:
        name = _REG_NAMES[key] = md.reg_name(reg_id)
    return name


class _X86Mem(NamedTuple):
    """Capstone's x86 memory operand (X86OpMem), field for field."""
    segment: int
    base: int
    index: int
    scale: int
    disp: int


class _X86Operand(NamedTuple):
    """Capstone's x86 operand (X86Op) as its binding reads it: `reg`, `imm` and `mem` are
    the one value field read three ways, as the binding's properties do."""
    type: int
    reg: int
    imm: int
    mem: _X86Mem
    size: int
    access: int
    avx_bcast: int
    avx_zero_opmask: bool


_X86_DETAIL = None  # offsets in Capstone's detail record (from its binding's ctypes types), or False


def _x86_detail_layout():
    global _X86_DETAIL
    if _X86_DETAIL is None:
        try:
            from capstone import x86 as cx
            detail, op, mem, value = capstone._cs_detail, cx.X86Op, cx.X86OpMem, cx.X86OpValue
            assert [n for n, _ in op._fields_] == ["type", "value", "size", "access", "avx_bcast", "avx_zero_opmask"]
            assert [n for n, _ in mem._fields_] == ["segment", "base", "index", "scale", "disp"]
            assert [n for n, _ in value._fields_] == ["reg", "imm", "mem"]
            x86 = detail.arch.offset + capstone._cs_arch.x86.offset
            assert op.type.offset == 0 and [getattr(mem, n).offset for n, _ in mem._fields_] == [0, 4, 8, 12, 16]
            assert ctypes.sizeof(mem) == _X86_MEM.size and value.reg.offset == value.imm.offset == value.mem.offset == 0
            assert ctypes.sizeof(ctypes.c_uint) == 4
            _X86_DETAIL = (x86, ctypes.sizeof(cx.CsX86), cx.CsX86.op_count.offset, cx.CsX86.operands.offset,
                           ctypes.sizeof(op), op.value.offset, op.size.offset, op.access.offset, op.avx_bcast.offset,
                           op.avx_zero_opmask.offset)
            assert callable(capstone._cs.cs_disasm) and callable(capstone._cs.cs_free)
        except (AttributeError, AssertionError, ImportError):
            _X86_DETAIL = False
    return _X86_DETAIL or None


def _x86_operands(md, code: bytes, address: int) -> list[_X86Operand] | None:
    """The operands of the one x86 instruction `code` holds, read from the detail record
    Capstone's C decoder fills (md has details on); None where that cannot be done (then the
    binding's own CsInsn is used)."""
    layout = _x86_detail_layout()
    if layout is None or not md.detail:
        return None
    x86, x86_size, count_at, operands_at, op_size, value_at, size_at, access_at, bcast_at, zero_at = layout
    insns = ctypes.POINTER(capstone._cs_insn)()
    count = capstone._cs.cs_disasm(md.csh, code, len(code), address, 1, ctypes.byref(insns))
    if count <= 0:
        return None
    try:
        where = ctypes.cast(insns[0].detail, ctypes.c_void_p).value
        if not where:
            return None
        raw = ctypes.string_at(where + x86, x86_size)
    finally:
        capstone._cs.cs_free(insns, count)
    out = []
    for k in range(raw[count_at]):
        at = operands_at + k * op_size
        value = at + value_at
        out.append(_X86Operand(
            _UINT.unpack_from(raw, at)[0], _UINT.unpack_from(raw, value)[0], _INT64.unpack_from(raw, value)[0],
            _X86Mem._make(_X86_MEM.unpack_from(raw, value)), raw[at + size_at], raw[at + access_at],
            _UINT.unpack_from(raw, at + bcast_at)[0], raw[at + zero_at] != 0))
    return out


# the C types of those fields, in the machine's own byte order (the record is in this process's memory)
_UINT, _INT64, _X86_MEM = struct.Struct("=I"), struct.Struct("=q"), struct.Struct("=IIIiq")


def _text(field: bytes) -> str:
    """A C string field of Capstone's instruction record, as Capstone's own binding decodes it."""
    return field.split(b"\0", 1)[0].decode("ascii")


_RECORD = None  # struct.Struct of (address, size, mnemonic, op_str) in Capstone's cs_insn, or False


def _record_layout():
    """The layout of Capstone's instruction record (cs_insn) as its ctypes binding declares it,
    to read a whole sweep's addresses and mnemonics in one pass; None if the binding does not
    expose it (then disasm_lite)."""
    global _RECORD
    if _RECORD is None:
        try:
            rec = capstone._cs_insn
            fields = sorted((getattr(rec, name).offset, name) for name in ("address", "size", "mnemonic", "op_str"))
            assert [name for _, name in fields] == ["address", "size", "mnemonic", "op_str"]
            a, z, m, o = (off for off, _ in fields)
            total = ctypes.sizeof(rec)
            _RECORD = (struct.Struct(f"={a}xQ{z - a - 8}xH{m - z - 2}x32s{o - m - 32}x160s{total - o - 160}x"), rec)
            assert _RECORD[0].size == total and callable(capstone._cs.cs_disasm) and callable(capstone._cs.cs_free)
        except (AttributeError, AssertionError, ImportError):
            _RECORD = False
    return _RECORD or None


def _sweep(md, code: bytes, address: int) -> list[tuple[int, int, bytes, bytes]]:
    """(address, size, mnemonic, operand text) of every instruction Capstone decodes from the
    start of `code`, without details: its C decoder fills the records, which are read in one
    struct pass (disasm_lite makes four Python objects per instruction)."""
    layout = _record_layout()
    if layout is None:
        return [(a, n, m.encode("ascii") + b"\0", o.encode("ascii") + b"\0") for a, n, m, o in md.disasm_lite(code, address)]
    record, rec = layout
    insns = ctypes.POINTER(rec)()
    count = capstone._cs.cs_disasm(md.csh, code, len(code), address, 0, ctypes.byref(insns))
    if count <= 0:
        status = capstone._cs.cs_errno(md.csh)
        if status != capstone.CS_ERR_OK:
            raise capstone.CsError(status)
        return []
    try:
        data = ctypes.string_at(insns, count * record.size)
    finally:
        capstone._cs.cs_free(insns, count)
    return list(record.iter_unpack(data))


def _light_body(binary: GoBinary, address: int, size: int, code: bytes | None = None) -> _Body:
    """The body with operand details decoded only where the checks read them: the whole code is
    swept without details (addresses, sizes, mnemonics, operand text: a fraction of the cost);
    an instruction the prologue or morestack-tail checks read the operands of is decoded again,
    alone, with details."""
    if code is None:
        code = binary.read_memory(address, size)
    swept = _sweep(_decoder(binary.arch, False), code, address)
    starts = [insn[0] for insn in swept]
    rets = [insn[0] for insn in swept if insn[2][:4] == b"ret\0"]
    detailed = _decoder(binary.arch, True)
    index = {start: k for k, start in enumerate(starts)}

    def insns(first: int, last: int):
        for k in range(first, last):
            at, size, mnemonic, op_str = swept[k]
            yield _SweptInsn(at, size, _text(mnemonic), _text(op_str), code, at - address, detailed)

    return _Body(starts, rets, list(insns(0, min(HEAD, len(swept)))),
                 lambda at: insns(index[at], len(swept)))


class _DecodersDisagree(Exception):
    """Capstone does not decode an instruction of iced-x86's sweep as iced-x86 did."""


_ICED_AGREES: dict[int, bool] = {}  # iced-x86 Code -> Capstone decodes such an instruction at its length
_ICED_RET_NAMED: dict[bytes, bool] = {}  # a return instruction's bytes -> Capstone's mnemonic is "ret"
_ICED_RETURNS: frozenset[int] = frozenset()  # the iced-x86 Codes of near returns


def _import_iced() -> None:
    global iced_x86, _ICED_RETURNS
    if iced_x86 is None:
        _x86_operand_types()
        import iced_x86 as ix
        code = ix.Code
        _ICED_RETURNS = frozenset((code.RETNW, code.RETNW_IMM16, code.RETND, code.RETND_IMM16,
                                   code.RETNQ, code.RETNQ_IMM16))
        iced_x86 = ix
        _iced_tables()


_ICED_CODE = operator.attrgetter("code")  # of an iced-x86 Instruction
_ICED_IP = operator.attrgetter("ip")


class _X86OperandTypes(NamedTuple):
    """Capstone's x86 operand type numbers (capstone.x86_const's X86_OP_*), as the decoder facts
    keep them: what the iced-x86 path reads of Capstone when nothing else of it is needed."""
    X86_OP_REG: int
    X86_OP_IMM: int
    X86_OP_MEM: int


def _x86_operand_types() -> None:
    """x86_const with Capstone's operand types: from the decoder facts, else Capstone's own."""
    global x86_const
    if x86_const is None:
        kept = _FACTS.get("x86_op")
        if kept is not None:
            x86_const = _X86OperandTypes(*kept)
        else:
            _import_capstone()


# What Capstone says of iced-x86's instructions (_ICED_AGREES, _ICED_RET_NAMED, _ICED_MNEMONICS and
# the operand types), kept between runs in the cache directory by the two decoders' installed
# files (indexcache.DecoderFacts): a command on a function not seen before then mostly reads its
# machine code without importing Capstone (a tenth of a second). Loaded once per process by
# analyze() for a binary whose program keeps a cache; written back by save_decoder_facts().
_FACTS: dict = {}
_FACTS_STATE = {"store": None, "sizes": None}


def _decoder_identity() -> list | None:
    """The installed files of Capstone and iced-x86 (name, size, mtime): other decoders, other facts."""
    import importlib.util
    out = []
    for package in ("capstone", "iced_x86"):
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.submodule_search_locations:
            return None
        root = list(spec.submodule_search_locations)[0]
        for folder in (root, os.path.join(root, "lib")):
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue
            for e in entries:
                if e.is_file():
                    st = e.stat()
                    out.append([package, os.path.relpath(e.path, root), st.st_size, st.st_mtime_ns])
    return out


def _fact_sizes() -> tuple[int, int, int, bool, bool]:
    return len(_ICED_AGREES), len(_ICED_RET_NAMED), len(_ICED_MNEMONICS), "x86_op" in _FACTS, bool(_FACTS.get("sampled"))


def _load_decoder_facts() -> None:
    if _FACTS_STATE["store"] is not None:
        return
    from ..indexcache import DecoderFacts
    identity = _decoder_identity()
    if identity is None:
        _FACTS_STATE["store"] = False
        return
    store = _FACTS_STATE["store"] = DecoderFacts(identity)
    kept = store.get()
    if kept is not None:
        # what this process learnt first stays (the same decoders say the same)
        for table, values in ((_ICED_AGREES, kept["agrees"]), (_ICED_RET_NAMED, kept["ret_named"]),
                              (_ICED_MNEMONICS, kept["mnemonics"])):
            for key, value in values.items():
                table.setdefault(key, value)
        if kept["x86_op"] is not None:
            _FACTS.setdefault("x86_op", tuple(kept["x86_op"]))
        if kept["sampled"]:
            _FACTS["sampled"] = True
    _FACTS_STATE["sizes"] = _fact_sizes()


def save_decoder_facts() -> None:
    """Write the decoder facts back when this process learnt more of them."""
    store = _FACTS_STATE["store"]
    if not store:
        return
    if x86_const is not None and "x86_op" not in _FACTS:
        _FACTS["x86_op"] = (x86_const.X86_OP_REG, x86_const.X86_OP_IMM, x86_const.X86_OP_MEM)
    sizes = _fact_sizes()
    if sizes == _FACTS_STATE["sizes"]:
        return
    store.put(dict(_ICED_AGREES), dict(_ICED_RET_NAMED), dict(_ICED_MNEMONICS), _FACTS.get("x86_op"),
              bool(_FACTS.get("sampled")))
    _FACTS_STATE["sizes"] = sizes


def iced_sweep(code: bytes, address: int, keep: int = 0):
    """The start of every instruction of the amd64 linear sweep of `code`, and of its RET
    instructions, as Capstone's sweep finds them (`_sweep`, mnemonic "ret"), decoded by
    iced-x86: it finds boundaries without printing any text, a fraction of Capstone's cost.

    None when iced-x86's sweep cannot stand for Capstone's: bytes iced-x86 does not decode
    (Capstone's sweep stops at them), or an instruction Capstone does not decode at the length
    iced-x86 does (checked once per iced-x86 instruction code and process: Capstone's tables
    lack some newer instructions). A return's bytes are named by Capstone once per process
    (`repz ret` and `bnd ret` are not "ret" to it).

    (starts, rets), or with `keep`, (starts, rets, the first `keep` iced-x86 instructions; all of
    them when `keep` is negative).

    The starts are a `_SweptStarts`, a list of them made only when asked for (a check asks
    whether an address is one: answered from the instructions). The instructions are read in
    bulk, with no Python loop per instruction: decoded into a list, their codes read by `map`;
    each code's facts are looked at once per body, in the order the codes first occur, the order
    an instruction-by-instruction loop meets them. The sweeps of cmd/compile 1.27's 20,291
    bodies (2.8 million instructions) took 0.71 s, now 0.61 s: what is left is iced-x86's decode
    and one PyO3 getter (the code) per instruction, which no loop of ours would make cheaper."""
    _import_iced()
    insns = list(iced_x86.Decoder(64, code, ip=address))
    kinds = list(map(_ICED_CODE, insns))
    agrees = _ICED_AGREES
    end = len(insns)  # the instructions before the first one iced-x86 cannot stand for
    seen = dict.fromkeys(kinds)
    for kind in seen:  # each code once, at its first instruction
        known = agrees.get(kind)
        if not known:
            first = kinds.index(kind)
            if known is None:
                known = agrees[kind] = _capstone_agrees(insns[first], code, address)
            if not known:
                end = first
                break
    rets: list[int] = []
    for k in _returns_in(kinds, _ICED_RETURNS.intersection(seen), end):
        insn = insns[k]
        start = insn.ip
        if _capstone_names_ret(code[start - address:start - address + insn.len]):
            rets.append(start)
    if end < len(insns):
        return None
    starts = _SweptStarts(insns)
    if not keep:
        return starts, rets
    return starts, rets, (insns if keep < 0 else insns[:keep])


class _SweptStarts:
    """The start of every instruction of an iced-x86 sweep, in order: the list `iced_sweep` used to
    make, read from the instructions when first asked for as a whole. `address in starts` and
    `index` search the instructions' addresses (increasing) by bisection, with no list made.
    Equal to a list of the same addresses."""

    __slots__ = ("_insns", "_list", "_found")

    def __init__(self, insns: list):
        self._insns = insns
        self._list = None
        self._found = (None, -1)  # the last address index() found, and where (asked again: the tail's)

    def _all(self) -> list[int]:
        if self._list is None:
            self._list = list(map(_ICED_IP, self._insns))
        return self._list

    def index(self, address: int) -> int:
        """The position of the instruction starting at `address` (ValueError: none does). Searched
        from the end, in steps that double, then by bisection: the address a check asks for is
        the morestack tail's, a few instructions before the end (and the padding after it)."""
        if self._found[0] == address:
            return self._found[1]
        insns = self._insns
        n = len(insns)
        lo, hi, step = 0, n, 1
        while step <= n:
            k = n - step
            if insns[k].ip <= address:
                lo = k
                break
            hi, step = k, step * 2
        while lo < hi:
            mid = (lo + hi) // 2
            if insns[mid].ip < address:
                lo = mid + 1
            else:
                hi = mid
        if lo == n or insns[lo].ip != address:
            raise ValueError(f"{address:#x} is not an instruction start")
        self._found = (address, lo)
        return lo

    def __contains__(self, address) -> bool:
        if not isinstance(address, int):
            return False
        try:
            self.index(address)
        except ValueError:
            return False
        return True

    def __len__(self) -> int:
        return len(self._insns)

    def __getitem__(self, k):
        return self._all()[k]

    def __iter__(self):
        return iter(self._all())

    def __eq__(self, other) -> bool:
        if isinstance(other, _SweptStarts):
            other = other._all()
        return self._all() == other if isinstance(other, list) else NotImplemented

    __hash__ = None

    def __repr__(self) -> str:
        return repr(self._all())


def _returns_in(kinds: list[int], returns, end: int) -> list[int]:
    """The indices of the `returns` codes among kinds[:end], in order (found by list.index: a
    body has few)."""
    out = []
    for kind in returns:
        k = -1
        while True:
            try:
                k = kinds.index(kind, k + 1, end)
            except ValueError:
                break
            out.append(k)
    out.sort()
    return out


def _capstone_agrees(insn, code: bytes, address: int) -> bool:
    if insn.code == iced_x86.Code.INVALID:
        return False
    offset = insn.ip - address
    decoded = list(_decoder("amd64", False).disasm_lite(code[offset:offset + insn.len], insn.ip, 1))
    return len(decoded) == 1 and decoded[0][1] == insn.len


def _capstone_names_ret(encoding: bytes) -> bool:
    named = _ICED_RET_NAMED.get(encoding)
    if named is None:
        decoded = list(_decoder("amd64", False).disasm_lite(encoding, 0, 1))
        named = _ICED_RET_NAMED[encoding] = len(decoded) == 1 and decoded[0][2] == "ret"
    return named


def _iced_body(code: bytes, address: int) -> _Body | None:
    """The light body of amd64 code from iced-x86's sweep (None where it cannot stand for
    Capstone's): the instructions the checks read (the first HEAD, and from the morestack tail
    on) are iced-x86's too, seen as Capstone sees them (`_IcedInsn`): Capstone decodes only
    what they cannot say alike (an instruction with printed prefixes, an operand text asked for)."""
    # the sweep's instructions are kept (by its starts) while the body is read: the morestack tail's
    # are taken from them; only those the checks read get an _IcedInsn
    swept = iced_sweep(code, address, HEAD)
    if swept is None:
        return None
    starts, rets, insns = swept
    head = [_IcedInsn(insn, code, address) for insn in insns]
    every = starts._insns

    def from_address(at: int):
        try:
            k = starts.index(at)
        except ValueError:
            raise KeyError(at) from None  # as the other bodies: only an instruction start has instructions from it
        for insn in itertools.islice(every, k, None):
            yield _IcedInsn(insn, code, address)

    return _Body(starts, rets, head, from_address)


class _IcedOperand(NamedTuple):
    """An x86 operand of an iced-x86 instruction with Capstone's fields and values (X86Op: `reg`
    and `mem.base` are iced-x86 register numbers, named by `_IcedInsn.reg_name`)."""
    type: int
    reg: int
    imm: int
    mem: _X86Mem
    size: int


_ICED_MNEMONICS: dict[int, str] = {}  # iced-x86 Code -> Capstone's mnemonic (an instruction without printed prefixes)
_ICED_REG_NAMES: dict[int, str] = {}  # iced-x86 Register -> Capstone's name
_ICED_IMMEDIATE_BITS: dict[int, int] = {}  # iced-x86 OpKind of an immediate -> its width as encoded
_ICED_BRANCH_KINDS: frozenset[int] = frozenset()
_ICED_REGISTER = _ICED_MEMORY = _ICED_RIP = _ICED_LEGACY = -1  # OpKind.REGISTER, OpKind.MEMORY, Register.RIP, EncodingKind.LEGACY
_ICED_MEMORY_BYTES: dict[int, int] = {}  # iced-x86 MemorySize -> its width in bytes
_ICED_FLOW_NEXT = -1  # FlowControl.NEXT: an instruction that does not branch
_CAPSTONE_TEXTS: dict[bytes, tuple[str, str]] = {}  # an encoding -> Capstone's (mnemonic, operands), where fixed
_X86_OP_REG = _X86_OP_IMM = _X86_OP_MEM = -1  # Capstone's operand types (x86_const)


def _iced_tables() -> None:
    """Capstone's register names for iced-x86's numbers, and the widths of immediates (one whose
    top bit is clear is the same number to both)."""
    if _ICED_REG_NAMES:
        return
    global _ICED_BRANCH_KINDS, _ICED_REGISTER, _ICED_MEMORY, _ICED_RIP, _ICED_LEGACY, _X86_OP_REG, _X86_OP_IMM, _X86_OP_MEM
    global _ICED_FLOW_NEXT
    from iced_x86 import EncodingKind, FlowControl, OpKind, Register
    _ICED_FLOW_NEXT = FlowControl.NEXT
    _X86_OP_REG, _X86_OP_IMM, _X86_OP_MEM = x86_const.X86_OP_REG, x86_const.X86_OP_IMM, x86_const.X86_OP_MEM
    _ICED_REGISTER, _ICED_MEMORY, _ICED_RIP = OpKind.REGISTER, OpKind.MEMORY, Register.RIP
    _ICED_LEGACY = EncodingKind.LEGACY
    for name in dir(Register):
        value = getattr(Register, name)
        if isinstance(value, int) and not name.startswith("_"):
            # iced-x86 names the low bytes of r8-r15 R8L..R15L, Capstone r8b..r15b
            _ICED_REG_NAMES[value] = re.sub(r"^(r\d+)l$", r"\1b", name.lower())
    _ICED_IMMEDIATE_BITS.update({OpKind.IMMEDIATE8: 8, OpKind.IMMEDIATE16: 16, OpKind.IMMEDIATE32: 32,
                                 OpKind.IMMEDIATE64: 64, OpKind.IMMEDIATE8TO16: 8, OpKind.IMMEDIATE8TO32: 8,
                                 OpKind.IMMEDIATE8TO64: 8, OpKind.IMMEDIATE32TO64: 32})
    _ICED_BRANCH_KINDS = frozenset((OpKind.NEAR_BRANCH16, OpKind.NEAR_BRANCH32, OpKind.NEAR_BRANCH64))


# operand-size, address-size, lock, repne, rep and segment override prefixes
_LEGACY_PREFIX_BYTES = frozenset((0x66, 0x67, 0xF0, 0xF2, 0xF3, 0x2E, 0x36, 0x3E, 0x26, 0x64, 0x65))


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


class _IcedInsn:
    """An amd64 instruction decoded by iced-x86, read by the checks as Capstone's: its mnemonic is
    Capstone's for its instruction code (asked of Capstone once per code and process, and for
    every instruction with prefixes Capstone prints: rep, lock, bnd, segment overrides), its
    operands Capstone's fields with Capstone's values, its branch target the one address
    Capstone prints; its operand text is Capstone's, decoded when asked for (rarely)."""

    # `mnemonic` is a slot, filled at once where its instruction code's mnemonic is known and no
    # prefix byte comes first (most instructions), else by __getattr__ when first read: the
    # checks read it 38 times per function (a property ran Python code on each read)
    __slots__ = ("_insn", "_code", "_base", "address", "size", "mnemonic", "_op_str", "_operands")

    def __init__(self, insn, code: bytes, base: int):
        self._insn, self._code, self._base = insn, code, base
        address = self.address = insn.ip
        self.size = insn.len
        self._op_str = self._operands = None
        if code[address - base] not in _LEGACY_PREFIX_BYTES:
            name = _ICED_MNEMONICS.get(insn.code)
            if name is not None:
                self.mnemonic = name

    def __getattr__(self, name: str):  # only for the empty slot
        if name != "mnemonic":
            raise AttributeError(name)
        self.mnemonic = value = self._read_mnemonic()
        return value

    def _capstone_text(self) -> tuple[str, str]:
        offset = self.address - self._base
        encoding = self._code[offset:offset + self.size]
        insn = self._insn
        # the text of an instruction that neither branches nor addresses memory relative to its
        # own address does not depend on where it is: asked of Capstone once per encoding (Go
        # 1.15's `mov rcx, qword ptr fs:[0xfffffffffffffff8]` begins most functions)
        fixed = insn.flow_control == _ICED_FLOW_NEXT and not insn.is_ip_rel_memory_operand
        text = _CAPSTONE_TEXTS.get(encoding) if fixed else None
        if text is None:
            decoded = list(_decoder("amd64", False).disasm_lite(encoding, self.address, 1))
            if len(decoded) != 1 or decoded[0][1] != self.size:
                raise _DecodersDisagree(f"the instruction at {self.address:#x}")
            text = decoded[0][2], decoded[0][3]
            if fixed:
                _CAPSTONE_TEXTS[encoding] = text
        return text

    def _read_mnemonic(self) -> str:
        insn = self._insn
        # those prefixes are legacy prefix bytes, which come first: an instruction that does not
        # start with one has none (most do not: iced-x86 is not asked)
        if self._code[self.address - self._base] in _LEGACY_PREFIX_BYTES and (
                insn.has_rep_prefix or insn.has_repne_prefix or insn.has_lock_prefix or insn.has_segment_prefix
                or insn.has_xacquire_prefix or insn.has_xrelease_prefix):
            name, self._op_str = self._capstone_text()
            return name
        code = insn.code
        name = _ICED_MNEMONICS.get(code)
        if name is None:
            name, self._op_str = self._capstone_text()
            _ICED_MNEMONICS[code] = name
        return name

    @property
    def op_str(self) -> str:
        if self._op_str is None:
            self.mnemonic, self._op_str = self._capstone_text()
        return self._op_str

    @property
    def operands(self) -> tuple[_IcedOperand, ...]:
        if self._operands is None:
            self._operands = self._read_operands()
        return self._operands

    @property
    def has_segment_prefix(self) -> bool:
        return self._insn.has_segment_prefix

    def reg_name(self, reg_id: int) -> str | None:
        return _ICED_REG_NAMES.get(reg_id)

    @property
    def branch_target(self) -> int | None:
        """What `_branch_target` gives for Capstone's instruction: a direct branch's address, or the
        first immediate operand."""
        insn = self._insn
        if insn.op_count >= 1 and insn.op0_kind in _ICED_BRANCH_KINDS:
            return insn.near_branch_target
        for op in self.operands:
            if op.type == x86_const.X86_OP_IMM:
                return op.imm
        return None

    def _capstone_immediate(self, k: int) -> int:
        offset = self.address - self._base
        ops = _x86_operands(_decoder("amd64", True), self._code[offset:offset + self.size], self.address)
        if ops is None or len(ops) <= k or ops[k].type != x86_const.X86_OP_IMM:
            raise _DecodersDisagree(f"an immediate of the instruction at {self.address:#x}")
        return ops[k].imm

    def _read_operands(self) -> tuple[_IcedOperand, ...]:
        """The operands, the same for every instruction of one encoding that does not branch
        (a memory operand relative to RIP keeps its displacement): those are decoded once per
        encoding and process (the prologues' and morestack tails' instructions repeat over a
        binary's functions: the 20,291 functions of cmd/compile 1.27 read 3,287 such encodings)."""
        offset = self.address - self._base
        encoding = self._code[offset:offset + self.size]
        out = _ICED_OPERANDS.get(encoding)
        if out is None:
            out, fixed = self._decode_operands()
            if fixed:
                if len(_ICED_OPERANDS) >= _ICED_OPERANDS_KEPT:
                    _ICED_OPERANDS.clear()
                _ICED_OPERANDS[encoding] = out
        return out

    def _decode_operands(self) -> tuple[tuple[_IcedOperand, ...], bool]:
        """(the operands, whether they are the same at any address: no branch operand)."""
        insn, out, fixed = self._insn, [], True
        if insn.encoding != _ICED_LEGACY:
            # VEX/EVEX forms: Capstone lists an opmask, folds a comparison's predicate into the mnemonic
            raise _DecodersDisagree(f"the operands of the instruction at {self.address:#x}")
        new = tuple.__new__  # the named tuples made without their Python-level constructor
        for k in range(insn.op_count):
            kind = insn.op_kind(k)
            if kind == _ICED_REGISTER:
                out.append(new(_IcedOperand, (_X86_OP_REG, insn.op_register(k), 0, _NO_MEM, 0)))
            elif kind in _ICED_IMMEDIATE_BITS:
                value = insn.immediate(k)
                bits = _ICED_IMMEDIATE_BITS[kind]
                if value >> (bits - 1) & 1:
                    # Capstone makes the value signed or not by instruction (`add eax, -1` but `and ebx,
                    # 0xfffffff8`, both sign-extended bytes): asked of Capstone
                    value = self._capstone_immediate(k)
                out.append(new(_IcedOperand, (_X86_OP_IMM, 0, value, _NO_MEM, 0)))
            elif kind in _ICED_BRANCH_KINDS:
                out.append(new(_IcedOperand, (_X86_OP_IMM, 0, insn.near_branch_target, _NO_MEM, 0)))
                fixed = False
            elif kind == _ICED_MEMORY:
                base = insn.memory_base
                if base == _ICED_RIP:  # Capstone keeps the displacement, iced-x86 gives the address
                    disp = _signed(insn.memory_displacement - insn.next_ip, 64)
                else:
                    disp = _signed(insn.memory_displacement, 64)
                mem = new(_X86Mem, (0, base, insn.memory_index, insn.memory_index_scale, disp))
                size = insn.memory_size
                width = _ICED_MEMORY_BYTES.get(size)
                if width is None:
                    width = _ICED_MEMORY_BYTES[size] = iced_x86.MemorySizeExt.size(size)
                out.append(new(_IcedOperand, (_X86_OP_MEM, 0, 0, mem, width)))
            else:  # string, far-branch operands: not read by the checks the way Capstone gives them
                raise _DecodersDisagree(f"an operand of the instruction at {self.address:#x}")
        return tuple(out), fixed


_NO_MEM = _X86Mem(0, 0, 0, 0, 0)
_ICED_OPERANDS: dict[bytes, tuple[_IcedOperand, ...]] = {}  # an encoding without branch operands -> its operands
_ICED_OPERANDS_KEPT = 1 << 16  # encodings kept at most (then forgotten: memory stays bounded)


def analyze(binary: GoBinary, address: int, size: int) -> MachineReport:
    if binary.arch not in ("amd64", "arm64"):
        raise NotImplementedError(f"machine-code check for {binary.arch}")
    code = binary.read_memory(address, size)
    if binary.arch == "amd64":
        keeps_facts = getattr(binary, "keeps_decoder_facts", False)  # (a GoBinary's; tests pass stand-ins)
        if keeps_facts:
            _load_decoder_facts()
        try:
            body = _iced_body(code, address)
            if body is not None:
                report = _analyze(binary, body, address)
                if keeps_facts and capstone is not None and not _FACTS.get("sampled"):
                    _learn_from_sample(binary)
                return report
        except _DecodersDisagree:
            pass  # Capstone sweeps it (the reference's decoder)
    return _analyze(binary, _light_body(binary, address, size, code), address)


def learn_decoder_facts(binary: GoBinary) -> None:
    """What analyze() learns of the decoders on its first amd64 body, learnt now: the kept
    decoder facts loaded and, where they were never sampled, a sample of the binary's code
    decoded (Capstone is imported). Called before worker processes are forked, which then
    inherit them: each worker sampled the binary again (and a replaced worker again), and what
    they learnt was lost with them."""
    if binary.arch != "amd64" or not getattr(binary, "keeps_decoder_facts", False):
        return
    _load_decoder_facts()
    _import_iced()
    _decoder("amd64", False)
    if not _FACTS.get("sampled"):
        _learn_from_sample(binary)


SAMPLE_BYTES = 256 << 10  # of machine code _learn_from_sample decodes
SAMPLE_FUNCTIONS = 512


def _learn_from_sample(binary: GoBinary) -> None:
    """Once per decoder facts file, in a process that imported Capstone anyway: the facts of
    the instruction codes of a sample of the binary's functions (evenly spread, 256 KiB), so
    that later commands seldom meet an instruction code whose facts are not kept (which costs
    them Capstone's import). As the sweep and the checks learn them: whether Capstone decodes
    the code alike, the mnemonic of an instruction without printed prefixes, whether a
    return's bytes are `ret`."""
    _FACTS["sampled"] = True
    symbols = [s for s in binary.function_symbols if s.size]
    if not symbols:
        return
    step = max(1, len(symbols) // SAMPLE_FUNCTIONS)
    budget = SAMPLE_BYTES
    for sym in symbols[::step]:
        if budget <= 0:
            break
        try:
            code = binary.read_memory(sym.address, min(sym.size, 4096))
        except DwarfgoError:
            continue
        budget -= len(code)
        for insn in iced_x86.Decoder(64, code, ip=sym.address):
            kind = insn.code
            if kind == iced_x86.Code.INVALID:
                break  # (a body read short ends in the middle of an instruction)
            if kind not in _ICED_AGREES:
                _ICED_AGREES[kind] = _capstone_agrees(insn, code, sym.address)
            if not _ICED_AGREES[kind]:
                continue
            start = insn.ip - sym.address
            if kind in _ICED_RETURNS:
                _capstone_names_ret(code[start:start + insn.len])
            if kind not in _ICED_MNEMONICS and not (
                    insn.has_rep_prefix or insn.has_repne_prefix or insn.has_lock_prefix or insn.has_segment_prefix
                    or insn.has_xacquire_prefix or insn.has_xrelease_prefix):
                decoded = list(_decoder("amd64", False).disasm_lite(code[start:start + insn.len], insn.ip, 1))
                if len(decoded) == 1 and decoded[0][1] == insn.len:
                    _ICED_MNEMONICS[kind] = decoded[0][2]


def analyze_fully(binary: GoBinary, address: int, size: int) -> MachineReport:
    """analyze() from a detailed disassembly of the whole body: the reference the light path is
    checked against (tests, scripts/compare-abi-paths)."""
    return _analyze(binary, _full_body(disassemble(binary, address, size)), address)


def _analyze(binary: GoBinary, body: _Body, address: int) -> MachineReport:
    if binary.arch == "amd64":
        return _analyze_amd64(binary, body, address)
    return _analyze_arm64(binary, body, address)


# a branch whose whole operand text is one address: x86 `0x4a1f20`, arm64 `#0x4a1f20`
_ADDRESS_OPERAND = re.compile(r"#?0x[0-9a-f]+")


def _branch_target(insn) -> int | None:
    if isinstance(insn, _IcedInsn):
        return insn.branch_target
    if isinstance(insn, _SweptInsn) and _ADDRESS_OPERAND.fullmatch(insn.op_str):
        # Capstone prints a lone immediate operand so (tests/test_abi_paths.py checks it
        # against the operands of the detailed decode)
        return int(insn.op_str.lstrip("#"), 16)
    for op in insn.operands:
        if op.type in (x86_const.X86_OP_IMM,) and insn._cs.arch == capstone.CS_ARCH_X86:
            return op.imm
        if insn._cs.arch == capstone.CS_ARCH_ARM64 and op.type == arm64_const.ARM64_OP_IMM:
            return op.imm
    return None


def _symbol_name(binary: GoBinary, addr: int | None) -> str | None:
    if addr is None:
        return None
    sym = binary.symbol_at(addr)
    return sym.name if sym else None


def _analyze_amd64(binary: GoBinary, body: _Body, entry: int) -> MachineReport:
    starts, rets = body.starts, body.rets
    check = _amd64_stack_check(body.head[:12])
    frame = None
    for insn in body.head[:16]:
        if insn.mnemonic == "sub" and _is_reg(insn.operands[0], insn, "rsp") and insn.operands[1].type == x86_const.X86_OP_IMM:
            frame = insn.operands[1].imm
            break
    text = {"g-register": "stack check through g in R14 (ABIInternal)",
            "tls": "stack check through g from thread-local storage (ABI0)",
            "none": "no stack check (NOSPLIT or frameless leaf)"}.get(check.kind, "stack check of unknown shape")
    if check.kind != "none" and check.shape not in ("small", ""):
        text += f", {check.shape} frame form"
    report = MachineReport(text, check, frame, ret_sites=rets, instruction_starts=starts)
    if check.tail_address is not None:
        _read_amd64_tail(binary, body, check.tail_address, entry, report)
    return report


def _prints_fs(insn) -> bool:
    """Capstone's operand text names the fs segment (g from thread-local storage); an iced-x86
    instruction without a segment override prefix cannot (its text is not decoded then)."""
    if isinstance(insn, _IcedInsn) and not insn.has_segment_prefix:
        return False
    return "fs:" in insn.op_str


def _is_reg(op, insn, name=None) -> bool:
    return op.type == x86_const.X86_OP_REG and (name is None or insn.reg_name(op.reg) == name)


def _mem_base(op, insn) -> str | None:
    return insn.reg_name(op.mem.base) if op.type == x86_const.X86_OP_MEM and op.mem.base else None


def _amd64_stack_check(head) -> StackCheck:
    check = _amd64_stack_check_form(head)
    if check.kind != "none" and check.tail_address is not None:
        last = [i for i in head if i.mnemonic in ("jbe", "jb", "je") and _branch_target(i) == check.tail_address]
        if last:
            check.decision_address, check.decision = last[-1].address, last[-1].mnemonic
    return check


def _amd64_stack_check_form(head) -> StackCheck:
    """Recognise Go's amd64 prologue checks:
      small:  cmp rsp, [g+16]; jbe T
      frame:  lea r12, [rsp-N]; cmp r12, [g+16]; jbe T          (ABI0: lea rax / rcx g)
      huge:   mov r12, rsp; sub r12, N; jb T; cmp r12, [g+16]; jbe T
      huge-preempt (Go <= 1.16): mov rsi, [g+16]; cmp rsi, StackPreempt; je T;
              lea rax, [rsp+K]; sub rax, rsi; cmp rax, C; jbe T
    g is R14 (regabi) or loaded from fs:-8 (ABI0)."""
    tls = any(i.mnemonic == "mov" and _prints_fs(i) for i in head[:3])
    kind = "tls" if tls else "g-register"
    branches = [k for k, i in enumerate(head) if i.mnemonic in ("jbe", "jb", "je", "jae", "ja")]
    if not branches:
        return StackCheck("none")
    first = head[branches[0]]
    tail = _branch_target(first)
    for k, insn in enumerate(head):
        if insn.mnemonic != "cmp" or len(insn.operands) != 2:
            continue
        left, right = insn.operands
        nxt = head[k + 1] if k + 1 < len(head) else None
        if nxt is None or nxt.mnemonic not in ("jbe", "je") or _branch_target(nxt) != tail:
            continue
        if _is_reg(left, insn) and right.type == x86_const.X86_OP_MEM and right.mem.disp in (16, 0x10):
            lreg = insn.reg_name(left.reg)
            guard_off = right.mem.disp
            if lreg == "rsp":
                return StackCheck(kind, "small", "{sp} > {guard}", guard_off, first.address, tail)
            for prev in reversed(head[:k]):
                if prev.mnemonic == "lea" and _is_reg(prev.operands[0], prev, lreg) \
                        and _mem_base(prev.operands[1], prev) == "rsp":
                    n = -prev.operands[1].mem.disp
                    return StackCheck(kind, "frame", f"{{sp}} - {n} > {{guard}}", guard_off, first.address, tail, n)
                if prev.mnemonic == "sub" and _is_reg(prev.operands[0], prev, lreg) \
                        and prev.operands[1].type == x86_const.X86_OP_IMM:
                    n = prev.operands[1].imm
                    return StackCheck(kind, "huge", f"{{sp}} >= {n} && {{sp}} - {n} > {{guard}}", guard_off,
                                      first.address, tail, n)
            if kind == "g-register" and _mem_base(right, insn) != "r14":
                continue
            return StackCheck(kind, "unknown", None, guard_off, first.address, tail)
        if _is_reg(left, insn) and right.type == x86_const.X86_OP_IMM and nxt.mnemonic == "jbe":
            # huge-preempt: cmp rax, C after lea rax,[rsp+K]; sub rax, rsi (rsi = stackguard0)
            c = right.imm
            lea = next((p for p in head[:k] if p.mnemonic == "lea" and _mem_base(p.operands[1], p) == "rsp"), None)
            load = next((p for p in head[:k] if p.mnemonic == "mov" and len(p.operands) == 2
                         and p.operands[1].type == x86_const.X86_OP_MEM and p.operands[1].mem.disp == 16), None)
            if lea is not None and load is not None:
                kk = lea.operands[1].mem.disp
                keep = f"{{guard}} != {STACK_PREEMPT:#x} && {{sp}} + {kk} - {{guard}} > {c}"
                return StackCheck(kind, "huge-preempt", keep, 16, first.address, tail)
    # (a memory operand based on r14 is printed with it: only those instructions' operands are read
    # from Capstone; iced-x86's operands cost less than Capstone's text)
    if tls or any(_mem_base(op, i) == "r14" for i in head if isinstance(i, _IcedInsn) or "r14" in i.op_str
                  for op in i.operands if op.type == x86_const.X86_OP_MEM and op.mem.disp == 16):
        return StackCheck(kind, "unknown", None, 16, first.address, tail)
    return StackCheck("none")  # branches of the body, not a stack check


def _morestack_call(insn) -> MorestackCall | None:
    target = _branch_target(insn)
    return MorestackCall(insn.address, insn.address + insn.size, target) if target is not None else None


def _read_amd64_tail(binary: GoBinary, body: _Body, tail: int, entry: int, report: MachineReport) -> None:
    if tail not in report.instruction_starts:
        report.problems.append(f"morestack tail {tail:#x} is not an instruction start in this function")
        return
    for insn in body.from_address(tail):
        if insn.mnemonic == "call":
            report.morestack_target = _symbol_name(binary, _branch_target(insn))
            report.morestack_call = _morestack_call(insn)
            break
        if insn.mnemonic in ("mov", "movsd", "movss", "movq", "movd", "movups") and len(insn.operands) == 2:
            dst, src = insn.operands
            if dst.type == x86_const.X86_OP_MEM and src.type == x86_const.X86_OP_REG \
                    and insn.reg_name(dst.mem.base) == "rsp":
                reg = _X86_REG.get(insn.reg_name(src.reg), insn.reg_name(src.reg))
                report.spills.append(SpillStore(reg, dst.mem.disp, dst.size))
        elif insn.mnemonic == "nop" or insn.mnemonic.startswith("nop"):
            continue
        else:
            # PCDATA-less instructions such as `mov ..., rsp` are not spills; stop at anything else
            # only if it is a control transfer.
            if insn.mnemonic.startswith("j"):
                break


def _analyze_arm64(binary: GoBinary, body: _Body, entry: int) -> MachineReport:
    starts, rets = body.starts, body.rets
    check = _arm64_stack_check(body.head[:12])
    text = "no stack check (NOSPLIT or frameless leaf)" if check.kind == "none" else "stack check through g in R28"
    if check.kind != "none" and check.shape not in ("small", ""):
        text += f", {check.shape} frame form"
    frame = None
    for insn in body.head[:12]:
        if insn.mnemonic in ("str", "stp") and "sp, #-" in insn.op_str and insn.op_str.endswith("]!"):
            frame = -insn.operands[-1].mem.disp if insn.operands[-1].type == arm64_const.ARM64_OP_MEM else None
            break
    report = MachineReport(text, check, frame, ret_sites=rets, instruction_starts=starts)
    if check.tail_address is not None:
        if check.tail_address not in starts:
            report.problems.append(f"morestack tail {check.tail_address:#x} is not an instruction start")
            return report
        for insn in body.from_address(check.tail_address):
            if insn.mnemonic == "bl":
                report.morestack_target = _symbol_name(binary, _branch_target(insn))
                report.morestack_call = _morestack_call(insn)
                break
            if insn.mnemonic in ("str", "strb", "strh", "stur", "fstr") and len(insn.operands) == 2:
                src, dst = insn.operands
                if dst.type == arm64_const.ARM64_OP_MEM and insn.reg_name(dst.mem.base) == "sp":
                    name = insn.reg_name(src.reg)
                    width = {"b": 1, "h": 2}.get(insn.mnemonic[-1], 8 if name[0] in "xd" else 4)
                    report.spills.append(SpillStore(_arm64_reg(name), dst.mem.disp, width))
            elif insn.mnemonic == "stp" and len(insn.operands) == 3:
                a, b, dst = insn.operands
                if dst.type == arm64_const.ARM64_OP_MEM and insn.reg_name(dst.mem.base) == "sp":
                    an, bn = insn.reg_name(a.reg), insn.reg_name(b.reg)
                    width = 8 if an[0] in "xd" else 4
                    report.spills.append(SpillStore(_arm64_reg(an), dst.mem.disp, width))
                    report.spills.append(SpillStore(_arm64_reg(bn), dst.mem.disp + width, width))
    return report


def _arm64_stack_check(head) -> StackCheck:
    check = _arm64_stack_check_form(head)
    if check.kind != "none" and check.tail_address is not None:
        last = [i for i in head if i.mnemonic.startswith("b.") and _branch_target(i) == check.tail_address]
        if last:
            check.decision_address, check.decision = last[-1].address, last[-1].mnemonic
    return check


def _arm64_stack_check_form(head) -> StackCheck:
    """Recognise Go's arm64 prologue checks (g in R28):
      small/frame: ldr G, [x28,#16]; [sub X, sp, #N]; cmp X|sp, G; b.ls T
      huge:        ldr G, [x28,#16]; mov x27, #N; subs X, sp, x27; b.lo T; cmp X, G; b.ls T
      huge-preempt (Go <= 1.17): ldr G, [x28,#16]; mov x27, #StackPreempt; cmp G, x27; b.eq T;
                   add X, sp, #K; sub X, X, G; mov Y, #C; cmp X, Y; b.ls T"""
    if not head or head[0].mnemonic != "ldr" or "x28" not in head[0].op_str:
        return StackCheck("none")
    guard_reg = head[0].reg_name(head[0].operands[0].reg)
    disp = head[0].operands[1].mem.disp if head[0].operands[1].type == arm64_const.ARM64_OP_MEM else 16
    branches = [i for i in head if i.mnemonic.startswith("b.")]
    if not branches:
        return StackCheck("none")
    first, tail = branches[0], _branch_target(branches[0])
    imms: dict[str, int] = {}
    sub_n = None
    add_k = None
    sp_copies = {"sp"}
    for insn in head[1:]:
        ops = insn.operands
        if insn.mnemonic == "mov" and len(ops) == 2 and ops[1].type == arm64_const.ARM64_OP_REG \
                and insn.reg_name(ops[1].reg) == "sp":
            sp_copies.add(insn.reg_name(ops[0].reg))  # Go 1.15: mov x2, sp; cmp x2, x1
        elif insn.mnemonic in ("mov", "movz") and len(ops) == 2 and ops[1].type == arm64_const.ARM64_OP_IMM:
            imms[insn.reg_name(ops[0].reg)] = ops[1].imm
        elif insn.mnemonic in ("sub", "subs") and len(ops) == 3 and insn.reg_name(ops[1].reg) == "sp":
            sub_n = ops[2].imm if ops[2].type == arm64_const.ARM64_OP_IMM else imms.get(insn.reg_name(ops[2].reg))
        elif insn.mnemonic == "add" and len(ops) == 3 and insn.reg_name(ops[1].reg) == "sp" \
                and ops[2].type == arm64_const.ARM64_OP_IMM:
            add_k = ops[2].imm
        elif insn.mnemonic == "cmp" and len(ops) == 2 and ops[0].type == arm64_const.ARM64_OP_REG:
            a = insn.reg_name(ops[0].reg)
            b = insn.reg_name(ops[1].reg) if ops[1].type == arm64_const.ARM64_OP_REG else None
            if a == guard_reg:
                continue  # the StackPreempt test of the huge-preempt form
            if b == guard_reg:
                if a in sp_copies:
                    return StackCheck("g-register", "small", "{sp} > {guard}", disp, first.address, tail)
                if sub_n is not None:
                    huge = any(i.mnemonic == "b.lo" for i in branches)
                    keep = (f"{{sp}} >= {sub_n} && {{sp}} - {sub_n} > {{guard}}" if huge
                            else f"{{sp}} - {sub_n} > {{guard}}")
                    return StackCheck("g-register", "huge" if huge else "frame", keep, disp, first.address, tail, sub_n)
            elif b in imms and add_k is not None:
                keep = f"{{guard}} != {STACK_PREEMPT:#x} && {{sp}} + {add_k} - {{guard}} > {imms[b]}"
                return StackCheck("g-register", "huge-preempt", keep, disp, first.address, tail)
            break
    return StackCheck("g-register", "unknown", None, disp, first.address, tail)


@dataclass
class SpillCheck:
    agrees: bool | None  # None: no morestack tail to compare with
    expected: list[SpillStore]
    found: list[SpillStore]
    detail: str = ""


def expected_spills(layout: FunctionLayout) -> list[SpillStore]:
    out = []
    for loc in layout.inputs:
        if not loc.in_registers or loc.spill_offset is None:
            continue
        for piece in loc.pieces:
            assert isinstance(piece, RegisterPiece)
            out.append(SpillStore(piece.register, loc.spill_offset + piece.leaf.offset, piece.leaf.size))
    return out


def check_spills(layout: FunctionLayout, report: MachineReport) -> SpillCheck:
    expected = expected_spills(layout)
    if report.stack_check.tail_address is None or report.morestack_target is None:
        return SpillCheck(None, expected, report.spills, "no morestack tail (no stack check)")
    found = report.spills
    if sorted(found, key=lambda s: s.sp_offset) == sorted(expected, key=lambda s: s.sp_offset):
        return SpillCheck(True, expected, found)
    missing = [s for s in expected if s not in found]
    extra = [s for s in found if s not in expected]
    if not extra:
        # the compiler spills only the arguments still live at entry: a function that never reads
        # an argument (it panics, or ignores it) does not spill it
        if not found:
            return SpillCheck(None, expected, found, "no argument spilled (none is live at entry)")
        return SpillCheck(True, expected, found, f"{len(found)} of {len(expected)} spilled (the others are not live)")
    parts = []
    if missing:
        parts.append("computed but not spilled: " + ", ".join(f"{s.register}@SP+{s.sp_offset}/{s.width}" for s in missing))
    if extra:
        parts.append("spilled but not computed: " + ", ".join(f"{s.register}@SP+{s.sp_offset}/{s.width}" for s in extra))
    return SpillCheck(False, expected, found, "; ".join(parts))
