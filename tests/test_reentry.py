"""One event per call on a bpftrace that probes only a function's first instruction (0.17).

The entry probe reports every hit except the re-entry after morestack, which a probe on the
morestack routine marks when its return address is the function's own morestack call. The
addresses are checked here against objdump's disassembly (an independent reader of the
machine code); the live tests (tests/test_live.py) check that events equal calls."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from conftest import FIXTURES, go_versions, require_file
from dwarfgo.emit.dialect import Dialect
from dwarfgo.emit.probe import ProbeOptions, generate
from dwarfgo.program import GoProgram
from dwarfgo.runner.decode import Decoder


def _objdump_morestack_call(path, start: int, end: int) -> tuple[int, int]:
    """(call target, return address) of the call to runtime.morestack* in [start, end), from objdump."""
    if shutil.which("objdump") is None:
        pytest.fail("objdump (binutils) is needed to check the morestack call independently")
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", f"--start-address={start:#x}",
                          f"--stop-address={end:#x}", str(path)], capture_output=True, text=True, check=True).stdout
    lines = [l for l in out.splitlines() if re.match(r"\s+[0-9a-f]+:\t", l)]
    for i, line in enumerate(lines):
        m = re.search(r"call\s+([0-9a-f]+) <runtime\.morestack", line)
        if m:
            return int(m.group(1), 16), int(lines[i + 1].split(":")[0], 16)
    pytest.fail(f"no call to runtime.morestack in {path} [{start:#x}, {end:#x})")


@pytest.mark.matrix
@pytest.mark.parametrize("go", go_versions() or ["1.22"])
def test_017_entry_probe_drops_only_the_reentry_after_morestack(go):
    path = FIXTURES / f"go{go}" / "amd64" / "default" / "concurrent"
    require_file(path, "fixture binary")
    with GoProgram(path) as prog:
        fn = prog.function("main.Work")
        target, ret = _objdump_morestack_call(path, fn.address, fn.address + fn.symbol.size)
        program = generate(prog, [fn], Dialect((0, 17, 0)), ProbeOptions(pid=4242))
    text = program.text
    marks = re.findall(r"^uprobe:[^\n]*:(0x[0-9a-f]+) /\(pid == 4242\) && "
                       r"\(\*\(uint64\*\)reg\(\"sp\"\) == reg\(\"ip\"\) ([+-]) (0x[0-9a-f]+)\)/", text, re.M)
    assert len(marks) == 1, text
    at, sign, delta = marks[0]
    assert int(at, 16) == target
    assert (1 if sign == "+" else -1) * int(delta, 16) == ret - target
    # the entry probe: at the symbol, every hit kept (only the pid filter), the re-entry skipped
    entry = re.search(rf"^uprobe:[^\n]*:{fn.address:#x}( /[^\n]*/)?\n", text, re.M)
    assert entry and entry.group(1) == " /(pid == 4242)/", entry and entry.group(0)
    assert "if ($again != 1) {" in text
    assert program.run_env == {"BPFTRACE_MAP_KEYS_MAX": "65536"}
    assert "BPFTRACE_MAP_KEYS_MAX=65536" in text  # said in the header for a hand-run program


@pytest.mark.matrix
def test_newer_bpftrace_needs_no_reentry_mark():
    go = (go_versions() or ["1.22"])[-1]
    path = FIXTURES / f"go{go}" / "amd64" / "default" / "concurrent"
    require_file(path, "fixture binary")
    with GoProgram(path) as prog:
        program = generate(prog, [prog.function("main.Work")], Dialect((0, 27, 1)), ProbeOptions())
    assert "@dg_reenter" not in program.text and program.run_env == {}


@pytest.mark.matrix
def test_event_cut_off_at_the_stop_is_shown_unavailable():
    """bpftrace 0.17 drops what it reads after the stop signal: an event whose end line never came
    is still an event (the call happened), its values unavailable rather than missing or partial."""
    go = (go_versions() or ["1.22"])[-1]
    path = FIXTURES / f"go{go}" / "amd64" / "default" / "concurrent"
    require_file(path, "fixture binary")
    with GoProgram(path) as prog:
        fn = prog.function("main.Work")
        program = generate(prog, [fn], Dialect((0, 17, 0)), ProbeOptions())
    decoder = Decoder(program.probes, read_lines=program.read_lines)
    assert decoder.feed(f"@dg 77 1 call 0 1000 c000001000 7 {fn.address:x}") is None
    assert decoder.feed("@dg 77 1 0 5") is None  # one value line of several; no end line
    events = decoder.finish()
    assert len(events) == 1 and events[0].kind == "call"
    values = events[0].values
    assert set(values) == {"worker", "item", "tag", "job"}
    assert all("stopped before printing" in v["unavailable"] for v in values.values())
    assert decoder.incomplete == 1
