"""Live: `dwarfgo trace` attached by a real bpftrace to a running fixture prints exactly the values
the fixture reports it passed and returned; one call event per call.

For every Go version of the matrix (amd64): the shapes fixture on bpftrace 0.17 (entry
probes: 0.17 cannot probe RET sites) and on the newest bpftrace with --ret; the stack-growth
and concurrent fixtures check the event counts. Needs root; with DWARFGO_REQUIRE_LIVE=1
(CI) anything that keeps a live test from running is a failure, not a skip.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import FIXTURES, REPRESENTATIVE, TOOLCHAINS, go_versions
from livecompare import compare_run

REQUIRE_LIVE = os.environ.get("DWARFGO_REQUIRE_LIVE") == "1"
SUMMARY = []  # (id, checked, unavailable, truncated) for the session summary


def _need(condition: bool, why: str) -> None:
    if condition:
        return
    if REQUIRE_LIVE:
        pytest.fail(why)
    pytest.skip(why)


def bpftrace_path(version: str) -> str:
    return str(TOOLCHAINS / "bin" / f"bpftrace-{version}")


def installed_bpftrace(bt: str) -> tuple[str, str]:
    """(version, path) of bpftrace `bt` ("0.17", "newest", ...); a missing one is a skip, or in CI
    (DWARFGO_REQUIRE_LIVE=1) a failure."""
    version = newest_bpftrace() if bt == "newest" else bt
    path = bpftrace_path(version)
    _need(os.path.exists(path), f"bpftrace {version} not installed (run scripts/install-toolchains)")
    return version, path


def newest_bpftrace() -> str:
    f = TOOLCHAINS / "bpftrace-versions"
    versions = f.read_text().split() if f.is_file() else []
    return versions[-1] if versions else "0.27"


def reported_calls(binary, *args) -> list[dict]:
    out = subprocess.run([str(binary), "-report", *args], capture_output=True, text=True, timeout=120, check=True)
    return [json.loads(l) for l in out.stdout.splitlines() if l.strip()]


def read_tracer(tracer, marks: dict[str, threading.Event]):
    """Threads reading a `dwarfgo trace --json` process: its events (stdout) and its messages
    (stderr); marks[prefix] is set when a message starting with prefix is said.
    Returns (events, messages, threads)."""
    events, errors = [], []

    def read_out():
        for line in tracer.stdout:
            if line.strip():
                events.append(json.loads(line))

    def read_err():
        for line in tracer.stderr:
            errors.append(line.rstrip())
            for prefix, mark in marks.items():
                if line.startswith(prefix):
                    mark.set()

    threads = [threading.Thread(target=read_out, daemon=True), threading.Thread(target=read_err, daemon=True)]
    for t in threads:
        t.start()
    return events, errors, threads


def wait_until_tracing(tracer) -> None:
    """Read the tracer's messages until "tracing" (said once every probe is attached)."""
    said = []
    for line in tracer.stderr:
        said.append(line)
        if line.startswith("dwarfgo: tracing"):
            return
    pytest.fail("trace never said it was tracing:\n" + "".join(said))


