"""`dwarfgo probe` and `dwarfgo trace` of a function that has no signature without DWARF, only its
argument words (issue 13): each word prints in hex as an untyped word, read only where its place
is certain. The expected words come from the fixture's Go source (fixtures/shapes/funcs.go: the
parameter types, in order) and the fixture's own report (-report: the values), never from dwarfgo.

Word names: with a traceback record (Go 1.18+) argN is the N-th argument and argN_M its M-th word
(a string is two words, pointer then length); without one (Go 1.15, stack ABI) areaK is the K-th
8-byte word of the argument area on the stack, arguments laid out by Go's ABI0 (each at the next
multiple of its size), then the results."""

from __future__ import annotations

import pytest

from test_stripped import VERSIONS, _run_cli, built

# (name, Go type) of each parameter, as fixtures/shapes/funcs.go declares them
SOURCE = {
    "main.Strings": [("s", "string"), ("t", "string")],
    "main.Many": [(f"a{i}", "int") for i in range(1, 9)] + [("s", "string"), ("a10", "int")],
    "main.Signed": [("a", "int8"), ("b", "int16"), ("c", "int32"), ("d", "int64"), ("e", "int")],
    "main.Unsigned": [("a", "uint8"), ("b", "uint16"), ("c", "uint32"), ("d", "uint64"), ("e", "uint"),
                      ("f", "uintptr")],
    "main.Pointers": [("p", "pointer"), ("pp", "pointer"), ("n", "pointer"), ("s", "pointer")],
    "main.Unsafe": [("p", "pointer"), ("u", "uintptr")],
    "main.List": [("head", "pointer")],
}
SIZES = {"int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "int32": 4, "uint32": 4}


def _int(v) -> int:
    return int(v)  # the report writes 64-bit values beyond 2^53 as strings


def expected_words(func: str, args: dict, area: bool) -> dict[str, tuple[int | None, int]]:
    """word name -> (value, mask of the bytes that are known) for one reported call. A string
    contributes its length only (its pointer is not in the report); a pointer the report shows as
    null is 0, any other (value None) is not 0."""
    out: dict[str, tuple[int, int]] = {}
    if not area:
        words = 0
        for i, (name, typ) in enumerate(SOURCE[func]):
            v = args[name]
            words += 2 if typ == "string" else 1
            if words > 10:
                break  # the runtime's traceback record keeps the first 10 words (Go's abi.TraceArgsLimit)
            if typ == "string":
                out[f"arg{i}_1"] = (len(v.encode()), (1 << 64) - 1)
            elif typ == "pointer":
                out[f"arg{i}"] = (0 if v is None else None, (1 << 64) - 1)
            else:
                size = SIZES.get(typ, 8)
                out[f"arg{i}"] = (_int(v) & ((1 << (8 * size)) - 1), (1 << (8 * size)) - 1)
        return out
    offset = 0
    for name, typ in SOURCE[func]:
        v = args[name]
        size = SIZES.get(typ, 8)
        offset = (offset + size - 1) // size * size  # ABI0: each value at the next multiple of its alignment
        if typ == "string":
            out[f"area{offset // 8 + 1}"] = (len(v.encode()), (1 << 64) - 1)
            offset += 16
            continue
        if typ == "pointer":
            out[f"area{offset // 8}"] = (0 if v is None else None, (1 << 64) - 1)
            offset += 8
            continue
        word, shift = f"area{offset // 8}", 8 * (offset % 8)
        value, mask = out.get(word, (0, 0))
        field = (1 << (8 * size)) - 1
        out[word] = (value | ((_int(v) & field) << shift), mask | (field << shift))
        offset += size
    return out


def test_probe_of_a_plain_function_prints_untyped_words():
    if "1.27" not in VERSIONS:
        pytest.skip("Go 1.27 not in the matrix")
    stripped = built("1.27", "stripped")
    # func Strings(s string, t string): two values of two words each, in AX BX / CX DI (ABIInternal)
    r = _run_cli("probe", stripped, "main.Strings", "--format", "raw", "--bpftrace-version", "0.27")
    assert r.returncode == 0, r.stderr
    assert "main.Strings: no signature without DWARF (not a method in the runtime type tables); untyped " \
           "argument words printed in hex (source: traceback layout" in r.stderr
    header = next(l for l in r.stdout.splitlines() if l.startswith("// 0x") and "Strings" in l)
    assert header.endswith("main.Strings(arg0_0 8B, arg0_1 8B, arg1_0 8B, arg1_1 8B): untyped argument words, "
                           "not a signature  (source: traceback layout; untyped words in hex, not a signature)")
    for reg in ("ax", "bx", "cx", "di"):
        assert f'reg("{reg}")' in r.stdout
    r = _run_cli("probe", stripped, "main.Strings", "--bpftrace-version", "0.27")
    assert r.returncode == 0, r.stderr
    assert "//   arg0_1     untyped 8-byte word      BX" in r.stdout and "arg1_1=0x%lx" in r.stdout
    assert "exact Go layouts" not in r.stdout
    # a leaf without a stack check, func Signed(a int8, b int16, c int32, d int64, e int): a and b are
    # integers by their sizes (no float has 1 or 2 bytes), so Go's first two integer registers; c may
    # be a float32 as far as the binary says, so it and every word after it are unavailable
    r = _run_cli("probe", stripped, "main.Signed", "--bpftrace-version", "0.27")
    assert r.returncode == 0, r.stderr
    assert '(uint64)((uint8)reg("ax")), (uint64)((uint16)reg("bx"))' in r.stdout, r.stdout
    assert "arg2=<unavailable: place unknown: no morestack spills, and a 4-byte word not marked a pointer" in r.stdout
    assert 'reg("cx")' not in r.stdout and "*(uint" not in r.stdout, r.stdout
    # no words at all: one line
    for go, func, why in (("1.27", "main.NoArgs", "no traceback record"), ("1.15", "main.NoArgs", "0 bytes")):
        if go not in VERSIONS:
            continue
        r = _run_cli("probe", built(go, "stripped"), func, "--bpftrace-version", "0.27")
        assert r.returncode == 1 and why in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr


def test_go115_words_are_the_argument_area():
    if "1.15" not in VERSIONS:
        pytest.skip("Go 1.15 not in the matrix")
    # func Strings(s, t string) (joined string, n int): 7 words of arguments then results (ABI0)
    r = _run_cli("probe", built("1.15", "stripped"), "main.Strings", "--format", "raw", "--bpftrace-version", "0.27")
    assert r.returncode == 0, r.stderr
    assert "56-byte argument area" in r.stderr and "source: function table argument area" in r.stderr
    assert set(range(8, 64, 8)) <= _stack_words_read(r.stdout), r.stdout
    assert "reg(\"sp\") + 64" not in r.stdout


def test_arm64_words_are_in_go_registers():
    """arm64 (cross-built, static only): Go's register ABI there has 16 integer registers, so
    Many's string (the 9th argument) is in R8 R9, not on the stack as on amd64 (9 registers)."""
    if "1.27" not in VERSIONS:
        pytest.skip("Go 1.27 not in the matrix")
    r = _run_cli("probe", built("1.27", "stripped", arch="arm64"), "main.Strings", "main.Many", "--format", "raw",
                 "--bpftrace-version", "0.27")
    assert r.returncode == 0, r.stderr
    strings, many = r.stdout.split("uprobe:")[1:3]
    assert all(f'reg("r{i}")' in strings for i in range(4)), strings
    assert all(f'reg("r{i}")' in many for i in range(10)) and 'reg("sp")' not in many, many


# (Go, bpftrace, variant): the stripped build needs bpftrace 0.23+ (no symbol table to attach by);
# 0.17 probes the `-w` build, which keeps its symbol table but has no DWARF either; pie-stripped is
# the PIE build stripped here
LIVE = [("1.27", "newest", "stripped"), ("1.21", "newest", "stripped"), ("1.15", "newest", "stripped"),
        ("1.27", "0.17", "nodwarf"), ("1.15", "0.17", "nodwarf"), ("1.27", "newest", "pie-stripped")]


def _pie_stripped(go: str, out):
    """The fixture's PIE build with its symbol table and DWARF stripped by strip(1), as many
    production binaries ship (building -buildmode=pie -ldflags='-s -w' here costs a minute of CI)."""
    import subprocess

    subprocess.run(["strip", "-o", str(out), str(built(go, "pie"))], check=True, capture_output=True, timeout=60)
    sections = subprocess.run(["readelf", "-SW", str(out)], capture_output=True, text=True, check=True).stdout
    assert ".symtab" not in sections and ".debug_info" not in sections and "DYN" in subprocess.run(
        ["readelf", "-hW", str(out)], capture_output=True, text=True, check=True).stdout
    return out


@pytest.mark.live
@pytest.mark.parametrize("go, bt, variant", LIVE)
def test_trace_untyped_words_equal_the_report(go, bt, variant, tmp_path):
    """`dwarfgo trace` with neither DWARF nor twin on functions with only argument words: every word
    read equals the fixture's reported value at its place (masked to the bytes the source says it
    holds); every word not read is unavailable with a reason; each call gives one event."""
    from test_live import _live_preconditions, installed_bpftrace, trace_fixture

    if go not in VERSIONS:
        pytest.skip(f"Go {go} not in the matrix")
    binary = _pie_stripped(go, tmp_path / "shapes") if variant == "pie-stripped" else built(go, variant)
    _live_preconditions(binary)
    version, path = installed_bpftrace(bt)
    funcs = list(SOURCE)
    report, events, errors, rc = trace_fixture(binary, funcs, path, False)
    assert rc == 0, "\n".join(errors[-20:])
    area = go == "1.15"
    source = "function table argument area" if area else "traceback layout"
    assert all(any(f"{f}: no signature without DWARF" in e and source in e for e in errors) for f in funcs), \
        "\n".join(errors[:10])
    checked = unavailable = 0
    wrong = []
    for func in funcs:
        calls = [r for r in report if r["func"] == func]
        seen = [e for e in events if e.get("event") == "call" and e.get("func") == func]
        assert len(calls) == len(seen) and calls, (func, len(calls), len(seen))
        for call, event in zip(calls, seen):
            args = event["args"]
            for word, (value, mask) in expected_words(func, call["args"], area).items():
                got = args.get(word)
                if isinstance(got, dict) and "unavailable" in got:
                    assert got["unavailable"].strip(), (func, word, got)
                    unavailable += 1
                    continue
                assert isinstance(got, int), (func, word, got, args)
                checked += 1
                if (got == 0) if value is None else (got & mask != value):
                    wrong.append(f"{func} seq {call['seq']} {word}: {got:#x} & {mask:#x}, want {value:#x}")
    assert not wrong, "\n".join(wrong[:30])
    # the goroutine id, at runtime.g's goid offset from g's type descriptor: the fixture calls them
    # all from its main goroutine, which the Go runtime numbers 1
    assert {e.get("goroutine") for e in events if e.get("event") == "call"} == {1}
    # Strings and Many spill their register arguments in the morestack tail: placed on every version
    assert checked >= 4 * 2 + 9, (checked, unavailable)
    print(f"go{go} {variant}, bpftrace {version}: {checked} words exact, {unavailable} unavailable")


def _stack_words_read(program: str) -> set[int]:
    """The offsets from the stack pointer of the 8-byte words a raw program reads: one read a word
    (`*(uint64*)(reg("sp") + 8)`), or on bpftrace 0.23+ consecutive words at once into a struct
    of N words (`*(struct dg_wN *)(reg("sp") + 8)`)."""
    import re
    words = {int(m) for m in re.findall(r'\*\(uint64\*\)\(reg\("sp"\) \+ (\d+)\)', program)}
    for n, at in re.findall(r'\*\(struct dg_w(\d+) \*\)\(reg\("sp"\) \+ (\d+)\)', program):
        words |= {int(at) + 8 * k for k in range(int(n))}
    return words
