"""Layer 5: run bpftrace on a generated program and stream its output lines."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Iterator

from ..emit.bpftrace import PERF_RB_PAGES
from ..errors import DwarfgoError


@dataclass
class RunOptions:
    bpftrace: str
    command: str | None = None  # -c 'CMD ARGS'
    duration: float | None = None  # seconds
    extra_env: dict | None = None
    buffer_pages: int | None = None


class BpftraceRun:
    """A running bpftrace. Iterate `lines()`; `stop()` ends it (SIGINT, like Ctrl-C)."""

    def __init__(self, program_text: str, opts: RunOptions):
        if os.geteuid() != 0:
            raise DwarfgoError("bpftrace needs root to attach uprobes: run dwarfgo trace with sudo")
        self._file = tempfile.NamedTemporaryFile("w", suffix=".bt", prefix="dwarfgo-", delete=False)
        self._file.write(program_text)
        self._file.close()
        argv = [opts.bpftrace, "-B", "none"]  # unbuffered: "line" is not known to 0.17
        if opts.command:
            argv += ["-c", opts.command]
        argv.append(self._file.name)
        # per-CPU output buffer: 64 pages by default, too few for bursts from many goroutines
        env = {"BPFTRACE_PERF_RB_PAGES": str(opts.buffer_pages or PERF_RB_PAGES), **os.environ, **(opts.extra_env or {})}
        try:
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                         errors="replace", env=env, start_new_session=True)
        except OSError as e:
            os.unlink(self._file.name)
            raise DwarfgoError(f"cannot run {opts.bpftrace}: {e.strerror or e}") from None
        self.stderr_lines: list[str] = []
        self.probe_count = program_text.count("\nuprobe:") + program_text.startswith("uprobe:")
        self.stop_requested: float | None = None
        self.killed = False  # True when bpftrace did not exit within the grace after SIGINT
        self.hang_state = ""  # what the kernel said bpftrace was doing when it was killed
        self.attached = threading.Event()
        self._stderr_thread = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_thread.start()
        self._timer = None
        if opts.duration:
            self._timer = threading.Timer(opts.duration, self.stop)
            self._timer.daemon = True
            self._timer.start()

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            self.stderr_lines.append(line.rstrip("\n"))

    @property
    def lost(self) -> int:
        """Records bpftrace reported lost on stderr (0.23+ report there; 0.17 on stdout)."""
        total = 0
        for line in self.stderr_lines:
            m = re.match(r"(?:WARNING: )?Lost (\d+) events", line)
            if m:
                total += int(m.group(1))
        return total

    def lines(self) -> Iterator[str]:
        for line in self.proc.stdout:
            if line.startswith("@dg 0 0 attached"):  # printed by the program's BEGIN probe
                self.attached.set()
                continue
            if line.startswith("Attaching"):
                continue
            yield line

    def wait_attached(self, timeout: float = 60.0) -> bool:
        """True once the program's BEGIN probe ran, which bpftrace does after attaching every probe
        (its own `Attaching N probes...` comes before the attaching)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.attached.is_set():
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def stop(self, grace: float | None = None) -> None:
        """SIGINT (bpftrace prints what it still holds and detaches); SIGKILL after `grace`
        seconds, so that a bpftrace that hangs while detaching cannot hang dwarfgo.

        Detaching is slow: about 0.11 s per uprobe on this kernel with both 0.17 and 0.27
        (65 probes: 7 s), more on a loaded machine, so the default grace grows with the
        number of probes."""
        if grace is None:
            grace = 30.0 + 1.0 * self.probe_count
        self.stop_requested = time.monotonic()
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGINT)
            except ProcessLookupError:
                return
            killer = threading.Timer(grace, self._kill)
            killer.daemon = True
            killer.start()

    def _kill(self) -> None:
        if self.proc.poll() is None:
            self.killed = True
            self.hang_state = _process_state(self.proc.pid)
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def close(self) -> int:
        if self._timer:
            self._timer.cancel()
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            rc = self.proc.wait()
        self._stderr_thread.join(timeout=5)
        try:
            os.unlink(self._file.name)
        except OSError:
            pass
        return rc

    @property
    def errors(self) -> list[str]:
        """bpftrace's stderr without its noise: warnings (a `file:L:C: WARNING:` line is followed
        by the source line and a caret line), attach chatter and kernel hints."""
        noise = ("RLIMIT_MEMLOCK", "failed to detach probe", "uprobe_events", "Attaching", "Attached", "WARNING",
                 "available_filter_functions")
        out: list[str] = []
        skip = 0
        for line in self.stderr_lines:
            if skip:
                skip -= 1
                continue
            if re.match(r".*:\d+:\d+(?:-\d+)?: WARNING:", line):
                skip = 2
                continue
            if line.strip() and not any(n in line for n in noise) and line.strip(" ~^"):
                out.append(line)
        return out


def _process_state(pid: int) -> str:
    """`state D in synchronize_rcu` for each thread of a process: where it is stuck (for the error)."""
    parts = []
    try:
        for tid in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
            try:
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
                with open(f"/proc/{pid}/task/{tid}/wchan") as f:
                    wchan = f.read().strip()
            except OSError:
                continue
            parts.append(f"state {state}" + (f" in {wchan}" if wchan and wchan != "0" else ""))
    except OSError:
        return ""
    return ", ".join(parts)
