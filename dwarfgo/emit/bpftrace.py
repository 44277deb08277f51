"""Layer 4b: the bpftrace program.

For each traced function: an entry uprobe attached by address (a quoted Go name with
`*` would be a wildcard), which drops the hit that is about to go to morestack (so one
call gives one event), and prints every planned read; with --ret, one uprobe on each
RET instruction reading the results where the ABI leaves them.

Every output line starts with `@dg`, then the thread id and the event's time (<ts>, nsecs at
the probe's start: a thread's events are each a trap apart, so no two share one), so the
decoder can group lines of one event even when CPUs interleave. An event is as few
printfs (output records) as the bpftrace version's record budget allows (Dialect.printf_batch):
one when its values fit, its header riding in front of its first values:

    @dg <tid> <ts> call <probe> <ts> <g> <goid> <pc> <pid> <cpu> : <values or end>
    @dg <tid> <ts> ret <probe> <ts> <g> <site> <latency-ns> <call> <pc> <pid> <cpu> : <values or end>
                                (call: the <ts> of the call it ends, 0 when unknown: with <pid> and
                                <g> it names that call; pc: the probed address at run time)
    @dg <tid> <ts>  call|ret ... <cpu>            the header alone, first, when the event's first
                                                  values would be printed inside an `if`
    @dg <tid> <ts>  <read>[,<read>...] <value>... values (see plan.py) that did not fit the end line;
                                                  a byte copy (%rx: four characters `\\xNN` per byte) is a value
    @dg <tid> <ts>  end <lines> [<read>,... <value>...]
                                                  event complete, with its last values; <lines>
                                                  printed in all, so the decoder knows when
                                                  bpftrace dropped some
    @dg 0 0 attached <identity>                   every probe is attached (see _attach_markers)
    @dg 0 0 identity <identity>                   from the END block: which program this was (identity.py)
    @dg_n: <n>                                    printed by bpftrace at exit: events the probes
                                                  emitted (the decoder counts what is missing)

Only numbers come from dwarfgo into the program; names from the binary stay in the
decoder, so no symbol or type name can change what the program does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..abi.assign import FunctionLayout, Location
from ..errors import DwarfgoError
from ..functions import Function
from ..goexpr import ArgExpr
from ..verify.machine import MachineReport, MorestackCall
from .dialect import Dialect
from .identity import PLACEHOLDER, ProgramIdentity, plan_digest, safe_token
from .plan import (BYTES, ArrayNode, ChanNode, ComplexNode, FuncNode, GuardNode, InterfaceNode, MapNode, Node,
                   PlanBuilder, PointerNode, Read, RuntimeLayout, Scalar, SliceNode, StringNode, StructNode,
                   ValuePlan)

if TYPE_CHECKING:
    from .aggregate import AggregateCode
    from .filter import FilterCode

# characters a path may not have inside bpftrace's quoted attach point: the quote and the escape
# (no escaping there on 0.17, 0.23 or 0.27), wildcards and positional parameters
_UNQUOTABLE = set('"\\*?$')


def quoted_path(path: str) -> str:
    """The binary's path as it goes between the quotes of `uprobe:"PATH":ADDR`; an error when it
    holds a character that would end the quotes or the line (a file named to inject a probe)."""
    bad = sorted({ch for ch in path if ch in _UNQUOTABLE or not ch.isprintable()})
    if bad:
        shown = ", ".join(repr(ch) for ch in bad)
        raise DwarfgoError(f"the binary's path {ascii(path)} holds {shown}, which a bpftrace attach point cannot "
                           f"quote; give the binary a plain name through a hard link (ln BIN /tmp/server), which "
                           f"probes the same file")
    return path


def default_buffer_pages(dialect: Dialect | None = None) -> int:
    """bpftrace's output buffer, in pages (its own default, 64, overflows in a burst).

    Up to 0.22 it is one perf buffer per CPU: 4096 pages each (measured: 2000 concurrent calls
    lost half their events with 1024 pages, none with 4096), less on many CPUs, so that all
    together take at most 256 MiB. From 0.23 it is one BPF ring buffer shared by every CPU (one
    128 MiB mapping for 16384 pages seen in both 0.23 and 0.27): 16384 pages (64 MiB, a power of
    two as a ring buffer needs); 4096 lost 8,844 of 20,000 calls' records in a burst from 8
    goroutines (scripts/bench-trace), 16384 none."""
    if dialect is not None and dialect.shared_output_buffer:
        return 16384
    import os
    cpus = os.cpu_count() or 1
    pages = 4096
    while pages > 256 and pages * 4096 * cpus > (256 << 20):
        pages //= 2
    return pages


# (the probed address, the return address at a function's first instruction) by architecture:
# amd64's CALL pushes it, arm64's BL leaves it in the link register
_ARCH_EXPRESSIONS = {"amd64": ('reg("ip")', '*(uint64*)reg("sp")'), "arm64": ('reg("pc")', 'reg("r30")')}
# goroutines whose re-entry after morestack can be marked at once (bpftrace's default is 4096)
REENTRY_MAP_KEYS = 65536
PERF_RB_PAGES = default_buffer_pages()  # BPFTRACE_PERF_RB_PAGES for versions without a config block


@dataclass(frozen=True)
class _Print:
    """A read's value, printed later: with the event's other values, at its end. A scalar waits
    in its variable `$rK`; a byte copy (kind bytes) is made by the printf itself (`arg`), from
    the variables in `needs` ((index, kind) of its address and length reads)."""
    index: int
    fmt: str
    kind: str
    arg: str = ""
    needs: tuple[tuple[int, str], ...] = ()

    @property
    def printed(self) -> str:
        return self.arg or f"$r{self.index}"

@dataclass(frozen=True)
class _Header:
    """An event's first fields (`call ...` / `ret ...`): printed in front of the event's first
    printf of values (`<header> : <values>`), which is its `end` line when every value fits one."""
    fmt: str
    args: tuple[str, ...]


class _HeaderInBlock(Exception):
    """The event's first printf of values would be inside an `if`: print the header alone."""


