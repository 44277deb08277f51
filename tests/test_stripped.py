"""Stripped binaries (-ldflags='-s -w'): names and addresses from .gopclntab, the build info, and
the DWARF twin (`--debug-from`).

Expected values come from readelf (the default build's symbol table), `go version -m` (the
toolchain's own build-info reader), the fixture's own report, and builds made here."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import FIXTURES, REPO, TOOLCHAINS, go_versions, require_file

VERSIONS = go_versions() or ["1.22"]
FEW = [v for v in ("1.15", "1.19", "1.22", "1.27") if v in VERSIONS] or VERSIONS[:1]
# one per function-table layout in the matrix: 1.2 (1.15), 1.18 (1.19), 1.20 with moduledata's text start (1.27)
LAYOUTS = [v for v in ("1.15", "1.19", "1.27") if v in VERSIONS] or VERSIONS[:1]
# section markers of the symbol table, not in the function table
MARKERS = {"runtime.text", "runtime.etext"}
# markers the function table lists (1.24+) with no pc table: their size there runs to the next function
NO_PCTABLE = {"go:textfipsstart", "go:textfipsend"}


def built(go: str, variant: str, fixture: str = "shapes", arch: str = "amd64"):
    path = FIXTURES / f"go{go}" / arch / variant / fixture
    require_file(path, f"go{go} {variant} {fixture}")
    return path


def readelf_functions(path) -> dict[int, tuple[str, int]]:
    """address -> (name, size) of every FUNC symbol, from readelf (not dwarfgo)."""
    out = subprocess.run(["readelf", "-sW", str(path)], capture_output=True, text=True, check=True).stdout
    funcs: dict[int, tuple[str, int]] = {}
    for line in out.splitlines():
        f = line.split(None, 7)
        if len(f) == 8 and f[3] == "FUNC" and f[1] != "0000000000000000" and f[7] not in MARKERS:
            funcs.setdefault(int(f[1], 16), (f[7], int(f[2], 0)))
    return funcs


def _same_name(symtab: str, pcln: str) -> bool:
    """pclntab names carry no .abi0 suffix, and Go 1.18-1.19 write type arguments as [...]."""
    symtab = symtab.removesuffix(".abi0")
    if "[...]" not in pcln:
        return symtab == pcln
    pattern = re.escape(pcln).replace(re.escape("[...]"), r"\[.+?\]")
    return re.fullmatch(pattern, symtab) is not None


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
@pytest.mark.parametrize("go", VERSIONS)
def test_pclntab_names_and_addresses_equal_symtab(go, arch):
    from dwarfgo.binary import GoBinary

    want = readelf_functions(built(go, "default", arch=arch))
    with GoBinary(built(go, "stripped", arch=arch)) as b:
        assert b.symbols_from == "function table"
        got = {s.address: s for s in b.function_symbols}
    assert set(got) == set(want), (sorted(set(want) - set(got))[:5], sorted(set(got) - set(want))[:5])
    wrong = [(hex(a), want[a], s.name, s.size) for a, s in got.items()
             if not _same_name(want[a][0], s.name) or (s.size != want[a][1] and s.name not in NO_PCTABLE)]
    assert not wrong, wrong[:10]
    assert len(got) > 1500
    print(f"go{go} {arch}: {len(got)} functions, names and sizes equal to .symtab's")


@pytest.mark.parametrize("go", FEW)
def test_buildinfo_equals_go_version_m(go):
    from dwarfgo.binary import GoBinary

    path = built(go, "stripped")
    out = subprocess.run([str(TOOLCHAINS / "bin" / f"go{go}"), "version", "-m", str(path)], capture_output=True,
                         text=True, check=True, env={**os.environ, "GOTOOLCHAIN": "local"}).stdout
    lines = [l.strip().split("\t") for l in out.splitlines()[1:]]
    settings = {}
    for f in lines:
        if f[0] == "build":
            key, _, value = f[1].partition("=")
            settings[key] = value.strip('"')
    with GoBinary(path) as b:
        info = b.build_info
    assert info.go_version == out.split(":", 1)[1].split()[0]
    assert info.path == next(f[1] for f in lines if f[0] == "path")
    assert info.module == next(f[1] for f in lines if f[0] == "mod")
    assert info.settings == settings
    if go == "1.15":
        assert not info.has_settings and "records no build settings" in info.rebuild_command()
    else:
        assert info.settings["-ldflags"] == "-s -w" and info.strips()
        assert "-ldflags" not in info.rebuild_command() and "GOARCH=amd64" in info.rebuild_command()


def _run_cli(*args):
    return subprocess.run([sys.executable, "-m", "dwarfgo", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.mark.parametrize("go", ["1.15", "1.27"])
def test_without_dwarf_names_work_and_errors_say_what_to_do(go):
    if go not in VERSIONS:
        pytest.skip(f"Go {go} not in the matrix")
    stripped = built(go, "stripped")
    r = _run_cli("funcs", stripped, "main.Strings")
    assert r.returncode == 0, r.stderr
    addr = {n: a for a, (n, _) in readelf_functions(built(go, "default")).items()}["main.Strings"]
    assert r.stdout.split()[:2] == [f"{addr:#x}", "main.Strings"]
    r = _run_cli("sig", stripped, "Strings")  # a short name resolves without a symbol table
    # its argument words (test_runtime_tables; Go 1.15, which has no traceback argument record:
    # the words of its stack argument area), with the same advice as a note
    said = r.stdout
    assert r.returncode == 0, r.stderr
    assert "main.Strings" in said and ".gopclntab" in said and "--debug-from" in said
    assert ("argument-area words only" if go == "1.15" else "argument words only") in said
    assert "go build -o TWIN shapes" in said
    r = _run_cli("sig", stripped, "main.Strigs")
    assert "did you mean: main.Strings" in r.stderr


@pytest.mark.parametrize("go", LAYOUTS)
def test_twin_accepts_the_default_build(go):
    from dwarfgo.program import GoProgram

    with GoProgram(built(go, "stripped"), debug_from=built(go, "default")) as prog:
        fns = prog.matching("main.*")
        assert len(fns) > 40 and not prog.twin_refusals, prog.twin_refusals[:3]
        fn = prog.function("main.Strings")
        assert fn.signature() == "func Strings(s string, t string) (joined string, n int)"


@pytest.mark.parametrize("go, variant", [("1.19", "noopt"), ("1.27", "trimpath"), ("1.27", "noopt")])
def test_twin_of_other_flags_is_refused(go, variant):
    from dwarfgo.program import GoProgram
    from dwarfgo.twin import TwinMismatch

    with pytest.raises(TwinMismatch, match="-gcflags=all=-N -l" if variant == "noopt" else "-trimpath=true"):
        GoProgram(built(go, "stripped"), debug_from=built(go, variant))


def test_go115_twin_of_other_flags_is_refused_by_its_code():
    """Go 1.15 records no build settings: the code itself shows the other build."""
    from dwarfgo.program import GoProgram
    from dwarfgo.twin import TwinMismatch

    with GoProgram(built("1.15", "stripped"), debug_from=built("1.15", "noopt")) as prog:
        with pytest.raises(TwinMismatch, match="main.Strings: .*(code size differs|layout moved)"):
            prog.function("main.Strings")


def test_patched_code_is_refused(tmp_path):
    from dwarfgo.program import GoProgram
    from dwarfgo.twin import TwinMismatch

    stripped, twin = built("1.27", "stripped"), built("1.27", "default")
    addr, size = next((a, z) for a, (n, z) in readelf_functions(twin).items() if n == "main.Strings")
    text = next(l.split() for l in subprocess.run(["readelf", "-SW", str(twin)], capture_output=True, text=True,
                                                  check=True).stdout.splitlines() if " .text " in l)
    i = text.index(".text")
    offset = addr - int(text[i + 2], 16) + int(text[i + 3], 16) + 4
    copy = tmp_path / "shapes"
    shutil.copy(stripped, copy)
    data = bytearray(copy.read_bytes())
    data[offset] ^= 0xFF
    copy.write_bytes(data)
    with GoProgram(copy, debug_from=twin) as prog:
        prog.function("main.Signed")  # untouched
        with pytest.raises(TwinMismatch, match=f"main.Strings: .*machine code differs at {addr + 4:#x}"):
            prog.function("main.Strings")


def test_rebuild_command_makes_an_accepted_twin_and_changed_source_is_refused(tmp_path):
    """The command dwarfgo prints, run here: its output is accepted; the same command on changed
    source gives a twin whose changed function is refused."""
    from dwarfgo.binary import GoBinary
    from dwarfgo.program import GoProgram
    from dwarfgo.twin import TwinMismatch

    go = "1.27"
    stripped = built(go, "stripped")
    with GoBinary(stripped) as b:
        command = b.build_info.rebuild_command(str(tmp_path / "twin"))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "go").symlink_to(TOOLCHAINS / "bin" / f"go{go}")
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "GOFLAGS": "-buildvcs=false", "GOPROXY": "off",
           "GOWORK": "off"}
    src = REPO / "fixtures" / "shapes"
    subprocess.run(command, shell=True, cwd=src, env=env, check=True, capture_output=True, timeout=600)
    with GoProgram(stripped, debug_from=tmp_path / "twin") as prog:
        assert prog.function("main.Strings").signature().startswith("func Strings(")
    changed = tmp_path / "changed"
    shutil.copytree(src, changed)
    funcs = changed / "funcs.go"
    head = "func Strings(s string, t string) (joined string, n int) {"
    body = funcs.read_text()
    assert head in body
    funcs.write_text(body.replace(head, head + '\n\ts = s + "!"', 1))
    subprocess.run(command, shell=True, cwd=changed, env=env, check=True, capture_output=True, timeout=600)
    with GoProgram(stripped, debug_from=tmp_path / "twin") as prog:
        with pytest.raises(TwinMismatch, match="main.Strings: "):
            prog.function("main.Strings")


def test_bpftrace_017_is_refused_on_a_stripped_binary():
    """bpftrace 0.17 resolves an attach address through .symtab ("Could not resolve address" on a
    stripped binary); 0.23+ attach with --unsafe at the file offset."""
    stripped, twin = built("1.27", "stripped"), built("1.27", "default")
    r = _run_cli("probe", stripped, "main.Strings", "--debug-from", twin, "--bpftrace-version", "0.17")
    assert r.returncode == 1 and "bpftrace 0.17.0 cannot attach" in r.stderr and "0.23 or newer" in r.stderr
    r = _run_cli("probe", stripped, "main.Strings", "--debug-from", twin, "--bpftrace-version", "0.27")
    assert r.returncode == 0, r.stderr
    addr, size = next((a, z) for a, (n, z) in readelf_functions(twin).items() if n == "main.Strings")
    load = next(l.split() for l in subprocess.run(["readelf", "-lW", str(stripped)], capture_output=True, text=True,
                                                  check=True).stdout.splitlines() if "LOAD" in l and "R E" in l)
    offset = addr - int(load[2], 16) + int(load[1], 16)
    points = [int(x, 16) for x in re.findall(r'shapes":(0x[0-9a-f]+)', r.stdout)]
    assert points and all(offset <= p < offset + size for p in points), (points, hex(offset))
    assert "--unsafe" in r.stdout


@pytest.mark.live
@pytest.mark.parametrize("go, bt", [("1.27", "newest"), ("1.15", "0.23")])
def test_trace_stripped_with_twin_values_exact(go, bt):
    """`dwarfgo trace STRIPPED FUNCS --debug-from TWIN`, attached to the stripped binary's process:
    every value equals the stripped fixture's own report. (bpftrace 0.17 cannot attach to a binary
    without a symbol table: test_bpftrace_017_is_refused_on_a_stripped_binary.)"""
    from livecompare import compare_run
    from test_live import _function_names, _live_preconditions, installed_bpftrace, reported_calls, trace_fixture

    if go not in VERSIONS:
        pytest.skip(f"Go {go} not in the matrix")
    stripped, twin = built(go, "stripped"), built(go, "default")
    _live_preconditions(stripped)
    version, path = installed_bpftrace(bt)
    ret = version != "0.17"
    funcs = _function_names(reported_calls(stripped), twin)
    report, events, errors, rc = trace_fixture(stripped, funcs, path, ret, trace_args=("--debug-from", str(twin)))
    assert rc == 0, "\n".join(errors[-20:])
    tally, problems = compare_run(report, events, with_results=ret)
    assert not tally.mismatches, "wrong values:\n" + "\n".join(tally.mismatches[:50])
    assert not problems, "\n".join(problems[:50]) + "\ntrace stderr:\n" + "\n".join(errors[-10:])
    assert tally.checked > 250, f"only {tally.checked} values compared"
    print(f"stripped go{go}/bpftrace{version}: {tally.checked} values exact, {tally.unavailable_count()} unavailable")


@pytest.mark.parametrize("go", ["1.15", "1.27"])
def test_table_found_by_its_header_without_sections(go):
    """A binary whose section headers are gone: the table is found by its header in the loaded
    read-only data, and (1.26+, no text start in the header) placed through moduledata."""
    from dwarfgo import pclntab
    from dwarfgo.binary import GoBinary

    with GoBinary(built(go, "stripped")) as b:
        by_section = pclntab.read_table(b)
        address, data, where = pclntab._scan_segments(b)
        scanned = pclntab._parse(data, address, b, where)
    assert by_section.where == ".gopclntab" and address == by_section.address
    assert scanned.functions == by_section.functions


def test_moved_data_is_compared_by_content(tmp_path):
    """Go 1.27's stripped build info is shorter, so read-only data after it moves: reflect.MapOf
    refers to a generic dictionary (pointers to itself and to type descriptors) at another address
    in each binary. It is accepted while the dictionary's bytes agree (pointers to the same data
    again), and refused once one of its bytes is changed in the stripped binary."""
    from dwarfgo.program import GoProgram
    from dwarfgo.twin import TwinMismatch

    stripped, twin = built("1.27", "stripped"), built("1.27", "default")

    def dict_reference(path):
        """(instruction, target) of MapOf's first reference to a generic dictionary, from objdump."""
        out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(path)], capture_output=True, text=True,
                             check=True).stdout
        body = out[out.index("<reflect.MapOf>:"):] if "<reflect.MapOf>:" in out else out
        for line in body.splitlines():
            m = re.match(r"\s*([0-9a-f]+):\s+lea\s+0x[0-9a-f]+\(%rip\),%\w+\s+# ([0-9a-f]+)", line)
            if m and ".dict." in line:
                return int(m.group(1), 16), int(m.group(2), 16)
        raise AssertionError("no reference found")

    insn, in_twin = dict_reference(twin)
    syms = subprocess.run(["readelf", "-sW", str(twin)], capture_output=True, text=True, check=True).stdout
    size = next(int(l.split()[2]) for l in syms.splitlines() if l.split()[1:2] == [f"{in_twin:016x}"])
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", f"--start-address={insn:#x}",
                          f"--stop-address={insn + 7:#x}", str(stripped)], capture_output=True, text=True,
                         check=True).stdout
    in_stripped = int(re.search(r"lea .*# (?:0x)?([0-9a-f]+)", out).group(1), 16)
    assert in_stripped != in_twin  # the data moved

    with GoProgram(stripped, debug_from=twin) as prog:
        prog.twin.verify(prog.binary.symbols_by_name["reflect.MapOf"])

    def file_offset(path, address):
        for l in subprocess.run(["readelf", "-lW", str(path)], capture_output=True, text=True,
                                check=True).stdout.splitlines():
            f = l.split()
            if f[:1] == ["LOAD"] and int(f[2], 16) <= address < int(f[2], 16) + int(f[4], 16):
                return address - int(f[2], 16) + int(f[1], 16)
        raise AssertionError(hex(address))

    a = twin.read_bytes()[file_offset(twin, in_twin):][:size]
    data = bytearray(stripped.read_bytes())
    at = file_offset(stripped, in_stripped)
    same_word = next(o for o in range(0, size, 8) if a[o:o + 8] == data[at + o:at + o + 8] and any(a[o:o + 8]))
    data[at + same_word] ^= 1
    copy = tmp_path / "shapes"
    copy.write_bytes(data)
    with GoProgram(copy, debug_from=twin) as prog:
        with pytest.raises(TwinMismatch, match=f"reflect.MapOf: .*at {insn:#x}.*not the same data"):
            prog.twin.verify(prog.binary.symbols_by_name["reflect.MapOf"])


