"""Raw reads of a parameter's DWARF location at a function's entry: its DW_AT_location (an
expression, or a location list in .debug_loc (DWARF 4) or .debug_loclists (DWARF 5)) decoded
straight from the section bytes.

pyelftools builds a DIE object for the parameter, parses the whole location list through
`construct` and makes a new expression parser (a dispatch table of 170 operations) per
expression: on a whole binary (`abi '*'`) that is a quarter of the time. This reads the few
forms, list entries and operations Go writes, and raises ScanUnsupported for anything else
(DW_FORM_loclistx, both location sections, an operation other than those
below, bytes that do not parse), where the caller reads the location with pyelftools instead,
as verify.dwarfloc.entry_location does. The answer is the one pyelftools gives.

Go's parameter locations use DW_OP_reg0..31, regx, call_frame_cfa, fbreg, plus_uconst and piece;
lists use DWARF 4 (begin, end) pairs with base address selection, and DWARF 5 base_addressx
(Go 1.25+) and offset_pair; the other DWARF 5 entries are read too (default_location, as
pyelftools, covers no address).
"""

from __future__ import annotations

from .diescan import DW_AT_low_pc, DieScanner, ScanUnsupported
from .varint import offset_address
from .varint import svarint as _sleb
from .varint import uvarint as _uleb

DW_AT_location = 0x02

_BLOCK_FORMS = {0x0A: 1, 0x03: 2, 0x04: 4}  # block1, block2, block4: fixed-size length prefix
_LEB_BLOCK_FORMS = {0x09, 0x18}  # block, exprloc: a ULEB128 length prefix
_LIST_OFFSET_FORMS = {0x17, 0x06, 0x07}  # sec_offset, data4, data8 (a location list's offset)
_LOCLISTX = 0x22

# DW_LLE_* (DWARF 5)
_LLE_END, _LLE_BASE_ADDRESSX, _LLE_STARTX_ENDX, _LLE_STARTX_LENGTH = 0x00, 0x01, 0x02, 0x03
_LLE_OFFSET_PAIR, _LLE_DEFAULT, _LLE_BASE_ADDRESS, _LLE_START_END, _LLE_START_LENGTH = 0x04, 0x05, 0x06, 0x07, 0x08

# DW_OP_*
_OP_REG0, _OP_REG31 = 0x50, 0x6F
_OP_REGX, _OP_FBREG, _OP_PIECE, _OP_CALL_FRAME_CFA, _OP_PLUS_UCONST = 0x90, 0x91, 0x93, 0x9C, 0x23