# a scalar read of one 8-byte word at a constant offset from a variable or from the stack pointer
# (a stack-ABI function's arguments at entry) (_coalesce)
_WORD_READ = re.compile(r"\$r(\d+) = \*\((int64|uint64)\*\)\((\$r\d+|reg\(\"sp\"\))(?: \+ (\d+))?\);")
_FMT = {"int": "%ld", "uint": "%lu", "bool": "%lu", "hex": "%lx", "f32": "%lx", "f64": "%lx"}
_COPY_OPERAND = re.compile(r"\$r(\d+)")


@dataclass
class ProbePlan:
    """Everything about one probe that the decoder needs."""

    probe_id: int
    function: Function
    kind: str  # "call" or "ret"
    address: int
    values: list[ValuePlan]
    reads: list[Read]
    keep: str | None = None  # the entry probe's predicate: this pass of the prologue proceeds (no morestack)
    ret_sites: list[int] = field(default_factory=list)
    unknown: str | None = None  # why no value of this probe could be located
    attach_address: int | None = None  # entry probe: where it is attached (the link-time address)
    selected: bool = False  # the values are `--args` expressions (named by their text), not every value
    filtered: bool = False  # entry probe: only calls that pass --filter print (its return probes: their returns)


@dataclass
class Program:
    text: str
    probes: list[ProbePlan]
    warnings: list[str]
    # program line (1-based) -> (probe id, read index, ...) done on it (several: a struct's words
    # read at once, ProgramWriter._coalesce): bpftrace's failed-read warnings name the line
    read_lines: dict[int, tuple[int, ...]] = field(default_factory=dict)
    run_flags: list[str] = field(default_factory=list)  # bpftrace flags the decoder relies on
    run_env: dict[str, str] = field(default_factory=dict)  # environment bpftrace needs for it
    buffer_pages: int | None = None  # the output buffer the program asks for (BPFTRACE_PERF_RB_PAGES too)
    identity: ProgramIdentity | None = None  # what its output says about it, for decode's check
    aggregates: list = field(default_factory=list)  # AggregatePlan of each map (aggregate.py)
    # (program line, column) -> (probe id, read index) of each byte copy, made inside a printf
    read_spots: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    # (probe id, read index) of the reads done before their event's first record
    early_reads: set[tuple[int, int]] = field(default_factory=set)


