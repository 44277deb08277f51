"""Layer 2: Go's DWARF: compile units (one per package) and subprogram DIEs.

Finding one function must not parse the whole DWARF: `DwarfIndex.subprogram_at`
reads only the CU top DIEs (to map addresses to packages), scans the bytes of the one
package whose address ranges contain the function (diescan), and hands pyelftools only
the function's DIE. With an IndexCache, the units and scans come from the cache.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterator
from urllib.parse import unquote

from elftools.dwarf.ranges import BaseAddressEntry, RangeEntry

from .binary import GoBinary, parse_go_version
from .diescan import (DW_AT_abstract_origin, DW_AT_low_pc, DW_AT_name, DW_AT_type, DW_AT_variable_parameter,
                      DW_TAG_formal_parameter, DW_TAG_inlined_subroutine, DW_TAG_subprogram, UNDECODED, DieScanner, ScanUnsupported)

_PARAMETER_ATTRIBUTES = frozenset({DW_AT_name, DW_AT_type, DW_AT_abstract_origin, DW_AT_variable_parameter})
_ORIGIN_ATTRIBUTES = frozenset({DW_AT_name, DW_AT_abstract_origin})
_LOW_PC = frozenset({DW_AT_low_pc})
_TAG_NUMBERS = {"DW_TAG_formal_parameter": 0x05, "DW_TAG_inlined_subroutine": 0x1D, "DW_TAG_subprogram": 0x2E,
                "DW_TAG_variable": 0x34, "DW_TAG_lexical_block": 0x0B}
from .errors import DwarfgoError, reading
from .gotypes import TypeReader
from .indexcache import IndexCache, UnitRecord
from .locscan import RawLocations
from .varint import offset_address

_PRODUCER_RE = re.compile(r"Go cmd/compile (\S+?)(?:;\s*(.*))?$")


@dataclass
class CompileUnit:
    """One Go package's compile unit."""

    name: str  # import path, `%2e` unescaped
    producer: str
    go_version: str | None
    flags: str  # what follows `;` in the producer, e.g. "-N -l regabi"
    ranges: list[tuple[int, int]]
    offset: int  # of the unit header in .debug_info
    dwarf: object = field(repr=False, compare=False)  # pyelftools DWARFInfo

    @classmethod
    def of(cls, name: str, producer: str, ranges: list[tuple[int, int]], offset: int, dwarf) -> "CompileUnit":
        m = _PRODUCER_RE.match(producer)
        version, flags = (m.group(1), m.group(2) or "") if m else (None, "")
        return cls(name, producer, version, flags, ranges, offset, dwarf)

    @cached_property
    def unit(self):
        """The pyelftools CompileUnit (its header parsed on first use)."""
        return self.dwarf.get_CU_at(self.offset)

    @property
    def regabi(self) -> bool:
        """The register ABI (ABIInternal) is on for this package's Go code."""
        return "regabi" in self.flags.split()

    @property
    def optimized(self) -> bool:
        return "-N" not in self.flags.split()

    @property
    def is_go(self) -> bool:
        return self.producer.startswith("Go cmd/compile")


class LazyDIE:
    """A DIE known by its offset (found and checked by the raw scan), handed to pyelftools only
    when something asks more of it than its offset: a whole-binary listing never does."""

    __slots__ = ("offset", "cu_offset", "_dwarf", "_die")

    def __init__(self, dwarf, cu_offset: int, offset: int):
        self.offset = offset
        self.cu_offset = cu_offset
        self._dwarf = dwarf
        self._die = None

    @property
    def parsed(self):
        if self._die is None:
            self._die = self._dwarf.get_CU_at(self.cu_offset).get_DIE_from_refaddr(self.offset)
        return self._die

    def __getattr__(self, name):  # what is not a slot: the pyelftools DIE's
        return getattr(self.parsed, name)


_UNKNOWN = object()


def cu_offset_of(die) -> int:
    return die.cu_offset if isinstance(die, LazyDIE) else die.cu.cu_offset


