"""`probe`/`trace` of a function whose only description without DWARF is its argument words
(issue 13): no signature, so each word prints in hex, as an untyped word.

The words come from the function's traceback record (ArgInfo, Go 1.18+: offset and size of each
argument word, grouped by value; see arginfo and tablesig.place_words) or, for Go versions
without it and without the register ABI, from the function table's argument-area size (the
arguments then the result slots, all on the stack at entry; the table does not say where the
arguments end). A word is read only where its place is certain; every other word is
unavailable with the reason.

The words become the parameters of a TableFunction with a checked layout, so the raw and the
readable program writers and the decoder handle them as any value of a uintptr-like type of the
word's size, printed in hex.
"""

from __future__ import annotations

from dataclasses import dataclass

from .abi.assign import FunctionLayout, Leaf, Location, RegisterPiece, StackSlot
from .binary import parse_go_version
from .errors import DwarfgoError
from .functions import Parameter
from .gotypes import GoType, Kind
from .tablesig import TRACEBACK_SOURCE, TableFunction, WordPlace, place_words, skipped_input_note

AREA_SOURCE = "function table argument area"
MAX_AREA_WORDS = 16  # an argument area can be large (arrays by value): its first words only


def word_type(size: int) -> GoType:
    """An untyped word of `size` bytes: read as unsigned, printed in hex."""
    return GoType(offset=-1, name=f"untyped {size}-byte word", kind=Kind.UINTPTR, size=size, align=size)


@dataclass(frozen=True)
class UnplacedWord(RegisterPiece):
    """A word whose place at entry is not certain: never read."""

    why: str = ""

    @property
    def readable(self) -> bool:
        return False

    @property
    def unavailable_reason(self) -> str | None:
        return f"place unknown: {self.why}"


@dataclass
class WordLocation(Location):
    def describe(self) -> str:
        if self.pieces and isinstance(self.pieces[0], UnplacedWord):
            return f"unknown ({self.pieces[0].why})"
        return super().describe()


@dataclass
class WordFunction(TableFunction):
    """A function probed as its argument words: parameters arg0, arg1_0, ... (value 1, word 0),
    no results, every one an untyped word."""

    source: str = TRACEBACK_SOURCE
    detail: str = ""  # what the words are, for the notes
    why_no_signature: str = ""  # short: why the type tables give none

    def signature(self) -> str:
        words = ", ".join(f"{p.name} {p.type.size}B" for p in self.inputs)
        return f"{self.name}({words}): untyped argument words, not a signature"

    def source_note(self) -> str:
        why = f" ({self.why_no_signature})" if self.why_no_signature else ""
        return (f"{self.name}: no signature without DWARF{why}; untyped argument words printed in hex (source: "
                f"{self.source}; {self.detail})")

    def source_label(self) -> str:
        return f"  (source: {self.source}; untyped words in hex, not a signature)"


def _location(arch, param: Parameter, place: WordPlace) -> Location:
    leaf = Leaf("", 0, param.type.size, param.type.name, False)
    if place.register is not None:
        return WordLocation(param, True, [RegisterPiece(leaf, place.register, arch.bpf_name(place.register))])
    if place.stack_offset is not None:
        return WordLocation(param, False, [StackSlot(leaf, place.stack_offset)], stack_offset=place.stack_offset)
    return WordLocation(param, True, [UnplacedWord(leaf, "?", None, place.why or "not known")])


def word_function(prog, symbol, why_no_signature: str, reason: str = "", model=None) -> WordFunction:
    """The function at `symbol` as its argument words, for probe and trace; a one-line
    DwarfgoError when not even its words are known (`why_no_signature`: why the type tables give
    no signature, said with it)."""
    from .abi.registers import arch_abi
    from .typetables import RuntimeTypeModel

    binary = prog.binary
    arch = arch_abi(binary.arch)
    if arch is None:
        raise DwarfgoError(f"{symbol.name}: no register table for {binary.arch}: its argument words cannot be "
                           f"placed ({why_no_signature})")
    version = parse_go_version(binary.go_version)
    model = model or RuntimeTypeModel(binary)
    values = model.arginfo.values(symbol.address)
    if values is not None:
        fn = _from_traceback_record(prog, symbol, values, arch, version, model.arginfo)
    elif version is not None and version >= (1, 17):
        raise DwarfgoError(f"{symbol.name}: no argument words either: the function has no traceback record "
                           f"(no arguments, or assembly) ({why_no_signature})")
    else:
        fn = _from_argument_area(prog, symbol, arch, why_no_signature)
    fn.why_no_signature = reason
    return fn