class ProgramWriter:
    def __init__(self, binary_path: str, dialect: Dialect, pid: int | None = None, goid_offset: int | None = None,
                 buffer_pages: int | None = None, arch: str = "amd64", max_str: int = 64):
        self.binary_path = binary_path
        self.quoted_path = quoted_path(binary_path)
        # pc: the probed instruction's run-time address (minus the attach address, the load bias,
        # non-zero for PIE, which code and type addresses read from the process need); and at the
        # first instruction of a function, the address it will return to
        self.pc, self.return_address = _ARCH_EXPRESSIONS.get(arch, _ARCH_EXPRESSIONS["amd64"])
        self.buffer_pages = buffer_pages or default_buffer_pages(dialect)
        self.max_str = max_str  # bytes of the longest byte copy (sizes each copy's output record)
        self.goid_offset = goid_offset
        self.dialect = dialect
        self.pid = pid
        self.blocks: list[str] = []
        self.probes: list[ProbePlan] = []
        self.warnings: list[str] = []
        self.run_env: dict[str, str] = {}  # environment bpftrace needs for this program
        self.child_only = False  # run with -c: only the command's process (pid == cpid)
        self.aggregates: list = []  # AggregatePlan of each map (aggregate.py), in index order
        # added to a code address in an attach point: bpftrace takes the number of `uprobe:PATH:N`
        # as a file offset when the binary has no symbol table (see probe.attach_delta)
        self.attach_delta = 0
        self.word_structs: set[int] = set()  # N of each `struct dg_wN` the probes copy into (_coalesce)
        self.probed_at = 0  # link address of the instruction the probe being written is attached to

    # ------------------------------------------------------------- helpers
    def _attach(self, address: int) -> str:
        # quoted: a path may hold `:`, spaces, braces (checked by quoted_path, which refuses what
        # a quoted attach point cannot hold)
        return f'uprobe:"{self.quoted_path}":{address + self.attach_delta:#x}'

    def _predicate(self, extra: str | None) -> str:
        conds = []
        if self.pid is not None:
            conds.append(f"pid == {int(self.pid)}")
        elif self.child_only:
            # bpftrace 0.17 attaches a -c run's uprobes to every process of the binary (0.23+
            # to the command's only): measured, events of ~150 other processes came through
            conds.append("pid == cpid")
        if extra:
            conds.append(extra)
        return f" /{' && '.join(f'({c})' for c in conds)}/" if conds else ""

    @staticmethod
    def _line(seq_var: str, rest_fmt: str, args: list[str]) -> str:
        fmt = "@dg %d %lu " + rest_fmt + "\\n"
        return f'printf("{fmt}", ' + ", ".join(["tid", seq_var] + args) + ");"

    # ------------------------------------------------------------- entry
    def add_entry(self, fn: Function, layout: FunctionLayout, machine: MachineReport | None, builder: PlanBuilder,
                  g_expr: str | None, keep: str | None, at: int | None = None,
                  selections: list[ArgExpr] | None = None, returns: bool = True,
                  reentry: MorestackCall | None = None, filter_code: FilterCode | None = None) -> ProbePlan:
        """The entry probe. `selections`: the `--args` expressions to print (those rooted at a
        parameter of this function); None prints every argument. `filter_code`: the call is
        printed (and numbered: a filtered-out call is not a lost event) only when it holds; with
        returns, a filtered-out call's key is marked 0 so that its return prints nothing either."""
        builder.reads = []
        shown = [loc for loc in layout.inputs if not loc.param.is_hidden]
        values = _values(builder, fn, shown, selections, layout.unknown)
        probe = ProbePlan(len(self.probes), fn, "call", fn.address, values, builder.reads, keep,
                          unknown=layout.unknown, attach_address=at if at is not None else fn.address,
                          selected=selections is not None)
        self.probes.append(probe)
        body = [f"// dg probe {probe.probe_id}"] + self._event_start(g_expr) + [
            *goid_statements(g_expr, self.goid_offset),
            _Header(f"call {probe.probe_id} %lu %lx %ld %lx %lu %d",
                    ("$ts", "$g", "$goid", self.pc, "(uint64)pid", "cpu")),
        ]
        if g_expr and returns:  # for the return probes: the call this return ends (its time: latency)
            body.append(f"@dg_start[{_call_key(probe)}] = $ts;")
        self.probed_at = probe.attach_address
        for v in values:
            body += self._node(v.node, "$ts")
        body = self._pack(self._coalesce(body), "$ts")
        if filter_code is not None:
            probe.filtered = True
            body = filter_code.statements + [f"if ({filter_code.condition}) {{", *body]
            if g_expr and returns:
                body += ["} else {", f"$gk = {_u64(g_expr)};", f"@dg_start[pid, $gk, {probe.probe_id}] = 0;"]
            body.append("}")
        if reentry is not None and g_expr:
            body = self._unless_reentry(probe, reentry, g_expr, body)
        self.blocks.append(self._block(self._attach(at if at is not None else fn.address), keep, body))
        return probe

    def add_aggregation(self, fn: Function, code: "AggregateCode", g_expr: str | None, keep: str | None,
                        at: int, reentry: MorestackCall | None, filter_code: FilterCode | None,
                        ret_sites: list[int]) -> None:
        """An entry probe that only updates maps (aggregate.py), no event; with a latency
        histogram, return probes that add each call's latency (kept calls only: a filtered-out
        call's start is 0)."""
        self.aggregates += code.plans
        key = f"pid, $g, {len(self.aggregates)}"
        body = list(code.statements)
        if code.latency is not None:
            if not g_expr:
                raise DwarfgoError(f"{fn.name}: the goroutine is not known here: no latency")
            body += [f"$g = {_u64(g_expr)};", f"@dg_start[{key}] = nsecs;"]
        if filter_code is not None:
            body = filter_code.statements + [f"if ({filter_code.condition}) {{", *body]
            if code.latency is not None:
                body += ["} else {", f"$g = {_u64(g_expr)};", f"@dg_start[{key}] = 0;"]
            body.append("}")
        if reentry is not None and g_expr:
            body = self._unless_reentry(ProbePlan(len(self.aggregates) + 10000, fn, "call", fn.address, [], []),
                                        reentry, g_expr, body)
        self.blocks.append(self._block(self._attach(at), keep, body))
        if code.latency is None:
            return
        if self.dialect.no_ret_probes:
            raise DwarfgoError(f"--hist latency: {self.dialect.no_ret_probes}")
        if not ret_sites:
            raise DwarfgoError(f"{fn.name}: no RET instruction found: no latency")
        for site in ret_sites:
            self.blocks.append(self._block(self._attach(site), None, [
                f"$g = {_u64(g_expr)};",
                f"$t0 = @dg_start[{key}];",
                "if ($t0 > 0) {",
                f"{code.latency.map_name} = hist((int64)nsecs - (int64)$t0);",
                "}",
                self._delete(f"@dg_start[{key}]"),
            ]))

    def interval_block(self, seconds: int) -> None:
        """Every `seconds`: a marker line, then every aggregation map as it stands (bpftrace's own
        format, which runner/aggregates.py reads); the maps keep accumulating."""
        prints = [f"print({m});" for p in self.aggregates
                  for m in ((p.map_name,) if p.expr == "latency" else (p.map_name, p.unreached_map))]
        self.blocks.append(f"interval:s:{int(seconds)}\n{{\n\tprintf(\"@dg 0 0 interval\\n\");\n"
                           + "".join(f"\t{line}\n" for line in prints) + "}\n")

    def _unless_reentry(self, probe: ProbePlan, call: MorestackCall, g_expr: str, body: list[str]) -> list[str]:
        """Drop the entry hit that re-enters after the prologue's morestack call: a probe on the
        morestack routine marks the goroutine when called from this function's prologue (its
        return address is the instruction after that call; compared relative to the probed
        address, so a PIE's load bias cancels out), and the entry probe skips a marked
        goroutine's next hit and clears the mark. The entry probe writes the goroutine's entry
        on every hit, so a map lookup finds it (bpftrace -kk reports each lookup of a missing
        key) and the map holds one entry per goroutine that calls a traced function. Goroutines are
        keyed with their process: two processes of one binary have g structures at the same
        addresses."""
        mark = probe.probe_id + 1
        delta = call.return_address - call.target
        expected = f"{self.pc} + {delta:#x}" if delta >= 0 else f"{self.pc} - {-delta:#x}"
        self.blocks.append(self._block(self._attach(call.target), f"{self.return_address} == {expected}",
                                       [f"@dg_reenter[pid, {_u64(g_expr)}] = {mark};"]))
        self.run_env["BPFTRACE_MAP_KEYS_MAX"] = str(REENTRY_MAP_KEYS)
        return [f"$g0 = {_u64(g_expr)};",
                "$again = @dg_reenter[pid, $g0];",
                "@dg_reenter[pid, $g0] = 0;",
                f"if ($again != {mark}) {{", *body, "}"]

    def add_returns(self, fn: Function, layout: FunctionLayout, sites: list[int], builder: PlanBuilder,
                    g_expr: str | None, entry_probe: ProbePlan,
                    selections: list[ArgExpr] | None = None) -> ProbePlan | None:
        """One probe on each RET, reading the results where the ABI leaves them. `selections`: the
        `--args` expressions to print (those rooted at a result of this function); None prints
        every result."""
        if not sites:
            self.warnings.append(f"{fn.name}: no RET instruction found; no return probe")
            return None
        if self.dialect.no_ret_probes:
            self.warnings.append(f"{fn.name}: results are not traced: {self.dialect.no_ret_probes}")
            return None
        builder.reads = []
        values = _values(builder, fn, layout.results, selections, layout.unknown)
        probe = ProbePlan(len(self.probes), fn, "ret", fn.address, values, builder.reads, None, sites,
                          unknown=layout.unknown, selected=selections is not None)
        self.probes.append(probe)
        key = _call_key(entry_probe)
        for site in sites:
            body = [f"// dg probe {probe.probe_id}"] + self._event_start(g_expr) + [
                f"$t0 = @dg_start[{key}];",
                self._delete(f"@dg_start[{key}]"),
                # a difference is signed in bpftrace 0.27 (it warns on unsigned operands): say so
                _Header(f"ret {probe.probe_id} %lu %lx {site:#x} %ld %lu %lx %lu %d",
                        ("$ts", "$g", "($t0 > 0 ? (int64)$ts - (int64)$t0 : (int64)0)", "$t0", self.pc,
                         "(uint64)pid", "cpu")),
            ]
            self.probed_at = site
            for v in values:
                body += self._node(v.node, "$ts")
            body = self._pack(self._coalesce(body), "$ts")
            if entry_probe.filtered:  # only the returns of calls that passed (marked at entry)
                probe.filtered = True
                gk = f"pid, $gk, {entry_probe.probe_id}"
                body = [f"$gk = {_u64(g_expr or '0')};", f"$keep = @dg_start[{gk}];", "if ($keep != 0) {", *body,
                        "} else {", self._delete(f"@dg_start[{gk}]"), "}"]
            self.blocks.append(self._block(self._attach(site), None, body))
        return probe

    def _delete(self, element: str) -> str:
        """delete() of a map element; bpftrace 0.27 warns when its result is discarded, 0.23 refuses
        to assign it."""
        return f"$deleted = delete({element});" if self.dialect.version >= (0, 27, 0) else f"delete({element});"

    @staticmethod
    def _event_start(g_expr: str | None) -> list[str]:
        """Every event: counted in @dg_n (count(): without a key a per-CPU array that the program
        only adds to, with no lock and no lookup of the thread; bpftrace prints the sum at exit,
        which tells the decoder how many events never reached it), its time, which with the
        thread names the event on each of its lines (a thread's events cannot share a
        nanosecond: each is a trap apart), and the goroutine (g) pointer. Was a per-thread
        number in a hash map (@dg_seq[tid], a lookup and an update with the bucket's lock), and
        a return found its call through a second map (@dg_call): main.Hot of scripts/bench-trace,
        old and new programs alternating in one run (5 rounds, medians), cost 1.37x -> 1.32x a
        bare uprobe on 0.27, and with --ret 1.40x -> 1.24x the bare entry and RET probes; on 0.17
        no change shows (1.8-2.0x either way: there a probe that prints only a constant already
        costs 1.8-1.9x, each perf-buffer record waking bpftrace)."""
        return [
            "@dg_n = count();",
            "$ts = nsecs;",
            f"$g = {_u64(g_expr or '0')};",
        ]

    def _block(self, attach: str, cond: str | None, body: list[str]) -> str:
        return attach + self._predicate(cond) + "\n{\n" + "\n".join("\t" + line for line in _indent(body)) + "\n}\n"

    # ------------------------------------------------------------- values
    def _read(self, r: Read, seq: str) -> list:
        if r.kind == BYTES:
            # made by the printf that prints it, beside other values; the address and length are
            # printed reads ($rK), zero when their block did not run (a length of 0 reads no
            # memory). No `addr != 0 ?` guard around the clamp: bpftrace 0.23 crashes on that
            # nested conditional in buf() (a nil address with a length fails to read: unavailable)
            needs = tuple((int(k), "hex" if i == 0 else "int")
                          for i, k in enumerate(_COPY_OPERAND.findall(f"{r.expr} {r.length}")))
            return [_Print(r.index, "%rx", BYTES, f"buf({r.expr}, {r.length})", needs)]
        # the print itself is batched with its neighbours by _pack
        return [f"$r{r.index} = {_as_printed(r)};", _Print(r.index, _FMT[r.kind], r.kind)]

    def _coalesce(self, body: list) -> list:
        """Consecutive 8-byte reads of one block at consecutive offsets from one base (a struct's
        words: main.Hot's item.ID, item.Name's pointer and length; a stack-ABI function's
        argument words at the stack pointer) made by one memory read of
        them all into a `struct dg_wN` variable, each read then taking its word from it
        (Dialect.coalesced_reads). The struct copy's line names every read it makes (_read_lines),
        so a failure there marks each of them unavailable."""
        limit = self.dialect.coalesced_reads
        if not limit:
            return body
        out: list = []
        run: list[tuple[int, str, int, str, int]] = []  # (position in out, base, offset, type, read index)

        def close() -> None:
            if len(run) >= 2:
                first, base, offset, _, index = run[0]
                var = f"$dgw{index}"
                self.word_structs.add(len(run))
                for k, (at, _, _, ctype, i) in enumerate(run):
                    word = f"{var}.w{k}"
                    out[at] = f"$r{i} = {'(int64)' + word if ctype == 'int64' else word};"
                where = f"{base} + {offset}" if offset else base
                out.insert(first, f"{var} = *(struct dg_w{len(run)} *)({where});")
            run.clear()

        for item in body:
            m = _WORD_READ.fullmatch(item) if isinstance(item, str) else None
            if m is None:
                if not isinstance(item, _Print):
                    close()
                out.append(item)
                continue
            index, ctype, base, offset = int(m.group(1)), m.group(2), m.group(3), int(m.group(4) or 0)
            if run and not (base == run[-1][1] and offset == run[-1][2] + 8 and index == run[-1][4] + 1
                            and len(run) < limit):
                close()
            run.append((len(out), base, offset, ctype, index))
            out.append(item)
        close()
        return out

    def _pack(self, body: list, seq: str) -> list[str]:
        """Few output records per event: the event's header rides on its first printf of values,
        values are printed `batch` slots to a printf (a scalar takes one, a byte copy
        Dialect.copy_slots), and the event's last values ride on its `end` line: an event whose
        values fit one printf is one record.

        A value read inside an `if` (behind a nil check, a length check) is printed in that block
        once the block has a full batch; what is left when the block closes is printed by the
        enclosing block, its variables set to a typed zero before the `if` so that they exist
        there (the decoder looks at it only when the same condition holds; a byte copy whose
        block did not run copies nothing). Values wait at most one batch per block, which bounds
        the variables alive at once (the BPF stack is 512 bytes). When a printf would come first
        inside an `if`, the header is printed alone where it stands (every event prints it).

        The `$n` printfs of the event before its end line are counted: the end line prints how
        many lines the event has, so the decoder knows when bpftrace dropped some.

        An event whose values all fit one printf of Dialect.one_record_batch slots at the top
        level (no printf inside an `if`) is that one record."""
        if self.dialect.one_record_batch > self.dialect.printf_batch:
            try:
                # a batch more: the top level keeps a batch less one waiting for the end line
                one = self._pack_values(body, seq, merge_header=True, batch=self.dialect.one_record_batch + 1)
            except _HeaderInBlock:
                one = []
            if sum(1 for s in one if s.startswith("printf(")) == 1:
                return one
        try:
            return self._pack_values(body, seq, merge_header=True)
        except _HeaderInBlock:
            return self._pack_values(body, seq, merge_header=False)

    def _pack_values(self, body: list, seq: str, merge_header: bool, batch: int | None = None) -> list[str]:
        batch = batch or self.dialect.printf_batch
        copy_slots = self.dialect.copy_slots
        out: list[str] = []
        frames: list[tuple[int, list[_Print]]] = [(-1, [])]  # (index of the block's `if` line, waiting)
        header: list[_Header] = []

        def line(fmt: str, args: list[str]) -> str:
            """A printf of values; the event's first also carries its header."""
            if header:
                if len(frames) > 1:
                    raise _HeaderInBlock()
                h = header.pop()
                return self._line(seq, f"{h.fmt} : {fmt}", [*h.args, *args])
            return self._line(seq, fmt, args)

        def slots(p: _Print) -> int:
            """Room in a printf's record."""
            return copy_slots if p.kind == BYTES else 1

        def variables(p: _Print) -> int:
            """Variables kept alive while waiting: a scalar's own; a copy's address and length."""
            return 2 if p.kind == BYTES else 1

        def take(waiting: list[_Print]) -> list[_Print]:
            """The longest prefix of `waiting` that fits one printf (at least one value)."""
            used, n = 0, 0
            for p in waiting:
                if n and used + slots(p) > batch:
                    break
                used += slots(p)
                n += 1
            part, waiting[:] = waiting[:n], waiting[n:]
            return part

        def flush(waiting: list[_Print], room: int, alive: int) -> None:
            """Print batches while the waiting values need more than `room` slots of a record or
            keep more than `alive` variables."""
            while waiting and (sum(slots(p) for p in waiting) > room or sum(variables(p) for p in waiting) > alive):
                part = take(waiting)
                out.append(line(f"{','.join(str(p.index) for p in part)} {' '.join(p.fmt for p in part)}",
                                [p.printed for p in part]))
                out.append("$n = $n + 1;")

        def settle() -> None:
            """A batch less one at the top; inside an `if`, at most Dialect.nested_batch variables
            (the blocks around it keep theirs alive at the same time)."""
            nested = len(frames) > 1
            flush(frames[-1][1], batch - 1, self.dialect.nested_batch if nested else batch - 1)

        for item in body:
            if isinstance(item, _Header):
                if merge_header:
                    header.append(item)
                    out.append("$n = 0;")
                else:
                    out += [self._line(seq, item.fmt, list(item.args)), "$n = 1;"]
            elif isinstance(item, _Print):
                frames[-1][1].append(item)
                settle()
            elif item == "}":
                at, left = frames.pop()
                out.append(item)
                declare = {}
                for p in left:
                    if p.kind == BYTES:
                        declare.update({k: kind for k, kind in p.needs})
                    else:
                        declare[p.index] = p.kind
                out[at:at] = [f"$r{k} = {_ZERO[kind]};" for k, kind in declare.items()]
                frames[-1][1].extend(left)
                settle()
            elif item.endswith("{"):
                frames.append((len(out), []))
                out.append(item)
            else:
                out.append(item)
        last = frames[0][1]
        flush(last, batch, batch)
        idx = ",".join(str(p.index) for p in last)
        fmt = " ".join(p.fmt for p in last)
        out.append(line(f"end %ld {idx} {fmt}".rstrip(), ["$n + 1"] + [p.printed for p in last]))
        return out

    def _node(self, node: Node, seq: str) -> list[str]:
        out: list[str] = []
        if isinstance(node, Scalar):
            if node.read:
                out += self._read(node.read, seq)
        elif isinstance(node, ComplexNode):
            for part in (node.real, node.imag):
                out += self._node(part, seq)
        elif isinstance(node, StringNode):
            if node.ptr:
                out += self._read(node.ptr, seq) + self._read(node.len, seq) + self._read(node.data, seq)
        elif isinstance(node, SliceNode):
            if node.ptr:
                out += self._read(node.ptr, seq) + self._read(node.len, seq) + self._read(node.cap, seq)
                if node.data:
                    out += self._read(node.data, seq)
                if node.items:
                    out.append(f"if ($r{node.ptr.index} != 0) {{")
                    for i, item in enumerate(node.items):
                        out.append(f"if ($r{node.len.index} > {i}) {{")
                        out += self._node(item, seq)
                        out.append("}")
                    out.append("}")
        elif isinstance(node, ArrayNode):
            for item in node.items:
                out += self._node(item, seq)
        elif isinstance(node, StructNode):
            for _, f in node.fields:
                out += self._node(f, seq)
        elif isinstance(node, PointerNode):
            if node.ptr:
                out += self._read(node.ptr, seq)
                if node.target is not None:
                    inner = self._node(node.target, seq)
                    if inner:
                        out += [f"if ($r{node.ptr.index} != 0) {{"] + inner + ["}"]
        elif isinstance(node, GuardNode):
            if node.check:
                if node.base is not None:
                    out += self._read(node.base, seq)
                out += self._read(node.check, seq)
                inner = self._node(node.target, seq) if node.target is not None else []
                if inner:
                    out += [f"if ($r{node.check.index} > {node.minimum}) {{"] + inner + ["}"]
        elif isinstance(node, InterfaceNode):
            if node.tab:
                out += self._read(node.tab, seq)
                if node.type_ptr:
                    out += self._follow_itab(node) + self._read(node.type_ptr, seq) + ["}"]
                out += self._read(node.data, seq)
        elif isinstance(node, (MapNode, ChanNode, FuncNode)):
            if node.ptr:
                out += self._read(node.ptr, seq)
                inner = []
                for r in ([node.count] if isinstance(node, MapNode) else
                          [node.len, node.cap] if isinstance(node, ChanNode) else [node.code]):
                    if r is not None:
                        inner += self._read(r, seq)
                if inner:
                    out += [f"if ($r{node.ptr.index} != 0) {{"] + inner + ["}"]
        return out

    def _follow_itab(self, node: InterfaceNode) -> list[str]:
        """The `if` under which the probe reads a non-empty interface's type word from its itab: the
        itab is not nil, and not one of the binary's static itabs, whose type word the decoder
        takes from the file (plan.StaticItabs). Most itabs are static (every conversion the
        compiler sees); that read was one of main.Hot's five memory reads (scripts/bench-trace),
        about 150 ns of the traced thread (its probe timed inside on 0.27: 968 -> 814 ns). In a
        PIE the itab's link address is its address less the load bias, the probed instruction's
        address less its link address."""
        tab = f"$r{node.tab.index}"
        s = node.static_itabs
        if s is None:
            return [f"if ({tab} != 0) {{"]
        out = []
        if s.relocated:
            link = f"$dgl{node.tab.index}"
            out.append(f"{link} = {tab} - ({self.pc} - {self.probed_at:#x});")
        else:
            link = tab
        return out + [f"if ({tab} != 0 && ({link} < {s.first:#x} || {link} > {s.last:#x})) {{"]

    def render(self, header: str = "", build_id: str | None = None, version: str = "?") -> Program:
        """The program; its attach marker and END block print its identity (identity.py), made of
        the plan digest, the binary's `build_id` and dwarfgo's `version`; `header` may hold the
        identity's text as PLACEHOLDER (for its comment)."""
        config = _config_block(self.dialect, self.buffer_pages, self.max_str)
        first, last = _attach_markers()
        words = "".join(f"struct dg_w{n} {{ {' '.join(f'unsigned long w{k};' for k in range(n))} }}\n"
                        for n in sorted(self.word_structs))
        text = header + words + config + first + "\n".join(self.blocks) + "\n" + last
        text += _end_block(text)
        read_lines = _read_lines(text)  # the identity fills one line in place: the numbers stay
        read_spots = _read_spots(text)
        early_reads = _early_reads(text)
        identity = ProgramIdentity(plan_digest([self.probes, self.aggregates], read_lines, read_spots,
                                               early_reads), safe_token(build_id), safe_token(version))
        text = text.replace(PLACEHOLDER, identity.text)
        return Program(text, self.probes, self.warnings, read_lines, self.dialect.read_error_flags,
                       dict(self.run_env), self.buffer_pages, identity, list(self.aggregates), read_spots,
                       early_reads)


