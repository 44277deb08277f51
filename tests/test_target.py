"""`trace -p PID` checks the process before attaching: a PID that does not exist, has exited, is
a kernel thread, or does not map the traced file (a uprobe sits on an inode; a copy is another
file) is a one-line error, where a trace used to say "tracing" and show nothing, ever."""

import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from conftest import FIXTURES, require_file
from dwarfgo.errors import DwarfgoError
from dwarfgo.runner.target import check_command, check_traced_process

SHAPES = FIXTURES / "go1.27" / "amd64" / "default" / "shapes"


@pytest.fixture
def waiting_fixture():
    """The shapes fixture, started and waiting on its stdin (as the live tests trace it)."""
    require_file(SHAPES, "the Go 1.27 shapes fixture")
    proc = subprocess.Popen([str(SHAPES), "-report", "-wait"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr.readline().startswith("READY")
    yield proc
    proc.kill()
    proc.wait()


def test_the_process_running_the_binary_passes_by_any_path_to_the_same_file(waiting_fixture, tmp_path):
    check_traced_process(waiting_fixture.pid, str(SHAPES))
    link = tmp_path / "shapes-link"
    link.symlink_to(SHAPES)
    check_traced_process(waiting_fixture.pid, str(link))
    check_traced_process(waiting_fixture.pid, f"/proc/{waiting_fixture.pid}/exe")


def test_a_copy_of_the_binary_is_another_file(waiting_fixture, tmp_path):
    copy = tmp_path / "shapes-copy"
    shutil.copy(SHAPES, copy)
    with pytest.raises(DwarfgoError, match=rf"-p {waiting_fixture.pid}: the process runs {os.path.realpath(SHAPES)}, not {copy}"):
        check_traced_process(waiting_fixture.pid, str(copy))


def test_the_cli_refuses_before_attaching(waiting_fixture, tmp_path):
    """One line, status 1, and bpftrace never started ("attaching" is not said)."""
    copy = tmp_path / "shapes-copy"
    shutil.copy(SHAPES, copy)
    out = subprocess.run([sys.executable, "-m", "dwarfgo", "trace", str(copy), "main.Strings", "-p",
                          str(waiting_fixture.pid), "--duration", "5"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert out.stderr.splitlines() == [f"dwarfgo: error: -p {waiting_fixture.pid}: the process runs {os.path.realpath(SHAPES)}, "
                                       f"not {copy}, so no probe on {copy} can see its calls (to a uprobe, a copy of "
                                       f"a binary is another file: give the path of the file the process runs)"]
    assert out.stdout == ""


def test_a_process_that_is_gone_or_a_zombie():
    done = subprocess.Popen(["true"])
    done.wait()
    with pytest.raises(DwarfgoError, match=rf"^-p {done.pid}: no such process$"):
        check_traced_process(done.pid, str(SHAPES))
    zombie = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # exited, not reaped: state Z
            with open(f"/proc/{zombie.pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.01)
        with pytest.raises(DwarfgoError, match=rf"-p {zombie.pid}: the process \(true\) has exited"):
            check_traced_process(zombie.pid, "/bin/true")
    finally:
        zombie.wait()


def test_a_kernel_thread_has_no_executable():
    # kthreadd is pid 2 in the root pid namespace; elsewhere find any kernel thread we can see
    threads = [p for p in os.listdir("/proc") if p.isdigit() and _is_kernel_thread(p)]
    if not threads:
        pytest.skip("no kernel thread is visible in this pid namespace")
    with pytest.raises(DwarfgoError, match=r"has no executable file \(a kernel thread\)"):
        check_traced_process(int(threads[0]), "/bin/true")


def _is_kernel_thread(pid: str) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            flags = int(f.read().rsplit(")", 1)[1].split()[6])
    except (OSError, ValueError, IndexError):
        return False
    return bool(flags & 0x00200000)  # PF_KTHREAD


def test_a_binary_mapped_by_the_loader_passes(tmp_path):
    """A program started as `ld.so ./prog` runs the loader; the traced file is among its maps.
    Checked on a /proc of our own making: /proc/N/exe is the loader, /proc/N/maps names the binary
    by device and inode as the kernel writes them (hex major:minor)."""
    binary = tmp_path / "prog"
    binary.write_bytes(b"\x7fELF")
    st = os.stat(binary)
    proc = tmp_path / "proc"
    (proc / "77").mkdir(parents=True)
    (proc / "77" / "stat").write_text("77 (ld-linux-x86-64) S 1 77 77 0 -1 4194560 0 0\n")
    (proc / "77" / "exe").symlink_to("/bin/true")
    line = (f"00400000-00401000 r-xp 00000000 {os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x} "
            f"{st.st_ino}    {binary}\n")
    (proc / "77" / "maps").write_text("7f0000000000-7f0000001000 r--p 00000000 00:00 0 \n" + line)
    check_traced_process(77, str(binary), proc=str(proc))
    (proc / "77" / "maps").write_text("7f0000000000-7f0000001000 r--p 00000000 00:00 0 \n")
    with pytest.raises(DwarfgoError, match=rf"-p 77: the process runs /bin/true, not {binary}"):
        check_traced_process(77, str(binary), proc=str(proc))


@pytest.mark.parametrize("command, said", [
    ("", "-c: the command is empty"),
    ("   ", "-c: the command is empty"),
    ("/nonexistent/prog -n 3", "-c: /nonexistent/prog: no such file"),
    ("dwarfgo-no-such-command --x", "-c: dwarfgo-no-such-command: command not found (in PATH)"),
])
def test_a_command_that_cannot_start_is_refused(command, said):
    """A misspelt -c used to print "tracing", the shell's "not found", and end with status 0."""
    with pytest.raises(DwarfgoError, match=f"^{re.escape(said)}$"):
        check_command(command)


def test_a_file_without_execute_permission_is_refused(tmp_path):
    script = tmp_path / "prog"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)
    with pytest.raises(DwarfgoError, match=f"^-c: {re.escape(str(script))}: not executable$"):
        check_command(f"{script} -x")


def test_a_command_that_can_start_passes():
    check_command("true")
    check_command(f"{SHAPES} -report")  # a path with a slash, arguments after it


def test_the_cli_refuses_a_bad_command_and_p_with_c_before_attaching():
    require_file(SHAPES, "the Go 1.27 shapes fixture")
    base = [sys.executable, "-m", "dwarfgo", "trace", str(SHAPES), "main.Strings", "--duration", "5"]
    out = subprocess.run(base + ["-c", "/nonexistent/prog"], capture_output=True, text=True, timeout=120)
    assert (out.returncode, out.stderr) == (1, "dwarfgo: error: -c: /nonexistent/prog: no such file\n")
    out = subprocess.run(base + ["-c", str(SHAPES), "-p", str(os.getpid())], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2
    assert out.stderr == ("dwarfgo: error: -p and -c: trace a running process (-p) or a command it starts (-c), "
                          "not both\n")


def test_a_process_name_with_parentheses_and_spaces_is_read_whole(tmp_path):
    """/proc/PID/stat's command name may hold ") (" itself (a process may rename itself to
    anything): its state is the field after the *last* ")". Both the -p check and the watch that
    ends a trace when the process exits read it so."""
    from dwarfgo.runner.target import ProcessStatus, process_alive

    (tmp_path / "41").mkdir()
    (tmp_path / "41" / "stat").write_text("41 (evil) R (x) 1 2 3) Z 1 41 41 0 -1 4194560\n")
    status = ProcessStatus.read(str(tmp_path / "41" / "stat"))
    assert (status.name, status.state, status.exited) == ("evil) R (x) 1 2 3", "Z", True)
    assert process_alive(41, proc=str(tmp_path)) is False
    with pytest.raises(DwarfgoError, match=r"-p 41: the process \(evil\) R \(x\) 1 2 3\) has exited"):
        check_traced_process(41, sys.executable, proc=str(tmp_path))
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "stat").write_text("42 (sleepy) S 1 42 42 0 -1 4194560\n")
    assert process_alive(42, proc=str(tmp_path)) is True
    assert process_alive(43, proc=str(tmp_path)) is False
