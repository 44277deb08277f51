"""A function's signature and argument locations from the runtime type tables, for a binary
with no DWARF and no twin (`dwarfgo sig` on a `-ldflags='-s -w'` build).

Only methods have a signature there: the method table of a type lists each method's func type
(`mtyp`) and code address (see typetables). The method's values are named by position (the
receiver `recv`, parameters p0, p1, ..., results r0, r1, ...) since Go records no names. The
locations follow from the types by the ABI's assignment (abi.assign), and are checked by two
witnesses that need no DWARF: the function table's argument-area size must equal the one the
assignment gives, and the morestack spills in the machine code (register ABI) must store the
registers the assignment gives. A witness that disagrees makes every location unknown.
"""

from __future__ import annotations

from dataclasses import dataclass

from .abi.assign import FunctionLayout, assign
from .binary import parse_go_version
from .errors import DwarfgoError
from .functions import Function, Parameter, split_symbol
from .names import lookup
from .typetables import SOURCE, MethodSignature, RuntimeTypeModel


@dataclass
class TableSignature:
    function: Function  # values named recv, p0..., r0...; no DWARF behind it
    method: MethodSignature
    layout: FunctionLayout | None  # None: no register table for the architecture
    args_size: int | None  # the function table's argument-area size
    spills: str  # what the machine code's morestack spills say

    def record(self) -> dict:
        """For `sig --json`."""
        fn, layout = self.function, self.layout
        locs = {id(loc.param): loc for loc in (layout.inputs + layout.results)} if layout else {}

        def value(p):
            loc = locs.get(id(p))
            return {"name": p.name, "type": p.type.name, "size": p.type.size, "align": p.type.align,
                    "location": None if layout is None or layout.unknown or loc is None else loc.describe()}

        return {"function": fn.name, "address": fn.address, "signature": fn.signature(), "source": SOURCE,
                "receiver": value(fn.receiver), "params": [value(p) for p in fn.arguments],
                "results": [value(p) for p in fn.results], "abi": layout.abi if layout else None,
                "args_size": self.args_size, "spills": self.spills,
                "locations_unknown": layout.unknown if layout else "no register table for this architecture"}

    def lines(self, go_version: str | None, arch: str) -> list[str]:
        fn, layout = self.function, self.layout
        out = [fn.signature(),
               f"  symbol  {fn.name} at {fn.address:#x}",
               f"  binary  {go_version} {arch}, no DWARF; ABI {layout.abi if layout else 'unknown'}",
               f"  source  {SOURCE}: method {self.method.method} of {self.method.receiver.name} (Go records no "
               f"parameter names: named by position)"]
        locs = {id(loc.param): loc for loc in (layout.inputs + layout.results)} if layout else {}
        rows = [("receiver" if p is fn.receiver else "param", p) for p in fn.inputs] + \
               [("result", p) for p in fn.results]
        width = max(len(p.name) for _, p in rows)
        twidth = max(len(p.type.name) for _, p in rows)
        for role, p in rows:
            loc = locs.get(id(p))
            where = "unknown" if layout is None or layout.unknown or loc is None else loc.describe()
            out.append(f"  {role:<8} {p.name:<{width}}  {p.type.name:<{twidth}}  size {p.type.size:<4} "
                       f"align {p.type.align:<2} {where}")
        out.append(f"  check   argument area {self.args_size if self.args_size is not None else 'unknown'} bytes "
                   f"in the function table; morestack spills: {self.spills}")
        if layout is not None and layout.unknown:
            out.append(f"  note    locations unknown: {layout.unknown}")
        return out


def tables_only(prog) -> bool:
    """Whether this program has neither DWARF (in the binary or a split-off debug file it names)
    nor a twin: then only the runtime tables describe it."""
    binary = prog.binary
    if prog.twin is not None or binary.elf.get_section_by_name(".gnu_debuglink") is not None:
        return False
    return not binary.has_dwarf


def function_from_method(symbol, m: MethodSignature) -> Function:
    """A Function for a method of the tables: receiver `recv`, parameters p0..., results r0..."""
    inputs = [Parameter("recv", m.receiver, False)] + [Parameter(f"p{i}", t, False) for i, t in enumerate(m.params)]
    results = [Parameter(f"r{i}", t, True) for i, t in enumerate(m.results)]
    _, recv, rest = split_symbol(symbol.name)
    receiver_name = recv or rest.rsplit(".", 1)[0]
    return Function(symbol, None, inputs, results, None, receiver_name)


def signature_from_tables(prog, query: str, model: RuntimeTypeModel | None = None) -> TableSignature:
    """The signature of the function `query` names, from the runtime type tables; a one-line
    DwarfgoError saying why when they do not give it."""
    binary = prog.binary
    sym = lookup(binary.function_symbols, query)
    model = model or RuntimeTypeModel(binary)
    m = model.methods_by_address.get(sym.address)
    advice = binary.no_dwarf_advice()
    if m is None:
        raise DwarfgoError(f"{sym.name}: no signature without DWARF: it is not a method in the runtime type tables "
                           f"(they list only the methods of types that reach an interface or reflection); "
                           f"{advice}")
    if not m.known:
        raise DwarfgoError(f"{sym.name} is method {m.method} of {m.receiver.name} in the runtime type tables, but "
                           f"the linker dropped its type (mtyp: no interface or reflection needs it): its "
                           f"signature is unknown; {advice}")
    fn = function_from_method(sym, m)
    version = parse_go_version(binary.go_version)
    from .abi.registers import arch_abi
    arch = arch_abi(binary.arch)
    layout = None
    args_size = prog.functab.args_size(sym.address)
    spills = "not checked"
    if arch is not None:
        layout = assign(fn, arch, arch.uses_regabi(version), version)
        mine = layout.spill_offset + layout.spill_size
        if args_size is not None and args_size != mine:
            layout.unknown = (f"the function table gives {args_size} bytes of arguments, the method's type accounts "
                              f"for {mine}")
        if binary.arch in ("amd64", "arm64") and sym.size:
            from .verify.machine import analyze, check_spills
            check = check_spills(layout, analyze(binary, sym.address, sym.size))
            spills = {True: "agree", False: "DISAGREE", None: "no evidence"}[check.agrees]
            if check.detail:
                spills += f" ({check.detail})"
            if check.agrees is False and layout.unknown is None:
                layout.unknown = f"the machine code's morestack spills disagree: {check.detail}"
    return TableSignature(fn, m, layout, args_size, spills)

