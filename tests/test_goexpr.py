"""`--args` expressions: the parser, and the errors a user sees for expressions that do not fit
the function (checked against the shapes fixture's real types)."""

from __future__ import annotations

import pytest

from conftest import FIXTURES, require_file
from dwarfgo.emit.dialect import Dialect
from dwarfgo.emit.probe import ProbeOptions, generate
from dwarfgo.errors import DwarfgoError
from dwarfgo.goexpr import FieldStep, IndexStep, parse
from dwarfgo.program import GoProgram


@pytest.mark.parametrize("text, root, steps, builtin", [
    ("p", "p", (), None),
    ("c.Addr.Port", "c", (FieldStep("Addr"), FieldStep("Port")), None),
    ("xs[2].Name", "xs", (IndexStep(2), FieldStep("Name")), None),
    ("len(buf)", "buf", (), "len"),
    ("cap( q.items )", "q", (FieldStep("items"),), "cap"),
    ("m[0x10]", "m", (IndexStep(16),), None),
    ("len", "len", (), None),  # a parameter may be called len
])
def test_parse(text, root, steps, builtin):
    e = parse(text)
    assert (e.root, e.steps, e.builtin) == (root, steps, builtin)


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("a.", "ends early"),
    ("a[", "ends early"),
    ("a[x]", "expected an integer index"),
    ("a[-1]", "unexpected"),
    ("len(a", "ends early"),
    ("len(a) + 1", "unexpected"),
    ("a.b)", "unexpected ')'"),
    ("*p", "unexpected"),
])
def test_parse_errors_are_one_line(text, message):
    with pytest.raises(DwarfgoError) as e:
        parse(text)
    assert message in str(e.value) and "\n" not in str(e.value)


CASES = [
    ("main.List", "head.Nxt", "main.Node has no field Nxt (fields: Val, Name, Next)"),
    ("main.List", "len(head)", "invalid argument: head (*main.Node) for len"),
    ("main.List", "sum", "sum is a result: results are printed with --ret"),
    ("main.List", "nope", "no probed function has a parameter nope (parameters: head)"),
    ("main.Arrays", "a3[3]", "index 3 out of range for [3]int32"),
    ("main.Maps", "cap(m)", "invalid argument: m (map[string]int) for cap"),
    ("main.List", "head.Val.X", "head.Val is int, which has no fields"),
    ("main.Pointers", "pp.A", "pp is **main.Pair, which has no fields (Go follows one pointer only)"),
    ("main.Strings", "s[1].x", "s[1] is a byte"),
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
    body = program.text.split("call 0", 1)[1]
    assert body.count('reg("r0")') == 1 and "reg(\"r1\")" not in body
    assert "if ($r0 > 0)" in body and "if ($r1 > 0)" in body
    assert "*(uint64*)($r0 + 24)" in body and "*(int64*)($r1)" in body  # Node.Next at 24, Node.Val at 0
    assert [v.name for v in program.probes[0].values] == ["head.Next.Val"]
