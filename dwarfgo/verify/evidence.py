"""The verdict on one function's ABI: computed locations against DWARF and against the machine code."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..abi.assign import FunctionLayout, assign
from ..abi.registers import arch_abi
from ..errors import DwarfgoError
from ..functions import Function
from .dwarfloc import DwarfLocationReport, check_layout
from .machine import MachineReport, SpillCheck, analyze, analyze_fully, check_spills


@dataclass
class AbiEvidence:
    function: Function
    layout: FunctionLayout
    producer: str
    machine: MachineReport | None
    spills: SpillCheck | None
    dwarf: DwarfLocationReport
    contradictions: list[str] = field(default_factory=list)

    @property
    def abi(self) -> str:
        return self.layout.abi

    @property
    def role(self) -> str:
        """`body`, or `wrapper/assembly (.abi0)` for stack-ABI symbols."""
        sym = self.function.symbol
        if sym.name.endswith(".abi0"):
            return "wrapper/assembly (.abi0)"
        return "assembly (a name with no package)" if sym.is_abi0 else "body"

    @property
    def consistent(self) -> bool:
        return not self.contradictions


def require_arch(prog):
    """The register table of the binary's architecture; an error for one dwarfgo does not support."""
    arch = arch_abi(prog.binary.arch)
    if arch is None:
        raise DwarfgoError(f"architecture {prog.binary.arch} has no register table in dwarfgo")
    return arch


def layout_for(prog, fn: Function) -> FunctionLayout:
    return _layout_and_dwarf(prog, fn)[0]


def _layout_and_dwarf(prog, fn: Function, reference: bool = False) -> tuple[FunctionLayout, DwarfLocationReport | None]:
    """The computed layout, guarded by its witnesses, and DWARF's report on it when the guard
    read DWARF (so that gather() does not read it again). `reference`: as gather()'s."""
    arch = require_arch(prog)
    version = prog.index.version_tuple
    regabi = fn.regabi
    layout = assign(fn, arch, regabi, version, dict_type=_dict_type(prog, fn))
    report = None
    if layout.unknown is None:
        sized = _guard_args_size(prog, layout)
        if layout.unknown is None:
            # DWARF's own entry locations witness the parameter list and its order: on the stack
            # ABI, where they are exact at entry (Go 1.15 on ppc64le lists parameters out of
            # declaration order, with the same total size); without an argument-area size; and,
            # on the register ABI, where DWARF puts a value in another parameter's register of
            # another type (no reassignment does that)
            report = _guard_dwarf_gaps(prog, layout, strict=layout.abi == "ABI0" or not sized, reference=reference)
    return layout, report


def _guard_args_size(prog, layout) -> bool:
    """The runtime's function table records the size of the argument area (stack arguments,
    stack results, spill area). If the DWARF parameters do not fill exactly that, one is
    missing from DWARF (blank/unnamed parameters before Go 1.22, receivers of compiler-generated
    wrappers), and no location computed from them can be trusted."""
    size = prog.functab.args_size(layout.function.address)
    if size is None:
        return False
    mine = layout.spill_offset + layout.spill_size
    if size != mine:
        layout.args_size_mismatch = (mine, size)
        layout.unknown = (f"the runtime's function table gives {size} bytes of arguments, the DWARF parameters "
                          f"account for {mine}: a parameter is missing from DWARF (blank or unnamed before Go 1.22, "
                          f"or the receiver of a compiler-generated wrapper)")
    return True


def _guard_dwarf_gaps(prog, layout, strict: bool, reference: bool = False) -> DwarfLocationReport:
    """DWARF's entry locations must match the computed ones. A disagreement other than Go's
    known defects (strict), or one that puts a value in another parameter's register of another
    type (not strict), means the parameter list is not what the function receives: then no
    location can be trusted. Returns DWARF's report."""
    report = check_layout(prog.index.dwarf, layout, prog.binary.arch, prog.binary.path,
                          None if reference else prog.index.raw_locations)
    for c in report.disagreements:
        if c.known:
            continue
        if not strict and not c.crossed:
            continue  # register DWARF of reassigned values is unreliable; only a crossed type is decisive
        layout.unknown = (f"DWARF places {c.name} at {c.dwarf} but the ABI puts it at {c.computed}: this Go "
                          f"version's DWARF lacks a parameter or lists them out of declaration order")
        break
    return report


