"""Hostile files and options (issue 9): one `dwarfgo: error:` line, never a hang, a traceback, a
replaced device or an injected line; names from the binary never reach the terminal, a C comment
or the program as code."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import time

import pytest

import fuzzing
from conftest import REPO, require_file
from test_errors import assert_one_line_error, dwarfgo

DEMO = REPO / "fixtures" / "bin" / "demo-go1.22-amd64"
PUT = "(*BarrierView).Put"
GEN = ("--bpftrace-version", "0.27")


@pytest.fixture(scope="module")
def demo():
    require_file(DEMO, "demo binary")
    return DEMO


# ------------------------------------------------------------------------------------ files
def test_fifo_is_refused_without_opening(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    assert_one_line_error(dwarfgo("funcs", fifo), "is a FIFO (named pipe), not a binary")
    assert time.monotonic() - t0 < 60  # opening it would block forever


def test_device_is_refused():
    assert_one_line_error(dwarfgo("sig", "/dev/zero", "main.main"), "is a device, not a binary")


def test_elf_of_64_bytes(tmp_path, demo):
    f = tmp_path / "short"
    f.write_bytes(demo.read_bytes()[:64])
    assert_one_line_error(dwarfgo("funcs", f), "unreadable ELF file (truncated or damaged headers)")


def test_truncated_download(tmp_path, demo):
    f = tmp_path / "half"
    f.write_bytes(demo.read_bytes()[: demo.stat().st_size // 2])
    assert_one_line_error(dwarfgo("sig", f, PUT), "truncated or damaged: section", "ends past the end of the file")


# ------------------------------------------------------------------------------------ options
@pytest.mark.parametrize("option", [
    ("--depth", "9"), ("--depth", "-1"), ("--max-str", "0"), ("--max-items", "65"), ("--buffer-pages", "1"),
    ("--buffer-pages", str(1 << 40)), ("--pid", "0"), ("--pid", "-1"), ("--pid", str(1 << 70)), ("--depth", "x"),
])
def test_option_out_of_range_is_one_line(demo, option):
    proc = dwarfgo("probe", demo, PUT, *GEN, *option)
    assert_one_line_error(proc, f"Invalid value for '{option[0]}'", "dwarfgo probe --help")
    assert proc.returncode == 2


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf"])
def test_trace_duration_out_of_range_is_one_line(demo, value):
    """A duration that is negative, zero, NaN or infinite is refused before bpftrace starts."""
    proc = dwarfgo("trace", demo, PUT, "--duration", value)
    assert_one_line_error(proc, "Invalid value for '--duration'", "dwarfgo trace --help")
    assert proc.returncode == 2


@pytest.mark.parametrize("value", ["0", "nan", "inf", "1e300"])
def test_aggregation_interval_out_of_range_is_one_line(demo, value):
    """--interval inf was an internal error (int(inf)), 1e300 a 301-digit bpftrace interval, and
    typer before 0.29 let NaN through its range check."""
    proc = dwarfgo("probe", demo, PUT, *GEN, "--count-by", "ctx", "--interval", value)
    assert_one_line_error(proc, "Invalid value for '--interval'", "dwarfgo probe --help")
    assert proc.returncode == 2


def test_library_refuses_an_interval_that_is_not_a_number_of_seconds():
    from dwarfgo.emit.aggregate import AggregateOptions, check_aggregates
    from dwarfgo.errors import DwarfgoError

    for value in (float("nan"), float("inf"), 0.5):
        with pytest.raises(DwarfgoError, match="--interval"):
            check_aggregates(AggregateOptions(interval=value), [], False, None)


@pytest.mark.parametrize("fmt", ["text", "RAW", "readable; rm"])
def test_probe_format_must_be_known(demo, fmt):
    proc = dwarfgo("probe", demo, PUT, *GEN, "--format", fmt)
    assert_one_line_error(proc, "--format", "choose readable or raw")


def test_bpftrace_version_must_be_a_version(demo):
    assert_one_line_error(dwarfgo("probe", demo, PUT, "--bpftrace-version", "0.27; rm -rf /"), "is not a version")


def test_bpftrace_must_be_bpftrace(demo):
    assert_one_line_error(dwarfgo("probe", demo, PUT, "--bpftrace", "/bin/false"),
                          "/bin/false is not bpftrace", "bpftrace vX.Y")


def test_args_nesting_limit(demo):
    deep = "(" * 1000 + "entry" + ")" * 1000
    assert_one_line_error(dwarfgo("probe", demo, PUT, *GEN, "--args", deep), "nested more than 64 levels deep")
    assert_one_line_error(dwarfgo("probe", demo, PUT, *GEN, "--args", "*" * 1000 + "entry"), "nested more than")


def test_catastrophic_regex_is_time_limited(monkeypatch):
    from dwarfgo import names
    from dwarfgo.binary import Symbol
    from dwarfgo.errors import DwarfgoError
    monkeypatch.setattr(names, "MATCH_SECONDS", 0.5)
    symbols = [Symbol("a" * 40 + "!", 0x1000 + i, 1) for i in range(3)]
    pred = names.compile_pattern("^(a|aa)+(a+)+$", regex=True)
    t0 = time.monotonic()
    with pytest.raises(DwarfgoError, match="takes more than 0 s to match|catastrophic"):
        names.matching_names(pred, symbols, "^(a|aa)+(a+)+$")
    assert time.monotonic() - t0 < 10
    assert names.matching_names(names.compile_pattern("a+!$", regex=True), symbols, "a+!$") == symbols


def test_output_directory_is_refused(demo, tmp_path):
    assert_one_line_error(dwarfgo("probe", demo, PUT, *GEN, "-o", tmp_path), "is a directory")
    assert list(tmp_path.iterdir()) == []


def test_output_device_is_written_in_place_never_replaced(demo, tmp_path):
    """-o a device: written in place. A private copy of /dev/full (a regression must not replace
    the system's own)."""
    full = tmp_path / "full"
    try:
        os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    except PermissionError:
        pytest.skip("creating a device node needs root")
    assert_one_line_error(dwarfgo("probe", demo, PUT, *GEN, "-o", full), "No space left on device")
    after = os.stat(full)
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == os.makedev(1, 7)
    assert [p.name for p in tmp_path.iterdir()] == ["full"]


def test_output_file_replaced_whole(demo, tmp_path):
    out = tmp_path / "put.bt"
    out.write_text("old\n")
    proc = dwarfgo("probe", demo, PUT, *GEN, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().startswith("// Generated by dwarfgo")
    assert [p.name for p in tmp_path.iterdir()] == ["put.bt"]  # no temporary left behind


def test_unsupported_architecture_funcs_like_sig(demo, tmp_path):
    """A 386 binary: funcs refuses it as sig does (EM_386 patched into the demo's header)."""
    data = bytearray(demo.read_bytes())
    data[0x12:0x14] = (3).to_bytes(2, "little")  # e_machine = EM_386
    f = tmp_path / "i386"
    f.write_bytes(bytes(data))
    assert_one_line_error(dwarfgo("sig", f, PUT), "architecture 386 has no register table")
    assert_one_line_error(dwarfgo("funcs", f, "main."), "architecture 386 has no register table")


def test_control_characters_in_names_are_escaped(demo, tmp_path):
    """A function name carrying ESC and BEL (patched into .strtab) reaches the terminal escaped."""
    data = bytearray(demo.read_bytes())
    strtab = fuzzing.ElfImage(bytes(data)).section(".strtab")
    at = data.index(b"main.(*BarrierView).Put\0", strtab.offset)
    data[at + 9] = 0x1B  # main.(*Ba\x1brrierView).Put
    data[at + 10] = 0x07
    f = tmp_path / "esc"
    f.write_bytes(bytes(data))
    proc = dwarfgo("funcs", f, "main.")
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout
    assert "main.(*Ba\\x1b\\x07ierView).Put" in proc.stdout
    miss = dwarfgo("sig", f, "BarrierView.Putt")
    assert "\x1b" not in miss.stderr and "\x07" not in miss.stderr


# ------------------------------------------------------------------------------------ injection
INJECTING_NAME = 'A:main.main\n{ }\ninterval:s:1 { printf("INJECTED\\n"); exit(); }\nuprobe:x'


def _attach_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.match(r"^[a-zA-Z]+:", line) and not line.startswith("//")]


def test_injecting_file_name_is_refused(demo, tmp_path):
    f = tmp_path / INJECTING_NAME
    shutil.copyfile(demo, f)
    proc = dwarfgo("probe", f, PUT, *GEN, "--ret")
    assert_one_line_error(proc, "a bpftrace attach point cannot quote", "hard link")
    assert "INJECTED" not in proc.stdout


@pytest.mark.parametrize("fmt,markers", [("raw", 2), ("readable", 0)])
def test_path_with_spaces_and_colons_is_quoted(demo, tmp_path, fmt, markers):
    d = tmp_path / "dir with: colon"
    d.mkdir()
    f = d / "de mo:x{ }"
    shutil.copyfile(demo, f)
    proc = dwarfgo("probe", f, PUT, *GEN, "--ret", "--format", fmt)
    assert proc.returncode == 0, proc.stderr
    attaches = _attach_lines(proc.stdout)
    # every attach point is a quoted uprobe on the binary, or (raw) one of the program's own two
    # timer markers (emit/bpftrace.py _attach_markers), which do not depend on the name
    uprobes = [a for a in attaches if a != "interval:ms:20"]
    assert len(attaches) - len(uprobes) == markers, attaches
    assert uprobes and all(re.fullmatch(rf'uprobe:"{re.escape(str(f))}":0x[0-9a-f]+( /.*/)?', a)
                           for a in uprobes), uprobes
    # the same probes as with a plain path: nothing added by the name
    plain = dwarfgo("probe", demo, PUT, *GEN, "--ret", "--format", fmt)
    assert len(_attach_lines(plain.stdout)) == len(attaches)


def test_quoted_path_parses_with_bpftrace_017(demo, tmp_path):
    """bpftrace 0.17's parser (-d: dry run, prints the AST; attaches nothing) reads the quoted path
    with spaces, a colon and braces as one attach point."""
    bt = "/opt/dwarfgo/toolchains/bin/bpftrace-0.17"
    if not os.access(bt, os.X_OK):
        pytest.skip("bpftrace 0.17 not installed (scripts/install-toolchains)")
    d = tmp_path / "dir with: colon"
    d.mkdir()
    f = d / "de mo{ }"
    shutil.copyfile(demo, f)
    prog = tmp_path / "p.bt"
    proc = dwarfgo("probe", f, "main.main", "--bpftrace-version", "0.17", "-o", prog)
    assert proc.returncode == 0, proc.stderr
    out = subprocess.run([bt, "-d", str(prog)], capture_output=True, text=True, timeout=60)
    parsed = re.findall(r"^ uprobe:(.*):(\d+)$", out.stdout + out.stderr, re.M)
    assert parsed and all(p == str(f) for p, _ in parsed), (out.stdout + out.stderr)[-2000:]


def test_type_name_cannot_close_the_c_comment(demo, tmp_path):
    """A type named `m*/int INJECT;/*x` (patched into the DWARF) stays inside its comment, and gcc
    compiles the header without an INJECT member."""
    plain = bytearray(fuzzing.decompressed_copy(demo.read_bytes()))
    info = fuzzing.ElfImage(bytes(plain)).section(".debug_info")
    name = b"main.StorageEntry\0"
    evil = b"m*/int INJECT;/*x\0"
    assert len(evil) == len(name)
    at = plain.index(name, info.offset, info.offset + info.size)
    while at >= 0:
        plain[at:at + len(name)] = evil
        at = plain.find(name, at + 1, info.offset + info.size)
    f = tmp_path / "evil"
    f.write_bytes(bytes(plain))
    proc = dwarfgo("structs", f, "--for", PUT)
    assert proc.returncode == 0, proc.stderr
    assert "INJECT" in proc.stdout  # the name is shown...
    code = re.sub(r"/\*.*?\*/", "", proc.stdout, flags=re.S)
    assert not re.search(r"\bINJECT\b", code), code  # ...only inside comments (or within an identifier)
    if shutil.which("gcc"):
        h = tmp_path / "t.h"
        h.write_text(proc.stdout)
        c = tmp_path / "t.c"
        c.write_text('#include "t.h"\nint main(void) { return 0; }\n')
        gcc = subprocess.run(["gcc", "-fsyntax-only", "-Wall", str(c)], capture_output=True, text=True, cwd=tmp_path)
        assert gcc.returncode == 0, gcc.stderr


def test_comment_text():
    from dwarfgo.cheaders import comment_text
    assert "*/" not in comment_text("m*/int INJECT;/*x")
    assert comment_text("a\nb\x1b") == "a?b?"


# ------------------------------------------------------------------------------------ C units
class _Attr:
    def __init__(self, value, form="DW_FORM_data1"):
        self.value, self.form = value, form


class _CU:
    def __init__(self, producer: bytes, offset: int):
        self.cu_offset = offset
        self.top = _Die(self, offset, "DW_TAG_compile_unit", {"DW_AT_producer": _Attr(producer, "DW_FORM_string")})

    def get_top_DIE(self):
        return self.top


class _Die:
    def __init__(self, cu, offset, tag, attributes, children=()):
        self.cu, self.offset, self.tag, self.attributes = cu, offset, tag, attributes
        self.children = list(children)
        self.has_children = bool(self.children)

    def iter_children(self):
        return iter(self.children)


class _Dwarf:
    def __init__(self, dies):
        self.dies = {d.offset: d for d in dies}

    def get_DIE_from_refaddr(self, offset):
        return self.dies[offset]


def _ref(offset):
    return _Attr(offset, "DW_FORM_ref_addr")


def _c_types(producer: bytes):
    """`char *restrict`, `const volatile int`, a union and an enum, in a unit of `producer`."""
    cu = _CU(producer, 0)
    dies = [
        _Die(cu, 0x10, "DW_TAG_base_type", {"DW_AT_name": _Attr(b"char"), "DW_AT_byte_size": _Attr(1),
                                            "DW_AT_encoding": _Attr(6)}),
        _Die(cu, 0x20, "DW_TAG_pointer_type", {"DW_AT_type": _ref(0x10)}),
        _Die(cu, 0x30, "DW_TAG_restrict_type", {"DW_AT_type": _ref(0x20)}),
        _Die(cu, 0x40, "DW_TAG_base_type", {"DW_AT_name": _Attr(b"int"), "DW_AT_byte_size": _Attr(4),
                                            "DW_AT_encoding": _Attr(5)}),
        _Die(cu, 0x50, "DW_TAG_volatile_type", {"DW_AT_type": _ref(0x40)}),
        _Die(cu, 0x60, "DW_TAG_const_type", {"DW_AT_type": _ref(0x50)}),
        _Die(cu, 0x70, "DW_TAG_union_type", {"DW_AT_name": _Attr(b"u"), "DW_AT_byte_size": _Attr(8)}),
        _Die(cu, 0x80, "DW_TAG_enumeration_type", {"DW_AT_name": _Attr(b"e"), "DW_AT_byte_size": _Attr(4)}),
        _Die(cu, 0x90, "DW_TAG_base_type", {"DW_AT_name": _Attr(b"__int128"), "DW_AT_byte_size": _Attr(16),
                                            "DW_AT_encoding": _Attr(5)}),
    ]
    return _Dwarf(dies)


def test_c_unit_types_are_opaque_not_errors():
    """musl's and cgo's C units carry DW_TAG_restrict_type and friends (the docker CLI failed on
    them): their types resolve, as what they qualify or as opaque bytes."""
    from dwarfgo.gotypes import Kind, TypeReader
    r = TypeReader(_c_types(b"GNU C17 12.2.0 -O2 -g"), 8, "musl-binary")
    restrict = r.type_at(0x30)
    assert restrict.kind is Kind.POINTER and restrict.size == 8 and restrict.elem.name == "char"
    cv = r.type_at(0x60)
    assert cv.kind is Kind.INT and cv.size == 4
    for off, size in ((0x70, 8), (0x80, 4), (0x90, 16)):
        t = r.type_at(off)
        assert t.kind is Kind.STRUCT and t.size == size and t.fields == []


def test_unknown_type_tag_in_a_go_unit_is_damage():
    from dwarfgo.errors import DamagedBinary
    from dwarfgo.gotypes import TypeReader
    r = TypeReader(_c_types(b"Go cmd/compile go1.24.0; regabi"), 8, "bin")
    with pytest.raises(DamagedBinary, match=r"bin: damaged DWARF in .debug_info at offset 0x70: unexpected type "
                                            r"DIE DW_TAG_union_type in a Go compile unit"):
        r.type_at(0x70)
    with pytest.raises(DamagedBinary, match=r"at offset 0x90: int type __int128 of 16 bytes"):
        r.type_at(0x90)


@pytest.fixture(scope="module", params=["newest", "oldest", "oldest-mixed"])
def cgo_binary(request, tmp_path_factory):
    """fixtures/cgo built with cgo (gcc links C units, with their DWARF, into the binary), by the
    newest Go and by the oldest, and the oldest's in a mixed form: Go up to 1.16 compresses each
    DWARF section (`.zdebug_*`) where that saves room when it links externally, and leaves a small
    one of gcc's DWARF 5 sections as it is (`.debug_line_str` of 72 bytes in a small cgo program):
    pyelftools then looked for `.zdebug_line_str` only and every command failed ("damaged DWARF
    compile unit ... AssertionError"). The mixed form is that: `.zdebug_line_str` inflated into a
    `.debug_line_str` (objcopy), the rest as Go wrote it."""
    from conftest import TOOLCHAINS, go_versions
    versions = go_versions()
    go = TOOLCHAINS / "bin" / f"go{versions[0 if request.param.startswith('oldest') else -1]}" if versions else None
    if go is None or not go.exists() or not shutil.which("gcc"):
        from conftest import REQUIRE
        (pytest.fail if REQUIRE else pytest.skip)("the cgo fixture needs a Go toolchain and gcc "
                                                  "(scripts/install-toolchains)")
    out = tmp_path_factory.mktemp("cgo") / "cgo"
    env = dict(os.environ, CGO_ENABLED="1", GOTOOLCHAIN="local", GOPROXY="off", GOFLAGS="-mod=mod",
               GOCACHE=os.environ.get("GOCACHE", "/tmp/dwarfgo-test-gocache"))
    proc = subprocess.run([str(go), "build", "-o", str(out), "."], cwd=REPO / "fixtures" / "cgo", env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    if request.param == "oldest-mixed":
        out = _with_section_inflated(out, ".zdebug_line_str", ".debug_line_str")
    return out


def _with_section_inflated(binary, zname: str, name: str):
    """A copy of `binary` whose `zname` (a ZLIB-headed .zdebug_ section) is `name`, inflated."""
    import zlib
    from elftools.elf.elffile import ELFFile
    with open(binary, "rb") as f:
        section = ELFFile(f).get_section_by_name(zname)
        assert section is not None, f"{binary} has no {zname}: the mixed form cannot be made"
        data = section.data()
    assert data[:4] == b"ZLIB"
    raw = binary.parent / name.lstrip(".")
    raw.write_bytes(zlib.decompress(data[12:]))
    mixed = binary.parent / (binary.name + "-mixed")
    proc = subprocess.run(["objcopy", "--remove-section", zname, "--add-section", f"{name}={raw}",
                           "--set-section-flags", f"{name}=readonly,debug", str(binary), str(mixed)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return mixed


def test_cgo_binary_funcs_and_abi(cgo_binary):
    """C units with DW_TAG_restrict_type (the docker CLI's musl units): funcs over the whole binary
    and abi list the Go functions; the C ones are not Go, and say so."""
    funcs = dwarfgo("funcs", cgo_binary)
    assert funcs.returncode == 0, funcs.stderr
    assert "main.Add  func Add(a int, b int) int" in funcs.stdout
    assert not re.search(r"^0x[0-9a-f]+  cp  ", funcs.stdout, re.M)  # C: another calling convention
    sig = dwarfgo("sig", cgo_binary, "main.Add")
    assert sig.returncode == 0, sig.stderr
    # Go 1.17+ (ABIInternal on amd64): a in AX; Go 1.15/1.16: ABI0, on the stack
    assert re.search(r"param +a +int +size 8 +align 8 +(AX|stack\[\+8,\+16\])$", sig.stdout, re.M), sig.stdout
    abi = dwarfgo("abi", cgo_binary, "main.*")
    assert abi.returncode == 0, abi.stdout + abi.stderr
    assert "internal error" not in dwarfgo("abi", cgo_binary, "*").stderr
    assert_one_line_error(dwarfgo("sig", cgo_binary, "cp"), "cp is not Go", "GNU C")


def test_stdout_full_is_one_error_line(demo, tmp_path):
    """`dwarfgo ... > /dev/full` (a private copy): one error line, not an internal error."""
    full = tmp_path / "full"
    try:
        os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    except PermissionError:
        pytest.skip("creating a device node needs root")
    with open(full, "w") as out:
        proc = subprocess.run([sys.executable, "-m", "dwarfgo", "funcs", str(demo), "main."], stdout=out,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == ["dwarfgo: error: cannot write the output: No space left on device"]


def test_units_with_equal_ranges(demo, tmp_path):
    """A flipped byte of the compressed .debug_ranges gives two units the same address range:
    sorting them compared the units themselves (TypeError, found by scripts/fuzz-binaries)."""
    data = bytearray(demo.read_bytes())
    data[fuzzing.ElfImage(bytes(data)).section(".debug_ranges").offset + 0x229F] = 0
    f = tmp_path / "ranges"
    f.write_bytes(bytes(data))
    proc = dwarfgo("sig", f, PUT)
    assert "internal error" not in proc.stderr
    assert_one_line_error(proc)
