"""Cross-check 2: the machine code (Capstone).

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

from dataclasses import dataclass, field

import capstone
from capstone import x86_const, arm64_const

from ..abi.assign import FunctionLayout, RegisterPiece
from ..binary import GoBinary


@dataclass(frozen=True)
class SpillStore:
    register: str  # Go name
    sp_offset: int  # from SP at entry
    width: int


@dataclass
class StackCheck:
    """The prologue's stack-bound comparison, as the probe must re-evaluate it."""

    kind: str  # "g-register" (regabi), "tls" (ABI0 amd64), "g-register-abi0" (arm64 ABI0), "none"
    sp_adjust: int = 0  # the prologue compares SP - sp_adjust with g.stackguard0
    guard_offset: int = 16  # offset of stackguard0 in g as the prologue reads it
    branch_address: int | None = None
    tail_address: int | None = None  # the morestack tail the branch goes to
    huge: bool = False  # frames so large the prologue's compare is of another shape


@dataclass
class MachineReport:
    prologue: str  # human summary
    stack_check: StackCheck
    frame_size: int | None
    spills: list[SpillStore] = field(default_factory=list)
    morestack_target: str | None = None
    ret_sites: list[int] = field(default_factory=list)  # absolute addresses
    instruction_starts: list[int] = field(default_factory=list)
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


def disassemble(binary: GoBinary, address: int, size: int):
    code = binary.read_memory(address, size)
    if binary.arch == "amd64":
        md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    elif binary.arch == "arm64":
        md = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
    else:
        raise NotImplementedError(f"machine-code check for {binary.arch}")
    md.detail = True
    return list(md.disasm(code, address))


def analyze(binary: GoBinary, address: int, size: int) -> MachineReport:
    insns = disassemble(binary, address, size)
    if binary.arch == "amd64":
        return _analyze_amd64(binary, insns, address)
    return _analyze_arm64(binary, insns, address)


def _branch_target(insn) -> int | None:
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


def _analyze_amd64(binary: GoBinary, insns, entry: int) -> MachineReport:
    starts = [i.address for i in insns]
    rets = [i.address for i in insns if i.mnemonic == "ret"]
    head = insns[:6]
    check = StackCheck("none")
    frame = None
    text = "no stack check (NOSPLIT or frameless leaf)"
    # find the compare with [reg + 0x10] (g.stackguard0) and the conditional branch after it
    for n, insn in enumerate(head):
        if insn.mnemonic != "cmp" or len(insn.operands) != 2:
            continue
        left, right = insn.operands
        if right.type != x86_const.X86_OP_MEM or left.type != x86_const.X86_OP_REG:
            continue
        base = insn.reg_name(right.mem.base) if right.mem.base else None
        lreg = insn.reg_name(left.reg)
        adjust = 0
        if lreg != "rsp":
            # `lea r12, [rsp - N]` (or ABI0 `lea rax, [rsp - N]`) before the compare
            for prev in head[:n]:
                if prev.mnemonic == "lea" and prev.operands[0].type == x86_const.X86_OP_REG \
                        and prev.reg_name(prev.operands[0].reg) == lreg \
                        and prev.operands[1].type == x86_const.X86_OP_MEM \
                        and prev.reg_name(prev.operands[1].mem.base) == "rsp":
                    adjust = -prev.operands[1].mem.disp
        kind = "g-register" if base == "r14" else "tls"
        if kind == "tls" and not any(p.mnemonic == "mov" and "fs:" in p.op_str for p in head[:n]):
            kind = "g-register" if base == "r14" else "other"
        nxt = insns[n + 1] if n + 1 < len(insns) else None
        branch, tail = None, None
        if nxt is not None and nxt.mnemonic in ("jbe", "jb", "jae", "ja", "jle", "jl"):
            branch, tail = nxt.address, _branch_target(nxt)
        check = StackCheck(kind, adjust, right.mem.disp, branch, tail, huge=lreg not in ("rsp",) and adjust == 0)
        text = {"g-register": "stack check through g in R14 (ABIInternal)",
                "tls": "stack check through g from thread-local storage (ABI0)"}.get(kind, "stack check of unknown shape")
        break
    for insn in insns[:12]:
        if insn.mnemonic == "sub" and insn.op_str.startswith("rsp,"):
            frame = insn.operands[1].imm
            break
    report = MachineReport(text, check, frame, ret_sites=rets, instruction_starts=starts)
    if check.tail_address is not None:
        _read_amd64_tail(binary, insns, check.tail_address, entry, report)
    return report


def _read_amd64_tail(binary: GoBinary, insns, tail: int, entry: int, report: MachineReport) -> None:
    i = next((k for k, insn in enumerate(insns) if insn.address == tail), None)
    if i is None:
        report.problems.append(f"morestack tail {tail:#x} is not an instruction start in this function")
        return
    for insn in insns[i:]:
        if insn.mnemonic == "call":
            report.morestack_target = _symbol_name(binary, _branch_target(insn))
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


def _analyze_arm64(binary: GoBinary, insns, entry: int) -> MachineReport:
    starts = [i.address for i in insns]
    rets = [i.address for i in insns if i.mnemonic == "ret"]
    head = insns[:8]
    check = StackCheck("none")
    text = "no stack check (NOSPLIT or frameless leaf)"
    frame = None
    for n, insn in enumerate(head):
        if insn.mnemonic != "ldr" or "x28" not in insn.op_str:
            continue
        guard_reg = insn.reg_name(insn.operands[0].reg)
        disp = insn.operands[1].mem.disp if insn.operands[1].type == arm64_const.ARM64_OP_MEM else 16
        adjust = 0
        for k in range(n + 1, min(n + 5, len(insns))):
            c = insns[k]
            if c.mnemonic == "sub" and "sp" in c.op_str and len(c.operands) == 3 and c.operands[2].type == arm64_const.ARM64_OP_IMM:
                adjust = c.operands[2].imm
            if c.mnemonic == "cmp" and guard_reg in c.op_str:
                nxt = insns[k + 1] if k + 1 < len(insns) else None
                branch, tail = None, None
                if nxt is not None and nxt.mnemonic.startswith("b."):
                    branch, tail = nxt.address, _branch_target(nxt)
                check = StackCheck("g-register", adjust, disp, branch, tail)
                text = "stack check through g in R28"
                break
        break
    for insn in insns[:12]:
        if insn.mnemonic in ("str", "stp") and "sp, #-" in insn.op_str and insn.op_str.endswith("]!"):
            frame = -insn.operands[-1].mem.disp if insn.operands[-1].type == arm64_const.ARM64_OP_MEM else None
            break
    report = MachineReport(text, check, frame, ret_sites=rets, instruction_starts=starts)
    if check.tail_address is not None:
        i = next((k for k, x in enumerate(insns) if x.address == check.tail_address), None)
        if i is None:
            report.problems.append(f"morestack tail {check.tail_address:#x} is not an instruction start")
            return report
        for insn in insns[i:]:
            if insn.mnemonic == "bl":
                report.morestack_target = _symbol_name(binary, _branch_target(insn))
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
    parts = []
    if missing:
        parts.append("computed but not spilled: " + ", ".join(f"{s.register}@SP+{s.sp_offset}/{s.width}" for s in missing))
    if extra:
        parts.append("spilled but not computed: " + ", ".join(f"{s.register}@SP+{s.sp_offset}/{s.width}" for s in extra))
    return SpillCheck(False, expected, found, "; ".join(parts))