def _config_block(dialect: Dialect, buffer_pages: int, max_str: int) -> str:
    """bpftrace's settings in the program (0.19+): a bigger output buffer (bursts from many
    goroutines overflow bpftrace's default 64 pages), and byte copies that take the room of
    --max-str in a record, not 1 KiB (Dialect.copy_record_size)."""
    if not dialect.config_block:
        return ""
    settings = [f"perf_rb_pages = {buffer_pages}"]
    strlen = dialect.copy_record_size(max_str)
    if strlen is not None:
        settings.append(f"max_strlen = {strlen}")
    return "config = {\n" + ";\n".join(f"\t{s}" for s in settings) + "\n}\n\n"


# the type every printed scalar variable has, and its zero (a variable keeps one type in bpftrace)
_ZERO = {"int": "(int64)0", "uint": "(uint64)0", "bool": "(uint64)0", "hex": "(uint64)0", "f32": "(uint64)0",
         "f64": "(uint64)0"}


def _as_printed(r: Read) -> str:
    """A scalar read's expression as the 64-bit value that is printed (see _ZERO)."""
    if r.kind == "int":
        return _cast(r.expr, "int64")
    return _u64(r.expr)


def _cast(expr: str, ctype: str) -> str:
    """`expr` as `ctype`: cast unless it already is one (bpftrace 0.27 warns on an unnecessary cast):
    a load `*(ctype*)(...)` or a cast `(ctype)...` of one operand."""
    if _whole(expr, f"*({ctype}*)(") or _whole(expr, f"*({ctype}*)uptr(") or re.fullmatch(rf'\({ctype}\)(reg\("\w+"\)|\$\w+)', expr):
        return expr
    return f"({ctype})({expr})"


