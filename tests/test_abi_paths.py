"""`abi`'s light paths against its reference paths, on fixtures of Go 1.15 to 1.27, amd64 and
arm64, optimised (location lists: DWARF 4 .debug_loc, DWARF 5 .debug_loclists with
DW_LLE_base_addressx) and not (expression locations):

* machine code swept without operand details (amd64: instruction boundaries by iced-x86,
  Capstone's sweep where iced-x86 cannot stand for it), details only for the prologue and the
  morestack tail (x86 operands read from Capstone's detail record), against every instruction
  decoded with details through Capstone's binding;
* entry locations decoded from the raw sections (locscan) against pyelftools.

The whole evidence must be the same: the `abi --json` record, the machine-code report (stack
check, frame, spills, morestack call, RET sites, every instruction start, problems) and every
DWARF location check. scripts/compare-abi-paths does the same over a whole real binary."""

from __future__ import annotations

import capstone
import pytest

from conftest import FIXTURES, require_file
from dwarfgo.binary import GoBinary
from dwarfgo.program import GoProgram, usable
from dwarfgo.report import evidence_record
from dwarfgo.verify import dwarfloc, machine
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
    capstone_swept = []  # bodies the light path swept with Capstone (amd64: iced-x86 sweeps them all)
    capstone_light_body = machine._light_body

    def counted(*args):
        fallbacks.append(args[1].offset)
        return reference_location(*args)

    def counted_body(binary, address, *args):
        capstone_swept.append(address)
        return capstone_light_body(binary, address, *args)

    monkeypatch.setattr(machine, "_light_body", counted_body)

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
            report = light[1]
            spilled += bool(report and report.spills)
            rets += len(report.ret_sites) if report else 0
            located += sum(1 for c in light[2] if c.dwarf is not None)
    # the comparison covered what the light paths decode: morestack tails with spills (register
    # ABI builds), RET sites, and DWARF locations, every one read raw (no pyelftools fallback)
    assert compared > 300
    assert rets > compared // 2
    assert located > compared // 2
    if go != "1.15":
        assert spilled > 50
    assert fallbacks == []
    assert capstone_swept == [] if arch == "amd64" else len(capstone_swept) == compared


# --- iced-x86's amd64 sweep against Capstone's ----------------------------------------------

AMD64_BUILDS = [("1.15", "default"), ("1.22", "noopt"), ("1.27", "default")]


def _capstone_sweep(code: bytes, address: int) -> tuple[list[int], list[int]]:
    """Every instruction start of Capstone's linear sweep, and the starts of those it names "ret"."""
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    insns = list(md.disasm_lite(code, address))
    return [a for a, _, _, _ in insns], [a for a, _, m, _ in insns if m == "ret"]


@pytest.mark.parametrize("go,variant", AMD64_BUILDS, ids=["-".join(b) for b in AMD64_BUILDS])
def test_iced_sweep_is_capstones_sweep(go, variant):
    """Every function body of the fixture (runtime assembly included): iced-x86 finds Capstone's
    instruction starts and RET sites, and stands for Capstone on all of them."""
    path = FIXTURES / f"go{go}" / "amd64" / variant / "shapes"
    require_file(path, "fixture binary")
    with GoBinary(path) as binary:
        bodies = [(s.address, binary.read_memory(s.address, s.size)) for s in binary.function_symbols if s.size]
    instructions = rets = 0
    for address, code in bodies:
        expected = _capstone_sweep(code, address)
        assert machine.iced_sweep(code, address) == expected, hex(address)
        instructions += len(expected[0])
        rets += len(expected[1])
    assert len(bodies) > 1000 and instructions > 50 * len(bodies) and rets > len(bodies) // 2


class _Code:
    """A stand-in binary holding one amd64 body at ENTRY."""

    arch = "amd64"

    def __init__(self, code: bytes):
        self.code = code

    def read_memory(self, address: int, size: int) -> bytes:
        assert address == ENTRY and size == len(self.code)
        return self.code

    def symbol_at(self, address: int):
        return None


ENTRY = 0x401000


def _go_like_body(middle: bytes) -> bytes:
    """cmp rsp, [r14+16]; jbe tail; sub rsp, 24; MIDDLE; add rsp, 24; ret;
    tail: mov [rsp+8], rax; mov [rsp+16], rbx; call .+5; jmp entry"""
    head = bytes.fromhex("493b6610") + b"\x76\x00" + bytes.fromhex("4883ec18")
    body = head + middle + bytes.fromhex("4883c418") + b"\xc3"
    tail = bytes.fromhex("4889442408") + bytes.fromhex("48895c2410") + bytes.fromhex("e800000000")
    back = -(len(body) + len(tail) + 2)
    body = body[:5] + bytes([len(body) - 6]) + body[6:]
    return body + tail + b"\xeb" + back.to_bytes(1, "little", signed=True)


