"""Layer 2b: Go functions: name, receiver, parameters and results with their Go types.

Functions are keyed by address; names come from `.symtab` (so `.abi0` wrappers keep
their suffix), declarations from DWARF (following abstract origins of inlinable
functions' out-of-line copies).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from dataclasses import dataclass, field
from functools import cached_property, lru_cache, partial
from typing import Callable

from .binary import GoBinary, Symbol
from .dwarf import CompileUnit, DwarfIndex
from .errors import DwarfgoError, reading
from .gotypes import GoType, Kind


@dataclass(eq=False)
class Parameter:
    """One parameter or result, in declaration order."""

    name: str  # DWARF name: `x`, `~r0` (unnamed result), `~p0`/`~b1`/`_` (blank), `.dict`
    type: GoType
    is_result: bool
    die: object = field(repr=False, default=None)  # the DIE carrying DW_AT_location (concrete copy)
    blank_result: bool = False  # a `~r<i>` among named results: `_` in the source (Go >= 1.17)

    @property
    def is_hidden(self) -> bool:
        """Compiler-added (generic dictionary), not in the Go source signature."""
        return self.name.startswith(".")

    @property
    def is_unnamed(self) -> bool:
        return not self.blank_result and (self.name.startswith("~r") or self.name == "")

    @property
    def is_blank(self) -> bool:
        return self.blank_result or self.name == "_" or self.name.startswith(("~b", "~p", "~_"))

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
    # results_note, or what works it out when first asked (it walks the function's body, and
    # `funcs` and `abi` never ask)
    _results_note: str | None | Callable[[], str | None] = field(repr=False, default=None)
    # why the DWARF may lack this function's parameters, or None (see FunctionTable._inputs_note)
    inputs_note: str | None = None

    @property
    def results_note(self) -> str | None:
        """Why the DWARF may lack this function's results, or None (see FunctionTable._results_note)."""
        note = self._results_note
        if callable(note):
            note = self._results_note = note()
        return note

    @results_note.setter
    def results_note(self, note: str | None) -> None:
        self._results_note = note

    @property
    def omitted_inputs(self) -> int:
        """Parameters the DWARF leaves out. Go <= 1.16 writes no DIE for blank or unnamed
        parameters; its unnamed results are numbered after all parameters, the receiver not
        counted (`~r3` means three arguments), which tells how many are missing."""
        counted = len(self.arguments)
        best = 0
        for r in self.results:
            if r.name.startswith("~r") and r.name[2:].isdigit():
                best = max(best, int(r.name[2:]) - self.results.index(r) - counted)
        return best

    @property
    def name(self) -> str:
        return self.symbol.name

    @property
    def wrapper_kind(self) -> str | None:
        """What compiler-generated wrapper this is, when its DIE says it is one (DW_AT_trampoline,
        Go 1.19+), else None."""
        if self.die is None or "DW_AT_trampoline" not in self.die.attributes:
            return None
        _, _, rest = split_symbol(_strip_abi0(self.name))
        last = rest.rsplit(".", 1)[-1]
        if rest.endswith("-fm"):
            return "a method value's wrapper: the receiver is in its closure context"
        if re.fullmatch(r"(?:gowrap|deferwrap)\d+", last) or is_closure_rest(rest):
            # Go 1.22+ names it F.gowrapN / F.deferwrapN, Go 1.17-1.21 like a closure (F.funcN)
            return "the wrapper of a go or defer statement: no parameters, the call and its values are in its closure context"
        return "a method's wrapper (pointer receiver, embedded field's method, interface method), or a function the compiler marks as a wrapper (reflect.callMethod)"

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

    @property
    def short_name(self) -> str:
        """The name after the package and, for a method, after its receiver: `Put` for
        `main.(*Store).Put` and for `main.Pair.String`'s `String`; `F.func1` for a closure."""
        pkg, recv, rest = split_symbol(self.name)
        if recv is None and self.receiver_name is not None and rest.startswith(self.receiver_name + "."):
            return rest[len(self.receiver_name) + 1:]  # a value method `pkg.T.M`
        return rest

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
        out = "func "
        if self.receiver is not None:
            out += f"({_param_text(self.receiver)}) "
        out += self.short_name
        args = [_param_text(p) for p in self.arguments]
        if self.omitted_inputs:
            args.append(f"/* {self.omitted_inputs} blank or unnamed parameter(s) not in this Go version's DWARF */")
        elif self.inputs_note:
            args.append("/* parameters not in DWARF */")
        out += "(" + ", ".join(args) + ")"
        results = [r for r in self.results if not r.is_hidden]
        if len(results) == 1 and results[0].is_unnamed:
            out += " " + results[0].type.name
        elif results:
            out += " (" + ", ".join(_param_text(r) for r in results) + ")"
        return out


