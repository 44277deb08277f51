"""Layer 5: decode the program's `@dg` lines back into Go values.

Lines are grouped per (thread, event time) until the event's `end` line; then the
probe's read plan is walked to turn raw words into JSON-ready values and Go syntax.
"""

from __future__ import annotations

import math
import re
import struct
import typing
from dataclasses import dataclass, field

from ..emit.bpftrace import ProbePlan
from ..emit.identity import ProgramIdentity
from ..errors import DwarfgoError
from ..emit.plan import (ArrayNode, ChanNode, ComplexNode, FuncNode, GuardNode, InterfaceNode, MapNode, Node,
                         PointerNode, Read, Scalar, SliceNode, StringNode, StructNode)
from ..gotypes import Kind

_HEX_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")


AWAITED_CALLS = 100_000  # calls kept for their return at most (see Decoder._await_return)


@dataclass
class Event:
    kind: str  # "call" or "ret"
    probe: ProbePlan
    tid: int
    ts: int
    g: int
    goid: int | None
    values: dict  # name -> JSON value
    texts: dict  # name -> Go syntax
    ret_site: int | None = None
    latency_ns: int | None = None
    args_text: str | None = None  # for returns: the matching call's arguments
    call_args: dict | None = None  # for returns: the matching call's argument values
    call_id: tuple | None = None  # (pid, g, ts) of the call event (for a return: of its call)
    incomplete: str | None = None  # bpftrace dropped some of this event's lines
    pid: int | None = None  # the traced process (several when tracing a binary system-wide)

    @property
    def func(self) -> str:
        return self.probe.function.name

    def to_json(self, pid: int | None = None) -> dict:
        rec = {"event": self.kind, "func": self.func, "pid": self.pid if self.pid is not None else pid,
               "tid": self.tid, "goroutine": self.goid,
               "g": hex(self.g), "ts": self.ts}
        if self.probe.unknown:
            rec["unavailable"] = self.probe.unknown
        if self.incomplete:
            rec["incomplete"] = self.incomplete
        if self.kind == "call":
            rec["args"] = self.values
        else:
            rec["results"] = self.values
            rec["args"] = self.call_args  # of the call this return ends (same goroutine), if it was seen
            rec["latency_ns"] = self.latency_ns
            rec["ret_site"] = hex(self.ret_site) if self.ret_site is not None else None
        return rec

    def text(self) -> str:
        short = self.func
        if self.kind == "call":
            return f"{short}({', '.join(f'{k}={v}' for k, v in self.texts.items())})"
        res = [f"{k}={v}" for k, v in self.texts.items()] if self.probe.selected else list(self.texts.values())
        shown = res[0] if len(res) == 1 else "(" + ", ".join(res) + ")"
        lat = f"  {_duration(self.latency_ns)}" if self.latency_ns else ""
        return f"{short}({self.args_text or '…'}) → {shown}{lat}"


def _duration(ns: int) -> str:
    if ns < 1000:
        return f"{ns}ns"
    if ns < 1_000_000:
        return f"{ns / 1000:.1f}µs"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.1f}ms"
    return f"{ns / 1e9:.2f}s"


@dataclass
class _Pending:
    header: list[str]
    raw: dict[int, str] = field(default_factory=dict)
    lines: int = 1
    failed: dict[int, str] = field(default_factory=dict)  # read index -> why the memory read failed
    cpu: int | None = None  # where the event's probe ran (from its first line; older programs: None)
    zero_only: set[int] = field(default_factory=set)  # failed reads that stand only if their value is zero

    @property
    def probe_id(self) -> int:
        return int(self.header[1])

    @property
    def ts(self) -> int:
        try:
            return int(self.header[2])
        except (ValueError, IndexError):  # a cut header line
            return 0


# bpftrace's report of a failed memory read: 0.17 with -kk, one line
#   /tmp/x.bt:29:12-30: WARNING: Failed to probe_read: Bad address (-14)
# 0.23+ with -k, two lines (the first alone is also the shape of compile-time warnings)
#   /tmp/x.bt:29:12-30: WARNING: Bad address
#   Additional Info - helper: probe_read_user, retcode: -14
# bpftrace prints every map when it exits: the program's event counter is the number of events its
# probes emitted, printed or not (`@dg_n: 17`)
_EMITTED = re.compile(r"^@dg_n: (\d+)$")
_CARET = re.compile(r"^\s*[~^]+\s*$")
_LOST = re.compile(r"(?:WARNING: )?Lost (\d+) events")  # bpftrace's count of records it dropped
_LOCATED_WARNING = re.compile(r"^\S*?:(\d+):(\d+)(?:-\d+)?: WARNING: (.*)$")
_OLD_READ_FAILURE = re.compile(r"Failed to probe_read\w*: (.*?)(?: \(-?\d+\))?$")


