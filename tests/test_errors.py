"""Bad input gets one clear line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import subprocess
import sys


from conftest import FIXTURES, REPO, require_file

DEMO = REPO / "fixtures" / "bin" / "demo-go1.22-amd64"


def dwarfgo(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dwarfgo", *map(str, args)], capture_output=True, text=True, timeout=120)


def assert_one_line_error(proc, *needles):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("dwarfgo: error: "), lines[0]
    for n in needles:
        assert n in lines[0], lines[0]
    assert proc.stdout == ""


def test_missing_file(tmp_path):
    assert_one_line_error(dwarfgo("sig", tmp_path / "nope", "main.main"), "no such file")


def test_directory(tmp_path):
    assert_one_line_error(dwarfgo("funcs", tmp_path), "is a directory")


def test_not_elf(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("hello\n")
    assert_one_line_error(dwarfgo("funcs", f), "not an ELF file")


def test_truncated_elf(tmp_path):
    f = tmp_path / "trunc"
    f.write_bytes(b"\x7fELF\x02\x01\x01" + b"\x00" * 9)
    assert_one_line_error(dwarfgo("funcs", f), "trunc")



def test_not_go():
    assert_one_line_error(dwarfgo("funcs", "/bin/ls"), "not a Go binary")


def test_no_dwarf():
    path = FIXTURES / "go1.22" / "amd64" / "nodwarf" / "shapes"
    require_file(path, "nodwarf fixture")
    assert_one_line_error(dwarfgo("sig", path, "main.main"), "without DWARF", "-ldflags=-w")


def test_function_not_found_suggests():
    require_file(DEMO, "demo binary")
    assert_one_line_error(dwarfgo("sig", DEMO, "BarrierView.Putt"), "no function matches", "did you mean", "Put")


def test_split_debug_missing_file(tmp_path):
    path = FIXTURES / "go1.22" / "amd64" / "splitdebug" / "shapes"
    require_file(path, "splitdebug fixture")
    lonely = tmp_path / "shapes"
    lonely.write_bytes(path.read_bytes())
    assert_one_line_error(dwarfgo("sig", lonely, "main.main"), ".gnu_debuglink", "--debug-file")


def test_structs_needs_a_type():
    require_file(DEMO, "demo binary")
    proc = dwarfgo("structs", DEMO)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_help_teaches_with_examples():
    for cmd in ("funcs", "sig", "structs", "abi"):
        proc = dwarfgo(cmd, "--help")
        assert proc.returncode == 0
        assert "Examples" in proc.stdout, cmd


def test_version_is_said_in_one_line():
    """For a bug report: `dwarfgo --version` (it was "No such option")."""
    from dwarfgo import __version__

    proc = dwarfgo("--version")
    assert proc.returncode == 0 and proc.stdout == f"dwarfgo {__version__}\n" and proc.stderr == ""


SHAPES = FIXTURES / "go1.22" / "amd64" / "default" / "shapes"


def test_args_errors_are_one_line():
    """--args: a result without --ret, a result on a bpftrace without RET probes, map indexing, `*`
    on a non-pointer."""
    require_file(SHAPES, "fixture binary")
    probe = ("probe", SHAPES, "main.List", "main.Maps")
    assert_one_line_error(dwarfgo(*probe, "-a", "sum", "--bpftrace-version", "0.27"),
                          "--args sum: sum is a result, printed on the return event: add --ret")
    assert_one_line_error(dwarfgo(*probe, "-a", "last.Name", "--ret", "--bpftrace-version", "0.17"),
                          "last is a result", "bpftrace 0.17.0 cannot probe a RET", "0.23+")
    assert_one_line_error(dwarfgo(*probe, "-a", 'm["k"]', "--bpftrace-version", "0.27"),
                          "indexing a map needs Go's hash function; print len(m) or the map")
    assert_one_line_error(dwarfgo(*probe, "-a", "m[3]", "--bpftrace-version", "0.27"),
                          "indexing a map needs Go's hash function; print len(m) or the map")
    assert_one_line_error(dwarfgo(*probe, "-a", "*head.Val", "--bpftrace-version", "0.27"),
                          "cannot indirect head.Val: it is int, not a pointer")


def test_funcs_pattern_that_reads_as_a_regex_says_minus_e():
    """`funcs BIN 'main\\.'` matches nothing (a substring: no name holds a backslash). It used to
    say "no function matches 'main\\\\.'" (Python's repr doubled the backslash the user typed);
    now the pattern as typed and the option that makes it a regular expression. Cold and again
    from the index cache (the second run reads the stored answer)."""
    for _ in range(2):
        assert_one_line_error(dwarfgo("funcs", DEMO, "main\\."),
                              "no function matches 'main\\.' (a substring or glob; -E makes it a regular "
                              "expression)")
    assert_one_line_error(dwarfgo("funcs", DEMO, "main.Nope"), "no function matches 'main.Nope'")
    assert "-E" not in dwarfgo("funcs", DEMO, "main.Nope").stderr
    listed = dwarfgo("funcs", DEMO, "-E", "main\\.\\(\\*BarrierView\\)\\.Put$")
    assert listed.returncode == 0 and "main.(*BarrierView).Put  func" in listed.stdout, listed.stderr
