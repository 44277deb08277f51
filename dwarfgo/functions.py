"""Layer 2b: Go functions: name, receiver, parameters and results with their Go types.

Functions are keyed by address; names come from `.symtab` (so `.abi0` wrappers keep
their suffix), declarations from DWARF (following abstract origins of inlinable
functions' out-of-line copies).
"""

from __future__ import annotations

import re

from dataclasses import dataclass, field
from functools import cached_property

from .binary import GoBinary, Symbol
from .dwarf import CompileUnit, DwarfIndex
from .errors import reading
from .gotypes import GoType, ref_offset


@dataclass(eq=False)
class Parameter:
    """One parameter or result, in declaration order."""

    name: str  # DWARF name: `x`, `~r0` (unnamed result), `~p0`/`~b1`/`_` (blank), `.dict`
    type: GoType
    is_result: bool
    die: object = field(repr=False, default=None)  # the DIE carrying DW_AT_location (concrete copy)

    @property
    def is_hidden(self) -> bool:
        """Compiler-added (generic dictionary), not in the Go source signature."""
        return self.name.startswith(".")

    @property
    def is_unnamed(self) -> bool:
        return self.name.startswith("~r") or self.name == ""

    @property
    def is_blank(self) -> bool:
        return self.name == "_" or self.name.startswith(("~b", "~p", "~_"))

    @property
    def source_name(self) -> str:
        """The name as written in Go source: '' for unnamed results, '_' for blanks."""
        if self.is_unnamed:
            return ""
        if self.is_blank:
            return "_"
        return self.name


@dataclass(eq=False)
class Function:
    symbol: Symbol
    unit: CompileUnit | None
    inputs: list[Parameter]  # receiver (if a method) first, then arguments; hidden ones included
    results: list[Parameter]
    die: object = field(repr=False, default=None)
    receiver_name: str | None = None  # `(*Store)` / `Store` part of the name, if a method

    @property
    def omitted_inputs(self) -> int:
        """Parameters the DWARF leaves out. Go <= 1.16 writes no DIE for blank or unnamed
        parameters; its unnamed results are numbered after all parameters (`~r3` means three
        inputs), which tells how many are missing."""
        counted = len([p for p in self.inputs if not p.is_hidden])
        best = 0
        for r in self.results:
            if r.name.startswith("~r") and r.name[2:].isdigit():
                best = max(best, int(r.name[2:]) - self.results.index(r) - counted)
        return best

    @property
    def name(self) -> str:
        return self.symbol.name

    @property
    def address(self) -> int:
        return self.symbol.address

    @property
    def has_dwarf(self) -> bool:
        return self.die is not None

    @property
    def regabi(self) -> bool:
        """Whether this body uses the register ABI (ABIInternal); `.abi0` symbols never do."""
        return bool(self.unit and self.unit.regabi) and not self.symbol.is_abi0

    @property
    def receiver(self) -> Parameter | None:
        visible = [p for p in self.inputs if not p.is_hidden]
        return visible[0] if self.receiver_name and visible else None

    @property
    def arguments(self) -> list[Parameter]:
        """Source-visible arguments (no receiver, no hidden parameters)."""
        recv = self.receiver
        return [p for p in self.inputs if not p.is_hidden and p is not recv]

    @property
    def is_generic_shape(self) -> bool:
        return "[go.shape." in self.name or "[go.shape" in self.name

    @property
    def is_closure(self) -> bool:
        """Its captured variables, a generic function's dictionary among them, come in the closure
        context, or, for a literal the compiler calls directly, as parameters in DWARF's order
        (see `is_closure_rest`)."""
        return is_closure_rest(split_symbol(self.name)[2])

    def display_names(self) -> dict[int, str]:
        """A unique, readable name for every value (keyed by id of the Parameter): source names,
        `_<i>` for a blank or unnamed argument at position i, `r<i>` for an unnamed result."""
        names: dict[int, str] = {}
        if self.receiver is not None:
            names[id(self.receiver)] = self.receiver.source_name or "_recv"
        for i, p in enumerate(self.arguments):
            names[id(p)] = p.name if not (p.is_blank or p.is_unnamed) else f"_{i}"
        for p in self.inputs:
            names.setdefault(id(p), p.name)  # hidden ones: `.dict`
        for i, r in enumerate(self.results):
            names[id(r)] = r.name if not (r.is_blank or r.is_unnamed) else f"r{i}"
        return names

    def names_of(self, values: list[Parameter]) -> dict[str, Parameter]:
        """The names `--args` accepts for these values: each one's display name, and the DWARF name
        `dwarfgo sig` shows for an unnamed or blank one (`~r0`, `~p1`)."""
        display = self.display_names()
        out = {display.get(id(p)) or p.name: p for p in values}
        for p in values:
            if p.name.startswith("~"):
                out.setdefault(p.name, p)
        return out

    def signature(self) -> str:
        """Go syntax: `func (st *main.Store) Put(k string, v []uint8) (int, error)`."""
        pkg, recv, short = split_symbol(self.name)
        out = "func "
        if self.receiver is not None:
            out += f"({_param_text(self.receiver)}) "
        out += short
        args = [_param_text(p) for p in self.arguments]
        if self.omitted_inputs:
            args.append(f"/* {self.omitted_inputs} blank or unnamed parameter(s) not in this Go version's DWARF */")
        out += "(" + ", ".join(args) + ")"
        results = [r for r in self.results if not r.is_hidden]
        if len(results) == 1 and results[0].is_unnamed:
            out += " " + results[0].type.name
        elif results:
            out += " (" + ", ".join(_param_text(r) for r in results) + ")"
        return out


