"""`--args` expressions: the parser, and the errors a user sees for expressions that do not fit
the function (checked against the shapes fixture's real types)."""

from __future__ import annotations

import pytest

from conftest import FIXTURES, require_file
from dwarfgo.emit.dialect import Dialect
from dwarfgo.emit.probe import ProbeOptions, generate
from dwarfgo.errors import DwarfgoError
from dwarfgo.goexpr import DerefStep, FieldStep, IndexStep, parse
from dwarfgo.program import GoProgram


@pytest.mark.parametrize("text, root, steps, builtin", [
    ("p", "p", (), None),
    ("c.Addr.Port", "c", (FieldStep("Addr"), FieldStep("Port")), None),
    ("xs[2].Name", "xs", (IndexStep(2), FieldStep("Name")), None),
    ("len(buf)", "buf", (), "len"),
    ("cap( q.items )", "q", (FieldStep("items"),), "cap"),
    ("m[0x10]", "m", (IndexStep(16),), None),
    ("len", "len", (), None),  # a parameter may be called len
    ("*p", "p", (DerefStep(),), None),
    ("(*p).f", "p", (DerefStep(), FieldStep("f")), None),
    ("*p.f", "p", (FieldStep("f"), DerefStep()), None),  # Go: *(p.f)
    ("(*a)[1]", "a", (DerefStep(), IndexStep(1)), None),
    ("len(*p)", "p", (DerefStep(),), "len"),
    ("**pp", "pp", (DerefStep(), DerefStep()), None),
    ("(*(*p).Next).Val", "p", (DerefStep(), FieldStep("Next"), DerefStep(), FieldStep("Val")), None),
    ("~r0.X", "~r0", (FieldStep("X"),), None),  # an unnamed result as DWARF (and `dwarfgo sig`) names it
])
def test_parse(text, root, steps, builtin):
    e = parse(text)
    assert (e.root, e.steps, e.builtin) == (root, steps, builtin)


@pytest.mark.parametrize("text, normal", [
    ("( * p ) . f", "(*p).f"),
    ("*(*pp)", "**pp"),
    ("((p)).x", "p.x"),
    ("(*p)", "*p"),
    ("len( * a )", "len(*a)"),
    ("(*(*p).Next).Val", "(*(*p).Next).Val"),
    ("*xs[0]", "*xs[0]"),
])
def test_text_is_normalised_go(text, normal):
    """The text is the JSON key and the name in the output: Go syntax, parentheses only where needed."""
    assert parse(text).text == normal


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("a.", "ends early"),
    ("a[", "ends early"),
    ("a[x]", "expected an integer index"),
    ("a[-1]", "unexpected"),
    ("len(a", "ends early"),
    ("len(a) + 1", "unexpected"),
    ("a.b)", "unexpected ')'"),
    ("*", "ends early, expected a name"),
    ("p*", "unexpected '*' at column 2 (expressions are like a.b.c, xs[2], *p, (*p).f, len(s), cap(s))"),
    ("(*p", "ends early, expected ')'"),
    ("*len(p)", "unexpected '('"),
    ('m["k"]', "indexing a map needs Go's hash function; print len(m) or the map"),
    ("c.m[`k`]", "indexing a map needs Go's hash function; print len(c.m) or the map"),
    ("m['k']", "indexing a map needs Go's hash function"),
])
def test_parse_errors_are_one_line(text, message):
    with pytest.raises(DwarfgoError) as e:
        parse(text)
    assert message in str(e.value) and "\n" not in str(e.value)


CASES = [
    ("main.List", "head.Nxt", "main.Node has no field Nxt (fields: Val, Name, Next)"),
    ("main.List", "len(head)", "invalid argument: head (*main.Node) for len"),
    ("main.List", "sum", "--args sum: sum is a result, printed on the return event: add --ret"),
    ("main.List", "len(last.Name)", "last is a result, printed on the return event: add --ret"),
    ("main.List", "nope", "no probed function has a parameter or result nope (parameters: head; "
                          "results: count, last, sum)"),
    ("main.Arrays", "a3[3]", "index 3 out of range for [3]int32"),
    ("main.Maps", "cap(m)", "invalid argument: m (map[string]int) for cap"),
    ("main.List", "head.Val.X", "head.Val is int, which has no fields"),
    ("main.Pointers", "pp.A", "pp is **main.Pair, which has no fields (Go follows one pointer only: (*pp).A)"),
    ("main.Strings", "s[1].x", "s[1] is a byte"),
    ("main.List", "*head.Val", "--args *head.Val: cannot indirect head.Val: it is int, not a pointer"),
    ("main.Pointers", "***pp", "cannot indirect **pp: it is main.Pair, not a pointer"),
    ("main.Strings", "*s", "cannot indirect s: it is string, not a pointer"),
    ("main.Maps", "m[3]", "--args m[3]: indexing a map needs Go's hash function; print len(m) or the map"),
    ("main.Maps", "idx[7].A", "indexing a map needs Go's hash function; print len(idx) or the map"),
]


@pytest.mark.matrix
@pytest.mark.parametrize("func, text, message", CASES)
def test_expressions_checked_against_the_types(func, text, message):
    path = FIXTURES / "go1.22" / "amd64" / "default" / "shapes"
    require_file(path, "fixture binary")
    with GoProgram(path) as prog:
        with pytest.raises(DwarfgoError) as e:
            generate(prog, [prog.function(func)], Dialect((0, 27, 1)), ProbeOptions(args=[text]))
    assert message in str(e.value), str(e.value)


