"""bpftrace 0.17 builds each output record on its 512-byte BPF stack beside the probe's variables,
and no fixed number of values a record is safe for every function: gofmt 1.15's
parser.shortVarDecl (a ~40-field receiver, a struct pointer, a slice of interfaces) went over it
with 24, so `trace` failed to load. dwarfgo now compiles a 0.17 program before running it and
makes it again with fewer values a record until bpftrace accepts it (probe.generate_fitting);
`decode` is told the record size by the program's header."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys

import pytest

from conftest import FIXTURES, gofmt_binary
from test_live import _live_preconditions, _need, installed_bpftrace, private_copy

FUNC = "go/parser.(*parser).shortVarDecl"


@pytest.mark.matrix
def test_a_017_program_over_the_stack_is_made_to_fit_and_traces_exact_values(tmp_path):
    version, bpftrace = installed_bpftrace("0.17")
    built, _ = gofmt_binary("1.15")
    _live_preconditions(built)
    gofmt = private_copy(built, tmp_path)  # bpftrace 0.17's -c does not filter by pid
    source = "package zebra\n\nfunc narwhal(axolotl int) int {\n\tpangolin := axolotl\n\treturn pangolin\n}\n"
    (tmp_path / "in.go").write_text(source)
    token_pos = source.index(":=") + 1  # go/token: a file's first Pos is its base, 1
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}

    # the default record size goes over the stack (what the fix is for): checked with bpftrace itself
    from dwarfgo.emit.dialect import Dialect
    from dwarfgo.emit.probe import ProbeOptions, generate
    from dwarfgo.program import GoProgram
    with GoProgram(gofmt) as prog:
        default = generate(prog, [prog.function(FUNC)], Dialect((0, 17, 0)), ProbeOptions(child=True))
    (tmp_path / "default.bt").write_text(default.text)
    compiled = subprocess.run([bpftrace, "-kk", "-c", "/bin/true", "--emit-elf", str(tmp_path / "default.elf"),
                               str(tmp_path / "default.bt")], capture_output=True, text=True, timeout=300)
    assert "stack limit" in compiled.stdout + compiled.stderr, compiled.stderr[-500:]

    raw = tmp_path / "raw.txt"
    run = subprocess.run([sys.executable, "-m", "dwarfgo", "trace", str(gofmt), FUNC, "--json", "--bpftrace", bpftrace,
                          "--raw-output", str(raw), "-c", f"{gofmt} {tmp_path / 'in.go'}"],
                         capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    calls = [json.loads(l) for l in run.stdout.splitlines() if l.startswith('{"event": "call"')]
    assert len(calls) == 1, run.stderr[-2000:]
    args = calls[0]["args"]
    assert args["decl"]["TokPos"] == token_pos, args["decl"]
    assert args["list"]["len"] == 1 and args["list"]["items"][0]["type"] == "*ast.Ident", args["list"]
    assert args["p"]["pos"] > token_pos  # the parser has read past `:=` when it declares
    assert "lost" not in run.stderr and "incomplete" not in run.stderr, run.stderr[-2000:]

    # the program says how to decode it; that command gives the same event from the saved output
    probe = subprocess.run([sys.executable, "-m", "dwarfgo", "probe", str(gofmt), FUNC, "--format", "raw",
                            "--bpftrace", bpftrace], capture_output=True, text=True, timeout=600, env=env)
    assert probe.returncode == 0, probe.stderr[-1000:]
    hint = re.search(r"//   (dwarfgo decode .*) --input OUT", probe.stdout)
    assert hint and "--record-slots" in hint[1], probe.stdout[:1500]
    argv = shlex.split(hint[1])[2:]  # after `dwarfgo decode`
    decoded = subprocess.run([sys.executable, "-m", "dwarfgo", "decode", *argv, "--json", "--input", str(raw)],
                             capture_output=True, text=True, timeout=600, env=env)
    assert decoded.returncode == 0, decoded.stderr[-1000:]
    again = [json.loads(l) for l in decoded.stdout.splitlines() if l.startswith('{"event": "call"')]
    assert [e["args"] for e in again] == [calls[0]["args"]], decoded.stderr[-1000:]


@pytest.mark.matrix
def test_the_stack_check_compiles_against_a_stand_in_with_the_same_verdict(tmp_path):
    """The check compiles against an ELF header with no sections instead of the traced binary
    (bpftrace 0.17 spends most of a compile reading the target's DWARF): bpftrace itself must
    give the same verdict both ways, for a program over the stack and for one that fits."""
    version, bpftrace = installed_bpftrace("0.17")
    built, _ = gofmt_binary("1.15")
    _live_preconditions(built)
    from dataclasses import replace

    from dwarfgo.emit.dialect import Dialect
    from dwarfgo.emit.probe import ProbeOptions, generate
    from dwarfgo.emit.stackcheck import CompileVerdict, compile_verdict
    from dwarfgo.program import GoProgram
    dialect = Dialect((0, 17, 0))
    with GoProgram(built, cache=False) as prog:
        fn = prog.function(FUNC)
        over = generate(prog, [fn], dialect, ProbeOptions())
        fits = generate(prog, [fn], replace(dialect, record_slots=10), ProbeOptions())
        binary = str(prog.binary.path.resolve())

    def verdict_of_bpftrace(program) -> bool:  # compiled as written: the real binary's path
        source = tmp_path / "p.bt"
        source.write_text(program.text)
        run = subprocess.run([bpftrace, "-kk", "--emit-elf", str(tmp_path / "p.elf"), str(source)],
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0 or "stack limit" in run.stderr, run.stderr[-500:]
        return "stack limit" in run.stderr

    assert verdict_of_bpftrace(over) is True and verdict_of_bpftrace(fits) is False
    assert compile_verdict(bpftrace, dialect, over, binary) is CompileVerdict.OVER_THE_STACK
    assert compile_verdict(bpftrace, dialect, fits, binary) is CompileVerdict.FITS


@pytest.mark.matrix
def test_a_027_program_over_the_stack_is_made_to_fit_and_traces_every_call(tmp_path):
    """bpftrace 0.27 keeps the values waiting for a printf on the 512-byte stack: the trace of
    cmd/compile 1.27's (*Block).NewValue3 (a receiver of ~45 words and three struct pointers at
    depth 1, 125 read values) failed to load with the default record size. It is now compiled
    first on every bpftrace version and made again with fewer values a record; it traces every
    call a bare uprobe counts, with values that agree with each other."""
    from conftest import goroot_program
    version, bpftrace = installed_bpftrace("0.27")
    compile_, goroot = goroot_program("1.27", "cmd/compile")
    _live_preconditions(compile_)
    func = "cmd/compile/internal/ssa.(*Block).NewValue3"
    source = f"{goroot}/src/unicode/utf8/utf8.go"  # a package with no imports: compiles alone
    command = f"{compile_} -p unicode/utf8 -o {tmp_path / 'utf8.o'} {source}"

    from dwarfgo.emit.dialect import Dialect
    from dwarfgo.emit.probe import ProbeOptions, generate
    from dwarfgo.program import GoProgram
    with GoProgram(compile_, cache=False) as prog:
        fn = prog.function(func)
        default = generate(prog, [fn], Dialect((0, 27, 0)), ProbeOptions())
        entry = fn.address
    (tmp_path / "default.bt").write_text(default.text)
    compiled = subprocess.run([bpftrace, "-k", "--emit-elf", str(tmp_path / "default.elf"), str(tmp_path / "default.bt")],
                              capture_output=True, text=True, timeout=300)
    assert "stack limit" in compiled.stdout + compiled.stderr, compiled.stderr[-500:]

    bare = subprocess.run([bpftrace, "-e", f'uprobe:"{compile_}":{entry:#x} {{ @calls = count(); }}', "-c", command],
                          capture_output=True, text=True, timeout=300)
    counted = re.search(r"@calls: (\d+)", bare.stdout)
    assert bare.returncode == 0 and counted and int(counted[1]) > 0, bare.stdout[-500:] + bare.stderr[-500:]

    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    run = subprocess.run([sys.executable, "-m", "dwarfgo", "trace", str(compile_), func, "--json", "--bpftrace", bpftrace,
                          "-c", command], capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    calls = [json.loads(l) for l in run.stdout.splitlines() if l.startswith('{"event": "call"')]
    assert len(calls) == int(counted[1]), run.stderr[-2000:]
    assert "lost" not in run.stderr and "incomplete" not in run.stderr, run.stderr[-2000:]
    slices = [c["args"]["t"] for c in calls if (c["args"]["t"] or {}).get("extra", {}).get("type") == "types.Slice"]
    for t in slices:  # a slice type's size and alignment, in cmd/compile's own *types.Type
        assert (t["width"], t["align"]) == (24, 8), t
    for c in calls:
        values = c["args"]["b"]["Values"]
        assert 0 <= values["len"] <= values["cap"], values

    # at --depth 2 with --ret, ConstOffPtrSP's probes outgrow a BPF jump's reach (LLVM aborts
    # bpftrace 0.27 with "Branch target out of insn range"): said in one line before any run
    too_big = subprocess.run([sys.executable, "-m", "dwarfgo", "trace", str(compile_),
                              "cmd/compile/internal/ssa.(*Func).ConstOffPtrSP", "--depth", "2", "--ret",
                              "--bpftrace", bpftrace, "-c", "/bin/true"], capture_output=True, text=True, timeout=600,
                             env=env)
    assert too_big.returncode == 1, too_big.stderr[-2000:]
    said = too_big.stderr.strip().splitlines()
    assert len(said) == 1 and "too large for bpftrace" in said[0] and "--depth 1" in said[0], said


@pytest.mark.live
def test_a_program_that_reads_a_structs_words_at_once_is_compiled_and_refitted_when_over_the_stack(tmp_path):
    """On 0.23+ a struct's consecutive words are one memory read into a struct variable (each read
    costs the traced thread ~150 ns), and that variable sits on the 512-byte BPF stack for the
    whole probe: Go 1.15's shapes main.Slices (stack ABI: its argument words at the stack pointer
    read four at a time) goes over it on bpftrace 0.27 at the default --max-str, which no count of
    variables foresees (so did the demo's (*BarrierView).SetReadOnly with --max-str 56, before a
    short --max-str kept the room of 64). Such a program is always compiled first, and made again
    reading one word at a time (--record-slots 24 in its decode command); one that fits keeps its
    struct reads (SetReadOnly at --max-str 64)."""
    version, bpftrace = installed_bpftrace("0.27")
    binary = FIXTURES / "go1.15" / "amd64" / "default" / "shapes"
    demo = FIXTURES / "go1.27" / "amd64" / "default" / "demo"
    _need(binary.exists() and demo.exists(), f"{binary} or {demo} not built")
    from dwarfgo.emit.dialect import Dialect
    from dwarfgo.emit.probe import ProbeOptions, generate, generate_fitting
    from dwarfgo.program import GoProgram

    def refused(program) -> bool:  # bpftrace's own verdict on the program as it stands
        file = tmp_path / "p.bt"
        file.write_text(program.text)
        run = subprocess.run([bpftrace, "-k", "--mode", "codegen", str(file)], capture_output=True, text=True,
                             timeout=300, env={**os.environ, **program.run_env})
        assert run.returncode == 0 or "stack limit" in run.stderr, run.stderr[-500:]
        return "stack limit" in run.stderr

    with GoProgram(binary, cache=False) as prog:
        fn = prog.function("main.Slices")
        made = generate(prog, [fn], Dialect((0, 27, 0)), ProbeOptions(max_str=64))
        fitted = generate_fitting(prog, [fn], Dialect((0, 27, 0)), ProbeOptions(max_str=64), bpftrace)
        # only generating (--bpftrace-version, no bpftrace to ask): one read a word, no struct reads
        unchecked = generate_fitting(prog, [fn], Dialect((0, 27, 0)), ProbeOptions(max_str=64), None)
    with GoProgram(demo, cache=False) as prog:
        fn = prog.function("(*BarrierView).SetReadOnly")
        kept = generate_fitting(prog, [fn], Dialect((0, 27, 0)), ProbeOptions(max_str=64), bpftrace)
    assert "*(struct dg_w3 *)" in made.text and refused(made)
    assert "struct dg_w" not in fitted.text and "--record-slots 24" in fitted.text and not refused(fitted)
    assert "struct dg_w" not in unchecked.text and "--record-slots 24" in unchecked.text and not refused(unchecked)
    assert "struct dg_w3 *" in kept.text and "--record-slots" not in kept.text and not refused(kept)