def _whole(expr: str, prefix: str) -> bool:
    """`expr` is `prefix` + one parenthesised operand to its end (prefix ends with '(')."""
    if not (expr.startswith(prefix) and expr.endswith(")")):
        return False
    depth = 0
    for i, ch in enumerate(expr[len(prefix) - 1:], len(prefix) - 1):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0:
            return i == len(expr) - 1
    return False


def _u64(expr: str) -> str:
    """`expr` as a uint64: cast unless it already is one (bpftrace 0.27 warns on an unnecessary cast):
    a register, or one 8-byte load `*(uint64*)(...)`."""
    if re.fullmatch(r'reg\("\w+"\)', expr) or (expr.startswith("*((uint64*)") and _whole(expr, "*(")):
        return expr  # a register, or a load through a uint64 pointer expression
    m = re.fullmatch(r'\(uint64\)(reg\("\w+"\))', expr)
    if m:  # reg() is already a uint64 in every version
        return m.group(1)
    return _cast(expr, "uint64")


def _attach_markers() -> tuple[str, str]:
    """Two timer probes, the program's first and last: the one that fires when the other already has
    prints `attached`. BEGIN cannot say it: bpftrace 0.17 runs BEGIN before it attaches the other
    probes, which it then attaches in reverse program order (a traced process resumed at BEGIN lost
    its first calls). Whatever the order, the second marker to fire was attached after every probe
    between them."""
    def marker(me: str, other: str) -> str:
        return (f"interval:ms:{_MARKER_MS}\n/@{me} == 0/\n{{\n\t@{me} = 1;\n"
                f"\tif (@{other} == 1) {{\n\t\tprintf(\"@dg 0 0 attached {PLACEHOLDER}\\n\");\n\t}}\n}}\n\n")
    return marker("dg_live_first", "dg_live_last"), marker("dg_live_last", "dg_live_first")


