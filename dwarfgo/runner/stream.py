"""The one decoding path of `dwarfgo trace` and `dwarfgo decode`: a raw program's output lines in,
events out in time order, and the end-of-run report.

    lines ──▶ Decoder ──events──▶ reorder window ──▶ show()

`trace` feeds it bpftrace's output as it comes (session.py); `decode` feeds it a saved output
(a file, or stdin). Both show events with `event_text`/`event_json` and end with `report_lines`.
"""

from __future__ import annotations

import re

import heapq
import json
from dataclasses import dataclass, field
from typing import Callable, Iterable

from .decode import Decoder, Event

DEFAULT_WINDOW = 0.25  # seconds of trace time an event waits for earlier events from other CPUs
# decoded events held for time order at most (a few kilobytes each): past it the earliest is shown
# at once. gofmt's burst under 13 traced functions fits in the window: 100,000 held cost 250 MB
HELD_EVENTS = 20_000
RETURN_WAIT = 2.0  # seconds of trace time a return waits for its call (from another CPU) before it is shown alone


@dataclass
class TraceOutcome:
    calls: int = 0
    returns: int = 0
    lost_events: int = 0  # emitted by the probes, never decoded
    lost_exact: bool = False  # lost_events from the program's event counter (else: unknown, 0)
    lost_records: int = 0  # output records bpftrace reported lost
    incomplete: int = 0
    undecoded_lines: int = 0  # left in the queue by a second Ctrl-C
    interrupted: bool = False  # the second Ctrl-C: stopped without decoding the rest
    process_exited: bool = False
    unchecked: bool = False  # decode: the output never said which program printed it
    notes: list[str] = field(default_factory=list)