def _from_traceback_record(prog, symbol, values, arch, version, arginfo=None) -> WordFunction:
    from .arginfo import Group

    places, why, abi = place_words(prog.binary, symbol, values, arginfo)
    if not values.items:
        raise DwarfgoError(f"{symbol.name}: its traceback record lists no argument words: nothing to print")
    inputs: list[Parameter] = []
    locations: list[Location] = []

    def add(name: str, word) -> None:
        place = places.get(id(word)) or WordPlace(word.size, why=why or "not known")
        param = Parameter(name, word_type(word.size or 8), False)
        inputs.append(param)
        locations.append(_location(arch, param, place))

    def walk(prefix: str, v) -> None:
        if isinstance(v, Group):
            for j, item in enumerate(v.items):
                walk(f"{prefix}_{j}", item)
        else:
            add(prefix, v)

    for i, v in enumerate(values.items):
        walk(f"arg{i}", v)
    regabi = abi == "ABIInternal" if abi else arch.uses_regabi(version)
    more = "; the runtime records the first 10 words only" if values.more or any(
        isinstance(v, Group) and v.more for v in values.items) else ""
    detail = (f"argN is the N-th argument (receiver first), argN_M its M-th word; read only where the word's "
              f"place is certain{more}")
    skipped = skipped_input_note(symbol, prog.binary.go_version)
    if skipped:
        detail += f"; {skipped}"
    return _function(prog, symbol, inputs, locations, arch, regabi, TRACEBACK_SOURCE, detail)


def _from_argument_area(prog, symbol, arch, why_no_signature: str) -> WordFunction:
    size = prog.functab.args_size(symbol.address)
    if size is None:
        raise DwarfgoError(f"{symbol.name}: the function table gives no argument-area size (assembly?): no "
                           f"argument words either ({why_no_signature})")
    if size == 0:
        raise DwarfgoError(f"{symbol.name}: no arguments and no results (argument area of 0 bytes): nothing to "
                           f"print")
    if prog.binary.arch == "amd64" and symbol.size:
        from .verify.machine import analyze
        if analyze(prog.binary, symbol.address, symbol.size).stack_check.kind == "g-register":
            raise DwarfgoError(f"{symbol.name}: the prologue reads g as register-ABI code does, but Go "
                               f"{prog.binary.go_version} has no register ABI: its argument words are not read")
    ptr = prog.binary.ptr_size
    inputs: list[Parameter] = []
    locations: list[Location] = []
    for k in range(min((size + ptr - 1) // ptr, MAX_AREA_WORDS)):
        width = min(ptr, size - k * ptr)
        width = width if width in (1, 2, 4, 8) else ptr
        param = Parameter(f"area{k}", word_type(width), False)
        inputs.append(param)
        locations.append(_location(arch, param, WordPlace(width, stack_offset=arch.arg_base + k * ptr)))
    more = f"; its first {MAX_AREA_WORDS} words only" if size > MAX_AREA_WORDS * ptr else ""
    detail = (f"Go {prog.binary.go_version} records no argument layout (traceback argument records begin with Go 1.17): areaN "
              f"is the N-th word of the {size}-byte argument area on the stack, the arguments then the result "
              f"slots (not yet written at entry); the table does not say where the arguments end{more}")
    return _function(prog, symbol, inputs, locations, arch, False, AREA_SOURCE, detail)


def _function(prog, symbol, inputs, locations, arch, regabi: bool, source: str, detail: str) -> WordFunction:
    fn = WordFunction(symbol, None, inputs, [], None, None, uses_regabi=regabi, source=source, detail=detail)
    stack = [loc.stack_offset for loc in locations if loc.stack_offset is not None]
    layout = FunctionLayout(fn, "ABIInternal" if fn.regabi else "ABI0", arch, locations, [],
                            stack_args_size=0, results_offset=0, spill_offset=0, spill_size=0)
    if stack:
        layout.stack_args_size = max(loc.stack_offset + loc.param.type.size for loc in locations
                                     if loc.stack_offset is not None) - arch.arg_base
    fn.checked_layout = layout
    return fn


def area_description(prog, symbol, as_json: bool) -> str | None:
    """`dwarfgo sig` of a function with only its argument-area words (Go before 1.17, stack ABI):
    the words, or None when there are none (no record of the area, or a register-ABI version)."""
    import json

    from .abi.registers import arch_abi

    arch = arch_abi(prog.binary.arch)
    version = parse_go_version(prog.binary.go_version)
    if arch is None or version is None or version >= (1, 17) or arch.uses_regabi(version):
        return None
    try:
        fn = _from_argument_area(prog, symbol, arch, "")
    except DwarfgoError:
        return None
    locations = fn.checked_layout.inputs
    if as_json:
        return json.dumps({"function": symbol.name, "address": symbol.address, "source": AREA_SOURCE,
                           "signature": None, "detail": fn.detail,
                           "words": [{"name": loc.param.name, "size": loc.param.type.size,
                                      "place": loc.describe()} for loc in locations]}, indent=1)
    out = [f"{symbol.name} at {symbol.address:#x}: argument-area words only (not a signature)",
           f"  source  {AREA_SOURCE}: {fn.detail}"]
    out += [f"  {loc.param.name:<7} {loc.param.type.size} bytes  {loc.describe()}" for loc in locations]
    return "\n".join(out)