def _param_text(p: Parameter) -> str:
    return f"{p.source_name} {p.type.name}" if p.source_name else p.type.name


@lru_cache(maxsize=8192)  # a function's name is split several times while it is modelled and printed
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
    if name.startswith(_UNNAMED_TYPE_METHOD):
        return _split_unnamed_type_method(name)
    slash = name.rfind("/", 0, _first_bracket(name))
    dot = name.find(".", slash + 1)
    if dot < 0:
        return "", None, name
    pkg, rest = name[:dot], name[dot + 1 :]
    parts = _split_top_level(rest)
    if len(parts) >= 2 and parts[0].startswith("("):
        return pkg, parts[0], ".".join(parts[1:])
    return pkg, None, rest


# a promoted method of an unnamed type (`go:struct { encoding/json/v2.MarshalerTo }.MarshalJSONTo`,
# `go:(*struct { … }).M`): the type is spelled out, braces, spaces, dots and all, and has no package
_UNNAMED_TYPE_METHOD = "go:"


def _split_unnamed_type_method(name: str) -> tuple[str, str | None, str]:
    """(`""`, the receiver when written in parentheses (`(*struct { … })`), the method; or `T.M`
    as the function part for a value receiver), or the whole name as the function part when it
    does not end in `.Method` after a balanced type."""
    body, depth = name[len(_UNNAMED_TYPE_METHOD):], 0
    for i, ch in enumerate(body):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "." and depth == 0 and i > 0 and body[i - 1] in ")}":
            if body.startswith("("):  # a pointer receiver, written as in `main.(*T).M`
                return "", body[:i], body[i + 1:]
            return "", None, body  # a value receiver: `T.M`, as `main.Pair.String` gives `Pair.String`
    return "", None, name


_CLOSURE_PART = re.compile(r"(?:func|gowrap|deferwrap)\d+")


@lru_cache(maxsize=16384)  # asked several times of each function's name while it is modelled
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


@lru_cache(maxsize=16384)  # a function's name is split by several of the checks that model it
def _split_top_level(text: str) -> tuple[str, ...]:
    if not any(ch in text for ch in "[](){}"):
        return tuple(text.split("."))  # nothing nests: every dot splits
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "[({":
            depth += 1
        elif ch in "])}":
            depth -= 1
        elif ch == "." and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return tuple(parts)


def _strip_brackets(text: str) -> str:
    i = text.find("[")
    return text if i < 0 else text[:i]


def receiver_of(name: str, first_input: Parameter | None) -> str | None:
    """The receiver part of a method's name, or None for plain functions and closures."""
    pkg, recv, rest = split_symbol(name)
    if is_closure_rest(rest):
        return None  # `(*T).M.func1`: a closure has no receiver, whatever its first parameter
    if recv is not None:
        return recv
    parts = _split_top_level(rest)
    if len(parts) < 2 or first_input is None:
        return None
    # `pkg.T.M` is a value method iff its first parameter has type pkg.T (closures such as
    # `pkg.F.func1` take no such parameter); `pkg.T.1.M` for a type declared inside a function
    recv_part = _local_type_receiver(parts) or parts[0]
    candidate = _strip_brackets(recv_part)
    tname = _LOCAL_TYPE.sub(r".\1", _strip_brackets(first_input.type.name))
    if tname in (f"{pkg}.{candidate}",) or tname.endswith("/" + f"{pkg.rsplit('/', 1)[-1]}.{candidate}"):
        return recv_part
    if not pkg and tname == candidate:  # an unnamed type's method: `go:struct { io.Reader }.Read`
        return recv_part
    return None