class ProgramMismatch(DwarfgoError):
    """The output was printed by another program than the one this decoder was built for."""


class Decoder:
    """Feed it the program's output lines; it yields complete events.

    `expect`: the identity of the program the plan was made for; output that says it came from
    another program (its attach marker or END block) raises ProgramMismatch."""

    def __init__(self, probes: list[ProbePlan], symbolize=None, type_name=None, max_str: int = 64,
                 read_lines: dict[int, tuple[int, ...]] | None = None, expect: ProgramIdentity | None = None,
                 read_spots: dict[tuple[int, int], tuple[int, int]] | None = None,
                 early_reads: set[tuple[int, int]] | None = None, program_lines: list[str] | None = None,
                 itab_type=None):
        self.probes = {p.probe_id: p for p in probes}
        self.expect = expect
        self.identity: ProgramIdentity | None = None  # what the output said about its program
        self.aggregates = None  # an AggregateReader (runner/aggregates.py) when the program aggregates
        self.on_tables = None  # called with (tables, final) at each --interval mark and at the end
        self.read_lines = read_lines or {}  # program line -> (probe id, read index, ...)
        self.read_spots = read_spots or {}  # (program line, column) -> (probe id, read index): byte copies
        self.early_reads = early_reads or set()  # (probe id, read index) done before their event's first line
        # failed early reads awaiting their event: (probe id, read index) -> (CPUs that printed since, why)
        self._armed: dict[tuple[int, int], tuple[set[int], str]] = {}
        self.failed_reads = 0  # memory reads bpftrace reported failed, tied to their values
        self.untied_failures: list[str] = []  # failed reads that could not be tied to an event
        self._failures = False  # the event being decoded has a failed read (see _node)
        self._held_warning: tuple[int, int, str, str] | None = None
        self._bias = 0  # of the event being decoded
        self.symbolize = symbolize or (lambda addr: None)  # code address -> function name
        self.type_name = type_name or (lambda addr: None)  # runtime type address -> Go type name
        # (a static itab's link address, plan.StaticItabs) -> the link address its type word holds
        self.itab_type = itab_type or (lambda itab, static: None)
        self.max_str = max_str
        self.pending: dict[tuple[int, int], _Pending] = {}
        self.lost = 0
        # (pid, g, ts) -> call event awaiting its return: only calls of functions whose returns are
        # traced, at most AWAITED_CALLS of them (a long trace keeps no event it has shown otherwise)
        self.calls: dict[tuple, Event] = {}
        self._returning = {p.function.name for p in probes if p.kind == "ret"}
        self._forgotten: dict[tuple, None] = {}  # calls dropped from `calls` (oldest first), as many at most
        self.early_returns: dict[tuple, Event] = {}  # returns that arrived before their call
        self.incomplete = 0
        self.held: list[Event] = []
        self.unparsed: list[str] = []
        # called with each line that is neither the program's nor bpftrace's own: the output of a
        # command run with -c, which bpftrace's output stream carries too
        self.on_other_output = None
        self._after_warning = 0  # lines still to come of bpftrace's last located warning
        # the program's text, by line: a warning's source line is told from a -c command's line
        # by what it says (the command's output can come between a warning's lines: bpftrace
        # writes them one by one to the stream the command shares); None: by position
        self.program_lines = program_lines
        self._warning_source: list[str] | None = None  # the words of the line the last warning names
        self.seen = 0  # events whose first line arrived
        self.emitted: int | None = None  # events the probes emitted (from the exit map)
        self.calls_shown = 0
        self.returns_shown = 0

    def _program_line(self, number: int) -> list[str] | None:
        """The words of line `number` (1-based) of the program's text, which bpftrace prints under
        a warning (with its tabs expanded)."""
        lines = self.program_lines
        if lines is None or not 0 < number <= len(lines):
            return None
        return lines[number - 1].split()

    # ------------------------------------------------------------ accounting
    @property
    def events_lost(self) -> int:
        """Events the probes emitted that never reached the decoder: their first line (or every
        line) was lost by bpftrace, or bpftrace never printed it (stopped first). Known when
        bpftrace printed its event counter at exit (0 otherwise: counts_exact says so)."""
        return max(0, self.emitted - self.seen) if self.emitted is not None else 0

    @property
    def counts_exact(self) -> bool:
        """True when the emitted totals came from bpftrace's exit map (the loss figure is exact)."""
        return self.emitted is not None

    def feed(self, line: str) -> Event | None:
        line = line.rstrip("\n")
        if self.aggregates is not None and self.aggregates.feed(line):
            return None
        m = _LOST.match(line) if "Lost " in line else None
        if m:
            self.lost += int(m.group(1))
            return None
        if line.startswith("@dg_n: "):
            m = _EMITTED.match(line)
            if m:
                self.emitted = int(m.group(1))
                return None
        if not line.startswith("@dg "):
            held, self._held_warning = self._held_warning, None
            waiting = held  # kept over a line of the -c command that comes between the warning's lines
            m = _LOCATED_WARNING.match(line)
            after_warning, self._after_warning = self._after_warning, 0
            if m:
                self._after_warning = 3  # at most: Additional Info, the source line, the caret line
                self._warning_source = self._program_line(int(m.group(1)))
                old = _OLD_READ_FAILURE.match(m.group(3))
                if old:
                    self._read_failed(int(m.group(1)), int(m.group(2)), old.group(1), line)
                else:  # a read failure only if bpftrace's next line names a probe_read helper
                    self._held_warning = (int(m.group(1)), int(m.group(2)), m.group(3), line)
            elif after_warning == 3 and line.startswith("Additional Info - "):
                self._after_warning = 2  # 0.23+: the helper's line; the source and caret lines follow
                if held and line.startswith("Additional Info - helper: probe_read"):
                    self._read_failed(*held)
            elif line.strip() and not line.startswith("Attaching"):
                self.unparsed.append(line)
                known = self._warning_source
                if after_warning >= 2 and (known is None or line.split() == known):
                    self._after_warning = 1  # the warning's source line; its caret line may follow
                elif after_warning >= 1 and _CARET.match(line):
                    self._after_warning = 0  # the caret line under the warning's source line
                else:
                    if after_warning and known is not None:  # not the warning's: its lines may follow
                        self._after_warning, self._held_warning = after_warning, waiting
                    if self.on_other_output is not None and not _bpftrace_message(line):
                        self.on_other_output(line)  # e.g. the -c command's own output
            return None
        # a warning's lines come together: an event line ends them (a traced command's line that
        # comes later is its own, not the warning's; one was swallowed after 0.17's start-up warnings)
        self._after_warning = 0
        parts = line.split(" ", 4)
        if len(parts) < 4:
            return None
        try:
            tid, seq, what = int(parts[1]), int(parts[2]), parts[3]
        except ValueError:
            self.unparsed.append(line)
            return None
        key = (tid, seq)
        rest = parts[4] if len(parts) > 4 else ""
        if tid == 0 and seq == 0:  # the program's own lines: attached, identity
            if what in ("attached", "identity") and rest:
                self._identified(rest)
            if what in ("interval", "identity"):  # the END block's line: the maps printed at exit follow
                self.tables_done(final=False)
            return None
        if what in ("call", "ret"):
            # `<header>` alone, or `<header> : <values or end>` (the event's first printf of values)
            header, colon, tail = rest.partition(" : ")
            if key not in self.pending:
                self.seen += 1
            pend = _Pending([what] + header.split(" "))
            pend.cpu = _cpu_of(pend.header)
            self.pending[key] = pend
            self._printed_on(pend.cpu, pend, first=True)
            if not colon:
                return None
            what, _, rest = tail.partition(" ")
            return self._more(tid, seq, key, pend, what, rest, counted=True)
        pend = self.pending.get(key)
        if pend is None:
            return None
        self._printed_on(pend.cpu, pend, first=False)
        return self._more(tid, seq, key, pend, what, rest, counted=False)

    def _more(self, tid: int, seq: int, key: tuple[int, int], pend: _Pending, what: str, rest: str,
              counted: bool) -> Event | None:
        """A line's values, or its end (`end <lines printed> [<reads> <values>...]`); `counted`:
        the line is the event's first (already counted in pend.lines)."""
        if what == "end":
            del self.pending[key]
            count, _, values = rest.partition(" ")
            printed = int(count) if count.isdigit() else None
            if values:
                self._values(pend, values)
            cut = None
            expected = pend.lines if counted else pend.lines + 1
            if printed is not None and printed != expected:
                cut = f"bpftrace dropped {printed - expected} of this event's {printed} output lines"
            ev = self._event(tid, seq, pend, cut)
            if ev is None:
                return None
            return self._deliver(ev)
        if what.isdigit() and rest.startswith("\\x") or rest == "":  # a byte copy (%rx): one read
            pend.raw[int(what)] = rest
        else:
            self._values(pend, what + " " + rest)
        if not counted:
            pend.lines += 1
        return None

    def _printed_on(self, cpu: int | None, pend: _Pending, first: bool) -> None:
        """A line of `pend`'s event printed on `cpu`: the first line from that CPU since a failed
        early read was reported. If it is the first line of an event of that read's probe, that
        event is the one whose read failed, or another CPU's (each CPU's lines come in the order
        its probes printed them, and a probe runs on one CPU without interruption, so the event
        of the failed read is the next thing its CPU printed): its read is unavailable."""
        if cpu is None or not self._armed:
            return
        for (probe_id, index), (cpus, reason) in self._armed.items():
            if cpu in cpus:
                continue
            cpus.add(cpu)
            if first and pend.probe_id == probe_id:
                pend.failed[index] = reason
                pend.zero_only.add(index)  # another CPU's event, unless its value is all zeros
                self.failed_reads += 1

    def tables_done(self, final: bool) -> None:
        """The aggregation maps read since the last call are complete: hand them on."""
        if self.aggregates is None:
            return
        tables = self.aggregates.snapshot()
        if tables and self.on_tables is not None:
            self.on_tables(tables, final)

    def _identified(self, text: str) -> None:
        printed = ProgramIdentity.parse(text)
        if printed is None:
            return
        if self.expect is not None:
            why = self.expect.mismatch(printed)
            if why:
                raise ProgramMismatch(f"cannot decode this output: {why}")
        self.identity = printed

    def _values(self, pend: _Pending, text: str) -> None:
        """`<read>,<read>... <value> <value>...` (scalars: no spaces in a value)."""
        indices, _, rest = text.partition(" ")
        try:
            for i, v in zip(indices.split(","), rest.split(" ")):
                pend.raw[int(i)] = v
        except ValueError:
            self.unparsed.append(text)

    def _read_failed(self, program_line: int, column: int, why: str, text: str) -> None:
        """A memory read failed (bpftrace then gives zeros). bpftrace handles the output of one
        probe run in order, and prints this warning in the same stream. A read done after its
        event's first line was printed: the event is pending and its value line for that read has
        not come; every such event (usually one; several when CPUs run the same probe at once)
        loses that read. A read done before (early_reads): the event's first line comes later,
        see _printed_on. The read is the one at the warning's line, or for a byte copy (a printf
        may make several) at its line and column."""
        where = self.read_spots.get((program_line, column)) or self.read_lines.get(program_line)
        if where is None:
            self.untied_failures.append(text)
            return
        probe_id, *indices = where  # several: one read of a struct's words (emit/bpftrace.py _coalesce)
        reason = f"memory read failed ({why}): page not resident, or not a valid address"
        tied = [self._one_read_failed(probe_id, index, reason) for index in indices]
        if not all(tied):
            self.untied_failures.append(text)

    def _one_read_failed(self, probe_id: int, index: int, reason: str) -> bool:
        """False when no event could be given the failure of read `index`."""
        where = (probe_id, index)
        if where in self.early_reads:
            # done before its event printed anything: the event comes later, as the next line its
            # CPU prints (which CPU is not said: the next first line of this probe from every CPU
            # loses the read). A later failure of the same read covers an earlier one's CPUs.
            self._armed[where] = (set(), reason)
            return True
        candidates = [p for p in self.pending.values() if p.probe_id == probe_id and index not in p.raw]
        for p in candidates:
            p.failed[index] = reason
            self.failed_reads += 1
        return bool(candidates)

    # ------------------------------------------------------------ events
    def _event(self, tid: int, seq: int, pend: _Pending, cut: str | None = None) -> Event | None:
        """The event of a complete group of lines; with `cut` (some of its lines never came), its
        values are all unavailable with that reason. None when even the first line is cut short
        (the event is then counted as lost)."""
        try:
            ev = self._decode_event(tid, seq, pend, cut)
        except (ValueError, IndexError, KeyError):
            self.seen -= 1  # a first line cut short: the event is lost
            return None
        if cut:
            self._incomplete(ev, cut)
        return ev

    def _decode_event(self, tid: int, seq: int, pend: _Pending, cut: str | None) -> Event:
        h = pend.header
        kind, probe = h[0], self.probes[int(h[1])]
        ts, g = int(h[2]), int(h[3], 16)
        values, texts = {}, {}
        raw = pend.raw
        self._failures = bool(pend.failed)
        if pend.failed:
            raw = dict(raw)
            for index, reason in pend.failed.items():
                if index in pend.zero_only and not _all_zero(raw.get(index)):
                    self.failed_reads -= 1  # a failed read gives zeros: this event's read did not fail
                    continue
                raw[index] = _FailedRead(reason)
        # load bias (PIE): the probed instruction's run-time address minus its link-time address
        pc_field, linked = (5, probe.attach_address) if kind == "call" else (7, int(h[4], 16))
        pc = _hex(h[pc_field]) if len(h) > pc_field else None
        self._bias = pc - linked if pc is not None and linked is not None else 0
        for v in probe.values:
            j, t = self._node(v.node, raw) if cut is None else _unavailable(cut)
            values[v.name] = j
            texts[v.name] = t
        pid_field = pc_field + 1
        pid = int(h[pid_field]) if len(h) > pid_field else None
        if kind == "call":
            goid = int(h[4]) if len(h) > 4 and int(h[4]) >= 0 else None
            return Event("call", probe, tid, ts, g, goid, values, texts, call_id=(pid, g, ts), pid=pid)
        site, latency = int(h[4], 16), int(h[5])
        call_ts = int(h[6]) if len(h) > 6 else 0  # the time of the call this return ends (0: unknown)
        call_id = (pid, g, call_ts) if call_ts > 0 else None
        return Event("ret", probe, tid, ts, g, None, values, texts, site, latency or None, call_id=call_id, pid=pid)

    def _deliver(self, ev: Event) -> Event | None:
        """Pair a return with its call (by the call's id, recorded by the program at entry). Events
        of one goroutine can arrive out of order when it moved between CPUs: a return that comes
        before its call is held until the call arrives."""
        if ev.kind == "call":
            self.calls_shown += 1
            early = self.early_returns.pop(ev.call_id, None)
            if early is not None:
                self._attach_call(early, ev)
                self.held.append(early)
            elif ev.probe.function.name in self._returning:
                self._await_return(ev)
            return ev
        self.returns_shown += 1
        call = self.calls.pop(ev.call_id, None) if ev.call_id else None
        if call is None and ev.call_id is not None:
            if self._forgotten.pop(ev.call_id, 0) is None:
                return ev  # its call was shown long ago (see _await_return): without its arguments
            self.early_returns[ev.call_id] = ev
            return None
        if call is not None:
            self._attach_call(ev, call)
        return ev

    def _await_return(self, call: Event) -> None:
        """Keep a call until its return pairs with it. A call that never returns (a panic,
        runtime.Goexit, a goroutine blocked for good, or a return bpftrace lost) would be kept for
        the whole trace, so past AWAITED_CALLS the oldest is dropped; its return, should it come,
        is shown without the call's arguments (its id is remembered, as many at most)."""
        calls = self.calls
        calls[call.call_id] = call
        if len(calls) > AWAITED_CALLS:
            oldest = next(iter(calls))
            del calls[oldest]
            self._forgotten[oldest] = None
            if len(self._forgotten) > AWAITED_CALLS:
                del self._forgotten[next(iter(self._forgotten))]

    def unpaired_returns(self, before_ts: int | None) -> list[Event]:
        """Returns held for their call (see _deliver) that have waited long enough: those earlier
        than `before_ts` (trace time), or all (None: the output has gone quiet, so every buffer
        has been read and a call not yet come was lost). Shown without the call's arguments."""
        if not self.early_returns:
            return []
        if before_ts is None:
            out = list(self.early_returns.values())
            self.early_returns.clear()
            return out
        late = [key for key, ev in self.early_returns.items() if ev.ts < before_ts]
        return [self.early_returns.pop(key) for key in late]

    @staticmethod
    def _attach_call(ret: Event, call: Event) -> None:
        ret.args_text = ", ".join(f"{k}={v}" for k, v in call.texts.items())
        ret.call_args = call.values
        if ret.goid is None:
            ret.goid = call.goid  # the return probe does not read it: the call it ends knows it

    def take_held(self) -> list[Event]:
        """Returns released by the arrival of their call (emit them after that call)."""
        out, self.held = self.held, []
        return out

    def _incomplete(self, ev: Event, why: str) -> None:
        ev.incomplete = why
        self.incomplete += 1
        # any value may be missing a part: none is shown rather than a wrong one
        gone = _unavailable(why)
        ev.values = {k: gone[0] for k in ev.values}
        ev.texts = {k: gone[1] for k in ev.texts}

    def finish(self) -> list[Event]:
        """At the end: events whose last line never came (bpftrace 0.17 drops the output it reads
        after the stop signal, or the output was lost), shown with their values unavailable
        rather than not at all; then returns whose call never arrived (it was lost, or came
        before tracing began)."""
        out = []
        for (tid, seq), pend in sorted(self.pending.items(), key=lambda kv: kv[1].ts):
            ev = self._event(tid, seq, pend, "bpftrace stopped before printing the rest of this event")
            if ev is None:
                continue  # the first line itself is cut: counted as lost
            ev = self._deliver(ev)
            if ev is not None:
                out.append(ev)
            out += self.take_held()
        self.pending.clear()
        out += list(self.early_returns.values())
        self.early_returns.clear()
        return out

    # ------------------------------------------------------------ values
    def _node(self, node: Node, raw: dict[int, str]):
        """JSON value and Go syntax of one node; unavailable when one of its own reads failed, or
        when a word it needs is missing or garbled (never a crash, never a made-up value)."""
        cls = type(node)
        shape = _SHAPES.get(cls)
        if shape is None:
            shape = _SHAPES[cls] = _Shape.of(cls)
        if self._failures:  # only an event with a failed read can hold a _FailedRead
            for name in shape.reads:
                r = getattr(node, name)
                if r is not None and isinstance(raw.get(r.index), _FailedRead):
                    return _unavailable(raw[r.index].reason)
        if shape.show is None:
            return {"unavailable": "unknown node"}, "<?>"
        try:
            return shape.show(self, node, raw)
        except (TypeError, ValueError, struct.error, OverflowError):
            return _unavailable("bpftrace's output for this value is incomplete")

    def _show_scalar(self, node: Scalar, raw: dict[int, str]):
        if node.read is None:
            return _unavailable(node.unavailable)
        return self._scalar(node, raw.get(node.read.index))

    def _show_complex_node(self, node: ComplexNode, raw: dict[int, str]):
        (rj, rt), (ij, it) = self._node(node.real, raw), self._node(node.imag, raw)
        if isinstance(rj, dict) or isinstance(ij, dict):
            reason = (rj if isinstance(rj, dict) else ij).get("unavailable", "unreadable")
            return _unavailable(reason)
        return {"real": rj, "imag": ij}, f"({rt}{'+' if not str(it).startswith('-') else ''}{it}i)"

    def _show_string_node(self, node: StringNode, raw: dict[int, str]):
        if node.ptr is None:
            return _unavailable(node.unavailable)
        length = _int(raw.get(node.len.index))
        data = _bytes(raw.get(node.data.index, "")) if length and length > 0 else b""
        s = data.decode("utf-8", "surrogateescape")
        js = data.decode("utf-8", "replace")
        if length is not None and len(data) < length:
            return ({"prefix": js, "len": length, "truncated": True},
                    f"{_go_quote(s)}…(len {length})")
        return js, _go_quote(s)

    def _show_slice_node(self, node: SliceNode, raw: dict[int, str]):
        if node.ptr is None:
            return _unavailable(node.unavailable)
        ptr, ln, cp = _hex(raw.get(node.ptr.index)), _int(raw.get(node.len.index)), _int(raw.get(node.cap.index))
        if ptr == 0 and ln == 0 and cp == 0:
            return None, "nil"
        items_j, items_t = [], []
        if node.data is not None:
            data = _bytes(raw.get(node.data.index, "")) if ln else b""
            items_j = list(data)
            items_t = [str(b) for b in data]
        else:
            for i, item in enumerate(node.items):
                if ln is None or i >= ln:
                    break
                j, t = self._node(item, raw)
                items_j.append(j)
                items_t.append(t)
        more = "" if ln is None or len(items_j) >= ln else f"…{ln - len(items_j)} more"
        tname = node.type.name if node.type else "[]?"
        text = cut = None
        if node.data is not None and data:
            cut = "…" if ln is not None and len(data) < ln else ""
            text = _text_of(data, cut_short=bool(cut))
        if text is not None:  # []byte holding text: shown as Go's conversion from a string
            return ({"len": ln, "cap": cp, "items": items_j},
                    f"{tname}({_go_quote(text)}{cut})(len {ln}, cap {cp})")
        return ({"len": ln, "cap": cp, "items": items_j},
                f"{tname}{{{_listed(items_t, more)}}}(len {ln}, cap {cp})")

    def _show_array_node(self, node: ArrayNode, raw: dict[int, str]):
        pairs = [self._node(i, raw) for i in node.items]
        length = node.type.length if node.type else len(pairs)
        more = f"…{length - len(pairs)} more" if length and length > len(pairs) else ""
        return [p[0] for p in pairs], f"{node.type.name if node.type else ''}{{{_listed([p[1] for p in pairs], more)}}}"

    def _show_struct_node(self, node: StructNode, raw: dict[int, str]):
        obj, parts = {}, []
        for name, f in node.fields:
            if f.type is not None and f.type.size == 0:
                obj[name] = {} if f.type.kind is Kind.STRUCT else []
                continue
            j, t = self._node(f, raw)
            obj[name] = j
            parts.append(f"{name}:{t}")
        return obj, f"{node.type.name if node.type else 'struct'}{{{', '.join(parts)}}}"

    def _show_pointer_node(self, node: PointerNode, raw: dict[int, str]):
        if node.ptr is None:
            return _unavailable(node.unavailable)
        ptr = _hex(raw.get(node.ptr.index))
        if ptr is None:
            return _unavailable("not printed")
        if ptr == 0:
            return None, "nil"
        if node.target is None:
            return {"ptr": hex(ptr)}, f"({node.type.name})({ptr:#x})"
        j, t = self._node(node.target, raw)
        return j, "&" + t

    def _show_guard_node(self, node: GuardNode, raw: dict[int, str]):
        if node.check is None:
            return _unavailable(node.reason)
        raw_check = raw.get(node.check.index)
        value = _hex(raw_check) if node.check.kind == "hex" else _int(raw_check)
        if value is None:
            return _unavailable("not read")
        if value > node.minimum and node.target is not None:
            return self._node(node.target, raw)
        if node.otherwise is not None:
            return node.otherwise, str(node.otherwise)
        return _unavailable(node.reason)

    def _show_interface_node(self, node: InterfaceNode, raw: dict[int, str]):
        if node.tab is None:
            return _unavailable(node.unavailable)
        tab = _hex(raw.get(node.tab.index))
        data = _hex(raw.get(node.data.index))
        if tab == 0:
            return None, "nil"
        if node.type_ptr is None:
            taddr = tab  # an empty interface's type word is the type
        elif (node.static_itabs is not None and tab is not None
              and node.static_itabs.first <= tab - self._bias <= node.static_itabs.last):
            # a static itab: the probe did not follow it; its type word is the file's
            link = self.itab_type(tab - self._bias, node.static_itabs)
            if link is None:
                return _unavailable(f"itab {tab:#x}: its type word is not known from the binary's file")
            taddr = link + self._bias
        else:
            taddr = _hex(raw.get(node.type_ptr.index))
        name = self.type_name(taddr - self._bias) if taddr else None
        return ({"type": name, "type_addr": hex(taddr or 0), "data": hex(data or 0)},
                f"{node.type.name}({name or hex(taddr or 0)} @ {data:#x})")

    def _show_map_node(self, node: MapNode, raw: dict[int, str]):
        if node.ptr is None:
            return _unavailable(node.unavailable)
        ptr = _hex(raw.get(node.ptr.index))
        if ptr == 0:
            return None, "nil"
        count = _int(raw.get(node.count.index)) if node.count is not None else None
        return {"len": count}, f"{node.type.name}(len {count})"

    def _show_chan_node(self, node: ChanNode, raw: dict[int, str]):
        if node.ptr is None:
            return _unavailable(node.unavailable)
        ptr = _hex(raw.get(node.ptr.index))
        if ptr == 0:
            return None, "nil"
        ln = _int(raw.get(node.len.index)) if node.len else None
        cp = _int(raw.get(node.cap.index)) if node.cap else None
        return {"len": ln, "cap": cp}, f"{node.type.name}(len {ln}, cap {cp})"

    def _show_func_node(self, node: FuncNode, raw: dict[int, str]):
        if node.ptr is None:
            return _unavailable(node.unavailable)
        ptr = _hex(raw.get(node.ptr.index))
        if ptr == 0:
            return None, "nil"
        code = _hex(raw.get(node.code.index)) if node.code else None
        name = self.symbolize(code - self._bias) if code else None
        return {"func": name or hex(code or 0)}, f"{name or hex(code or 0)}"

    def _scalar(self, node: Scalar, raw: str | None):
        if raw is None:
            return {"unavailable": "not read"}, "<not read>"
        kind = node.read.kind
        if kind in ("int", "uint"):
            v = int(raw)
            return v, str(v)
        if kind == "bool":
            v = int(raw) != 0
            return v, "true" if v else "false"
        if kind == "hex":
            v = int(raw, 16)
            if node.type is not None and node.type.kind is Kind.UINTPTR:
                return v, hex(v)
            return (None, "nil") if v == 0 else (hex(v), hex(v))
        if kind in ("f32", "f64"):
            bits = int(raw, 16)
            if kind == "f32":
                f = struct.unpack("<f", struct.pack("<I", bits & 0xFFFFFFFF))[0]
            else:
                f = struct.unpack("<d", struct.pack("<Q", bits))[0]
            if math.isnan(f) or math.isinf(f):
                return {"float": str(f), "bits": hex(bits)}, str(f)
            return f, repr(f)
        return raw, raw


