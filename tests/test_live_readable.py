"""Live: the readable program (`dwarfgo probe`'s default), run by bpftrace alone (dwarfgo not in the
loop), prints one line per call whose every value is what the fixture reports it passed (and
returned), with no warning from bpftrace.

The expected line of each call is built here from the fixture's own report (its JSON), by the
rules the program promises (README, emit/readable.py's docstring): integers in decimal
(uintptr in hex), bools `true`/`false` (bpftrace 0.17: 1/0), strings as `"bytes"(len N)` with
bpftrace's `%r` escaping of the first --max-str bytes, `&{...}` or `nil` for a followed pointer,
a hex address where only the address is printed (interfaces, maps, channels, funcs, pointers
past the depth), `<unavailable: reason>` where bpftrace cannot read a value (floats in
registers). Nothing of dwarfgo's decides what is expected.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import FIXTURES, go_versions
from livecompare import canonical_func
from test_live import _function_names, _live_preconditions, installed_bpftrace, private_copy, reported_calls

MAX_STR = 200  # bpftrace 0.17: 64, so that three strings fit its 512-byte stack (see _check)
MAX_ITEMS = 4
HEX = r"0x[0-9a-f]+"
UNAVAILABLE = r"<unavailable: [^<>]*>"
# what bpftrace prints about this machine, not about the program
ENVIRONMENT = ("couldn't set RLIMIT_MEMLOCK", "available_filter_functions", "failed to detach probe",
               "uprobe_events): No such file")


def escaped(data: bytes) -> str:
    """bpftrace's %r: printable ASCII as is, every other byte as \\xNN."""
    return "".join(chr(b) if 0x20 <= b <= 0x7E else f"\\x{b:02x}" for b in data)


def _int(v) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and re.fullmatch(r"-?\d+", v):
        return int(v)
    return None


def expected(v, bools: str, nested: bool = False) -> str:
    """A regular expression for how the readable program prints the reported value `v`."""
    if v is None:  # nil of any kind: pointer, slice, map, chan, func, interface, unsafe.Pointer
        return (rf"(?:nil|0x0|\{{(?:tab|type):0x0, data:0x0\}}|[^,=]*?\(0x0\)|unsafe\.Pointer\(0x0\)"
                r"|[^,=]*?\(len 0, cap 0\)(?: 0x0|\"\"))")
    if isinstance(v, bool):
        word = {True: ("true", "1"), False: ("false", "0")}[v][0 if bools == "words" else 1]
        return rf"&?{word}"
    n = _int(v)
    if n is not None:
        alts = [re.escape(str(n))]
        if n >= 0:
            alts.append(f"0x{n:x}")  # uintptr
        if isinstance(v, str):  # a decimal string: an integer beyond 2^53, or a string of digits
            data = v.encode()
            alts.append(rf'"{re.escape(escaped(data[:MAX_STR]))}"\(len {len(data)}\)')
        pat = "(?:" + "|".join(alts) + ")"
        return rf"(?:&?{pat}|{HEX})" if nested else rf"&?{pat}"
    if isinstance(v, str):
        if v == "<opaque>":
            return r".*?"
        data = v.encode()
        text = re.escape(escaped(data[:MAX_STR]))
        return rf'(?:&?"{text}"\(len {len(data)}\)|{HEX})'
    if isinstance(v, list):  # an array
        shown = [expected(x, bools, nested) for x in v[:MAX_ITEMS]]
        more = rf" \.\.\.{len(v) - MAX_ITEMS} more" if len(v) > MAX_ITEMS else ""
        return rf"(?:&?\[{' '.join(shown)}{more}\]|{HEX})"
    if isinstance(v, dict):
        keys = set(v)
        if keys == {"float", "bits"}:
            bits = int(v["bits"], 16)
            return rf"(?:&?math\.Float(?:32|64)frombits\(0x{bits:x}\)|{UNAVAILABLE}|{HEX})"
        if keys == {"real", "imag"}:
            return rf"(?:&?complex\({expected(v['real'], bools)}, {expected(v['imag'], bools)}\)|{HEX})"
        if keys == {"len", "cap", "items"}:
            items = v["items"]
            byte_data = ""
            if items and all(_int(i) is not None and 0 <= _int(i) <= 255 for i in items):
                byte_data = rf'|"{re.escape(escaped(bytes(_int(i) for i in items)[:MAX_STR]))}"'
            elif not items:
                byte_data = r'|""'
            return rf"(?:&?[^,=]*?\(len {v['len']}, cap {v['cap']}\)(?: {HEX}{byte_data})|&?{HEX})"
        if keys in ({"len"}, {"len", "cap"}, {"func"}):  # map, chan, func: the address
            return rf"(?:&?(?:map|chan|func|<-chan|chan<-).*?\({HEX}\)|{HEX})"
        if keys == {"unsafe.Pointer"}:
            return rf"unsafe\.Pointer\({HEX}\)"
        if keys == {"type", "value"}:  # a non-nil interface: its two words
            return rf"(?:&?\{{(?:tab|type):{HEX}, data:{HEX}\}}|{HEX})"
        fields = ", ".join(f"{re.escape(k)}:{expected(x, bools, True)}" for k, x in v.items())
        return rf"(?:&?\{{{fields}\}}|&?{HEX})"
    raise AssertionError(f"the fixture reported a value of no known form: {v!r}")


