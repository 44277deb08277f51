"""Generate the bpftrace program for `dwarfgo probe` / `dwarfgo trace`.

For each function: the computed ABI layout, the machine-code facts (stack check for
the one-event-per-call filter, RET sites for return probes), a read plan per value.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .. import __version__, goexpr
from ..errors import DwarfgoError
from ..goexpr import ArgExpr
from ..verify.evidence import trusted_layout
from ..verify.machine import MachineReport, MorestackCall
from .bpftrace import Program, ProgramWriter, runtime_layout
from .dialect import Dialect
from .identity import PLACEHOLDER
from .plan import PlanBuilder
from .stackcheck import CompileVerdict, compile_verdict

if TYPE_CHECKING:
    from .aggregate import AggregateOptions


@dataclass
class ProbeOptions:
    ret: bool = False
    depth: int = 1
    max_str: int = 64
    max_items: int = 4
    pid: int | None = None
    buffer_pages: int | None = None
    args: list[str] | None = None  # --args expressions; None: every argument; []: none
    filter: list[str] | None = None  # --filter: Go boolean expressions over the arguments (emit/filter.py)
    aggregate: AggregateOptions | None = None  # --count-by, --sum, --hist, --interval (emit/aggregate.py)
    child: bool = False  # run with bpftrace -c: only the command's process (bpftrace 0.17 attaches to all)


def g_expression(prog, fn) -> str | None:
    """Where the running goroutine's g is at function entry."""
    arch = prog.binary.arch
    if arch == "arm64":
        return 'reg("r28")'
    if arch == "amd64":
        if fn.regabi:
            return 'reg("r14")'
        # ABI0: g in thread-local storage at fs:-8; uptr() makes the read go to user memory. Written
        # as pointer arithmetic (one uint64 back): bpftrace 0.27 warns on `fsbase - 8` (a sign cast
        # and an address-space mismatch); 0.17, 0.23 and 0.27 all read the same g this way
        return "*((uint64*)uptr(curtask->thread.fsbase) - 1)"
    return None


# The branch to morestack is NOT taken when these flags say so (x86 EFLAGS: CF bit 0, ZF bit 6;
# arm64 PSTATE: Z bit 30, C bit 29).
_FALLS_THROUGH = {
    "jbe": '(reg("flags") & 0x41) == 0',  # taken if CF=1 or ZF=1
    "b.ls": '(reg("pstate") & 0x60000000) == 0x20000000',  # taken if C=0 or Z=1
}


@dataclass
class EntryPoint:
    address: int
    predicate: str | None  # keep the hit only when this holds (the call proceeds)
    how: str  # one line for the program's comment and for warnings
    warning: str | None = None
    reentry: MorestackCall | None = None  # drop the hit that re-enters after this morestack call


def entry_point(fn, machine: MachineReport | None, g_expr: str | None, dialect: Dialect) -> EntryPoint:
    """Where the entry probe goes and which hits it keeps, so that one call gives one event.

    When the prologue's stack check sends the call to morestack, Go runs it and re-enters the
    function at its entry: a probe there fires twice for one call.

    * With a bpftrace that can probe inside a function: at the stack check's final conditional
      branch. SP and every argument register are still as at entry there (the prologue has only
      loaded g.stackguard0 into a scratch register and compared), the CPU flags say exactly
      whether this pass goes to morestack, and the kernel emulates the branch instead of
      single-stepping it out of line (single-stepping the first instruction lets the kernel
      re-run the breakpoint now and then, seen here under load).
    * Otherwise (bpftrace 0.17, which probes only a function's first instruction): every hit at
      the entry is reported, except the one that re-enters after morestack. A second probe on
      the morestack routine, kept only when its return address is this function's morestack
      call, marks the goroutine; the entry probe drops (and clears) a marked goroutine's next
      hit. Re-evaluating the stack check at the entry instead is wrong both ways: a preemption
      request set after that read sends the call through morestack (two events), and one set
      before it can be consumed by an asynchronous preemption at the prologue's compare, on
      Go <= 1.16, so the call proceeds without re-entering (no event). Measured with 0.17 on
      120,000 calls of fixtures/concurrent: ~0.5% repeated and ~1 in 10,000 lost with the
      re-evaluation, none either way with the marks.
    """
    if machine is None or g_expr is None:
        return EntryPoint(fn.address, None, "at the entry")
    sc = machine.stack_check
    if sc.kind == "none" or sc.tail_address is None:
        return EntryPoint(fn.address, None, "at the entry (no stack check: every hit is a call)")
    if not (machine.morestack_target or "").startswith("runtime.morestack"):
        return EntryPoint(fn.address, None, "at the entry", f"stack check branches to "
                          f"{machine.morestack_target or 'an unknown target'}; a call may be reported twice")
    flags = _FALLS_THROUGH.get(sc.decision or "")
    if (dialect.supports_mid_function_probes and flags and sc.decision_address is not None
            and sc.decision_address in machine.instruction_starts):
        return EntryPoint(sc.decision_address, flags, f"at the stack check's {sc.decision} (+{sc.decision_address - fn.address:#x}), "
                          f"kept when the call proceeds")
    if machine.morestack_call is None:
        return EntryPoint(fn.address, None, "at the entry", "the morestack call was not found: a call may be "
                          "reported twice after stack growth")
    return EntryPoint(fn.address, None, "at the entry, dropping the re-entry after morestack",
                      reentry=machine.morestack_call)


