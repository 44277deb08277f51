"""Per-architecture facts of Go's calling conventions (design notes §1-2, cmd/compile's abi tables).

Each table: integer and float argument registers in assignment order (Go's names), the
closure-context and g registers, the stack offset of the first argument at function entry,
the first Go release using the register ABI there, and bpftrace's `reg()` name of each
general register (None where bpftrace cannot read it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArchABI:
    arch: str
    int_regs: tuple[str, ...]
    float_regs: tuple[str, ...]
    closure_reg: str
    g_reg: str
    arg_base: int  # SP offset of the first stack argument at entry
    regabi_since: tuple[int, int] | None  # first (major, minor) with ABIInternal on linux
    bpf_names: dict[str, str]  # Go register name -> bpftrace reg() name
    ptr_size: int = 8

    def bpf_name(self, reg: str) -> str | None:
        return self.bpf_names.get(reg)

    def uses_regabi(self, version: tuple[int, int, int] | None) -> bool:
        return bool(version and self.regabi_since and version[:2] >= self.regabi_since)


AMD64 = ArchABI(
    arch="amd64",
    int_regs=("AX", "BX", "CX", "DI", "SI", "R8", "R9", "R10", "R11"),
    float_regs=tuple(f"X{i}" for i in range(15)),
    closure_reg="DX",
    g_reg="R14",
    arg_base=8,
    regabi_since=(1, 17),
    bpf_names={"AX": "ax", "BX": "bx", "CX": "cx", "DX": "dx", "DI": "di", "SI": "si", "SP": "sp", "BP": "bp",
               **{f"R{i}": f"r{i}" for i in range(8, 16)}},
)

ARM64 = ArchABI(
    arch="arm64",
    int_regs=tuple(f"R{i}" for i in range(16)),
    float_regs=tuple(f"F{i}" for i in range(16)),
    closure_reg="R26",
    g_reg="R28",
    arg_base=8,
    regabi_since=(1, 18),
    bpf_names={**{f"R{i}": f"r{i}" for i in range(31)}, "RSP": "sp"},
)

PPC64LE = ArchABI(
    arch="ppc64le",
    int_regs=("R3", "R4", "R5", "R6", "R7", "R8", "R9", "R10", "R14", "R15", "R16", "R17"),
    float_regs=tuple(f"F{i}" for i in range(1, 13)),
    closure_reg="R11",
    g_reg="R30",
    arg_base=32,
    regabi_since=(1, 18),
    bpf_names={f"R{i}": f"r{i}" for i in range(32)},
)

_RISCV_INT = tuple(f"X{i}" for i in range(10, 18)) + ("X8", "X9") + tuple(f"X{i}" for i in range(18, 24))
_RISCV_ABI_NAMES = {**{f"X{i}": f"a{i - 10}" for i in range(10, 18)}, "X8": "s0", "X9": "s1",
                    **{f"X{i}": f"s{i - 16}" for i in range(18, 28)}, "X2": "sp", "X1": "ra"}
RISCV64 = ArchABI(
    arch="riscv64",
    int_regs=_RISCV_INT,
    float_regs=tuple(f"F{i}" for i in range(10, 18)) + ("F8", "F9") + tuple(f"F{i}" for i in range(18, 24)),
    closure_reg="X26",
    g_reg="X27",
    arg_base=8,
    regabi_since=(1, 19),
    bpf_names=_RISCV_ABI_NAMES,
)

LOONG64 = ArchABI(
    arch="loong64",
    int_regs=tuple(f"R{i}" for i in range(4, 20)),
    float_regs=tuple(f"F{i}" for i in range(16)),
    closure_reg="R29",
    g_reg="R22",
    arg_base=8,
    regabi_since=(1, 22),
    bpf_names={f"R{i}": f"r{i}" for i in range(32)},
)

S390X = ArchABI(
    arch="s390x",
    int_regs=tuple(f"R{i}" for i in range(2, 10)),
    float_regs=tuple(f"F{i}" for i in range(16)),
    closure_reg="R12",
    g_reg="R13",
    arg_base=8,
    regabi_since=(1, 26),
    bpf_names={f"R{i}": f"r{i}" for i in range(16)},
)

BY_ARCH = {a.arch: a for a in (AMD64, ARM64, PPC64LE, RISCV64, LOONG64, S390X)}


def arch_abi(arch: str) -> ArchABI | None:
    return BY_ARCH.get(arch)
