"""`dwarfgo structs --for` output compiles, and every struct's sizeof and every field's offsetof
equal what DWARF says (read here directly with pyelftools, not through dwarfgo's model)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from elftools.elf.elffile import ELFFile

from conftest import Built, expected_builds, require_file, source_signatures
from dwarfgo.cheaders import CHeaderWriter
from dwarfgo.program import GoProgram

C_KEYWORDS = {"int", "char", "long", "short", "float", "double", "signed", "unsigned", "void", "struct", "union",
              "default", "case", "register", "volatile", "static", "extern", "auto", "const", "inline", "sizeof"}


def dwarf_structs(path) -> dict[str, tuple[int, list[tuple[str, int, int]]]]:
    """Go type name -> (byte size, [(member name, offset, member byte size)]) straight from the DIEs."""
    with open(path, "rb") as fh:
        dwarf = ELFFile(fh).get_dwarf_info()
        out = {}
        for cu in dwarf.iter_CUs():
            for die in cu.get_top_DIE().iter_children():
                if die.tag != "DW_TAG_structure_type" or "DW_AT_name" not in die.attributes:
                    continue
                members = []
                for m in die.iter_children():
                    if m.tag != "DW_TAG_member":
                        continue
                    mt = dwarf.get_DIE_from_refaddr(m.attributes["DW_AT_type"].value)
                    while "DW_AT_byte_size" not in mt.attributes and "DW_AT_type" in mt.attributes:
                        mt = dwarf.get_DIE_from_refaddr(mt.attributes["DW_AT_type"].value)
                    msize = mt.attributes["DW_AT_byte_size"].value if "DW_AT_byte_size" in mt.attributes else 8
                    members.append((m.attributes["DW_AT_name"].value.decode(),
                                    m.attributes["DW_AT_data_member_location"].value, msize))
                out.setdefault(die.attributes["DW_AT_name"].value.decode(),
                               (die.attributes.get("DW_AT_byte_size").value, members))
        return out


_DWARF_NAME = {"iface": "runtime.iface", "interface {}": "runtime.eface"}
_BLOCK = re.compile(r"/\* (.+?): size (\d+), align \d+ \*/\nstruct (\w+) \{")


def _run_structs_cli(path, func) -> str:
    proc = subprocess.run([sys.executable, "-m", "dwarfgo", "structs", str(path), "--for", func, "--depth", "2"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _structs_for(prog, func) -> str:
    """What `dwarfgo structs --for FUNC --depth 2` prints, through the library (one DWARF parse per binary)."""
    fn = prog.function(func)
    w = CHeaderWriter(ptr_size=prog.binary.ptr_size)
    for p in fn.inputs + fn.results:
        if not p.is_hidden:
            w.add(p.type, 2)
    return w.render()


BUILDS = [b for b in expected_builds("shapes") if b.variant in ("default", "noopt")]


@pytest.mark.matrix
@pytest.mark.parametrize("built", BUILDS, ids=lambda b: b.id)
def test_struct_layouts_compile_and_match_dwarf(built: Built, tmp_path):
    require_file(built.path, "fixture binary")
    sigs = source_signatures("shapes")
    funcs = [k for k, s in sigs.items() if s.get("noinline") and not s.get("generic")
             and (built.version >= (1, 18) or not s.get("go118")) and (s["params"] or s.get("receiver"))]
    truth = dwarf_structs(built.path)
    asserts, headers, seen = [], [], set()
    with GoProgram(built.path) as prog:
        texts = [_structs_for(prog, func) for func in funcs]
    # the command itself prints the same for one of them
    assert _run_structs_cli(built.path, funcs[0]) == texts[0]
    for func, text in zip(funcs, texts):
        headers.append(text)
        for go_name, size, tag in _BLOCK.findall(text):
            if tag in seen:
                continue
            seen.add(tag)
            dname = _DWARF_NAME.get(go_name, go_name)
            if go_name.startswith("complex"):
                asserts.append(f'_Static_assert(sizeof(struct {tag}) == {int(go_name[7:]) // 8}, "{tag}");')
                continue
            assert dname in truth, f"{go_name}: no DWARF structure named {dname!r}"
            dsize, members = truth[dname]
            assert int(size) == dsize, f"{go_name}: header says size {size}, DWARF {dsize}"
            asserts.append(f'_Static_assert(sizeof(struct {tag}) == {dsize}, "sizeof {tag}");')
            for mname, off, msize in members:
                if msize == 0 or mname == "_" or mname in C_KEYWORDS or not mname.isidentifier() or not mname.isascii():
                    continue
                asserts.append(f'_Static_assert(offsetof(struct {tag}, {mname}) == {off}, "offsetof {tag}.{mname}");')
    assert len(seen) >= 8, f"only {len(seen)} structs emitted"
    # each header must compile on its own; then all asserts against the union of definitions
    for i, h in enumerate(headers):
        f = tmp_path / f"h{i}.c"
        f.write_text(h)
        r = subprocess.run(["gcc", "-fsyntax-only", "-Wall", "-Werror", str(f)], capture_output=True, text=True)
        assert r.returncode == 0, f"{funcs[i]}: {r.stderr}"
    # one file with every distinct definition, then the checks
    defs, done = [], set()
    for h in headers:
        for m in re.finditer(r"/\* [^\n]*\*/\nstruct (\w+) \{.*?\n\};", h, re.S):
            if m.group(1) not in done:
                done.add(m.group(1))
                defs.append(m.group(0))
    forward = sorted({t for h in headers for t in re.findall(r"^struct (\w+);$", h, re.M)})
    src = "#include <stdint.h>\n#include <stddef.h>\n" + "".join(f"struct {t};\n" for t in forward)
    src += "\n".join(defs) + "\n" + "\n".join(asserts) + "\n"
    f = tmp_path / "all.c"
    f.write_text(src)
    r = subprocess.run(["gcc", "-fsyntax-only", "-Wall", str(f)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert len(asserts) > 20


# ---------------------------------------------------------------------------------------------
# The same output loaded by every bpftrace as it is: no forward declarations (0.27 rejects
# `struct x;`), each struct defined before it is held by value; bpftrace's own sizeof/offsetof
# (offsetof from 0.23; 0.17 has sizeof only) equal DWARF's.

BPFTRACE_VERSIONS = ("0.17", "0.23", "0.27")
# lines this machine's bpftrace prints for any program (no memlock limit change in a container,
# no tracefs): not about the program
_ENVIRONMENT = ("RLIMIT_MEMLOCK", "available_filter_functions", "Attaching ", "Attached ")


def _bpftrace(version: str) -> str:
    from conftest import TOOLCHAINS
    path = TOOLCHAINS / "bin" / f"bpftrace-{version}"
    if not path.exists() or os.geteuid() != 0:
        msg = f"bpftrace {version} not installed or not root"
        if os.environ.get("DWARFGO_REQUIRE_LIVE") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return str(path)


def _checks_program(header: str, truth, with_offsetof: bool) -> tuple[str, dict[str, int]]:
    """header + a BEGIN printing sizeof (and offsetof) of what DWARF describes; expected values."""
    expected, stmts = {}, []
    for go_name, _size, tag in _BLOCK.findall(header):
        dname = _DWARF_NAME.get(go_name, go_name)
        if dname not in truth:
            continue
        dsize, members = truth[dname]
        if dsize == 0:
            continue  # bpftrace 0.17/0.23 do not register a struct with no members (nothing to read in it)
        expected[f"S {tag}"] = dsize
        stmts.append(f'printf("S {tag} %d\\n", sizeof(struct {tag}));')
        if not with_offsetof:
            continue
        for mname, off, msize in members:
            if msize == 0 or mname == "_" or mname in C_KEYWORDS or not mname.isidentifier() or not mname.isascii():
                continue
            expected[f"O {tag}.{mname}"] = off
            stmts.append(f'printf("O {tag}.{mname} %d\\n", offsetof(struct {tag}, {mname}));')
    return header + "\nBEGIN {\n\t" + "\n\t".join(stmts) + "\n\texit();\n}\n", expected


def _load(version: str, program: str, tmp_path, what: str) -> dict[str, int]:
    f = tmp_path / f"{what}-{version}.bt"
    f.write_text(program)
    r = subprocess.run([_bpftrace(version), str(f)], capture_output=True, text=True, timeout=120)
    noise = [l for l in r.stderr.splitlines() if l.strip() and not any(n in l for n in _ENVIRONMENT)]
    assert r.returncode == 0 and not noise, f"bpftrace {version} on {what}: rc {r.returncode}: {r.stderr[-3000:]}"
    return {k: int(v) for k, v in (line.rsplit(" ", 1) for line in r.stdout.splitlines() if line[:2] in ("S ", "O "))}


LOAD_BUILDS = [b for b in expected_builds("shapes") + expected_builds("demo")
               if b.arch == "amd64" and b.variant == "default" and b.go in ("1.15", "1.27")]
FOR_FUNC = {"shapes": "main.Slices", "demo": "(*BarrierView).Put"}


@pytest.mark.parametrize("built", LOAD_BUILDS, ids=lambda b: b.id)
def test_structs_output_loads_in_bpftrace_and_gcc(built: Built, tmp_path):
    """`structs` for every struct type of package main, and `structs --for FUNC --depth 2`, as printed:
    gcc compiles it with -Wall -Werror, and each bpftrace loads header + BEGIN with nothing on stderr
    but this machine's environment lines, and prints DWARF's sizes and offsets."""
    require_file(built.path, "fixture binary")
    truth = dwarf_structs(built.path)
    package_types = sorted(n for n in truth if n.startswith("main.") and "[" not in n)
    assert package_types
    outs = {}
    # the --for header with its own prefix, so that both go into one bpftrace program
    for what, argv in (("package", package_types),
                       ("for", ["--for", FOR_FUNC[built.fixture], "--depth", "2", "--prefix", "dgf_"])):
        proc = subprocess.run([sys.executable, "-m", "dwarfgo", "structs", str(built.path), *argv],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert not re.search(r"^struct \w+;", proc.stdout, re.M), "forward declaration"
        outs[what] = proc.stdout
        f = tmp_path / f"{what}.c"
        f.write_text(proc.stdout)
        r = subprocess.run(["gcc", "-fsyntax-only", "-Wall", "-Werror", str(f)], capture_output=True, text=True)
        assert r.returncode == 0, f"{what}: {r.stderr}"
    for version in BPFTRACE_VERSIONS:
        program, expected = _checks_program(outs["package"], truth, with_offsetof=version != "0.17")
        program_for, expected_for = _checks_program(outs["for"], truth, with_offsetof=version != "0.17")
        assert len(expected) >= 2 and len(expected_for) >= 2
        # both headers, then one BEGIN with both sets of checks
        both = program.split("\nBEGIN {\n")[0] + program_for.split("\nBEGIN {\n")[0].replace("#include <stdint.h>", "")
        both += "\nBEGIN {\n" + program.split("\nBEGIN {\n")[1].rsplit("\texit();", 1)[0]
        both += program_for.split("\nBEGIN {\n")[1]
        assert _load(version, both, tmp_path, "both") == {**expected, **expected_for}, f"bpftrace {version}"