def _local_type_receiver(parts: tuple[str, ...]) -> str | None:
    """`T.1` for the parts of `T.1.M` (not a closure, see is_closure_rest): the value method M of a
    type declared inside a function, which the symbol spells `T.1` and DWARF `T·1`."""
    if len(parts) == 3 and parts[1].isdigit() and parts[0] and not parts[2].isdigit():
        return f"{parts[0]}.{parts[1]}"
    return None


_LOCAL_TYPE_SUFFIX = re.compile(r"\.(\d+)$")


def _local_type_spelling(symbol_type: str) -> str:
    """DWARF's name of a type the symbol names: `*net.dialResult·1` for `*net.dialResult.1`."""
    return _LOCAL_TYPE_SUFFIX.sub(r"·\1", symbol_type)


_RANGE_BODY = re.compile(r"-range\d+(?:$|\.)")
_RANGE_FUNC_NOTE = ("it has (or wraps a method with) range-over-func loop bodies, and Go writes no DWARF entry "
                    "for a function's unnamed results when it returns from inside one: results may exist that "
                    "DWARF does not list")


_LOCAL_TYPE = re.compile(r"·(\d+)")


def _same_type_name(type_name: str, spellings: list[str]) -> bool:
    """A DWARF type name is the one a symbol spells. A type declared inside a function is `T·1` in
    DWARF and `T.1` in the symbol (`mime/multipart.(*writerOnly.1).Write`, whose receiver was
    once added a second time on Go 1.22+)."""
    norm = _symbol_spelling
    return norm(type_name) in {norm(s) for s in spellings}


@lru_cache(maxsize=16384)  # the same receiver types are compared for many methods
def _symbol_spelling(type_name: str) -> str:
    return _LOCAL_TYPE.sub(r".\1", _strip_brackets(type_name))


def _strip_abi0(name: str) -> str:
    return name[:-5] if name.endswith(".abi0") else name