class RawLocations:
    """Entry locations of parameters, read from the raw sections of one DWARFInfo."""

    def __init__(self, scanner: DieScanner, loc: bytes | None, loclists: bytes | None, address_size: int,
                 little_endian: bool):
        self.scanner = scanner
        self.loc = loc  # .debug_loc (DWARF 4)
        self.loclists = loclists  # .debug_loclists (DWARF 5)
        self.address_size = address_size  # of the section's addresses, as pyelftools reads them
        self.order = "little" if little_endian else "big"
        self._unit_bases: dict[int, int] = {}

    @classmethod
    def of(cls, scanner: DieScanner, dwarfinfo) -> "RawLocations":
        def data(name):
            sec = getattr(dwarfinfo, name, None)
            return sec.stream.getvalue() if sec is not None else None
        return cls(scanner, data("debug_loc_sec"), data("debug_loclists_sec"), dwarfinfo.structs.address_size,
                   dwarfinfo.config.little_endian)

    def entry_expression(self, die_offset: int, cu_offset: int, low_pc: int) -> bytes | None:
        """The location expression of the DIE at `die_offset` valid at `low_pc`, or None when
        there is none (no DW_AT_location, a form that holds no location, no list entry covering
        low_pc, an empty expression)."""
        found = self.scanner.raw_attribute(die_offset, cu_offset, DW_AT_location)
        if found is None:
            return None
        form, start, end = found
        data = self.scanner.info
        try:
            if form in _BLOCK_FORMS:
                width = _BLOCK_FORMS[form]
                length = int.from_bytes(data[start:start + width], self.order)
                expr = data[start + width:start + width + length]
            elif form in _LEB_BLOCK_FORMS:
                length, pos = _uleb(data, start)
                expr = data[pos:pos + length]
            elif form in _LIST_OFFSET_FORMS:
                offset = int.from_bytes(data[start:end], self.order)
                expr = self._list_entry(offset, cu_offset, low_pc)
            elif form == _LOCLISTX:
                raise ScanUnsupported("DW_FORM_loclistx")
            else:
                return None
        except (IndexError, ValueError) as e:
            raise ScanUnsupported(f"location of the DIE at {die_offset:#x} does not parse: {type(e).__name__}") from None
        return expr or None

    def _unit_base(self, cu_offset: int) -> int:
        """The unit's DW_AT_low_pc (0 without one): the base of its list entries."""
        base = self._unit_bases.get(cu_offset)
        if base is None:
            _, values = self.scanner.attributes(self.scanner.top_offset(cu_offset), cu_offset, frozenset({DW_AT_low_pc}))
            base = values.get(DW_AT_low_pc, 0)
            if not isinstance(base, int) or isinstance(base, bool):
                raise ScanUnsupported("the unit's DW_AT_low_pc is in a form not decoded")
            self._unit_bases[cu_offset] = base
        return base

    def _list_entry(self, offset: int, cu_offset: int, low_pc: int) -> bytes | None:
        if self.loc is not None and self.loclists is not None:
            raise ScanUnsupported("both .debug_loc and .debug_loclists")
        if self.loc is None and self.loclists is None:
            return None
        # the whole list is read before one entry is chosen (damage anywhere in it is pyelftools' to report)
        entries = self._v5_entries(offset, cu_offset) if self.loclists is not None else self._v4_entries(offset)
        base = self._unit_base(cu_offset)
        for begin, end, expr, absolute in entries:
            if expr is None:  # a base address selection
                base = begin
                continue
            if not absolute:
                begin = offset_address(base, begin, self.address_size)
                end = offset_address(base, end, self.address_size)
            if begin <= low_pc < end:
                return expr
        return None

    def _address(self, data: bytes, pos: int) -> tuple[int, int]:
        end = pos + self.address_size
        if end > len(data):
            raise IndexError("address past the end of the section")
        return int.from_bytes(data[pos:end], self.order), end

    def _v4_entries(self, pos: int) -> list[tuple[int, int, bytes | None, bool]]:
        """(begin, end, expression, absolute) per entry of a .debug_loc list; a base address
        selection is (base, 0, None, True)."""
        data, out = self.loc, []
        top = (1 << (8 * self.address_size)) - 1
        while True:
            begin, pos = self._address(data, pos)
            end, pos = self._address(data, pos)
            if begin == 0 and end == 0:
                return out
            if begin == top:
                out.append((end, 0, None, True))
                continue
            if pos + 2 > len(data):
                raise IndexError("expression length past the end of .debug_loc")
            length = int.from_bytes(data[pos:pos + 2], self.order)
            if pos + 2 + length > len(data):
                raise IndexError("expression past the end of .debug_loc")
            out.append((begin, end, data[pos + 2:pos + 2 + length], False))
            pos += 2 + length

    def _v5_entries(self, pos: int, cu_offset: int) -> list[tuple[int, int, bytes | None, bool]]:
        """As _v4_entries, for a .debug_loclists list (indexed addresses are the unit's in .debug_addr)."""
        address = self.scanner.unit_address
        data, out = self.loclists, []

        def counted(pos: int) -> tuple[bytes, int]:
            length, pos = _uleb(data, pos)
            if pos + length > len(data):
                raise IndexError("expression past the end of .debug_loclists")
            return data[pos:pos + length], pos + length

        while True:
            kind = data[pos]
            pos += 1
            if kind == _LLE_END:
                return out
            if kind == _LLE_OFFSET_PAIR:
                begin, pos = _uleb(data, pos)
                end, pos = _uleb(data, pos)
                expr, pos = counted(pos)
                out.append((begin, end, expr, False))
            elif kind == _LLE_BASE_ADDRESS:
                base, pos = self._address(data, pos)
                out.append((base, 0, None, True))
            elif kind == _LLE_START_END:
                begin, pos = self._address(data, pos)
                end, pos = self._address(data, pos)
                expr, pos = counted(pos)
                out.append((begin, end, expr, True))
            elif kind == _LLE_START_LENGTH:
                begin, pos = self._address(data, pos)
                length, pos = _uleb(data, pos)
                expr, pos = counted(pos)
                out.append((begin, begin + length, expr, True))
            elif kind == _LLE_BASE_ADDRESSX:  # Go 1.25+
                index, pos = _uleb(data, pos)
                out.append((address(cu_offset, index), 0, None, True))
            elif kind == _LLE_STARTX_ENDX:
                begin, pos = _uleb(data, pos)
                end, pos = _uleb(data, pos)
                expr, pos = counted(pos)
                out.append((address(cu_offset, begin), address(cu_offset, end), expr, True))
            elif kind == _LLE_STARTX_LENGTH:
                begin, pos = _uleb(data, pos)
                length, pos = _uleb(data, pos)
                expr, pos = counted(pos)
                begin = address(cu_offset, begin)
                out.append((begin, begin + length, expr, True))
            elif kind == _LLE_DEFAULT:
                expr, pos = counted(pos)
                out.append((-1, -1, expr, True))  # as pyelftools: covers no address
            else:
                raise ScanUnsupported(f"location list entry kind {kind:#x}")


def expression_places(expr: bytes) -> list[tuple[str, int | None, int | None]]:
    """The operations of a location expression as (kind, number, piece size) steps, in order:
    ("reg", DWARF register, None) for DW_OP_reg0..31, ("regx", DWARF register, None),
    ("cfa", None, None), ("fbreg", offset, None),
    ("plus", constant, None), ("piece", None, size). ScanUnsupported for any other operation."""
    out: list[tuple[str, int | None, int | None]] = []
    pos = 0
    try:
        while pos < len(expr):
            op = expr[pos]
            pos += 1
            if _OP_REG0 <= op <= _OP_REG31:
                out.append(("reg", op - _OP_REG0, None))
            elif op == _OP_REGX:
                n, pos = _uleb(expr, pos)
                out.append(("regx", n, None))
            elif op == _OP_CALL_FRAME_CFA:
                out.append(("cfa", None, None))
            elif op == _OP_FBREG:
                n, pos = _sleb(expr, pos)
                out.append(("fbreg", n, None))
            elif op == _OP_PLUS_UCONST:
                n, pos = _uleb(expr, pos)
                out.append(("plus", n, None))
            elif op == _OP_PIECE:
                n, pos = _uleb(expr, pos)
                out.append(("piece", None, n))
            else:
                raise ScanUnsupported(f"location operation {op:#x}")
    except (IndexError, ValueError) as e:
        raise ScanUnsupported(f"location expression does not parse: {type(e).__name__}") from None
    return out
