"""The raw DIE scan and the per-binary index cache.

The scan is checked against pyelftools' own reading of the same units (an independent reader);
the cache by what the commands print (the demo's signatures, as written in fixtures/demo/main.go)
on a hit, after the binary changed, with a corrupt or lying cache file, an unwritable cache
directory, and two processes filling the same cache at once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from conftest import FIXTURES, REPO, fresh_python, require_file
from dwarfgo import indexcache
from dwarfgo.errors import DwarfgoError
from dwarfgo.diescan import DW_TAG_subprogram, DW_TAG_typedef, DieScanner
from dwarfgo.program import GoProgram

DEMO = REPO / "fixtures" / "bin" / "demo-go1.22-amd64"
# fixtures/demo/main.go, with the package path dwarfgo prints
PUT = "func (v *main.BarrierView) Put(ctx context.Context, entry *main.StorageEntry) error"
CHECK_KEY = "func checkKey(key string) error"


@pytest.fixture
def demo(tmp_path):
    path = tmp_path / "demo"
    shutil.copy2(DEMO, path)
    return path


def _signatures(path, **kw) -> tuple[list[str], GoProgram]:
    prog = GoProgram(path, **kw)
    try:
        sigs = [prog.function(q).signature() for q in ("(*BarrierView).Put", "main.checkKey")]
        prog.type_named("main.BarrierView")
    finally:
        prog.close()
    return sigs, prog


def _index_files(cache_home):
    return sorted(f for f in cache_home.glob("*" + indexcache.SUFFIX) if not f.name.startswith("."))


@pytest.mark.parametrize("go,arch", [("1.15", "amd64"), ("1.21", "arm64"), ("1.27", "s390x")])
def test_raw_scan_finds_what_pyelftools_finds(go, arch):
    """Every unit's top-level subprograms (entry -> DIE offset) and typedef names, as pyelftools
    reads them: DWARF 4 and 5 (DW_FORM_addrx), little- and big-endian."""
    path = FIXTURES / f"go{go}" / arch / "default" / "shapes"
    require_file(path, "fixture binary")
    with GoProgram(path, cache=False) as prog:
        dwarf = prog.binary.dwarf
        scanner = DieScanner.of(dwarf)
        units = list(dwarf.iter_CUs())
        assert scanner.unit_offsets() == [cu.cu_offset for cu in units]
        for cu in units:
            scanned = scanner.top_level(cu.cu_offset, {DW_TAG_subprogram, DW_TAG_typedef})
            subprograms = {d.low_pc: d.offset for d in scanned if d.tag == DW_TAG_subprogram and d.low_pc is not None}
            typedefs = [(d.name, d.offset) for d in scanned if d.tag == DW_TAG_typedef]
            want_subprograms, want_typedefs = {}, []
            for die in cu.get_top_DIE().iter_children():
                if die.tag == "DW_TAG_subprogram" and "DW_AT_low_pc" in die.attributes:
                    want_subprograms[die.attributes["DW_AT_low_pc"].value] = die.offset
                elif die.tag == "DW_TAG_typedef":
                    want_typedefs.append((die.attributes["DW_AT_name"].value.decode(), die.offset))
            assert subprograms == want_subprograms, cu.cu_offset
            assert typedefs == want_typedefs, cu.cu_offset


def test_second_run_reads_the_index_and_not_the_units(demo, cache_home, monkeypatch):
    sigs, prog = _signatures(demo)
    assert sigs == [PUT, CHECK_KEY]
    assert not prog.cache.loaded
    assert len(_index_files(cache_home)) == 1

    def no_scan(*a, **k):
        raise AssertionError("a unit was scanned on a cache hit")

    monkeypatch.setattr(DieScanner, "top_level", no_scan)
    sigs, prog = _signatures(demo)
    assert sigs == [PUT, CHECK_KEY]
    assert prog.cache.loaded


def test_no_cache_neither_reads_nor_writes(demo, cache_home):
    sigs, prog = _signatures(demo, cache=False)
    assert sigs == [PUT, CHECK_KEY] and prog.cache is None
    assert not cache_home.exists()


def test_a_changed_binary_misses(demo, cache_home):
    _signatures(demo)
    os.utime(demo, ns=(time.time_ns(), time.time_ns() + 10**9))  # touched: same build ID, another mtime
    sigs, prog = _signatures(demo)
    assert sigs == [PUT, CHECK_KEY] and not prog.cache.loaded
    with open(demo, "ab") as fh:  # grown: another size
        fh.write(b"\0" * 16)
    sigs, prog = _signatures(demo)
    assert sigs == [PUT, CHECK_KEY] and not prog.cache.loaded
    sigs, prog = _signatures(demo)
    assert prog.cache.loaded


@pytest.mark.parametrize("content", [b"", b"{not json", b"[1, 2, 3]", b'{"identity": 7}', b"\xff\xfe\x00garbage"])
def test_a_corrupt_index_is_ignored_and_rebuilt(demo, cache_home, content):
    _signatures(demo)
    [index] = _index_files(cache_home)
    index.write_bytes(content)
    sigs, prog = _signatures(demo)
    assert sigs == [PUT, CHECK_KEY] and not prog.cache.loaded
    assert json.loads(index.read_text())["identity"]["size"] == demo.stat().st_size


@pytest.mark.parametrize("lie", ["subprograms", "types", "types_found"])
def test_an_index_whose_offsets_lie_is_a_miss(demo, cache_home, lie):
    """A well-formed file of this binary whose DIE offsets point at other DIEs: each lookup checks
    the DIE it lands on (a subprogram with that entry, a type of that name, from the table of
    every type name or from the names found one at a time)."""
    _signatures(demo)
    with GoProgram(demo) as prog, pytest.raises(DwarfgoError):
        prog.type_named("main.NotAType")  # not found: every type name is read, and their table kept
    [index] = _index_files(cache_home)
    doc = json.loads(index.read_text())
    assert doc["types"]["main.BarrierView"] == doc["types_found"]["main.BarrierView"]
    if lie == "subprograms":  # each function's DIE offset -> the next function's
        every_offset = sorted({o for table in doc["subprograms"].values() for _, o in table})
        for table in doc["subprograms"].values():
            for row in table:
                row[1] = every_offset[(every_offset.index(row[1]) + 1) % len(every_offset)]
    elif lie == "types":  # each type name -> the next name's DIE
        names = sorted(doc["types"])
        doc["types"] = {n: doc["types"][names[(i + 1) % len(names)]] for i, n in enumerate(names)}
    else:  # no table, and the name found before -> another name's DIE
        doc["types_found"]["main.BarrierView"] = doc["types"]["main.checkKey" if "main.checkKey" in doc["types"]
                                                              else "main.Pair" if "main.Pair" in doc["types"] else "int"]
        doc["types"] = None
    index.write_text(json.dumps(doc))
    with GoProgram(demo) as prog:
        assert prog.cache.loaded
        assert [prog.function(q).signature() for q in ("(*BarrierView).Put", "main.checkKey")] == [PUT, CHECK_KEY]
        bv = prog.type_named("main.BarrierView")
        assert bv.name == "main.BarrierView" and bv.kind.value == "struct"
        assert not prog.cache.loaded  # thrown away on the first mismatch
    with GoProgram(demo) as prog:  # and the rewritten file is right
        assert prog.cache.loaded
        assert prog.function("main.checkKey").signature() == CHECK_KEY
        assert prog.type_named("main.BarrierView").name == "main.BarrierView"


def test_a_type_asked_by_its_full_name_is_kept_without_the_table_of_every_name(demo, cache_home):
    """type_named with a full name reads the runtime units only up to that type (the table of
    every name is not made), and the index keeps where it is: the first DIE of that name, as
    pyelftools walks the runtime units."""
    from dwarfgo.binary import GoBinary

    with GoProgram(demo) as prog:
        bv = prog.type_named("main.BarrierView")
        assert bv.name == "main.BarrierView" and bv.kind.value == "struct"  # fixtures/demo: type BarrierView struct
    [index] = _index_files(cache_home)
    doc = json.loads(index.read_text())
    assert doc["types"] is None
    with GoBinary(demo) as binary:
        first = next(die.offset for cu in binary.dwarf.iter_CUs() if cu.get_top_DIE().attributes["DW_AT_name"].value == b"runtime"
                     for die in cu.get_top_DIE().iter_children()
                     if "DW_AT_name" in die.attributes and die.attributes["DW_AT_name"].value == b"main.BarrierView")
    assert doc["types_found"] == {"main.BarrierView": first}
    with GoProgram(demo) as prog:  # read back from the index
        assert prog.type_named("main.BarrierView").name == "main.BarrierView" and prog.cache.loaded


def test_an_unwritable_cache_directory_means_no_cache_said_once(demo, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")  # the cache directory would be under a file (root ignores file modes)
    script = ("from dwarfgo.program import GoProgram\n"
              "for _ in range(3):\n"
              "    with GoProgram(%r) as p:\n"
              "        print(p.function('main.checkKey').signature())\n" % str(demo))
    proc = fresh_python(script, XDG_CACHE_HOME=str(blocker))
    assert proc.stdout.splitlines() == [CHECK_KEY] * 3
    assert proc.stderr.count("working without a cache") == 1, proc.stderr
    env = dict(os.environ, XDG_CACHE_HOME=str(blocker), PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "dwarfgo", "sig", str(demo), "main.checkKey"], env=env,
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0 and proc.stdout.splitlines()[0] == CHECK_KEY
    assert proc.stderr.count("dwarfgo: cache directory") == 1, proc.stderr


def test_concurrent_writers_leave_one_whole_index(demo, cache_home):
    """Two processes fill the same binary's index at once, each with other packages: every run
    of each answers right, and what is left is one whole index, no temporary files."""
    script = ("import sys\nfrom dwarfgo.program import GoProgram\n"
              "for i in range(6):\n"
              "    with GoProgram(sys.argv[1]) as p:\n"
              "        print(p.function(sys.argv[2]).signature(), flush=True)\n"
              "        p.cache.discard()\n")  # every round writes a whole new file
    env = dict(os.environ, PYTHONPATH=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-c", script, str(demo), q], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=REPO) for q in ("(*BarrierView).Put", "main.checkKey")]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert outs[0][0].splitlines() == [PUT] * 6 and outs[1][0].splitlines() == [CHECK_KEY] * 6
    assert [f.name for f in cache_home.iterdir() if f.name.startswith(".")] == []
    [index] = _index_files(cache_home)
    assert json.loads(index.read_text())["identity"]["size"] == demo.stat().st_size
    sigs, prog = _signatures(demo)
    assert sigs == [PUT, CHECK_KEY] and prog.cache.loaded


def test_cache_command_shows_and_clears(demo, cache_home):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run = lambda *a: subprocess.run([sys.executable, "-m", "dwarfgo", *a], env=env, capture_output=True, text=True,
                                    timeout=120, cwd=REPO)
    assert run("sig", str(demo), "main.checkKey").returncode == 0
    shown = run("cache")
    assert shown.returncode == 0 and shown.stdout.startswith(f"{cache_home}: 1 index file(s)")
    cleared = run("cache", "clear")
    assert cleared.returncode == 0 and "removed 1 index file(s)" in cleared.stdout
    assert _index_files(cache_home) == []
    assert run("sig", "--no-cache", str(demo), "main.checkKey").returncode == 0
    assert _index_files(cache_home) == []


def _line(prog, fn):
    return f"{fn.address:#x} {fn.name} {fn.signature()}"


def test_functions_in_worker_processes_come_in_order_and_equal_the_sequential_ones(monkeypatch):
    """Worker processes (two, replaced every 3 runs of 8 symbols) give what the one-process
    model gives, in the same order."""
    from dwarfgo import parallel
    monkeypatch.setattr(parallel, "MIN_PARALLEL", 0)
    monkeypatch.setattr(parallel, "RUN_LENGTH", 8)
    monkeypatch.setattr(parallel, "RUNS_PER_WORKER", 3)
    with GoProgram(DEMO, cache=False) as prog:
        want = [_line(prog, fn) for fn in prog.matching("strconv.")]
        assert len(want) > 30
        got = list(prog.map_matching("strconv.", _line, workers=2))
    assert got == want


def _worker_view(prog, fn):
    """What a worker sees: its process, the program it was given, and the code it reads after
    moving its descriptor of the binary far away."""
    stream = prog.binary.elf.stream
    stream.seek(1_000_000 + os.getpid() % 4096)
    stream.read(1)
    return os.getpid(), getattr(prog, "marked_by_test", None), prog.binary.read_memory(fn.address, 16)


def test_workers_use_the_parents_program_with_file_offsets_of_their_own(monkeypatch):
    """Forked workers take the parent's opened program (not a fresh open), and each has its own
    file description of the binary: a worker's seek moves neither the parent's offset nor a
    sibling's read (the code they read is the binary's)."""
    from dwarfgo import parallel
    monkeypatch.setattr(parallel, "MIN_PARALLEL", 0)
    monkeypatch.setattr(parallel, "RUN_LENGTH", 4)
    with GoProgram(DEMO, cache=False) as prog:
        fns = prog.matching("strconv.")
        want_code = [prog.binary.read_memory(fn.address, 16) for fn in fns]
        fd = prog.binary.elf.stream.fileno()
        offset = os.lseek(fd, 4096, os.SEEK_SET)
        prog.marked_by_test = "parent"
        got = list(prog.map_matching("strconv.", _worker_view, workers=2))
        assert os.lseek(fd, 0, os.SEEK_CUR) == offset
    pids = {pid for pid, _, _ in got}
    assert os.getpid() not in pids and len(pids) >= 1
    assert all(mark == "parent" for _, mark, _ in got)
    assert [code for _, _, code in got] == want_code


def test_stack_verdicts_are_kept_per_program_and_bpftrace(cache_home, tmp_path):
    """bpftrace's compile check of a program (1.5 s on a cmd/compile method on 0.17) runs once
    per program text and bpftrace binary; `cache clear` removes the verdicts."""
    from dwarfgo.emit.dialect import Dialect
    from dwarfgo.emit.readable import ReadableProgram
    from dwarfgo.emit.stackcheck import CompileVerdict, compile_verdict

    calls = tmp_path / "calls"
    fake = tmp_path / "bpftrace"
    fake.write_text(f"#!/bin/sh\necho run >> {calls}\necho 'ERROR: stack limit exceeded' >&2\nexit 1\n")
    fake.chmod(0o755)
    dialect = Dialect((0, 17, 0))
    one, other = ReadableProgram("uprobe:/bin/true:0x1 { }", []), ReadableProgram("uprobe:/bin/true:0x2 { }", [])
    over = CompileVerdict.OVER_THE_STACK

    def runs() -> int:
        return len(calls.read_text().split()) if calls.exists() else 0

    assert compile_verdict(str(fake), dialect, one, cached=True) is over
    assert compile_verdict(str(fake), dialect, one, cached=True) is over
    assert runs() == 1
    assert compile_verdict(str(fake), dialect, other, cached=True) is over
    assert runs() == 2
    assert compile_verdict(str(fake), dialect, one) is over  # without the cache (--no-cache): compiled again
    assert runs() == 3
    fake.write_text(f"#!/bin/sh\necho run >> {calls}\nexit 0\n")  # another bpftrace (size, mtime): asked again
    assert compile_verdict(str(fake), dialect, one, cached=True) is CompileVerdict.FITS
    assert runs() == 4
    # LLVM's words for a probe too large for a BPF jump (seen from 0.27, status -6): kept too
    fake.write_text(f"#!/bin/sh\necho run >> {calls}\necho 'LIBCLANG FATAL ERROR: Branch target out of insn range' >&2\n"
                    "kill -ABRT $$\n")
    assert compile_verdict(str(fake), dialect, other, cached=True) is CompileVerdict.TOO_LARGE
    assert compile_verdict(str(fake), dialect, other, cached=True) is CompileVerdict.TOO_LARGE
    assert runs() == 5
    # another failure is no verdict: not kept, the real run reports it
    fake.write_text(f"#!/bin/sh\necho run >> {calls}\necho 'ERROR: something else' >&2\nexit 1\n")
    third = ReadableProgram("uprobe:/bin/true:0x3 { }", [])
    assert compile_verdict(str(fake), dialect, third, cached=True) is CompileVerdict.FITS
    assert compile_verdict(str(fake), dialect, third, cached=True) is CompileVerdict.FITS
    assert runs() == 7
    assert list(cache_home.glob("*" + indexcache.STACK_SUFFIX))
    indexcache.clear()
    assert not list(cache_home.glob("*" + indexcache.STACK_SUFFIX))
