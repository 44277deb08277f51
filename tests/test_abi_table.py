"""Entry locations, against a table worked out by hand from the Go source with the ABI rules
(abi-internal.md): amd64 ABIInternal (int AX BX CX DI SI R8 R9 R10 R11, float X0-X14),
arm64 ABIInternal (R0-R15, F0-F15), and ABI0 (everything on the stack from SP+8).
Each piece is a register or `SP+offset` at entry, in leaf order. The machine code is the
second witness: wherever a morestack spill sequence exists it must agree.
"""

from __future__ import annotations

import pytest

from conftest import FIXTURES, go_versions, require_file
from dwarfgo.abi.assign import RegisterPiece
from dwarfgo.program import GoProgram
from dwarfgo.verify.evidence import gather, layout_for

# func -> {value: [pieces]} per convention. Results use the names dwarfgo displays (r0... for unnamed).
AMD64_REGABI = {
    "main.Many": {"a1": ["AX"], "a8": ["R10"], "s": ["SP+8", "SP+16"], "a10": ["R11"],
                  "r1": ["AX"], "r2": ["BX", "CX"]},
    "main.Twelve": {"a1": ["AX"], "a9": ["R11"], "a10": ["SP+8"], "a11": ["SP+16"], "a12": ["SP+24"], "r0": ["AX"]},
    "main.MixedArgs": {"a": ["AX"], "b": ["X0"], "c": ["BX"], "d": ["X1"], "e": ["CX"], "f": ["X2"], "g": ["DI"],
                       "r0": ["X0"], "r1": ["AX"]},
    "main.Strings": {"s": ["AX", "BX"], "t": ["CX", "DI"], "joined": ["AX", "BX"], "n": ["CX"]},
    "main.StructBig": {"b": [f"SP+{8 + 8 * i}" for i in range(12)], "tag": ["AX"],
                       "r0": [f"SP+{104 + 8 * i}" for i in range(12)]},
    "main.Complexes": {"a": ["X0", "X1"], "b": ["X2", "X3"], "r0": ["X0", "X1"], "r1": ["X2", "X3"]},
    "main.Arrays": {"a0": [], "a1": ["AX", "BX"], "a3": ["SP+8", "SP+12", "SP+16"], "r0": ["SP+24", "SP+32"]},
    "main.Signed": {"a": ["AX"], "b": ["BX"], "c": ["CX"], "d": ["DI"], "e": ["SI"],
                    "r0": ["AX"], "r1": ["BX"], "r2": ["CX"], "r3": ["DI"], "r4": ["SI"]},
    "main.ManyFloats": {"f1": ["X0"], "f15": ["X14"], "f16": ["SP+8"], "f17": ["SP+16"], "r0": ["X0"]},
}

ARM64_REGABI = {
    "main.Many": {"a1": ["R0"], "a8": ["R7"], "s": ["R8", "R9"], "a10": ["R10"], "r1": ["R0"], "r2": ["R1", "R2"]},
    "main.Twelve": {"a1": ["R0"], "a12": ["R11"], "r0": ["R0"]},
    "main.MixedArgs": {"a": ["R0"], "b": ["F0"], "c": ["R1"], "d": ["F1"], "e": ["R2"], "f": ["F2"], "g": ["R3"],
                       "r0": ["F0"], "r1": ["R0"]},
    "main.Strings": {"s": ["R0", "R1"], "t": ["R2", "R3"], "joined": ["R0", "R1"], "n": ["R2"]},
    "main.StructBig": {"b": [f"R{i}" for i in range(12)], "tag": ["R12"], "r0": [f"R{i}" for i in range(12)]},
    "main.Complexes": {"a": ["F0", "F1"], "b": ["F2", "F3"], "r0": ["F0", "F1"], "r1": ["F2", "F3"]},
    "main.Arrays": {"a0": [], "a1": ["R0", "R1"], "a3": ["SP+8", "SP+12", "SP+16"], "r0": ["SP+24", "SP+32"]},
    "main.ManyFloats": {"f1": ["F0"], "f16": ["F15"], "f17": ["SP+8"], "r0": ["F0"]},
}

ABI0 = {
    "main.Many": {"a1": ["SP+8"], "a8": ["SP+64"], "s": ["SP+72", "SP+80"], "a10": ["SP+88"],
                  "r1": ["SP+96"], "r2": ["SP+104", "SP+112"]},
    "main.Twelve": {"a1": ["SP+8"], "a12": ["SP+96"], "r0": ["SP+104"]},
    "main.MixedArgs": {"a": ["SP+8"], "b": ["SP+16"], "c": ["SP+24"], "d": ["SP+28"], "e": ["SP+32"],
                       "f": ["SP+40"], "g": ["SP+48"], "r0": ["SP+56"], "r1": ["SP+64"]},
    "main.Strings": {"s": ["SP+8", "SP+16"], "t": ["SP+24", "SP+32"], "joined": ["SP+40", "SP+48"], "n": ["SP+56"]},
    "main.StructBig": {"b": [f"SP+{8 + 8 * i}" for i in range(12)], "tag": ["SP+104"],
                       "r0": [f"SP+{112 + 8 * i}" for i in range(12)]},
    "main.Complexes": {"a": ["SP+8", "SP+12"], "b": ["SP+16", "SP+24"], "r0": ["SP+32", "SP+40"],
                       "r1": ["SP+48", "SP+52"]},
    "main.Arrays": {"a0": [], "a1": ["SP+8", "SP+16"], "a3": ["SP+24", "SP+28", "SP+32"], "r0": ["SP+40", "SP+48"]},
    "main.Signed": {"a": ["SP+8"], "b": ["SP+10"], "c": ["SP+12"], "d": ["SP+16"], "e": ["SP+24"],
                    "r0": ["SP+32"], "r1": ["SP+34"], "r2": ["SP+36"], "r3": ["SP+40"], "r4": ["SP+48"]},
}


