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
