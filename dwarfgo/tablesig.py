"""A function's signature and argument locations from the runtime type tables, for a binary
with no DWARF and no twin (`dwarfgo sig` on a `-ldflags='-s -w'` build).

Only methods have a signature there: the method table of a type lists each method's func type
(`mtyp`) and code address (see typetables). The method's values are named by position (the
receiver `recv`, parameters p0, p1, ..., results r0, r1, ...) since Go records no names. The
locations follow from the types by the ABI's assignment (abi.assign), and are checked by two
witnesses that need no DWARF: the function table's argument-area size must equal the one the
assignment gives, and the morestack spills in the machine code (register ABI) must store the
registers the assignment gives. A witness that disagrees makes every location unknown.
"""

from __future__ import annotations

from dataclasses import dataclass

from .abi.assign import FunctionLayout, assign
from .binary import parse_go_version
from .errors import DwarfgoError
from .functions import Function, Parameter, split_symbol
from .typetables import SOURCE, MethodSignature, RuntimeTypeModel


class NoTableSignature(DwarfgoError):
    """The tables give no signature for this function (`symbol`)."""

    def __init__(self, symbol, message: str, reason: str = ""):
        super().__init__(message)
        self.symbol = symbol
        self.reason = reason  # the short why, without the advice


@dataclass
class TableSignature:
    function: Function  # values named recv, p0..., r0...; no DWARF behind it
    method: MethodSignature
    layout: FunctionLayout | None  # None: no register table for the architecture
    args_size: int | None  # the function table's argument-area size
    spills: str  # what the machine code's morestack spills say

    def record(self) -> dict:
        """For `sig --json`."""
        fn, layout = self.function, self.layout
        locs = {id(loc.param): loc for loc in (layout.inputs + layout.results)} if layout else {}

        def value(p):
            loc = locs.get(id(p))
            return {"name": p.name, "type": p.type.name, "size": p.type.size, "align": p.type.align,
                    "location": None if layout is None or layout.unknown or loc is None else loc.describe()}

        return {"function": fn.name, "address": fn.address, "signature": fn.signature(), "source": SOURCE,
                "receiver": value(fn.receiver), "params": [value(p) for p in fn.arguments],
                "results": [value(p) for p in fn.results], "abi": layout.abi if layout else None,
                "args_size": self.args_size, "spills": self.spills,
                "locations_unknown": layout.unknown if layout else "no register table for this architecture"}

    def lines(self, go_version: str | None, arch: str) -> list[str]:
        fn, layout = self.function, self.layout
        out = [fn.signature(),
               f"  symbol  {fn.name} at {fn.address:#x}",
               f"  binary  {go_version} {arch}, no DWARF; ABI {layout.abi if layout else 'unknown'}",
               f"  source  {SOURCE}: method {self.method.method} of {self.method.receiver.name} (Go records no "
               f"parameter names: named by position)"]
        locs = {id(loc.param): loc for loc in (layout.inputs + layout.results)} if layout else {}
        rows = [("receiver" if p is fn.receiver else "param", p) for p in fn.inputs] + \
               [("result", p) for p in fn.results]
        width = max(len(p.name) for _, p in rows)
        twidth = max(len(p.type.name) for _, p in rows)
        for role, p in rows:
            loc = locs.get(id(p))
            where = "unknown" if layout is None or layout.unknown or loc is None else loc.describe()
            out.append(f"  {role:<8} {p.name:<{width}}  {p.type.name:<{twidth}}  size {p.type.size:<4} "
                       f"align {p.type.align:<2} {where}")
        out.append(f"  check   argument area {self.args_size if self.args_size is not None else 'unknown'} bytes "
                   f"in the function table; morestack spills: {self.spills}")
        if layout is not None and layout.unknown:
            out.append(f"  note    locations unknown: {layout.unknown}")
        return out


@dataclass
class TableFunction(Function):
    """A method built from the runtime type tables (no DIE, no compile unit): the ABI comes from the
    Go version, and the layout that probes read from is the one its witnesses checked."""

    uses_regabi: bool = False
    checked_layout: FunctionLayout | None = None

    @property
    def regabi(self) -> bool:
        return self.uses_regabi and not self.symbol.is_abi0

    def source_label(self) -> str:
        """After the signature in a program's header: where it came from."""
        return f"  (source: {SOURCE}; parameters named by position)"

    def source_note(self) -> str:
        return (f"{self.name}: signature from the runtime type table (source: {SOURCE}; Go records no parameter "
                f"names: named by position, recv, p0..., r0...)")


