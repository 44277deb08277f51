"""The function model read raw (diescan decodes the subprogram, parameter and abstract-origin
DIEs; pyelftools only for types and locations) against the model read through pyelftools alone
(the raw reader disabled, so every DIE goes through pyelftools' object model): the same
functions, signatures, parameters (names, types, roles, the DIEs their locations come from) and
notes, over every function of Go 1.15, 1.22 and 1.27 binaries (DWARF 4 and 5)."""

from __future__ import annotations

import pytest
from elftools.dwarf.enums import ENUM_DW_AT, ENUM_DW_TAG

from conftest import FIXTURES, require_file
from dwarfgo.diescan import UNDECODED, DieScanner, ScanUnsupported
from dwarfgo.program import GoProgram, usable

_AT_NAMES = {v: k for k, v in ENUM_DW_AT.items()}


def _model(path) -> list[tuple]:
    out = []
    with GoProgram(path, cache=False) as prog:
        for sym in prog.binary.function_symbols:
            fn = prog.functions.at(sym)
            if not usable(fn):
                out.append((sym.name, None))
                continue
            params = [(p.name, p.type.name, p.type.size, p.is_result, p.die.offset if p.die is not None else None)
                      for p in fn.inputs + fn.results]
            out.append((sym.name, fn.die.offset, fn.signature(), fn.receiver_name, fn.results_note, params))
    return out


@pytest.mark.parametrize("go", ["1.15", "1.22", "1.27"])
def test_raw_model_is_the_pyelftools_model_for_every_function(go, monkeypatch):
    path = FIXTURES / f"go{go}" / "amd64" / "default" / "shapes"
    require_file(path, "fixture binary")
    raw = _model(path)
    assert sum(1 for r in raw if r[1] is not None) > 1000

    def unsupported(*a, **k):
        raise ScanUnsupported("disabled by the test")

    monkeypatch.setattr(DieScanner, "attributes", unsupported)
    assert _model(path) == raw


@pytest.mark.parametrize("go,arch", [("1.15", "amd64"), ("1.27", "arm64")])
def test_raw_attributes_are_pyelftools_values(go, arch):
    """Every attribute the raw reader decodes, over every DIE of the first units and of main:
    pyelftools' value (references made absolute, names decoded)."""
    path = FIXTURES / f"go{go}" / arch / "default" / "shapes"
    require_file(path, "fixture binary")
    with GoProgram(path, cache=False) as prog:
        dwarf = prog.binary.dwarf
        scanner = DieScanner.of(dwarf)
        cus = list(dwarf.iter_CUs())
        chosen = cus[:3] + [cu for cu in cus if cu.get_top_DIE().attributes["DW_AT_name"].value == b"main"]
        decoded = 0
        for cu in chosen:
            for die in cu.iter_DIEs():
                if die.is_null():
                    continue
                tag, values = scanner.attributes(die.offset)
                assert tag == ENUM_DW_TAG[die.tag], die.offset
                assert {_AT_NAMES.get(k, k) for k in values} == set(die.attributes), die.offset
                for key, value in values.items():
                    if value is UNDECODED:
                        continue
                    attr = die.attributes[_AT_NAMES.get(key, key)]
                    want = attr.value
                    if attr.form in ("DW_FORM_ref1", "DW_FORM_ref2", "DW_FORM_ref4", "DW_FORM_ref8",
                                     "DW_FORM_ref_udata"):
                        want += cu.cu_offset
                    elif isinstance(want, bytes):
                        want = want.decode("utf-8", "replace")
                    assert value == want and type(value) is type(want), (die.offset, attr)
                    decoded += 1
        assert decoded > 1000


def test_signed_leb128_as_the_dwarf_standard_gives_it():
    """The examples of DWARF 5's table 7.8 (SLEB128), and a damaged number longer than 64 bits."""
    from dwarfgo.varint import svarint

    for data, value in [(b"\x02", 2), (b"\x7e", -2), (b"\xff\x00", 127), (b"\x81\x7f", -127),
                        (b"\x80\x01", 128), (b"\x80\x7f", -128)]:
        assert svarint(data + b"\x99", 0) == (value, len(data))
    with pytest.raises(ValueError):
        svarint(b"\x80" * 11, 0)