_BPFTRACE_MESSAGES = ("ERROR", "WARNING", "Attach", "Lost ", "Additional Info", "@", "open(/sys/", "RLIMIT_MEMLOCK")


def _bpftrace_message(line: str) -> bool:
    """bpftrace's own chatter (messages, map printouts at exit), not a traced command's output."""
    return line.startswith(_BPFTRACE_MESSAGES) or bool(_LOCATED_WARNING.match(line))


class _FailedRead(str):
    """In place of a raw value: bpftrace reported this memory read failed (its zeros are not data)."""

    def __new__(cls, reason: str):
        obj = super().__new__(cls, "")
        obj.reason = reason
        return obj


@dataclass(frozen=True)
class _Shape:
    """What the decoder needs to know of a node class: the fields that hold its own reads (a failed
    read makes the node unavailable) and the method that shows it. Found once per class."""
    reads: tuple[str, ...]
    show: object

    @staticmethod
    def of(cls) -> "_Shape":
        hints = typing.get_type_hints(cls)
        reads = tuple(name for name, hint in hints.items() if Read in typing.get_args(hint) or hint is Read)
        show = next((fn for kind, fn in _SHOW.items() if issubclass(cls, kind)), None)
        return _Shape(reads, show)


_SHOW = {
    Scalar: Decoder._show_scalar,
    ComplexNode: Decoder._show_complex_node,
    StringNode: Decoder._show_string_node,
    SliceNode: Decoder._show_slice_node,
    ArrayNode: Decoder._show_array_node,
    StructNode: Decoder._show_struct_node,
    PointerNode: Decoder._show_pointer_node,
    GuardNode: Decoder._show_guard_node,
    InterfaceNode: Decoder._show_interface_node,
    MapNode: Decoder._show_map_node,
    ChanNode: Decoder._show_chan_node,
    FuncNode: Decoder._show_func_node,
}
_SHAPES: dict[type, _Shape] = {}


