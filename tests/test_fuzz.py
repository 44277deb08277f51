"""Damaged and crafted binaries: a fixed seed set of mutants of the bundled demo binary through
the CLI (in-process, forked, with a time and a memory limit). Every run ends in one clean error
line or in output; never an internal error, a hang, a memory blow-up, or a probe that reads
values its own ABI evidence contradicts. `scripts/fuzz-binaries` runs thousands of the same."""

from __future__ import annotations

import collections
import os

import pytest

import fuzzing
from conftest import require_file
from test_stripped import built

SEED = 20261130
COUNT = int(os.environ.get("DWARFGO_FUZZ_COUNT", "60"))  # ~45 s here; scripts/fuzz-binaries runs thousands
TIMEOUT = 30.0  # per run; a normal run takes 0.2-1.5 s
MEM = 1 << 30


@pytest.fixture(scope="module")
def baselines():
    require_file(fuzzing.DEMO, "demo binary")
    return fuzzing.baselines_for(fuzzing.DEMO, ("sig", "abi", "structs", "probe", "funcs"), mem=MEM)


def _report(results) -> str:
    counts = collections.Counter(o.kind for _, _, o in results)
    lines = [f"{len(results)} runs: " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))]
    for name, cmd, o in results:
        if o.kind in fuzzing.BAD:
            lines.append(f"  {o.kind} {cmd}: {name}: {o.cause}")
    return "\n".join(lines)


def test_targeted_cases(baselines, tmp_path):
    """Zlib bombs, 2^40 sizes, a typedef referring to itself, two typedefs referring to each other,
    structs containing themselves by value, structs smaller than their members, a parameter
    retyped so that the machine code contradicts the layout: through sig and probe (probe follows
    types furthest), and funcs once for the section-level ones."""
    mut = fuzzing.Mutator(fuzzing.DEMO.read_bytes(), SEED, ("sig", "probe"))
    mutants = list(mut.targeted())
    results = fuzzing.fuzz(mutants, tmp_path, TIMEOUT, MEM, baselines)
    report = _report(results)
    print(report)
    assert not [r for r in results if r[2].kind in fuzzing.BAD], report
    by_case = collections.defaultdict(dict)
    for name, cmd, o in results:
        by_case[name][cmd] = o
    # the cases named in issue 9, with what they must give
    bomb = by_case["zlib bomb: .debug_info inflates to 1.5 GiB (declared)"]["sig"]
    assert bomb.kind == "clean" and "decompression bomb" in bomb.cause
    loop = by_case["typedef context.Context refers to itself"]["sig"]
    assert loop.kind == "clean" and "typedef chain loops back" in loop.cause
    itself = by_case["struct main.StorageEntry contains itself by value (member Key)"]["probe"]
    assert itself.kind == "clean" and "contains itself by value" in itself.cause
    outside = by_case["struct main.StorageEntry smaller than its members (byte_size 1)"]["probe"]
    assert outside.kind == "clean" and "lies outside" in outside.cause
    huge = by_case[".symtab sh_size is 2^40 (uncompressed)"]["sig"]
    assert huge.kind == "clean"
    # the contradicted layout: sig says so instead of naming registers; probe reads nothing
    retyped = by_case["parameter entry of Put typed float64"]
    assert retyped["sig"].kind == "changed" and "the ABI evidence contradicts itself" in retyped["sig"].stdout
    assert retyped["probe"].kind == "changed"


def test_random_mutants(baselines, tmp_path):
    """Truncations, bytes flipped inside one section (raw, inflated and recompressed, uncompressed,
    .zdebug), lying section and compression headers, the ELF header."""
    mut = fuzzing.Mutator(fuzzing.DEMO.read_bytes(), SEED, ("sig", "abi", "structs", "probe"))
    results = fuzzing.fuzz(mut.random(COUNT), tmp_path, TIMEOUT, MEM, baselines)
    report = _report(results)
    print(report)
    assert len(results) == COUNT
    assert not [r for r in results if r[2].kind in fuzzing.BAD], report
    kinds = collections.Counter(o.kind for _, _, o in results)
    # the mix is a real one: damage that is reported, and damage that changes nothing dwarfgo reads
    assert kinds["clean"] >= COUNT // 10 and kinds["unchanged"] >= COUNT // 10, report


@pytest.mark.parametrize("go", ["1.15", "1.27"])
def test_random_mutants_stripped(go, tmp_path):
    """A binary without DWARF (-ldflags='-s -w'): everything its commands read comes from the
    function table, the type descriptors and links, module data and build info, so that is what
    is damaged (bytes flipped in those sections and in the code, truncations, lying headers)."""
    binary = built(go, "stripped")
    func = "main.(*Circle).Area"  # a method in the runtime type tables: sig and probe give it typed
    commands = ("sig", "funcs", "probe")
    baselines = fuzzing.baselines_for(binary, commands, mem=MEM, func=func)
    mut = fuzzing.Mutator(binary.read_bytes(), SEED, commands)
    results = fuzzing.fuzz(mut.random(COUNT // 2), tmp_path, TIMEOUT, MEM, baselines, func=func)
    report = _report(results)
    print(report)
    assert len(results) == COUNT // 2
    assert not [r for r in results if r[2].kind in fuzzing.BAD], report
    kinds = collections.Counter(o.kind for _, _, o in results)
    assert kinds["clean"] >= 1 and kinds["unchanged"] >= 1, report
