"""Live soak: many traces of a multi-function program, stopped at random moments, on bpftrace 0.17
(entries) and the newest bpftrace (entries and RETs). In every run, every event bpftrace printed is
shown exactly once, and every event the probes emitted is either shown or counted as missing.

What is independent of dwarfgo's decoder here: the test counts the events in bpftrace's own output
(saved with --raw-output) and reads the program's counter of emitted events from that output
(`@dg_n: N`, printed by bpftrace at exit), then checks dwarfgo's events and its
"N missing" figure against them. Runs that end with the program (the -p process exits, which
must end the trace) are also compared value by value with the fixture's report.

Stop moments: during attach (before "tracing" may have been said), during the burst of calls,
and none at all (the traced process exits). The demo fixture passes an interface (ctx) and
returns errors, so some stops arrive while dynamic types are being named.

DWARFGO_SOAK_RUNS sets the number of runs (default 30, as the issue asks of CI: five per stop moment and bpftrace; set it higher for a longer soak).
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from conftest import FIXTURES, go_versions
from dwarfgo.runner.stream import parse_summary
from livecompare import compare_run
from test_live import _live_preconditions, _need, installed_bpftrace, read_tracer, wait_until_tracing

F_SETPIPE_SZ = 1031  # fcntl: set a pipe's capacity
RUNS = int(os.environ.get("DWARFGO_SOAK_RUNS", "30"))
FUNCS = ["main.(*BarrierView).Put", "main.(*BarrierView).Get", "main.(*BarrierView).Delete",
         "main.(*BarrierView).List"]
SOAK = []  # (bpftrace, mode, calls reported, events shown, missing) per run, for the summary
_HEADER = re.compile(r"^@dg (\d+) (\d+) (call|ret) ")
_EMITTED = re.compile(r"^@dg_n: (\d+)$")


def _raw_counts(path: str) -> tuple[int, int, set]:
    """(event first lines in bpftrace's output, events emitted per the program's counter, duplicate keys)."""
    headers, emitted, seen, dup = 0, 0, set(), set()
    with open(path, errors="replace") as f:
        for line in f:
            m = _HEADER.match(line)
            if m:
                key = (m.group(1), m.group(2))
                if key in seen:
                    dup.add(key)
                seen.add(key)
                headers += 1
                continue
            m = _EMITTED.match(line.strip())
            if m:
                emitted += int(m.group(1))
    return headers, emitted, dup


def _one_run(binary, bt_path: str, ret: bool, mode: str, rng: random.Random, reps: int):
    fixture = subprocess.Popen([str(binary), "-report", "-wait", "-n", str(reps)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = fixture.stderr.readline()
    assert ready.startswith("READY"), ready
    raw = tempfile.NamedTemporaryFile(prefix="dwarfgo-soak-", suffix=".raw", delete=False)
    raw.close()
    argv = [sys.executable, "-m", "dwarfgo", "trace", str(binary), *FUNCS, "-p", str(fixture.pid), "--json",
            "--bpftrace", bt_path, "--raw-output", raw.name] + (["--ret"] if ret else [])
    tracer = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    attached, starting = threading.Event(), threading.Event()
    events, errors, threads = read_tracer(tracer, {"dwarfgo: bpftrace is attaching": starting,
                                                   "dwarfgo: tracing": attached})
    report_text = ""
    try:
        if mode == "attach":  # somewhere in bpftrace's start-up and attach
            assert starting.wait(300), "bpftrace was not started:\n" + "\n".join(errors[-20:])
            attached.wait(rng.uniform(0.0, 1.5))
            tracer.send_signal(signal.SIGINT)
            fixture.stdin.write("go\n")
            fixture.stdin.close()
        else:
            assert attached.wait(300), "trace did not attach:\n" + "\n".join(errors[-20:])
            fixture.stdin.write("go\n")
            fixture.stdin.close()
            if mode == "burst":
                time.sleep(rng.uniform(0.0, 0.3))
                tracer.send_signal(signal.SIGINT)
        report_text = fixture.stdout.read()
        fixture.wait(timeout=300)
        # mode "end": nothing is sent; the trace must end by itself once the process has exited
        tracer.wait(timeout=300)
    finally:
        for p in (tracer, fixture):
            if p.poll() is None:
                p.kill()
        for t in threads:
            t.join(timeout=10)
    headers, emitted, dup = _raw_counts(raw.name)
    with open(raw.name, errors="replace") as f:
        raw_tail = [line.rstrip("\n")[:200] for line in f.readlines()[-6:]]
    os.unlink(raw.name)
    report = [r for l in report_text.splitlines() if l.strip() and (r := json.loads(l))["func"] in FUNCS]
    return report, events, errors, tracer.returncode, headers, emitted, dup, raw_tail


@pytest.mark.live
@pytest.mark.alone  # random stop moments and bpftrace's own losses: on a machine no other test loads
def test_soak_no_event_lost_by_dwarfgo():
    go = (go_versions() or ["1.22"])[-1]
    binary = FIXTURES / f"go{go}" / "amd64" / "default" / "demo"
    _live_preconditions(binary)
    bts = [installed_bpftrace("0.17"), installed_bpftrace("newest")]
    rng = random.Random(int(os.environ.get("DWARFGO_SOAK_SEED", "8")))
    modes = ["attach", "burst", "end"]
    failures = []
    for i in range(RUNS):
        (version, path), mode = bts[i % 2], modes[(i // 2) % 3]
        ret = version != "0.17"
        report, events, errors, rc, headers, emitted, dup, raw_tail = _one_run(binary, path, ret, mode, rng, reps=40)
        label = f"run {i} bpftrace {version} stop={mode}"
        summary = [m for e in errors if (m := parse_summary(e))]
        problems = []
        if rc != 0:
            problems.append(f"exit status {rc}")
        if dup:
            problems.append(f"bpftrace printed an event twice: {sorted(dup)[:5]}")
        if len(events) != headers:  # every event bpftrace printed is shown, once
            problems.append(f"{headers} events in bpftrace's output, {len(events)} shown")
        if not summary:
            problems.append("no closing summary line")
        else:
            missing = summary[0][2]
            if emitted and missing != emitted - headers:
                problems.append(f"says {missing} missing; bpftrace emitted {emitted}, printed {headers}")
            if not emitted and headers:
                problems.append("the program's event counter was not printed at exit")
            SOAK.append((version, mode, len(report), len(events), missing))
        if mode == "end":
            # the program ran to its end under the trace: every call shown with exact values,
            # unless bpftrace itself lost some (then counted, above)
            if emitted == headers:
                tally, count_problems = compare_run(report, events, with_results=ret)
                problems += tally.mismatches[:5] + count_problems[:5]
            if not any("exited" in e for e in errors):
                problems.append("did not say the traced process exited")
        else:
            calls = [e for e in events if e["event"] == "call"]
            if len(calls) > len(report):
                problems.append(f"{len(calls)} call events for {len(report)} calls")
        if problems:
            # (with the end of bpftrace's own output: once, 0.27 stopped while attaching ended without its
            # END block's counter, and nothing said why)
            failures.append(f"{label}: " + "; ".join(problems) + "\n    " + "\n    ".join(errors[-6:])
                            + "\n    bpftrace's output ended with:\n      " + "\n      ".join(raw_tail))
    assert not failures, "\n".join(failures)


@pytest.mark.live
@pytest.mark.parametrize("bt", ["0.17", "newest"])
def test_tracing_is_said_only_when_every_probe_is_live(bt):
    """A process stopped while dwarfgo attaches and resumed the moment 'tracing' is said: every
    one of its calls is traced (bpftrace 0.17 runs BEGIN before attaching, so a BEGIN-based
    'tracing' lost the first calls). The trace then ends by itself when the process exits."""
    go = (go_versions() or ["1.22"])[-1]
    binary = FIXTURES / f"go{go}" / "amd64" / "default" / "demo"
    _live_preconditions(binary)
    version, path = installed_bpftrace(bt)
    fixture = subprocess.Popen([str(binary), "-report", "-wait", "-n", "3"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert fixture.stderr.readline().startswith("READY")
    os.kill(fixture.pid, signal.SIGSTOP)
    fixture.stdin.write("go\n")  # waits in the pipe: the calls start the moment it runs again
    fixture.stdin.close()
    tracer = subprocess.Popen([sys.executable, "-m", "dwarfgo", "trace", str(binary), *FUNCS, "-p",
                               str(fixture.pid), "--json", "--bpftrace", path], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        try:
            wait_until_tracing(tracer)
        finally:
            os.kill(fixture.pid, signal.SIGCONT)
        report = [json.loads(l) for l in fixture.stdout.read().splitlines() if l.strip()]
        fixture.wait(timeout=120)
        out, err = tracer.communicate(timeout=300)  # ends by itself: the process exited
    finally:
        for p in (tracer, fixture):
            if p.poll() is None:
                p.kill()
    errors = err.splitlines()
    assert tracer.returncode == 0, "\n".join(errors[-10:])
    events = [json.loads(l) for l in out.splitlines() if l.strip()]
    traced = [r for r in report if r["func"] in FUNCS]
    calls = [e for e in events if e["event"] == "call"]
    assert traced and len(calls) == len(traced), (len(calls), len(traced), errors[-5:])
    tally, problems = compare_run(traced, events, with_results=False)
    assert not tally.mismatches and not problems, (tally.mismatches[:5], problems[:5])
    assert any(f"process {fixture.pid} exited" in e for e in errors)


def summary_lines() -> list[str]:
    """Per bpftrace and stop moment: runs, calls of the traced functions made by the program (all
    of them, also those after the stop), events shown, events missing (emitted by the probes but
    never printed by bpftrace: lost by it, or dropped at the stop). Events lost by dwarfgo are
    0 in every run that passed (events shown == events in bpftrace's output)."""
    out = []
    for key in sorted({(s[0], s[1]) for s in SOAK}):
        rows = [s for s in SOAK if (s[0], s[1]) == key]
        out.append(f"soak bpftrace {key[0]} stop={key[1]}: {len(rows)} runs, {sum(r[2] for r in rows)} calls made, "
                   f"{sum(r[3] for r in rows)} events shown, {sum(r[4] for r in rows)} missing, 0 lost by dwarfgo")
    return out


@pytest.mark.live
@pytest.mark.parametrize("bt", ["0.17", "newest"])
def test_a_stop_while_bpftrace_prints_its_maps_does_not_cut_them(bt):
    """bpftrace prints its maps (the program's event counter among them) after its main loop has
    returned: after a stop, or by itself when the -p process exits. A stop request can come right
    then. Here bpftrace ends by itself (exit(); its END block prints the program's END line) and
    then blocks writing an 800-entry map into a one-page pipe; the stop comes while it is stuck
    there. Every map line must still arrive, and bpftrace exit normally. (bpftrace restores
    SIGINT's default action before printing its maps, so a SIGINT stop killed it there; 0.27 cuts
    its maps short on a SIGTERM there. The stop must send nothing once END has run.)"""
    from dwarfgo.runner.run import BpftraceRun, RunOptions

    version, path = installed_bpftrace(bt)
    _need(os.geteuid() == 0, "live bpftrace tests need root")
    fill = ("$i = 0; while ($i < 800) { @m[$i] = $i; $i++; }" if version == "0.17" else
            "for ($i : 0..800) { @m[$i] = $i; }")  # 0.27's verifier log overflows on the while loop
    program = f'BEGIN {{ {fill} exit(); }}\nEND {{ printf("@dg 0 0 identity plan=0 build=0\\n"); }}\n'
    run = BpftraceRun(program, RunOptions(bpftrace=path))
    lines = []
    try:
        fcntl.fcntl(run.proc.stdout.fileno(), F_SETPIPE_SZ, 4096)
        for chunk in run.chunks():
            lines += chunk
            if run.ended and run.stop_requested is None:
                deadline = time.monotonic() + 60
                while not _blocked_writing(run.proc.pid) and time.monotonic() < deadline:
                    time.sleep(0.05)  # until bpftrace is blocked writing its map into the full pipe
                assert _blocked_writing(run.proc.pid), "bpftrace never blocked on its output"
                run.stop()
    finally:
        rc = run.close()
    assert run.stop_requested is not None, "the END line never came:\n" + "".join(lines[-5:])
    entries = [l for l in lines if l.startswith("@m[")]
    assert len(entries) == 800 and rc == 0, (version, rc, len(entries), lines[-3:])


def _blocked_writing(pid: int) -> bool:
    """The process sleeps in write(2) to its stdout (x86-64 system call 1, fd 1), in a pipe write."""
    try:
        with open(f"/proc/{pid}/syscall") as f:
            nr, fd = (f.read().split() + ["", ""])[:2]
        with open(f"/proc/{pid}/wchan") as f:
            wchan = f.read().strip()
    except OSError:
        return False
    return nr == "1" and fd == "0x1" and "pipe_write" in wchan


@pytest.mark.live
@pytest.mark.parametrize("bt", ["0.17", "newest"])
def test_a_stop_while_bpftrace_waits_on_a_full_pipe_keeps_its_end(bt):
    """bpftrace prints without pause (a long line every 50 µs) while nobody reads its output, until
    it is blocked writing into the full pipe; then the stop comes, and only then is the output read.
    bpftrace's signal handler has no SA_RESTART: a signal that interrupts that write fails it, and
    bpftrace's output stream then drops everything after, the END block's line and the maps (the
    program's event counter) among them, and still exits with 0. Both versions did, in this test,
    before the stop learnt to wait for room in the pipe; the soak test once saw it as a run without
    its counter. The END line and the map must come, and bpftrace exit normally."""
    from dwarfgo.runner.run import BpftraceRun, RunOptions

    version, path = installed_bpftrace(bt)
    _need(os.geteuid() == 0, "live bpftrace tests need root")
    program = ('interval:us:50 { @n = count(); printf("line ' + "x" * 180 + '\\n"); }\n'
               'END { printf("@dg 0 0 identity plan=0 build=0\\n"); }\n')
    run = BpftraceRun(program, RunOptions(bpftrace=path))
    lines = []
    try:
        deadline = time.monotonic() + 120
        while not _blocked_writing(run.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)  # nothing is read: bpftrace fills the pipe, then waits on it
        assert _blocked_writing(run.proc.pid), "bpftrace never blocked on its output"
        run.stop()
        for chunk in run.chunks():
            lines += chunk
    finally:
        rc = run.close()
    assert any(l.startswith("@dg 0 0 identity") for l in lines), (version, rc, lines[-3:])
    assert any(l.startswith("@n: ") for l in lines) and rc == 0, (version, rc, lines[-3:])
    assert not run.killed
