"""The function table's index search (pclntab._Functab.index_of) against a linear reading of the
same index: every entry is found at its own position, and an address between entries is none.
One binary per layout (Go 1.15's uintptr entries, 1.19's and 1.27's uint32 offsets from the text
start) and a big-endian one."""

from __future__ import annotations

import pytest

from conftest import FIXTURES, require_file

BINARIES = [("1.15", "amd64"), ("1.19", "amd64"), ("1.27", "amd64"), ("1.22", "s390x")]


@pytest.mark.parametrize("go,arch", BINARIES)
def test_index_of_finds_every_entry_at_its_position(go, arch):
    from dwarfgo.binary import GoBinary
    from dwarfgo.pclntab import FuncTable

    path = FIXTURES / f"go{go}" / arch / "default" / "shapes"
    require_file(path, f"go{go} {arch} shapes")
    binary = GoBinary(str(path))
    tab = FuncTable(binary)._index
    entries = [tab.entry(i) for i in range(tab.nfunc)]
    assert len(entries) > 1000
    first = {}
    for i, entry in enumerate(entries):
        first.setdefault(entry, i)
    for i, entry in enumerate(entries):
        assert tab.index_of(entry) == first[entry]
        if entry + 1 not in first:
            assert tab.index_of(entry + 1) is None
    assert tab.index_of(entries[0] - 1) is None
    assert tab.index_of(tab.entry(tab.nfunc) + 1) is None
    # the symbol table's functions are the table's (both written by the linker)
    syms = [s for s in binary.function_symbols if s.size]
    assert sum(tab.index_of(s.address) is not None for s in syms) >= 0.95 * len(syms)


@pytest.mark.parametrize("go,arch", [("demo", "amd64"), *BINARIES])
def test_table_in_place_names_functions_as_the_symbol_table(go, arch):
    """FuncTable reads the table in place (a view of the mapped file, not the section read): its
    names (NUL-terminated, found across the view) are the symbol table's, and each function's
    argument size is what the table read as bytes gives."""
    from conftest import REPO

    from dwarfgo.binary import GoBinary
    from dwarfgo.pclntab import FuncTable, _Functab, locate

    path = REPO / "fixtures" / "bin" / "demo-go1.22-amd64" if go == "demo" else \
        FIXTURES / f"go{go}" / arch / "default" / "shapes"
    require_file(path, f"go{go} {arch} shapes")
    binary = GoBinary(str(path))
    try:
        tab = FuncTable(binary)._index
        assert isinstance(tab.data, memoryview)
        address, data, where = locate(binary)
        assert isinstance(data, bytes) and bytes(tab.data) == data
        read = _Functab(data, address, binary, where)
        names = {s.address: s.name for s in binary.function_symbols}
        same = 0
        for i in range(tab.nfunc):
            f = tab.record(i)
            name = tab.name(f)
            assert name == read.name(read.record(i)) and tab.args(f) == read.args(read.record(i))
            same += names.get(tab.entry(i)) == name.replace("\u00b7", ".")
        assert tab.nfunc > 1000 and same >= 0.9 * tab.nfunc  # (ABI wrappers share an address)
    finally:
        binary.close()