def goid_offset(prog) -> int | None:
    """The offset of the goroutine id in runtime.g: from DWARF, or on a binary with neither DWARF
    nor a twin from runtime.g's type descriptor (the runtime allocates g with it, so every Go
    binary has it, field names and offsets included); None where neither has it. Found once per
    binary (and dwarfgo code), then read from the index cache: modelling runtime.g (some 100
    DIEs through pyelftools) cost ~20 ms of every probe of a new function."""
    return prog.remembered("goid-offset", [], lambda: _goid_offset(prog))


def _goid_offset(prog) -> int | None:
    from ..program import tables_only
    try:
        if tables_only(prog):
            from ..typetables import RuntimeTypeModel
            g = RuntimeTypeModel(prog.binary).lookup("runtime.g")
        else:
            g = prog.type_named("runtime.g")
    except DwarfgoError:
        return None
    for f in g.fields:
        if f.name == "goid" and f.type.size == 8:
            return f.offset
    return None


# printf batch slots tried, in turn, when a program exceeds bpftrace's 512-byte BPF stack (a copy
# takes Dialect.copy_slots, 9, so a printf keeps room for one and a scalar); 24, the default batch,
# first where the program as made read a struct's words at once (Dialect.coalesced_reads: a refitted
# program reads them one at a time)
_FITTING_SLOTS = (24, 20, 16, 12, 10)
# a program is compiled to check its stack only when a probe keeps this many read variables (or
# copies a struct's words: _needs_stack_check): every function of the shapes fixture (up to 105 at
# --depth 4) fits as made, the programs seen over the stack kept 64 to 3,072 (gofmt 1.15's parser.declare and shortVarDecl, gofmt 1.27's
# resolver.declare at --depth 2), and a compile costs bpftrace 0.17 0.3-0.7 s (stackcheck)
_CHECK_FROM_VARIABLES = 24
_READ_VARIABLE = re.compile(r"\$r\d+\b")
# a struct's words read at once into a variable (bpftrace.ProgramWriter._coalesce)
_WORDS_COPY = re.compile(r"\$dgw\d+ = \*\(struct dg_w\d+ \*\)")


def _most_variables_a_probe(text: str) -> int:
    return max((len(set(_READ_VARIABLE.findall(block))) for block in text.split("\nuprobe:")[1:]), default=0)


def _needs_stack_check(text: str) -> bool:
    """Whether bpftrace must compile the program to know that it fits the 512-byte BPF stack: a
    probe keeps _CHECK_FROM_VARIABLES read variables, or the program reads a struct's words at
    once. Such a copy stays on the stack for the whole probe, and what LLVM then keeps
    there does not follow any count: on bpftrace 0.27, Go 1.15 shapes' main.Slices (its argument
    words read at once) exceeded the stack at the default --max-str and fit reading one word at a
    time (before short --max-str values kept the room of 64, Dialect.shortest_copy_room, the demo's
    (*BarrierView).SetReadOnly and Put went over at --max-str 40 to 56 as well)."""
    return _most_variables_a_probe(text) >= _CHECK_FROM_VARIABLES or _WORDS_COPY.search(text) is not None


