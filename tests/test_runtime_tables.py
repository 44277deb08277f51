"""No DWARF at all: type layouts and method signatures from the runtime type tables of a binary
built with -ldflags='-s -w', compared with what the DWARF of the same program's default build
says (dwarfgo's DWARF model, itself checked against the fixtures and go/types elsewhere), type by
type (by name) and method by method (by code address: both builds have the same code layout,
see test_stripped)."""

from __future__ import annotations

import pytest

from conftest import FIXTURES, go_versions, require_file

VERSIONS = go_versions() or ["1.22"]
# one per layout change: offsetAnon and 2-byte name lengths (1.15), struct offsets and uvarint
# names (1.19), internal/abi (1.22), typelinks laid out in the types section (1.27)
FEW = [v for v in ("1.15", "1.19", "1.22", "1.27") if v in VERSIONS] or VERSIONS[:1]

# The DWARF model derives a struct's alignment from its fields; the compiler aligns these
# field-less markers to 8 (the descriptors say so, DWARF has no alignment attribute)
_DWARF_ALIGN_UNKNOWN = (".align64",)
_DWARF_MODEL_MAX_SIZE = 1 << 48  # larger types (a [1<<49-1]uint16 used for casts) the model refuses


def built(go: str, variant: str, fixture: str):
    path = FIXTURES / f"go{go}" / "amd64" / variant / fixture
    require_file(path, f"go{go} {variant} {fixture}")
    return path


def _layout(t):
    from dwarfgo.gotypes import Kind

    fields = [(f.name, f.offset, f.type.size) + ((f.type.name, f.embedded) if t.kind is Kind.STRUCT else ())
              for f in t.fields]
    align = None if t.name.endswith(_DWARF_ALIGN_UNKNOWN) else t.align
    elem = t.elem.name if t.elem is not None and t.kind is not Kind.SLICE else None
    return t.kind, t.size, align, fields, elem, t.key.name if t.key is not None else None, t.length


@pytest.mark.parametrize("fixture", ["shapes", "demo"])
@pytest.mark.parametrize("go", FEW)
def test_type_layouts_equal_dwarf(go, fixture):
    from dwarfgo.binary import GoBinary
    from dwarfgo.program import GoProgram
    from dwarfgo.typetables import RuntimeTypeModel

    with GoBinary(built(go, "stripped", fixture)) as b, GoProgram(built(go, "default", fixture), cache=False) as prog:
        model = RuntimeTypeModel(b)
        dwarf_names = prog._types_by_name
        compared, wrong, main_structs = 0, [], 0
        for name, address in model.types_by_name.items():
            if name not in dwarf_names:
                continue  # the linker wrote no DWARF for it (e.g. `chan main.Pair` made only for reflection)
            got = model.type_at(address)
            if max(got.size, got.elem.size if got.elem is not None else 0) >= _DWARF_MODEL_MAX_SIZE:
                continue
            want = _layout(prog.type_named(name))
            compared += 1
            if _layout(got) != want:
                wrong.append((name, want, _layout(got)))
            main_structs += name.startswith("main.") and got.kind.value == "struct"
    assert not wrong, wrong[:5]
    assert compared > 400 and main_structs >= (4 if fixture == "demo" else 15), (compared, main_structs)
    print(f"go{go} {fixture}: {compared} types equal to DWARF's, {main_structs} structs of main")


@pytest.mark.parametrize("go", FEW)
def test_method_signatures_equal_dwarf(go):
    from dwarfgo.binary import GoBinary
    from dwarfgo.program import GoProgram
    from dwarfgo.typetables import RuntimeTypeModel

    with GoBinary(built(go, "stripped", "shapes")) as b, GoProgram(built(go, "default", "shapes"), cache=False) as prog:
        model = RuntimeTypeModel(b)
        known = dropped = dwarf_short = 0
        wrong = []
        for address, m in model.methods_by_address.items():
            # the function named by the stripped binary's function table, placed by the default build's .symtab
            assert m.function is not None and m.function.endswith("." + m.method), (m.function, m.method)
            placed = prog.binary.data_symbol(m.function) or prog.binary.data_symbol(m.function + ".abi0")
            assert placed == address, (m.function, hex(address), placed)
            sym = prog.binary.symbol_at(address)
            if not m.known:
                assert "signature unknown" in m.text()
                dropped += 1
                continue
            fn = prog.functions.at(sym)
            if not fn.has_dwarf or fn.omitted_inputs:
                continue  # assembly; or Go <= 1.16 DWARF without its blank parameters
            if fn.results_note and m.results:
                # Go 1.23+ writes no DWARF for the unnamed results of a function that returns from a
                # range-over-func body (reflect.Value.Comparable): the tables have them
                dwarf_short += 1
                continue
            want = ([p.type.name for p in fn.inputs if not p.is_hidden],
                    [(r.type.name, r.type.size) for r in fn.results])
            got = ([m.receiver.name] + [t.name for t in m.params], [(t.name, t.size) for t in m.results])
            known += 1
            if got != want:
                wrong.append((sym.name, want, got))
    assert not wrong, wrong[:5]
    # shapes' methods called through interfaces: Rect.Area/Name, (*Circle).Area/Name, (*MyErr).Error, ...
    assert known >= 150 and dropped >= 100 and dwarf_short <= 5, (known, dropped, dwarf_short)
    print(f"go{go}: {known} method signatures equal to DWARF's, {dropped} with mtyp dropped, {dwarf_short} with "
          f"results DWARF lacks")


def test_rect_from_the_source():
    """`type Rect struct{ W, H float64 }` with `func (r Rect) Area() float64` (fixtures/shapes)."""
    from dwarfgo.binary import GoBinary
    from dwarfgo.typetables import RuntimeTypeModel

    go = FEW[-1]
    with GoBinary(built(go, "stripped", "shapes")) as b:
        model = RuntimeTypeModel(b)
        rect = model.type_named("main.Rect")
        assert [(f.name, f.type.name, f.offset) for f in rect.fields] == [("W", "float64", 0), ("H", "float64", 8)]
        assert rect.size == 16 and rect.align == 8
        area = next(m for m in model.methods if m.receiver.name == "main.Rect" and m.method == "Area")
        assert area.function == "main.Rect.Area"
        assert area.text() == "func (recv main.Rect) Area() (r0 float64)"