# (instruction bytes in the middle, whether iced-x86's sweep stands for Capstone's there)
MIDDLES = {
    "plain": (bytes.fromhex("4889c3"), True),  # mov rbx, rax
    "repz-ret": (bytes.fromhex("f3c3"), True),  # a return, but not named "ret" by Capstone
    "bnd-ret": (bytes.fromhex("f2c3"), True),
    "ret-imm": (bytes.fromhex("c20800"), True),
    "invalid": (b"\x06", False),  # push es: not an amd64 instruction, Capstone's sweep stops there
    "serialize": (bytes.fromhex("0f01e8"), False),  # iced-x86 decodes it, Capstone 5 does not
    "tilerelease": (bytes.fromhex("c4e27849c0"), False),
}


@pytest.mark.parametrize("name", MIDDLES)
def test_light_analysis_is_capstones_where_the_decoders_differ(name):
    """Where iced-x86 and Capstone part (bytes neither decodes, instructions only iced-x86 knows,
    returns Capstone names otherwise), the light analysis is still the reference one (Capstone's
    sweep stops early there: the tail is then not an instruction start)."""
    middle, iced_stands = MIDDLES[name]
    code = _go_like_body(middle)
    expected = _capstone_sweep(code, ENTRY)
    assert (machine.iced_sweep(code, ENTRY) == expected) if iced_stands else machine.iced_sweep(code, ENTRY) is None
    binary = _Code(code)
    light = machine.analyze(binary, ENTRY, len(code))
    assert light == machine.analyze_fully(binary, ENTRY, len(code))
    assert light.instruction_starts == expected[0] and light.ret_sites == expected[1]
    if iced_stands:  # the whole body decodes: the tail's spills are read
        assert light.stack_check.shape == "small"
        assert [(s.register, s.sp_offset, s.width) for s in light.spills] == [("AX", 8, 8), ("BX", 16, 8)]
        assert light.morestack_call is not None and light.morestack_call.return_address == ENTRY + len(code) - 2
    else:
        assert light.problems and "not an instruction start" in light.problems[0]


def _binding_operands(insn) -> list[tuple]:
    return [(o.type, o.reg, o.imm, (o.mem.segment, o.mem.base, o.mem.index, o.mem.scale, o.mem.disp), o.size,
             o.access, o.avx_bcast, o.avx_zero_opmask) for o in insn.operands]


@pytest.mark.parametrize("go", ["1.15", "1.27"])
def test_x86_operands_read_raw_are_the_bindings(go):
    """The light path reads an x86 instruction's operands from Capstone's detail record itself:
    field for field what Capstone's Python binding gives, on the first instructions of every
    fourth function (prologues: stack checks, frames) and every instruction of the synthetic
    tails (spills of every width)."""
    path = FIXTURES / f"go{go}" / "amd64" / "default" / "shapes"
    require_file(path, "fixture binary")
    md = machine._decoder("amd64", True)
    with GoBinary(path) as binary:
        codes = [(s.address, binary.read_memory(s.address, s.size)) for s in binary.function_symbols[::4] if s.size]
    codes += [(ENTRY, _go_like_body(bytes.fromhex(h))) for h in
              ("f20f114c2410", "0f11442410", "66894c2410", "884c2410", "4c897c2410")]  # movsd, movups, 2/1 bytes, r15
    compared = memory = 0
    for address, code in codes:
        for insn in list(md.disasm(code, address, 24)):
            offset = insn.address - address
            mine = machine._x86_operands(md, code[offset:offset + insn.size], insn.address)
            expected = _binding_operands(insn)
            assert mine is not None and [(o.type, o.reg, o.imm, tuple(o.mem), o.size, o.access, o.avx_bcast,
                                          o.avx_zero_opmask) for o in mine] == expected, hex(insn.address)
            compared += 1
            memory += sum(o[0] == capstone.x86_const.X86_OP_MEM for o in expected)
    assert compared > 5000 and memory > 1000


def _capstone_view(insn) -> tuple:
    ops = [(o.type, insn.reg_name(o.reg) if o.type == capstone.x86_const.X86_OP_REG else None,
            o.imm if o.type == capstone.x86_const.X86_OP_IMM else None,
            (insn.reg_name(o.mem.base) if o.mem.base else None, insn.reg_name(o.mem.index) if o.mem.index else None,
             o.mem.scale, o.mem.disp, o.size) if o.type == capstone.x86_const.X86_OP_MEM else None)
           for o in insn.operands]
    return insn.address, insn.size, insn.mnemonic, ops