def function_from_method(symbol, m: MethodSignature) -> TableFunction:
    """A Function for a method of the tables: receiver `recv`, parameters p0..., results r0..."""
    inputs = [Parameter("recv", m.receiver, False)] + [Parameter(f"p{i}", t, False) for i, t in enumerate(m.params)]
    results = [Parameter(f"r{i}", t, True) for i, t in enumerate(m.results)]
    _, recv, rest = split_symbol(symbol.name)
    receiver_name = recv or rest.rsplit(".", 1)[0]
    return TableFunction(symbol, None, inputs, results, None, receiver_name)


def signature_from_tables(prog, query: str, model: RuntimeTypeModel | None = None, symbol=None) -> TableSignature:
    """The signature of the function `query` names (or of `symbol`, when given), from the runtime
    type tables; a one-line DwarfgoError saying why when they do not give it."""
    binary = prog.binary
    sym = symbol or prog.lookup(query)
    model = model or RuntimeTypeModel(binary)
    m = model.methods_by_address.get(sym.address)
    advice = binary.no_dwarf_advice()
    if m is None:
        raise NoTableSignature(sym, f"{sym.name}: no signature without DWARF: it is not a method in the runtime type "
                                    f"tables (they list only the methods of types that reach an interface or "
                                    f"reflection); {advice}", "not a method in the runtime type tables")
    if not m.known:
        raise NoTableSignature(sym, f"{sym.name} is method {m.method} of {m.receiver.name} in the runtime type "
                                    f"tables, but the linker dropped its type (mtyp: no interface or reflection "
                                    f"needs it): its signature is unknown; {advice}",
                               f"method {m.method} of {m.receiver.name}, but the linker dropped its type")
    fn = function_from_method(sym, m)
    version = parse_go_version(binary.go_version)
    from .abi.registers import arch_abi
    arch = arch_abi(binary.arch)
    layout = None
    args_size = prog.functab.args_size(sym.address)
    spills = "not checked"
    if arch is not None:
        fn.uses_regabi = arch.uses_regabi(version)
        layout = assign(fn, arch, fn.uses_regabi, version)
        mine = layout.spill_offset + layout.spill_size
        if args_size is not None and args_size != mine:
            layout.unknown = (f"the function table gives {args_size} bytes of arguments, the method's type accounts "
                              f"for {mine}")
        if binary.arch in ("amd64", "arm64") and sym.size:
            from .verify.machine import analyze, check_spills
            machine = analyze(binary, sym.address, sym.size)
            check = check_spills(layout, machine)
            # the prologue reads g from R14 on the register ABI, from TLS on ABI0 (amd64)
            g_from = {"g-register": "ABIInternal", "tls": "ABI0"}.get(machine.stack_check.kind)
            if binary.arch == "amd64" and g_from and g_from != layout.abi and layout.unknown is None:
                layout.unknown = (f"the prologue reads g as {g_from} code does, but Go {binary.go_version} "
                                  f"gives {layout.abi}")
            spills = {True: "agree", False: "DISAGREE", None: "no evidence"}[check.agrees]
            if check.detail:
                spills += f" ({check.detail})"
            if check.agrees is False and layout.unknown is None:
                layout.unknown = f"the machine code's morestack spills disagree: {check.detail}"
    return TableSignature(fn, m, layout, args_size, spills)


def probe_function_from_tables(prog, query: str) -> TableFunction:
    """The function `query` names, for probe and trace on a binary with neither DWARF nor twin: a
    method whose signature the type tables give and whose locations both witnesses accept (the
    function table's argument-area size; the morestack spills where the code has them); else a
    one-line DwarfgoError saying why. A function the type tables give no signature for is probed
    as its untyped argument words where those are known (wordprobe)."""
    try:
        ts = signature_from_tables(prog, query)
    except NoTableSignature as e:
        from .wordprobe import word_function
        return word_function(prog, e.symbol, str(e), e.reason)
    fn, layout = ts.function, ts.layout
    if layout is None:
        raise DwarfgoError(f"{fn.name}: no register table for {prog.binary.arch}: the locations of the "
                           f"signature from the runtime type table are unknown; {prog.binary.no_dwarf_advice()}")
    if layout.unknown:
        raise DwarfgoError(f"{fn.name}: the signature from the runtime type table is not probed: "
                           f"{layout.unknown}; {prog.binary.no_dwarf_advice()}")
    if ts.args_size is None:
        raise DwarfgoError(f"{fn.name}: the function table gives no argument-area size to check the signature "
                           f"from the runtime type table against; {prog.binary.no_dwarf_advice()}")
    fn.checked_layout = layout
    return fn



