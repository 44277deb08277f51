"""Generated programs checked without running them: arm64 (this machine cannot run arm64 code),
and properties that must hold for every program on any architecture."""

from __future__ import annotations

import re

import pytest

from conftest import FIXTURES, go_versions, require_file
from dwarfgo.emit.dialect import Dialect
from dwarfgo.emit.probe import ProbeOptions, generate
from dwarfgo.program import GoProgram
from dwarfgo.verify.machine import analyze

# pc, ip: the probed address (load bias); r30 (LR) and sp: morestack's return address (0.17)
ARM64_READABLE = {f"r{i}" for i in range(16)} | {"sp", "r28", "pstate", "pc", "r30"}
AMD64_READABLE = {"ax", "bx", "cx", "di", "si", "r8", "r9", "r10", "r11", "sp", "r14", "flags", "ip"}


def _all_funcs(prog) -> list:
    return [f for f in prog.matching("main.*") if not f.name.startswith("main.main") and "init" not in f.name]


@pytest.mark.matrix
@pytest.mark.parametrize("go", go_versions() or ["1.22"])
@pytest.mark.parametrize("arch, readable", [("arm64", ARM64_READABLE), ("amd64", AMD64_READABLE)])
@pytest.mark.parametrize("bpftrace", ["0.17.0", "0.27.1"])
def test_generated_program_reads_only_argument_registers_and_attaches_on_instructions(go, arch, readable, bpftrace):
    path = FIXTURES / f"go{go}" / arch / "default" / "shapes"
    require_file(path, "fixture binary")
    dialect = Dialect(tuple(int(x) for x in bpftrace.split(".")))
    with GoProgram(path) as prog:
        fns = _all_funcs(prog)
        program = generate(prog, fns, dialect, ProbeOptions(ret=True, depth=2))
        text = program.text
        regs = set(re.findall(r'reg\("(\w+)"\)', text))
        assert regs <= readable, f"reads {regs - readable}"
        # every attach point is an instruction start of its function (Capstone), entry or RET
        starts = {}
        for f in fns:
            m = analyze(prog.binary, f.address, f.symbol.size)
            starts.update({a: f for a in m.instruction_starts})
        attaches = [int(a, 16) for a in re.findall(r"^uprobe:[^\n]*:(0x[0-9a-f]+)", text, re.M)]
        # 0.17 also probes the morestack routine each prologue calls (the re-entry mark)
        morestack = {m.morestack_call.target for m in (analyze(prog.binary, f.address, f.symbol.size) for f in fns)
                     if m.morestack_call} if not dialect.supports_mid_function_probes else set()
        attaches = [a for a in attaches if a not in morestack]
        assert attaches and all(a in starts for a in attaches)
        if dialect.supports_mid_function_probes:
            assert len(attaches) > len(fns)  # RET sites too
        else:
            assert all(a == starts[a].address for a in attaches)  # 0.17: function entries only
            assert any("cannot probe a RET" in w for w in program.warnings)
        # names from the binary never reach the program body (only the // comment header)
        body = "\n".join(l for l in text.splitlines() if not l.startswith("//"))
        assert "main." not in body and "go.shape" not in body


@pytest.mark.matrix
def test_hostile_names_cannot_escape():
    """Symbol and type names with quotes, newlines or bpftrace syntax stay in comments."""
    from dwarfgo.emit.probe import _comment_safe

    assert "\n" not in _comment_safe('func x"); system("id"); //\nuprobe:/bin/sh:main {')


# --args naming results: the RET probes read them where the ABI leaves them (by hand: Go 1.22's
# register ABI puts List's results in AX, BX, CX / R0, R1, R2; main.Big, 12 words, is a stack
# result at SP+104 on amd64 (after the 96-byte b) and fills R0-R11 on arm64; Go 1.15 puts
# everything on the stack: List's results at SP+16, +24, +32).
RESULT_READS = [
    ("1.22", "amd64", "main.List", ["sum", "last.Name"],
     ['(int64)reg("ax")', 'reg("cx")', "*(uint64*)($r1 + 8)", "*(int64*)($r1 + 16)", "$r2"]),
    ("1.22", "arm64", "main.List", ["sum", "len(last.Name)"],
     ['(int64)reg("r0")', 'reg("r2")', "*(int64*)($r1 + 16)"]),
    ("1.22", "amd64", "main.StructBig", ["r0.J"], ['*(int64*)(reg("sp") + 176)']),  # J at +72
    ("1.22", "arm64", "main.StructBig", ["~r0.J"], ['(int64)reg("r9")']),  # the 10th word
    ("1.15", "amd64", "main.List", ["sum", "(*last).Val"],
     ['*(int64*)(reg("sp") + 16)', '*(uint64*)(reg("sp") + 32)', "*(int64*)($r1)"]),
]


@pytest.mark.matrix
@pytest.mark.parametrize("go, arch, func, exprs, reads", RESULT_READS,
                         ids=[f"go{g}-{a}-{f}" for g, a, f, _, _ in RESULT_READS])
def test_result_selection_reads_where_the_abi_leaves_results(go, arch, func, exprs, reads):
    path = FIXTURES / f"go{go}" / arch / "default" / "shapes"
    require_file(path, "fixture binary")
    with GoProgram(path) as prog:
        program = generate(prog, [prog.function(func)], Dialect((0, 27, 1)), ProbeOptions(ret=True, args=exprs))
    call, ret = program.probes
    assert call.kind == "call" and call.values == [] and call.reads == []  # no argument was selected
    assert ret.kind == "ret" and [v.name for v in ret.values] == exprs
    assert [r.expr for r in ret.reads] == reads
    # every RET site's block does the first read (and its guards), and only the RET blocks do
    first = f"$r0 = {ret.reads[0].expr};" if ret.reads[0].kind != "hex" else f"$r0 = (uint64)({ret.reads[0].expr});"
    assert program.text.count(first) == len(ret.ret_sites) >= 1


