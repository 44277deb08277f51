"""Cross-check 1: the locations Go's DWARF gives each parameter at the function's entry.

Reads the location (a single expression, or the location-list entry that starts at
low_pc), decodes registers (`DW_OP_regN`/`regx`), frame-base offsets
(`DW_OP_call_frame_cfa`, `DW_OP_fbreg`) and `DW_OP_piece`s with pyelftools, and
compares them with the computed assignment, piece by piece in leaf order (optimised
builds emit no padding pieces).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from elftools.dwarf.dwarf_expr import DWARFExprParser
from elftools.dwarf.locationlists import BaseAddressEntry, LocationEntry

from ..diescan import ScanUnsupported
from ..dwarf import cu_offset_of
from ..errors import reading
from ..locscan import RawLocations, expression_places
from ..varint import offset_address

from ..abi.assign import FunctionLayout, Location, RegisterPiece, StackSlot

# DWARF register numbers -> Go register names
_DWARF_REGS = {
    "amd64": {0: "AX", 1: "DX", 2: "CX", 3: "BX", 4: "SI", 5: "DI", 6: "BP", 7: "SP",
              **{i: f"R{i}" for i in range(8, 16)}, **{17 + i: f"X{i}" for i in range(16)}},
    "arm64": {**{i: f"R{i}" for i in range(31)}, 31: "RSP", **{64 + i: f"F{i}" for i in range(32)}},
    "ppc64le": {**{i: f"R{i}" for i in range(32)}, **{32 + i: f"F{i}" for i in range(32)}},
    "riscv64": {**{i: f"X{i}" for i in range(32)}, **{32 + i: f"F{i}" for i in range(32)}},
    "loong64": {**{i: f"R{i}" for i in range(32)}, **{32 + i: f"F{i}" for i in range(32)}},
    # s390x ELF ABI: DWARF 16-31 are f0, f2, f4, f6, f1, f3, f5, f7, f8, f10, f12, f14, f9, f11, f13, f15
    "s390x": {**{i: f"R{i}" for i in range(16)},
              **{16 + k: f"F{n}" for k, n in enumerate((0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15))}},
}

# SP offset of the CFA at function entry (the frame base of every Go function is the CFA).
CFA_AT_ENTRY = {"amd64": 8, "arm64": 0, "ppc64le": 0, "riscv64": 0, "loong64": 0, "s390x": 0}


@dataclass(frozen=True)
class DwarfPiece:
    """One piece of a DWARF location: a register, a stack address (SP-relative at entry), or nothing."""

    size: int | None  # DW_OP_piece size; None for a whole-value location
    register: str | None = None
    sp_offset: int | None = None

    def place(self) -> str:
        return self.register or (f"SP+{self.sp_offset}" if self.sp_offset is not None else "?")

    def text(self) -> str:
        return self.place() if self.size is None else f"{self.place()}:{self.size}"


@dataclass
class ParamCheck:
    name: str
    computed: str
    dwarf: str | None  # None: DWARF gives no entry location
    agrees: bool | None  # None: no evidence
    detail: str = ""
    known: str = ""  # a known Go DWARF defect that explains the disagreement
    crossed: bool = False  # DWARF puts this value in another parameter's register, of another type


@dataclass
class DwarfLocationReport:
    checks: list[ParamCheck] = field(default_factory=list)

    @property
    def disagreements(self) -> list[ParamCheck]:
        return [c for c in self.checks if c.agrees is False]

    @property
    def verdict(self) -> str:
        if self.disagreements:
            return "disagrees"
        if any(c.agrees for c in self.checks):
            return "agrees"
        return "no evidence"


def entry_location(dwarf, die, low_pc: int, arch: str) -> list[DwarfPiece] | None:
    """The pieces of a parameter's DWARF location valid at `low_pc`, or None if DWARF has none."""
    attr = die.attributes.get("DW_AT_location")
    if attr is None:
        return None
    parser = _expression_parser(die.cu.structs)
    if attr.form.startswith("DW_FORM_block") or attr.form == "DW_FORM_exprloc":
        expr = attr.value
    elif attr.form in ("DW_FORM_sec_offset", "DW_FORM_loclistx", "DW_FORM_data4", "DW_FORM_data8"):
        lists = dwarf.location_lists()
        if lists is None:
            return None
        top = die.cu.get_top_DIE()
        base = top.attributes["DW_AT_low_pc"].value if "DW_AT_low_pc" in top.attributes else 0
        expr = None
        for entry in lists.get_location_list_at_offset(attr.value, die=die):
            if isinstance(entry, BaseAddressEntry):
                base = entry.base_address
            elif isinstance(entry, LocationEntry):
                size = die.cu.structs.address_size
                begin = entry.begin_offset if entry.is_absolute else offset_address(base, entry.begin_offset, size)
                end = entry.end_offset if entry.is_absolute else offset_address(base, entry.end_offset, size)
                if begin <= low_pc < end:
                    expr = entry.loc_expr
                    break
        if expr is None:
            return None
    else:
        return None
    if not expr:
        return None
    return decode(parser.parse_expr(expr), arch)