def generate_fitting(prog, functions, dialect: Dialect, options: ProbeOptions, bpftrace: str | None,
                     reproducing: bool = False) -> Program:
    """generate(), and with the bpftrace at hand: compiled (stackcheck: nothing is loaded), and
    made again with fewer batch slots a printf (Dialect.record_slots, so more output records an
    event) while bpftrace refuses it for its 512-byte stack. Every version needs it: 0.17 builds
    its records on that stack; 0.27 keeps the values waiting for a printf there (cmd/compile
    1.27's (*Block).NewValue3 at --depth 1, 125 read values, went over it with 24 slots and fit
    with 20; 0.23 took it as made). The verdicts are kept in the cache directory unless the
    program was opened without a cache. Without a bpftrace to compile with, a program that would
    read a struct's words at once is made reading one word at a time (what fits follows no count);
    `reproducing` (decode: the program a header's decode command names, as made or with its
    --record-slots) keeps it as made."""
    program = generate(prog, functions, dialect, options)
    if options.aggregate is not None and options.aggregate.any:
        return program
    if bpftrace is None:
        # only generating (--bpftrace-version, no bpftrace to compile with): struct reads only where
        # bpftrace has said they fit; one read a word, as a refitted program reads (Go 1.15 shapes'
        # main.Slices with them went over 0.27's stack at the default --max-str)
        if reproducing or _WORDS_COPY.search(program.text) is None:
            return program
        return generate(prog, functions, replace(dialect, record_slots=_FITTING_SLOTS[0]), options)
    if not _needs_stack_check(program.text):
        return program
    cached = getattr(prog, "cache", None) is not None
    binary = str(prog.binary.path.resolve())
    coalesced = dialect.coalesced_reads > 0
    for slots in (*(_FITTING_SLOTS if coalesced else _FITTING_SLOTS[1:]), None):
        verdict = compile_verdict(bpftrace, dialect, program, binary, cached=cached)
        if verdict is CompileVerdict.FITS:
            return program
        if verdict is CompileVerdict.TOO_LARGE:
            raise too_large(functions, dialect, options.depth)
        if slots is None:
            break
        dialect = replace(dialect, record_slots=slots)
        program = generate(prog, functions, dialect, options)
    raise DwarfgoError(f"the program does not fit bpftrace {dialect.version_text}'s 512-byte BPF stack even with "
                       f"{_FITTING_SLOTS[-1]} values a record: use --args to print fewer values, a lower --depth, "
                       "or fewer functions a program")


def too_large(functions, dialect: Dialect, depth: int, args: bool = True) -> DwarfgoError:
    """The error for a program bpftrace cannot compile for its size (a jump inside a probe
    beyond the 32,767 instructions a BPF jump reaches: cmd/compile 1.27's ConstOffPtrSP at
    --depth 2 with --ret, each RET a probe that reads every result at depth 2)."""
    names = ", ".join(fn.name for fn in functions[:3]) + (", ..." if len(functions) > 3 else "")
    fewer = [f"--depth {depth - 1}"] if depth > 0 else []
    fewer += ["--args to print fewer values"] if args else ["--format raw"]
    return DwarfgoError(f"the program for {names} is too large for bpftrace {dialect.version_text} to compile (a "
                        f"probe's code outgrows the reach of a BPF jump): use {', '.join(fewer)}, "
                        "or fewer functions at once")