def _param_text(p: Parameter) -> str:
    return f"{p.source_name} {p.type.name}" if p.source_name else p.type.name


def split_symbol(name: str) -> tuple[str, str | None, str]:
    """Split a Go symbol into (package path, receiver part or None, function part).

    `github.com/a/b%2ec.(*T[go.shape.int]).M` -> ('github.com/a/b%2ec', '(*T[go.shape.int])', 'M')
    `main.main.func1` -> ('main', None, 'main.func1')  (receiver is decided from DWARF later).
    `type:.eq.main.T` -> ('', None, 'type:.eq.main.T')  (compiler-generated, per type).
    Brackets of generic instantiations may contain dots and slashes; they are skipped.
    """
    if name.endswith(".abi0"):
        name = name[:-5]
    if name.startswith(_TYPE_FUNCTION_PREFIXES):
        return "", None, name  # `type:.eq.main.T`: the compiler's per-type function, of no package
    slash = name.rfind("/", 0, _first_bracket(name))
    dot = name.find(".", slash + 1)
    if dot < 0:
        return "", None, name
    pkg, rest = name[:dot], name[dot + 1 :]
    parts = _split_top_level(rest)
    if len(parts) >= 2 and parts[0].startswith("("):
        return pkg, parts[0], ".".join(parts[1:])
    return pkg, None, rest


_CLOSURE_PART = re.compile(r"(?:func|gowrap|deferwrap)\d+")


def is_closure_rest(rest: str) -> bool:
    """Whether the function part of a symbol (split_symbol's third) names a closure: a function
    literal (`F.func1`, nested `F.func1.2`, `F.gowrap1`, `F.deferwrap1`, `glob..func1`), a method
    value (`M-fm`) or a range-over-func body (`F-range1`)."""
    return "-" in rest or any(_CLOSURE_PART.fullmatch(part) for part in _split_top_level(rest)[1:])


# equality and hash functions the compiler generates per type (`type..` before Go 1.20)
_TYPE_FUNCTION_PREFIXES = ("type:.", "type..")


def _first_bracket(name: str) -> int:
    i = name.find("[")
    return len(name) if i < 0 else i


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == "." and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _strip_brackets(text: str) -> str:
    i = text.find("[")
    return text if i < 0 else text[:i]


def receiver_of(name: str, first_input: Parameter | None) -> str | None:
    """The receiver part of a method's name, or None for plain functions and closures."""
    pkg, recv, rest = split_symbol(name)
    if recv is not None:
        return recv
    parts = _split_top_level(rest)
    if len(parts) < 2 or first_input is None:
        return None
    # `pkg.T.M` is a value method iff its first parameter has type pkg.T (closures such as
    # `pkg.F.func1` take no such parameter).
    candidate = _strip_brackets(parts[0])
    tname = _strip_brackets(first_input.type.name)
    if tname in (f"{pkg}.{candidate}",) or tname.endswith("/" + f"{pkg.rsplit('/', 1)[-1]}.{candidate}"):
        return parts[0]
    return None


