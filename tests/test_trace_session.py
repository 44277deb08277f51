"""The trace session without bpftrace: stop-safe decoding, time order, loss accounting, cut events,
and naming an interface's dynamic type from the runtime's type descriptor.

Events are fed as the program prints them (`@dg <tid> <seq> ...`, see emit/bpftrace.py); the
program comes from the committed demo binary, so these run on any machine."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from dwarfgo.emit.dialect import Dialect
from dwarfgo.emit.plan import InterfaceNode
from dwarfgo.emit.probe import ProbeOptions, generate
from dwarfgo.gotypes import DW_AT_GO_RUNTIME_TYPE
from dwarfgo.program import GoProgram
from dwarfgo.runner.decode import Decoder
from dwarfgo.runner.session import TraceSession
from dwarfgo.runner.stream import decoder_for, loss_lines
from dwarfgo.runtime_types import RuntimeTypeNames

from conftest import FIXTURES, require_file

DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "bin" / "demo-go1.22-amd64"
PUT = "(*BarrierView).Put"


@pytest.fixture(scope="module")
def demo():
    with GoProgram(DEMO) as prog:
        fn = prog.function(PUT)
        program = generate(prog, [fn], Dialect((0, 27, 1)), ProbeOptions(ret=True))
        yield prog, fn, program


def _call_lines(program, fn, tid: int, seq: int, ts: int, goid: int = 7, complete: bool = True) -> list[str]:
    """A whole call event of (*BarrierView).Put: every read given a plausible raw word; v, ctx's
    data and entry non-nil, so that the reads behind them are printed too."""
    probe = program.probes[0]
    lines = [f"@dg {tid} {seq} call {probe.probe_id} {ts} c000001000 {goid} {fn.address:x} 4242"]
    for r in probe.reads:
        raw = "\\x61\\x62" if r.kind == "bytes" else ("c000002000" if r.kind == "hex" else "2")
        lines.append(f"@dg {tid} {seq} {r.index} {raw}")
    if complete:
        lines.append(f"@dg {tid} {seq} end {len(lines) + 1}")
    return lines


def _ret_lines(program, tid: int, seq: int, ts: int, call_ts: int) -> list[str]:
    """A return event of the call at `call_ts` (the program prints the call's time, which with the
    process and the goroutine names that call)."""
    probe = program.probes[1]
    lines = [f"@dg {tid} {seq} ret {probe.probe_id} {ts} c000001000 {probe.ret_sites[0]:x} 500 {call_ts} "
             f"{probe.ret_sites[0]:x} 4242"]
    for r in probe.reads:
        lines.append(f"@dg {tid} {seq} {r.index} 0")
    lines.append(f"@dg {tid} {seq} end {len(lines) + 1}")
    return lines


def test_a_return_carries_the_goroutine_of_its_call(demo):
    _, fn, program = demo
    d = Decoder(program.probes)
    events = [e for line in _call_lines(program, fn, 10, 1, 1000, goid=42) + _ret_lines(program, 10, 2, 2000, 1000)
              if (e := d.feed(line)) is not None]
    assert [e.kind for e in events] == ["call", "ret"]
    assert events[1].to_json()["goroutine"] == 42


def test_events_cut_short_never_crash_and_show_no_value(demo):
    """An event whose lines stop anywhere (a pointer read, an interface word, the first value
    line) is shown with every value unavailable: finish() once raised TypeError on hex(None)."""
    _, fn, program = demo
    whole = _call_lines(program, fn, 10, 1, 1000, complete=False)
    for cut in range(1, len(whole) + 1):
        d = Decoder(program.probes)
        for line in whole[:cut]:
            assert d.feed(line) is None
        events = d.finish()
        assert len(events) == 1
        assert all("unavailable" in v for v in events[0].values.values())
        assert d.incomplete == 1


def test_a_garbled_word_makes_only_that_value_unavailable(demo):
    _, fn, program = demo
    lines = _call_lines(program, fn, 10, 1, 1000)
    probe = program.probes[0]
    v_read = probe.values[0].node.ptr.index  # the receiver pointer
    lines = [l if not l.startswith(f"@dg 10 1 {v_read} ") else f"@dg 10 1 {v_read} zz" for l in lines]
    d = Decoder(program.probes)
    ev = [e for l in lines if (e := d.feed(l)) is not None][0]
    assert "unavailable" in ev.values["v"]
    assert ev.values["entry"] != ev.values["v"]


def test_missing_events_are_counted_in_events_from_bpftrace_exit_counters(demo):
    _, fn, program = demo
    d = Decoder(program.probes)
    for ts in (1001, 1002, 1004):  # three of the seven events the program counted arrive whole
        for line in _call_lines(program, fn, 10, ts, ts):
            d.feed(line)
    # a header line lost: only the value lines and end of another event arrive
    for line in _call_lines(program, fn, 11, 2000, 2000)[1:]:
        d.feed(line)
    assert d.events_lost == 0 and not d.counts_exact  # nothing to count against yet
    d.feed("@dg_n: 7")
    assert d.counts_exact
    assert d.events_lost == 7 - 3
    assert d.calls_shown == 3

    # bpftrace's own count of the records it dropped (0.17 and 0.27 spell it differently); a traced
    # command's line that merely mentions it is not a count
    for line in ("Lost 12 events", "WARNING: Lost 30 events", "main: Lost 5 events of mine"):
        d.feed(line)
    assert d.lost == 42


def test_an_event_whose_first_line_is_cut_short_is_counted_missing(demo):
    """A first line that ends inside its header (bpftrace stopped mid-line) names no event: not
    shown, and counted against the program's counter as missing (one emitted, none shown)."""
    _, fn, program = demo
    d = Decoder(program.probes)
    whole = _call_lines(program, fn, 10, 5000, 5000)
    header = whole[0].split(" ")
    for line in [" ".join(header[:6]), *whole[1:]]:  # `@dg 10 5000 call 0 5000`: no g, goid, ...
        assert d.feed(line) is None
    d.feed("@dg_n: 1")
    assert d.calls_shown == 0 and d.counts_exact and d.events_lost == 1