def generate(prog, functions, dialect: Dialect, options: ProbeOptions) -> Program:
    # (the filter and aggregate compilers are imported by the programs that may use them: a
    # readable program without --filter reads neither)
    from . import filter as filter_syntax
    from .aggregate import check_aggregates, compile_aggregates
    if options.max_str > dialect.max_strlen:
        raise DwarfgoError(f"--max-str {options.max_str} exceeds bpftrace {dialect.version_text}'s limit of {dialect.max_strlen}")
    attach_flags = _attach_flags(prog, dialect)
    max_str = dialect.raw_copy_limit(options.max_str)
    writer = ProgramWriter(str(prog.binary.path.resolve()), dialect, options.pid, goid_offset(prog),
                           arch=prog.binary.arch, max_str=max_str)
    if max_str < options.max_str:
        writer.warnings.append(f"--max-str {options.max_str}: bpftrace {dialect.version_text} copies at most {max_str} "
                               f"bytes of a string or byte slice here (more overflows its 512-byte BPF stack); "
                               f"each shows its first {max_str} bytes and its length")
    if options.buffer_pages:
        writer.buffer_pages = options.buffer_pages
    writer.child_only = options.child
    if attach_flags:
        writer.attach_delta = attach_delta(prog.binary, [fn.address for fn in functions])
    rt = runtime_layout(prog)
    selections = _selections(functions, options.args, options.ret, dialect)
    filters = filter_syntax.FilterSet.parse(prog, options.filter, functions)
    aggregating = options.aggregate is not None and options.aggregate.any
    if aggregating:
        check_aggregates(options.aggregate, functions, options.ret, dialect)
        if options.args:
            raise DwarfgoError("--args prints each call; with --count-by/--sum/--hist nothing is printed per call")
    for fn in functions:
        layout, machine = trusted_layout(prog, fn)  # no reads where the witnesses contradict each other
        code = filters.code_for(fn, layout, dialect, rt)
        g = g_expression(prog, fn)
        where = entry_point(fn, machine, g, dialect)
        if where.warning:
            writer.warnings.append(f"{fn.name}: {where.warning}")
        if code is not None and options.ret and g is None:
            writer.warnings.append(f"{fn.name}: the goroutine is not known here, so a call's return cannot be "
                                   f"tied to its filter decision: no return is shown")
        if aggregating:
            agg = compile_aggregates(options.aggregate, fn, layout, dialect, prog.binary.ptr_size, rt,
                                     max_str, len(writer.aggregates))
            if agg.plans:
                writer.add_aggregation(fn, agg, g, where.predicate, where.address, where.reentry, code,
                                       machine.ret_sites if machine else [])
            continue
        builder = PlanBuilder(rt, options.depth, max_str, options.max_items, prog.binary.ptr_size)
        try:
            entry = writer.add_entry(fn, layout, machine, builder, g, where.predicate, at=where.address,
                                     selections=selections.entry,
                                     returns=options.ret and dialect.supports_mid_function_probes,
                                     reentry=where.reentry, filter_code=code)
            if options.ret:
                sites = machine.ret_sites if machine else []
                writer.add_returns(fn, layout, sites, builder, g, entry, selections.ret)
        except DwarfgoError as e:
            if selections.entry is None:
                raise
            raise DwarfgoError(f"{e} (in {fn.name})") from None
    if aggregating and options.aggregate.interval:
        writer.interval_block(int(options.aggregate.interval))
    header = (f"// Generated by dwarfgo for {prog.binary.go_version} {prog.binary.arch}, "
              f"bpftrace {dialect.version_text}.\n"
              f"// Identity: {PLACEHOLDER}\n"
              "// Output lines: @dg <tid> <event#> ...; save them with bpftrace's messages, in order\n"
              f"//   (`sudo bpftrace -B none {' '.join(dialect.read_error_flags)} PROGRAM > OUT 2>&1`), and decode them with\n"
              f"//   {_comment_safe(decode_command(prog, functions, dialect, options))} --input OUT\n"
              f"// Run it as `sudo {''.join(f'{k}={v} ' for k, v in writer.run_env.items())}bpftrace "
              f"{' '.join(dialect.read_error_flags + attach_flags)} FILE`.\n"
              f"// {' '.join(dialect.read_error_flags)}: a memory read that fails (page not resident, bad pointer) "
              "is reported; without it, it silently gives zeros.\n")
    if dialect.command_note:  # (the same for every run's options: decode must make the same program)
        header += f"// {dialect.command_note}.\n"
    if "BPFTRACE_MAP_KEYS_MAX" in writer.run_env:
        header += ("// BPFTRACE_MAP_KEYS_MAX: one map entry per goroutine marks the re-entry after morestack, "
                   "so that a call gives one event.\n")
    if attach_flags:
        header += ("// --unsafe: the binary has no symbol table, so bpftrace cannot check that a probe sits on "
                   "an instruction boundary; dwarfgo placed each on an instruction it disassembled. Without a "
                   "symbol table bpftrace reads each attach point's number as a file offset: that is what is "
                   "written.\n")
    for fn in functions:
        header += f"// {fn.address:#x} {_comment_safe(fn.signature())}{table_source(fn)}\n"
    program = writer.render(header + "\n", prog.binary.build_id, __version__)
    program.run_flags = [*program.run_flags, *attach_flags]
    return program


def table_source(fn) -> str:
    """After a signature in a program's header: where it came from, when not from DWARF."""
    label = getattr(fn, "source_label", None)
    return label() if label is not None else ""


