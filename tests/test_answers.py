"""A command's answer kept in the index cache (GoProgram.remembered, indexcache.stored_result):
`sig`, `structs --for`, `abi FUNC`, `probe` and `funcs PATTERN` on a binary they answered before
print exactly what they print without a cache, without opening the binary through pyelftools;
an answer stored for another build of the binary (or by other code) is never used.

The reference is the uncached run (--no-cache); the build IDs from readelf's notes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from conftest import FIXTURES, REPO, fresh_python, require_file
from dwarfgo import indexcache
from dwarfgo.cli import app
from dwarfgo.elfhead import read_head

DEMO = REPO / "fixtures" / "bin" / "demo-go1.22-amd64"
PUT = "main.(*BarrierView).Put"

COMMANDS = [["sig", PUT], ["sig", PUT, "--json"], ["structs", "--for", PUT], ["structs", "--for", PUT, "--depth", "2"],
            ["abi", PUT], ["abi", PUT, "--json"], ["probe", PUT, "--ret", "--bpftrace-version", "0.27"],
            ["probe", PUT, "--format", "raw", "--bpftrace-version", "0.23"], ["funcs", "BarrierView"],
            ["funcs", "BarrierView", "--json"]]


def _args(binary, command):
    return [command[0], str(binary), *command[1:]]


@pytest.mark.parametrize("go, variant", [("1.15", "default"), ("1.27", "default"), ("1.27", "nocompress"),
                                         ("1.27", "nodwarf"), ("1.27", "splitdebug")])
def test_elfhead_reads_the_go_build_id_readelf_shows(go, variant):
    path = FIXTURES / f"go{go}" / "amd64" / variant / "shapes"
    require_file(path, "fixture binary")
    notes = subprocess.run(["readelf", "-n", str(path)], capture_output=True, text=True, check=True).stdout
    go = notes.split("Displaying notes found in: .note.go.buildid", 1)[1].split("description data:", 1)[1]
    want = bytes.fromhex("".join(go.splitlines()[0].split())).decode()
    head = read_head(path)
    assert head.build_id == want
    assert head.has_dwarf == (variant not in ("nodwarf", "splitdebug"))
    assert head.has_debuglink == (variant == "splitdebug")
    assert read_head(REPO / "README.md") is None


def test_warm_answers_are_the_uncached_ones_read_without_pyelftools(tmp_path, cache_home):
    demo = tmp_path / "demo"
    shutil.copy2(DEMO, demo)
    runner = CliRunner()
    reference = [runner.invoke(app, _args(demo, c) + ["--no-cache"]) for c in COMMANDS]
    assert all(r.exit_code == 0 for r in reference), [r.output for r in reference]
    cold = [runner.invoke(app, _args(demo, c)) for c in COMMANDS]
    assert [(r.exit_code, r.stdout) for r in cold] == [(r.exit_code, r.stdout) for r in reference]
    # the warm runs, in a fresh interpreter: the same output, and neither pyelftools' readers (only its
    # exception classes, which the CLI catches), the disassemblers nor the library imported
    script = ("import json, sys\n"
              "from typer.testing import CliRunner\n"
              "from dwarfgo.cli import app\n"
              f"runs = [CliRunner().invoke(app, a) for a in {[_args(demo, c) for c in COMMANDS]!r}]\n"
              "print(json.dumps([[r.exit_code, r.stdout] for r in runs]))\n"
              "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('elftools.elf', 'elftools.dwarf', "
              "'elftools.construct', 'capstone', 'iced_x86', 'dwarfgo.program', 'dwarfgo.binary')))))\n")
    warm, imported = (json.loads(line) for line in fresh_python(script).stdout.splitlines())
    assert warm == [[r.exit_code, r.stdout] for r in reference]
    assert imported == []
    # what the commands print is what the demo's source says (fixtures/demo/main.go)
    assert warm[0][1].startswith("func (v *main.BarrierView) Put(ctx context.Context, entry *main.StorageEntry) error\n")
    assert warm[2][1] != warm[3][1] and warm[6][1] != warm[7][1]  # the options are part of the key


def test_an_answer_of_another_build_or_other_code_is_not_used(tmp_path, cache_home):
    demo = tmp_path / "demo"
    shutil.copy2(DEMO, demo)
    runner = CliRunner()
    want = runner.invoke(app, ["sig", str(demo), PUT, "--no-cache"]).stdout
    assert runner.invoke(app, ["sig", str(demo), PUT]).stdout == want
    [store] = cache_home.glob("*.sig" + indexcache.RESULTS_SUFFIX)
    doc = json.loads(store.read_text())
    [key] = doc["results"]
    # a planted answer under this binary's identity is what a warm run prints (the store is read) ...
    doc["results"][key] = "planted\n"
    store.write_text(json.dumps(doc))
    assert runner.invoke(app, ["sig", str(demo), PUT]).stdout == "planted\n"
    # ... but not for another build of the file (its mtime changed), nor from other code
    st = os.stat(demo)
    os.utime(demo, ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))
    assert runner.invoke(app, ["sig", str(demo), PUT]).stdout == want
    doc = json.loads(store.read_text())
    doc["identity"]["code"] = "0" * 32
    doc["results"] = {k: "planted\n" for k in doc["results"]}
    store.write_text(json.dumps(doc))
    assert runner.invoke(app, ["sig", str(demo), PUT]).stdout == want
    # the same binary under another name: its answers name that path
    other = tmp_path / "other"
    shutil.copy2(demo, other)
    abi = runner.invoke(app, ["abi", str(other), PUT])
    assert abi.stdout.startswith(f"{other}: go1.22")
    assert runner.invoke(app, ["abi", str(demo), PUT]).stdout.startswith(f"{demo}: go1.22")


def test_goid_offset_is_found_once_per_binary(cache_home, monkeypatch):
    """runtime.g's goid offset (every probe reads it) is modelled from DWARF once, then read from
    the cache; another build of the binary (another mtime) models it again."""
    from dwarfgo.emit.probe import goid_offset
    from dwarfgo.program import GoProgram

    binary = cache_home.parent / "demo"
    binary.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(DEMO, binary)
    with GoProgram(binary, cache=False) as plain:
        want = next(f.offset for f in plain.type_named("runtime.g").fields if f.name == "goid")
    modelled = []
    type_named = GoProgram.type_named

    def counted(prog, name):
        modelled.append(name)
        return type_named(prog, name)

    monkeypatch.setattr(GoProgram, "type_named", counted)
    for round_, expected_models in enumerate((1, 0, 1)):
        if round_ == 2:  # the binary touched: the same build ID, another mtime
            os.utime(binary, ns=(binary.stat().st_atime_ns, binary.stat().st_mtime_ns + 10**9))
        modelled.clear()
        with GoProgram(binary) as prog:
            assert goid_offset(prog) == want
        assert modelled == ["runtime.g"] * expected_models