def _cases():
    out = []
    for v in go_versions() or ["1.15", "1.22"]:
        for arch in ("amd64", "arm64"):
            regabi = (arch == "amd64" and v != "1.15") or (arch == "arm64" and v not in ("1.15",))
            table = (AMD64_REGABI if arch == "amd64" else ARM64_REGABI) if regabi else ABI0
            out.append((v, arch, "ABIInternal" if regabi else "ABI0", table))
    return out


def _pieces(loc) -> list[str]:
    return [p.register if isinstance(p, RegisterPiece) else f"SP+{p.offset}" for p in loc.pieces]


@pytest.mark.matrix
@pytest.mark.parametrize("go, arch, abi, table", _cases(), ids=lambda c: c if isinstance(c, str) else "")
def test_locations_match_hand_table(go, arch, abi, table):
    path = FIXTURES / f"go{go}" / arch / "default" / "shapes"
    require_file(path, "fixture binary")
    with GoProgram(path) as prog:
        problems = hand_table_problems(prog, table, abi)
        for func in table:
            ev = gather(prog, prog.function(func))
            assert not ev.contradictions, f"{func}: {ev.contradictions}"
    assert not problems, "\n".join(problems)


def hand_table_problems(prog, table: dict, abi: str) -> list[str]:
    """Where the computed locations differ from a hand table {func: {value: [pieces]}}; every
    function must be in `abi` with known locations."""
    problems = []
    for func, expected in table.items():
        fn = prog.function(func)
        layout = layout_for(prog, fn)
        assert layout.abi == abi, f"{func}: {layout.abi}"
        assert layout.unknown is None, f"{func}: {layout.unknown}"
        names = fn.display_names()
        got = {names[id(loc.param)]: _pieces(loc) for loc in layout.inputs + layout.results}
        for name, want in expected.items():
            if got.get(name) != want:
                problems.append(f"{func} {name}: computed {got.get(name)}, by hand {want}")
    return problems


@pytest.mark.matrix
def test_spills_witness_the_register_assignment():
    """Across the matrix, every function whose prologue has a morestack tail spills exactly the
    registers the computed assignment gives, at the computed offsets and widths."""
    checked = 0
    for v in go_versions():
        for arch in ("amd64", "arm64"):
            path = FIXTURES / f"go{v}" / arch / "default" / "shapes"
            require_file(path, "fixture binary")
            with GoProgram(path) as prog:
                for fn in prog.matching("main.*"):
                    ev = gather(prog, fn)
                    if ev.spills is not None and ev.spills.agrees is not None and not ev.layout.unknown:
                        assert ev.spills.agrees, f"go{v} {arch} {fn.name}: {ev.spills.detail}"
                        checked += 1
    assert checked > 300, checked


@pytest.mark.matrix
@pytest.mark.parametrize("go", go_versions() or ["1.22"])
@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_missing_receiver_recovered_from_the_symbol(go, arch):
    """Before Go 1.22 the compiler-generated wrapper main.(*Pair).String (for the value method
    Pair.String) has no receiver DIE. The receiver is put back from the symbol's `(*Pair)`; by
    hand: ABI0 receiver SP+8, result SP+16 SP+24; amd64 AX, AX BX; arm64 R0, R0 R1. The runtime's
    argument-area size must then agree (the layout is not unknown)."""
    path = FIXTURES / f"go{go}" / arch / "default" / "shapes"
    require_file(path, "fixture binary")
    with GoProgram(path) as prog:
        fn = prog.function("main.(*Pair).String")
        assert fn.receiver is not None and fn.receiver.type.name == "*main.Pair"
        layout = layout_for(prog, fn)
        assert layout.unknown is None, layout.unknown
        got = [_pieces(loc) for loc in layout.inputs + layout.results]
    want = {"ABI0": [["SP+8"], ["SP+16", "SP+24"]], "amd64": [["AX"], ["AX", "BX"]],
            "arm64": [["R0"], ["R0", "R1"]]}["ABI0" if layout.abi == "ABI0" else arch]
    assert got == want


@pytest.mark.parametrize("go", [v for v in ("1.19", "1.27") if v in (go_versions() or ["1.27"])])
def test_whole_binary_has_no_contradiction(go):
    """`abi '*'` exits 0 on a plain Go binary: the runtime's assembly that keeps a bare name
    (debugCall256 …, in a unit whose producer says regabi) is ABI0, not a contradiction."""
    import subprocess
    import sys

    binary = FIXTURES / f"go{go}" / "amd64" / "default" / "shapes"
    require_file(binary, "fixture binary")
    proc = subprocess.run([sys.executable, "-m", "dwarfgo", "abi", str(binary), "*"], capture_output=True,
                          text=True, timeout=600)
    assert "CONTRADICTION" not in proc.stdout
    assert proc.returncode == 0, proc.stderr
    bare = [line for line in proc.stdout.splitlines() if line.startswith("debugCall256 at ")]
    assert bare and "ABI0, assembly (a name with no package)" in bare[0]


def test_bare_assembly_names_are_abi0():
    from dwarfgo.binary import Symbol

    assert Symbol("debugCall256", 0x1000, 64).is_abi0
    assert Symbol("runtime.memmove.abi0", 0x1000, 64).is_abi0
    assert Symbol("runtime.memmove.abi0", 0x1000, 64).go_name == "runtime.memmove"
    assert not Symbol("main.main", 0x1000, 64).is_abi0
    assert Symbol("debugCall256", 0x1000, 64).go_name == "debugCall256"