def _zero_size_receiver_first(name: str, inputs: list[Parameter]) -> None:
    """Go <= 1.16 lists parameters by frame offset, and a zero-size value receiver shares its
    offset with the first argument, so it may come after it (`main.simplifier.Visit` in gofmt
    1.15: `node, s`). The receiver is the one input of the type the symbol names; put it first."""
    pkg, recv, rest = split_symbol(name)
    parts = _split_top_level(rest)
    if recv is not None or len(parts) != 2 or is_closure_rest(rest) or "[" in parts[0]:
        return
    want = f"{pkg}.{parts[0]}"
    visible = [p for p in inputs if not p.is_hidden]
    if not visible or visible[0].type.name == want:
        return
    found = [p for p in visible if p.type.name == want and p.type.size == 0]
    if len(found) == 1:
        inputs.remove(found[0])
        inputs.insert(inputs.index(visible[0]), found[0])


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
        _zero_size_receiver_first(symbol.name, inputs)
        inputs_note = None
        if not inputs:
            inputs, results = self._method_value_parameters(symbol.name, results)
            if not inputs:
                inputs_note = self._inputs_note(symbol.name, die)
        missing = self._missing_receiver(symbol.name, inputs)
        if missing is not None:
            inputs.insert(0, missing)
        fn = Function(symbol, unit, inputs, results, die, None)
        fn.inputs_note = inputs_note
        visible = [p for p in inputs if not p.is_hidden]
        fn.receiver_name = receiver_of(symbol.name, visible[0] if visible else None)
        if not results:
            first = visible[0] if visible else None
            if self._may_wrap_promoted_method(first):
                fn.results_note = self._results_note(symbol.name, die, first)
                if fn.results_note is None:
                    fn.results, fn.results_note = self._promoted_wrapper_results(symbol.name, first)
            else:  # the note changes nothing else: worked out when asked
                fn.results_note = partial(self._results_note, symbol.name, die, first)
        return fn

    def _may_wrap_promoted_method(self, first: Parameter | None) -> bool:
        """Whether _promoted_wrapper_results may find results for a function whose first
        parameter is `first` (a Go version that leaves them out, a receiver)."""
        version = self.index.version_tuple
        return first is not None and version is not None and (1, 20) <= version[:2] <= (1, 21)

    @cached_property
    def _symbol_names(self) -> set[str]:
        return {s.name for s in self.binary.function_symbols}

    def _promoted_wrapper_results(self, name: str, first: Parameter | None) -> tuple[list[Parameter], str | None]:
        """Go 1.21 (seen; 1.20 not in the matrix, assumed alike) writes no DWARF results for the
        wrapper of a promoted method, a method of an embedded field (`encoding/json.(*encodeState).Len`
        wraps `bytes.(*Buffer).Len`, which returns an int). The function table's argument size
        cannot tell (register results take no room there). A wrapper returns what the method it
        wraps returns: (those results, without DIEs: their places follow from their types, and a
        note saying where they come from); or ([], a note) when the embedded field is an interface,
        whose methods DWARF does not describe; or ([], None)."""
        if not self._may_wrap_promoted_method(first):
            return [], None
        pkg, recv, rest = split_symbol(_strip_abi0(name))
        method = _split_top_level(rest)[-1]
        rtype = first.type.elem if first.type.name.startswith("*") and first.type.elem else first.type
        for f in rtype.fields if rtype.kind is Kind.STRUCT else []:
            if not f.embedded:
                continue
            if f.type.kind is Kind.INTERFACE:  # DWARF does not describe an interface's methods
                return [], (f"Go 1.21 writes no DWARF results for the wrapper of a promoted method, and "
                            f"{rtype.name} embeds the interface {f.type.name}: results may exist that DWARF "
                            f"does not list")
            fpkg, _, fname = f.type.name.lstrip("*").rpartition(".")
            for wrapped in (f"{fpkg}.(*{fname}).{method}", f"{fpkg}.{fname}.{method}"):
                sym = self._symbols_by_name.get(wrapped)
                if sym is None or wrapped == name:
                    continue
                try:
                    results = self.at(sym).results
                except DwarfgoError:
                    return [], None
                if results:
                    taken = [Parameter(r.name, r.type, True, None, r.blank_result) for r in results]
                    return taken, (f"Go 1.21 writes no DWARF results for the wrapper of a promoted method: "
                                   f"these are the results of the method it wraps, {wrapped}")
        return [], None

    def _inputs_note(self, name: str, die) -> str | None:
        """Go 1.19 (1.18 and 1.20 not in the matrix) writes no parameters for a method value's
        wrapper (`X.M-fm`), and _method_value_parameters takes them from the method's DWARF. An
        interface's method (`encoding/binary.ByteOrder.Uint64-fm`) has no function, so no DWARF:
        its parameters are unknown."""
        plain = _strip_abi0(name)
        version = self.index.version_tuple
        if not plain.endswith("-fm") or "DW_AT_trampoline" not in die.attributes or version is None \
                or not (1, 18) <= version[:2] < (1, 20) or plain[:-3] in self._symbols_by_name:
            return None
        return (f"Go {version[0]}.{version[1]} writes no DWARF parameters for a method value's wrapper, and "
                f"{plain[:-3]} (an interface's method, or a method not in the binary) has no DWARF to take them from")

    def _method_value_parameters(self, name: str, results: list[Parameter]) -> tuple[list[Parameter], list[Parameter]]:
        """Go 1.19 (1.18 and 1.20 not in the matrix) lists only the results of a method value's
        wrapper (`main.(*greeter).greet-fm`, DW_AT_trampoline), unnamed (`~r0`), and not its
        parameters, which are the method's own without the receiver (the receiver travels in the
        closure context). The parameters are taken from the method's DWARF, without DIEs (their
        places follow from their types), and the results get the method's names.
        Returns (inputs, results); no inputs when the symbol is not such a wrapper."""
        plain = _strip_abi0(name)
        sym = self._symbols_by_name.get(plain[:-3]) if plain.endswith("-fm") else None
        if sym is None:
            return [], results
        try:
            method = self.at(sym)
        except DwarfgoError:
            return [], results
        inputs = [Parameter(p.name, p.type, False, None) for p in method.arguments]
        if inputs and len(method.results) == len(results) and all(
                r.is_unnamed and r.type.name == m.type.name for r, m in zip(results, method.results)):
            results = [Parameter(m.name, r.type, True, r.die, m.blank_result) for r, m in zip(results, method.results)]
        return inputs, results

    @cached_property
    def _symbols_by_name(self) -> dict:
        return {s.name: s for s in self.binary.function_symbols}

    def _results_note(self, name: str, die, first: Parameter | None) -> str | None:
        """Go (1.23 to at least 1.27) writes no DWARF entry for the unnamed results of a function
        that returns from inside a range-over-func loop body: the results are simply absent. Such
        a function has loop bodies `F-range1`, … (own symbols, or inlined into it, also from an
        inlined callee: the wrapper `(*T).M` of such a `T.M` loses its results too); when it has
        them and DWARF lists no result, say that results may be missing."""
        prefix = _strip_abi0(name) + "-range"
        pkg, recv, rest = split_symbol(_strip_abi0(name))
        bodies = [f"{prefix}1"]
        if recv is not None and recv.startswith("(*"):
            bodies.append(f"{pkg}.{recv[2:-1]}.{rest}-range1")  # the pointer wrapper of a value method
        method = _split_top_level(rest)[-1]
        if first is not None and self._may_be_range_body(f"{method}-range1"):
            # a promoted method's wrapper: the method of an embedded field (the receiver's type is
            # laid out only when a loop body of that method's name exists at all)
            rtype = first.type.elem if first.type.name.startswith("*") and first.type.elem else first.type
            for f in rtype.fields if rtype.kind is Kind.STRUCT else []:
                if f.embedded:
                    fpkg, _, fname = f.type.name.lstrip("*").rpartition(".")
                    bodies += [f"{fpkg}.{fname}.{method}-range1", f"{fpkg}.(*{fname}).{method}-range1"]
        if any(b in self._symbol_names for b in bodies):
            return _RANGE_FUNC_NOTE
        for origin_name in self.index.inlined_names(die):
            if _RANGE_BODY.search(origin_name):
                return _RANGE_FUNC_NOTE
        return None

    @cached_property
    def _range_body_tails(self) -> frozenset[str]:
        """What follows the last `.` in the name of every loop body symbol (`M-range1` of
        `pkg.(*T).M-range1`)."""
        return frozenset(n.rsplit(".", 1)[-1] for n in self._symbol_names if n.endswith("-range1"))

    def _may_be_range_body(self, tail: str) -> bool:
        """Whether a symbol `<anything>.<tail>` may exist (no symbol ends so when this says no)."""
        return tail.rsplit(".", 1)[-1] in self._range_body_tails

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
            if not (recv.startswith("(*") and recv.endswith(")")) or "go.shape" in recv:
                return None  # a shape instantiation's receiver is its own first parameter
            # `(*Pointer[go/token.File])`: Go 1.18-1.21's wrapper of a generic method for one
            # instantiation lacks its receiver like the other wrappers
            want = f"*{pkg}.{recv[2:-1]}"
        else:
            parts = _split_top_level(rest)
            recv_part = _local_type_receiver(parts) or (parts[0] if len(parts) == 2 else None)
            if recv_part is None or "[" in recv_part or recv_part.startswith("func"):
                return None
            want = f"{pkg}.{recv_part}"  # a value method `pkg.T.M` (`pkg.T.1.M`), if pkg.T is a type
        # a symbol escapes dots of the import path's last element (`gopkg.in/yaml%2ev3`); the
        # type names may or may not; DWARF spells a local type T·1 where the symbol says T.1
        spellings = list(dict.fromkeys(
            w for s in (want, unquote(want)) for w in (_local_type_spelling(s), s)))
        visible = [p for p in inputs if not p.is_hidden]
        if visible and _same_type_name(visible[0].type.name, spellings):
            return None
        rtype = next((t for t in map(self._type_by_name, spellings) if t is not None), None)
        want = _local_type_spelling(want)
        tail = "." + _strip_brackets(want).rsplit(".", 1)[-1]
        if rtype is None and want.startswith("*") and not (
                visible and visible[0].type.name.startswith("*") and _strip_brackets(visible[0].type.name).endswith(tail)):
            # `func (*noCopy) Lock()`: DWARF may have sync.noCopy but no pointer type to it, or
            # neither (debug/elf.(*zeroReader).ReadAt in Go 1.19 cmd/go): the receiver is still a
            # pointer, printed as an address when what it points to is unknown
            base = next((t for t in (self._type_by_name(w[1:]) for w in spellings) if t is not None), None)
            size = self.binary.ptr_size
            rtype = GoType(offset=base.offset if base else -1, name=want, kind=Kind.POINTER, size=size, align=size,
                           elem_offset=base.offset if base else None, reader=base.reader if base else None)
        if rtype is None:
            return None
        return Parameter("", rtype, False, None)

    def _parameters(self, die) -> tuple[list[Parameter], list[Parameter]]:
        """The union of the abstract origin's parameters and the concrete DIE's own ones.

        The out-of-line copy of an inlinable function refers to the abstract DIE's parameters
        by abstract_origin (those carry the locations), but Go writes some only in the concrete
        DIE, with their own name and type: unnamed and blank results (`~r0`, Go <= 1.16 `~b1`)
        and, since Go 1.22, blank parameters (`~p0`). The concrete DIE lists them all in
        declaration order (`~p0, s, ~r0, ~r1`; `x, ~r0, ok`); an abstract parameter it does not
        refer to keeps its place after its abstract predecessor, without a location."""
        origin = self.index.origin_of(die)
        params = self.index.parameter_dies
        if origin is die:
            pairs = [(c, c) for c in params(die)]
        else:
            declared = {c.offset: c for c in params(origin)}
            pairs, used = [], set()
            for child in params(die):
                if child.origin is not None:
                    decl = declared.get(child.origin)
                    if decl is not None and decl.offset not in used:
                        pairs.append((decl, child))
                        used.add(decl.offset)
                elif child.type_offset is not None:
                    pairs.append((child, child))
            after = 0  # insert unreferenced abstract parameters after their predecessor
            for decl in declared.values():
                if decl.offset in used:
                    after = next(i for i, (d, _) in enumerate(pairs) if d is decl) + 1
                else:
                    pairs.insert(after, (decl, None))
                    after += 1
        inputs, results = [], []
        for child, loc_die in pairs:
            name, is_result = child.name, child.is_result
            if child.type_offset is None:
                raise KeyError("DW_AT_type")  # as pyelftools' attributes would: a parameter without a type
            gotype = self.index.types.type_at(child.type_offset)
            p = Parameter(name, gotype, is_result, loc_die.die if loc_die is not None else None)
            group = results if is_result else inputs
            if is_result and name and any(q.name == name for q in group):
                # seen with Go 1.22: a result whose DIE is emitted twice, unnamed (`~r0`) or named
                # (runtime.runqdrain's `drainQ`, gofmt); one value, not two
                continue
            group.append(p)
        if any(not (r.is_unnamed or r.is_blank or r.is_hidden) for r in results):
            # Go names results all or none: next to named ones, `~r<i>` is a blank `_`
            for r in results:
                r.blank_result = r.name.startswith("~r")
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