def test_an_output_without_exit_counters_says_losses_cannot_be_counted(demo):
    """The program's event counter (printed by bpftrace at exit) is the only way to know how many
    events were never printed. An output that ends without them (bpftrace killed while printing
    its maps) is said to be uncountable, never passed off as complete."""
    _, fn, program = demo
    lines = []
    for seq in (1, 2):
        lines += _call_lines(program, fn, 10, seq, 1000 * seq)
    outcome = TraceSession(_FakeRun(lines), Decoder(program.probes), lambda ev: None, lambda m: None,
                           window=0.05)()
    assert outcome.calls == 2 and outcome.lost_events == 0
    assert any("without its event counter" in l for l in loss_lines(outcome, ""))
    counted = TraceSession(_FakeRun(lines + ["@dg_n: 2"]), Decoder(program.probes), lambda ev: None,
                           lambda m: None, window=0.05)()
    assert counted.lost_exact and loss_lines(counted, "") == []


class _FakeRun:
    """Stands for BpftraceRun: yields prepared lines; `on_line(i)` runs before line i is yielded."""

    def __init__(self, lines, on_line=None):
        self._lines = lines
        self.on_line = on_line or {}
        self.stop_requested = None
        self.stops = 0
        self.killed_at_once = False
        self.probe_count = 2

    def chunks(self):
        for i, line in enumerate(self._lines):
            if i in self.on_line:
                self.on_line[i]()
            yield [line]

    def stop(self):
        self.stop_requested = time.monotonic()
        self.stops += 1

    def kill(self):
        self.killed_at_once = True