def _line_pattern(func: str, values: dict, bools: str, result: bool) -> re.Pattern:
    parts = ", ".join(f"{re.escape(k)}={expected(x, bools)}" for k, x in values.items())
    if result:
        head = rf"{re.escape(func)} returned \({parts}\)(?: in \d+ ns)?"
    else:
        head = rf"{re.escape(func)}\({parts}\)"
    return re.compile(head + r"  goroutine -?\d+ tid \d+")


def _run_readable(binary, funcs, version: str, path: str, ret: bool, tmp_path, extra=()):
    binary = private_copy(binary, tmp_path)  # bpftrace 0.17's -c does not filter by pid
    program = tmp_path / "readable.bt"
    gen = subprocess.run([sys.executable, "-m", "dwarfgo", "probe", str(binary), *funcs, "--bpftrace-version",
                          version, "--max-str", str(MAX_STR), "--max-items", str(MAX_ITEMS), "-o", str(program),
                          *(["--ret"] if ret else []), *extra], capture_output=True, text=True, timeout=600)
    assert gen.returncode == 0, gen.stderr
    text = program.read_text()
    assert "@dg " not in text  # not the raw program
    flags = re.search(r"^// Run: sudo (?:\S+=\S+ )*bpftrace (-k+) FILE", text, re.M)
    assert flags, "the program's header does not say how to run it"
    env_vars = dict(re.findall(r"(BPFTRACE_\w+)=(\S+)", text.split("\n", 3)[2]))
    import os
    run = subprocess.run([path, flags.group(1), str(program), "-c", f"{binary} -report"], capture_output=True,
                         text=True, timeout=600, env={**os.environ, **env_vars})
    return run


def _check(binary, version, path, ret, tmp_path, funcs=None, extra=(), keep=lambda call: True):
    """Run the readable program on `binary`; every reported call that `keep` accepts must have its
    line (and with `ret` its return's), and there must be no other line."""
    global MAX_STR
    MAX_STR = 64 if version == "0.17" else 200
    _live_preconditions(binary)
    report = reported_calls(binary)
    funcs = funcs or _function_names(report, binary)
    run = _run_readable(binary, funcs, version, path, ret, tmp_path, extra)
    assert run.returncode == 0, run.stderr[-3000:]
    warnings = [l for l in run.stderr.splitlines()
                if ("WARNING" in l or "ERROR" in l) and not any(e in l for e in ENVIRONMENT)
                and not (version == "0.17" and "Failed to map_lookup_elem" in l)]
    assert not warnings, "bpftrace warned:\n" + "\n".join(warnings[:20])
    ours = tuple(f + "(" for f in funcs) + tuple(f + " returned (" for f in funcs)
    lines = [l for l in run.stdout.splitlines() if l.startswith(ours)]
    # bpftrace 0.17 prints its own lines to stdout: "Attaching N probes...", and with -kk a warning
    # (with its source line and a caret line) at each goroutine's first lookup of the re-entry mark
    chatter = [l for l in run.stdout.splitlines() if l and not l.startswith(ours) and not l.startswith("{")
               and not l.startswith("Attaching ")]
    if version == "0.17":
        chatter = [l for l in chatter if "Failed to map_lookup_elem" not in l and "@dg_reenter" not in l
                   and not re.fullmatch(r"\s*~+", l)]
    assert not chatter, "unexpected output:\n" + "\n".join(chatter[:10])
    reported = [__import__("json").loads(l) for l in run.stdout.splitlines() if l.startswith("{")]
    assert len(reported) == len(report), "the fixture's report in the run differs from its plain run"
    wanted = {canonical_func(f) for f in funcs}
    reported = [r for r in reported if canonical_func(r["func"]) in wanted and keep(r)]
    bools = "words" if version != "0.17" else "digits"
    by_name = {canonical_func(f): f for f in funcs}
    problems, checked, unlocated = [], 0, 0
    for side in ("call", "ret") if ret else ("call",):
        pending = [l for l in lines if (" returned (" in l) == (side == "ret")]
        for i, r in enumerate(reported):
            func = by_name.get(canonical_func(r["func"]), r["func"])
            values = r["results"] if side == "ret" else r["args"]
            hit = None
            for line in (l for l in pending if l.startswith(func)):
                # the parameters in the order the line names them (Go 1.15's DWARF, which the
                # program follows, lists a zero-size parameter after the others)
                at = {k: line.find(f"{k}=") for k in values}
                ordered = dict(sorted(values.items(), key=lambda kv: at[kv[0]] if at[kv[0]] >= 0 else 1 << 30))
                if _line_pattern(func, ordered, bools, side == "ret").fullmatch(line):
                    hit = line
                    break
            if hit is None:  # dwarfgo says it cannot locate this function's values, and why
                whole = re.compile(re.escape(func) + (r" returned " if side == "ret" else "")
                                   + rf"\({UNAVAILABLE}\)(?: in \d+ ns)?  goroutine -?\d+ tid \d+")
                hit = next((l for l in pending if whole.fullmatch(l)), None)
                if hit is not None:
                    pending.remove(hit)
                    unlocated += 1
                    continue
            if hit is None:
                same = [l for l in pending if l.startswith(func + ("(" if side == "call" else " returned"))]
                problems.append(f"{side} #{i} {func} {values}: no line matches; lines of it:\n  " + "\n  ".join(same[:3]))
                continue
            pending.remove(hit)
            checked += 1
        assert not pending or problems, f"{len(pending)} {side} lines of no reported call:\n" + "\n".join(pending[:5])
    assert not problems, f"{len(problems)} calls not printed exactly:\n" + "\n".join(problems[:15])
    return checked