_MARKER_MS = 20
# At exit bpftrace prints every map: only @dg_n is wanted (the count of events the probes emitted,
# which tells the decoder how many never reached it); the rest is cleared first.
def _end_block(text: str) -> str:
    maps = ["@dg_live_first", "@dg_live_last"] + [m for m in ("@dg_reenter", "@dg_start")
                                                  if m + "[" in text]
    return ("END\n{\n" + "".join(f"\tclear({m});\n" for m in maps) +
            f"\tprintf(\"@dg 0 0 identity {PLACEHOLDER}\\n\");\n}}\n")


def _call_key(entry_probe: ProbePlan) -> str:
    """The key of a call awaiting its return: the goroutine, with its process (two processes of
    one binary can have g structures at the same address), and the function's entry probe."""
    return f"pid, $g, {entry_probe.probe_id}"


def _values(builder: PlanBuilder, fn: Function, locs: list[Location], selections: list[ArgExpr] | None,
            unknown: str | None) -> list[ValuePlan]:
    """The plans of the values at `locs` (parameters, or results): every one (selections None), or
    the `--args` expressions rooted at one of them, by any name `--args` accepts for it."""
    if selections is None:
        names = fn.display_names()
        return [builder.value(loc, names.get(id(loc.param)), unknown=unknown) for loc in locs]
    loc_of = {id(loc.param): loc for loc in locs}
    by_name = {name: loc_of[id(p)] for name, p in fn.names_of([loc.param for loc in locs]).items()}
    return [builder.selection(e, by_name[e.root], unknown=unknown) for e in selections if e.root in by_name]