@dataclass(frozen=True)
class WordPlace:
    """Where one argument word is at entry, when that is certain: a register (Go's name), or a
    stack slot (SP offset at entry); else `why` it is not known."""

    size: int
    register: str | None = None
    stack_offset: int | None = None
    why: str | None = None

    def describe(self) -> str:
        if self.register is not None:
            return self.register
        if self.stack_offset is not None:
            return f"stack[+{self.stack_offset},+{self.stack_offset + self.size}]"
        return f"unknown ({self.why})"


@dataclass
class WordLayout:
    """A function's argument words from its traceback record (ArgInfo), never a signature: each
    top-level value with its words' sizes and where each word is at entry."""

    symbol: object
    values: object  # arginfo.Group
    places: dict[int, WordPlace]  # id(Word) -> where that word is at entry
    why_unknown: str | None  # why places are unknown, if they are
    abi: str | None = None  # "ABIInternal" / "ABI0" as the places assume it; None: not known
    go_version: str | None = None

    def place(self, word) -> WordPlace:
        return self.places.get(id(word)) or WordPlace(word.size, why=self.why_unknown or "not known")

    def lines(self) -> list[str]:
        from .arginfo import Group

        def shape(v) -> str:
            if isinstance(v, Group):
                inner = [shape(i) for i in v.items] + (["..."] if v.more else [])
                return "{" + ", ".join(inner) + "}"
            return str(v.size) if v.offset is not None else "?"

        out = [f"{self.symbol.name} at {self.symbol.address:#x}: argument words only (not a signature)",
               f"  source  {TRACEBACK_SOURCE}: the words the runtime prints in tracebacks, up to 10; no types, "
               f"names or results"]
        reasons: dict[str, list[str]] = {}  # why a word's place is unknown -> the words
        for i, v in enumerate(self.values.items):
            words = v.words() if isinstance(v, Group) else [v]
            size = f"{v.size} bytes" if not isinstance(v, Group) else shape(v)
            where = []
            for j, w in enumerate(words):
                place = self.places.get(id(w))
                if place is None or place.why is not None:
                    where.append("unknown")
                    if place is not None:
                        reasons.setdefault(place.why, []).append(f"arg{i}" + (f"_{j}" if len(words) > 1 else ""))
                else:
                    where.append(place.describe())
            out.append(f"  arg{i:<3} {size:<16} {' '.join(where)}")
        if self.values.more:
            out.append("  ...     more words the runtime does not record")
        if not self.values.items:
            out.append("  (no argument words)")
        for why, names in reasons.items():
            out.append(f"  note    {', '.join(names)} unknown: {why}")
        skipped = skipped_input_note(self.symbol, self.go_version)
        if skipped:
            out.append(f"  note    {skipped}")
        if self.why_unknown:
            out.append(f"  note    places unknown: {self.why_unknown}")
        return out


TRACEBACK_SOURCE = "traceback layout"


def skipped_input_note(symbol, go_version: str | None) -> str | None:
    """What a generic instance's traceback record leaves out, or None: cmd/compile skips the first
    input of every function whose name has type arguments, meant for the dictionary. That is right
    for a generic function; for a generic method from Go 1.21 the first input is the receiver (the
    dictionary comes after it), so arg0 is the dictionary; a closure inside a generic function has
    no dictionary input, so its first argument is missing."""
    from .functions import _TYPE_FUNCTION_PREFIXES, _split_top_level, is_closure_rest

    if "[" not in symbol.name:
        return None
    if symbol.name.startswith(_TYPE_FUNCTION_PREFIXES):
        return ("an equality or hash function of a type whose name has brackets: its traceback record leaves out its "
                "first argument (the compiler skips it as if it were a dictionary), so arg0 is its second")
    _, recv, rest = split_symbol(symbol.name)
    if is_closure_rest(rest):
        return ("a closure in a generic function: its traceback record leaves out its first argument (the compiler "
                "skips it as if it were the dictionary), so arg0 is its second")
    method = recv is not None or len(_split_top_level(rest)) >= 2
    version = parse_go_version(go_version)
    if method and version is not None and version >= (1, 21):
        return ("a generic method: from Go 1.21 its traceback record leaves out the receiver and lists the hidden "
                "dictionary as arg0 (the compiler skips the first input, meant for the dictionary)")
    return None