class EventStream:
    """Decoded events held `window` seconds of trace time (the newest event's timestamp minus
    theirs) and shown in timestamp order. With `hold_until_identified` (decode), nothing is shown
    before the output has said which program printed it (the decoder refuses another's output),
    or it has ended."""

    def __init__(self, decoder: Decoder, show: Callable[[Event], None], window: float = DEFAULT_WINDOW,
                 hold_until_identified: bool = False):
        self.decoder = decoder
        self.show = show
        self.window = window
        self.hold_until_identified = hold_until_identified
        self._held: list[tuple[int, int, Event]] = []  # (ts, arrival, event) heap
        self._arrival = 0
        self._newest = 0

    def feed(self, line: str) -> None:
        ev = self.decoder.feed(line)
        if ev is not None:
            self._hold(ev)
        for held in self.decoder.take_held():
            self._hold(held)

    def feed_chunk(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.feed(line)
        self.release()

    def _hold(self, ev: Event) -> None:
        if self.window <= 0 and not self._waiting:
            self.show(ev)
            return
        self._arrival += 1
        heapq.heappush(self._held, (ev.ts, self._arrival, ev))
        if ev.ts > self._newest:
            self._newest = ev.ts

    @property
    def _waiting(self) -> bool:
        return self.hold_until_identified and self.decoder.identity is None

    def release(self, everything: bool = False) -> None:
        """Show what can no longer be preceded by a later arrival (or everything held)."""
        if self._waiting:
            return
        horizon = self._newest - int(self.window * 1e9)
        # a return whose call has not come within RETURN_WAIT of trace time (or by a quiet output)
        # is shown without it: the call was lost (a long trace would otherwise hold such returns,
        # unseen, to its end)
        waited = None if everything else self._newest - int(max(self.window, RETURN_WAIT) * 1e9)
        for ev in self.decoder.unpaired_returns(waited):
            self._hold(ev)
        held = self._held
        while held and (everything or held[0][0] <= horizon or len(held) > HELD_EVENTS):
            self.show(heapq.heappop(held)[2])

    def finish(self, outcome: TraceOutcome) -> TraceOutcome:
        """The output has ended: the events still pending, everything held, and the counts."""
        for ev in self.decoder.finish():
            self._hold(ev)
        self.decoder.tables_done(final=True)
        outcome.unchecked = self.hold_until_identified and self.decoder.identity is None
        self.hold_until_identified = False
        self.release(everything=True)
        return self.counts(outcome)

    def counts(self, outcome: TraceOutcome) -> TraceOutcome:
        d = self.decoder
        outcome.calls, outcome.returns = d.calls_shown, d.returns_shown
        outcome.lost_events, outcome.lost_exact = d.events_lost, d.counts_exact
        outcome.lost_records, outcome.incomplete = d.lost, d.incomplete
        return outcome


def decode_lines(decoder: Decoder, lines: Iterable[str], show: Callable[[Event], None],
                 window: float = DEFAULT_WINDOW) -> TraceOutcome:
    """Decode a saved raw output (every line at hand): `dwarfgo decode`."""
    stream = EventStream(decoder, show, window, hold_until_identified=decoder.expect is not None)
    for line in lines:
        stream.feed(line)
        stream.release()
    return stream.finish(TraceOutcome())


def event_text(ev: Event) -> str:
    """An event as `trace` prints it (control characters escaped)."""
    return ("-> " if ev.kind == "call" else "<- ") + printable(ev.text())


def event_json(ev: Event, pid: int | None = None) -> str:
    return json.dumps(ev.to_json(pid))


def printable(text: str) -> str:
    """Control characters (from names in the binary, or string values) never reach the terminal raw."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def loss_lines(o: TraceOutcome, buffer_hint: str) -> list[str]:
    """The end-of-trace report of what was not shown, one line each (empty when nothing was lost)."""
    out = []
    if o.interrupted:
        out.append(f"dwarfgo: warning: stopped at once: {o.undecoded_lines} output line(s) of bpftrace were left "
                   f"undecoded, and events still in flight were not shown")
    if o.lost_events:
        how = "" if o.lost_exact else "at least "
        why = (f"bpftrace reported {o.lost_records} lost output record(s){buffer_hint}" if o.lost_records else
               "bpftrace never printed them (it stopped first, or its output buffer overflowed)")
        out.append(f"dwarfgo: warning: {how}{o.lost_events} traced event(s) (calls or returns) are missing: {why}")
    elif o.lost_records:
        out.append(f"dwarfgo: warning: bpftrace reported {o.lost_records} lost output record(s){buffer_hint}")
    if not o.lost_exact and not o.interrupted and (o.calls or o.returns):
        out.append("dwarfgo: warning: bpftrace's output ends without its event counter (printed when it "
                   "exits): events the probes emitted that never reached dwarfgo, if any, cannot be counted as "
                   "missing")
    if o.incomplete:
        out.append(f"dwarfgo: warning: {o.incomplete} event(s) cut short (output dropped by bpftrace, or the stop "
                   f"came first); their values are shown as unavailable")
    return out


def report_lines(outcome: TraceOutcome, decoder: Decoder, buffer_hint: str) -> list[str]:
    """Everything said on stderr at the end of a trace or a decode, one line each."""
    out = []
    if outcome.unchecked:
        out.append("dwarfgo: warning: the output never says which program printed it (no `@dg 0 0 attached` or "
                   "`identity` line): the events were decoded unchecked")
    out += loss_lines(outcome, buffer_hint)
    if decoder.failed_reads:
        out.append(f"dwarfgo: note: {decoder.failed_reads} memory read(s) failed (page not resident or bad "
                   f"pointer); those values are shown as unavailable")
    if decoder.untied_failures:
        out.append(f"dwarfgo: warning: {len(decoder.untied_failures)} failed memory read(s) could not be tied "
                   f"to an event: {decoder.untied_failures[0]}")
    out.append(summary_line(outcome.calls, outcome.returns, outcome.lost_events))
    return out


def summary_line(calls: int, returns: int, missing: int) -> str:
    """The last line of a trace or a decode: what was shown, and what is known to be missing."""
    lost = f", {missing} missing" if missing else ""
    return f"dwarfgo: {calls} call(s), {returns} return(s) shown{lost}"


SUMMARY_LINE = re.compile(r"^dwarfgo: (\d+) call\(s\), (\d+) return\(s\) shown(?:, (\d+) missing)?$", re.M)


def parse_summary(text: str) -> tuple[int, int, int] | None:
    """(calls, returns, missing) from the summary line in `text` (a trace's stderr), or None."""
    m = SUMMARY_LINE.search(text)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)) if m else None


def decoder_for(prog, program, max_str: int, expect=None) -> Decoder:
    """The decoder of a generated raw program (emit.bpftrace.Program) of `prog`: code addresses and
    runtime type addresses named from the binary. `expect`: the identity to check the output
    against (decode), normally `program.identity`."""
    from ..runtime_types import RuntimeTypeNames

    names = RuntimeTypeNames(prog)

    def symbolize(addr: int) -> str | None:
        sym = prog.binary.symbol_at(addr)
        return sym.name if sym else None

    decoder = Decoder(program.probes, symbolize=symbolize, type_name=names, max_str=max_str,
                      read_lines=program.read_lines, expect=expect,
                      read_spots=program.read_spots, early_reads=program.early_reads,
                      program_lines=program.text.splitlines(), itab_type=names.itab_type)
    if program.aggregates:
        from .aggregates import AggregateReader
        decoder.aggregates = AggregateReader(program.aggregates, type_name=names)
    return decoder