@pytest.mark.parametrize("go", ["1.15", "1.27"])
def test_iced_instructions_read_as_capstones(go):
    """The amd64 light path reads the prologue and the morestack tail from iced-x86's decode, as
    Capstone would give them: mnemonic, and every operand's kind, register names, immediate
    (signed where Capstone's is), memory base, index, scale, displacement (RIP-relative ones
    too) and size, on the first instructions of every fourth function and on synthetic tails
    (spills of every width, prefixes Capstone prints)."""
    import iced_x86
    path = FIXTURES / f"go{go}" / "amd64" / "default" / "shapes"
    require_file(path, "fixture binary")
    md = machine._decoder("amd64", True)
    machine._import_iced()
    with GoBinary(path) as binary:
        codes = [(s.address, binary.read_memory(s.address, s.size)) for s in binary.function_symbols[::4] if s.size]
    codes += [(ENTRY, _go_like_body(bytes.fromhex(h))) for h in
              ("f20f114c2410", "0f11442410", "66894c2410", "884c2410", "4c897c2410", "44884c2410",
               "4883ec80", "83c0ff", "3cff", "b8ffffffff", "48b8ffffffffffffffff", "f3c3", "f048ff00")]
    compared = memory = refused = 0
    for address, code in codes:
        for insn, ours in zip(md.disasm(code, address, 24), iced_x86.Decoder(64, code, ip=address)):
            mine = machine._IcedInsn(ours, code, address)
            try:
                mine.operands
            except machine._DecodersDisagree:  # string and far operands: the light path asks Capstone
                refused += 1
                continue
            view = (mine.address, mine.size, mine.mnemonic,
                    [(o.type, mine.reg_name(o.reg) if o.type == capstone.x86_const.X86_OP_REG else None,
                      o.imm if o.type == capstone.x86_const.X86_OP_IMM else None,
                      (mine.reg_name(o.mem.base) if o.mem.base else None,
                       mine.reg_name(o.mem.index) if o.mem.index else None, o.mem.scale, o.mem.disp, o.size)
                      if o.type == capstone.x86_const.X86_OP_MEM else None) for o in mine.operands])
            expected = _capstone_view(insn)
            if view[3] != expected[3] and any(o[0] not in (1, 2, 3) for o in expected[3]):
                continue  # an operand kind the checks never read
            if not insn.mnemonic.startswith("mov"):  # a memory operand's size is read of the tail's stores only
                view, expected = ((a, s, m, [o[:3] + (o[3][:4],) if o[3] else o for o in ops])
                                  for a, s, m, ops in (view, expected))
            assert view == expected, hex(insn.address)
            compared += 1
            memory += sum(o[0] == capstone.x86_const.X86_OP_MEM for o in expected[3])
    assert compared > 5000 and memory > 1000 and refused < compared // 100


@pytest.mark.parametrize("go", ["1.15", "1.27"])
def test_swept_starts_answer_as_the_list_of_starts(go):
    """iced_sweep's starts (made into a list only when one is asked for) say of every address of
    a body, its padding and the bytes around it whether an instruction starts there, and where
    in the list, as the list of Capstone's sweep does; asked twice in a row, the same."""
    path = FIXTURES / f"go{go}" / "amd64" / "default" / "shapes"
    require_file(path, "fixture binary")
    with GoBinary(path) as binary:
        bodies = [(s.address, binary.read_memory(s.address, s.size)) for s in binary.function_symbols[::16] if s.size]
    asked = 0
    for address, code in bodies:
        starts, _ = machine.iced_sweep(code, address)
        expected = _capstone_sweep(code, address)[0]
        for at in range(address - 2, address + len(code) + 2):
            for _ in range(2):
                assert (at in starts) == (at in expected), hex(at)
                if at in expected:
                    assert starts.index(at) == expected.index(at)
                else:
                    with pytest.raises(ValueError):
                        starts.index(at)
            asked += 1
        assert list(starts) == expected and len(starts) == len(expected) and starts[-1] == expected[-1]
    assert asked > 10000


def test_an_encodings_operands_are_the_same_at_another_address():
    """The operands kept per encoding: the same bytes at two addresses read as Capstone reads
    them at each, RIP-relative memory (a displacement, not an address) and direct branches
    (their target moves with them) among them."""
    import iced_x86
    md = machine._decoder("amd64", True)
    machine._import_iced()
    # mov rax, [rip+0x100]; lea rcx, [rip-0x20]; call .+0x1000; jmp .-0x40; mov [rsp+8], rbx; cmp rsp, [r14+16]
    code = bytes.fromhex("488b0500010000" "488d0de0ffffff" "e8fb0f0000" "ebbe" "48895c2408" "493b6610")
    for address in (ENTRY, ENTRY + 0x12345, ENTRY):
        for insn, ours in zip(md.disasm(code, address), iced_x86.Decoder(64, code, ip=address)):
            mine = machine._IcedInsn(ours, code, address)
            view = [(o.type, o.imm if o.type == capstone.x86_const.X86_OP_IMM else None,
                     (mine.reg_name(o.mem.base), o.mem.disp) if o.type == capstone.x86_const.X86_OP_MEM else None)
                    for o in mine.operands]
            expected = [(o.type, o.imm if o.type == capstone.x86_const.X86_OP_IMM else None,
                         (insn.reg_name(o.mem.base), o.mem.disp) if o.type == capstone.x86_const.X86_OP_MEM else None)
                        for o in insn.operands]
            assert view == expected, (hex(address), insn.mnemonic, insn.op_str)
            assert machine._branch_target(mine) == machine._branch_target(insn) or not insn.mnemonic.startswith(("call", "j"))
