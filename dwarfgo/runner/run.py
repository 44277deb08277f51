"""Layer 5: run bpftrace on a generated program and stream its output lines."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from dataclasses import dataclass
from typing import Iterator

from ..emit.bpftrace import PERF_RB_PAGES
from ..errors import DwarfgoError
from .target import ProcessStatus


@dataclass
class RunOptions:
    bpftrace: str
    command: str | None = None  # -c 'CMD ARGS'
    duration: float | None = None  # seconds
    extra_env: dict | None = None
    buffer_pages: int | None = None
    flags: tuple[str, ...] = ()  # e.g. the dialect's read-error flags


class BpftraceRun:
    """A running bpftrace. Iterate `chunks()`; `stop()` ends it (SIGTERM, which bpftrace
    takes like Ctrl-C; see stop() for why not SIGINT)."""

    def __init__(self, program_text: str, opts: RunOptions):
        if os.geteuid() != 0:
            raise DwarfgoError("bpftrace needs root to attach uprobes: run dwarfgo trace with sudo")
        self._file = tempfile.NamedTemporaryFile("w", suffix=".bt", prefix="dwarfgo-", delete=False)
        self._file.write(program_text)
        self._file.close()
        argv = [opts.bpftrace, "-B", "none", *opts.flags]  # unbuffered: "line" is not known to 0.17
        # the command's own output (-c), read apart from bpftrace's: see CommandOutput
        self.command_output = CommandOutput.for_command(opts.command) if opts.command else None
        if opts.command:
            argv += ["-c", self.command_output.command if self.command_output else opts.command]
        argv.append(self._file.name)
        # per-CPU output buffer: 64 pages by default, too few for bursts from many goroutines
        env = {"BPFTRACE_PERF_RB_PAGES": str(opts.buffer_pages or PERF_RB_PAGES), **os.environ, **(opts.extra_env or {})}
        try:
            # one stream for both: a failed-read warning then comes before the printf of the value
            # it spoiled, in the order bpftrace handled them (the decoder relies on that)
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0,
                                         env=env, start_new_session=True, preexec_fn=_stop_when_parent_dies)
        except OSError as e:
            os.unlink(self._file.name)
            if self.command_output is not None:
                self.command_output.close()
            raise DwarfgoError(f"cannot run {opts.bpftrace}: {e.strerror or e}") from None
        if self.command_output is not None:
            self.command_output.started()
        self._pipe_size = _widen_pipe(self.proc.stdout.fileno())
        self.stderr_lines: list[str] = []
        self.probe_count = program_text.count("\nuprobe:") + program_text.startswith("uprobe:")
        self.stop_requested: float | None = None
        self.killed = False  # True when bpftrace did not exit within the grace after the stop signal
        self.signals_resent = 0  # stop signals sent again because bpftrace kept polling (see stop())
        self.hang_state = ""  # what the kernel said bpftrace was doing when it was killed
        self.on_attached = None  # called (in the reading thread) when every probe is attached
        self.attached = False  # the program said every probe is attached
        self.ended = False  # the program's END block has run: bpftrace is stopping by itself
        self._timer = None
        if opts.duration:
            self._timer = threading.Timer(opts.duration, self.stop)
            self._timer.daemon = True
            self._timer.start()

    def chunks(self) -> Iterator[list[str]]:
        """Every line bpftrace prints, its own messages included (the decoder reads failed-read
        warnings among them; they are also kept in `stderr_lines`), as lists of whole lines, each
        list what one read of the pipe gave (up
        to 1 MiB): the pipe is emptied in few system calls, so that a busy decoder holding the
        interpreter does not leave bpftrace blocked on a full pipe while its buffer overflows."""
        fd = self.proc.stdout.fileno()
        rest = b""
        while True:
            data = os.read(fd, 1 << 20)
            if not data:
                break
            data = rest + data
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            if not cut:
                continue
            text = data[:cut].decode("utf-8", "replace")  # once: up to 1 MiB a read
            chunk = text.splitlines(keepends=True)
            if not self.attached and "@dg 0 0 attached" in text:
                self.attached = True  # printed once every probe is attached
                if self.on_attached is not None:
                    self.on_attached()  # before any event line is handed on
            if not self.ended and "@dg 0 0 identity" in text:
                self.ended = True  # printed by END: the main loop is over, the maps come next
            self.stderr_lines.extend(line.rstrip("\n") for line in chunk if not line.startswith("@dg "))
            yield chunk
        if rest:
            line = rest.decode("utf-8", "replace")
            if not line.startswith("@dg "):
                self.stderr_lines.append(line)
            yield [line]

    def stop(self, grace: float | None = None) -> None:
        """Ask bpftrace to stop: SIGTERM (which it takes like Ctrl-C), sent from a thread of its own
        once bpftrace can take it without harm (see _signal_when_safe); SIGKILL after `grace`
        seconds, so that a bpftrace that hangs cannot hang dwarfgo. Returns at once: the caller
        goes on reading (and so emptying the pipe the signal may wait for).

        Why SIGTERM and not SIGINT: bpftrace handles both alike while it traces, but once its
        main loop has returned (it was stopped, or, with -p, it noticed the process exit by
        itself) it restores SIGINT's default action before printing its maps. A SIGINT that lands
        then kills it before the event counter is printed, and the number of events
        never printed can no longer be known (seen in CI: 0.27 with -p, the stop arriving just
        as the traced process exited). Its SIGTERM handler stays in place to the end. Once the
        program's END block has printed its line, bpftrace is past its main loop and is sent
        nothing at all (only SIGKILL after `grace`, if it hangs).

        Detaching is slow: about 0.11 s per uprobe on this kernel with both 0.17 and 0.27
        (65 probes: 7 s), more on a loaded machine, so the default grace grows with the
        number of probes.

        bpftrace 0.17 can miss the signal: its poll loop notices the signal only when
        epoll_wait returns EINTR (or when another event arrives). A signal that lands while
        it is between two epoll_wait calls sets its flag, and with no further events it then
        polls forever. So while bpftrace sits in epoll_wait after the request, the signal is
        sent again (every 2 s); a bpftrace that took it is detaching, not polling."""
        if grace is None:
            grace = 30.0 + 1.0 * self.probe_count
        self.stop_requested = time.monotonic()
        if self.proc.poll() is None:
            threading.Thread(target=self._watch_stop, args=(grace,), daemon=True).start()

    def _watch_stop(self, grace: float) -> None:
        """Until bpftrace exits: the stop signal, then again while it polls; SIGKILL once `grace`
        has passed."""
        deadline = time.monotonic() + grace
        sent = self._signal_when_safe(deadline)
        while sent:
            time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))
            if self.proc.poll() is not None:
                return
            if time.monotonic() >= deadline:
                break
            if not self.ended and _wchan(self.proc.pid) == "do_epoll_wait":
                self.signals_resent += 1
                sent = self._signal_when_safe(deadline)
        if self.proc.poll() is None:
            self._kill()

    def _signal_when_safe(self, deadline: float) -> bool:
        """SIGTERM to bpftrace, never while it waits to write into its output pipe. Its handler is
        installed without SA_RESTART, so a signal that interrupts a write blocked on a full pipe
        makes the write fail, and its C++ output stream, once failed, drops everything after it
        without a word: the rest of the events, the END block's line and the maps, the program's
        event counter among them, and bpftrace still exits with 0 (0.17 and 0.27 alike; seen in
        the soak test as a 0.27 run that ended without its counter, when dwarfgo's decoder was
        behind at the stop). So the signal waits until the reader has emptied the pipe to below
        half (a megabyte, see _widen_pipe: bpftrace cannot fill half of it again in the
        microseconds before the signal lands) and no thread of bpftrace sleeps in a pipe write.
        False when that never came before `deadline` (the caller kills bpftrace), or bpftrace is gone."""
        fd = self.proc.stdout.fileno()
        while self.proc.poll() is None:
            if self.ended:
                return True  # past its main loop: it stops by itself, and a signal could cut its maps
            if not _writing_to_pipe(self.proc.pid) and _pipe_fill(fd) < self._pipe_size // 2:
                try:
                    os.killpg(self.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    return False
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return False

    def kill(self) -> None:
        """Stop bpftrace at once (a second Ctrl-C): SIGKILL; the kernel detaches its probes."""
        if self.stop_requested is None:
            self.stop_requested = time.monotonic()
        self._kill()
        self.killed = False  # asked for, not a hang

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
        try:
            os.unlink(self._file.name)
        except OSError:
            pass
        if self.command_output is not None:
            self.command_output.close()
        return rc

    @property
    def errors(self) -> list[str]:
        """bpftrace's messages without the noise: warnings (a `file:L:C: WARNING:` line is followed
        by an optional `Additional Info` line, the source line and a caret line), attach chatter,
        kernel hints and lost-event counts (reported separately)."""
        noise = ("RLIMIT_MEMLOCK", "failed to detach probe", "uprobe_events", "Attaching", "Attached", "WARNING",
                 "available_filter_functions", "Additional Info", "Lost ")
        out: list[str] = []
        in_warning = 0
        for line in self.stderr_lines:
            if re.match(r".*:\d+:\d+(?:-\d+)?: WARNING:", line):
                in_warning = 3  # at most: Additional Info, source, caret
                continue
            if in_warning:
                in_warning -= 1
                if line.strip() and not line.strip(" ~^"):
                    in_warning = 0  # the caret line ends the warning
                continue
            if line.strip() and not any(n in line for n in noise) and line.strip(" ~^"):
                out.append(line)
        return out


def _stop_when_parent_dies() -> None:
    """In the child before exec: SIGTERM (which bpftrace treats like Ctrl-C) when dwarfgo dies,
    so that a killed dwarfgo never leaves probes attached (bpftrace runs in its own session
    and would not see a Ctrl-C meant for dwarfgo)."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        pass