def _read_lines(text: str) -> dict[int, tuple[int, ...]]:
    """Which reads each line of the program does, as (probe id, read index, ...): `$rK = <expr>;`
    reads K; `$dgwK = *(struct dg_wN *)(...)` reads K to K+N-1 (_coalesce). (Byte copies are made
    inside printfs, beside other values: _read_spots.)"""
    out = {}
    for number, probe, line, _ in _block_lines(text):
        reads = _reads_of_line(line)
        if reads:
            out[number] = (probe, *reads)
    return out


_WORDS_LINE = re.compile(r"\$dgw(\d+) = \*\(struct dg_w(\d+) \*\)")


def _reads_of_line(line: str) -> tuple[int, ...]:
    """The read indices a program line makes (see _read_lines)."""
    m = re.match(r"\$r(\d+) = ", line.strip())
    if m:
        return (int(m.group(1)),)
    m = _WORDS_LINE.match(line.strip())
    if m:
        first = int(m.group(1))
        return tuple(range(first, first + int(m.group(2))))
    return ()


_VALUE_PRINTF = re.compile(r'printf\("@dg %d %lu (?:(?:call|ret) [^"]*? : )?(?:end %ld )?([\d,]+) ([^"]*?)\\n"')


def _read_spots(text: str) -> dict[tuple[int, int], tuple[int, int]]:
    """Where each byte copy is made, as (program line, column) -> (probe id, read index): a copy is
    a `buf()` argument of a printf that may hold several, and bpftrace's failed-read warning names
    the column where the `buf(` begins (1-based, a tab counting one)."""
    out = {}
    for number, probe, line, _ in _block_lines(text):
        m = _VALUE_PRINTF.search(line)
        if not m or "buf(" not in line:
            continue
        copies = [int(k) for k, fmt in zip(m.group(1).split(","), m.group(2).split(" ")) if fmt == "%rx"]
        columns = [c.start() + 1 for c in re.finditer(r"\bbuf\(", line)]
        if len(copies) != len(columns):
            raise AssertionError(f"program line {number}: {len(columns)} buf() for {len(copies)} copies")
        for column, index in zip(columns, copies):
            out[(number, column)] = (probe, index)
    return out