def _dict_type(prog, fn: Function):
    """A pointer-sized type for a generic shape function's hidden dictionary when DWARF omits it."""
    if not fn.is_generic_shape or fn.is_closure or any(p.name == ".dict" for p in fn.inputs):
        return None
    try:
        return prog.type_named("*uint8")
    except DwarfgoError:
        return None


def prepare_gather(prog) -> None:
    """Read once what gather() reads for every function of a whole-binary run, before the work is
    shared out to worker processes (see parallel): the runtime's function table located, the raw
    location sections, the machine-code decoders and what is known of them (machine.learn_decoder_facts)."""
    try:
        prog.functab._index  # the table's index located, which every worker searches
        prog.index.raw_locations
    except DwarfgoError:
        return  # each function says so, as without this
    if prog.binary.arch in ("amd64", "arm64"):
        from . import machine
        if prog.binary.arch == "amd64":
            machine._import_iced()
        machine._decoder(prog.binary.arch, False)
        machine._decoder(prog.binary.arch, True)
        machine.learn_decoder_facts(prog.binary)


def trusted_layout(prog, fn: Function) -> tuple[FunctionLayout, MachineReport | None]:
    """The layout to read values from, and the machine-code report: when the witnesses contradict
    each other (what `dwarfgo abi` reports, exit 3), no location of the function is trusted: every
    value is unavailable with the contradiction as the reason, never read from a doubtful place.
    A method built from the runtime type tables (no DWARF) brings the layout its own witnesses
    checked (tablesig.probe_function_from_tables)."""
    checked = getattr(fn, "checked_layout", None)
    if checked is not None:
        machine = None
        if prog.binary.arch in ("amd64", "arm64") and fn.symbol.size:
            machine = analyze(prog.binary, fn.address, fn.symbol.size)
        return checked, machine
    ev = gather(prog, fn)
    layout = ev.layout
    if ev.contradictions and layout.unknown is None:
        more = f" (and {len(ev.contradictions) - 1} more)" if len(ev.contradictions) > 1 else ""
        layout.unknown = (f"the ABI evidence contradicts itself: {ev.contradictions[0]}{more}; "
                          f"see `dwarfgo abi`")
    return layout, ev.machine


def gather(prog, fn: Function, machine: bool = True, reference: bool = False) -> AbiEvidence:
    """The three witnesses of fn's ABI and their contradictions. `reference`: read every
    location through pyelftools and disassemble the whole body with details (the slow paths
    the light ones are checked against: scripts/compare-abi-paths, tests/test_abi_paths.py)."""
    layout, dwarf = _layout_and_dwarf(prog, fn, reference)
    if dwarf is None:
        dwarf = check_layout(prog.index.dwarf, layout, prog.binary.arch, prog.binary.path,
                             None if reference else prog.index.raw_locations)
    mreport = spills = None
    if machine and prog.binary.arch in ("amd64", "arm64") and fn.symbol.size:
        mreport = (analyze_fully if reference else analyze)(prog.binary, fn.address, fn.symbol.size)
        spills = check_spills(layout, mreport)
    ev = AbiEvidence(fn, layout, fn.unit.producer if fn.unit else "", mreport, spills, dwarf)
    # contradictions between the three witnesses
    if mreport is not None and prog.binary.arch == "amd64":
        kind = mreport.stack_check.kind
        if kind == "g-register" and layout.abi == "ABI0":
            ev.contradictions.append("prologue reads g from R14 (register ABI) but the producer says ABI0")
        if kind == "tls" and layout.abi == "ABIInternal":
            ev.contradictions.append("prologue reads g from TLS (ABI0) but the producer says regabi")
    if spills is not None and spills.agrees is False and not layout.unknown:
        ev.contradictions.append("morestack spills disagree: " + spills.detail)
    for c in dwarf.disagreements:
        if layout.unknown:
            c.known = c.known or layout.unknown  # explained: the DWARF lacks parameters
        if not c.known:
            ev.contradictions.append(f"DWARF location of {c.name} disagrees: {c.detail} (computed {c.computed}, DWARF {c.dwarf})")
    return ev