_PARSERS: dict[tuple, DWARFExprParser] = {}


def _expression_parser(structs) -> DWARFExprParser:
    """One pyelftools expression parser per kind of unit (building one builds its dispatch table)."""
    key = (structs.little_endian, structs.dwarf_format, structs.address_size, structs.dwarf_version)
    parser = _PARSERS.get(key)
    if parser is None:
        parser = _PARSERS[key] = DWARFExprParser(structs)
    return parser


def entry_location_raw(raw: RawLocations, die, low_pc: int, arch: str) -> list[DwarfPiece] | None:
    """entry_location() read from the raw sections (locscan); ScanUnsupported where that cannot
    decode the location, which entry_location() then reads."""
    expr = raw.entry_expression(die.offset, cu_offset_of(die), low_pc)
    if expr is None:
        return None
    regs = _DWARF_REGS.get(arch, {})
    cfa = CFA_AT_ENTRY.get(arch, 0)
    pieces: list[DwarfPiece] = []
    reg, sp = None, None
    for kind, number, size in expression_places(expr):  # as decode() does with pyelftools' operations
        if kind == "reg":
            reg = regs.get(number, f"DW_OP_reg{number}")
        elif kind == "regx":
            reg = regs.get(number, f"dwarfreg{number}")
        elif kind == "cfa":
            sp = cfa
        elif kind == "fbreg":
            sp = cfa + number
        elif kind == "plus":
            if sp is not None:
                sp += number
            else:
                raise ScanUnsupported("DW_OP_plus_uconst without an address")  # decode() names it
        elif kind == "piece":
            pieces.append(DwarfPiece(size, reg, sp))
            reg, sp = None, None
    if reg is not None or sp is not None:
        pieces.append(DwarfPiece(None, reg, sp))
    return pieces


def decode(ops, arch: str) -> list[DwarfPiece]:
    regs = _DWARF_REGS.get(arch, {})
    cfa = CFA_AT_ENTRY.get(arch, 0)
    pieces: list[DwarfPiece] = []
    reg, sp = None, None
    for op in ops:
        name = op.op_name
        if name.startswith("DW_OP_reg") and name != "DW_OP_regx":
            reg = regs.get(int(name[len("DW_OP_reg"):]), name)
        elif name == "DW_OP_regx":
            reg = regs.get(op.args[0], f"dwarfreg{op.args[0]}")
        elif name == "DW_OP_call_frame_cfa":
            sp = cfa
        elif name == "DW_OP_fbreg":
            sp = cfa + op.args[0]
        elif name in ("DW_OP_plus_uconst",) and sp is not None:
            sp += op.args[0]
        elif name == "DW_OP_piece":
            pieces.append(DwarfPiece(op.args[0], reg, sp))
            reg, sp = None, None
        else:
            pieces.append(DwarfPiece(None, f"<{name}>", None))
            reg, sp = None, None
    if reg is not None or sp is not None:
        pieces.append(DwarfPiece(None, reg, sp))
    return pieces


def _computed_text(loc: Location) -> str:
    if not loc.pieces:
        return "zero-size"
    return " ".join(_where(p) for p in loc.pieces)


