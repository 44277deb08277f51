"""`dwarfgo probe` and `dwarfgo trace` on a stripped binary with neither DWARF nor a twin (issue 13):
only the methods whose signature the runtime type tables give, their values named by position.
Expected signatures come from the fixture's Go source (fixtures/shapes/funcs.go), expected values
from the fixture's own report (-report)."""

from __future__ import annotations

import re

import pytest

from test_stripped import VERSIONS, _run_cli, built

SOURCE_NOTE = "source: runtime type table"


def test_probe_a_table_method_says_its_source_and_refuses_the_rest():
    if "1.27" not in VERSIONS:
        pytest.skip("Go 1.27 not in the matrix")
    stripped = built("1.27", "stripped")
    # func (p *Pair) SetB(b string) (old string), Pair = struct{A int; B string} (funcs.go)
    r = _run_cli("probe", stripped, "(*Pair).SetB", "--format", "raw", "--bpftrace-version", "0.27")
    assert r.returncode == 0, r.stderr
    header = next(l for l in r.stdout.splitlines() if "SetB(" in l and l.startswith("// 0x"))
    assert header.endswith("func (recv *main.Pair) SetB(p0 string) (r0 string)  "
                           "(source: runtime type table; parameters named by position)"), header
    assert f"main.(*Pair).SetB: signature from the runtime type table ({SOURCE_NOTE}" in r.stderr
    assert "--unsafe" in r.stdout  # no symbol table: attach points are file offsets
    # the readable program says where its C layouts come from
    r = _run_cli("probe", stripped, "main.Pair.String", "--bpftrace-version", "0.27")
    assert r.returncode == 0, r.stderr
    assert "from the runtime type tables, no DWARF" in r.stdout and "struct dg_main_Pair" in r.stdout
    # a function that is no method of the tables, and a method whose type the linker dropped: their
    # untyped argument words (tests/test_stripped_words.py), saying why there is no signature
    for func, why in (("main.Strings", "not a method in the runtime type tables"),
                      ("main.Celsius.ToF", "the linker dropped its type")):
        r = _run_cli("probe", stripped, func, "--format", "raw", "--bpftrace-version", "0.27")
        assert r.returncode == 0 and why in r.stderr and "untyped argument words" in r.stderr, r.stderr


def _positional(record: dict) -> dict:
    """A method's reported call with its values named as Go's tables leave them: by position."""
    args = list(record["args"].values())
    named = {"recv": args[0], **{f"p{i}": v for i, v in enumerate(args[1:])}}
    results = {f"r{i}": v for i, v in enumerate(record["results"].values())}
    return dict(record, args=named, results=results)


@pytest.mark.live
@pytest.mark.parametrize("go", ["1.27", "1.15"])
def test_trace_stripped_from_type_tables_values_exact(go):
    """`dwarfgo trace STRIPPED METHODS` with no DWARF and no twin, newest bpftrace: for each method
    the fixture reports calling whose signature the type tables give, every value equals the
    fixture's report or is unavailable with a reason."""
    from livecompare import compare_run
    from test_live import _live_preconditions, installed_bpftrace, reported_calls, trace_fixture

    from dwarfgo.errors import DwarfgoError
    from dwarfgo.program import GoProgram
    from dwarfgo.tablesig import probe_function_from_tables
    from dwarfgo.wordprobe import WordFunction

    if go not in VERSIONS:
        pytest.skip(f"Go {go} not in the matrix")
    stripped = built(go, "stripped")
    _live_preconditions(stripped)
    version, path = installed_bpftrace("newest")
    funcs = []
    with GoProgram(stripped) as prog:
        for name in dict.fromkeys(r["func"] for r in reported_calls(stripped)):
            try:
                fn = probe_function_from_tables(prog, name)
            except DwarfgoError:
                continue
            if not isinstance(fn, WordFunction):  # words only: tests/test_stripped_words.py
                funcs.append(name)
    # Pair has String (fmt.Stringer): its method type is kept on every version
    assert "main.Pair.String" in funcs, funcs
    report, events, errors, rc = trace_fixture(stripped, funcs, path, True)
    assert rc == 0, "\n".join(errors[-20:])
    assert all(any(SOURCE_NOTE in e and f in e for e in errors) for f in funcs), "\n".join(errors[:10])
    report = [_positional(r) for r in report if r["func"] in funcs]
    tally, problems = compare_run(report, events, with_results=True)
    assert not tally.mismatches, "wrong values:\n" + "\n".join(tally.mismatches[:50])
    assert not problems, "\n".join(problems[:50]) + "\ntrace stderr:\n" + "\n".join(errors[-10:])
    assert all(re.search(r"\w", why) for why in tally.unavailable), tally.unavailable
    assert tally.checked >= 3 * len(funcs), f"only {tally.checked} values compared"
    print(f"stripped go{go}, no twin, bpftrace {version}: {len(funcs)} methods, {tally.checked} values exact, "
          f"{tally.unavailable_count()} unavailable")


def test_a_contradicting_witness_refuses_the_probe(monkeypatch):
    """The function table's argument-area size is a witness: a size the method's type does not
    account for (here, Pair.String's 40 bytes on Go 1.15: receiver 24 + result 16, read one word
    off) refuses the probe in one line instead of reading from doubtful places."""
    from dwarfgo.errors import DwarfgoError
    from dwarfgo.pclntab import FuncTable
    from dwarfgo.program import GoProgram
    from dwarfgo.tablesig import probe_function_from_tables

    if "1.15" not in VERSIONS:
        pytest.skip("Go 1.15 not in the matrix")
    with GoProgram(built("1.15", "stripped")) as prog:
        fn = probe_function_from_tables(prog, "main.Pair.String")
        assert [loc.describe() for loc in fn.checked_layout.inputs + fn.checked_layout.results] == \
            ["stack[+8,+32]", "stack[+32,+48]"]
        real = FuncTable.args_size
        monkeypatch.setattr(FuncTable, "args_size", lambda self, address: real(self, address) + 8)
        with pytest.raises(DwarfgoError, match="function table gives 48 bytes of arguments, the method's type "
                                               "accounts for 40") as e:
            probe_function_from_tables(prog, "main.Pair.String")
        assert "\n" not in str(e.value)
