"""What `trace` follows: the process `-p PID` names must exist and run the traced binary, and the
command `-c CMD` runs must be one that can start.

A uprobe sits on a file (its inode), and bpftrace's `-p` only filters hits by process: a PID
that does not map the traced file gets no event at all, ever, and a trace of it would sit
"tracing" and show nothing. So before anything is attached, the process is checked: it exists
(and is not a zombie), and its executable, or one of the files it maps, is the traced file,
compared by device and inode as the kernel does (a path seen through /proc/PID/root, a bind
mount or a symlink is the same file; a copy is not)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from ..errors import DwarfgoError


@dataclass(frozen=True)
class ProcessStatus:
    """What /proc/PID/stat (or /proc/PID/task/TID/stat) says of a process: its command name and
    its one-letter state (R running, S sleeping, D in uninterruptible wait, Z zombie, X dead...)."""

    name: str
    state: str

    @property
    def exited(self) -> bool:
        return self.state in ("Z", "X")

    @classmethod
    def read(cls, stat_path: str) -> "ProcessStatus":
        """OSError when the file cannot be read (no such process, no permission). The name is
        between the first "(" and the last ")": it may itself hold spaces and parentheses."""
        with open(stat_path) as f:
            stat = f.read()
        name, _, rest = stat.partition(" (")[2].rpartition(")")
        fields = rest.split()
        return cls(name, fields[0] if fields else "")


def process_alive(pid: int, proc: str = "/proc") -> bool:
    """The process exists and is not a zombie."""
    try:
        return not ProcessStatus.read(f"{proc}/{pid}/stat").exited
    except OSError:
        return False


@dataclass(frozen=True)
class FileIdentity:
    """A file as the kernel tells it apart: device and inode."""

    device: int
    inode: int

    @classmethod
    def of(cls, path: str) -> "FileIdentity":
        st = os.stat(path)
        return cls(st.st_dev, st.st_ino)


def check_traced_process(pid: int, binary_path: str, proc: str = "/proc") -> None:
    """DwarfgoError (one line) when process `pid` does not exist or does not run `binary_path`.
    What cannot be read (another user's process without privileges) is not judged: bpftrace
    says what it can."""
    where = f"{proc}/{pid}"
    try:
        status = ProcessStatus.read(f"{where}/stat")
    except FileNotFoundError:
        raise DwarfgoError(f"-p {pid}: no such process") from None
    except OSError:
        return
    name = status.name
    if status.exited:
        raise DwarfgoError(f"-p {pid}: the process ({name}) has exited (a zombie waiting for its parent)")
    try:
        wanted = FileIdentity.of(binary_path)
    except OSError:
        return
    try:
        runs = os.readlink(f"{where}/exe")
        if FileIdentity.of(f"{where}/exe") == wanted:
            return
    except FileNotFoundError:
        raise DwarfgoError(f"-p {pid}: the process ({name}) has no executable file (a kernel thread), "
                           f"so no uprobe can see it") from None
    except OSError:
        return
    if _maps_file(where, wanted):
        return
    raise DwarfgoError(f"-p {pid}: the process runs {runs}, not {binary_path}, so no probe on {binary_path} "
                       f"can see its calls (to a uprobe, a copy of a binary is another file: give the path of "
                       f"the file the process runs)")


def _maps_file(where: str, wanted: FileIdentity) -> bool:
    """Whether the process maps the file (started through the dynamic loader, `ld.so ./prog`,
    its executable is the loader)."""
    try:
        with open(f"{where}/maps") as f:
            for line in f:
                fields = line.split(maxsplit=5)
                if len(fields) < 5 or fields[4] == "0":
                    continue
                major, _, minor = fields[3].partition(":")
                try:
                    device = os.makedev(int(major, 16), int(minor, 16))
                    if FileIdentity(device, int(fields[4])) == wanted:
                        return True
                except ValueError:
                    continue
    except OSError:
        return True  # cannot tell: not judged
    return False


def check_command(command: str) -> None:
    """DwarfgoError (one line) when `trace -c`'s command cannot start: empty, or its program not
    found (bpftrace splits the text at spaces; the first word is run as a shell's `exec` runs it,
    through PATH unless it holds a slash). Without this, a misspelt command printed "tracing",
    a shell's "not found", and ended with status 0."""
    words = command.split()
    if not words:
        raise DwarfgoError("-c: the command is empty")
    program = words[0]
    if "/" in program:
        if not os.path.isfile(program):
            raise DwarfgoError(f"-c: {program}: no such file")
        if not os.access(program, os.X_OK):
            raise DwarfgoError(f"-c: {program}: not executable")
    elif shutil.which(program) is None:
        raise DwarfgoError(f"-c: {program}: command not found (in PATH)")
