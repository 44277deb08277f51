"""A raw scan of a compile unit's DIEs in `.debug_info`, for the few facts an index needs.

pyelftools builds an object for every DIE and every attribute: finding one subprogram in
`cmd/compile/internal/ssa` (211,000 DIEs) that way takes half a minute. This module reads the
abbreviation table itself and walks the unit's bytes, skipping each DIE by its abbreviation's
attribute forms, and decodes only the DIEs of the tags asked for, among a unit's top-level
DIEs or a DIE's children (their name, low_pc and abstract origin). Everything else about a DIE
is left to pyelftools, which is handed the DIE's offset.

It reads every form of DWARF 2-5 but DW_FORM_indirect, in 32- and 64-bit DWARF. For a unit it
cannot read (DW_FORM_indirect, an unknown form or unit type, bytes that do not parse), it raises
ScanUnsupported and the caller uses pyelftools instead. Go writes DW_FORM_addr, addrx (1.25+),
block1, data1, data4, flag, ref_addr, sdata, sec_offset, string and udata.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from .varint import svarint
from .varint import uvarint as _uleb

DW_TAG_array_type = 0x01
DW_TAG_pointer_type = 0x0F
DW_TAG_structure_type = 0x13
DW_TAG_subroutine_type = 0x15
DW_TAG_typedef = 0x16
DW_TAG_base_type = 0x24
DW_TAG_subprogram = 0x2E
DW_TAG_formal_parameter = 0x05
DW_TAG_inlined_subroutine = 0x1D

DW_AT_name = 0x03
DW_AT_low_pc = 0x11
DW_AT_addr_base = 0x73
DW_AT_abstract_origin = 0x31
DW_AT_type = 0x49
DW_AT_variable_parameter = 0x4B
_UNIT_REF_FORMS = {0x11, 0x12, 0x13, 0x14, 0x15}  # ref1, ref2, ref4, ref8, ref_udata

_FORM_ADDR = 0x01
_FORM_STRING = 0x08
_FORM_STRP = 0x0E
_FORM_LINE_STRP = 0x1F
_FORM_IMPLICIT_CONST = 0x21
_FORM_ADDRX = 0x1B
_FORM_ADDRX_N = {0x29: 1, 0x2A: 2, 0x2B: 3, 0x2C: 4}  # addrx1..addrx4
_FORM_GNU_ADDR_INDEX = 0x1F01
_ADDRX_FORMS = {_FORM_ADDRX, _FORM_GNU_ADDR_INDEX, *_FORM_ADDRX_N}

# skip operations for variable-size forms (fixed sizes are positive byte counts)
_CSTRING, _LEB, _BLOCK1, _BLOCK2, _BLOCK4, _BLOCK_LEB = -1, -2, -3, -4, -5, -6

_ADDRESS, _OFFSET = "address", "offset"  # sizes that depend on the unit header
_FORM_SIZES: dict[int, int | str] = {
    0x01: _ADDRESS,  # addr
    0x03: _BLOCK2, 0x04: _BLOCK4, 0x09: _BLOCK_LEB, 0x0A: _BLOCK1, 0x18: _BLOCK_LEB,  # blocks, exprloc
    0x05: 2, 0x06: 4, 0x07: 8, 0x0B: 1, 0x0C: 1, 0x1E: 16,  # data2/4/8, data1, flag, data16
    0x08: _CSTRING,  # string
    0x0D: _LEB, 0x0F: _LEB, 0x15: _LEB, 0x1A: _LEB, 0x1B: _LEB, 0x22: _LEB, 0x23: _LEB,  # sdata, udata, ref_udata,
    # strx, addrx, loclistx, rnglistx
    0x0E: _OFFSET, 0x17: _OFFSET, 0x1D: _OFFSET, 0x1F: _OFFSET,  # strp, sec_offset, strp_sup, line_strp
    0x11: 1, 0x12: 2, 0x13: 4, 0x14: 8, 0x20: 8, 0x1C: 4, 0x24: 8,  # ref1/2/4/8, ref_sig8, ref_sup4/8
    0x19: 0, 0x21: 0,  # flag_present, implicit_const (the value is in the abbreviation)
    0x25: 1, 0x26: 2, 0x27: 3, 0x28: 4, 0x29: 1, 0x2A: 2, 0x2B: 3, 0x2C: 4,  # strx1-4, addrx1-4
    0x1F01: _LEB, 0x1F02: _LEB, 0x1F20: _OFFSET, 0x1F21: _OFFSET,  # GNU addr/str index, ref_alt, strp_alt
    # 0x10 ref_addr: the address size in DWARF 2, the offset size after; 0x16 indirect: unsupported
}


UNDECODED = object()  # an attribute value DieScanner.attributes leaves to pyelftools


class ScanUnsupported(Exception):
    """The raw scan cannot read this unit (a form or unit type it does not know, or bytes that
    do not parse as DWARF): read it with pyelftools instead, which explains damage properly."""


@dataclass(frozen=True)
class ScannedDIE:
    """A DIE a scan found (of a tag that was asked for): what it reports of it."""

    offset: int  # in .debug_info
    tag: int
    name: str | None  # DW_AT_name
    low_pc: int | None
    origin: int | None = None  # DW_AT_abstract_origin, as a .debug_info offset


@dataclass(frozen=True)
class _Decoded:
    name: str | None
    low_pc: int | None
    addr_base: int | None
    origin: int | None
    end: int  # offset after the DIE's attributes


@dataclass(frozen=True)
class _Abbrev:
    tag: int
    has_children: bool
    skip: tuple[int, ...]  # skip operations over all attributes
    attributes: tuple[tuple[int, int, int], ...]  # (DW_AT_*, DW_FORM_*, skip operation)


@dataclass(frozen=True)
class _Unit:
    offset: int
    first: int  # offset of the top DIE
    end: int
    address_size: int
    table: dict[int, _Abbrev]
    addr_base: int | None


class DieScanner:
    """Raw scans of the units of one `.debug_info` (sections as pyelftools read them, so
    compressed DWARF has already been inflated)."""

    def __init__(self, info: bytes, abbrev: bytes, addr: bytes | None, little_endian: bool,
                 strings: bytes = b"", line_strings: bytes = b""):
        self.info = info
        self.abbrev = abbrev
        self.addr = addr
        self.strings = strings  # .debug_str
        self.line_strings = line_strings  # .debug_line_str
        self.order = "little" if little_endian else "big"
        self._tables: dict[tuple, dict[int, _Abbrev]] = {}
        self._units: dict[int, _Unit] = {}

    @classmethod
    def of(cls, dwarfinfo) -> "DieScanner":
        """The scanner of a pyelftools DWARFInfo's sections."""
        def data(name):
            sec = getattr(dwarfinfo, name, None)
            return sec.stream.getvalue() if sec is not None else None
        return cls(data("debug_info_sec"), data("debug_abbrev_sec"), data("debug_addr_sec"),
                   dwarfinfo.config.little_endian, data("debug_str_sec") or b"", data("debug_line_str_sec") or b"")

    # ------------------------------------------------------------ unit headers
    def _header(self, cu_offset: int) -> tuple[int, int, int, int, int, int]:
        """(first DIE offset, unit end, version, address size, offset size, abbrev offset)."""
        data, order = self.info, self.order
        length = int.from_bytes(data[cu_offset:cu_offset + 4], order)
        pos, offset_size = cu_offset + 4, 4
        if length == 0xFFFFFFFF:
            length = int.from_bytes(data[pos:pos + 8], order)
            pos, offset_size = pos + 8, 8
        elif length >= 0xFFFFFFF0:
            raise ScanUnsupported(f"unit length {length:#x}")
        end = pos + length
        if end > len(data) or length < 2:
            raise ScanUnsupported("unit runs past the end of .debug_info")
        version = int.from_bytes(data[pos:pos + 2], order)
        pos += 2
        if version == 5:
            unit_type, address_size = data[pos], data[pos + 1]
            if unit_type not in (1, 3):  # DW_UT_compile, DW_UT_partial: no extra header fields
                raise ScanUnsupported(f"unit type {unit_type}")
            abbrev_offset = int.from_bytes(data[pos + 2:pos + 2 + offset_size], order)
            pos += 2 + offset_size
        elif 2 <= version <= 4:
            abbrev_offset = int.from_bytes(data[pos:pos + offset_size], order)
            address_size = data[pos + offset_size]
            pos += offset_size + 1
        else:
            raise ScanUnsupported(f"DWARF version {version}")
        if address_size not in (1, 2, 4, 8) or pos > end:
            raise ScanUnsupported(f"address size {address_size}")
        return pos, end, version, address_size, offset_size, abbrev_offset

    def unit_offsets(self) -> list[int]:
        """The offsets of the unit headers, each unit following the one before (or [] when
        the section does not parse that way)."""
        out, pos = [], 0
        try:
            while pos < len(self.info):
                out.append(pos)
                pos = self._header(pos)[1]
        except (ScanUnsupported, IndexError, ValueError):
            return []
        return out

    # ------------------------------------------------------------ abbreviations
    def _table(self, abbrev_offset: int, version: int, address_size: int, offset_size: int) -> dict[int, _Abbrev]:
        key = (abbrev_offset, version, address_size, offset_size)
        table = self._tables.get(key)
        if table is None:
            try:
                table = self._read_table(*key)
            except (IndexError, ValueError):
                raise ScanUnsupported("abbreviation table runs past the end of .debug_abbrev") from None
            self._tables[key] = table
        return table

    def _read_table(self, offset: int, version: int, address_size: int, offset_size: int) -> dict[int, _Abbrev]:
        data = self.abbrev
        sizes = {_ADDRESS: address_size, _OFFSET: offset_size}
        ref_addr = address_size if version == 2 else offset_size
        table: dict[int, _Abbrev] = {}
        pos = offset
        while True:
            code, pos = _uleb(data, pos)
            if code == 0:
                return table
            tag, pos = _uleb(data, pos)
            has_children = data[pos] != 0
            pos += 1
            attributes, skip = [], []
            while True:
                name, pos = _uleb(data, pos)
                form, pos = _uleb(data, pos)
                if name == 0 and form == 0:
                    break
                if form == _FORM_IMPLICIT_CONST:
                    _, pos = _uleb(data, pos)  # a signed LEB: only skipped
                if form == 0x10:
                    size = ref_addr
                elif form in _FORM_SIZES:
                    size = _FORM_SIZES[form]
                    size = sizes.get(size, size)
                else:
                    raise ScanUnsupported(f"attribute form {form:#x}")
                attributes.append((name, form, size))
                if size == 0:
                    continue
                if size > 0 and skip and skip[-1] > 0:
                    skip[-1] += size  # consecutive fixed sizes skip as one
                else:
                    skip.append(size)
            table[code] = _Abbrev(tag, has_children, tuple(skip), tuple(attributes))

    # ------------------------------------------------------------ the walk
    def top_level(self, cu_offset: int, tags: frozenset[int] | set[int], stop_at: str | None = None
                  ) -> list[ScannedDIE]:
        """The direct children of the unit's top DIE whose tag is in `tags`, in order; with
        `stop_at`, only up to the first one of that name (the rest of the unit is not read)."""
        return self._scan(cu_offset, None, tags, False, stop_at=stop_at)

    def top_level_with_children(self, cu_offset: int, tags: frozenset[int] | set[int],
                                child_tags: frozenset[int] | set[int], wanted: frozenset[int]
                                ) -> list[tuple[ScannedDIE, list[tuple[int, int, dict[int, object]]] | None]]:
        """What top_level finds, each with what children_values(…, child_tags, wanted) would give
        of it, from the one walk over the unit (which passes every DIE's children anyway); None
        for a DIE without DW_AT_low_pc (an abstract declaration: asked of few, read when asked)."""
        try:
            unit = self._unit(cu_offset)
            return self._walk(unit, unit.first, tags, False, None, (child_tags, wanted))
        except (IndexError, ValueError, KeyError) as e:
            raise ScanUnsupported(f"unit at {cu_offset:#x} does not parse: {type(e).__name__}") from None

    def children(self, cu_offset: int, die_offset: int, tags: frozenset[int] | set[int],
                 nested: bool = False) -> list[ScannedDIE]:
        """The children of the DIE at `die_offset` (with `nested`, all its descendants) whose
        tag is in `tags`, in order."""
        return self._scan(cu_offset, die_offset, tags, nested)

    def children_values(self, cu_offset: int, die_offset: int, tags: frozenset[int] | set[int],
                        wanted: frozenset[int], nested: bool = False) -> list[tuple[int, int, dict[int, object]]]:
        """(offset, tag, values) of the children `children` finds, each with the `wanted`
        attributes `attributes` would give, decoded in the same walk (not found, then read again)."""
        return self._scan(cu_offset, die_offset, tags, nested, wanted)

    def _scan(self, cu_offset: int, die_offset: int | None, tags, nested: bool,
              wanted: frozenset[int] | None = None, stop_at: str | None = None) -> list:
        try:
            unit = self._unit(cu_offset)
            return self._walk(unit, unit.first if die_offset is None else die_offset, tags, nested, wanted,
                              stop_at=stop_at)
        except (IndexError, ValueError, KeyError) as e:
            raise ScanUnsupported(f"unit at {cu_offset:#x} does not parse: {type(e).__name__}") from None

    def _unit(self, cu_offset: int) -> "_Unit":
        unit = self._units.get(cu_offset)
        if unit is None:
            first, end, version, address_size, offset_size, abbrev_offset = self._header(cu_offset)
            table = self._table(abbrev_offset, version, address_size, offset_size)
            # the top DIE: its DW_AT_addr_base is what DW_FORM_addrx values are relative to
            code, pos = _uleb(self.info, first)
            addr_base = self._decode(table[code], pos, _Unit(cu_offset, first, end, address_size, table, None),
                                     want_addr_base=True).addr_base
            unit = self._units[cu_offset] = _Unit(cu_offset, first, end, address_size, table, addr_base)
        return unit

    def _walk(self, unit: "_Unit", start: int, tags, nested: bool, wanted: frozenset[int] | None = None,
              children: tuple | None = None, stop_at: str | None = None) -> list:
        """The DIEs found: ScannedDIE, or with `wanted` (offset, tag, values); with `children`
        (child tags, wanted attributes), (ScannedDIE, [(offset, tag, values) of its children of
        those tags]) of the top-level DIEs found (see top_level_with_children). `stop_at`: the
        walk ends at the first ScannedDIE of that name found (the last of the list)."""
        data, table, end = self.info, unit.table, unit.end
        if not unit.first <= start < end:
            raise ScanUnsupported(f"DIE offset {start:#x} is not in the unit at {unit.offset:#x}")
        out: list[ScannedDIE] = []
        pos, depth = start, 0
        child_tags, child_wanted = children if children is not None else ((), None)
        found_children = None  # the list of the top-level DIE found last, while in its children
        while True:
            if pos >= end:
                raise ScanUnsupported(f"unit at {unit.offset:#x} ends inside a DIE's children")
            offset = pos
            code = data[pos]
            pos += 1
            if code & 0x80:
                code, pos = _uleb(data, offset)
            if code == 0:
                depth -= 1
                if depth <= 0:
                    break
                continue
            abbrev = table[code]
            if depth == 1:
                found_children = None
            if (depth == 1 or nested and depth) and abbrev.tag in tags:
                if wanted is None:
                    found = self._decode(abbrev, pos, unit)
                    pos = found.end
                    scanned = ScannedDIE(offset, abbrev.tag, found.name, found.low_pc, found.origin)
                    if children is not None:
                        found_children = [] if found.low_pc is not None else None
                        out.append((scanned, found_children))
                    else:
                        out.append(scanned)
                        if stop_at is not None and scanned.name == stop_at:
                            return out
                else:
                    values, pos = self._values(abbrev, pos, unit, wanted)
                    if pos > end:
                        raise ScanUnsupported(f"the DIE at {offset:#x} runs past its unit")
                    out.append((offset, abbrev.tag, values))
            elif depth == 2 and found_children is not None and abbrev.tag in child_tags:
                values, pos = self._values(abbrev, pos, unit, child_wanted)
                if pos > end:
                    raise ScanUnsupported(f"the DIE at {offset:#x} runs past its unit")
                found_children.append((offset, abbrev.tag, values))
            else:
                for op in abbrev.skip:
                    if op > 0:
                        pos += op
                    elif op == _CSTRING:
                        pos = data.index(0, pos) + 1
                    elif op == _LEB:
                        while data[pos] & 0x80:
                            pos += 1
                        pos += 1
                    elif op == _BLOCK1:
                        pos += data[pos] + 1
                    else:
                        pos = self._skip_block(op, pos)
            if abbrev.has_children:
                depth += 1
            elif depth == 0:
                break  # the start DIE has no children
        if pos > end:
            raise ScanUnsupported(f"unit at {unit.offset:#x}: its DIEs run past the unit's end")
        return out

    def _skip_block(self, op: int, pos: int) -> int:
        data, order = self.info, self.order
        if op == _BLOCK2:
            return pos + 2 + int.from_bytes(data[pos:pos + 2], order)
        if op == _BLOCK4:
            return pos + 4 + int.from_bytes(data[pos:pos + 4], order)
        length, pos = _uleb(data, pos)
        return pos + length

    def _decode(self, abbrev: _Abbrev, pos: int, unit: "_Unit", want_addr_base: bool = False) -> "_Decoded":
        """The attributes of one DIE that a scan reports, and where the DIE ends."""
        data, order = self.info, self.order
        name = low_pc = base = origin = None
        for attr, form, size in abbrev.attributes:
            start = pos
            if size >= 0:
                pos += size
            elif size == _CSTRING:
                pos = data.index(0, pos) + 1
            else:
                pos = self._apply(size, pos)
            if attr == DW_AT_name:
                name = self._name(form, start, pos)
            elif attr == DW_AT_low_pc:
                if form == _FORM_ADDR:
                    low_pc = int.from_bytes(data[start:pos], order)
                elif form in _ADDRX_FORMS:
                    index = (_uleb(data, start)[0] if form in (_FORM_ADDRX, _FORM_GNU_ADDR_INDEX)
                             else int.from_bytes(data[start:pos], order))
                    low_pc = self._indexed_address(unit.addr_base, index, unit.address_size)
            elif attr == DW_AT_abstract_origin:
                if form == 0x10:  # ref_addr: an offset in .debug_info
                    origin = int.from_bytes(data[start:pos], order)
                elif form in _UNIT_REF_FORMS:  # relative to the unit
                    value = _uleb(data, start)[0] if form == 0x15 else int.from_bytes(data[start:pos], order)
                    origin = unit.offset + value
            elif attr == DW_AT_addr_base and want_addr_base:
                base = int.from_bytes(data[start:pos], order)
        return _Decoded(name, low_pc, base, origin, pos)

    def _name(self, form: int, start: int, end: int) -> str:
        """A DW_AT_name value: inline (Go), or in .debug_str / .debug_line_str (C units of cgo)."""
        if form == _FORM_STRING:
            return self.info[start:end - 1].decode("utf-8", "replace")
        strings = {_FORM_STRP: self.strings, _FORM_LINE_STRP: self.line_strings}.get(form)
        if strings is None:
            raise ScanUnsupported(f"a name of form {form:#x}")
        at = int.from_bytes(self.info[start:end], self.order)
        stop = strings.find(0, at)
        if stop < 0:
            raise ScanUnsupported("a name past the end of its string section")
        return strings[at:stop].decode("utf-8", "replace")

    def _indexed_address(self, addr_base: int | None, index: int, address_size: int) -> int:
        if self.addr is None or addr_base is None:
            raise ScanUnsupported("DW_FORM_addrx without .debug_addr or DW_AT_addr_base")
        at = addr_base + index * address_size
        if at + address_size > len(self.addr):
            raise ScanUnsupported("DW_FORM_addrx index past the end of .debug_addr")
        return int.from_bytes(self.addr[at:at + address_size], self.order)

    # ------------------------------------------------------------ one DIE's attributes
    def unit_of(self, die_offset: int) -> int:
        """The offset of the unit holding the DIE at `die_offset`."""
        starts = self.__dict__.get("_unit_starts")
        if starts is None:
            starts = self._unit_starts = self.unit_offsets()
        i = bisect.bisect_right(starts, die_offset) - 1
        if i < 0:
            raise ScanUnsupported(f"DIE offset {die_offset:#x} is in no unit")
        return starts[i]

    def attributes(self, die_offset: int, cu_offset: int | None = None,
                   wanted: frozenset[int] | None = None) -> tuple[int, dict[int, object]]:
        """(tag, {DW_AT_*: value}) of the DIE at `die_offset`, with the values pyelftools gives
        but references made absolute (.debug_info offsets) and names decoded (UTF-8, errors
        replaced). Values of forms this does not decode (blocks, expressions, section offsets,
        implicit constants) are UNDECODED; a caller that needs one uses pyelftools. With `wanted`,
        only those attributes are reported."""
        try:
            unit = self._unit(self.unit_of(die_offset) if cu_offset is None else cu_offset)
            if not unit.first <= die_offset < unit.end:
                raise ScanUnsupported(f"DIE offset {die_offset:#x} is not in the unit at {unit.offset:#x}")
            code, pos = _uleb(self.info, die_offset)
            if code == 0:
                raise ScanUnsupported(f"no DIE at {die_offset:#x} (a null entry)")
            abbrev = unit.table[code]
            values, pos = self._values(abbrev, pos, unit, wanted)
            if pos > unit.end:
                raise ScanUnsupported(f"the DIE at {die_offset:#x} runs past its unit")
            return abbrev.tag, values
        except (IndexError, ValueError, KeyError) as e:
            raise ScanUnsupported(f"DIE at {die_offset:#x} does not parse: {type(e).__name__}") from None

    def _values(self, abbrev: _Abbrev, pos: int, unit: "_Unit",
                wanted: frozenset[int] | None) -> tuple[dict[int, object], int]:
        """The attributes (all, or the `wanted` ones) of the DIE whose attributes start at `pos`,
        and where it ends."""
        values: dict[int, object] = {}
        data = self.info
        for attr, form, size in abbrev.attributes:
            start = pos
            if size >= 0:
                pos += size
            elif size == _CSTRING:  # a name: the common variable size, without a call
                pos = data.index(0, pos) + 1
            else:
                pos = self._apply(size, pos)
            if wanted is None or attr in wanted:
                values[attr] = self._value(form, start, pos, unit)
        return values, pos

    def top_offset(self, cu_offset: int) -> int:
        """The offset of the unit's top DIE."""
        try:
            return self._unit(cu_offset).first
        except (IndexError, ValueError, KeyError) as e:
            raise ScanUnsupported(f"unit at {cu_offset:#x} does not parse: {type(e).__name__}") from None

    def unit_address(self, cu_offset: int, index: int) -> int:
        """Entry `index` of the unit's addresses in .debug_addr (from its DW_AT_addr_base)."""
        try:
            unit = self._unit(cu_offset)
        except (IndexError, ValueError, KeyError) as e:
            raise ScanUnsupported(f"unit at {cu_offset:#x} does not parse: {type(e).__name__}") from None
        return self._indexed_address(unit.addr_base, index, unit.address_size)

    def raw_attribute(self, die_offset: int, cu_offset: int, attribute: int) -> tuple[int, int, int] | None:
        """(DW_FORM_*, start, end) of the encoded value of one attribute of the DIE at
        `die_offset` in .debug_info (a block's or exprloc's length prefix included), or None
        when the DIE has no such attribute."""
        try:
            unit = self._unit(cu_offset)
            if not unit.first <= die_offset < unit.end:
                raise ScanUnsupported(f"DIE offset {die_offset:#x} is not in the unit at {unit.offset:#x}")
            code, pos = _uleb(self.info, die_offset)
            if code == 0:
                raise ScanUnsupported(f"no DIE at {die_offset:#x} (a null entry)")
            for attr, form, size in unit.table[code].attributes:
                start = pos
                pos = pos + size if size >= 0 else self._apply(size, pos)
                if pos > unit.end:
                    raise ScanUnsupported(f"the DIE at {die_offset:#x} runs past its unit")
                if attr == attribute:
                    return form, start, pos
            return None
        except (IndexError, ValueError, KeyError) as e:
            raise ScanUnsupported(f"DIE at {die_offset:#x} does not parse: {type(e).__name__}") from None

    def _value(self, form: int, start: int, end: int, unit: "_Unit"):
        data, order = self.info, self.order
        if form in (_FORM_STRING, _FORM_STRP, _FORM_LINE_STRP):
            return self._name(form, start, end)
        if form in (0x0B, 0x05, 0x06, 0x07, _FORM_ADDR):  # data1/2/4/8, addr
            return int.from_bytes(data[start:end], order)
        if form in _UNIT_REF_FORMS:
            value = _uleb(data, start)[0] if form == 0x15 else int.from_bytes(data[start:end], order)
            return unit.offset + value
        if form == 0x10:  # ref_addr
            return int.from_bytes(data[start:end], order)
        if form == 0x0F:  # udata
            return _uleb(data, start)[0]
        if form == 0x0D:  # sdata
            return svarint(data, start)[0]
        if form == 0x0C:  # flag
            return data[start] != 0
        if form == 0x19:  # flag_present
            return True
        if form in _ADDRX_FORMS:
            index = (_uleb(data, start)[0] if form in (_FORM_ADDRX, _FORM_GNU_ADDR_INDEX)
                     else int.from_bytes(data[start:end], order))
            return self._indexed_address(unit.addr_base, index, unit.address_size)
        return UNDECODED

    def _apply(self, op: int, pos: int) -> int:
        data = self.info
        if op >= 0:
            return pos + op
        if op == _CSTRING:
            return data.index(0, pos) + 1
        if op == _LEB:
            while data[pos] & 0x80:
                pos += 1
            return pos + 1
        if op == _BLOCK1:
            return pos + data[pos] + 1
        return self._skip_block(op, pos)


