"""ppc64le, riscv64, loong64 and s390x: the register tables and stack layouts, checked statically
against cross-compiled builds of the shapes fixture (this machine cannot run them).

Three witnesses that do not come from dwarfgo's tables:
* when each port switched to the register ABI (written here by hand from the Go release
  notes) against the compiler's own `regabi` flag in each compile unit's producer;
* a table worked out by hand from the ABI rules (abi-internal.md) for the Go source;
* Go's DWARF entry locations for every function of the fixture: no disagreement that is not a
  known Go DWARF defect.
"""

from __future__ import annotations

import pytest

from conftest import FIXTURES, go_versions, require_file
from dwarfgo.program import GoProgram
from test_abi_table import hand_table_problems
from dwarfgo.verify.evidence import gather, layout_for

CROSS_VERSIONS = ("1.15", "1.21", "1.22", "1.25", "1.26", "1.27")  # as scripts/build-fixtures
REGABI_SINCE = {"ppc64le": (1, 18), "riscv64": (1, 19), "loong64": (1, 22), "s390x": (1, 26)}

# By hand. Integer registers in order: ppc64le R3-R10 R14-R17; riscv64 X10-X17 X8 X9 X18-X23;
# loong64 R4-R19; s390x R2-R9. Floats: ppc64le F1-F12; riscv64 F10-F17 F8 F9 F18-F23; loong64
# and s390x F0-F15. Stack arguments at entry from SP+32 on ppc64le (fixed frame), else SP+8.
REGABI = {
    "ppc64le": {
        "main.Twelve": {"a1": ["R3"], "a8": ["R10"], "a9": ["R14"], "a12": ["R17"], "r0": ["R3"]},
        "main.Strings": {"s": ["R3", "R4"], "t": ["R5", "R6"], "joined": ["R3", "R4"], "n": ["R5"]},
        "main.MixedArgs": {"a": ["R3"], "b": ["F1"], "c": ["R4"], "d": ["F2"], "e": ["R5"], "f": ["F3"], "g": ["R6"],
                           "r0": ["F1"], "r1": ["R3"]},
        "main.ManyFloats": {"f1": ["F1"], "f12": ["F12"], "f13": ["SP+32"], "f17": ["SP+64"], "r0": ["F1"]},
    },
    "riscv64": {
        "main.Twelve": {"a1": ["X10"], "a8": ["X17"], "a9": ["X8"], "a10": ["X9"], "a11": ["X18"], "a12": ["X19"],
                        "r0": ["X10"]},
        "main.Strings": {"s": ["X10", "X11"], "t": ["X12", "X13"], "joined": ["X10", "X11"], "n": ["X12"]},
        "main.MixedArgs": {"a": ["X10"], "b": ["F10"], "c": ["X11"], "d": ["F11"], "e": ["X12"], "f": ["F12"],
                           "g": ["X13"], "r0": ["F10"], "r1": ["X10"]},
        "main.ManyFloats": {"f1": ["F10"], "f9": ["F8"], "f10": ["F9"], "f16": ["F23"], "f17": ["SP+8"],
                            "r0": ["F10"]},
    },
    "loong64": {
        "main.Twelve": {"a1": ["R4"], "a12": ["R15"], "r0": ["R4"]},
        "main.Strings": {"s": ["R4", "R5"], "t": ["R6", "R7"], "joined": ["R4", "R5"], "n": ["R6"]},
        "main.MixedArgs": {"a": ["R4"], "b": ["F0"], "c": ["R5"], "d": ["F1"], "e": ["R6"], "f": ["F2"], "g": ["R7"],
                           "r0": ["F0"], "r1": ["R4"]},
        "main.ManyFloats": {"f1": ["F0"], "f16": ["F15"], "f17": ["SP+8"], "r0": ["F0"]},
    },
    "s390x": {
        "main.Twelve": {"a1": ["R2"], "a8": ["R9"], "a9": ["SP+8"], "a12": ["SP+32"], "r0": ["R2"]},
        "main.Strings": {"s": ["R2", "R3"], "t": ["R4", "R5"], "joined": ["R2", "R3"], "n": ["R4"]},
        "main.MixedArgs": {"a": ["R2"], "b": ["F0"], "c": ["R3"], "d": ["F1"], "e": ["R4"], "f": ["F2"], "g": ["R5"],
                           "r0": ["F0"], "r1": ["R2"]},
        "main.ManyFloats": {"f1": ["F0"], "f16": ["F15"], "f17": ["SP+8"], "r0": ["F0"]},
    },
}


def _abi0(base: int) -> dict:
    """Everything on the stack, in order, each value aligned to its own alignment, results after
    the arguments rounded up to the pointer size (the same rules as amd64 ABI0, from `base`)."""
    at = lambda off: f"SP+{base + off}"  # noqa: E731
    return {
        "main.Twelve": {"a1": [at(0)], "a12": [at(88)], "r0": [at(96)]},
        "main.Strings": {"s": [at(0), at(8)], "t": [at(16), at(24)], "joined": [at(32), at(40)], "n": [at(48)]},
        "main.Signed": {"a": [at(0)], "b": [at(2)], "c": [at(4)], "d": [at(8)], "e": [at(16)],
                        "r0": [at(24)], "r1": [at(26)], "r2": [at(28)], "r3": [at(32)], "r4": [at(40)]},
    }


def _builds():
    out = []
    for v in go_versions() or ["1.22"]:
        if v not in CROSS_VERSIONS:
            continue
        for arch in REGABI_SINCE:
            if arch == "loong64" and v == "1.15":
                continue  # no loong64 port before Go 1.19
            out.append((v, arch))
    return out


@pytest.mark.matrix
@pytest.mark.parametrize("go, arch", _builds(), ids=[f"go{v}-{a}" for v, a in _builds()])
def test_cross_arch_locations(go, arch):
    path = FIXTURES / f"go{go}" / arch / "default" / "shapes"
    require_file(path, "cross-compiled fixture")
    regabi = tuple(int(x) for x in go.split(".")) >= REGABI_SINCE[arch]
    table = REGABI[arch] if regabi else _abi0(32 if arch == "ppc64le" else 8)
    problems, agreeing = [], 0
    with GoProgram(path) as prog:
        assert prog.binary.arch == arch
        main_unit = next(u for u in prog.index.units if u.name == "main")
        assert main_unit.regabi == regabi, f"producer {main_unit.producer!r}"
        problems += hand_table_problems(prog, table, "ABIInternal" if regabi else "ABI0")
        for fn in prog.matching("main.*"):
            ev = gather(prog, fn, machine=False)
            for c in ev.dwarf.checks:
                if c.agrees is False and not c.known:
                    problems.append(f"{fn.name} {c.name}: DWARF disagrees: {c.detail}")
                agreeing += bool(c.agrees)
    assert not problems, "\n".join(problems)
    if (go, arch) == ("1.15", "ppc64le"):
        # Go 1.15 on ppc64le writes Pointers(p, pp, n, s)'s parameters as n, s, p, ~r4, pp: DWARF's
        # own stack offsets contradict that order, so no location may be trusted (never a wrong value)
        with GoProgram(path) as prog:
            assert "out of declaration order" in (layout_for(prog, prog.function("main.Pointers")).unknown or "")
    assert agreeing > 100, f"only {agreeing} values witnessed by DWARF"
