"""The classification of Go's DWARF location defects, on location lists seen in real binaries.

Each case is a parameter's computed location (Go's ABI rules applied by hand to the source
signature) and the entry pieces DWARF gave it in `cmd/compile` built by that Go version,
copied from `scripts/agreement-report --list`. The verdicts are the reading of those lists:
which are a known Go defect, and which stay unexplained.
"""

from __future__ import annotations

from types import SimpleNamespace

from dwarfgo.abi.assign import Leaf, Location, RegisterPiece, StackSlot
from dwarfgo.verify.dwarfloc import KNOWN_REPEATED_PIECE, DwarfPiece, compare, merged_lengths

SLICE = ((".array", 0, "*uint"), (".len", 8, "int"), (".cap", 16, "int"))


def _slice(name: str, *places) -> Location:
    pieces = []
    for (path, off, type_name), place in zip(SLICE, places):
        leaf = Leaf(path, off, 8, type_name, False)
        pieces.append(StackSlot(leaf, place) if isinstance(place, int) else RegisterPiece(leaf, place, place.lower()))
    return Location(SimpleNamespace(name=name), not isinstance(places[0], int), pieces)


def _dwarf(text: str) -> list[DwarfPiece]:
    out = []
    for word in text.split():
        place, size = word.split(":")
        if place == "?":
            out.append(DwarfPiece(int(size)))
        elif place.startswith("SP+"):
            out.append(DwarfPiece(int(size), sp_offset=int(place[3:])))
        else:
            out.append(DwarfPiece(int(size), register=place))
    return out


def _exp_nn_montgomery():
    """math/big: func (z nat) expNNMontgomery(x, y, m nat) nat, amd64 register ABI: nine integer
    registers hold z, x and y; m goes to the stack."""
    z = _slice("z", "AX", "BX", "CX")
    x = _slice("x", "DI", "SI", "R8")
    y = _slice("y", "R9", "R10", "R11")
    m = _slice("m", 8, 16, 24)
    return x, SimpleNamespace(inputs=[z, x, y, m])


def test_slice_lengths_in_another_ints_place_are_golang_48405():
    x, layout = _exp_nn_montgomery()
    # Go 1.22: len(x) and cap(x) at m's len slot (the function makes len(x) == len(m))
    pieces = _dwarf("DI:8 SP+16:8 SP+16:8")
    assert compare(x, pieces).agrees is False
    assert merged_lengths(x, pieces, layout)
    # Go 1.19: the same, with the pointer piece repeated (that version's other defect)
    assert merged_lengths(x, _dwarf("DI:8 DI:8 SP+16:8 SP+16:8"), layout)


def test_a_cap_at_its_own_len_is_golang_48405():
    # cmd/compile/internal/noder.(*genInst).getInstantiation, Go 1.19: shapes in CX DI SI
    shapes = _slice("shapes", "CX", "DI", "SI")
    assert merged_lengths(shapes, _dwarf("CX:8 DI:8 DI:8"), SimpleNamespace(inputs=[shapes]))


def test_other_disagreements_stay_unexplained():
    x, layout = _exp_nn_montgomery()
    # a length in the place of a pointer (y's array) is no merged length
    assert not merged_lengths(x, _dwarf("DI:8 R9:8 R8:8"), layout)
    # the pointer itself elsewhere: not this defect
    assert not merged_lengths(x, _dwarf("R9:8 SI:8 R8:8"), layout)
    # a length in a place no argument has
    assert not merged_lengths(x, _dwarf("DI:8 R12:8 R8:8"), layout)
    # repeats that leave a length in a pointer's register
    tparams = _slice("tparams", "SI", "R8", "R9")
    assert not merged_lengths(tparams, _dwarf("SI:8 ?:8 SI:8 R9:8"), SimpleNamespace(inputs=[tparams]))


