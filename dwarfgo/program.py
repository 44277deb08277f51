"""The library's front door: a Go program's binary, DWARF, functions and types together.

    from dwarfgo.program import GoProgram
    with GoProgram("./server") as prog:
        fn = prog.function("(*BarrierView).Put")
        print(fn.signature())
"""

from __future__ import annotations

import sys
from dataclasses import replace
from functools import cached_property, partial

from .binary import GoBinary
from .diescan import (DW_TAG_array_type, DW_TAG_base_type, DW_TAG_pointer_type, DW_TAG_structure_type,
                      DW_TAG_subroutine_type, DW_TAG_typedef, ScanUnsupported)
from .dwarf import DwarfIndex
from .errors import DwarfgoError, TypeNotFound, reading
from .functions import Function, FunctionTable
from .gotypes import GoType
from .indexcache import IndexCache, ResultStore, SectionStore, SymbolStore, result_key
from .arginfo import describe_words
from .names import close_matches, compile_pattern, lookup, matching_names

_TYPE_SEARCHES = 3  # type names a process finds by a search (_first_type_named) before it makes the table of all
_TYPE_TAG_NUMBERS = frozenset({DW_TAG_typedef, DW_TAG_base_type, DW_TAG_structure_type, DW_TAG_pointer_type,
                               DW_TAG_array_type, DW_TAG_subroutine_type})
_TYPE_TAGS = {"DW_TAG_typedef", "DW_TAG_base_type", "DW_TAG_structure_type", "DW_TAG_pointer_type",
              "DW_TAG_array_type", "DW_TAG_subroutine_type"}


def _foreign(fn: Function) -> bool:
    """A function of a compile unit another compiler produced (C from cgo or a linked libc)."""
    producer = fn.unit.producer if fn.unit is not None else ""
    return bool(producer) and not producer.startswith("Go ")


def usable(fn: Function) -> bool:
    """A Go function with DWARF: what listings show (C from cgo or musl has another calling
    convention; assembly has no DWARF)."""
    return fn.has_dwarf and not _foreign(fn)


def tables_only(prog) -> bool:
    """Whether this program has neither DWARF (in the binary or a split-off debug file it names)
    nor a twin: then only the runtime tables describe it."""
    binary = prog.binary
    if prog.twin is not None or binary.elf.get_section_by_name(".gnu_debuglink") is not None:
        return False
    return not binary.has_dwarf