def _early_reads(text: str) -> set[tuple[int, int]]:
    """(probe id, read index) of the reads done before their event's first output record (the
    copies made by that record too): a failure of one is reported before any line of its event
    (see runner/decode.py, Decoder._read_failed)."""
    spots = _read_spots(text)
    out = set()
    for number, probe, line, early in _block_lines(text):
        if not early:
            continue
        for index in _reads_of_line(line):
            out.add((probe, index))
        out.update(where for (n, _), where in spots.items() if n == number)
    return out


def _block_lines(text: str):
    """(line number, probe id, line, early) of each line of an event probe's block: the block
    names its probe in a `// dg probe N` comment; `early` until its first printf of the event
    (that printf's line included)."""
    probe, early = None, False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("uprobe:"):
            probe = None
            continue
        m = re.fullmatch(r"// dg probe (\d+)", stripped)
        if m:
            probe, early = int(m.group(1)), True
            continue
        if probe is not None:
            yield number, probe, line, early
            if stripped.startswith('printf("@dg %d %lu '):
                early = False


def goid_statements(g_expr: str | None, goid_offset: int | None) -> list[str]:
    """$goid: the goroutine id read from $g, or -1. An `if`, not a conditional expression:
    bpftrace 0.23 with -k gives `$g != 0 ? *(int64*)($g + 152) : (int64)-1` the value of the
    branch without the read (-1 for every event, main.Hot of scripts/bench-trace; 0.17 with -kk
    and 0.27 with -k read it)."""
    if not (g_expr and goid_offset is not None):
        return ["$goid = (int64)-1;"]
    return ["$goid = (int64)-1;", "if ($g != 0) {", f"$goid = *(int64*)($g + {goid_offset});", "}"]


def _indent(lines: list[str]) -> list[str]:
    out, depth = [], 0
    for line in lines:
        if line.startswith("}"):  # `}` and `} else {`
            depth -= 1
        out.append("\t" * depth + line)
        if line.endswith("{"):
            depth += 1
    return out


def runtime_layout(prog) -> RuntimeLayout:
    """Offsets of the runtime structures the probes read, from this binary's DWARF."""
    def field_offset(type_names, field_names):
        for tn in type_names:
            try:
                t = prog.type_named(tn)
            except Exception:
                continue
            for f in t.fields:
                if f.name in field_names:
                    return f.offset, f.type.size
        return None, 8

    v = prog.version_tuple or (1, 0, 0)
    if v[:2] >= (1, 24):
        count_off, count_size = field_offset(["internal/runtime/maps.Map"], ["used"])
    else:
        count_off, count_size = None, 8
    if count_off is None:
        count_off, count_size = field_offset(["runtime.hmap"], ["count"])
    q_off, _ = field_offset(["runtime.hchan"], ["qcount"])
    d_off, _ = field_offset(["runtime.hchan"], ["dataqsiz"])
    itab_off, _ = field_offset(["runtime.itab", "internal/abi.ITab"], ["_type", "Type"])
    itab_off = itab_off if itab_off is not None else 8
    from ..runtime_types import static_itabs
    return RuntimeLayout(count_off, count_size, q_off, d_off, itab_off, lambda: static_itabs(prog.binary, itab_off))
