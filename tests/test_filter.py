"""`--filter` before anything runs: its syntax, and Go's typing of it against the probed functions'
parameters (read from fixtures/shapes' DWARF), each mistake one line naming what is wrong."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import FIXTURES, require_file
from dwarfgo.emit import filter as flt
from dwarfgo.emit.dialect import Dialect
from dwarfgo.emit.probe import ProbeOptions, generate
from dwarfgo.errors import DwarfgoError
from dwarfgo.program import GoProgram

SHAPES = FIXTURES / "go1.27" / "amd64" / "default" / "shapes"


@pytest.mark.parametrize("text, said", [
    ("", "empty expression"),
    ("a ==", "ends early"),
    ("a == == 1", "expected"),
    ("(a == 1", "expected ')'"),
    ("a = 1", "unexpected"),
    ('s == "\\q"', "unknown escape"),
    ('m["k"] == 1', "hash function"),
    ("a == 1)", "unexpected ')'"),
    ("(a == 1) == true", "compares values, not conditions"),
    ("a[x] == 1", "integer index"),
    ("len(a == 1", "expected"),
])
def test_syntax_errors_are_one_line(text, said):
    with pytest.raises(DwarfgoError) as e:
        flt.parse(text)
    msg = str(e.value)
    assert said in msg and "\n" not in msg and msg.startswith("--filter")


def test_parse_tree():
    f = flt.parse('main.(*T).M: !(x.a < -5) || (*p).s == "a:b\\x00" && len(xs) >= 0x10')
    assert f.function == "main.(*T).M" and f.roots == {"x", "p", "xs"}
    assert isinstance(f.cond, flt.Logic) and f.cond.op == "||"  # && binds tighter
    right = f.cond.right
    assert right.op == "&&" and right.left.right == flt.Literal("string", b"a:b\x00", '"a:b\\x00"')
    assert right.right.right.value == 16 and right.right.left.expr.builtin == "len"
    assert f.cond.left.inner.right.value == -5
    # a colon inside a string constant is not a function prefix
    assert flt.parse('s == "x:y"').function is None
    assert flt.parse("`raw\\n` == s").cond.left.value == b"raw\\n"


def _generate(prog, funcs, filters):
    fns = [prog.function(f) for f in funcs]
    return generate(prog, fns, Dialect((0, 27, 0)), ProbeOptions(filter=filters))


@pytest.fixture(scope="module")
def shapes():
    require_file(SHAPES, "fixture binary")
    with GoProgram(SHAPES) as prog:
        yield prog


@pytest.mark.parametrize("funcs, text, said", [
    (["main.Strings"], "s == 5", "mismatched types string and untyped int"),
    (["main.Strings"], "nope == 1", "no probed function has all of nope"),
    (["main.Strings"], "main.Strings: nope == 1", "nope is not a parameter"),
    (["main.Strings"], "main.Bools: a", "main.Bools is not one of the probed functions"),
    (["main.Bools"], "a < b", "operator < not defined on a (type bool)"),
    (["main.Bools"], "a == 1", "mismatched types bool and untyped int"),
    (["main.List"], "head < nil", "operator < not defined on head"),
    (["main.List"], 'head.Val == "x"', "mismatched types int and untyped string"),
    (["main.List"], "head.Nope == 1", "has no field Nope"),
    (["main.List"], "head == 0", "mismatched types *main.Node and untyped int"),
    (["main.Signed"], "a == 300", "300 as int8 value: it overflows int8"),
    (["main.Unsigned"], "a == -1", "overflows uint8"),
    (["main.Strings"], "s", "non-boolean s (type string) used as condition"),
    (["main.Strings"], 's < "a"', "strings compare only with == and !="),
    (["main.Strings"], "s == t", "compare a string with a string constant"),
    (["main.Strings"], "s == nil", "mismatched types string and untyped nil"),
    (["main.Floats"], "b > 1", "floats cannot be compared"),
    (["main.Slices"], "xs == ss", "mismatched types []int and []string"),
    (["main.Slices"], "xs == xs", "can only be compared to nil"),
    (["main.Slices"], "len(ps[0]) > 1", "invalid argument"),
    (["main.Slices"], "1 == 1", "compares two constants"),
    (["main.StructNested"], "n.In == n.In", "compare its fields"),
])
def test_type_errors_are_one_line(shapes, funcs, text, said):
    with pytest.raises(DwarfgoError) as e:
        _generate(shapes, funcs, [text])
    msg = str(e.value)
    assert said in msg and "\n" not in msg, msg


def test_well_typed_filters_compile(shapes):
    program = _generate(shapes, ["main.Slices", "main.List", "main.Bools", "main.Unsigned"], [
        "xs != nil && len(ss) > 0 && ps[1].B != \"\"", "head == nil || head.Next.Val > 1",
        "main.Bools: !a || b == false", "main.Unsigned: d >= 18446744073709551615 || f != 0"])
    text = program.text
    assert text.count("$dgf_pass == 1") == 4 and all(p.filtered for p in program.probes)


@pytest.mark.parametrize("command", ["probe", "decode"])
def test_cli_type_error_before_anything_runs(command):
    require_file(SHAPES, "fixture binary")
    r = subprocess.run([sys.executable, "-m", "dwarfgo", command, str(SHAPES), "main.Strings", "--filter", "s == 5",
                        "--bpftrace-version", "0.27"], capture_output=True, text=True, timeout=120, input="")
    assert r.returncode == 1 and not r.stdout and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("dwarfgo: error: --filter 's == 5': invalid operation"), r.stderr


@pytest.mark.parametrize("funcs, agg, ret, said", [
    (["main.List"], dict(count_by=[["head"]]), False, "cannot count by a *main.Node"),
    (["main.Strings"], dict(sums=["s"]), False, "an integer expression is needed, not string"),
    (["main.Strings"], dict(hists=["latency"]), False, "add --ret"),
    (["main.Strings"], dict(count_by=[["nope"]]), False, "no probed function has all of nope"),
    (["main.Strings"], dict(count_by=[["s", "t"]]), False, "at most one string key"),
    (["main.Strings"], dict(count_by=[["s["]]), False, "--count-by"),
])
def test_aggregation_errors_are_one_line(shapes, funcs, agg, ret, said):
    from dwarfgo.emit.aggregate import AggregateOptions

    fns = [shapes.function(f) for f in funcs]
    with pytest.raises(DwarfgoError) as e:
        generate(shapes, fns, Dialect((0, 27, 0)), ProbeOptions(ret=ret, aggregate=AggregateOptions(**agg)))
    assert said in str(e.value) and "\n" not in str(e.value), str(e.value)