READABLE_MATRIX = [(v, "newest") for v in (go_versions() or ["1.22"])] + \
    [(v, "0.17") for v in (go_versions() or ["1.22"]) if v in ("1.15", "1.27")]


@pytest.mark.live
@pytest.mark.parametrize("go, bt", READABLE_MATRIX, ids=[f"go{v}-bpftrace{b}" for v, b in READABLE_MATRIX])
def test_readable_program_prints_the_values_passed(go, bt, tmp_path):
    """Every function of the fixture on the oldest and newest Go and on 1.19 (the first register-ABI
    version of the matrix); the versions between check half of them each, alternating halves, so
    that every function is checked on several register-ABI versions (CI time: attaching bpftrace to
    every RET of every function costs about 20 s a run)."""
    binary = FIXTURES / f"go{go}" / "amd64" / "default" / "shapes"
    version, path = installed_bpftrace(bt)
    ret = version != "0.17"
    versions = go_versions() or [go]
    funcs = None
    if go not in (versions[0], versions[-1], "1.19"):
        _live_preconditions(binary)
        every = _function_names(reported_calls(binary), binary)
        funcs = every[versions.index(go) % 2::2]
    checked = _check(binary, version, path, ret, tmp_path, funcs)
    assert checked >= (80 if funcs is None else 30), f"only {checked} lines compared"


@pytest.mark.live
@pytest.mark.parametrize("bt", ["0.17", "newest"])
def test_readable_program_demo(bt, tmp_path):
    """The README's function on the bundled demo binary."""
    binary = FIXTURES.parent.parent / "fixtures" / "bin" / "demo-go1.22-amd64"
    if not binary.exists():
        binary = FIXTURES / "go1.22" / "amd64" / "default" / "demo"
    version, path = installed_bpftrace(bt)
    _check(binary, version, path, version != "0.17", tmp_path)


@pytest.mark.live
@pytest.mark.parametrize("bt", ["0.17", "newest"])
def test_readable_program_filter(bt, tmp_path):
    """--filter in the readable program: exactly the calls whose reported key is "config" (a prefix
    of no other key, and "secret/db" vs "secret/api" share a prefix) are printed, with --ret only
    their returns."""
    binary = FIXTURES / "go1.27" / "amd64" / "default" / "demo"
    version, path = installed_bpftrace(bt)
    func = "main.(*BarrierView).Put"
    for key in ("config", "secret/api"):
        checked = _check(binary, version, path, version != "0.17", tmp_path, [func],
                         ["--filter", f'entry.Key == "{key}"'],
                         keep=lambda r, key=key: (r["args"].get("entry") or {}).get("Key") == key)
        assert checked >= 1


