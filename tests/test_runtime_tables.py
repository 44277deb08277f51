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


def built(go: str, variant: str, fixture: str, arch: str = "amd64"):
    path = FIXTURES / f"go{go}" / arch / variant / fixture
    require_file(path, f"go{go} {arch} {variant} {fixture}")
    return path


def _layout(t):
    from dwarfgo.gotypes import Kind

    fields = [(f.name, f.offset, f.type.size) + ((f.type.name, f.embedded) if t.kind is Kind.STRUCT else ())
              for f in t.fields]
    align = None if t.name.endswith(_DWARF_ALIGN_UNKNOWN) else t.align
    elem = t.elem.name if t.elem is not None and t.kind is not Kind.SLICE else None
    return t.kind, t.size, align, fields, elem, t.key.name if t.key is not None else None, t.length


# every version for shapes (each moduledata layout: 1.20's covctrs, 1.26's epclntab; the map
# descriptor sizes of 1.24-1.26), demo on a few
@pytest.mark.parametrize("go, fixture, arch", [(v, "shapes", "amd64") for v in VERSIONS] +
                         [(v, "demo", "amd64") for v in FEW] + [(FEW[-1], "shapes", "arm64")])
def test_type_layouts_equal_dwarf(go, fixture, arch):
    from dwarfgo.binary import GoBinary
    from dwarfgo.program import GoProgram
    from dwarfgo.typetables import RuntimeTypeModel

    with GoBinary(built(go, "stripped", fixture, arch)) as b, \
            GoProgram(built(go, "default", fixture, arch), cache=False) as prog:
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


@pytest.mark.parametrize("go", VERSIONS)
def test_method_signatures_equal_dwarf(go):
    from dwarfgo.program import GoProgram
    from dwarfgo.tablesig import signature_from_tables
    from dwarfgo.typetables import RuntimeTypeModel

    with GoProgram(built(go, "stripped", "shapes"), cache=False) as stripped, \
            GoProgram(built(go, "default", "shapes"), cache=False) as prog:
        model = RuntimeTypeModel(stripped.binary)
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
            want = ([p.type.name for p in fn.inputs if not p.is_hidden],
                    [(r.type.name, r.type.size) for r in fn.results])
            got = ([m.receiver.name] + [t.name for t in m.params], [(t.name, t.size) for t in m.results])
            if got[0] == want[0] and got[1] and not want[1] and \
                    signature_from_tables(stripped, m.function, model).layout.unknown is None:
                # DWARF without the results the tables give, and the function table's argument size
                # witnesses the tables: Go 1.23+ for a function that returns from a range-over-func
                # body (reflect.Value.Comparable), Go 1.21 for some promoted-method wrappers
                dwarf_short += 1
                continue
            known += 1
            if got != want:
                wrong.append((sym.name, want, got))
    assert not wrong, wrong[:5]
    # shapes' methods called through interfaces: Rect.Area/Name, (*Circle).Area/Name, (*MyErr).Error, ...
    assert known >= 150 and dropped >= 100 and dwarf_short <= 10, (known, dropped, dwarf_short)
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


@pytest.mark.parametrize("go", [v for v in ("1.15", "1.27") if v in VERSIONS] or VERSIONS[:1])
def test_method_locations_equal_dwarf(go):
    """The locations the ABI gives for a method's types from the tables (checked there by the
    function table's argument size and the morestack spills) equal those of the DWARF build."""
    from dwarfgo.program import GoProgram
    from dwarfgo.tablesig import signature_from_tables
    from dwarfgo.typetables import RuntimeTypeModel
    from dwarfgo.verify.evidence import trusted_layout

    with GoProgram(built(go, "stripped", "shapes"), cache=False) as stripped, \
            GoProgram(built(go, "default", "shapes"), cache=False) as prog:
        model = RuntimeTypeModel(stripped.binary)
        compared = 0
        for m in model.methods:
            if not m.known or not (m.function or "").startswith("main."):
                continue
            ts = signature_from_tables(stripped, m.function, model)
            want, _ = trusted_layout(prog, prog.function(m.function))
            assert want.unknown is None and ts.layout.unknown is None, (m.function, want.unknown, ts.layout.unknown)
            assert [loc.describe() for loc in ts.layout.inputs + ts.layout.results] == \
                [loc.describe() for loc in want.inputs + want.results], m.function
            assert ts.args_size == want.spill_offset + want.spill_size
            compared += 1
    assert compared >= 9


