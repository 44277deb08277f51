"""What a command imports: `funcs` reads no machine code and writes no C or bpftrace, so it must
not pay for importing capstone, rich or the emitters (issue 12: start-up is most of a warm run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO, fresh_python

DEMO = REPO / "fixtures" / "bin" / "demo-go1.22-amd64"
HEAVY = ("capstone", "rich", "dwarfgo.cheaders", "dwarfgo.emit", "dwarfgo.runner", "multiprocessing")


def test_funcs_imports_no_disassembler_progress_display_emitter_or_multiprocessing():
    script = ("import json, sys\n"
              "from dwarfgo.cli import app\n"
              "try:\n"
              f"    app(['funcs', {str(DEMO)!r}, 'main.checkKey', '--no-cache'])\n"
              "except SystemExit as e:\n"
              "    assert not e.code, e.code\n"
              f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m in {HEAVY!r})))\n")
    out = fresh_python(script).stdout.splitlines()
    assert out[0].endswith("main.checkKey  func checkKey(key string) error")  # fixtures/demo/main.go
    assert json.loads(out[-1]) == []


def _run_entry(tmp_path, prologue: str, *args: str) -> subprocess.CompletedProcess:
    """`dwarfgo ARGS` through cli.run (the command line's entry), after `prologue` ran."""
    script = (f"import sys\n{prologue}\n"
              f"sys.argv = ['dwarfgo', *{list(args)!r}]\n"
              "from dwarfgo.cli import run\n"
              "run()\n")
    return fresh_python(script, check=False, XDG_CACHE_HOME=str(tmp_path))


_LAST_OBJECT = ("class Last:\n"
                "    def __del__(self):\n"
                "        print('torn down', file=sys.stderr)\n"
                "last = Last()")


def test_a_command_ends_without_the_interpreters_teardown(tmp_path):
    """A command's process ends once its output is flushed: a module's object is never freed
    one by one (the teardown cost 40 ms of a warm run on cmd/compile); the exit status stays."""
    proc = _run_entry(tmp_path, _LAST_OBJECT, "sig", str(DEMO), "main.checkKey")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "func checkKey(key string) error"  # fixtures/demo/main.go
    assert proc.stderr == ""
    proc = _run_entry(tmp_path, _LAST_OBJECT, "sig", str(DEMO), "main.noSuchFunction")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("dwarfgo: error: ") and "torn down" not in proc.stderr


def test_an_atexit_callback_still_runs(tmp_path):
    """What is registered to run at exit (multiprocessing's, a finalizer's) makes the interpreter
    exit as it always did: the callback runs and the objects are torn down."""
    prologue = _LAST_OBJECT + "\nimport atexit\natexit.register(lambda: print('at exit', file=sys.stderr))"
    proc = _run_entry(tmp_path, prologue, "sig", str(DEMO), "main.checkKey", "--no-cache")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "func checkKey(key string) error"
    assert proc.stderr.splitlines() == ["at exit", "torn down"]


def _probe_modules(*options: str) -> tuple[list[str], bool]:
    """(the program's lines, whether the aggregation compiler was imported) of a probe of Put."""
    script = ("import json, sys\n"
              "from dwarfgo.cli import app\n"
              "try:\n"
              f"    app(['probe', {str(DEMO)!r}, 'main.(*BarrierView).Put', '--bpftrace-version', '0.27', '--no-cache',"
              f" *{list(options)!r}])\n"
              "except SystemExit as e:\n"
              "    assert not e.code, e.code\n"
              "print(json.dumps('dwarfgo.emit.aggregate' in sys.modules))\n")
    lines = fresh_python(script).stdout.splitlines()
    return lines[:-1], json.loads(lines[-1])


def test_readable_probe_imports_no_aggregation_compiler():
    """A readable program (no --count-by/--sum/--hist) is made without importing the aggregation
    compiler; --count-by still makes the raw program with its count map."""
    lines, imported = _probe_modules()
    assert not imported
    assert any(line.startswith("uprobe:") for line in lines)
    assert not any("count()" in line for line in lines)
    lines, imported = _probe_modules("--count-by", "entry.Key")  # entry: Put's parameter (fixtures/demo/main.go)
    assert imported
    assert any("= count();" in line and "@dg_agg_0[" in line for line in lines)


def test_a_command_on_one_function_makes_no_garbage_collection(tmp_path):
    """The collector runs after many more new objects than Python's 700: the ~50,000 a command on
    one function allocates all live to its end, and the passes over them freed nothing."""
    prologue = ("import atexit, gc\n"
                "passes = []\n"
                "gc.callbacks.append(lambda phase, info: passes.append(info['generation']) if phase == 'stop' else None)\n"
                "atexit.register(lambda: print('collections', len(passes), file=sys.stderr))\n"
                "import dwarfgo.cli\n"
                "passes.clear()\n")
    proc = _run_entry(tmp_path, prologue, "probe", str(DEMO), "main.(*BarrierView).Put", "--ret", "--bpftrace-version",
                      "0.27", "--no-cache")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("// Generated by dwarfgo")
    assert proc.stderr.splitlines() == ["collections 0"]


def test_sig_loads_neither_ctypes_nor_pdb(tmp_path):
    """A warm `sig` reads machine code with iced-x86 (what Capstone says of its instructions kept:
    ctypes comes with Capstone only), and, on the command line, pyelftools' `import pdb` gets a
    stand-in that imports pdb only when something of it is used; a program importing dwarfgo as a
    library gets pdb itself."""
    env = dict(os.environ, PYTHONPATH=str(REPO), XDG_CACHE_HOME=str(tmp_path))
    first = subprocess.run([sys.executable, "-m", "dwarfgo", "sig", str(DEMO), "main.checkKey"], capture_output=True,
                           text=True, timeout=120, cwd=REPO, env=env)
    assert first.returncode == 0, first.stderr
    library = fresh_python("import sys, dwarfgo.binary, dwarfgo.program, elftools.elf.elffile\n"
                           "print(type(sys.modules['pdb'].__dict__.get('Pdb')).__name__)", check=False,
                           XDG_CACHE_HOME=str(tmp_path))
    assert library.stdout == "type\n", library.stderr  # imported as a library: pdb itself, as pyelftools asks
    script = ("import json, sys\n"
              "from dwarfgo.cli import app, defer_unused_imports\n"
              "defer_unused_imports()  # (as the command line's entry, cli.run, does)\n"
              "try:\n"
              f"    app(['sig', {str(DEMO)!r}, 'main.(*BarrierView).Put'])\n"
              "except SystemExit as e:\n"
              "    assert not e.code, e.code\n"
              "stand_in = sys.modules['pdb']\n"
              "loaded = ['ctypes' in sys.modules, 'capstone' in sys.modules, 'iced_x86' in sys.modules,\n"
              "          'Pdb' in vars(stand_in), 'bdb' in sys.modules]\n"
              "import pdb\n"
              "print(json.dumps(loaded + [pdb.Pdb.__name__, sys.modules['pdb'] is not stand_in]))\n")
    out = fresh_python(script, XDG_CACHE_HOME=str(tmp_path)).stdout.splitlines()
    assert out[0] == "func (v *main.BarrierView) Put(ctx context.Context, entry *main.StorageEntry) error"
    assert json.loads(out[-1]) == [False, False, True, False, False, "Pdb", True]