@pytest.mark.live
@pytest.mark.parametrize("bt", ["0.17", "newest"])
def test_readable_program_of_a_real_program_loads_and_prints_its_values(bt, tmp_path):
    """gofmt's printer: a receiver of ~50 fields with five strings, printed whole at depth 1. Its
    program once went over the verifier's million-instruction limit with -k on bpftrace 0.27
    (E2BIG: each string's length clamp tripled the paths), and over 0.17's 512-byte stack (only
    strings counted against its budget). writeCommentPrefix (two Positions, a comment, nine strings
    in all) still went over it with -k: bpftrace 0.23+'s buf() clamps by itself, and a clamp of the
    program's own doubled the verifier's states. Run as the header says, it loads; writeString
    prints each identifier of the formatted file, as gofmt wrote them, and writeCommentPrefix the
    file name (cut to --max-str, with its whole length) and the comment before it. On 0.17, whose
    record holds about 45 values, the receiver prints as its address (saying why) so that the
    strings after it keep their room. gofmt's parser init, whose receiver went over 0.17's stack,
    prints once."""
    from conftest import gofmt_binary, go_versions as versions

    gofmt, _ = gofmt_binary((versions() or ["1.27"])[-1])
    version, path = installed_bpftrace(bt)
    _live_preconditions(gofmt)
    gofmt = private_copy(gofmt, tmp_path)  # bpftrace 0.17's -c does not filter by pid
    source = tmp_path / "in.go"
    idents = ["zebra", "Quokka", "wombat", "narwhal"]
    comments = ["// first of the group", "// second, after it"]
    source.write_text(f"package {idents[0]}\n\n{comments[0]}\n{comments[1]}\n"
                      f"func {idents[1]}({idents[2]} int) int {{ return {idents[2]} + {idents[3]} }}\n")
    program = tmp_path / "gofmt.bt"
    probe = subprocess.run([sys.executable, "-m", "dwarfgo", "probe", str(gofmt), "go/printer.(*printer).print",
                            "go/printer.(*printer).writeString", "go/printer.(*printer).writeCommentPrefix",
                            "go/parser.(*parser).init", "--print-all-args", "--bpftrace", path],
                           capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0, probe.stderr
    program.write_text(probe.stdout)
    flag = "-k" if version != "0.17" else "-kk"
    run = subprocess.run([path, flag, "-c", f"{gofmt} {source}", str(program)], capture_output=True, text=True,
                         timeout=300, env={**__import__("os").environ, "BPFTRACE_MAP_KEYS_MAX": "65536"})
    out = run.stdout + run.stderr
    errors = [l for l in out.splitlines() if "ERROR" in l and not any(e in l for e in ENVIRONMENT)]
    assert run.returncode == 0 and not errors, out[-2000:]
    # 0.17: its record holds about 45 values; the receiver's own words would take all of it, so it
    # prints as its address (saying so) and the arguments after it keep their room
    shown = re.compile(r"p=0x([0-9a-f]+) <unavailable: what it points to is not printed: "
                       r"this bpftrace's output record is full>, ")

    def with_receiver(line: str, func: str) -> bool:
        start = f"go/printer.(*printer).{func}("
        if not line.startswith(start):
            return False
        if version != "0.17":
            return line.startswith(start + "p=&{")
        return shown.match(line, len(start)) is not None

    prints = [l for l in out.splitlines() if with_receiver(l, "print")]
    writes = [l for l in out.splitlines() if with_receiver(l, "writeString")]
    assert prints and writes, out[-2000:]
    if version == "0.17":  # gofmt's printers: a few heap addresses, each used by many calls
        addresses = [shown.match(l, l.index("(p=") + 1)[1] for l in prints + writes]
        assert all(int(a, 16) >= 0x10000 for a in addresses), addresses[:5]
        assert len(set(addresses)) < len(addresses) / 2, addresses[:5]
    # the parser's ~40-field receiver went over 0.17's 512-byte stack at the fixed budget; its
    # program is now compiled and rebuilt with less room per record until bpftrace accepts it
    inits = [l for l in out.splitlines() if l.startswith("go/parser.(*parser).init(p=")]
    assert len(inits) == 1, out[-2000:]
    for name in idents:
        assert any(f's="{name}"(len {len(name)})' in l for l in writes), (name, writes[:5])
    if version == "0.17":  # writeCommentPrefix's nine strings: which fit its record depends on the shape
        return
    prefixes = [l for l in out.splitlines() if l.startswith("go/printer.(*printer).writeCommentPrefix(p=&{")]
    name = str(source).encode()
    filename = f'pos={{Filename:"{escaped(name[:64])}"(len {len(name)}), '
    assert any(filename in l and ", prev=nil, " in l for l in prefixes), (filename, prefixes[:3])
    after = f', Text:"{comments[0]}"(len {len(comments[0])})}}, tok='
    assert any(filename in l and after in l for l in prefixes), (after, prefixes[:3])