def compare(loc: Location, dwarf_pieces: list[DwarfPiece] | None) -> ParamCheck:
    computed = _computed_text(loc) if loc.pieces else f"zero-size at SP+{loc.stack_offset}"
    if dwarf_pieces is None:
        return ParamCheck(loc.name, computed, None, None, "no DWARF location at entry")
    text = " ".join(p.text() for p in dwarf_pieces)
    # a whole-value stack location: one address for the value
    if len(dwarf_pieces) == 1 and dwarf_pieces[0].size is None:
        d = dwarf_pieces[0]
        if d.sp_offset is not None:
            if loc.in_registers and d.sp_offset == loc.spill_offset:
                return ParamCheck(loc.name, computed, text, False,
                                  f"DWARF gives the spill slot SP+{d.sp_offset}, which is not written at entry",
                                  known="Go's DWARF places register-passed values it keeps spilled (e.g. the generic "
                                        "dictionary .dict) at their spill slot for the whole function")
            ok = not loc.in_registers and d.sp_offset == loc.stack_offset
            check = ParamCheck(loc.name, computed, text, ok, "" if ok else f"DWARF puts it at SP+{d.sp_offset}")
            if not ok and points_inside(loc, d.sp_offset):
                check.known = KNOWN_INSIDE
            return check
        if d.register is not None:
            ok = len(loc.pieces) == 1 and isinstance(loc.pieces[0], RegisterPiece) and loc.pieces[0].register == d.register
            return ParamCheck(loc.name, computed, text, ok, "" if ok else f"DWARF says {d.register}")
    # pieces, in leaf order; pieces without a location are parts DWARF does not describe
    described = ""
    if len(dwarf_pieces) < len(loc.pieces):
        # optimised builds describe only the parts still in use (a slice whose cap is unused, a
        # struct of which one field is read): each described part must be one of the leaves
        described = f"DWARF describes {len(dwarf_pieces)} of {len(loc.pieces)} parts"
        by_leaf = {(p.offset if isinstance(p, StackSlot) else None, p.leaf.size): p for p in loc.pieces}
        if all(theirs.register is None and theirs.sp_offset is None for theirs in dwarf_pieces):
            return ParamCheck(loc.name, computed, text, None, "DWARF describes no part")
        if all(theirs.sp_offset is not None for theirs in dwarf_pieces if theirs.register or theirs.sp_offset):
            missing = [t.text() for t in dwarf_pieces
                       if (t.register or t.sp_offset is not None) and (t.sp_offset, t.size) not in by_leaf]
            return ParamCheck(loc.name, computed, text, not missing,
                              described if not missing else "DWARF parts " + ", ".join(missing) + " are no leaf")
    elif len(dwarf_pieces) > len(loc.pieces):
        # Go 1.19-1.21: some values list a piece repeatedly, or with an undescribed hole
        for aligned in repeat_alignments(loc, dwarf_pieces):
            if not mismatched_pieces(loc, aligned):
                return ParamCheck(loc.name, computed, text, False, "DWARF repeats pieces", known=KNOWN_REPEATED_PIECE)
        return ParamCheck(loc.name, computed, text, False,
                          f"{len(dwarf_pieces)} DWARF pieces for {len(loc.pieces)} leaves")
    bad = [f"{mine.leaf.path or 'value'}: {_where(mine)} vs DWARF {theirs.text()}"
           for mine, theirs in mismatched_pieces(loc, dwarf_pieces)]
    return ParamCheck(loc.name, computed, text, not bad, "; ".join(bad) or described)


def _where(piece) -> str:
    return piece.register if isinstance(piece, RegisterPiece) else f"SP+{piece.offset}"


def _same_place(piece, theirs: DwarfPiece) -> bool:
    if isinstance(piece, RegisterPiece):
        return theirs.register == piece.register
    return theirs.register is None and theirs.sp_offset == piece.offset


def mismatched_pieces(loc: Location, aligned: list[DwarfPiece]) -> list[tuple]:
    """(computed piece, DWARF piece) pairs, in leaf order, where a described DWARF piece is elsewhere."""
    return [(mine, theirs) for mine, theirs in zip(loc.pieces, aligned)
            if (theirs.register is not None or theirs.sp_offset is not None) and not _same_place(mine, theirs)]


def repeat_alignments(loc: Location, dwarf_pieces: list[DwarfPiece]):
    """The ways to read DWARF's surplus pieces as Go 1.19-1.21's repeats: drop exactly the surplus
    number of pieces, each an undescribed hole or a repeat of the last described piece before it."""
    surplus = len(dwarf_pieces) - len(loc.pieces)
    if surplus <= 0:
        return
    # every hole and every repeat dropped (the usual shape: `AX:8 AX:8 BX:8 CX:8`)
    described = [p for p in dwarf_pieces if p.register is not None or p.sp_offset is not None]
    collapsed = [p for i, p in enumerate(described) if i == 0 or p != described[i - 1]]
    if len(collapsed) == len(loc.pieces):
        yield collapsed
    droppable, previous = [], None  # holes, and repeats of the last described piece
    for i, p in enumerate(dwarf_pieces):
        if p.register is None and p.sp_offset is None:
            droppable.append(i)
            continue
        if p == previous:
            droppable.append(i)
        previous = p
    if len(droppable) < surplus or len(droppable) > 12:
        return
    for drop in itertools.combinations(droppable, surplus):
        yield [p for i, p in enumerate(dwarf_pieces) if i not in drop]


