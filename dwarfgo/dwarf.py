"""Layer 2: Go's DWARF: compile units (one per package) and subprogram DIEs.

Finding one function must not parse the whole DWARF: `DwarfIndex.subprogram_at`
reads only the CU top DIEs (to map addresses to packages) and then the DIEs of
the one package whose address ranges contain the function.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Iterator
from urllib.parse import unquote

from elftools.dwarf.ranges import BaseAddressEntry, RangeEntry

from .binary import GoBinary, parse_go_version
from .errors import reading
from .gotypes import TypeReader

_PRODUCER_RE = re.compile(r"Go cmd/compile (\S+?)(?:;\s*(.*))?$")


@dataclass
class CompileUnit:
    """One Go package's compile unit."""

    name: str  # import path, `%2e` unescaped
    producer: str
    go_version: str | None
    flags: str  # what follows `;` in the producer, e.g. "-N -l regabi"
    ranges: list[tuple[int, int]]
    unit: object  # pyelftools CompileUnit

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


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class DwarfIndex:
    """Address-keyed access to a Go binary's DWARF."""

    def __init__(self, binary: GoBinary):
        self.binary = binary
        self.dwarf = binary.dwarf
        self.types = TypeReader(self.dwarf, binary.ptr_size, str(binary.path))
        self._subprograms_by_unit: dict[int, dict[int, object]] = {}

    # ------------------------------------------------------------ compile units
    @cached_property
    def units(self) -> list[CompileUnit]:
        out = []
        with reading(self.binary.path, "DWARF compile unit headers in .debug_info"):
            cus = list(self.dwarf.iter_CUs())
        for cu in cus:
            with reading(self.binary.path, f"DWARF compile unit at .debug_info offset {cu.cu_offset:#x}"):
                top = cu.get_top_DIE()
                attrs = top.attributes
                name = unquote(_text(attrs["DW_AT_name"].value)) if "DW_AT_name" in attrs else "?"
                producer = _text(attrs["DW_AT_producer"].value) if "DW_AT_producer" in attrs else ""
                m = _PRODUCER_RE.match(producer)
                version, flags = (m.group(1), m.group(2) or "") if m else (None, "")
                out.append(CompileUnit(name, producer, version, flags, self._unit_ranges(cu, top), cu))
        return out

    def _unit_ranges(self, cu, top) -> list[tuple[int, int]]:
        attrs = top.attributes
        low = attrs["DW_AT_low_pc"].value if "DW_AT_low_pc" in attrs else 0
        if "DW_AT_ranges" in attrs:
            rl = self.dwarf.range_lists()
            if rl is None:
                return []
            base = low
            out = []
            for entry in rl.get_range_list_at_offset(attrs["DW_AT_ranges"].value, cu=cu):
                if isinstance(entry, BaseAddressEntry):
                    base = entry.base_address
                elif isinstance(entry, RangeEntry):
                    if entry.is_absolute:
                        out.append((entry.begin_offset, entry.end_offset))
                    else:
                        out.append((base + entry.begin_offset, base + entry.end_offset))
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
    def _subprograms(self, unit: CompileUnit) -> dict[int, object]:
        """Concrete (address-carrying) subprogram DIEs of a unit, keyed by low_pc."""
        key = unit.unit.cu_offset
        table = self._subprograms_by_unit.get(key)
        if table is None:
            table = {}
            with reading(self.binary.path, f"DWARF of package {unit.name} (compile unit at .debug_info offset "
                                           f"{key:#x})"):
                for die in unit.unit.get_top_DIE().iter_children():
                    if die.tag == "DW_TAG_subprogram" and "DW_AT_low_pc" in die.attributes:
                        table[die.attributes["DW_AT_low_pc"].value] = die
            self._subprograms_by_unit[key] = table
        return table

    def subprogram_at(self, address: int):
        """(unit, DIE) of the function starting at `address`, or (unit, None)."""
        unit = self.unit_for_address(address)
        if unit is None:
            return None, None
        return unit, self._subprograms(unit).get(address)

    def iter_subprograms(self) -> Iterator[tuple[CompileUnit, int, object]]:
        """Every concrete subprogram: (unit, low_pc, DIE). Parses the whole DWARF."""
        for unit in self.units:
            for addr, die in self._subprograms(unit).items():
                yield unit, addr, die

    def origin(self, die):
        """The DIE carrying the declaration (name, parameter types): itself or its abstract origin."""
        seen = 0
        while "DW_AT_abstract_origin" in die.attributes and seen < 4:
            with reading(self.binary.path, f"DWARF in .debug_info at offset {die.offset:#x} (abstract origin)"):
                die = die.get_DIE_from_attribute("DW_AT_abstract_origin")
            seen += 1
        return die