def test_no_function_table_is_said_precisely(tmp_path):
    """Section renamed: the table is still found by its header. Its header destroyed too: not a
    Go binary, or damaged. Only the header destroyed: the damaged table is named."""
    stripped = built("1.27", "stripped")
    want = {n: a for a, (n, _) in readelf_functions(built("1.27", "default")).items()}["main.Strings"]
    renamed = tmp_path / "renamed"
    subprocess.run(["objcopy", "--rename-section", ".gopclntab=.foo", str(stripped), str(renamed)], check=True)
    r = _run_cli("funcs", renamed, "main.Strings")
    assert r.returncode == 0 and r.stdout.split()[:2] == [f"{want:#x}", "main.Strings"], r.stderr
    sections = subprocess.run(["readelf", "-SW", str(stripped)], capture_output=True, text=True, check=True).stdout
    offset = int(next(l for l in sections.splitlines() if " .gopclntab " in l).split()[-7], 16)
    for source, name in ((renamed, "nomagic"), (stripped, "badmagic")):
        data = bytearray(source.read_bytes())
        at = offset if source == stripped else data.find(stripped.read_bytes()[offset:offset + 8])
        data[at:at + 4] = b"\0\0\0\0"
        (tmp_path / name).write_bytes(data)
    r = _run_cli("funcs", tmp_path / "nomagic", "main.Strings")
    assert r.returncode == 1 and "no symbol table and no Go function table (.gopclntab): not a Go binary, or a " \
                                 "damaged one" in r.stderr, r.stderr
    r = _run_cli("funcs", tmp_path / "badmagic", "main.Strings")
    assert r.returncode == 1 and "damaged function table (.gopclntab): unknown magic" in r.stderr, r.stderr