_NO_TAIL = "no stack check, so no morestack spills to tell a register word from a stack word"


def word_layout(prog, symbol, model: RuntimeTypeModel | None = None) -> WordLayout | None:
    """The argument words of the function at `symbol` from its ArgInfo record (Go 1.18+), placed
    where that is certain; None when the function has no record."""
    binary = prog.binary
    model = model or RuntimeTypeModel(binary)
    values = model.arginfo.values(symbol.address)
    if values is None:
        return None
    places, why, abi = place_words(binary, symbol, values, model.arginfo)
    return WordLayout(symbol, values, places, why, abi, binary.go_version)


def place_words(binary, symbol, values, arginfo=None) -> tuple[dict[int, WordPlace], str | None, str | None]:
    """Where each word of an ArgInfo record is at entry, only where certain: (places by id(Word),
    why none is placed, the ABI assumed).

    ABI0 (a Go version without the register ABI, or a prologue that reads g from TLS): a word's
    offset is its stack slot. ABIInternal: the morestack tail stores each register argument the
    function uses at its spill slot, which is the word's offset: such a store names its register.
    A word with no store is a stack argument only when an earlier argument's spilled word lies
    above it (stack arguments come before the spill area, which is in argument order); when a
    word of the same value, or any word below it, is spilled, it is a register word the code
    never stores, whose register is not recorded; otherwise nothing tells."""
    from .abi.registers import arch_abi
    from .verify.machine import analyze

    arch = arch_abi(binary.arch)
    if arch is None or binary.arch not in ("amd64", "arm64") or not symbol.size:
        return {}, f"no machine-code reader for {binary.arch}", None
    version = parse_go_version(binary.go_version)
    report = analyze(binary, symbol.address, symbol.size)
    regabi = arch.uses_regabi(version) and not symbol.is_abi0
    if binary.arch == "amd64":
        g_from = {"g-register": "ABIInternal", "tls": "ABI0"}.get(report.stack_check.kind)
        if g_from == "ABIInternal" and not regabi and not arch.uses_regabi(version):
            return {}, (f"the prologue reads g as register-ABI code does, but Go {binary.go_version} has no "
                        f"register ABI"), None
        if g_from == "ABI0":
            regabi = False  # an ABI0 body (assembly, or a wrapper) in a register-ABI binary
    base = arch.arg_base
    words = values.words()
    places: dict[int, WordPlace] = {}
    for w in words:
        if w.offset is None:
            places[id(w)] = WordPlace(w.size, why="offset too large to record")
    if not regabi:
        for w in words:
            if w.offset is not None:
                places[id(w)] = WordPlace(w.size, stack_offset=base + w.offset)
        return places, None, "ABI0"
    if report.stack_check.tail_address is None or report.morestack_target is None:
        return _place_without_tail(places, binary, symbol, values, arch, arginfo), None, "ABIInternal"
    stores = {s.sp_offset: s for s in report.spills}
    from .arginfo import Group
    owner: dict[int, int] = {}  # id(Word) -> index of its top-level value
    for i, v in enumerate(values.items):
        for w in (v.words() if isinstance(v, Group) else [v]):
            owner[id(w)] = i
    spilled = []  # (value index, offset) of words stored by the morestack tail
    for w in words:
        if w.offset is None:
            continue
        s = stores.get(base + w.offset)
        if s is not None and s.width == w.size:
            places[id(w)] = WordPlace(w.size, register=s.register)
            spilled.append((owner[id(w)], w.offset))
        elif s is not None:
            places[id(w)] = WordPlace(w.size, why=f"the morestack spill at +{base + w.offset} is {s.width} bytes, "
                                                  f"the word {w.size}")
    for w in words:
        if id(w) in places:
            continue
        i = owner[id(w)]
        if any(j == i for j, _ in spilled):
            places[id(w)] = WordPlace(w.size, why="a register word the code never spills; which register is "
                                                  "not recorded")
        elif any(j < i and off > w.offset for j, off in spilled):
            places[id(w)] = WordPlace(w.size, stack_offset=base + w.offset)
        elif any(off < w.offset for _, off in spilled):
            places[id(w)] = WordPlace(w.size, why="a register argument the code never spills (unused?); which "
                                                  "register is not recorded")
        else:
            places[id(w)] = WordPlace(w.size, why="not spilled: a stack argument, or an unused register "
                                                  "argument")
    return places, None, "ABIInternal"