class GoProgram:
    """`cache=False` reads everything from the binary; otherwise the index of functions, units
    and types is kept between runs under the user's cache directory (see indexcache)."""

    def __init__(self, path, debug_file=None, debug_from=None, cache: bool = True):
        """`debug_from`: a DWARF twin (the same program built without -s -w) for a stripped
        binary; its build is checked here, each function's code when it is used."""
        if debug_file and debug_from:
            raise DwarfgoError("give --debug-file (a split-off debug file) or --debug-from (a DWARF twin), not both")
        self.binary = GoBinary(path, debug_from or debug_file)
        self._use_cache = cache
        self.twin = None
        self.twin_refusals: list[tuple[str, str]] = []  # (function, why) left out of matching()
        self._stores: list[ResultStore] = []  # results of map_matching kept in the cache
        self._types_found_here: dict[str, int] = {}  # what _first_type_named found (also without a cache)
        self._type_searches = 0  # _first_type_named's searches
        if cache and not debug_from:  # (a twin's identity is not the cache's key: see remembered)
            self.binary.symbol_store = lambda: SymbolStore(self.cache) if self.cache is not None else None
            self.binary.section_store = lambda: SectionStore(self.cache) if self.cache is not None else None
            self.binary.keeps_decoder_facts = True
        if debug_from:
            from .twin import DwarfTwin
            self.twin = DwarfTwin(self.binary, debug_from)
            try:
                self.twin.check_build()
            except BaseException:
                self.close()
                raise

    def remembered(self, kind: str, key: list, compute):
        """compute()'s result (JSON, tuples kept), computed once per binary and dwarfgo code: kept
        in the index cache as a ResultStore of `kind` under `key` (a JSON list of whatever else
        decides the result: the query and the options; the binary's path as given and resolved
        are added, as outputs name it). A result of another binary, an older build of it or other
        code is never used (see ResultStore); an error is not kept. Without a cache, or with a
        twin (whose own identity the cache does not key), compute() every time."""
        if self.cache is None or self.twin is not None:
            return compute()
        store = self._store(kind)
        full_key = result_key(key, self.binary.path)
        hit, result = store.get(full_key)
        if hit:
            return result
        result = compute()
        store.put(full_key, result)
        return result

    def _store(self, kind: str) -> ResultStore:
        for store in self._stores:
            if store.kind == kind:
                return store
        store = ResultStore(self.cache, kind)
        self._stores.append(store)
        return store

    def close(self) -> None:
        cache = self.__dict__.get("cache")
        if cache is not None:
            cache.save()
        for store in self._stores:
            store.save()
        machine = sys.modules.get(f"{__package__}.verify.machine")  # (imported by what read machine code)
        if machine is not None and self.binary.keeps_decoder_facts:
            machine.save_decoder_facts()
        self.binary.close()
        if self.twin is not None:
            self.twin.close()

    @cached_property
    def cache(self) -> IndexCache | None:
        return IndexCache.for_binary(self.binary) if self._use_cache else None

    def __enter__(self) -> "GoProgram":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @cached_property
    def index(self) -> DwarfIndex:
        return DwarfIndex(self.binary, self.cache)  # raises NoDwarfError with advice

    @cached_property
    def functab(self):
        """The runtime's own function table (.gopclntab): argument-area sizes."""
        from .pclntab import FuncTable
        return FuncTable(self.binary)

    @cached_property
    def functions(self) -> FunctionTable:
        return FunctionTable(self.binary, self.index, type_by_name=self._type_or_none)

    def lookup(self, query: str, explain: bool = True):
        """The function symbol `query` names (names.lookup); functions that share a name are
        listed with what tells them apart (`explain=False`: errors without suggestions or
        the listing)."""
        # a full symbol name that only one function has is that function (as names.lookup finds it),
        # without making every symbol of the binary an object first
        only = self.binary.symbol_named(query.strip()) if query.strip() else None
        if only is not None:
            return only
        return lookup(self.binary.function_symbols, query, explain, detail=self._instance_detail,
                      names_from=self.binary.symbols_from)

    def _instance_detail(self, sym) -> str | None:
        """What tells a function apart from others of its name (a stripped Go 1.18-1.19 binary's
        generic instances): the twin's symbol at its address, else its argument words from its
        traceback record."""
        if self.twin is not None:
            theirs = self.twin.twin.symbol_at(sym.address)
            if theirs is not None and theirs.address == sym.address and theirs.name != sym.name:
                return f"{theirs.name} in the twin"
        try:
            from .typetables import RuntimeTypeModel
            model = self.__dict__.get("_detail_model") or RuntimeTypeModel(self.binary)
            self.__dict__["_detail_model"] = model
            table = model.arginfo
            values = table.values(sym.address)
        except DwarfgoError:
            return None
        kind = ("assembly, " if table.is_assembly(sym.address) else
                "compiler-generated (a wrapper?), " if table.func_id(sym.address) else "")
        if values is None:
            return f"{kind}no traceback record of its arguments"
        return f"{kind}argument words {describe_words(values)}"

    def function(self, query: str, explain: bool = True) -> Function:
        """The function `query` names. `explain=False`: a query that names none raises without
        the suggestions (a caller that tries a pattern as a name first has no use for them)."""
        sym = self.lookup(query, explain)
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

    def probe_function(self, query: str) -> Function:
        """The function `query` names, for probe and trace: from DWARF (or the twin's), or on a
        binary with neither, a method whose signature the runtime type tables give (tablesig)."""
        if tables_only(self):
            from .tablesig import probe_function_from_tables  # (and the runtime type tables: only here)
            fn = probe_function_from_tables(self, query)
            if self._shares_name(fn.symbol):  # its events say which one: `main.Max[...]@0x4b4b60`
                fn.symbol = replace(fn.symbol, name=f"{fn.symbol.name}@{fn.symbol.address:#x}")
            return fn
        return self.function(query)

    def _shares_name(self, sym) -> bool:
        names = self.__dict__.get("_name_counts")
        if names is None:
            from collections import Counter
            names = self.__dict__["_name_counts"] = Counter(s.name for s in self.binary.function_symbols)
        return names[sym.name] > 1

    @cached_property
    def version_tuple(self) -> tuple[int, ...] | None:
        """The Go version: DWARF's producer, or .go.buildinfo's when there is no DWARF."""
        from .binary import parse_go_version
        if tables_only(self):
            return parse_go_version(self.binary.go_version)
        return self.index.version_tuple

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
            if usable(fn):
                out.append(fn)
            if progress:
                progress(i + 1, len(symbols))
        return out

    def map_matching(self, pattern: str | None, task, regex: bool = False, workers: int | None = None,
                     progress=None, store_as: str | None = None, prepare=None):
        """task(self, fn) for each function `matching` would return, in the same order, the
        functions modelled in worker processes when there are many (see parallel; `prepare(self)`
        reads before the workers start what each would read for itself).

        `store_as` names what the task computes (its results must be JSON with tuples, never None): the
        results are then kept in the index cache (a ResultStore of that name) and a later run
        on the same binary takes them from there, computing only the functions not stored."""
        from .parallel import map_functions, map_symbols
        symbols = matching_names(compile_pattern(pattern, regex), self.binary.function_symbols, pattern)
        if self.twin is not None:  # as matching(): a function whose code is not the twin's is left out
            kept = []
            for sym in symbols:
                reason = self.twin.refusal(sym)
                if reason:
                    self.twin_refusals.append((sym.name, reason))
                else:
                    kept.append(sym)
            symbols = kept
        prepare = partial(self._prepare_workers, prepare)
        if store_as is None or self.cache is None or self.twin is not None:
            return map_functions(self, symbols, task, workers, progress, prepare)
        store = self._store(store_as)
        return self._stored_map(store, symbols, task, workers, progress, map_symbols, prepare)

    def _prepare_workers(self, prepare, prog) -> None:
        """Before the workers are forked: the table of type names (which modelling a function
        reads, for a receiver DWARF lacks: read once here, not by every worker, 0.2 s each on
        cmd/compile), then the task's own `prepare`."""
        try:
            self._types_by_name
        except DwarfgoError:
            pass  # each function that needs it says so, as without this
        if prepare is not None:
            prepare(prog)

    def _stored_map(self, store: ResultStore, symbols, task, workers, progress, map_symbols, prepare=None):
        keys = [ResultStore.key(s.address, s.name) for s in symbols]
        stored = [store.get(k) for k in keys]
        missing = [s for s, (hit, _) in zip(symbols, stored) if not hit]
        computed = map_symbols(self, missing, task, workers,
                               (lambda done, total: progress(done + len(symbols) - total, len(symbols)))
                               if progress else None, prepare)
        for key, (hit, result) in zip(keys, stored):
            if hit:
                found = result is not None  # None: a function the task is not run on
            else:
                _, found, result = next(computed)
                store.put(key, result if found else None)
            if found:
                yield result

    # ------------------------------------------------------------ types by name
    @cached_property
    def _types_by_name(self) -> dict[str, int]:
        """Go type name -> DIE offset, over the top-level type DIEs of the unit(s) holding types.

        Go's linker writes every type into the `runtime` unit, so that unit alone is read (a
        whole-DWARF pass parses every DIE: 10 s on cmd/compile); a binary without one, or
        without types in it, gets the whole pass."""
        cache = self.cache
        if cache is not None and cache.types is not None:
            return cache.types
        units = [u for u in self.index.units if u.name == "runtime"]
        names = self._type_names(units)
        if not names:
            names = self._type_names(self.index.units)
        if cache is not None:
            cache.store_types(names)
        return names

    def _first_type_named(self, name: str) -> int | None:
        """The offset _types_by_name gives `name`, without making that table where the index
        lacks it: what the index kept of an earlier search, else the units holding types read
        up to the first type DIE of that name (runtime.g, which every probe reads, is the 311th
        of the 11,243 of cmd/compile 1.27; the table takes a tenth of a second), kept in the
        index. A search that reads every unit to the end has read the table, and makes it; a
        process that asks more than a few names makes it too (one walk costs less than several).
        None where the table decides (not found so, or a unit the raw scan does not read)."""
        cache = self.cache
        if "_types_by_name" in self.__dict__ or (cache is not None and cache.types is not None):
            return None  # (the table is at hand)
        kept = cache.types_found.get(name) if cache is not None else self._types_found_here.get(name)
        if kept is not None:
            return kept
        self._type_searches += 1
        if self._type_searches > _TYPE_SEARCHES:
            return None  # name after name: one walk to make the table costs less than more searches
        read = []
        for unit in self.index.units:
            if unit.name != "runtime":
                continue
            try:
                found = self.index._scanner.top_level(unit.offset, _TYPE_TAG_NUMBERS, stop_at=name)
            except ScanUnsupported:
                return None
            if found and found[-1].name == name:
                self._types_found_here[name] = found[-1].offset
                if cache is not None:
                    cache.store_type_found(name, found[-1].offset)
                return found[-1].offset
            read.append(found)
        names: dict[str, int] = {}
        for found in read:
            for d in found:
                if d.name is not None:
                    names.setdefault(d.name, d.offset)
        if names:  # (none: _types_by_name reads every unit)
            self.__dict__["_types_by_name"] = names
            if cache is not None:
                cache.store_types(names)
        return None

    def _type_names(self, units) -> dict[str, int]:
        names: dict[str, int] = {}
        for unit in units:
            try:
                found = [(d.name, d.offset) for d in self.index._scanner.top_level(unit.offset, _TYPE_TAG_NUMBERS)
                         if d.name is not None]
            except ScanUnsupported:
                found = self._type_names_parsed(unit)
            for name, offset in found:
                # the first DIE of a name is the outermost (typedef before its structure)
                names.setdefault(name, offset)
        return names

    def _type_names_parsed(self, unit) -> list[tuple[str, int]]:
        """The type DIEs of a unit the raw scan cannot read, through pyelftools."""
        out = []
        with reading(self.binary.path, f"DWARF types of {unit.name} (compile unit at .debug_info offset "
                                       f"{unit.offset:#x})"):
            for die in unit.unit.get_top_DIE().iter_children():
                if die.tag in _TYPE_TAGS and "DW_AT_name" in die.attributes:
                    value = die.attributes["DW_AT_name"].value
                    if isinstance(value, bytes):
                        out.append((value.decode("utf-8", "replace"), die.offset))
        return out

    def _type_at(self, name: str, offset: int) -> GoType:
        """The type of the DIE at `offset`, which the index says is named `name`; a cached index
        that says wrong is thrown away and the names read afresh."""
        with reading(self.binary.path, f"DWARF in .debug_info at offset {offset:#x} (type {name})"):
            die = self.index.types.die(offset)
        attr = die.attributes.get("DW_AT_name") if die.tag in _TYPE_TAGS else None
        if attr is None or not isinstance(attr.value, bytes) or attr.value.decode("utf-8", "replace") != name:
            # not the type of that name: a cached index that does not describe this binary after
            # all (forgotten), or damage the raw scan read past; pyelftools decides
            if self.cache is not None and self.cache.loaded:
                self.cache.discard()
            units = [u for u in self.index.units if u.name == "runtime"] or self.index.units
            names: dict[str, int] = {}
            for unit in units:
                for found, at in self._type_names_parsed(unit):
                    names.setdefault(found, at)
            self.__dict__["_types_by_name"] = names
            if self.cache is not None:
                self.cache.store_types(names)
            if name not in names:
                raise TypeNotFound(name, close_matches(name, list(names), n=5))
            offset = names[name]
        return self.index.types.type_at(offset)

    @cached_property
    def _named_types(self) -> dict[tuple[str, int], GoType]:
        """(name, DIE offset) -> its type, once _type_at found the DIE there so named (modelling
        a whole binary asks the same receiver types over and over)."""
        return {}

    def _type_or_none(self, name: str) -> GoType | None:
        """The type of exactly this name (no short forms), or None."""
        offset = self._first_type_named(name)
        if offset is not None:
            return self._type_at(name, offset)
        offset = self._types_by_name.get(name)
        if offset is None:
            return None
        found = self._named_types.get((name, offset))
        if found is None:
            found = self._type_at(name, offset)
            if self._types_by_name.get(name) == offset:  # (not after _type_at read the names afresh)
                self._named_types[(name, offset)] = found
        return found

    def type_named(self, name: str) -> GoType:
        offset = self._first_type_named(name)
        if offset is not None:
            return self._type_at(name, offset)
        names = self._types_by_name
        if name in names:
            return self._type_at(name, names[name])
        candidates = [n for n in names if n.endswith("." + name) or n.endswith("/" + name)]
        if len(candidates) == 1:
            return self._type_at(candidates[0], names[candidates[0]])
        if len(candidates) > 1:
            raise DwarfgoError(f"type {name!r} is ambiguous: " + ", ".join(sorted(candidates)[:10]))
        raise TypeNotFound(name, close_matches(name, list(names), n=5))