@dataclass(frozen=True)
class ParamDIE:
    """A DW_TAG_formal_parameter as the function model uses it, however it was read."""

    offset: int
    name: str  # "" without DW_AT_name
    type_offset: int | None  # DW_AT_type, absolute
    origin: int | None  # DW_AT_abstract_origin, absolute
    is_result: bool  # DW_AT_variable_parameter
    die: object  # the pyelftools DIE, or a LazyDIE


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class DwarfIndex:
    """Address-keyed access to a Go binary's DWARF.

    With an IndexCache, the units, each unit's subprogram offsets and the type offsets come
    from (and go to) the cache; every DIE taken from it is checked to be what the index says
    (a subprogram with that entry, a type of that name), and a mismatch throws the cache away."""

    def __init__(self, binary: GoBinary, cache: IndexCache | None = None):
        self.binary = binary
        self.dwarf = binary.dwarf
        self.cache = cache
        self.types = TypeReader(self.dwarf, binary.ptr_size, str(binary.path), unit_of=self._unit_holding)
        self._subprograms_by_unit: dict[int, dict[int, int]] = {}
        self._origin_names: dict[int, str | None] = {}  # abstract origin offset -> its declaration's name
        # unit offset -> {subprogram DIE offset -> its formal parameters' (offset, tag, values)}, from
        # the units' scans (_scan_subprograms); each taken once (a whole-binary run asks once)
        self._scanned_parameters: dict[int, dict[int, list]] = {}
        # units whose subprogram table this process's raw scan made (not the cache, not pyelftools):
        # the scan read each subprogram's tag and low_pc, which _subprogram_die would read again
        self._scanned_units: set[int] = set()

    @cached_property
    def _scanner(self) -> DieScanner:
        return DieScanner.of(self.dwarf)

    def _unit_holding(self, offset: int) -> int | None:
        """The offset of the unit holding the DIE at `offset`, from the unit headers the raw scan
        reads one after the other (None when it does not read them, or `offset` is past them)."""
        try:
            unit = self._scanner.unit_of(offset)
        except ScanUnsupported:
            return None
        return unit if 0 <= offset < len(self._scanner.info) else None

    @cached_property
    def raw_locations(self) -> RawLocations:
        """Parameters' entry locations read from the raw sections (verify.dwarfloc falls back
        to pyelftools where this cannot decode one)."""
        # the sections are inflated here when compressed: a damaged stream is a damaged binary
        with reading(self.binary.path, "DWARF location lists (.debug_loc, .debug_loclists)"):
            return RawLocations.of(self._scanner, self.dwarf)

    # ------------------------------------------------------------ compile units
    @cached_property
    def units(self) -> list[CompileUnit]:
        if self.cache is not None and self.cache.units is not None and self._units_fit(self.cache.units):
            return [CompileUnit.of(u.name, u.producer, u.ranges, u.offset, self.dwarf) for u in self.cache.units]
        out = []
        with reading(self.binary.path, "DWARF compile unit headers in .debug_info"):
            cus = list(self.dwarf.iter_CUs())
        for cu in cus:
            with reading(self.binary.path, f"DWARF compile unit at .debug_info offset {cu.cu_offset:#x}"):
                top = cu.get_top_DIE()
                attrs = top.attributes
                name = unquote(_text(attrs["DW_AT_name"].value)) if "DW_AT_name" in attrs else "?"
                producer = _text(attrs["DW_AT_producer"].value) if "DW_AT_producer" in attrs else ""
                unit = CompileUnit.of(name, producer, self._unit_ranges(cu, top), cu.cu_offset, self.dwarf)
                unit.__dict__["unit"] = cu
                out.append(unit)
        if self.cache is not None:
            self.cache.store_units([UnitRecord(u.offset, u.name, u.producer, u.ranges) for u in out])
        return out

    def _units_fit(self, units: list[UnitRecord]) -> bool:
        """The cached units are the unit headers of this .debug_info, one after the other."""
        if [u.offset for u in units] != self._scanner.unit_offsets():
            self.cache.discard()
            return False
        return True

    def _unit_ranges(self, cu, top) -> list[tuple[int, int]]:
        attrs = top.attributes
        low = attrs["DW_AT_low_pc"].value if "DW_AT_low_pc" in attrs else 0
        if "DW_AT_ranges" in attrs:
            rl = self.dwarf.range_lists()
            if rl is None:
                return []
            base = low
            out = []
            size = cu.structs.address_size
            for entry in rl.get_range_list_at_offset(attrs["DW_AT_ranges"].value, cu=cu):
                if isinstance(entry, BaseAddressEntry):
                    base = entry.base_address
                elif isinstance(entry, RangeEntry):
                    if entry.is_absolute:
                        out.append((entry.begin_offset, entry.end_offset))
                    else:
                        out.append((offset_address(base, entry.begin_offset, size),
                                    offset_address(base, entry.end_offset, size)))
            return out
        if "DW_AT_high_pc" in attrs:
            high = attrs["DW_AT_high_pc"]
            end = high.value if high.form == "DW_FORM_addr" else low + high.value
            return [(low, end)]
        return []

    @cached_property
    def _range_table(self) -> tuple[list[int], list[tuple[int, int, CompileUnit]]]:
        # by address only: two units with the same range (damaged .debug_ranges) must not be compared
        rows = sorted(((lo, hi, u) for u in self.units for lo, hi in u.ranges
                       if isinstance(lo, int) and isinstance(hi, int) and hi > lo), key=lambda r: r[:2])
        return [r[0] for r in rows], rows

    def unit_for_address(self, address: int) -> CompileUnit | None:
        starts, rows = self._range_table
        i = bisect.bisect_right(starts, address) - 1
        if i >= 0:
            lo, hi, unit = rows[i]
            if lo <= address < hi:
                return unit
        return None

    @cached_property
    def go_version(self) -> str | None:
        for u in self.units:
            if u.go_version:
                return u.go_version
        return None

    @cached_property
    def version_tuple(self) -> tuple[int, int, int] | None:
        return parse_go_version(self.binary.go_version or self.go_version)

    # ------------------------------------------------------------ subprograms
    def _subprogram_offsets(self, unit: CompileUnit) -> dict[int, int]:
        """Concrete (address-carrying) subprograms of a unit: low_pc -> DIE offset."""
        key = unit.offset
        table = self._subprograms_by_unit.get(key)
        if table is not None:
            return table
        if self.cache is not None and key in self.cache.subprograms:
            table = self.cache.subprograms[key]
            self._scanned_units.discard(key)
        else:
            table = self._scan_subprograms(unit)
            if self.cache is not None:
                self.cache.store_subprograms(key, table)
        self._subprograms_by_unit[key] = table
        return table

    def read_subprograms(self, units: list[CompileUnit]) -> None:
        """The subprogram tables of `units` read now (see _subprogram_offsets): before the work of a
        whole-binary run is shared out, for the units whose functions go to more than one worker
        process (each would walk the whole unit for itself)."""
        for unit in units:
            try:
                self._subprogram_offsets(unit)
            except DwarfgoError:
                pass  # said by the worker that models a function of the unit, as without this

    def _scan_subprograms(self, unit: CompileUnit) -> dict[int, int]:
        """The walk over the unit that finds its subprograms also keeps their parameters' raw
        values (for parameter_dies: a whole-binary run then walks no function body again)."""
        try:
            found = self._scanner.top_level_with_children(unit.offset, {DW_TAG_subprogram},
                                                          {DW_TAG_formal_parameter}, _PARAMETER_ATTRIBUTES)
        except ScanUnsupported:
            return self._parse_subprograms(unit)  # pyelftools says what is wrong if it is damaged
        self._scanned_parameters[unit.offset] = {d.offset: params for d, params in found if params is not None}
        self._scanned_units.add(unit.offset)
        return {d.low_pc: d.offset for d, _ in found if d.low_pc is not None}

    def _parse_subprograms(self, unit: CompileUnit) -> dict[int, int]:
        table = {}
        with reading(self.binary.path, f"DWARF of package {unit.name} (compile unit at .debug_info offset "
                                       f"{unit.offset:#x})"):
            for die in unit.unit.get_top_DIE().iter_children():
                if die.tag == "DW_TAG_subprogram" and "DW_AT_low_pc" in die.attributes:
                    table[die.attributes["DW_AT_low_pc"].value] = die.offset
        return table

    def _subprogram_die(self, unit: CompileUnit, address: int, offset: int):
        if unit.offset in self._scanned_units:
            # what the check below gives: the scan found a subprogram with this low_pc there
            return LazyDIE(self.dwarf, unit.offset, offset)
        try:
            tag, values = self._scanner.attributes(offset, unit.offset, _LOW_PC)
            low = values.get(DW_AT_low_pc)
            if low is not UNDECODED:
                return LazyDIE(self.dwarf, unit.offset, offset) if tag == DW_TAG_subprogram and low == address \
                    else None
        except ScanUnsupported:
            pass
        with reading(self.binary.path, f"DWARF in .debug_info at offset {offset:#x} (subprogram at {address:#x})"):
            die = unit.unit.get_DIE_from_refaddr(offset)
            low = die.attributes.get("DW_AT_low_pc") if die.tag == "DW_TAG_subprogram" else None
            return die if low is not None and low.value == address else None

    def subprogram_at(self, address: int):
        """(unit, DIE) of the function starting at `address`, or (unit, None)."""
        unit = self.unit_for_address(address)
        if unit is None:
            return None, None
        offset = self._subprogram_offsets(unit).get(address)
        if offset is None:
            return unit, None
        die = self._subprogram_die(unit, address, offset)
        if die is None:
            # the DIE there is not this subprogram: a cached index that does not describe this
            # binary after all (forgotten), or damage the raw scan read past; pyelftools decides
            if self.cache is not None and self.cache.loaded:
                self.cache.discard()
                self._subprograms_by_unit.clear()
                self._scanned_units.clear()
            self._scanned_units.discard(unit.offset)
            table = self._subprograms_by_unit[unit.offset] = self._parse_subprograms(unit)
            if self.cache is not None:
                self.cache.store_subprograms(unit.offset, table)
            offset = table.get(address)
            die = self._subprogram_die(unit, address, offset) if offset is not None else None
        return unit, die

    def iter_subprograms(self) -> Iterator[tuple[CompileUnit, int, object]]:
        """Every concrete subprogram: (unit, low_pc, DIE). Parses the whole DWARF."""
        for unit in self.units:
            for addr, offset in list(self._subprogram_offsets(unit).items()):
                die = self._subprogram_die(unit, addr, offset)
                if die is not None:
                    yield unit, addr, die

    def child_dies(self, die, tag: str, nested: bool = False) -> list:
        """The children of `die` (with `nested`, all descendants) of one tag, in order, found by
        the raw scan: pyelftools parses only those, not every DIE of the function's body."""
        cu_offset = cu_offset_of(die)
        try:
            found = self._scanner.children(cu_offset, die.offset, {_TAG_NUMBERS[tag]}, nested)
        except ScanUnsupported:
            return self._child_dies_parsed(die, tag, nested)
        return [LazyDIE(self.dwarf, cu_offset, d.offset) for d in found]

    def parameter_dies(self, die) -> list[ParamDIE]:
        """The DW_TAG_formal_parameter children of `die`, read raw (pyelftools only for a unit
        or a DIE the raw reader cannot decode)."""
        cu_offset = cu_offset_of(die)
        try:
            out = []
            scanned = self._scanned_parameters.get(cu_offset)
            children = scanned.pop(die.offset, None) if scanned is not None else None
            if children is None:
                children = self._scanner.children_values(cu_offset, die.offset, {DW_TAG_formal_parameter},
                                                         _PARAMETER_ATTRIBUTES)
            for offset, _, values in children:
                name, type_offset = values.get(DW_AT_name, ""), values.get(DW_AT_type)
                origin, var = values.get(DW_AT_abstract_origin), values.get(DW_AT_variable_parameter, False)
                if not (isinstance(name, str) and all(isinstance(v, int) for v in (type_offset or 0, origin or 0, var))):
                    raise ScanUnsupported(f"an attribute of the DIE at {offset:#x} in a form not decoded")
                out.append(ParamDIE(offset, name, type_offset, origin, bool(var),
                                    LazyDIE(self.dwarf, cu_offset, offset)))
            return out
        except ScanUnsupported:
            return [self._param_parsed(c) for c in self._child_dies_parsed(die, "DW_TAG_formal_parameter", False)]

    @staticmethod
    def _param_parsed(child) -> ParamDIE:
        from .gotypes import ref_offset
        attrs = child.attributes
        name_attr = attrs.get("DW_AT_name")
        var = attrs.get("DW_AT_variable_parameter")
        return ParamDIE(child.offset, name_attr.value.decode("utf-8", "replace") if name_attr else "",
                        ref_offset(child) if "DW_AT_type" in attrs else None,
                        ref_offset(child, "DW_AT_abstract_origin") if "DW_AT_abstract_origin" in attrs else None,
                        bool(var.value) if var is not None else False, child)

    def inlined_names(self, die) -> list[str]:
        """The names of the functions inlined into `die`'s body (at any depth), from their
        abstract origins' declarations."""
        cu_offset = cu_offset_of(die)
        try:
            names = []
            for offset, _, values in self._scanner.children_values(cu_offset, die.offset, {DW_TAG_inlined_subroutine},
                                                                   _ORIGIN_ATTRIBUTES, True):
                target = values.get(DW_AT_abstract_origin)
                if target is None:
                    continue
                # the name depends only on the origin, and a package's bodies inline the same few
                # functions over and over: each origin is followed once (what fails is not kept)
                key = target if isinstance(target, int) and not isinstance(target, bool) else None
                name = self._origin_names.get(key, _UNKNOWN) if key is not None else _UNKNOWN
                if name is _UNKNOWN:
                    name = self._raw_origin(offset, values)[1].get(DW_AT_name)
                    if key is not None:
                        self._origin_names[key] = name
                if name is not None:
                    names.append(name)
            return names
        except ScanUnsupported:
            pass
        names = []
        parsed = die.parsed if isinstance(die, LazyDIE) else die
        for child in self._child_dies_parsed(parsed, "DW_TAG_inlined_subroutine", True):
            if "DW_AT_abstract_origin" in child.attributes:
                attr = self.origin(child).attributes.get("DW_AT_name")
                if attr is not None:
                    names.append(attr.value.decode("utf-8", "replace"))
        return names

    def _raw_origin(self, offset: int, values: dict | None = None) -> tuple[int, dict]:
        """(offset, attributes) of the declaration, as origin() follows abstract origins
        (`values`: the _ORIGIN_ATTRIBUTES of the DIE at `offset`, when already read)."""
        if values is None:
            _, values = self._scanner.attributes(offset, None, _ORIGIN_ATTRIBUTES)
        for _ in range(4):
            target = values.get(DW_AT_abstract_origin)
            if target is None:
                break
            if not isinstance(target, int) or isinstance(target, bool):
                raise ScanUnsupported("an abstract origin in a form not decoded")
            offset = target
            tag, values = self._scanner.attributes(offset, None, _ORIGIN_ATTRIBUTES)
        name = values.get(DW_AT_name)
        if name is not None and not isinstance(name, str):
            raise ScanUnsupported("a name in a form not decoded")
        return offset, values

    def origin_of(self, die):
        """origin(die), for a LazyDIE without parsing it (and the declaration as a LazyDIE)."""
        if isinstance(die, LazyDIE):
            try:
                offset, _ = self._raw_origin(die.offset)
            except ScanUnsupported:
                found = self.origin(die.parsed)
                # a DIE without an abstract origin is its own (as below): `die`, not its parsed twin
                return die if found.offset == die.offset else found
            if offset == die.offset:
                return die
            return LazyDIE(self.dwarf, self._scanner.unit_of(offset), offset)
        return self.origin(die)

    def _child_dies_parsed(self, die, tag: str, nested: bool) -> list:
        out, stack = [], [iter(die.iter_children())]
        with reading(self.binary.path, f"DWARF children of the DIE at .debug_info offset {die.offset:#x}"):
            while stack:
                child = next(stack[-1], None)
                if child is None:
                    stack.pop()
                    continue
                if child.tag == tag:
                    out.append(child)
                if nested and child.has_children:
                    stack.append(iter(child.iter_children()))
        return out

    def origin(self, die):
        """The DIE carrying the declaration (name, parameter types): itself or its abstract origin."""
        if isinstance(die, LazyDIE):
            die = die.parsed
        seen = 0
        while "DW_AT_abstract_origin" in die.attributes and seen < 4:
            with reading(self.binary.path, f"DWARF in .debug_info at offset {die.offset:#x} (abstract origin)"):
                die = die.get_DIE_from_attribute("DW_AT_abstract_origin")
            seen += 1
        return die

