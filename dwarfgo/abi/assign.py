"""Layer 3: where each argument and result lives at function entry.

Go's assignment algorithm (cmd/compile/internal/abi, abi-internal.md), written as
one pass over the function's values:

* receiver, then arguments (the generic dictionary in its version's position),
  then results, which restart at the first register;
* each value goes wholly into registers or wholly onto the stack: try to give
  every leaf of the value a register; if a counter runs out, or the value holds
  an array of more than one element, restore the counters and put the value on
  the stack ("backfill": a later, smaller value may still take registers);
* zero-size values are placed on the stack, aligned, taking no space;
* stack layout from the argument base: stack arguments | align to pointer size |
  stack results | align | spill area (one slot per register argument).

ABI0 is the same algorithm with no registers.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

from ..errors import DwarfgoError
from ..functions import Function, Parameter
from ..gotypes import GoType, Kind
from .registers import ArchABI


@dataclass(frozen=True)
class Leaf:
    """One scalar part of a value: what a single register would hold."""

    path: str  # "" for a scalar, ".str"/".len", ".A.B", "[0]", ".real"/".imag"
    offset: int  # byte offset inside the value
    size: int
    type_name: str
    is_float: bool


@dataclass(frozen=True)
class RegisterPiece:
    leaf: Leaf
    register: str  # Go's name: AX, R3, X0
    bpf_name: str | None  # bpftrace reg() name; None: not readable by a uprobe

    @property
    def is_float(self) -> bool:
        return self.leaf.is_float

    @property
    def readable(self) -> bool:
        return self.bpf_name is not None and not self.leaf.is_float

    @property
    def unavailable_reason(self) -> str | None:
        if self.readable:
            return None
        if self.leaf.is_float:
            return f"float in {self.register}: bpftrace reg() reads only general registers"
        return f"register {self.register} is not readable with bpftrace reg()"


@dataclass(frozen=True)
class StackSlot:
    leaf: Leaf
    offset: int  # from SP at function entry

    @property
    def readable(self) -> bool:
        return True


Piece = RegisterPiece | StackSlot


@dataclass
class Location:
    """Where one parameter or result is at entry (results: where the function leaves them at RET)."""

    param: Parameter
    in_registers: bool
    pieces: list[Piece]
    stack_offset: int | None = None  # SP offset of the whole value (stack-assigned and zero-size values)
    spill_offset: int | None = None  # SP offset of the spill slot of a register-assigned argument

    @property
    def name(self) -> str:
        return self.param.name

    def describe(self) -> str:
        """`stack[+8,+16]`, `AX`, `BX CX`, `X0 (not readable by uprobes)`, `zero-size`."""
        if not self.pieces:
            return "zero-size"
        if not self.in_registers:
            return f"stack[+{self.stack_offset},+{self.stack_offset + self.param.type.size}]"
        regs = " ".join(p.register for p in self.pieces)
        if any(not p.readable for p in self.pieces):
            regs += " (not readable by uprobes)" if all(not p.readable for p in self.pieces) else " (floats not readable by uprobes)"
        return regs


@dataclass
class FunctionLayout:
    function: Function
    abi: str  # "ABIInternal" or "ABI0"
    arch: ArchABI
    inputs: list[Location]  # ABI order: receiver, [dict], arguments
    results: list[Location]
    stack_args_size: int  # bytes of stack-assigned arguments (from the argument base)
    results_offset: int  # start of stack results, from the argument base
    spill_offset: int  # start of the spill area, from the argument base
    spill_size: int
    notes: list[str] = field(default_factory=list)
    unknown: str | None = None  # why these locations cannot be trusted (then every value is unavailable)
    args_size_mismatch: tuple[int, int] | None = None  # (computed, runtime's) argument-area sizes

    def location_of(self, name: str) -> Location | None:
        for loc in self.inputs + self.results:
            if loc.param.name == name:
                return loc
        return None


def _round_up(n: int, align: int) -> int:
    return (n + align - 1) // align * align if align > 1 else n


def leaves(t: GoType, prefix: str = "", base: int = 0) -> list[Leaf]:
    """The scalar parts of a value in memory order (arrays element by element, zero-size parts omitted)."""
    k = t.kind
    if t.size == 0:
        return []
    if k in (Kind.BOOL, Kind.INT, Kind.UINT, Kind.UINTPTR, Kind.POINTER, Kind.UNSAFE_POINTER, Kind.MAP, Kind.CHAN, Kind.FUNC):
        return [Leaf(prefix, base, t.size, t.name, False)]
    if k is Kind.FLOAT:
        return [Leaf(prefix, base, t.size, t.name, True)]
    if k is Kind.COMPLEX:
        half = t.size // 2
        fname = f"float{half * 8}"
        return [Leaf(prefix + ".real", base, half, fname, True), Leaf(prefix + ".imag", base + half, half, fname, True)]
    if k in (Kind.STRING, Kind.SLICE, Kind.INTERFACE, Kind.STRUCT):
        out = []
        for f in t.fields:
            out += leaves(f.type, f"{prefix}.{f.name}", base + f.offset)
        return out
    if k is Kind.ARRAY:
        out = []
        esize = t.elem.size
        for i in range(t.length or 0):
            out += leaves(t.elem, f"{prefix}[{i}]", base + i * esize)
        return out
    raise ValueError(f"no leaves for {t!r}")


_MAX_LEAVES = 1 << 16  # scalar parts of one value (a [65536]int64 on the stack is 512 KiB)
_MAX_VALUE = 1 << 20  # bytes of one value: at most that many scalar parts to list


def _register_assignable(t: GoType) -> bool:
    """False when the value holds an array of more than one element (never passed in registers)."""
    if t.size == 0:
        return True
    if t.kind is Kind.ARRAY:
        return t.length == 1 and _register_assignable(t.elem)
    if t.kind is Kind.STRUCT:
        return all(_register_assignable(f.type) for f in t.fields)
    return True


_PARTS: "weakref.WeakKeyDictionary[GoType, tuple[list[Leaf], bool]]" = weakref.WeakKeyDictionary()


def _parts(t: GoType) -> tuple[list[Leaf], bool]:
    """leaves(t) and _register_assignable(t), once per type object (a whole-binary run places the
    same few hundred types tens of thousands of times); callers must not change the list."""
    found = _PARTS.get(t)
    if found is None:
        found = _PARTS[t] = (leaves(t), _register_assignable(t))
    return found


class _Assigner:
    def __init__(self, arch: ArchABI, use_registers: bool):
        self.arch = arch
        self.n_int = len(arch.int_regs) if use_registers else 0
        self.n_float = len(arch.float_regs) if use_registers else 0
        self.used_int = 0
        self.used_float = 0
        self.stack = 0  # offset from the argument base
        self.spill = 0

    def restart_registers(self) -> None:
        self.used_int = self.used_float = 0

    def place(self, p: Parameter, is_result: bool) -> Location:
        t = p.type
        if t.size > _MAX_VALUE:
            raise DwarfgoError(f"{p.name or 'a parameter'}: its type {t.name} is {t.size} bytes, too large to lay "
                               f"out (more than {_MAX_VALUE}; damaged DWARF?)")
        try:
            parts, assignable = _parts(t)
        except RecursionError:
            raise DwarfgoError(f"{p.name or 'a parameter'}: its type {t.name} nests too deeply to lay out "
                               f"(damaged DWARF: a type containing itself?)") from None
        if len(parts) > _MAX_LEAVES:
            raise DwarfgoError(f"{p.name or 'a parameter'}: its type {t.name} has {len(parts)} scalar parts, "
                               f"more than dwarfgo lays out ({_MAX_LEAVES})")
        if t.size == 0:
            off = _round_up(self.stack, t.align)
            self.stack = off
            return Location(p, False, [], stack_offset=self.arch.arg_base + off)
        ints = sum(1 for leaf in parts if not leaf.is_float)
        floats = len(parts) - ints
        if (assignable and self.used_int + ints <= self.n_int
                and self.used_float + floats <= self.n_float):
            pieces: list[Piece] = []
            for leaf in parts:
                if leaf.is_float:
                    reg = self.arch.float_regs[self.used_float]
                    self.used_float += 1
                    pieces.append(RegisterPiece(leaf, reg, None))
                else:
                    reg = self.arch.int_regs[self.used_int]
                    self.used_int += 1
                    pieces.append(RegisterPiece(leaf, reg, self.arch.bpf_name(reg)))
            loc = Location(p, True, pieces)
            if not is_result:
                self.spill = _round_up(self.spill, t.align)
                loc.spill_offset = self.spill  # relative to the spill area; made absolute later
                self.spill += t.size
            return loc
        off = _round_up(self.stack, t.align)
        self.stack = off + t.size
        base = self.arch.arg_base + off
        return Location(p, False, [StackSlot(leaf, base + leaf.offset) for leaf in parts], stack_offset=base)


def abi_inputs(fn: Function, version: tuple[int, int, int] | None, ptr_type: GoType | None = None) -> list[Parameter]:
    """The function's inputs in ABI order, with the generic dictionary where the compiler puts it:
    first in Go 1.18-1.19, after the receiver from 1.21 (design notes §2)."""
    inputs = list(fn.inputs)
    dicts = [p for p in inputs if p.name == ".dict"]
    if fn.is_closure or (not dicts and not fn.is_generic_shape):
        # a closure's dictionary is a captured variable: in the closure context, or where DWARF
        # lists it when the compiler turned the captures into parameters (a literal called directly)
        return inputs
    if dicts:
        d = dicts[0]
        inputs.remove(d)
    elif ptr_type is not None:
        d = Parameter(".dict", ptr_type, False, None)
    else:
        return inputs
    early = version is not None and version[:2] < (1, 20)
    pos = 0 if early or fn.receiver is None else 1
    inputs.insert(pos, d)
    return inputs


def assign(fn: Function, arch: ArchABI, regabi: bool, version: tuple[int, int, int] | None = None,
           dict_type: GoType | None = None) -> FunctionLayout:
    """Compute every input's and result's location at entry."""
    a = _Assigner(arch, regabi)
    ins = [a.place(p, False) for p in abi_inputs(fn, version, dict_type)]
    stack_args = a.stack
    a.stack = _round_up(a.stack, arch.ptr_size)
    results_offset = a.stack
    a.restart_registers()
    outs = [a.place(p, True) for p in fn.results]
    spill_offset = _round_up(a.stack, arch.ptr_size)
    spill_size = _round_up(a.spill, arch.ptr_size)
    for loc in ins:
        if loc.spill_offset is not None:
            loc.spill_offset += arch.arg_base + spill_offset
    layout = FunctionLayout(fn, "ABIInternal" if regabi else "ABI0", arch, ins, outs, stack_args,
                            results_offset, spill_offset, spill_size)
    if fn.omitted_inputs:
        layout.unknown = (f"this Go version's DWARF omits {fn.omitted_inputs} blank or unnamed parameter(s), "
                          f"so the stack layout of the others cannot be known")
    if fn.is_generic_shape and not any(p.name == ".dict" for p in fn.inputs) and dict_type is None:
        layout.notes.append("generic shape function: the hidden dictionary argument is not in DWARF and was not placed")
    return layout