def _cli(*args):
    import os
    import subprocess
    import sys

    from conftest import REPO
    return subprocess.run([sys.executable, "-m", "dwarfgo", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_cli_sig_and_structs_from_the_tables():
    """`func (r Rect) Area() float64`, `func (c *Counter) Add(n int) (before, after int)` (not
    called through an interface: its type is dropped), `type Pair struct { A int; B string }`
    (fixtures/shapes/funcs.go)."""
    go = FEW[-1]
    stripped = built(go, "stripped", "shapes")
    r = _cli("sig", stripped, "Rect.Area")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "func (recv main.Rect) Area() (r0 float64)"
    assert "  source  runtime type table: method Area of main.Rect" in r.stdout
    assert lines[4].split()[:3] == ["receiver", "recv", "main.Rect"] and "size 16" in lines[4]
    # its type dropped: the argument words of its traceback record, receiver and n
    r = _cli("sig", stripped, "(*Counter).Add")
    assert r.returncode == 0, r.stderr
    assert "argument words only (not a signature)" in r.stdout and "dropped its type (mtyp" in r.stdout
    assert "  source  traceback layout" in r.stdout and "--debug-from" in r.stdout
    assert [l.split()[:3] for l in r.stdout.splitlines() if l.startswith("  arg")] == \
        [["arg0", "8", "bytes"], ["arg1", "8", "bytes"]]
    # `func Strings(s string, t string) (joined string, n int)`: two strings in AX BX and CX DI
    r = _cli("sig", stripped, "main.Strings")
    assert r.returncode == 0 and "not a method in the runtime type tables" in r.stdout, r.stderr
    assert [l.split()[1:] for l in r.stdout.splitlines() if l.startswith("  arg")] == \
        [["{8,", "8}", "AX", "BX"], ["{8,", "8}", "CX", "DI"]]
    r = _cli("sig", stripped, "main.main")  # no arguments: no record, no signature
    assert r.returncode == 1 and "not a method in the runtime type tables" in r.stderr
    assert len(r.stderr.splitlines()) == 1
    r = _cli("structs", stripped, "main.Pair")
    assert r.returncode == 0, r.stderr
    assert "source: runtime type table" in r.stdout.splitlines()[0]
    assert "\tint64_t A; /* +0 int */\n\tstruct dg_string B; /* +8 string */\n" in r.stdout


def test_damaged_type_tables_give_one_line_errors(tmp_path):
    """Bytes of the type descriptors and names flipped: every answer is a result or a one-line
    DwarfgoError naming the file, never a traceback."""
    import random
    import shutil

    from dwarfgo.cheaders import CHeaderWriter
    from dwarfgo.errors import DwarfgoError
    from dwarfgo.program import GoProgram
    from dwarfgo.tablesig import signature_from_tables
    from dwarfgo.typetables import RuntimeTypeModel

    go = FEW[-1]
    source = built(go, "stripped", "shapes")
    with GoProgram(source, cache=False) as prog:
        model = RuntimeTypeModel(prog.binary)
        md = model.tables.module
        start = next(md.types - addr + off for addr, size, off in _file_offsets(prog.binary)
                     if addr <= md.types < addr + size)
    rng = random.Random(13)
    outcomes = {"answered": 0, "refused": 0}
    for i in range(6):
        copy = tmp_path / f"m{i}"
        shutil.copy(source, copy)
        data = bytearray(copy.read_bytes())
        for _ in range(40):
            data[start + rng.randrange(md.etypes - md.types)] = rng.randrange(256)
        copy.write_bytes(data)
        try:
            with GoProgram(copy, cache=False) as prog:
                m = RuntimeTypeModel(prog.binary)
                w = CHeaderWriter()
                for name in [n for n in m.types_by_name if n.startswith("main.")]:
                    w.add(m.lookup(name), 2)
                w.render()
                for method in m.methods:
                    if method.known and (method.function or "").startswith("main."):
                        signature_from_tables(prog, method.function, m).lines("go", "amd64")
            outcomes["answered"] += 1
        except DwarfgoError as e:
            assert "\n" not in str(e) and str(e).startswith(str(copy))
            outcomes["refused"] += 1
    # a damaged descriptor leaves out what depends on it, not the whole table
    assert outcomes["answered"] >= 3, outcomes


def _file_offsets(binary):
    return [(seg["p_vaddr"], seg["p_filesz"], seg["p_offset"]) for seg in binary.elf.iter_segments()
            if seg["p_type"] == "PT_LOAD"]


def _expected_arginfo(layout, name: str, arg_base: int) -> tuple[bytes, dict[int, str]]:
    """The ArgInfo record cmd/compile's EmitArgInfo writes for these inputs (its algorithm,
    written here over DWARF's types and dwarfgo's DWARF-checked layout), and the register of
    each register-assigned word by its offset."""
    from dwarfgo.gotypes import Kind

    out = bytearray()
    n = 0
    registers: dict[int, str] = {}
    aggregate = (Kind.STRUCT, Kind.ARRAY, Kind.COMPLEX, Kind.INTERFACE, Kind.STRING, Kind.SLICE)

    def word(size, offset):
        nonlocal n
        out.extend([0xFB] if offset >= 0xF0 else [offset, size])
        n += 1

    def visit(base, t, depth) -> bool:
        nonlocal n
        if n >= 10:
            out.append(0xFC)
            return False
        if t.kind not in aggregate:
            word(t.size, base)
            return True
        out.append(0xFE)
        depth += 1
        if depth >= 5:
            out.extend([0xFC, 0xFD])
            n += 1
            return True
        if t.kind in (Kind.INTERFACE, Kind.STRING):
            _ = visit_word(base) and visit_word(base + 8)
        elif t.kind is Kind.SLICE:
            _ = visit_word(base) and visit_word(base + 8) and visit_word(base + 16)
        elif t.kind is Kind.COMPLEX:
            half = t.size // 2
            _ = visit_size(base, half) and visit_size(base + half, half)
        elif t.kind is Kind.ARRAY:
            if not t.length:
                n += 1
            for i in range(t.length or 0):
                if not visit(base + i * t.elem.size, t.elem, depth):
                    break
        elif not t.fields:
            n += 1
        else:
            for f in t.fields:
                if not visit(base + f.offset, f.type, depth):
                    break
        out.append(0xFD)
        return True

    def visit_size(base, size) -> bool:
        if n >= 10:
            out.append(0xFC)
            return False
        word(size, base)
        return True

    def visit_word(base) -> bool:
        return visit_size(base, 8)

    inputs = layout.inputs[1:] if "[" in name else layout.inputs
    for loc in inputs:
        if loc.in_registers:
            base = loc.spill_offset - arg_base
            for piece, leaf in zip(loc.pieces, _leaf_offsets(loc.param.type)):
                registers[base + leaf] = piece.register
        else:
            base = loc.stack_offset - arg_base
        if not visit(base, loc.param.type, 0):
            break
    out.append(0xFF)
    return bytes(out), registers


def _leaf_offsets(t) -> list[int]:
    from dwarfgo.abi.assign import leaves

    return [leaf.offset for leaf in leaves(t)]


@pytest.mark.parametrize("go, arch", [(v, "amd64") for v in ("1.19", "1.22", "1.27") if v in VERSIONS] +
                         [(VERSIONS[-1], "arm64")])
def test_arginfo_equals_the_dwarf_layout(go, arch):
    """Every fixture function's traceback record, read from the stripped build, is the record the
    compiler's algorithm writes for DWARF's parameters and layout; every word the morestack spills
    place is in the register of the DWARF layout, every other one on the stack where it says."""
    from dwarfgo.abi.registers import arch_abi
    from dwarfgo.program import GoProgram
    from dwarfgo.tablesig import word_layout
    from dwarfgo.typetables import RuntimeTypeModel

    registers_of = arch_abi(arch)
    with GoProgram(built(go, "stripped", "shapes", arch), cache=False) as stripped, \
            GoProgram(built(go, "default", "shapes", arch), cache=False) as prog:
        model = RuntimeTypeModel(stripped.binary)
        records = model.arginfo
        from dwarfgo.verify.evidence import trusted_layout
        compared = placed = unplaced = 0
        wrong = []
        for fn in prog.matching("main.*"):
            layout, _ = trusted_layout(prog, fn)
            if layout.unknown:
                continue
            raw = records.raw(fn.address)
            want, registers = _expected_arginfo(layout, fn.name, registers_of.arg_base)
            if raw is None:
                assert want == b"\xff" or not layout.inputs, fn.name  # no record: no inputs
                continue
            compared += 1
            if raw != want:
                wrong.append((fn.name, raw.hex(), want.hex()))
                continue
            words = word_layout(stripped, stripped.binary.symbol_at(fn.address), model)
            for w in words.values.words():
                place = words.places.get(id(w))
                if place is None or place.why is not None:
                    unplaced += 1  # no morestack tail, or nothing certain: unknown, never guessed
                    continue
                placed += 1
                sp = registers_of.arg_base + w.offset
                expected = registers.get(w.offset) or f"stack[+{sp},+{sp + w.size}]"
                assert place.describe() == expected, (fn.name, w, place, expected)
    assert not wrong, wrong[:5]
    assert compared >= 60 and placed >= 40, (compared, placed)
    print(f"go{go} {arch}: {compared} records equal to DWARF's layout, {placed} words placed, {unplaced} unknown")


def test_import_paths_spelled_as_in_symbol_names():
    """As cmd/go 1.27's DWARF spells them (`crypto/internal/entropy/v1%2e0%2e0.source`): a '.'
    of the last element escaped, not those before it."""
    from dwarfgo.typetables import symbol_prefix

    assert symbol_prefix("crypto/internal/entropy/v1.0.0") == "crypto/internal/entropy/v1%2e0%2e0"
    assert symbol_prefix("gopkg.in/yaml.v3") == "gopkg.in/yaml%2ev3"
    assert symbol_prefix("main") == "main" and symbol_prefix("go/ast") == "go/ast"


@pytest.mark.parametrize("go, arch", [(v, "amd64") for v in FEW] + [(v, "arm64") for v in ("1.27",) if v in VERSIONS])
def test_goid_offset_from_the_type_table_equals_dwarf(go, arch):
    """Without DWARF, events carry the goroutine id read at runtime.g's `goid` offset from g's type
    descriptor (the runtime allocates g with new(g)); it equals DWARF's in the default build."""
    from dwarfgo.emit.probe import goid_offset
    from dwarfgo.program import GoProgram

    with GoProgram(built(go, "stripped", "shapes", arch), cache=False) as stripped, \
            GoProgram(built(go, "default", "shapes", arch), cache=False) as dwarf:
        assert not stripped.binary.has_dwarf
        want = next(f.offset for f in dwarf.type_named("runtime.g").fields if f.name == "goid")
        assert goid_offset(stripped) == want
