"""Register-ABI argument words of a function without a stack check (a NOSPLIT or frameless leaf:
no morestack spills to say which register holds a word), placed only where the assignment is
provable from what the binary records without DWARF (issue 13).

Go's register assignment (cmd/compile/internal/abi) gives each value, in order, integer
registers for its integer words and floating-point registers for its float words, or puts the
whole value on the stack when either kind runs out or when it holds an array of more than one
element. The traceback record (ArgInfo) gives each input word's size and offset, grouped by
value, but not its class. Two facts give a class for certain:

- the args pointer map at entry (FUNCDATA_ArgsPointerMaps, map 0) marks the pointer words of
  every input the code reads (a register argument's spill slot is live at entry when the code
  reads the register: cmd/compile/internal/liveness, OpArgIntReg), at the same offsets as
  ArgInfo's: a pointer word is an integer register;
- a 1- or 2-byte word is an integer (there are no such floats).

A 4- or 8-byte word that is not marked a pointer is an integer or a float: the binary does not
say. So values are placed in order while every word so far is a known integer: each takes the
next integer registers, or the stack (at its recorded offset) when they run out. A group of two
or more items of the same sizes and pointer marks may be an array (`[2]int` and
`struct{a, b int}` record alike), which would go on the stack: it stops the walk, as does a
word of unknown class or a value cut short by the record's 10-word limit. Every word from there
on is unknown with the reason.

Not for assembly (the function table's assembly flag: its ABI is not the compiler's), wrappers
(the function table's funcID: an ABI0 wrapper of a Go function is NOSPLIT and shares its name),
nor generic methods from Go 1.21 and closures in generic functions (their record leaves out the
receiver or first argument); a generic function's record leaves out its dictionary, a pointer in
the first integer register (tablesig._place_without_tail)."""

from __future__ import annotations

from .arginfo import Group


def _shape(v) -> tuple:
    """Sizes as nested tuples: what an array's elements share."""
    if isinstance(v, Group):
        return ("{", tuple(_shape(i) for i in v.items), v.more)
    return (v.size, v.offset is None)


def _marks(v, pointers: set[int]) -> tuple:
    return tuple(w.offset in pointers for w in (v.words() if isinstance(v, Group) else [v]))


def unknown_class(v, pointers: set[int]) -> str | None:
    """Why value `v`'s register use is not certain, or None: every word a known integer, no
    group that may be an array, nothing cut off."""
    for w in (v.words() if isinstance(v, Group) else [v]):
        if w.offset is None:
            return "a word whose offset is too large to record"
        if w.size not in (1, 2) and w.offset not in pointers:
            return (f"a {w.size}-byte word not marked a pointer at entry: an integer or a float, which the binary "
                    f"does not record")
    return _group_doubt(v, pointers) if isinstance(v, Group) else None


def _group_doubt(g: Group, pointers: set[int]) -> str | None:
    if g.more:
        return "a value longer than the traceback record's 10 words"
    if len(g.items) >= 2 and len({(_shape(i), _marks(i, pointers)) for i in g.items}) == 1:
        return (f"a value of {len(g.items)} alike items, which may be an array (an array of more than one element "
                f"goes on the stack)")
    for i in g.items:
        if isinstance(i, Group):
            why = _group_doubt(i, pointers)
            if why:
                return why
    return None


def place_by_class(values: Group, pointers: set[int], int_regs: tuple[str, ...], arg_base: int):
    """(places by id(Word), for the words placed: register name or stack offset; reasons by
    id(Word) for the rest), following the assignment while every word's class is known."""
    placed: dict[int, tuple[str | None, int | None]] = {}
    unknown: dict[int, str] = {}
    used = 0
    stop = None
    for v in values.items:
        words = v.words() if isinstance(v, Group) else [v]
        if stop is None:
            why = unknown_class(v, pointers)
            if why is not None:
                stop = "the registers an earlier argument takes are not known"
                for w in words:
                    unknown[id(w)] = why
                continue
            if used + len(words) <= len(int_regs):
                for k, w in enumerate(words):
                    placed[id(w)] = (int_regs[used + k], None)
                used += len(words)
            else:
                for w in words:
                    placed[id(w)] = (None, arg_base + w.offset)
            continue
        for w in words:
            unknown[id(w)] = stop
    return placed, unknown