def _place_without_tail(places: dict[int, WordPlace], binary, symbol, values, arch, arginfo) -> dict[int, WordPlace]:
    """A function without a stack check: its words placed where their classes prove the
    assignment (wordclass), the rest unknown with the reason."""
    from .wordclass import place_by_class

    words = [w for w in values.words() if id(w) not in places]
    why = None
    skipped = skipped_input_note(symbol, binary.go_version)
    if arginfo is None:
        why = _NO_TAIL
    elif skipped is not None:
        why = f"{_NO_TAIL}; and the registers before its words are not known: {skipped}"
    elif "[" in symbol.name and "go.shape." not in symbol.name:
        why = (f"{_NO_TAIL}; and its traceback record leaves out its first input, which the name does not say (the "
               f"dictionary of a generic instance, or the receiver of an instantiated type's method wrapper)")
    elif arginfo.is_assembly(symbol.address):
        why = _NO_TAIL + "; and it is assembly, whose ABI the binary does not record"
    elif arginfo.func_id(symbol.address) != 0:
        why = (_NO_TAIL + "; and it is compiler-generated (a wrapper: an ABI wrapper's ABI is not recorded) or a "
               "special runtime function")
    elif "[...]" not in symbol.name and sum(s.name == symbol.name for s in binary.function_symbols) > 1:
        why = _NO_TAIL + "; and another function has its name (one of them an ABI wrapper, whose ABI is not recorded)"
    else:
        pointers = arginfo.entry_pointer_words(symbol.address)
        if pointers is None:
            why = _NO_TAIL + "; and it has no args pointer map to tell pointer words"
    if why is not None:
        for w in words:
            places[id(w)] = WordPlace(w.size, why=why)
        return places
    # a generic function's record leaves out its dictionary, the first input: a pointer, in the
    # first integer register
    taken = 1 if "[" in symbol.name else 0
    placed, unknown = place_by_class(values, pointers, arch.int_regs[taken:], arch.arg_base)
    for w in words:
        if id(w) in placed:
            reg, off = placed[id(w)]
            places[id(w)] = WordPlace(w.size, register=reg, stack_offset=off)
        else:
            places[id(w)] = WordPlace(w.size, why=f"no morestack spills, and {unknown.get(id(w), 'not known')}")
    return places


def _word_record(layout: WordLayout, why_no_signature: str) -> dict:
    from .arginfo import Group

    def value(v):
        if isinstance(v, Group):
            return {"aggregate": [value(i) for i in v.items], "more": v.more}
        return {"offset": v.offset, "size": v.size, "place": layout.place(v).describe()}

    return {"function": layout.symbol.name, "address": layout.symbol.address, "source": TRACEBACK_SOURCE,
            "signature": None, "why_no_signature": why_no_signature,
            "values": [value(v) for v in layout.values.items], "more": layout.values.more,
            "places_unknown": layout.why_unknown,
            "inputs_left_out": skipped_input_note(layout.symbol, layout.go_version)}


def describe_without_dwarf(prog, query: str, as_json: bool) -> str:
    """`dwarfgo sig` on a binary with neither DWARF nor a twin: a method's signature from the
    type tables; else the argument words of the traceback record; else a DwarfgoError saying why."""
    import json

    model = RuntimeTypeModel(prog.binary)
    try:
        ts = signature_from_tables(prog, query, model)
    except NoTableSignature as e:
        words = word_layout(prog, e.symbol, model)
        if words is None:
            from .wordprobe import area_description
            area = area_description(prog, e.symbol, as_json)  # Go < 1.17: the stack argument area
            if area is None:
                raise
            return area + ("" if as_json else f"\n  note    {e}")
        if as_json:
            return json.dumps(_word_record(words, str(e)), indent=1)
        return "\n".join(words.lines() + [f"  note    {e}"])
    if as_json:
        return json.dumps(ts.record(), indent=1)
    return "\n".join(ts.lines(prog.binary.go_version, prog.binary.arch))
