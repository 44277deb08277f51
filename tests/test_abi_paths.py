"""`abi`'s light paths against its reference paths, on fixtures of Go 1.15 to 1.27, amd64 and
arm64, optimised (location lists: DWARF 4 .debug_loc, DWARF 5 .debug_loclists with
DW_LLE_base_addressx) and not (expression locations):

* machine code swept without operand details, details only for the prologue and the morestack
  tail, against every instruction decoded with details;
* entry locations decoded from the raw sections (locscan) against pyelftools.

The whole evidence must be the same: the `abi --json` record, the machine-code report (stack
check, frame, spills, morestack call, RET sites, every instruction start, problems) and every
DWARF location check. scripts/compare-abi-paths does the same over a whole real binary."""

from __future__ import annotations

import pytest

from conftest import FIXTURES, require_file
from dwarfgo.program import GoProgram, usable
from dwarfgo.report import evidence_record
from dwarfgo.verify import dwarfloc
from dwarfgo.verify.evidence import gather

BUILDS = [("1.15", "amd64", "default"), ("1.15", "arm64", "default"), ("1.21", "arm64", "default"),
          ("1.22", "amd64", "noopt"), ("1.27", "amd64", "default"), ("1.27", "arm64", "default")]


def _facts(ev) -> tuple:
    return evidence_record(ev), ev.machine, ev.dwarf.checks, ev.layout.unknown


@pytest.mark.parametrize("go,arch,variant", BUILDS, ids=["-".join(b) for b in BUILDS])
def test_light_abi_evidence_is_the_reference_evidence(go, arch, variant, monkeypatch):
    path = FIXTURES / f"go{go}" / arch / variant / "shapes"
    require_file(path, "fixture binary")
    fallbacks = []
    reference_location = dwarfloc.entry_location

    def counted(*args):
        fallbacks.append(args[1].offset)
        return reference_location(*args)

    with GoProgram(path, cache=False) as prog:
        symbols = prog.binary.function_symbols
        # every function of main, and a sample of the runtime and the standard library
        chosen = [s for i, s in enumerate(symbols) if s.name.startswith("main.") or i % 8 == 0]
        compared = spilled = rets = located = 0
        for sym in chosen:
            fn = prog.functions.at(sym)
            if not usable(fn):
                continue
            monkeypatch.setattr(dwarfloc, "entry_location", counted)
            light = _facts(gather(prog, fn))
            monkeypatch.setattr(dwarfloc, "entry_location", reference_location)
            reference = _facts(gather(prog, fn, reference=True))
            assert light == reference, sym.name
            compared += 1
            machine = light[1]
            spilled += bool(machine and machine.spills)
            rets += len(machine.ret_sites) if machine else 0
            located += sum(1 for c in light[2] if c.dwarf is not None)
    # the comparison covered what the light paths decode: morestack tails with spills (register
    # ABI builds), RET sites, and DWARF locations, every one read raw (no pyelftools fallback)
    assert compared > 300
    assert rets > compared // 2
    assert located > compared // 2
    if go != "1.15":
        assert spilled > 50
    assert fallbacks == []