PIPE_SIZE = 1 << 20  # bytes: bpftrace's output pipe (the default largest a user may ask for)
F_SETPIPE_SZ, F_GETPIPE_SZ = 1031, 1032  # fcntl, Linux


def _widen_pipe(fd: int) -> int:
    """The capacity of the pipe at `fd`, made PIPE_SIZE where the kernel allows: bpftrace waits
    less on a busy decoder, and a stop signal has room to wait for (see _signal_when_safe)."""
    try:
        return fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        try:
            return fcntl.fcntl(fd, F_GETPIPE_SZ)
        except OSError:
            return 65536


def _pipe_fill(fd: int) -> int:
    """Bytes waiting in the pipe at `fd`."""
    try:
        return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
    except OSError:
        return 0


def _threads(pid: int) -> list[str]:
    """The thread ids of a process, in order ([] once it is gone)."""
    try:
        return sorted(os.listdir(f"/proc/{pid}/task"), key=int)
    except OSError:
        return []


def _wchan(pid: int, tid: str | None = None) -> str:
    """Where in the kernel the process's main thread (or thread `tid`) sleeps ("" when unknown)."""
    try:
        with open(f"/proc/{pid}/wchan" if tid is None else f"/proc/{pid}/task/{tid}/wchan") as f:
            return f.read().strip()
    except OSError:
        return ""