@pytest.mark.matrix
def test_selection_reads_only_what_it_needs():
    """`head.Next.Val` on arm64: the register of head, then two guarded loads; nothing else."""
    path = FIXTURES / "go1.22" / "arm64" / "default" / "shapes"
    require_file(path, "fixture binary")
    with GoProgram(path) as prog:
        program = generate(prog, [prog.function("main.List")], Dialect((0, 27, 1)),
                           ProbeOptions(args=["head.Next.Val"]))
    body = program.text.split("// dg probe 0", 1)[1]
    assert body.count('reg("r0")') == 1 and "reg(\"r1\")" not in body
    assert "if ($r0 > 0)" in body and "if ($r1 > 0)" in body
    assert "*(uint64*)($r0 + 24)" in body and "*(int64*)($r1)" in body  # Node.Next at 24, Node.Val at 0
    assert [v.name for v in program.probes[0].values] == ["head.Next.Val"]


RESULT_CASES = [
    # (function, expression, bpftrace, --ret, the error; None: accepted)
    ("main.List", "sum", "0.27.1", True, None),
    ("main.StructSmall", "~r0.X", "0.27.1", True, None),  # the DWARF name `dwarfgo sig` shows
    ("main.StructSmall", "r0.X", "0.27.1", True, None),  # the name the output uses
    ("main.List", "sum", "0.17.0", True, "--args sum: sum is a result, printed on the return event, but "
                                         "bpftrace 0.17.0 cannot probe a RET inside a function (no offset "
                                         "support); use a newer bpftrace (--bpftrace PATH, 0.23+)"),
    ("main.List", "last.Nxt", "0.27.1", True, "main.Node has no field Nxt"),
    ("main.StructSmall", "*r0", "0.27.1", True, "cannot indirect r0: it is main.Small, not a pointer"),
]


@pytest.mark.matrix
@pytest.mark.parametrize("func, text, bpftrace, ret, message", RESULT_CASES)
def test_result_expressions_need_return_probes(func, text, bpftrace, ret, message):
    path = FIXTURES / "go1.22" / "amd64" / "default" / "shapes"
    require_file(path, "fixture binary")
    dialect = Dialect(tuple(int(x) for x in bpftrace.split(".")))
    with GoProgram(path) as prog:
        run = lambda: generate(prog, [prog.function(func)], dialect, ProbeOptions(ret=ret, args=[text]))
        if message is None:
            ret_probe = run().probes[1]
            assert ret_probe.kind == "ret" and [v.name for v in ret_probe.values] == [text]
            return
        with pytest.raises(DwarfgoError) as e:
            run()
    assert message in str(e.value) and "\n" not in str(e.value), str(e.value)


@pytest.mark.matrix
def test_selected_results_are_shown_by_expression():
    """The decoder names selected results (`sum=6`); every result is shown by value alone, as before."""
    from dwarfgo.runner.decode import Decoder

    path = FIXTURES / "go1.22" / "amd64" / "default" / "shapes"
    require_file(path, "fixture binary")
    with GoProgram(path) as prog:
        program = generate(prog, [prog.function("main.List")], Dialect((0, 27, 1)),
                           ProbeOptions(ret=True, args=["head.Val", "sum", "len(last.Name)"]))
    call, ret = program.probes
    site = ret.ret_sites[0]
    decoder = Decoder(program.probes)
    lines = [f"@dg 7 1 call 0 100 c000 1 {call.attach_address:x}", "@dg 7 1 0,1 c0001000 1", "@dg 7 1 end 3",
             f"@dg 7 2 ret 1 900 c000 {site:#x} 800 100 {site:x}", "@dg 7 2 0,1 6 c0002000",
             "@dg 7 2 2 5", "@dg 7 2 end 4"]
    events = [e for e in map(decoder.feed, lines) if e is not None]
    assert [e.text() for e in events] == ["main.List(head.Val=1)",
                                          "main.List(head.Val=1) → (sum=6, len(last.Name)=5)  800ns"]
    assert events[1].to_json()["results"] == {"sum": 6, "len(last.Name)": 5}


def test_array_pointer_dereference():
    """`(*a)[1]` reads behind a guard on a; `len(*a)` of a *[3]int is Go's constant 3 (a is not read,
    as Go does not evaluate it either). No fixture function takes an array pointer: types by hand."""
    from dwarfgo.abi.assign import Location
    from dwarfgo.emit.plan import GuardNode, PlanBuilder, RuntimeLayout, Scalar
    from dwarfgo.functions import Parameter
    from dwarfgo.gotypes import GoType, Kind

    class Types:
        def type_at(self, offset):
            return table[offset]

    table = {1: GoType(1, "int", Kind.INT, 8, 8)}
    table[2] = GoType(2, "[3]int", Kind.ARRAY, 24, 8, elem_offset=1, length=3, reader=Types())
    table[3] = GoType(3, "*[3]int", Kind.POINTER, 8, 8, elem_offset=2, reader=Types())
    loc = Location(Parameter("a", table[3], False), in_registers=False, pieces=[], stack_offset=8)
    builder = PlanBuilder(RuntimeLayout(None, 8, None, None, 8))
    node = builder.selection(parse("(*a)[1]"), loc).node
    assert isinstance(node, GuardNode) and node.reason == "a is nil"
    assert [r.expr for r in builder.reads] == ['*(uint64*)(reg("sp") + 8)', "*(int64*)($r0 + 8)"]
    builder.reads = []
    node = builder.selection(parse("len(*a)"), loc).node
    assert isinstance(node, Scalar) and [r.expr for r in builder.reads] == ["3"]
    with pytest.raises(DwarfgoError, match=r"cannot indirect \*a: it is \[3\]int, not a pointer"):
        builder.selection(parse("**a"), loc)