def test_stop_request_keeps_decoding_to_the_end_of_the_output(demo):
    """A Ctrl-C in the middle of the output only asks bpftrace to stop: every event it printed,
    before and after the signal, is shown (the old loop raised into the decoder and lost one)."""
    _, fn, program = demo
    lines = []
    for seq in range(1, 41):
        lines += _call_lines(program, fn, 10, seq, 1000 * seq)
    run = _FakeRun(lines, {len(lines) // 2: lambda: os.kill(os.getpid(), signal.SIGINT)})
    shown, said = [], []
    outcome = TraceSession(run, Decoder(program.probes), shown.append, said.append, window=0.05)()
    assert run.stops == 1
    assert len(shown) == 40 and outcome.calls == 40 and outcome.lost_events == 0
    assert not outcome.interrupted
    assert any("stopping" in m for m in said)


def test_a_second_stop_request_quits_at_once_and_says_what_was_left(demo):
    _, fn, program = demo
    lines = []
    for seq in range(1, 41):
        lines += _call_lines(program, fn, 10, seq, 1000 * seq)

    def twice():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    # the reader thread runs `twice`; signals are handled in the main thread, which is decoding
    run = _FakeRun(lines, {10: twice})
    shown = []
    outcome = TraceSession(run, Decoder(program.probes), shown.append, lambda m: None, window=0.05)()
    assert outcome.interrupted and run.killed_at_once
    assert any("undecoded" in line for line in loss_lines(outcome, ""))


def test_events_are_shown_in_time_order_within_the_window(demo):
    _, fn, program = demo
    lines = []
    # CPU A's buffer read first (events at 1 ms, 3 ms, 5 ms), then CPU B's (2 ms, 4 ms)
    for seq, ts in ((1, 1_000_000), (2, 3_000_000), (3, 5_000_000)):
        lines += _call_lines(program, fn, 10, seq, ts)
    for seq, ts in ((1, 2_000_000), (2, 4_000_000)):
        lines += _call_lines(program, fn, 20, seq, ts)
    shown = []
    TraceSession(_FakeRun(lines), Decoder(program.probes), shown.append, lambda m: None, window=0.25)()
    assert [e.ts for e in shown] == [1_000_000, 2_000_000, 3_000_000, 4_000_000, 5_000_000]


def test_dynamic_type_names_come_from_the_descriptor_not_a_dwarf_pass(demo):
    """The name read from the runtime type descriptor equals the DWARF type whose
    DW_AT_go_runtime_type points at that descriptor (an independent reader), in the package-name
    form %T prints."""
    prog, _, _ = demo
    base = prog.binary.data_symbol("runtime.types")
    expected = {}
    for unit in prog.index.units:
        if unit.name != "runtime":
            continue
        for die in unit.unit.get_top_DIE().iter_children():
            attr = die.attributes.get(DW_AT_GO_RUNTIME_TYPE)
            name = die.attributes.get("DW_AT_name")
            if attr and name and attr.value:
                text = name.value.decode()
                if text in ("*main.KeyError", "main.StorageEntry", "*main.StorageEntry", "*context.valueCtx",
                            "string", "[]uint8"):
                    expected[base + attr.value] = text
    assert len(expected) >= 5, expected
    names = RuntimeTypeNames(prog)
    got = {addr: names(addr) for addr in expected}
    assert got == expected
    assert names(base + 0x7FFFFFF0) is None  # not a descriptor in the file: no name, no crash


def _itab_symbols(path) -> dict[str, int]:
    """The binary's own itabs from its symbol table (`go:itab.<type>,<interface>`): the dynamic type
    each names, as %T prints it (package names, not import paths) -> the itab's address."""
    with open(path, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        out = {}
        for sym in symtab.iter_symbols():
            for prefix in ("go:itab.", "go.itab."):
                if sym.name.startswith(prefix) and sym.name.count(",") == 1:
                    dynamic = sym.name[len(prefix):].split(",")[0]
                    out[re.sub(r"[\w.-]+/", "", dynamic)] = sym["st_value"]
    return out


def _with_words(lines: list[str], words: dict[int, str], pc: int) -> list[str]:
    """_call_lines' lines with read K's raw word replaced by words[K], and the probed address `pc`
    (a process loaded at its link addresses)."""
    head = lines[0].split(" ")
    head[8] = f"{pc:x}"
    out = []
    for line in [" ".join(head)] + lines[1:]:
        parts = line.split(" ")
        if len(parts) == 5 and parts[3].isdigit() and int(parts[3]) in words:
            parts[4] = words[int(parts[3])]
        out.append(" ".join(parts))
    return out


def test_a_static_itab_is_named_from_the_file_without_a_read_in_the_probe(demo):
    """Most itabs are the binary's own (`go:itab.<type>,<interface>`, laid out by the linker in
    read-only data): the probe does not follow one (a memory read less per interface, about 150
    ns of the traced thread), and the decoder takes its type word from the file. Every itab of the
    demo's symbol table (an independent list: the probe's range comes from the module data) lies
    in the range the probe skips and decodes to the type its symbol names, the probe's type word
    left at its zero. An itab outside it (one the runtime built) is named from the probe's read."""
    prog, fn, program = demo
    probe = program.probes[0]
    ctx = next(v.node for v in probe.values if v.name == "ctx")
    assert isinstance(ctx, InterfaceNode) and ctx.static_itabs is not None
    s, tab = ctx.static_itabs, f"$r{ctx.tab.index}"
    assert not s.relocated and f"if ({tab} != 0 && ({tab} < {s.first:#x} || {tab} > {s.last:#x})) {{" in program.text
    itabs = _itab_symbols(DEMO)
    assert len(itabs) >= 10 and "*context.valueCtx" in itabs and "*main.KeyError" in itabs, itabs
    decoder = decoder_for(prog, program, 64)
    for seq, (name, address) in enumerate(sorted(itabs.items()), 1):
        assert s.first <= address <= s.last, (name, hex(address))
        lines = _with_words(_call_lines(program, fn, 10, seq, seq * 1000),
                            {ctx.tab.index: f"{address:x}", ctx.type_ptr.index: "0"}, probe.attach_address)
        event = [e for l in lines if (e := decoder.feed(l)) is not None][0]
        assert event.values["ctx"]["type"] == name, (name, event.values["ctx"])
    # a runtime-built itab (on the heap): its type word is the one the probe read
    key_error = prog.binary.read_memory(itabs["*main.KeyError"] + s.type_offset, 8)
    lines = _with_words(_call_lines(program, fn, 10, 999, 999_000),
                        {ctx.tab.index: "c000010000", ctx.type_ptr.index: key_error[::-1].hex()},
                        probe.attach_address)
    event = [e for l in lines if (e := decoder.feed(l)) is not None][0]
    assert event.values["ctx"]["type"] == "*main.KeyError", event.values["ctx"]


@pytest.mark.parametrize("go", ["1.15", "1.22"])
def test_a_static_itab_of_a_position_independent_binary_is_named_from_its_relocation(go):
    """A PIE's itabs are filled by the loader (a relative relocation: the type's link address plus
    the load bias) in data it then makes read-only: the probe compares the itab's address less
    the load bias (the probed instruction's address less its link address) with the range, and
    the decoder takes the type from the relocation. Each itab of the symbol table, at a load bias
    of 0x555555000000, decodes to the type its symbol names."""
    binary = FIXTURES / f"go{go}" / "amd64" / "pie" / "shapes"
    require_file(binary, "the shapes fixture's PIE build")
    bias = 0x555555000000
    with GoProgram(binary) as prog:
        program = generate(prog, [prog.function("main.Describe")], Dialect((0, 27, 0)), ProbeOptions())
        probe = program.probes[0]
        node = probe.values[0].node
        s, tab = node.static_itabs, f"$r{node.tab.index}"
        assert isinstance(node, InterfaceNode) and s is not None and s.relocated
        assert (f"$dgl{node.tab.index} = {tab} - (reg(\"ip\") - {probe.attach_address:#x});" in program.text
                and f"if ({tab} != 0 && ($dgl{node.tab.index} < {s.first:#x} || $dgl{node.tab.index} > "
                    f"{s.last:#x})) {{" in program.text), program.text
        itabs = _itab_symbols(binary)
        assert "main.Rect" in itabs and "*main.MyErr" in itabs, itabs
        decoder = decoder_for(prog, program, 64)
        for seq, (name, address) in enumerate(sorted(itabs.items()), 1):
            assert s.first <= address <= s.last, (name, hex(address))
            words = {**_words(probe), node.tab.index: f"{address + bias:x}", node.type_ptr.index: "0"}
            lines = _printed_lines(program, 0, 10, seq, 0, words, pc=probe.attach_address + bias)
            event = [e for l in lines if (e := decoder.feed(l)) is not None][0]
            assert event.values["s"]["type"] == name, (name, event.values["s"])


def test_a_pie_whose_itab_is_not_relocated_relatively_follows_every_itab(tmp_path):
    """When an itab's type word is filled by another relocation than a relative one (here main.Rect's
    Shape itab's, turned into R_X86_64_64: the symbol's value, which the decoder does not know),
    the decoder could not know that static itab's type: the probe follows every non-nil itab, as it
    does without a range."""
    import struct

    binary = FIXTURES / "go1.22" / "amd64" / "pie" / "shapes"
    require_file(binary, "the shapes fixture's PIE build")
    slot = _itab_symbols(binary)["main.Rect"] + 8
    data = bytearray(binary.read_bytes())
    with open(binary, "rb") as f:
        rela = next(sec for sec in ELFFile(f).iter_sections() if sec["sh_type"] == "SHT_RELA" and sec["sh_size"])
        start, size = rela["sh_offset"], rela["sh_size"]
    entries = [start + i for i in range(0, size, 24) if struct.unpack_from("<Q", data, start + i)[0] == slot]
    assert len(entries) == 1 and struct.unpack_from("<Q", data, entries[0] + 8)[0] == 8  # R_X86_64_RELATIVE
    struct.pack_into("<Q", data, entries[0] + 8, 1)  # R_X86_64_64, symbol 0
    copy = tmp_path / "shapes"
    copy.write_bytes(bytes(data))
    with GoProgram(binary) as prog:
        intact = generate(prog, [prog.function("main.Describe")], Dialect((0, 27, 0)), ProbeOptions())
    with GoProgram(copy) as prog:
        program = generate(prog, [prog.function("main.Describe")], Dialect((0, 27, 0)), ProbeOptions())
    assert intact.probes[0].values[0].node.static_itabs is not None
    node = program.probes[0].values[0].node
    assert node.static_itabs is None and f"if ($r{node.tab.index} != 0) {{" in program.text


def test_a_traced_commands_output_after_bpftrace_warnings_is_passed_on(demo):
    """bpftrace 0.17 starts with located warnings (`file:L:C: WARNING: Failed to map_lookup_elem`,
    its source line, a caret line). A line of the -c command that came thousands of event lines
    later was taken for a warning's third line and swallowed (scripts/bench-trace lost the load
    program's report). Lines copied from real 0.17 and 0.27 outputs."""
    _, fn, program = demo
    d = Decoder(program.probes)
    other = []
    d.on_other_output = other.append
    lines = ["/tmp/dwarfgo-70hy8jhw.bt:21:17-29: WARNING: Failed to map_lookup_elem: 0",
             "    @dg_seq[tid] = @dg_seq[tid] + 1;",
             "                   ~~~~~~~~~~~~",
             *_call_lines(program, fn, 10, 1, 1000),
             '{"calls": 200000, "cpu_ns": 3047982000}',
             "/tmp/x.bt:11:1-16: WARNING: Failed to map_lookup_elem: 0",
             "/@dg_live_first == 0/",
             "~~~~~~~~~~~~~~~",
             "the command's next line",
             # 0.27: the helper's line comes between a warning and its source line
             "/tmp/dwarfgo-6r1cwcr5.bt:15:2-16: WARNING: Can't lookup map element because it does not exist.",
             "Additional Info - helper: map_lookup_elem, retcode: 0",
             "/@dg_live_first == 0/",
             " ~~~~~~~~~~~~~~",
             "and its last line"]
    for line in lines:
        d.feed(line)
    assert other == ['{"calls": 200000, "cpu_ns": 3047982000}', "the command's next line", "and its last line"]


def _printed_lines(program, probe_id: int, tid: int, seq: int, cpu: int, words: dict[int, str],
                   before: dict[int, list[str]] | None = None, pc: int | None = None) -> list[str]:
    """What bpftrace prints for one run of probe `probe_id`'s block with every `if` taken: each
    printf of the block with its arguments filled in (a read K by words[K]); before[N]: lines
    bpftrace prints just before the program's line N (a failed read's warning); `pc`: the probed
    address at run time (default: its link address)."""
    lines = program.text.splitlines()
    first = [l.strip() for l in lines].index(f"// dg probe {probe_id}")
    out, printed = [], 0
    for number, text in enumerate(lines[first:], first + 1):
        if text.startswith("}") or text.startswith("uprobe:"):
            break
        m = re.match(r'\s*printf\("@dg %d %lu ([^"]*)\\n", tid, \$ts, (.*)\);$', text)
        if not m:
            continue
        out += (before or {}).get(number, [])
        args, depth, cur = [], 0, ""
        for ch in m.group(2) + ",":
            depth += {"(": 1, ")": -1}.get(ch, 0)
            if ch == "," and depth == 0:
                args.append(cur.strip())
                cur = ""
            else:
                cur += ch
        printed += 1
        indices = re.findall(r"(?:^| )([\d,]+) %", m.group(1))
        copies = iter(int(i) for group in indices for i, f in zip(group.split(","), m.group(1).split(group + " ", 1)[1].split(" ")) if f == "%rx")
        fixed = {"$ts": str(seq), "$g": "c000001000", "$goid": "7", "(uint64)pid": "4242", "cpu": str(cpu),
                 "$n + 1": str(printed)}
        values = []
        for a in args:
            if a in fixed:
                values.append(fixed[a])
            elif re.fullmatch(r"\$r\d+", a):
                values.append(words[int(a[2:])])
            elif a.startswith("buf("):
                values.append(words[next(copies)])
            else:  # the probed address
                values.append(f"{pc if pc is not None else program.probes[probe_id].attach_address:x}")
        it = iter(values)
        out.append(f"@dg {tid} {seq} " + re.sub(r"%[a-z]+", lambda _: next(it), m.group(1)))
    return out


def _words(probe) -> dict[int, str]:
    return {r.index: "\\x61\\x62" if r.kind == "bytes" else ("c000002000" if r.kind == "hex" else "2")
            for r in probe.reads}


def _copy_names(probe) -> dict[int, tuple[str, ...]]:
    """Read index of each byte copy -> the path of its value in the event's JSON args."""
    out = {}
    for v in probe.values:
        if getattr(v.node, "data", None) is not None:
            out[v.node.data.index] = (v.name,)
        for name, f in getattr(getattr(v.node, "target", None), "fields", []):
            if getattr(f, "data", None) is not None:
                out[f.data.index] = (v.name, name)
    return out


def _at(values: dict, path: tuple[str, ...]):
    for name in path:
        values = values[name]
    return values


def _warning(version, number: int, column: int) -> list[str]:
    """bpftrace's report of a failed read at a program line and column (0.17 -kk, 0.27 -k)."""
    if version < (0, 23, 0):
        return [f"/tmp/x.bt:{number}:{column}-{column + 10}: WARNING: Failed to probe_read: Bad address (-14)"]
    return [f"/tmp/x.bt:{number}:{column}-{column + 10}: WARNING: Bad address",
            "Additional Info - helper: probe_read_user, retcode: -14"]


@pytest.mark.parametrize("version", [(0, 17, 0), (0, 27, 1)])
def test_a_failed_byte_copy_is_tied_to_its_column_when_a_printf_makes_several(version):
    """Byte copies ride on the printf of other values, so one program line can make several
    (`buf(a, n), ..., buf(b, m)`). bpftrace names a failed copy by line and column (seen on 0.17
    with -kk and 0.27 with -k: `file:5:41-51: WARNING: ...` where the second `buf(` of the line
    begins at column 41, a tab counting one): only that copy's value is unavailable, the
    others on the same line keep their bytes. The warning comes before the event's first line
    (its only one on 0.27): the event is the next its CPU prints."""
    with GoProgram(DEMO) as prog:
        fn = prog.function(PUT)
        program = generate(prog, [fn], Dialect(version), ProbeOptions())
    probe = program.probes[0]
    lines = program.text.splitlines()
    number, line = next((n, l) for n, l in enumerate(lines, 1) if l.count("buf(") >= 2)
    column = line.index("buf(", line.index("buf(") + 1) + 1  # the second copy of the line
    indices = re.search(r'(?:^|: |%lu )(?:end %ld )?([\d,]+) %', line).group(1).split(",")
    formats = line.split(",".join(indices) + " ", 1)[1].split('\\n"')[0].split(" ")
    copies = [int(i) for i, f in zip(indices, formats) if f == "%rx"]
    names = _copy_names(probe)
    failed, kept = copies[1], copies[0]
    assert failed in names and kept in names, (copies, names)
    words = {**_words(probe), failed: "\\x00\\x00"}  # a failed read gives zeros
    out = _printed_lines(program, 0, 10, 1, 1, words, {number: _warning(version, number, column)})
    d = Decoder(program.probes, read_lines=program.read_lines, read_spots=program.read_spots,
                early_reads=program.early_reads)
    events = [e for l in out if (e := d.feed(l)) is not None]
    assert len(events) == 1 and d.failed_reads == 1 and not d.untied_failures, (d.untied_failures, out)
    got = _at(events[0].values, names[failed])
    assert got == {"unavailable": got["unavailable"]} and "memory read failed" in got["unavailable"]
    assert "unavailable" not in str(_at(events[0].values, names[kept])), events[0].values


def test_a_read_failed_before_its_events_first_line_is_the_next_event_its_cpu_prints():
    """On bpftrace 0.27 (Put's event is one record) every read comes before the event's only
    line, so its failure warning comes first, and other CPUs' lines may come between. The
    event is the next line printed on the warning's CPU; bpftrace does not say which CPU, so
    the next event of that probe from each CPU loses the read (never a zero shown as a value),
    and events of other CPUs printed later, or on the same CPU after it, keep it."""
    with GoProgram(DEMO) as prog:
        fn = prog.function(PUT)
        program = generate(prog, [fn], Dialect((0, 27, 1)), ProbeOptions())
    probe = program.probes[0]
    number, index = next((n, w[1]) for n, w in sorted(program.read_lines.items()) if w[0] == 0
                         and "*(" in program.text.splitlines()[n - 1])
    assert (0, index) in program.early_reads
    words = _words(probe)
    warning = _warning((0, 27, 1), number, 2)
    d = Decoder(program.probes, read_lines=program.read_lines, read_spots=program.read_spots,
                early_reads=program.early_reads)
    zeros = {**words, index: "0"}
    feed = (warning + _printed_lines(program, 0, 20, 1, 1, words)      # CPU 1: another event came between
            + _printed_lines(program, 0, 10, 1, 0, zeros)             # CPU 0: the event of the failed read
            + _printed_lines(program, 0, 20, 2, 1, zeros)             # CPU 1 again: after it (a real 0)
            + _printed_lines(program, 0, 10, 2, 0, words))            # CPU 0 again: after it
    events = [e for l in feed if (e := d.feed(l)) is not None]
    assert [(e.tid, e.ts) for e in events] == [(20, 1), (10, 1), (20, 2), (10, 2)]
    lost = [(e.tid, e.ts) for e in events if "memory read failed" in json.dumps(e.values)]
    assert lost == [(10, 1)], lost
    assert d.failed_reads == 1 and not d.untied_failures


def test_a_failed_read_of_a_structs_words_makes_each_word_unavailable():
    """On 0.23+ the consecutive words of a struct are one memory read (`$dgwK = *(struct dg_wN
    *)(...)`), each field then taking its word from that copy: bpftrace names that one line when
    the read fails, and every word it reads is unavailable in the event (not the zeros bpftrace
    gives), while the next event keeps them."""
    with GoProgram(DEMO) as prog:
        program = generate(prog, [prog.function(PUT)], Dialect((0, 27, 1)), ProbeOptions())
    probe = program.probes[0]
    lines = program.text.splitlines()
    number, reads = next((n, w[1:]) for n, w in sorted(program.read_lines.items()) if len(w) > 2)
    assert "struct dg_w" in lines[number - 1] and len(reads) >= 2
    column = lines[number - 1].index("$dgw") + 1
    words = _words(probe)
    zeros = {**words, **{i: "0" for i in reads}}
    d = Decoder(program.probes, read_lines=program.read_lines, read_spots=program.read_spots,
                early_reads=program.early_reads)
    feed = (_warning((0, 27, 1), number, column) + _printed_lines(program, 0, 10, 1, 0, zeros)
            + _printed_lines(program, 0, 10, 2, 0, words))
    events = [e for l in feed if (e := d.feed(l)) is not None]
    assert len(events) == 2 and d.failed_reads == len(reads) and not d.untied_failures
    failed = json.dumps(events[0].values)
    assert failed.count("memory read failed") >= 1 and "memory read failed" not in json.dumps(events[1].values)
    assert events[0].values != events[1].values


@pytest.mark.parametrize("go", ["1.15", "1.27"])
@pytest.mark.parametrize("version", [(0, 23, 0), (0, 27, 0)])
def test_consecutive_words_are_one_read_and_one_read_each_when_refitted(go, version):
    """A struct's consecutive words (fields of the demo's *BarrierView and *Entry) are one read
    into a struct variable, and on Go 1.15 (stack ABI) the argument words at the stack pointer
    too (Put's ctx data word and entry pointer at sp+24); the line of that read names each read
    index it makes. Refitted to the stack (record_slots), or on 0.17 (which reads a struct
    variable's field when it is used), every word is a read of its own."""
    binary = FIXTURES / f"go{go}" / "amd64" / "default" / "demo"
    require_file(binary, "demo fixture")
    with GoProgram(binary) as prog:
        fn = prog.function(PUT)
        coalesced = generate(prog, [fn], Dialect(version), ProbeOptions())
        refitted = generate(prog, [fn], Dialect(version, record_slots=24), ProbeOptions())
        old = generate(prog, [fn], Dialect((0, 17, 0)), ProbeOptions())
    assert "struct dg_w" not in old.text
    copies = re.findall(r"\$dgw(\d+) = \*\(struct dg_w(\d) \*\)\((\$r\d+|reg\(\"sp\"\))", coalesced.text)
    assert copies and "struct dg_w" not in refitted.text
    assert (go == "1.15") == any(base == 'reg("sp")' for _, _, base in copies), copies
    lines = coalesced.text.splitlines()
    for number, (probe, *reads) in coalesced.read_lines.items():
        m = re.match(r"\$dgw(\d+) = \*\(struct dg_w(\d) \*\)", lines[number - 1].strip())
        if m:
            assert reads == list(range(int(m[1]), int(m[1]) + int(m[2]))), (lines[number - 1], reads)
            for k, index in enumerate(reads):  # each read takes its word from the copy
                assert re.search(rf"\$r{index} = (\(int64\))?\$dgw{m[1]}\.w{k};", coalesced.text), index
        else:  # a read of its own (or a variable's zero or word: no read, so bpftrace names no failure)
            assert len(reads) == 1, lines[number - 1]
    assert sum(len(r) - 2 for r in coalesced.read_lines.values()) == sum(int(n) - 1 for _, n, _ in copies)
    # the same reads in all
    assert {i for _, *r in coalesced.read_lines.values() for i in r} == {i for _, *r in refitted.read_lines.values() for i in r}


@pytest.mark.parametrize("go", ["1.15", "1.27"])
def test_an_event_that_fits_one_top_level_printf_is_one_record_on_0_17(go):
    """bpftrace 0.17 wakes its reader for every output record (about 5 us of the traced thread's
    time each on 2 vCPUs), so an event whose header and values fit one printf at the top level of
    its probe is printed as that one record even past the 24 slots of a printf that others follow
    (StructNested: 9-10 values and a string, 2 records with 24 slots, 1 with 28); a function whose
    values need a printf inside an `if` (List's walk of its list) keeps the batches it had. The
    one record decodes to the whole event."""
    binary = FIXTURES / f"go{go}" / "amd64" / "default" / "shapes"
    require_file(binary, "the shapes fixture")
    with GoProgram(binary) as prog:
        nested = generate(prog, [prog.function("main.StructNested")], Dialect((0, 17, 0)), ProbeOptions())
        walk = generate(prog, [prog.function("main.List")], Dialect((0, 17, 0)), ProbeOptions(depth=4))
    block = nested.text.split("// dg probe 0", 1)[1].split("\n}\n", 1)[0]
    assert block.count('printf("@dg %d') == 1 and ": end %ld " in block, block
    probe = nested.probes[0]
    out = _printed_lines(nested, 0, 10, 1, 1, _words(probe))
    assert len(out) == 1, out
    d = Decoder(nested.probes, read_lines=nested.read_lines, read_spots=nested.read_spots,
                early_reads=nested.early_reads)
    events = [e for line in out if (e := d.feed(line)) is not None]
    shown = json.dumps(events[0].values) if len(events) == 1 else ""
    # every value read (a float register is out of reg()'s reach on 1.17+: unavailable by design)
    assert '"B": "ab"' in shown and "read failed" not in shown and "incomplete" not in shown, events
    assert shown.count("unavailable") == shown.count("reads only general registers"), shown
    walk_block = walk.text.split("// dg probe 0", 1)[1].split("\n}\n", 1)[0]
    assert walk_block.count('printf("@dg %d') > 1  # past 24 slots with printfs inside `if`s


@pytest.mark.parametrize("version", [(0, 17, 0), (0, 27, 1)])
@pytest.mark.parametrize("where", [1, 2, 3])
def test_a_commands_line_between_a_warnings_lines_is_the_commands(version, where):
    """A -c command writes to the stream bpftrace prints to, and bpftrace writes a failed read's
    report line by line (warning, 0.23+'s Additional Info, the program line with its tabs
    expanded, a caret line): the command's line can come between them (CI once lost a line of
    the fixture's report so, on 0.17). The command's line is passed on, the warning's lines are
    not, and the read is still tied to its value (0.27's warning waits for its Additional Info
    across the command's line)."""
    with GoProgram(DEMO) as prog:
        fn = prog.function(PUT)
        program = generate(prog, [fn], Dialect(version), ProbeOptions())
    probe = program.probes[0]
    lines = program.text.splitlines()
    number, line = next((n, l) for n, l in enumerate(lines, 1) if "buf(" in l)
    column = line.index("buf(") + 1
    indices = re.search(r'(?:^|: |%lu )(?:end %ld )?([\d,]+) %', line).group(1).split(",")
    formats = line.split(",".join(indices) + " ", 1)[1].split('\\n"')[0].split(" ")
    failed = next(int(i) for i, f in zip(indices, formats) if f == "%rx")
    report = _warning(version, number, column) + [line.expandtabs(4), " " * 8 + "~" * 10]
    command = '{"func":"main.Grow","depth":3}'
    report.insert(min(where, len(report) - 1), command)
    words = {**_words(probe), failed: "\\x00\\x00"}
    out = _printed_lines(program, 0, 10, 1, 1, words, {number: report})
    d = Decoder(program.probes, read_lines=program.read_lines, read_spots=program.read_spots,
                early_reads=program.early_reads, program_lines=lines)
    passed = []
    d.on_other_output = passed.append
    events = [e for l in out if (e := d.feed(l)) is not None]
    assert passed == [command], (passed, out)
    assert len(events) == 1 and d.failed_reads == 1 and not d.untied_failures, (d.untied_failures, out)
    assert "memory read failed" in str(_at(events[0].values, _copy_names(probe)[failed])), events[0].values


def test_a_commands_output_comes_on_its_own_pipe_with_its_pid(tmp_path):
    """trace -c: bpftrace runs `/bin/sh WRAPPER CMD ARGS` (it splits -c's text at spaces, as it
    would the command's), and the command's stdout and stderr reach dwarfgo through a FIFO,
    apart from bpftrace's stream, from the process bpftrace started (exec: cpid is the
    command's pid); nothing is left behind."""
    import subprocess

    from dwarfgo.runner.run import CommandOutput

    script = tmp_path / "cmd.sh"
    script.write_text('echo "out $$"\necho "err $$" >&2\n')
    out = CommandOutput.for_command(f"/bin/sh {script}")
    assert out is not None
    lines: list[str] = []
    out.on_line = lines.append
    child = subprocess.Popen(out.command.split(" "), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out.started()
    said, _ = child.communicate(timeout=30)
    out.close()
    assert said == b""  # nothing of the command in the stream bpftrace's own output takes
    assert sorted(lines) == sorted([f"out {child.pid}", f"err {child.pid}"])
    assert not os.path.exists(out.command.split(" ")[1])


def test_a_long_trace_keeps_no_call_it_has_shown(demo, monkeypatch):
    """Calls were kept to pair with their return, for every function and forever: without --ret
    (no return will ever come) a long trace grew by every call it showed. Now only calls of
    functions whose returns are traced are kept, at most AWAITED_CALLS; a return whose call was
    dropped is shown at once, without the call's arguments."""
    import dwarfgo.runner.decode as decode_module

    prog, fn, with_ret = demo
    entries_only = generate(prog, [fn], Dialect((0, 27, 1)), ProbeOptions(ret=False))
    d = Decoder(entries_only.probes)
    calls = [e for ts in range(1000, 1300) for line in _call_lines(entries_only, fn, 10, ts, ts)
             if (e := d.feed(line)) is not None]
    assert len(calls) == 300 and d.calls == {}

    monkeypatch.setattr(decode_module, "AWAITED_CALLS", 5)
    d = Decoder(with_ret.probes)
    for ts in range(1000, 1020):  # twenty calls that do not return (yet)
        for line in _call_lines(with_ret, fn, 10, ts, ts):
            d.feed(line)
    assert len(d.calls) == 5 and sorted(k[2] for k in d.calls) == list(range(1015, 1020))
    # the return of a dropped call (the last five dropped are remembered): shown as it comes; of a
    # kept one: paired with its call
    late = [e for line in _ret_lines(with_ret, 10, 3000, 5000, 1012) if (e := d.feed(line)) is not None]
    assert len(late) == 1 and late[0].args_text is None and late[0].to_json()["goroutine"] is None
    paired = [e for line in _ret_lines(with_ret, 10, 3001, 5001, 1017) if (e := d.feed(line)) is not None]
    assert len(paired) == 1 and paired[0].args_text and paired[0].to_json()["goroutine"] == 7
    assert len(d.calls) == 4 and not d.early_returns


def test_a_return_whose_call_was_lost_is_shown_once_the_trace_moves_on(demo):
    """A return that comes before its call (another CPU's buffer) waits for it; when the call was
    lost, the return was held, unseen, to the end of the trace. Now it is shown once the trace
    is RETURN_WAIT seconds of trace time past it, or when the output goes quiet."""
    from dwarfgo.runner.stream import RETURN_WAIT, EventStream

    _, fn, program = demo
    shown = []
    stream = EventStream(Decoder(program.probes), shown.append)
    for line in _ret_lines(program, 10, 1, 1_000_000, 999_000):  # its call (at 999,000 ns) never comes
        stream.feed(line)
    stream.release()
    assert shown == []  # it may still come
    later = 1_000_000 + int(RETURN_WAIT * 1e9) + int(0.3e9)
    for line in _call_lines(program, fn, 11, 2, later):
        stream.feed(line)
    stream.release()
    assert [e.kind for e in shown] == ["ret"] and shown[0].args_text is None
    stream.release(everything=True)
    assert [e.kind for e in shown] == ["ret", "call"]

    quiet = []
    stream = EventStream(Decoder(program.probes), quiet.append)
    for line in _ret_lines(program, 10, 1, 1_000_000, 999_000):
        stream.feed(line)
    stream.release(everything=True)  # what the session does when the output has gone quiet
    assert [e.kind for e in quiet] == ["ret"]


def test_the_output_read_ahead_of_the_decoder_is_bounded(demo, monkeypatch):
    """The reader thread queued bpftrace's output for the decoder without bound: a decoder that
    could not keep up with a hot function grew without end. The backlog now holds BACKLOG_CHUNKS
    reads at most (the reader waits, the pipe fills, and bpftrace's drops are counted), and every
    line still reaches the decoder."""
    import dwarfgo.runner.session as session_module

    monkeypatch.setattr(session_module, "BACKLOG_CHUNKS", 4)
    _, fn, program = demo
    lines = []
    for seq in range(1, 61):
        lines += _call_lines(program, fn, 10, seq, 100_000_000 * seq)  # 0.1 s apart: shown as they come
    shown, backlog = [], []
    session = TraceSession(_FakeRun(lines), Decoder(program.probes), None, lambda m: None, window=0.05)

    def slow_show(ev):
        time.sleep(0.005)  # the reader runs meanwhile, as far as the backlog lets it
        backlog.append(session._chunks.qsize())
        shown.append(ev)

    session.show = session.stream.show = slow_show
    outcome = session()
    assert len(shown) == 60 and outcome.calls == 60
    assert max(backlog) <= 4 and max(backlog) == 4  # the reader was ahead, and held back


def test_events_held_for_time_order_are_bounded(demo, monkeypatch):
    """Events wait up to the reorder window of trace time; a burst that fits in the window (gofmt
    under 13 traced functions: 86,536 events in well under a second, some 6 KB each decoded) was held
    whole. At most HELD_EVENTS are held: past it the earliest is shown at once."""
    import dwarfgo.runner.stream as stream_module
    from dwarfgo.runner.stream import EventStream

    monkeypatch.setattr(stream_module, "HELD_EVENTS", 5)
    _, fn, program = demo
    shown, held = [], []
    stream = EventStream(Decoder(program.probes), shown.append)
    for seq in range(1, 21):  # 20 events 1 µs apart: all inside the 0.25 s window
        for line in _call_lines(program, fn, 10, seq, 1000 * seq):
            stream.feed(line)
        stream.release()
        held.append(len(stream._held))
    assert max(held) == 5 and len(shown) == 15
    stream.release(everything=True)
    assert [e.ts for e in shown] == [1000 * seq for seq in range(1, 21)]


def test_a_decoder_behind_is_not_taken_for_a_quiet_output_after_the_process_exits(demo, monkeypatch):
    """With -p, once the process has exited, bpftrace is stopped when its output has been quiet
    for QUIET seconds (it drops what it still holds when it stops). A reader held back by a full
    backlog reads nothing meanwhile: that is a busy decoder, not a quiet output, and must not
    bring the stop forward while bpftrace still has output to give."""
    import subprocess

    import dwarfgo.runner.session as session_module

    monkeypatch.setattr(session_module, "BACKLOG_CHUNKS", 1)
    monkeypatch.setattr(session_module, "QUIET", 0.2)
    _, fn, program = demo
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that has exited

    chunks = []
    for c in range(6):  # six reads of 10 events each; decoding one takes ~0.3 s, past QUIET
        lines = []
        for seq in range(10 * c + 1, 10 * c + 11):
            lines += _call_lines(program, fn, 10, seq, 100_000_000 * seq)
        chunks.append(lines)

    class BurstRun(_FakeRun):
        read_all_at = None

        def chunks(self):
            yield from chunks
            BurstRun.read_all_at = time.monotonic()

    run = BurstRun([])
    session = TraceSession(run, Decoder(program.probes), lambda ev: time.sleep(0.03), lambda m: None,
                           window=0.05, pid=gone.pid)
    outcome = session()
    assert outcome.calls == 60 and outcome.process_exited
    assert run.stop_requested is None or run.stop_requested >= BurstRun.read_all_at
