"""The library's front door: a Go program's binary, DWARF, functions and types together.

    from dwarfgo.program import GoProgram
    with GoProgram("./server") as prog:
        fn = prog.function("(*BarrierView).Put")
        print(fn.signature())
"""

from __future__ import annotations

import difflib
from functools import cached_property

from .binary import GoBinary
from .dwarf import DwarfIndex
from .errors import DwarfgoError, TypeNotFound, reading
from .functions import Function, FunctionTable
from .gotypes import GoType
from .names import compile_pattern, lookup, matching_names

_TYPE_TAGS = {"DW_TAG_typedef", "DW_TAG_base_type", "DW_TAG_structure_type", "DW_TAG_pointer_type",
              "DW_TAG_array_type", "DW_TAG_subroutine_type"}


def _foreign(fn: Function) -> bool:
    """A function of a compile unit another compiler produced (C from cgo or a linked libc)."""
    producer = fn.unit.producer if fn.unit is not None else ""
    return bool(producer) and not producer.startswith("Go ")


class GoProgram:
    def __init__(self, path, debug_file=None, debug_from=None):
        """`debug_from`: a DWARF twin (the same program built without -s -w) for a stripped
        binary; its build is checked here, each function's code when it is used."""
        if debug_file and debug_from:
            raise DwarfgoError("give --debug-file (a split-off debug file) or --debug-from (a DWARF twin), not both")
        self.binary = GoBinary(path, debug_from or debug_file)
        self.twin = None
        self.twin_refusals: list[tuple[str, str]] = []  # (function, why) left out of matching()
        if debug_from:
            from .twin import DwarfTwin
            self.twin = DwarfTwin(self.binary, debug_from)
            try:
                self.twin.check_build()
            except BaseException:
                self.close()
                raise

    def close(self) -> None:
        self.binary.close()
        if self.twin is not None:
            self.twin.close()

    def __enter__(self) -> "GoProgram":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @cached_property
    def index(self) -> DwarfIndex:
        return DwarfIndex(self.binary)  # raises NoDwarfError with advice

    @cached_property
    def functab(self):
        """The runtime's own function table (.gopclntab): argument-area sizes."""
        from .pclntab import FuncTable
        return FuncTable(self.binary)

    @cached_property
    def functions(self) -> FunctionTable:
        return FunctionTable(self.binary, self.index, type_by_name=self._type_or_none)

    def function(self, query: str) -> Function:
        sym = lookup(self.binary.function_symbols, query)
        self.binary.require_dwarf(sym.name)
        if self.twin is not None:
            self.twin.verify(sym)
        fn = self.functions.at(sym)
        if _foreign(fn):
            raise DwarfgoError(f"{sym.name} is not Go: its compile unit {fn.unit.name} was produced by "
                               f"{fn.unit.producer.split(' -')[0][:60]!r}; dwarfgo places Go's arguments only")
        if not fn.has_dwarf:
            raise DwarfgoError(
                f"{sym.name} has no DWARF description (assembly, or a compiler-generated wrapper); "
                f"its arguments cannot be recovered"
            )
        return fn

    def matching(self, pattern: str | None, regex: bool = False, progress=None) -> list[Function]:
        """Functions whose names match; parses only the packages that hold matching symbols."""
        pred = compile_pattern(pattern, regex)
        symbols = matching_names(pred, self.binary.function_symbols, pattern)
        out = []
        for i, sym in enumerate(symbols):
            if self.twin is not None:
                reason = self.twin.refusal(sym)
                if reason:
                    self.twin_refusals.append((sym.name, reason))
                    continue
            fn = self.functions.at(sym)
            if fn.has_dwarf and not _foreign(fn):  # C (cgo, musl) has another calling convention
                out.append(fn)
            if progress:
                progress(i + 1, len(symbols))
        return out

    # ------------------------------------------------------------ types by name
    @cached_property
    def _types_by_name(self) -> dict[str, int]:
        """Go type name -> DIE offset, over the top-level type DIEs of the unit(s) holding types.

        Go's linker writes every type into the `runtime` unit, so that unit alone is read (a
        whole-DWARF pass parses every DIE: 10 s on cmd/compile); a binary without one, or
        without types in it, gets the whole pass."""
        units = [u for u in self.index.units if u.name == "runtime"]
        names = self._type_names(units, self.binary.path)
        if not names:
            names = self._type_names(self.index.units, self.binary.path)
        return names

    @staticmethod
    def _type_names(units, path) -> dict[str, int]:
        names: dict[str, int] = {}
        for unit in units:
            with reading(path, f"DWARF types of {unit.name} (compile unit at .debug_info offset "
                               f"{unit.unit.cu_offset:#x})"):
                for die in unit.unit.get_top_DIE().iter_children():
                    if die.tag in _TYPE_TAGS and "DW_AT_name" in die.attributes:
                        value = die.attributes["DW_AT_name"].value
                        if not isinstance(value, bytes):
                            continue
                        name = value.decode("utf-8", "replace")
                        # the first DIE of a name is the outermost (typedef before its structure)
                        names.setdefault(name, die.offset)
        return names

    def _type_or_none(self, name: str) -> GoType | None:
        """The type of exactly this name (no short forms), or None."""
        offset = self._types_by_name.get(name)
        return self.index.types.type_at(offset) if offset is not None else None

    def type_named(self, name: str) -> GoType:
        names = self._types_by_name
        if name in names:
            return self.index.types.type_at(names[name])
        candidates = [n for n in names if n.endswith("." + name) or n.endswith("/" + name)]
        if len(candidates) == 1:
            return self.index.types.type_at(names[candidates[0]])
        if len(candidates) > 1:
            raise DwarfgoError(f"type {name!r} is ambiguous: " + ", ".join(sorted(candidates)[:10]))
        raise TypeNotFound(name, difflib.get_close_matches(name, list(names), n=5))
