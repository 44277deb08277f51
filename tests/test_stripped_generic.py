"""Generic instances in a stripped Go 1.18-1.19 binary (issue 13): the function table writes every
instance's type arguments as `[...]` (`main.Max[...]` three times), so a name alone cannot choose
one; `NAME@0xADDR` does, on every command, on the stripped binary and on its DWARF build alike.

Expected addresses, sizes and instance names come from readelf on the DWARF build's symbol table;
the argument words from the fixture's Go source (fixtures/shapes: `func Max[T ...](a, b T) T`)."""

from __future__ import annotations

import re

import pytest

from test_stripped import VERSIONS, _run_cli, built, readelf_functions

GO = "1.19"  # the matrix's only version with the [...] names (1.18-1.19)


@pytest.fixture(scope="module")
def max_instances():
    """address -> (symbol name, size) of main.Max's instances, from readelf of the DWARF build."""
    if GO not in VERSIONS:
        pytest.skip(f"Go {GO} not in the matrix")
    found = {a: (n, s) for a, (n, s) in readelf_functions(built(GO, "default")).items()
             if n.startswith("main.Max[go.shape.")}
    assert len(found) == 3, found  # int, string, float64 (fixtures/shapes)
    return found


def test_shared_name_lists_each_instance_with_its_selector(max_instances):
    r = _run_cli("sig", built(GO, "stripped"), "main.Max[...]")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "names 3 functions" in r.stderr and "NAME@0xADDR" in r.stderr, r.stderr
    for address, (name, size) in max_instances.items():
        words = "{8, 8}, {8, 8}" if "string" in name else "8, 8"  # Max(a, b T): a string is 2 words
        assert f"main.Max[...]@{address:#x} ({size} bytes, argument words {words})" in r.stderr, (name, r.stderr)


def test_selector_chooses_the_instance_on_stripped_and_dwarf_builds(max_instances):
    from dwarfgo.program import GoProgram

    with GoProgram(built(GO, "stripped"), cache=False) as stripped, \
            GoProgram(built(GO, "default"), cache=False) as dwarf:
        for address, (name, size) in max_instances.items():
            short = name.removeprefix("main.")
            for query in (f"main.Max[...]@{address:#x}", f"Max[...]@{address:#X}".replace("0X", "0x")):
                got = stripped.lookup(query)
                assert (got.address, got.size, got.name) == (address, size, "main.Max[...]"), query
                assert dwarf.lookup(query).name == name, query  # the same selector names it on the DWARF build
            assert dwarf.function(f"{short}@{address:#x}").name == name
        some, other = sorted(max_instances)[:2]
        for query, says in ((f"main.Max[...]@{some + 1:#x}", f"no function starts at {some + 1:#x}; it is inside "
                                                             f"main.Max[...], whose entry is {some:#x}"),
                            (f"main.Min@{some:#x}", f"the function at {some:#x} is main.Max[...], which 'main.Min' "
                                                    f"does not name")):
            with pytest.raises(Exception, match=".*" + re.escape(says)):
                stripped.lookup(query)
        with pytest.raises(Exception, match="does not name"):
            dwarf.lookup(f"{max_instances[other][0]}@{some:#x}")  # the other instance's name at this address


def test_selector_on_funcs_sig_and_probe(max_instances):
    stripped = built(GO, "stripped")
    by_kind = {("string" if "string" in n else "float" if "float" in n else "int"): a
               for a, (n, _) in max_instances.items()}
    s = f"main.Max[...]@{by_kind['string']:#x}"
    r = _run_cli("funcs", stripped, s)
    assert r.returncode == 0 and r.stdout.split() == [f"{by_kind['string']:#x}", "main.Max[...]",
                                                      f"({max_instances[by_kind['string']][1]}", "bytes)"], r
    r = _run_cli("sig", stripped, s)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"main.Max[...] at {by_kind['string']:#x}: argument words only"), r.stdout
    # two instances in one program: each event line says which one
    i = f"main.Max[...]@{by_kind['int']:#x}"
    r = _run_cli("probe", stripped, s, i, "--format", "raw", "--bpftrace-version", "0.27")
    assert r.returncode == 0, r.stderr
    headers = [line.split()[2] for line in r.stdout.splitlines() if line.startswith("// 0x")]
    assert [h.split("(")[0] for h in headers] == [s, i], headers


@pytest.mark.parametrize("go", [v for v in ("1.27",) if v in VERSIONS])
def test_generic_method_record_lists_the_dictionary_first(go):
    """From Go 1.21 a generic method's dictionary follows its receiver, but the compiler's traceback
    record still skips the first input (meant for the dictionary): the receiver is left out and
    arg0 is the dictionary, in the register DWARF gives `.dict` in the -N -l build."""
    from dwarfgo.program import GoProgram
    from dwarfgo.tablesig import word_layout
    from dwarfgo.verify.dwarfloc import entry_location

    name = "main.(*Stack[go.shape.string]).Push"
    with GoProgram(built(go, "noopt"), cache=False) as noopt:
        fn = noopt.function(name)
        d = next(p for p in fn.inputs if p.name == ".dict")
        want = entry_location(noopt.index.dwarf, d.die, fn.address, "amd64")[0].register
    with GoProgram(built(go, "stripped"), cache=False) as stripped:
        layout = word_layout(stripped, stripped.lookup(name))
        assert layout.place(layout.values.items[0]).register.upper() == want.upper()
        assert any("lists the hidden dictionary as arg0" in line for line in layout.lines())
