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