def trace_fixture(binary, funcs: list[str], bpftrace: str, ret: bool, fixture_args=(), max_str=200, timeout=600,
                  trace_args=()):
    """Start the fixture (waiting), attach `dwarfgo trace`, release the fixture, collect both sides."""
    fixture = subprocess.Popen([str(binary), "-report", "-wait", *fixture_args], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = fixture.stderr.readline()
    assert ready.startswith("READY"), ready
    argv = [sys.executable, "-m", "dwarfgo", "trace", str(binary), *funcs, "-p", str(fixture.pid), "--json",
            "--max-str", str(max_str), "--bpftrace", bpftrace, *trace_args]
    if ret:
        argv.append("--ret")
    tracer = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    attached = threading.Event()
    events, errors, threads = read_tracer(tracer, {"dwarfgo: tracing": attached})
    try:
        deadline = time.monotonic() + timeout
        while not attached.is_set():
            assert tracer.poll() is None, "trace exited before attaching:\n" + "\n".join(errors[-20:])
            assert time.monotonic() < deadline, "trace did not attach in time"
            time.sleep(0.1)
        report_text, _ = fixture.communicate("go\n", timeout=300)
        report = [json.loads(l) for l in report_text.splitlines() if l.strip()]
        # the traced process has exited: the trace ends by itself once bpftrace's output is drained
        try:
            tracer.wait(timeout=120)
        except subprocess.TimeoutExpired:
            errors.append("TEST: trace did not end within 120 s of the traced process's exit")
    finally:
        if tracer.poll() is None:
            tracer.send_signal(signal.SIGINT)
        try:
            tracer.wait(timeout=300)
        except subprocess.TimeoutExpired:
            tracer.kill()
        if fixture.poll() is None:
            fixture.kill()
        for t in threads:
            t.join(timeout=10)
    RESENT.extend(e for e in errors if "kept polling after the stop signal" in e)
    return report, events, errors, tracer.returncode


RESENT: list[str] = []  # bpftrace 0.17 missed the first stop signal (see runner.run.BpftraceRun.stop)


def _function_names(report: list[dict], binary) -> list[str]:
    """The traced functions: every function the fixture reports, by its name in this binary."""
    from dwarfgo.binary import GoBinary
    from livecompare import canonical_func

    with GoBinary(binary) as b:
        by_canonical = {canonical_func(s.name): s.name for s in b.function_symbols}
    names = []
    for r in report:
        name = by_canonical.get(canonical_func(r["func"]), r["func"])
        if name not in names:
            names.append(name)
    return names


def private_copy(binary, directory):
    """A copy of `binary` in `directory`: a file of its own, so that a trace with no pid filter
    (system-wide, or `bpftrace -c` on 0.17, whose uprobes fire in every process of the file)
    sees only the processes this test starts from it, not those that tests running beside it
    (pytest-xdist) start from the shared fixture."""
    copy = directory / binary.name
    shutil.copy2(binary, copy)
    return copy


def _live_preconditions(binary):
    _need(os.geteuid() == 0, "live bpftrace tests need root")
    _need(binary.exists(), f"fixture binary missing: {binary} (run scripts/build-fixtures)")


def _values_exact(binary, bpftrace: str, ret: bool, label: str, version: str):
    """Trace every function the fixture reports calling, compare every decoded value with the
    fixture's own report (one event per call), record the figures under `label`; the tally.
    Strings are asked for with --max-str 200 and must show exactly that many bytes when cut;
    bpftrace 0.17 copies 64 (BPFTRACE_STRLEN's default; 200 overflows its stack), and says so."""
    funcs = _function_names(reported_calls(binary), binary)
    report, events, errors, rc = trace_fixture(binary, funcs, bpftrace, ret, max_str=200)
    assert rc == 0, "\n".join(errors[-20:])
    assert not [e for e in errors if e.startswith("TEST:")], "\n".join(errors[-20:])
    tally, problems = compare_run(report, events, with_results=ret, max_str=64 if version == "0.17" else 200)
    if version == "0.17":
        assert any("copies at most 64 bytes" in e for e in errors), errors[:5]
    SUMMARY.append((label, tally.checked, tally.unavailable_count(), tally.truncated))
    assert not tally.mismatches, "wrong values:\n" + "\n".join(tally.mismatches[:50])
    assert not problems, "\n".join(problems[:50]) + "\ntrace stderr:\n" + "\n".join(errors[-10:])
    return tally


# every Go version with the newest bpftrace; bpftrace 0.17's dialect (no RET probes, its own
# stack budget and casts) on the representative versions: the stack ABI (1.15), the first
# register-ABI version here (1.19), the first with DWARF for blank parameters (1.22), the newest.
# The versions between add Go differences, which the newest bpftrace runs cover (CI time: about
# 19 s a run)
MATRIX = [(v, bt) for v in (go_versions() or ["1.22"]) for bt in ("0.17", "newest")
          if bt == "newest" or v in REPRESENTATIVE or v == (go_versions() or ["1.22"])[-1]]


@pytest.mark.live
@pytest.mark.parametrize("go, bt", MATRIX, ids=[f"go{v}-bpftrace{b}" for v, b in MATRIX])
def test_shapes_values_exact(go, bt):
    binary = FIXTURES / f"go{go}" / "amd64" / "default" / "shapes"
    _live_preconditions(binary)
    version, path = installed_bpftrace(bt)
    ret = version != "0.17"  # 0.17 has no offset probes: RET sites cannot be probed there
    tally = _values_exact(binary, path, ret, f"go{go}/bpftrace{version}", version)
    assert tally.checked > 250, f"only {tally.checked} values compared"
    # every value not compared is marked unavailable with a reason, never silently dropped
    for reason in tally.unavailable:
        assert reason and len(reason) > 10


@pytest.mark.live
@pytest.mark.alone  # events == calls: bpftrace must lose none, so no other test loads the machine
@pytest.mark.parametrize("fixture", ["stackgrowth", "concurrent"])
@pytest.mark.parametrize("bt", ["0.17", "newest"])
def test_one_event_per_call(fixture, bt):
    """Stack growth inside the probed function and many goroutines at once: events == calls."""
    versions = go_versions() or ["1.22"]
    for go in (versions[0], versions[-1]):
        binary = FIXTURES / f"go{go}" / "amd64" / "default" / fixture
        _live_preconditions(binary)
        version, path = installed_bpftrace(bt)
        _values_exact(binary, path, version != "0.17", f"{fixture} go{go}/bpftrace{version}", version)


@pytest.mark.live
@pytest.mark.parametrize("bt", ["0.17", "0.23", "newest"])
def test_each_event_carries_its_goroutine(bt):
    """The goroutine id of every call and return is read from its g: each of the concurrent
    fixture's workers is one goroutine calling main.Work, so the calls of one worker share an id
    and two workers never do. bpftrace 0.23 with -k gave the id's conditional read -1 (shown as
    null) on every event."""
    version, path = installed_bpftrace(bt)
    ret = version != "0.17"
    versions = go_versions() or ["1.22"]
    for go in (versions[0], versions[-1]):
        binary = FIXTURES / f"go{go}" / "amd64" / "default" / "concurrent"
        _live_preconditions(binary)
        report, events, errors, rc = trace_fixture(binary, ["main.Work"], path, ret=ret,
                                                   fixture_args=("-workers", "4", "-calls", "5"))
        assert rc == 0, "\n".join(errors[-20:])
        calls = [e for e in events if e["event"] == "call"]
        assert len(calls) == len(report) == 20, (go, version, len(calls), len(report))
        by_worker: dict[int, set] = {}
        for ev in calls:
            assert isinstance(ev["goroutine"], int) and ev["goroutine"] > 0, (go, version, ev["goroutine"])
            by_worker.setdefault(ev["args"]["worker"], set()).add(ev["goroutine"])
        assert sorted(by_worker) == [0, 1, 2, 3] and all(len(ids) == 1 for ids in by_worker.values()), by_worker
        assert len(set().union(*by_worker.values())) == 4, by_worker
        if ret:
            returns = [e for e in events if e["event"] == "ret"]
            assert len(returns) == 20, (go, version, len(returns))
            for ev in returns:  # main.Work returns worker*100000 + ...: its worker, its goroutine
                assert {ev["goroutine"]} == by_worker[ev["results"]["result"] // 100000], (go, version, ev)


def summary_lines() -> list[str]:
    """What the live runs checked, for the end of the pytest report (conftest.py prints it)."""
    lines = [f"{name}: {c} values exact, {u} unavailable (with reason), {t} truncated by limits"
             for name, c, u, t in SUMMARY]
    if RESENT:
        lines.append(f"stop signal sent again {len(RESENT)} time(s) (bpftrace 0.17 poll-loop race)")
    return lines


@pytest.mark.live
@pytest.mark.parametrize("bt", ["0.17", "newest"])
def test_unreadable_memory_is_unavailable_never_zero(bt):
    """A pointer into a page that is not present, and one to an unmapped address: bpftrace's read
    fails and gives zeros; dwarfgo must show those values as unavailable (the read failed), and
    the same pointer's values exactly once the page is present (fixtures/coldmem)."""
    version, path = installed_bpftrace(bt)
    checked = 0
    versions = go_versions() or ["1.22"]
    for go in versions:
        binary = FIXTURES / f"go{go}" / "amd64" / "default" / "coldmem"
        _live_preconditions(binary)
        report, events, errors, rc = trace_fixture(binary, ["main.Touch"], path, ret=False,
                                                   fixture_args=("-n", "3"))
        assert rc == 0, "\n".join(errors[-20:])
        assert not [e for e in errors if "could not be tied" in e], errors
        calls = sorted((e for e in events if e["event"] == "call"), key=lambda e: e["ts"])
        assert len(calls) == len(report) == 6, (go, len(calls), len(report))
        for ev, rec in zip(calls, report):
            args, want = ev["args"], rec["args"]
            assert args["label"] == want["label"] and args["n"] == want["n"], (go, args, want)
            if want["resident"]:
                assert args["p"] == {"A": 42, "B": f"warm-{want['n']}"}, (go, args)
                assert args["bad"] is None, (go, args)
            else:
                for name in ("p", "bad"):
                    for field in ("A", "B"):
                        assert "memory read failed" in args[name][field].get("unavailable", ""), (go, name, args)
            checked += 1
    assert checked == 6 * len(versions)


@pytest.mark.live
@pytest.mark.parametrize("go", [v for v in ("1.15", "1.27") if v in (go_versions() or ["1.27"])])
def test_pie_values_exact(go):
    """A position-independent build: code and type addresses read from the process carry the load
    bias; func values and interfaces' dynamic types must still be named exactly. The oldest (stack
    ABI) and newest Go: the load bias is the same arithmetic for every version between (CI time)."""
    binary = FIXTURES / f"go{go}" / "amd64" / "pie" / "shapes"
    _live_preconditions(binary)
    version, path = installed_bpftrace("newest")
    tally = _values_exact(binary, path, True, f"pie go{go}/bpftrace{version}", version)
    assert tally.checked > 250


def _static_itab_pairs(binary) -> set[str]:
    """`<type>,<interface>` of each itab the binary holds: its symbol table's go:itab.* symbols
    (Go 1.27 writes none), and the runtime module data's itab list, each itab's interface and
    type named from their descriptors."""
    from elftools.elf.elffile import ELFFile

    from dwarfgo.binary import GoBinary
    from dwarfgo.rtypes import RuntimeTypes

    pairs = set()
    with open(binary, "rb") as f:
        for sym in ELFFile(f).get_section_by_name(".symtab").iter_symbols():
            for prefix in ("go:itab.", "go.itab."):
                if sym.name.startswith(prefix):
                    pairs.add(sym.name[len(prefix):])
    with GoBinary(binary) as b:
        tables = RuntimeTypes(b)
        for itab in tables.module.itabs:
            inter, dynamic = tables.image.word(itab), tables.image.word(itab + 8)
            pairs.add(f"{tables.at(dynamic).string},{tables.at(inter).string}")
    return pairs


@pytest.mark.live
@pytest.mark.parametrize("bt", ["0.17", "newest"])
def test_a_runtime_built_itab_is_followed_and_named_exactly(bt):
    """The probe does not follow an itab of the binary's own (the decoder reads its type word from
    the file), so one the runtime builds must still be followed in the probe and named exactly.
    fixtures/shapes passes main.Describe a Square that only a type assertion makes a Shape: the
    binary holds no itab for that pair (checked), so the runtime builds it while the program runs.
    Every Go version of the matrix: each Describe call's dynamic type (main.Rect, *main.Circle,
    nil, main.Square) as the fixture reports it."""
    version, path = installed_bpftrace(bt)
    ret = version != "0.17"
    for go in go_versions() or ["1.22"]:
        binary = FIXTURES / f"go{go}" / "amd64" / "default" / "shapes"
        _live_preconditions(binary)
        pairs = _static_itab_pairs(binary)
        assert "main.Rect,main.Shape" in pairs and "main.Square,main.Shape" not in pairs, (go, sorted(pairs))
        report, events, errors, rc = trace_fixture(binary, ["main.Describe"], path, ret=ret)
        assert rc == 0, "\n".join(errors[-20:])
        report = [r for r in report if r["func"] == "main.Describe"]
        tally, problems = compare_run(report, events, with_results=ret)
        assert not tally.mismatches and not problems, (go, tally.mismatches, problems)
        calls = sorted((e for e in events if e["event"] == "call"), key=lambda e: e["ts"])
        shown = [e["args"]["s"]["type"] if e["args"]["s"] else None for e in calls]
        assert shown == [r["args"]["s"]["type"] if r["args"]["s"] else None for r in report], (go, shown)
        assert shown == ["main.Rect", "*main.Circle", None, "main.Square"], (go, shown)
        SUMMARY.append((f"runtime-built itab go{go}/bpftrace{version}", tally.checked, tally.unavailable_count(),
                        tally.truncated))


@pytest.mark.live
def test_sigint_stops_trace_even_when_inherited_ignored(tmp_path):
    """A script that starts `dwarfgo trace ... &` hands it SIGINT ignored (POSIX shells do that to
    background commands without job control); `kill -INT` must still stop it cleanly."""
    go = (go_versions() or ["1.22"])[-1]
    binary = FIXTURES / f"go{go}" / "amd64" / "default" / "demo"
    _live_preconditions(binary)
    binary = private_copy(binary, tmp_path)  # system-wide: no other test's demo process
    _, path = installed_bpftrace("newest")
    tracer = subprocess.Popen([sys.executable, "-m", "dwarfgo", "trace", str(binary), "(*BarrierView).Put",
                               "--bpftrace", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        wait_until_tracing(tracer)
        tracer.send_signal(signal.SIGINT)
        rc = tracer.wait(timeout=60)
    finally:
        if tracer.poll() is None:
            tracer.kill()
    assert rc in (0, 130), (rc, tracer.stderr.read())


@pytest.mark.live
@pytest.mark.parametrize("bt", ["0.17", "newest"])
def test_two_processes_of_one_binary_traced_system_wide(bt, tmp_path):
    """Without -p, every process running the binary is traced. Two copies of one Go binary put
    their goroutines' g structures at the same addresses, so nothing a probe keeps per goroutine
    (the re-entry mark, a call awaiting its return) may be shared between them; each event
    names its process. Both copies grow stacks in the traced functions at the same time."""
    go = (go_versions() or ["1.22"])[-1]
    binary = FIXTURES / f"go{go}" / "amd64" / "default" / "stackgrowth"
    _live_preconditions(binary)
    binary = private_copy(binary, tmp_path)  # system-wide: only these two processes run this file
    version, path = installed_bpftrace(bt)
    ret = version != "0.17"
    fixtures = [subprocess.Popen([str(binary), "-report", "-wait"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(2)]
    tracer = None
    try:
        for f in fixtures:
            assert f.stderr.readline().startswith("READY")
        funcs = _function_names(reported_calls(binary), binary)
        argv = [sys.executable, "-m", "dwarfgo", "trace", str(binary), *funcs, "--json", "--bpftrace", path]
        tracer = subprocess.Popen(argv + (["--ret"] if ret else []), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        wait_until_tracing(tracer)
        for f in fixtures:
            f.stdin.write("go\n")
            f.stdin.flush()
        reports = {f.pid: [json.loads(l) for l in f.communicate(timeout=300)[0].splitlines() if l.strip()]
                   for f in fixtures}
        events = []
        expected = sum(len(r) for r in reports.values()) * (2 if ret else 1)
        reader = threading.Thread(target=lambda: events.extend(json.loads(l) for l in tracer.stdout if l.strip()),
                                  daemon=True)
        reader.start()
        deadline = time.monotonic() + 30
        while len(events) < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        tracer.send_signal(signal.SIGINT)
        assert tracer.wait(timeout=300) in (0, 130), tracer.stderr.read()
        reader.join(timeout=10)
    finally:
        for p in fixtures + ([tracer] if tracer else []):
            if p.poll() is None:
                p.kill()
    assert {e["pid"] for e in events} == set(reports)
    for pid, report in reports.items():
        mine = [e for e in events if e["pid"] == pid]
        tally, problems = compare_run(report, mine, with_results=ret)
        SUMMARY.append((f"two processes, stackgrowth go{go}/bpftrace{version} pid {pid}", tally.checked,
                        tally.unavailable_count(), tally.truncated))
        assert not tally.mismatches, "\n".join(tally.mismatches[:30])
        assert not problems, "\n".join(problems[:30])


@pytest.mark.live
@pytest.mark.parametrize("bt", ["0.17", "newest"])
def test_trace_of_a_command_shows_only_its_process(bt, tmp_path):
    """`trace -c CMD` shows the command's calls only. bpftrace 0.17 attaches a -c run's uprobes to
    every process of the binary (0.23+ to the command's): another process of the same binary,
    calling the traced functions while the command waits to start, must not show."""
    go = (go_versions() or ["1.22"])[-1]
    binary = FIXTURES / f"go{go}" / "amd64" / "default" / "stackgrowth"
    _live_preconditions(binary)
    binary = private_copy(binary, tmp_path)  # only this test's processes run this file
    version, path = installed_bpftrace(bt)
    script = tmp_path / "later.sh"  # the command: its own pid (exec), after the other's calls
    script.write_text(f"sleep 2\nexec {binary} -report\n")
    shell = os.path.realpath(shutil.which("sh"))
    other = subprocess.Popen([str(binary), "-report", "-wait"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    tracer = None
    try:
        assert other.stderr.readline().startswith("READY")
        funcs = _function_names(reported_calls(binary), binary)
        tracer = subprocess.Popen([sys.executable, "-m", "dwarfgo", "trace", str(binary), *funcs, "--json",
                                   "--bpftrace", path, "-c", f"{shell} {script}"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until_tracing(tracer)
        others = [json.loads(l) for l in other.communicate("go\n", timeout=300)[0].splitlines() if l.strip()]
        printed, said = tracer.communicate(timeout=300)
    finally:
        for p in (other, tracer):
            if p is not None and p.poll() is None:
                p.kill()
    assert tracer.returncode == 0, said[-2000:]
    assert others, "the other process made no calls"
    command_report = [r for r in (json.loads(l) for l in said.splitlines() if l.startswith("{")) if "func" in r]
    events = [json.loads(l) for l in printed.splitlines() if l.strip()]
    calls = [e for e in events if e["event"] == "call"]
    assert other.pid not in {e["pid"] for e in events}, "events of another process of the binary"
    counted = collections.Counter(e["func"] for e in calls)
    reported = collections.Counter(r["func"] for r in command_report)
    assert len({e["pid"] for e in events}) == 1 and counted == reported, (counted, reported, said[-1500:])


def _decode(binary, funcs, raw_file, *options) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dwarfgo", "decode", str(binary), *funcs, "--input", str(raw_file),
                           *options], capture_output=True, text=True, timeout=300)


@pytest.mark.live
@pytest.mark.parametrize("bt", ["newest", "0.17"])
def test_decode_of_saved_output_equals_trace(tmp_path, bt):
    """`trace --raw-output FILE` (text output) then `decode` of FILE with the same options: the same
    lines as trace printed, and with --json events whose values are exactly the fixture's; with
    other options, or another binary, decode refuses in one line and prints no event. On the
    newest bpftrace with --ret over the newest Go; on 0.17 (entries) over the oldest (stack ABI)."""
    versions = go_versions() or ["1.27"]
    go, other_go = (versions[-1], versions[0]) if bt == "newest" else (versions[0], versions[-1])
    binary = FIXTURES / f"go{go}" / "amd64" / "default" / "shapes"
    _live_preconditions(binary)
    version, path = installed_bpftrace(bt)
    ret = version != "0.17"
    funcs = ["main.Strings", "main.Slices", "main.Pointers", "main.List", "main.Describe", "main.Maps"]
    raw = tmp_path / "raw.out"
    options = ["--max-str", "200", *(["--ret"] if ret else [])]
    fixture = subprocess.Popen([str(binary), "-report", "-wait"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert fixture.stderr.readline().startswith("READY")
    tracer = subprocess.Popen([sys.executable, "-m", "dwarfgo", "trace", str(binary), *funcs, "-p", str(fixture.pid),
                               "--bpftrace", path, "--raw-output", str(raw), *options],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_tracing(tracer)
        report_text, _ = fixture.communicate("go\n", timeout=300)
        printed, said = tracer.communicate(timeout=300)
    finally:
        for proc in (tracer, fixture):
            if proc.poll() is None:
                proc.kill()
    assert tracer.returncode == 0, said
    report = [json.loads(l) for l in report_text.splitlines() if l.strip()]
    report = [r for r in report if r["func"] in funcs]
    common = ["--bpftrace-version", version, *options]
    text = _decode(binary, funcs, raw, *common)
    assert text.returncode == 0, text.stderr
    assert text.stdout == printed and printed.count("\n") == (2 if ret else 1) * len(report)
    assert text.stderr.splitlines()[-1] == said.splitlines()[-1]  # the same count of calls and returns
    js = _decode(binary, funcs, raw, "--json", *common)
    assert js.returncode == 0, js.stderr
    tally, problems = compare_run(report, [json.loads(l) for l in js.stdout.splitlines()], with_results=ret,
                                  max_str=64 if version == "0.17" else 200)
    assert not tally.mismatches and not problems, (tally.mismatches + problems)[:20]
    assert tally.checked > 30
    # another option set (another plan), another binary: refused, nothing printed
    other = _decode(binary, funcs, raw, "--bpftrace-version", version,
                    *(["--max-str", "200"] if ret else ["--max-str", "32"]))  # 0.17 copies 64 of 100 or 200
    assert other.returncode == 1 and not other.stdout, other
    assert other.stderr.count("\n") == 1 and "another program" in other.stderr, other.stderr
    elsewhere = FIXTURES / f"go{other_go}" / "amd64" / "default" / "shapes"
    other = _decode(elsewhere, funcs, raw, *common)
    assert other.returncode == 1 and not other.stdout and "another binary" in other.stderr, other.stderr


@pytest.mark.live
@pytest.mark.parametrize("bt", ["0.23", "newest"])
def test_a_byte_copy_takes_the_room_of_max_str_in_its_output_record(bt, tmp_path):
    """bpftrace 0.23+ gives a buf() whose length is not a constant the room of its max_strlen
    (1024 bytes unless set) in the output record, whatever the copy's clamp: each string was a
    1 KiB record in the ring buffer, which 13 busy gofmt functions filled. Seen in bpftrace's own
    LLVM IR (`-d codegen`): the byte array of each printf record that carries a copy."""
    import re
    version, path = installed_bpftrace(bt)
    binary = FIXTURES / "go1.27" / "amd64" / "default" / "demo"
    _need(binary.exists(), f"{binary} not built")
    max_str = 100  # (above 64: bpftrace 0.27 needs max_strlen >= 61, see the test below)
    program = subprocess.run([sys.executable, "-m", "dwarfgo", "probe", str(binary), "(*BarrierView).Put",
                              "--format", "raw", "--max-str", str(max_str), "--bpftrace", path],
                             capture_output=True, text=True, timeout=300)
    assert program.returncode == 0, program.stderr
    file = tmp_path / "put.bt"
    file.write_text(program.stdout)
    ir = subprocess.run([path, "-d", "codegen", "--dry-run", "-k", str(file)], capture_output=True, text=True,
                        timeout=300, env={**os.environ, "BPFTRACE_MAP_KEYS_MAX": "65536"})
    assert ir.returncode == 0, ir.stderr[-2000:]
    records = re.findall(r"^%?printf_(?:args_)?t[.\d]* = type \{(.*)\}$", ir.stdout + ir.stderr, re.M)
    copies = [int(n) for r in records for n in re.findall(r"\[(\d+) x i8\]", r)]
    # Put copies v.prefix, entry.Key and entry.Value's bytes: one record each
    assert len(copies) >= 3, records
    # the copy's bytes and bpftrace's 4-byte length word, rounded up to 8; not 1024
    assert max(copies) <= max_str + 8, copies


@pytest.mark.live
@pytest.mark.parametrize("bt", ["0.23", "newest"])
def test_a_short_max_str_loads_and_cuts_each_string_at_it(bt):
    """bpftrace 0.27 checks the string literals of its own library against the program's
    max_strlen, and delete() (every --ret program deletes its call's start time) expands to a
    61-byte message: with --max-str 56 or less, max_strlen was under 61 and 0.27 refused the
    program ("String is too long (over 12 bytes)"); 0.23 took it. Every string of the shapes
    fixture must show exactly its first 8 bytes and its true length, on both."""
    binary = FIXTURES / "go1.27" / "amd64" / "default" / "shapes"
    _live_preconditions(binary)
    version, path = installed_bpftrace(bt)
    funcs = _function_names(reported_calls(binary), binary)
    report, events, errors, rc = trace_fixture(binary, funcs, path, ret=True, max_str=8)
    assert rc == 0, "\n".join(errors[-20:])
    assert not [e for e in errors if e.startswith("TEST:")], "\n".join(errors[-20:])
    tally, problems = compare_run(report, events, with_results=True, max_str=8)
    assert not tally.mismatches, "wrong values:\n" + "\n".join(tally.mismatches[:50])
    assert not problems, "\n".join(problems[:50])
    assert tally.truncated > 10 and tally.checked > 250, (tally.truncated, tally.checked)