def decode_command(prog, functions, dialect: Dialect, options: ProbeOptions) -> str:
    """The `dwarfgo decode` command line that rebuilds this program's decoder."""
    argv = ["dwarfgo", "decode", str(prog.binary.path)] + [fn.name for fn in functions]
    if options.args is not None:
        argv += [a for e in options.args for a in ("-a", e)] if options.args else ["--no-args"]
    if options.ret:
        argv.append("--ret")
    for f in options.filter or []:
        argv += ["--filter", f]
    from .aggregate import AggregateOptions
    agg = options.aggregate or AggregateOptions()
    argv += [a for g in agg.count_by for a in ("--count-by", ",".join(g))]
    argv += [a for e in agg.sums for a in ("--sum", e)] + [a for e in agg.hists for a in ("--hist", e)]
    if agg.interval:
        argv += ["--interval", str(agg.interval)]
    argv += ["--depth", str(options.depth), "--max-str", str(options.max_str), "--max-items",
             str(options.max_items), "--bpftrace-version", dialect.version_text]
    if dialect.record_slots:
        argv += ["--record-slots", str(dialect.record_slots)]
    return " ".join(shlex.quote(a) for a in argv)


def attach_delta(binary, addresses: list[int]) -> int:
    """File offset minus address of the code at `addresses`: bpftrace 0.23-0.27 read the number of
    an attach point as a file offset when the binary has no symbol table (with symbols, as an
    address). All Go code lies in one executable segment."""
    for seg in binary.elf.iter_segments():
        if seg["p_type"] == "PT_LOAD" and seg["p_flags"] & 1:
            start, end = seg["p_vaddr"], seg["p_vaddr"] + seg["p_filesz"]
            if all(start <= a < end for a in addresses):
                return seg["p_offset"] - seg["p_vaddr"]
    raise DwarfgoError(f"{binary.path}: the probed functions are not in one executable segment")


def _attach_flags(prog, dialect: Dialect) -> list[str]:
    """bpftrace flags that attaching to this binary needs. Without a symbol table (-ldflags=-s),
    bpftrace before 0.23 cannot attach by address at all; 0.23+ attaches only with --unsafe (it
    cannot check the instruction boundary itself)."""
    if prog.binary.symbols_from == "symbol table":
        return []
    if not dialect.supports_mid_function_probes:
        raise DwarfgoError(f"bpftrace {dialect.version_text} cannot attach to {prog.binary.path}: it resolves probe "
                           f"addresses through the binary's symbol table, which this binary has not (-ldflags=-s); "
                           f"use bpftrace 0.23 or newer (--bpftrace)")
    return ["--unsafe"]


@dataclass(frozen=True)
class Selections:
    """The `--args` expressions, for each kind of event. An expression rooted at a parameter is
    printed on the call, one rooted at a result on the return."""

    entry: list[ArgExpr] | None  # None: every argument
    ret: list[ArgExpr] | None  # None: every result (no expression names a result)


def _selections(functions, texts: list[str] | None, ret: bool, dialect: Dialect) -> Selections:
    """Parse the `--args` expressions; each must be rooted at a parameter or a result of at least one
    of the probed functions (it is printed for those). A result needs return probes."""
    if texts is None:
        return Selections(None, None)
    exprs = [goexpr.parse(t) for t in texts]
    params, results = set(), set()
    for fn in functions:
        params |= set(fn.names_of([p for p in fn.inputs if not p.is_hidden]))
        results |= set(fn.names_of(fn.results))
    for e in exprs:
        if e.root in params:
            continue
        if e.root not in results:
            raise DwarfgoError(f"--args {e.text}: no probed function has a parameter or result {e.root} "
                               f"(parameters: {', '.join(sorted(params)) or 'none'}; "
                               f"results: {', '.join(sorted(results)) or 'none'})")
        if not ret:
            raise DwarfgoError(f"--args {e.text}: {e.root} is a result, printed on the return event: add --ret")
        if dialect.no_ret_probes:
            raise DwarfgoError(f"--args {e.text}: {e.root} is a result, printed on the return event, but "
                               f"{dialect.no_ret_probes}")
    return Selections(exprs, exprs if any(e.root in results for e in exprs) else None)


def _comment_safe(text: str) -> str:
    """Names from the binary inside a // comment: no newline may end the comment early."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)