def _all_zero(raw: str | None) -> bool:
    """A printed word or byte copy that a failed read could have given: the kernel fills the
    destination of a failed read with zeros (an empty copy read nothing, so it cannot have failed)."""
    if raw is None:
        return True
    if raw.startswith("\\x"):
        data = _bytes(raw)
        return not any(data)
    if raw == "":
        return False
    try:
        return int(raw, 16) == 0
    except ValueError:
        return True


def _cpu_of(header: list[str]) -> int | None:
    """The CPU field of an event's first line (after the pid); None in output of older programs."""
    at = (5 if header[0] == "call" else 7) + 2
    try:
        return int(header[at]) if len(header) > at else None
    except ValueError:
        return None


def _unavailable(reason: str | None) -> tuple[dict, str]:
    """A value dwarfgo cannot give: JSON form and Go-syntax form, both with the reason."""
    return {"unavailable": reason}, f"<unavailable: {reason}>"


def _int(raw: str | None) -> int | None:
    """None when the word was not printed; a garbled word raises ValueError (the value that needs
    it becomes unavailable, see Decoder._node)."""
    return None if raw is None else int(raw)


def _hex(raw: str | None) -> int | None:
    return None if raw is None else int(raw, 16)


def _bytes(raw: str) -> bytes:
    """bpftrace's %rx output: `\\x68\\x65…`."""
    return bytes(int(h, 16) for h in _HEX_ESCAPE.findall(raw))


def _listed(items: list[str], more: str) -> str:
    """The inside of a composite literal: its items, then `…N more` for the elements not read
    (alone when none was read: `{…1096 more}`, not `{, …1096 more}`)."""
    return ", ".join(items + ([more] if more else []))


def _text_of(data: bytes, cut_short: bool = False) -> str | None:
    """The bytes as text, if they are UTF-8 of printable characters and common whitespace; else
    None. Only a copy cut short (`cut_short`) may end inside a character (its first bytes, which
    are dropped): every other byte must be part of the text."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        if not (cut_short and e.reason == "unexpected end of data" and e.end == len(data)):
            return None
        text = data[:e.start].decode("utf-8")
    return text if all(ch.isprintable() or ch in "\n\t\r" for ch in text) else None


def _go_quote(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif "\udc80" <= ch <= "\udcff":
            out.append(f"\\x{ord(ch) - 0xdc00:02x}")
        elif ch.isprintable():
            out.append(ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) < 0x10000 else f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)