class FunctionTable:
    """All functions of a binary, by address and by name."""

    def __init__(self, binary: GoBinary, index: DwarfIndex | None = None, type_by_name=None):
        self.binary = binary
        self._index = index
        self._type_by_name = type_by_name  # exact Go type name -> GoType or None (for missing receivers)

    @cached_property
    def index(self) -> DwarfIndex:
        return self._index or DwarfIndex(self.binary)

    def at(self, symbol: Symbol) -> Function:
        """Build the model of one function (reads only its package's DWARF)."""
        unit, die = self.index.subprogram_at(symbol.address)
        return self._build(symbol, unit, die)

    def _build(self, symbol: Symbol, unit: CompileUnit | None, die) -> Function:
        if die is None:
            return Function(symbol, unit, [], [], None, None)
        with reading(self.binary.path, f"DWARF of {symbol.name} (DIE at .debug_info offset {die.offset:#x})"):
            inputs, results = self._parameters(die)
        missing = self._missing_receiver(symbol.name, inputs)
        if missing is not None:
            inputs.insert(0, missing)
        fn = Function(symbol, unit, inputs, results, die, None)
        visible = [p for p in inputs if not p.is_hidden]
        fn.receiver_name = receiver_of(symbol.name, visible[0] if visible else None)
        return fn

    def _missing_receiver(self, name: str, inputs: list[Parameter]) -> Parameter | None:
        """Before Go 1.22 DWARF has no DIE for an unnamed receiver (`func (*T) M()`), nor for the
        receiver of a compiler-generated `(*T).M` wrapper. The symbol names the receiver's type:
        when the first parameter is not of that type, the receiver is put back, unnamed and
        without a DIE (so DWARF gives no location for it; the function table's argument size
        still witnesses the whole list). Generic receivers are left alone."""
        if self._type_by_name is None:
            return None
        pkg, recv, rest = split_symbol(name)
        if is_closure_rest(rest) or (recv is not None and "." in rest):
            # method values (-fm), range-over-func bodies (-range1) and closures inside methods:
            # the receiver travels in the closure context, not as an argument
            return None
        if recv is not None:
            if not (recv.startswith("(*") and recv.endswith(")")) or "[" in recv:
                return None
            want = f"*{pkg}.{recv[2:-1]}"
        else:
            parts = _split_top_level(rest)
            if len(parts) != 2 or "[" in parts[0] or parts[0].startswith("func"):
                return None
            want = f"{pkg}.{parts[0]}"  # a value method `pkg.T.M`, if pkg.T is a type
        visible = [p for p in inputs if not p.is_hidden]
        if visible and _strip_brackets(visible[0].type.name) == want:
            return None
        rtype = self._type_by_name(want)
        if rtype is None:
            return None
        return Parameter("", rtype, False, None)

    def _parameters(self, die) -> tuple[list[Parameter], list[Parameter]]:
        origin = self.index.origin(die)
        # Concrete copies of inlinable functions list their parameters by abstract_origin;
        # the declaration order and the types come from the abstract DIE.
        concrete = {}
        if origin is not die:
            for child in die.iter_children():
                if child.tag == "DW_TAG_formal_parameter" and "DW_AT_abstract_origin" in child.attributes:
                    concrete[ref_offset(child, "DW_AT_abstract_origin")] = child
        inputs, results = [], []
        for child in origin.iter_children():
            if child.tag != "DW_TAG_formal_parameter":
                continue
            name_attr = child.attributes.get("DW_AT_name")
            name = name_attr.value.decode("utf-8", "replace") if name_attr else ""
            var = child.attributes.get("DW_AT_variable_parameter")
            is_result = bool(var.value) if var is not None else False
            gotype = self.index.types.type_at(ref_offset(child))
            loc_die = concrete.get(child.offset, child if origin is die else None)
            p = Parameter(name, gotype, is_result, loc_die)
            group = results if is_result else inputs
            if name.startswith("~r") and any(q.name == name for q in group):
                # seen with Go 1.22: an unnamed result whose DIE is emitted twice; one value, not two
                continue
            group.append(p)
        return inputs, results

    def iter_all(self):
        """Every function that has both a symbol and a DWARF subprogram (whole binary)."""
        by_addr = {s.address: s for s in self.binary.function_symbols}
        for unit, addr, die in self.index.iter_subprograms():
            sym = by_addr.get(addr)
            if sym is None:
                name_attr = self.index.origin(die).attributes.get("DW_AT_name")
                if name_attr is None:
                    continue
                sym = Symbol(name_attr.value.decode("utf-8", "replace"), addr, 0)
            yield self._build(sym, unit, die)