def test_repeats_across_a_hole_then_golang_48405():
    # types2.(*Checker).infer tparams, Go 1.19: `SI ? SI SI R8 R8`. Read as the pointer, a hole
    # and its two repeats dropped, the cap (unused, R9) is given the len's R8. The machine code
    # agrees with R8 = len(tparams): `TEST R8, R8` then `CMP R8, len(targs)` for
    # assert(n > 0 && n >= len(targs)), and the morestack spills store SI R8 R9.
    tparams = _slice("tparams", "SI", "R8", "R9")
    pieces = _dwarf("SI:8 ?:8 SI:8 SI:8 R8:8 R8:8")
    assert compare(tparams, pieces).known == ""
    assert merged_lengths(tparams, pieces, SimpleNamespace(inputs=[tparams]))


def test_repeated_pieces_and_holes_read_as_go_119_repeats():
    a = _slice("a", "AX", "BX", "CX")
    assert compare(a, _dwarf("AX:8 AX:8 BX:8 CX:8")).known == KNOWN_REPEATED_PIECE
    # an undescribed hole among the pieces (types2.(*Checker).infer targs, Go 1.19)
    targs = _slice("targs", 8, 16, 24)
    check = compare(targs, _dwarf("?:8 SP+8:8 ?:8 ?:8 ?:8 ?:8 ?:8 ?:8 SP+8:8 SP+16:8 SP+24:8"))
    assert check.known == KNOWN_REPEATED_PIECE, check
    # surplus pieces that are neither holes nor repeats are not explained
    assert compare(a, _dwarf("AX:8 DI:8 BX:8 CX:8")).known == ""
    # agreeing pieces agree
    assert compare(a, _dwarf("AX:8 BX:8 CX:8")).agrees is True


def test_go121_promoted_method_wrappers_get_the_wrapped_methods_results():
    """Go 1.21 writes no DWARF results for the wrapper of a promoted method. Against the same
    fixture built by Go 1.22 (whose DWARF lists them), over the methods of types with an embedded
    field: every 1.21 method that DWARF gives no result but 1.22 does gets the results of the
    method it wraps, with 1.22's names, types and locations at the RET (same register ABI), or,
    for a method promoted from an embedded interface (whose methods DWARF does not describe), a
    note that results may be missing; none gets results that 1.22 does not list."""
    import pytest

    from conftest import FIXTURES, require_file
    from dwarfgo.program import GoProgram
    from dwarfgo.verify.evidence import layout_for

    old, new = (FIXTURES / f"go{v}" / "amd64" / "default" / "shapes" for v in ("1.21", "1.22"))
    if not old.exists() and not new.exists():
        pytest.skip("Go 1.21/1.22 fixtures not built")
    require_file(old, "fixture binary")
    require_file(new, "fixture binary")
    def embeds(fn) -> bool:  # a method whose receiver's type has an embedded field (per 1.22's DWARF)
        recv = fn.receiver
        t = recv.type.elem if recv is not None and recv.type.name.startswith("*") and recv.type.elem else (
            recv.type if recv is not None else None)
        return t is not None and any(f.embedded for f in t.fields)

    def results(prog, fn):
        return [(r.name, r.type.name, layout_for(prog, fn).location_of(r.name).describe()) for r in fn.results]

    with GoProgram(new) as p22:
        results22 = {fn.name: results(p22, fn) for fn in p22.functions.iter_all() if embeds(fn)}
    missed, wrong = [], []
    taken = noted = 0
    with GoProgram(old) as p21:
        for fn in p21.functions.iter_all():
            if fn.name not in results22 or any(r.die is not None for r in fn.results):
                continue  # not in 1.22's list, or results from its own DWARF
            if fn.results:
                taken += 1
                if results(p21, fn) != results22[fn.name] or "results of the method it wraps" not in fn.results_note:
                    wrong.append(f"{fn.name}: {results(p21, fn)} vs 1.22 {results22[fn.name]}; {fn.results_note}")
            elif fn.results_note:
                noted += 1
                if not results22[fn.name] or "embeds the interface" not in fn.results_note:
                    wrong.append(f"{fn.name}: noted ({fn.results_note}), 1.22 lists {results22[fn.name]}")
            elif results22[fn.name]:
                missed.append(fn.name)
    assert not wrong, wrong[:5]
    assert taken >= 3, taken  # encoding/json.(*encodeState).Len and others, on this fixture
    assert not missed, missed[:10]