def _writing_to_pipe(pid: int) -> bool:
    """A thread of the process sleeps in a pipe write (its output pipe is full)."""
    return any(_wchan(pid, tid) == "pipe_write" for tid in _threads(pid))


def _process_state(pid: int) -> str:
    """`state D in synchronize_rcu` for each thread of a process: where it is stuck (for the error)."""
    parts = []
    for tid in _threads(pid):
        try:
            state = ProcessStatus.read(f"/proc/{pid}/task/{tid}/stat").state
        except OSError:
            continue
        wchan = _wchan(pid, tid)
        parts.append(f"state {state}" + (f" in {wchan}" if wchan and wchan != "0" else ""))
    return ", ".join(parts)


class CommandOutput:
    """The output of the command bpftrace runs for `-c`, on a pipe of its own: the command runs as
    `/bin/sh WRAPPER CMD ARGS`, whose `exec` sends its stdout and stderr to a FIFO that dwarfgo
    reads (same pid: bpftrace's cpid is the command's). Through bpftrace's own stream, a line of
    the command could land inside one of bpftrace's warnings, which bpftrace 0.17 writes a piece
    at a time (`/tmp/dwarfgo-x.bt` + the command's line + `:16:1-16: WARNING: ...`): the line was
    lost (3 of 12 runs of a traced stackgrowth fixture), and a read failure's warning cut that way
    would no longer be known for one. Each line read is handed to `on_line` (stderr unless set)."""

    def __init__(self, command: str, folder: str, read_fd: int, keep_fd: int):
        self.command = command
        self._folder = folder
        self._read_fd: int | None = read_fd
        self._keep_fd: int | None = keep_fd  # a writer of ours: no end of file before bpftrace's end
        self.on_line = lambda line: print(line, file=sys.stderr, flush=True)
        self._thread: threading.Thread | None = None

    @classmethod
    def for_command(cls, command: str) -> "CommandOutput | None":
        """None when the wrapper cannot be made (bpftrace splits -c's text at spaces: its path
        must hold none): the command's output then comes through bpftrace's."""
        shell = "/bin/sh"
        if not os.access(shell, os.X_OK):
            return None
        folder = tempfile.mkdtemp(prefix="dwarfgo-")
        wrapper, fifo = os.path.join(folder, "command.sh"), os.path.join(folder, "output")
        if any(ch.isspace() or ch in "'\\" for ch in folder):
            os.rmdir(folder)
            return None
        try:
            os.mkfifo(fifo, 0o600)
            with open(wrapper, "w") as f:
                f.write(f"exec \"$@\" >'{fifo}' 2>&1\n")
            read_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            keep_fd = os.open(fifo, os.O_WRONLY)
            os.set_blocking(read_fd, True)
        except OSError:
            shutil.rmtree(folder, ignore_errors=True)
            return None
        return cls(f"{shell} {wrapper} {command}", folder, read_fd, keep_fd)

    def started(self) -> None:
        """bpftrace is running: pass the command's lines on as they come."""
        self._thread = threading.Thread(target=self._pass_on, name="dwarfgo-command-output", daemon=True)
        self._thread.start()

    def _pass_on(self) -> None:
        fd, self._read_fd = self._read_fd, None
        with open(fd, "rb", closefd=True) as pipe:
            for raw in pipe:
                self.on_line(raw.decode("utf-8", "replace").rstrip("\n"))

    def close(self, timeout: float = 2) -> None:
        """Once bpftrace has exited (and so its command): the command's last lines are passed on,
        the FIFO and wrapper removed."""
        if self._keep_fd is not None:
            os.close(self._keep_fd)
            self._keep_fd = None
        if self._thread is not None:
            self._thread.join(timeout)
        elif self._read_fd is not None:
            os.close(self._read_fd)
            self._read_fd = None
        shutil.rmtree(self._folder, ignore_errors=True)