@pytest.mark.matrix
def test_results_all_printed_unless_one_is_selected():
    """An --args list naming no result leaves the return event as it is: every result."""
    path = FIXTURES / "go1.22" / "amd64" / "default" / "shapes"
    require_file(path, "fixture binary")
    with GoProgram(path) as prog:
        fns = [prog.function("main.List"), prog.function("main.Pointers")]
        program = generate(prog, fns, Dialect((0, 27, 1)), ProbeOptions(ret=True, args=["head.Val", "*n"]))
        mixed = generate(prog, fns, Dialect((0, 27, 1)), ProbeOptions(ret=True, args=["head.Val", "sum"]))
    names = {(p.function.name, p.kind): [v.name for v in p.values] for p in program.probes}
    assert names == {("main.List", "call"): ["head.Val"], ("main.List", "ret"): ["sum", "count", "last"],
                     ("main.Pointers", "call"): ["*n"], ("main.Pointers", "ret"): ["r0"]}
    names = {(p.function.name, p.kind): [v.name for v in p.values] for p in mixed.probes}
    assert names == {("main.List", "call"): ["head.Val"], ("main.List", "ret"): ["sum"],
                     ("main.Pointers", "call"): [], ("main.Pointers", "ret"): []}


def test_readable_variables_never_take_the_programs_own_names():
    """A Go parameter named g (gofmt's go/printer.(*printer).setComment(g *ast.CommentGroup)) was
    given the variable $g, which the program already uses for the goroutine pointer: bpftrace
    refused the whole program (type mismatch for $g)."""
    from dwarfgo.cheaders import CHeaderWriter
    from dwarfgo.emit.dialect import Dialect
    from dwarfgo.emit.readable import ReadableBuilder

    b = ReadableBuilder(CHeaderWriter(ptr_size=8), Dialect((0, 17, 0)), depth=1, max_str=64)
    taken = {b.var(name) for name in ("g", "goid", "t0", "n", "seq", "r3", "dgf_x")}
    assert not taken & {"$g", "$goid", "$t0", "$n", "$seq", "$r3", "$dgf_x"}, taken
    assert b.var("entry") == "$entry"


@pytest.mark.matrix
def test_string_copies_on_bpftrace_017_longer_than_its_default():
    """bpftrace 0.17 copies BPFTRACE_STRLEN bytes (64 unless set) whatever the program asks: --max-str
    100 showed 64 bytes. The readable program says to set it; the raw program (trace) cannot hold
    longer copies on the 512-byte stack, so it copies 64 and says so."""
    binary = FIXTURES / "go1.27" / "amd64" / "default" / "shapes"
    require_file(binary, "fixture binary")
    with GoProgram(binary) as prog:
        _check_copies(prog, prog.probe_function("main.Strings"))


def _check_copies(prog, fn) -> None:
    from dwarfgo.emit.readable import generate_readable

    old = Dialect((0, 17, 0))
    readable = generate_readable(prog, [fn], old, ProbeOptions(max_str=100))
    assert readable.run_env.get("BPFTRACE_STRLEN") == "100"
    assert "// Run: sudo BPFTRACE_STRLEN=100 " in readable.text
    raw = generate(prog, [fn], old, ProbeOptions(max_str=100))
    assert "BPFTRACE_STRLEN" not in raw.run_env
    assert any("copies at most 64 bytes" in w for w in raw.warnings), raw.warnings
    assert not generate(prog, [fn], old, ProbeOptions(max_str=64)).warnings
    new = Dialect((0, 27, 0))
    assert "BPFTRACE_STRLEN" not in generate_readable(prog, [fn], new, ProbeOptions(max_str=100)).text
    assert not generate(prog, [fn], new, ProbeOptions(max_str=100)).warnings


@pytest.mark.matrix
def test_a_short_max_str_on_bpftrace_027_keeps_room_for_its_library():
    """bpftrace 0.27 refuses a program whose max_strlen is under 61 when it deletes a map entry
    (its library's delete() holds a 61-byte message; measured with `--mode codegen`): the config
    block keeps 68, the raw program still clamps each copy to --max-str, and the readable one
    (which has no clamp of its own) says it shows up to 64 bytes. 0.23 keeps max_str + 4."""
    binary = FIXTURES / "go1.27" / "amd64" / "default" / "shapes"
    require_file(binary, "fixture binary")
    from dwarfgo.emit.readable import generate_readable

    with GoProgram(binary) as prog:
        fn = prog.probe_function("main.Strings")
        new, old = Dialect((0, 27, 1)), Dialect((0, 23, 5))
        raw = generate(prog, [fn], new, ProbeOptions(max_str=8, ret=True))
        assert "\tmax_strlen = 68\n" in raw.text
        assert re.search(r"buf\(\$r\d+, \(\$r\d+ > 8 \? 8 :", raw.text), raw.text
        readable = generate_readable(prog, [fn], new, ProbeOptions(max_str=8, ret=True))
        assert "\tmax_strlen = 68\n" in readable.text
        assert "strings print their first 64 bytes" in readable.text
        assert any(w.startswith("--max-str 8: bpftrace 0.27.1's own library needs room for 64 bytes")
                   for w in readable.warnings), readable.warnings
        for program in (generate(prog, [fn], old, ProbeOptions(max_str=8, ret=True)),
                        generate_readable(prog, [fn], old, ProbeOptions(max_str=8, ret=True))):
            assert "\tmax_strlen = 12\n" in program.text
            assert not program.warnings
        assert not generate_readable(prog, [fn], new, ProbeOptions(max_str=100)).warnings