def merged_lengths(loc: Location, dwarf_pieces: list[DwarfPiece], layout: FunctionLayout) -> bool:
    """golang/go#48405: DWARF gives a slice's (or string's) .len or .cap the place of another int the
    function receives (the other's .len, or the same slice's len as its cap): it follows a value the
    optimiser merged with an equal one later in the function. True when that explains every
    disagreeing piece, after Go 1.19-1.21's repeats are read as such."""
    int_places: dict[str, list] = {}  # where the ABI puts each int piece of the inputs
    for other in layout.inputs:
        for piece in other.pieces:
            if piece.leaf.type_name == "int":
                int_places.setdefault(_where(piece), []).append(piece)
    alignments = [dwarf_pieces] if len(dwarf_pieces) == len(loc.pieces) else list(repeat_alignments(loc, dwarf_pieces))
    for aligned in alignments:
        bad = mismatched_pieces(loc, aligned)
        if bad and all(mine.leaf.path.endswith((".len", ".cap")) and mine.leaf.type_name == "int"
                       and any(p is not mine for p in int_places.get(theirs.place(), []))
                       for mine, theirs in bad):
            return True
    return False


KNOWN_REPEATED_PIECE = ("Go 1.19-1.21 DWARF repeats register pieces of some multi-register values (with "
                        "undescribed holes); without the repeats the pieces agree")
KNOWN_INSIDE = ("golang/go#61700: optimised ABI0 DWARF gives a partly used value the address of the "
                "part still in use (e.g. a string's len field)")


def points_inside(loc: Location, sp_offset: int | None) -> bool:
    """DWARF's address is not the value's start but one of its parts (a known Go defect)."""
    if sp_offset is None or loc.in_registers or loc.stack_offset is None:
        return False
    inner = sp_offset - loc.stack_offset
    return 0 < inner < loc.param.type.size and any(
        isinstance(p, StackSlot) and p.offset == sp_offset for p in loc.pieces)


KNOWN_MERGED_LENGTH = ("golang/go#48405: DWARF gives a slice's len or cap the place of another int "
                       "argument it is later merged with (math/big.nat.expNNMontgomery: len(x) == len(m))")
KNOWN_SWAPPED = ("DWARF names the register the ABI gives another parameter of the same type: it follows a "
                 "value the function exchanges between parameters (math/big.(*Int).And: x, y = y, x)")
KNOWN_REASSIGNED = ("DWARF's entry stack offsets run against the parameter order: it follows a value the "
                    "function reassigns from the entry on (math/big.(*Int).And swaps x and y); the layout in "
                    "declaration order stands")


def check_layout(dwarf, layout: FunctionLayout, arch: str, path="binary",
                 raw: RawLocations | None = None) -> DwarfLocationReport:
    """DWARF's entry location of each input against the computed one. With `raw`, locations
    are read from the raw sections where they can be (the same answer, a fraction of the time)."""
    report = DwarfLocationReport()
    low_pc = layout.function.address
    offsets = []  # DWARF's first stack offset of each input, in list order (stack ABI)
    owner = {p.register: loc for loc in layout.inputs for p in loc.pieces if isinstance(p, RegisterPiece)}
    for loc in layout.inputs:
        die = loc.param.die
        if die is None:
            report.checks.append(ParamCheck(loc.name, _computed_text(loc), None, None, "not in DWARF"))
            continue
        with reading(path, f"DWARF location of {loc.name} (DIE at .debug_info offset {die.offset:#x})"):
            pieces = None
            try:
                if raw is None:
                    raise ScanUnsupported("no raw reader")
                pieces = entry_location_raw(raw, die, low_pc, arch)
            except ScanUnsupported:
                pieces = entry_location(dwarf, die, low_pc, arch)
        check = compare(loc, pieces)
        report.checks.append(check)
        if check.agrees is False and not check.known and pieces and merged_lengths(loc, pieces, layout):
            check.known = KNOWN_MERGED_LENGTH
        if check.agrees is False and not check.known and loc.in_registers:
            # registers DWARF names for this value that the ABI gives to other parameters
            others = [owner.get(p.register) for p in pieces or [] if p.register is not None]
            others = [o for o in others if o is not None and o is not loc]
            if others and len(others) == len([p for p in pieces if p.register]):
                if all(o.param.type.name == loc.param.type.name for o in others):
                    check.known = KNOWN_SWAPPED
                else:
                    check.crossed = True  # a value of another type: the parameter order itself is in doubt
        first = next((p.sp_offset for p in pieces or [] if p.sp_offset is not None), None)
        if first is not None and not loc.in_registers:
            offsets.append(first)
    # On the stack ABI arguments sit in declaration order, so DWARF's offsets of a correct,
    # complete list rise. Go's known list defects (a missing parameter, Go 1.15/ppc64le's list
    # sorted by a mixed offset key) keep them rising; offsets that fall mean DWARF follows a
    # reassigned value instead
    if layout.abi == "ABI0" and any(b <= a for a, b in zip(offsets, offsets[1:])):
        for c in report.disagreements:
            c.known = c.known or KNOWN_REASSIGNED
    return report
