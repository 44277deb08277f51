"""Layer 5: a trace session: bpftrace's output read, decoded, put in time order and shown, with every
event accounted for.

    bpftrace ──lines──▶ reader thread ──queue──▶ decoder ──events──▶ reorder window ──▶ show()

* **Stop-safe.** A stop request (the first Ctrl-C or SIGTERM, `--duration`, the traced process
  exiting) only asks bpftrace to stop; decoding goes on until bpftrace's output ends, so every
  event bpftrace printed is shown. A second Ctrl-C stops at once and says how much was left
  undecoded. Signal handlers never raise into the decoder (which once lost the event in hand).
* **Time order.** bpftrace reads one output buffer per CPU, so events of different CPUs arrive
  out of order. Events are held for `window` seconds of trace time (the newest event's
  timestamp minus the event's) and shown in timestamp order; when the output goes quiet for
  that long, everything held is shown.
* **Accounting.** At the end: calls and returns shown, events the probes emitted that never
  reached dwarfgo (from the program's event counter, which bpftrace prints when it exits), output records
  bpftrace said it lost, and events cut short.
"""

from __future__ import annotations

import queue
import signal
import threading
import time
from typing import Callable

from .decode import Decoder, Event
from .run import BpftraceRun
from .stream import DEFAULT_WINDOW, EventStream, TraceOutcome
from .target import process_alive

QUIET, DRAIN_MAX = 1.0, 60.0  # after the -p process exits: output quiet this long, or at most this
# bpftrace's output read ahead of the decoder, in chunks (one read of the pipe each, up to 1 MiB):
# a burst waits here rather than in bpftrace's buffers; beyond it the reader stops reading, the pipe
# fills, and what bpftrace then drops is counted as missing. Unbounded, a decoder that could not keep
# up with a hot function grew without end (2 million calls of bench-trace's program: 416 MiB).
BACKLOG_CHUNKS = 32
_EOF = None


class TraceSession:
    def __init__(self, run: BpftraceRun, decoder: Decoder, show: Callable[[Event], None],
                 say: Callable[[str], None], window: float = DEFAULT_WINDOW, pid: int | None = None,
                 raw_output=None):
        self.run = run
        self.raw_output = raw_output  # a text file: bpftrace's output, line for line, as it was read
        self.decoder = decoder
        self.show = show
        self.say = say  # a one-line message to the user (stderr)
        self.window = window
        self.pid = pid
        self.outcome = TraceOutcome()
        self.stream = EventStream(decoder, show, window)  # decoding and time order, shared with decode
        self._chunks: queue.Queue = queue.Queue(BACKLOG_CHUNKS)  # lists of lines, as read from bpftrace
        self._stops = 0
        self._done = threading.Event()
        self._last_line = time.monotonic()  # when the reader last got a line from bpftrace
        self._reader_waits = False  # the reader waits for room in the backlog (see _put)
        self._pending_chunk: list[str] | None = None  # the chunk being decoded, and how far
        self._done_in_chunk = 0

    # ------------------------------------------------------------ the loop
    def __call__(self) -> TraceOutcome:
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        self.say(f"dwarfgo: bpftrace is attaching {self.run.probe_count} probe(s)…")
        reader = threading.Thread(target=self._read, name="bpftrace-output", daemon=True)
        reader.start()
        if self.pid is not None:
            threading.Thread(target=self._watch_process, name="process-watch", daemon=True).start()
        try:
            self._decode_until_eof()
        except KeyboardInterrupt:  # the second stop request: at once
            self.outcome.interrupted = True
            chunks = []
            while True:
                try:
                    chunks.append(self._chunks.get_nowait())
                except queue.Empty:
                    break
            undecoded = sum(len(c) for c in chunks if c is not _EOF)
            if self._pending_chunk is not None:
                undecoded += len(self._pending_chunk) - self._done_in_chunk - 1
            self.outcome.undecoded_lines = undecoded
            self.run.kill()
        finally:
            self._done.set()
            # bpftrace's output has ended: a late stop request (the traced process exited and a
            # Ctrl-C or kill came anyway) must not cut the summary short or kill dwarfgo
            for s in previous:
                signal.signal(s, lambda signum, frame: None)
        if not self.outcome.interrupted:
            return self.stream.finish(self.outcome)
        return self.stream.counts(self.outcome)

    def _read(self) -> None:
        try:
            for chunk in self.run.chunks():
                if any(line.startswith("@dg ") and not line.startswith("@dg 0 0 ") for line in chunk):
                    self._last_line = time.monotonic()  # events still coming (not --interval's printouts)
                if self.raw_output is not None:
                    self.raw_output.writelines(chunk)
                if not self._put(chunk):
                    return
        finally:
            if self.raw_output is not None:
                self.raw_output.flush()
            self._put(_EOF)

    def _put(self, item) -> bool:
        """Queue `item` for the decoder, waiting while the backlog is full; False once the session
        has ended (a second Ctrl-C: nothing more is decoded)."""
        try:
            self._chunks.put_nowait(item)
            return True
        except queue.Full:
            pass
        # the decoder is behind, not the output quiet: the -p exit watch must not stop bpftrace
        # meanwhile, while its buffers may still hold events (see _watch_process)
        self._reader_waits = True
        try:
            while not self._done.is_set():
                try:
                    self._chunks.put(item, timeout=0.5)
                    return True
                except queue.Full:
                    continue
            return False
        finally:
            self._last_line = time.monotonic()
            self._reader_waits = False

    def _decode_until_eof(self) -> None:
        idle = max(self.window, 0.05)
        while True:
            try:
                chunk = self._chunks.get(timeout=idle)
            except queue.Empty:
                self.stream.release(everything=True)  # quiet: nothing earlier can still come
                continue
            if chunk is _EOF:
                return
            self._pending_chunk = chunk
            for i, line in enumerate(chunk):
                self._done_in_chunk = i
                self.stream.feed(line)
            self._pending_chunk = None
            self.stream.release()

    # ------------------------------------------------------------ stopping
    def _on_signal(self, signum, frame) -> None:
        self._stops += 1
        if self._stops > 1:
            raise KeyboardInterrupt
        self.request_stop("stopping")

    def request_stop(self, why: str) -> None:
        """Ask bpftrace to stop (it detaches and prints what it holds); decoding goes on to the end."""
        if self.run.stop_requested is not None:
            return
        self.say(f"dwarfgo: {why}; bpftrace is detaching {self.run.probe_count} probe(s) (about 0.1 s each); "
                 f"Ctrl-C again to quit at once")
        self.run.stop()

    def _watch_process(self) -> None:
        """With -p: stop soon after the traced process exits (bpftrace would trace on). No event can
        come any more, but bpftrace may still hold some in its buffers (it drops what it has not
        printed when it stops): the stop waits until its output has been quiet for QUIET seconds
        (at most DRAIN_MAX)."""
        while not self._done.wait(0.5):
            if not process_alive(self.pid):
                self.outcome.process_exited = True
                gone = time.monotonic()
                while not self._done.wait(0.2):
                    now = time.monotonic()
                    if (not self._reader_waits and now - self._last_line >= QUIET) or now - gone >= DRAIN_MAX:
                        break
                self.request_stop(f"process {self.pid} exited")
                return


def exit_status_ok(rc: int) -> bool:
    return rc in (0, -signal.SIGINT, 128 + signal.SIGINT, -signal.SIGTERM)

