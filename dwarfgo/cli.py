"""The `dwarfgo` command: a thin Typer layer over the library."""

from __future__ import annotations

import errno
import functools
import json
import math
import os
import stat
import sys
import tempfile
import time
from typing import List, Optional

import typer

from . import __version__, fewer_collections
from elftools.common.exceptions import DWARFError, ELFError

from .errors import DwarfgoError, describe
from .jsontext import Fragment, dumps_indent1
from . import indexcache

# what only some commands need is imported by them (a warm run is mostly start-up): the library
# (and pyelftools) when the answer is not already stored, the runtime type tables (binaries
# without DWARF), the ABI witnesses and machine code, the reports

_APP_SETTINGS = dict(
    name="dwarfgo",
    help=(
        "Turn a Go binary's DWARF into correct bpftrace probes.\n\n"
        "Examples:\n\n"
        "  dwarfgo funcs ./server 'BarrierView'        list matching functions with Go signatures\n\n"
        "  dwarfgo sig ./server '(*BarrierView).Put'   one function: parameters, results, sizes\n\n"
        "  dwarfgo structs ./server --for BarrierView.Put --depth 1   C definitions for bpftrace"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app = typer.Typer(**_APP_SETTINGS)


def _show_version(value: bool) -> None:
    if value:
        from . import __version__
        typer.echo(f"dwarfgo {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                          help="Show dwarfgo's version and exit.")) -> None:
    """(dwarfgo's own options, before the command.)"""


def _one_command_group() -> None:
    """(The callback that keeps _app_for's one-command app a group, as `app` is.)"""


def _app_for(args: list[str]) -> typer.Typer:
    """`app`, or for `dwarfgo COMMAND ...` an app of that one command, with the same settings and
    still a group (`dwarfgo COMMAND` in its usage, help and errors): Typer makes a Click command
    of every registered command's parameters at each start, some 20 ms of a warm run, and only
    one runs. Anything else (no command, `--help`, an unknown name) goes to the whole app."""
    if args:
        for info in app.registered_commands:
            if (info.name or typer.main.get_command_name(info.callback.__name__)) == args[0]:
                one = typer.Typer(**_APP_SETTINGS, callback=_one_command_group)
                one.registered_commands.append(info)
                return one
    return app


def _safe(text: str) -> str:
    """Text from the binary (names, producers) for a terminal: control characters (ESC, BEL, a
    newline inside a name) are shown escaped, never sent as they are."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"dwarfgo: error: {_safe(message)}", err=True)
    raise typer.Exit(code)


def _open(binary: str, debug_file: Optional[str], debug_from: Optional[str] = None,
          no_cache: bool = False):
    from .program import GoProgram
    return GoProgram(binary, debug_file, debug_from, cache=not no_cache)


def _stored(binary: str, debug_file: Optional[str], debug_from: Optional[str], no_cache: bool, kind: str,
            key: list):
    """(True, answer) when what GoProgram.remembered(kind, key, ...) computed for this binary is
    stored: read without opening the binary through the library (see indexcache.stored_result)."""
    if no_cache or debug_file or debug_from:
        return False, None
    return indexcache.stored_result(binary, kind, key)


def tables_only(prog) -> bool:
    from .program import tables_only as only_tables
    return only_tables(prog)


class _Progress:
    """Progress of long whole-binary work on stderr (rich: count, bar, ETA), only on a terminal;
    gone when the work is done. close() it in a `finally`."""

    def __init__(self, label: str):
        self.label = label
        self.enabled = sys.stderr.isatty()
        self._bar = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total < 200:
            return
        if self._bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
            # no refresh thread: workers are forked while it runs
            self._bar = Progress(TextColumn(self.label), BarColumn(), MofNCompleteColumn(), TextColumn("functions"),
                                 TimeRemainingColumn(), console=Console(stderr=True), transient=True,
                                 auto_refresh=False)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=total)
        self._bar.update(self._task, completed=done, refresh=True)
        if done >= total:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _function_line(prog, fn) -> str:
    return _safe(f"{fn.address:#x}  {fn.name}  {fn.signature()}")


def _function_json(prog, fn) -> dict:
    from .report import function_record
    return function_record(prog, fn, with_layout=False)


BinaryArg = typer.Argument(..., help="Go ELF binary (built with DWARF: no -ldflags=-w/-s).", show_default=False)
DebugOpt = typer.Option(None, "--debug-file", help="Separate debug file (objcopy --only-keep-debug), if not found via .gnu_debuglink.")
DebugFromOpt = typer.Option(None, "--debug-from", metavar="TWIN",
                            help="For a stripped binary (-ldflags='-s -w'): the same program built without -s -w. "
                                 "Its DWARF is used after proving, per function, that its machine code is the "
                                 "stripped binary's; probes attach to BINARY.")
JsonOpt = typer.Option(False, "--json", help="Machine-readable output.")
NoCacheOpt = typer.Option(False, "--no-cache", help="Neither read nor write the binary's index in the cache "
                                                    "directory (see `dwarfgo cache`).")


@app.command()
def funcs(
    binary: str = BinaryArg,
    pattern: Optional[str] = typer.Argument(None, help="Substring, glob (`*`, `?`; `(*T)` stays literal) or, with -E, a regex."),
    regex: bool = typer.Option(False, "-E", "--regex", help="PATTERN is a regular expression."),
    as_json: bool = JsonOpt,
    debug_file: Optional[str] = DebugOpt,
    debug_from: Optional[str] = DebugFromOpt,
    no_cache: bool = NoCacheOpt,
) -> None:
    """List functions with their address and Go signature.

    Examples:

      dwarfgo funcs ./server 'main.'

      dwarfgo funcs ./server '*(*BarrierView).*'

      dwarfgo funcs ./server -E '^main\\.(Get|Put)$' --json

      dwarfgo funcs ./server 'main.Max[...]@0x4b4b60'   one of several functions that share a name
    """
    kind = "funcs-pattern-json" if as_json else "funcs-pattern"
    hit, text = _stored(binary, debug_file, debug_from, no_cache, kind, [pattern, regex]) if pattern else (False, None)
    if hit:
        _put_listing(pattern, text, regex)
        return
    from .names import is_address_selector
    with _open(binary, debug_file, debug_from, no_cache) as prog:
        if pattern is not None and not regex and is_address_selector(pattern):
            _one_function(prog, pattern, as_json)
            return
        if not prog.binary.has_dwarf:
            prog.binary.debug_elf  # a split-off debug file that is missing: its own error
            _names_only(prog, pattern, regex, as_json)
            return
        from .verify.evidence import require_arch
        require_arch(prog)  # as sig and probe: no listing of signatures it cannot place
        if pattern is not None and prog.twin is None:
            # a pattern's listing is made once per binary (and dwarfgo build), then read from the
            # index cache (the functions' lines are kept one by one too, for other patterns)
            printed = []

            def listing() -> Optional[str]:
                printed.append(True)
                return _listing(prog, pattern, regex, as_json)

            text = prog.remembered(kind, [pattern, regex], listing)
            if not printed:
                _put_listing(pattern, text, regex)
            elif text is None:
                _fail(_no_match(pattern, regex))
            return
        if _listing(prog, pattern, regex, as_json) is None:
            _fail(_no_match(pattern, regex) if pattern else "no functions with DWARF found")


def _listing(prog, pattern: Optional[str], regex: bool, as_json: bool) -> Optional[str]:
    """Print what `funcs` prints for the functions matching `pattern` (lines as they come), and
    return it; None: no line was printed. With a DWARF twin, the functions left out (their code is
    not the twin's) are noted on stderr first."""
    progress = _Progress("reading functions")
    pending: list[str] = []  # lines not yet written

    def written() -> None:
        if pending:
            typer.echo("".join(pending), nl=False)
            pending.clear()

    def progressed(done: int, total: int) -> None:
        # the lines of the results that came in are written together (a write and a flush per
        # line cost 0.2 s of cmd/compile's 20,000 lines), when they came: before the progress
        written()
        progress(done, total)

    try:
        found = prog.map_matching(pattern, _function_json if as_json else _function_line, regex,
                                  progress=progressed, store_as="funcs-json" if as_json else "funcs")
        for name, why in prog.twin_refusals[:3]:
            typer.echo(_safe(f"dwarfgo: note: {name} left out: {why}"), err=True)
        if len(prog.twin_refusals) > 3:
            typer.echo(f"dwarfgo: note: {len(prog.twin_refusals) - 3} more function(s) left out: their code "
                       f"is not the twin's", err=True)
        if as_json:
            text = dumps_indent1(list(found)) + "\n"
            typer.echo(text, nl=False)
            return text
        lines = []
        for line in found:
            lines.append(line + "\n")
            pending.append(lines[-1])
    finally:
        written()  # (also what came before an error)
        progress.close()
    return "".join(lines) if lines else None


def _no_match(pattern: str, regex: bool) -> str:
    """What `funcs PATTERN` says when nothing matches: the pattern as typed (not Python's repr,
    which doubled each backslash), and -E suggested when it reads as a regular expression."""
    said = f"no function matches '{pattern}'" if "'" not in pattern else f'no function matches "{pattern}"'
    if not regex and any(c in pattern for c in "\\^$|+"):
        said += " (a substring or glob; -E makes it a regular expression)"
    return said


def _put_listing(pattern: Optional[str], text: Optional[str], regex: bool) -> None:
    if text is None:
        _fail(_no_match(pattern, regex) if pattern else "no functions with DWARF found")
    typer.echo(text, nl=False)


def _one_function(prog, selector: str, as_json: bool) -> None:
    """`funcs BINARY NAME@0xADDR`: the one function the selector chooses."""
    if not prog.binary.has_dwarf:
        prog.binary.debug_elf  # a split-off debug file that is missing: its own error
        s = prog.lookup(selector)
        if as_json:
            typer.echo(json.dumps([{"name": s.name, "address": s.address, "size": s.size, "signature": None,
                                    "names_from": prog.binary.symbols_from}], indent=1))
        else:
            typer.echo(_safe(f"{s.address:#x}  {s.name}  ({s.size} bytes)"))
        typer.echo(_safe(f"dwarfgo: note: {prog.binary.no_dwarf_advice()}"), err=True)
        return
    from .verify.evidence import require_arch
    require_arch(prog)
    fn = prog.function(selector)
    typer.echo(json.dumps([_function_json(prog, fn)], indent=1) if as_json else _function_line(prog, fn))


def _names_only(prog, pattern: Optional[str], regex: bool, as_json: bool) -> None:
    """`funcs` on a binary without DWARF: names, addresses and sizes, and what needs a twin."""
    from .names import compile_pattern, matching_names

    found = matching_names(compile_pattern(pattern, regex), prog.binary.function_symbols, pattern)
    if as_json:
        typer.echo(json.dumps([{"name": s.name, "address": s.address, "size": s.size, "signature": None,
                                "names_from": prog.binary.symbols_from} for s in found], indent=1))
    else:
        for s in found:
            typer.echo(_safe(f"{s.address:#x}  {s.name}  ({s.size} bytes)"))
    typer.echo(_safe(f"dwarfgo: note: {prog.binary.no_dwarf_advice()}"), err=True)
    if not found:
        _fail(_no_match(pattern, regex) if pattern else "no functions found")


@app.command()
def sig(
    binary: str = BinaryArg,
    func: str = typer.Argument(..., help="Full symbol (`main.(*Store).Put`) or a short unique form (`Store.Put`, `(*Store).Put`)."),
    as_json: bool = JsonOpt,
    debug_file: Optional[str] = DebugOpt,
    debug_from: Optional[str] = DebugFromOpt,
    no_cache: bool = NoCacheOpt,
) -> None:
    """One function: each parameter and result with name, Go type, size and alignment.

    Examples:

      dwarfgo sig ./server '(*BarrierView).Put'

      dwarfgo sig ./server main.handle --json
    """
    kind = "sig-json" if as_json else "sig"
    hit, text = _stored(binary, debug_file, debug_from, no_cache, kind, [func])
    if hit:
        typer.echo(text, nl=False)
        return
    with _open(binary, debug_file, debug_from, no_cache) as prog:
        if tables_only(prog):  # no DWARF, no twin: what the runtime's own tables give
            from .tablesig import describe_without_dwarf
            text = describe_without_dwarf(prog, func, as_json)
            typer.echo(text if as_json else "\n".join(_safe(line) for line in text.splitlines()))
            return
        # computed once per binary (and dwarfgo build), then read from the index cache
        typer.echo(prog.remembered(kind, [func], lambda: _sig_text(prog, func, as_json)), nl=False)


def _sig_text(prog, func: str, as_json: bool) -> str:
    """What `sig` prints for the function `func` names."""
    from .report import function_record
    from .verify.evidence import trusted_layout

    fn = prog.function(func)
    layout, _ = trusted_layout(prog, fn)
    rec = function_record(prog, fn, with_layout=True, layout=layout)
    if as_json:
        return json.dumps(rec, indent=1) + "\n"
    out = [f"{fn.signature()}",
           f"  symbol  {fn.name} at {fn.address:#x}, package {rec['package']}",
           f"  binary  {rec['go_version']} {rec['arch']}, ABI {rec['abi']}"]
    if fn.wrapper_kind:
        out.append(f"  wrapper compiler-generated (DW_AT_trampoline): {fn.wrapper_kind}")
    rows = [("receiver" if loc.param is fn.receiver else "param", loc) for loc in layout.inputs]
    rows += [("result", loc) for loc in layout.results]
    width = max((len(loc.name) for _, loc in rows), default=4)
    twidth = max((len(loc.param.type.name) for _, loc in rows), default=4)
    for role, loc in rows:
        p = loc.param
        hidden = "  (hidden)" if p.is_hidden else ""
        where = "unknown" if layout.unknown else loc.describe()
        out.append(f"  {role:<8} {p.name:<{width}}  {p.type.name:<{twidth}}  size {p.type.size:<4} "
                   f"align {p.type.align:<2} {where}{hidden}")
    if layout.unknown:
        out.append(f"  note    locations unknown: {layout.unknown}")
    if fn.results_note:
        out.append(f"  note    no results in DWARF, but {fn.results_note}")
    if fn.inputs_note:
        out.append(f"  note    parameters unknown: {fn.inputs_note}")
    return "".join(_safe(line) + "\n" for line in out)


@app.command()
def abi(
    binary: str = BinaryArg,
    pattern: Optional[str] = typer.Argument(None, help="A function (full or short name) or a pattern; default: every function of package main."),
    regex: bool = typer.Option(False, "-E", "--regex", help="PATTERN is a regular expression."),
    as_json: bool = JsonOpt,
    debug_file: Optional[str] = DebugOpt,
    debug_from: Optional[str] = DebugFromOpt,
    no_cache: bool = NoCacheOpt,
) -> None:
    """Which calling convention each function uses, with the evidence.

    Per compile unit: Go version and ABI from the producer. Per function: ABIInternal
    or ABI0, body or .abi0 wrapper, the prologue's stack check, whether the morestack
    spills and DWARF's entry locations agree with the computed assignment, RET sites.
    Exits 3 when the evidence contradicts itself.

    Examples:

      dwarfgo abi ./server 'main.*'

      dwarfgo abi ./server '(*BarrierView).Put' --json
    """
    kind = "abi-one-json" if as_json else "abi-one"
    # a pattern of stars (`*`, every function) names no one function: not looked up as one
    single = pattern is not None and (regex or pattern.strip().strip("*") != "")
    hit, one = _stored(binary, debug_file, debug_from, no_cache, kind, [pattern, regex]) if single else (False, None)
    if hit and one is not None:
        typer.echo(one[0], nl=False)
        if not one[1]:
            raise typer.Exit(3)
        return
    with _open(binary, debug_file, debug_from, no_cache) as prog:
        task = _abi_json if as_json else _abi_text
        if single and not hit:
            # one function's report is computed once per binary (and dwarfgo build), then read
            # from the index cache; None: the pattern names no one function
            one = prog.remembered(kind, [pattern, regex], lambda: _abi_one(prog, pattern, task, as_json))
        if one is not None:
            text, consistent = one
            typer.echo(text, nl=False)
            if not consistent:
                raise typer.Exit(3)
            return
        from .verify.evidence import prepare_gather
        progress = _Progress("analysing functions")
        try:
            items = list(prog.map_matching(pattern or "main.*", task, regex if pattern else False,
                                           progress=progress, store_as="abi-json" if as_json else "abi",
                                           prepare=prepare_gather))
        finally:
            progress.close()
        if not items and pattern is not None:
            prog.function(pattern)  # raises its one-line error: no such function
        typer.echo(_abi_listing(prog, items, as_json), nl=False)
        if any(not consistent for _, consistent, _ in items):
            raise typer.Exit(3)


def _abi_one(prog, pattern: str, task, as_json: bool):
    """(what `abi` prints, consistent) for the one function `pattern` names, or None when it
    names none (a pattern, or no such function: said when nothing matches)."""
    try:
        fn = prog.function(pattern, explain=False)
    except DwarfgoError:
        return None
    item = task(prog, fn)
    return _abi_listing(prog, [item], as_json), item[1]


def _abi_listing(prog, items, as_json: bool) -> str:
    """`abi`'s output for (unit, consistent, record's JSON text or text) items."""
    units = sorted({tuple(unit) for unit, _, _ in items if unit is not None})
    if as_json:
        return dumps_indent1({
            "binary": str(prog.binary.path), "go_version": prog.binary.go_version, "arch": prog.binary.arch,
            "units": [{"name": n, "producer": p, "regabi": "regabi" in p.split()} for n, p in units],
            "functions": [Fragment(record) for _, _, record in items],
        }) + "\n"
    out = [_safe(f"{prog.binary.path}: {prog.binary.go_version} {prog.binary.arch}")]
    for name, producer in units:
        out.append(_safe(f"  unit {name}: {producer}"))
    for _, _, text in items:
        out.append("")
        out.append(text)
    return "".join(line + "\n" for line in out)


def _abi_unit(e):
    return (e.function.unit.name, e.producer) if e.function.unit else None


@functools.cache
def _abi_modules():
    """(verify.evidence, report), imported when `abi` first needs them: an import statement in
    the per-function tasks below cost 0.1 s of a whole-binary run (20,000 calls)."""
    from . import report
    from .verify import evidence
    return evidence, report


def _abi_json(prog, fn):
    """One function's ABI evidence, for `abi --json` (runs in worker processes): its record's
    JSON text (pickled to the parent and stored in the index cache as one string: 1 s less than
    the record's dicts over cmd/compile)."""
    evidence, report = _abi_modules()
    e = evidence.gather(prog, fn)
    return _abi_unit(e), e.consistent, dumps_indent1(report.evidence_record(e))


def _abi_text(prog, fn):
    """One function's ABI evidence as text (runs in worker processes)."""
    e = _abi_modules()[0].gather(prog, fn)
    lines = [_safe(f"{e.function.name} at {e.function.address:#x}: {e.abi}, {e.role}")]
    if e.machine is not None:
        m = e.machine
        frame = f", frame {m.frame_size}" if m.frame_size is not None else ""
        lines.append(f"  prologue  {m.prologue}{frame}")
        rets = ", ".join(f"{r:#x}" for r in m.ret_sites) or "none"
        lines.append(f"  RET       {rets}")
    if e.spills is not None:
        verdict = {True: "agree", False: "DISAGREE", None: "no evidence"}[e.spills.agrees]
        lines.append(f"  spills    {verdict}{': ' + e.spills.detail if e.spills.detail else ''}")
    lines.append(f"  DWARF     {e.dwarf.verdict}")
    if e.layout.unknown:
        lines.append(_safe(f"  locations UNKNOWN: {e.layout.unknown}"))
    for c in e.dwarf.checks:
        if c.agrees is False:
            lines.append(_safe(f"    {c.name}: {c.detail}" + (f" [known: {c.known}]" if c.known else "")))
    for c in e.contradictions:
        lines.append(_safe(f"  CONTRADICTION {c}"))
    return _abi_unit(e), e.consistent, "\n".join(lines)


@app.command()
def structs(
    binary: str = BinaryArg,
    types: Optional[List[str]] = typer.Argument(None, help="Go type names (`main.Pair`, `Pair`, `[]string`)."),
    for_func: Optional[str] = typer.Option(None, "--for", help="Every type reachable from this function's parameters and results."),
    depth: int = typer.Option(1, "--depth", min=0, help="How many pointer/slice hops to follow."),
    prefix: str = typer.Option("dg_", "--prefix", help="Prefix of every C struct name."),
    debug_file: Optional[str] = DebugOpt,
    debug_from: Optional[str] = DebugFromOpt,
    no_cache: bool = NoCacheOpt,
) -> None:
    """C definitions of Go types, with exact offsets (for bpftrace scripts and for C).

    Examples:

      dwarfgo structs ./server main.Pair

      dwarfgo structs ./server --for '(*BarrierView).Put' --depth 2 > types.h
    """
    if not types and not for_func:
        _fail("name at least one TYPE, or a function with --for", 2)
    if not prefix or not prefix.replace("_", "a").isalnum() or prefix[0].isdigit():
        _fail(f"--prefix {prefix!r} is not a valid C identifier prefix", 2)
    key = [types or [], for_func, depth, prefix]
    hit, text = _stored(binary, debug_file, debug_from, no_cache, "structs", key)
    if hit:
        typer.echo(text, nl=False)
        return
    with _open(binary, debug_file, debug_from, no_cache) as prog:
        if tables_only(prog):  # no DWARF, no twin: the types the runtime type tables describe
            from .tablesig import signature_from_tables
            from .typetables import SOURCE as TABLES_SOURCE, RuntimeTypeModel
            model = RuntimeTypeModel(prog.binary)
            roots = [model.lookup(t) for t in types or []]
            if for_func:
                fn = signature_from_tables(prog, for_func, model).function
                roots += [p.type for p in fn.inputs + fn.results]
            typer.echo(_c_header(prog, roots, depth, prefix,
                                 f"the runtime type tables, no DWARF (source: {TABLES_SOURCE})"), nl=False)
            return
        # computed once per binary (and dwarfgo build), then read from the index cache
        typer.echo(prog.remembered("structs", key,
                                   lambda: _c_header(prog, _dwarf_roots(prog, types, for_func), depth, prefix,
                                                     "DWARF")), nl=False)


def _dwarf_roots(prog, types: Optional[List[str]], for_func: Optional[str]) -> list:
    """The types `structs` starts from: those named, and --for's parameters and results."""
    roots = [prog.type_named(t) for t in types or []]
    if for_func:
        fn = prog.function(for_func)
        roots += [p.type for p in fn.inputs + fn.results if not p.is_hidden]
    return roots


def _c_header(prog, roots, depth: int, prefix: str, source: str) -> str:
    from .cheaders import CHeaderWriter
    w = CHeaderWriter(prefix=prefix, ptr_size=prog.binary.ptr_size, source=source)
    for t in roots:
        w.add(t, depth)
    return w.render()


def _write_output(output: str, text: str) -> None:
    """Write the program to `output`: a regular file is replaced whole (never a half-written program
    under the real name); anything else that exists (a device, a FIFO, /dev/stdout) is written in
    place and never replaced; a directory is refused."""
    try:
        st = os.stat(output)
    except FileNotFoundError:
        st = None
    except OSError as e:
        _fail(f"-o {output}: {e.strerror or e}")
    if st is not None and stat.S_ISDIR(st.st_mode):
        _fail(f"-o {output}: is a directory; name a file")
    try:
        if st is not None and not stat.S_ISREG(st.st_mode):
            with open(output, "w") as fh:
                fh.write(text)
            return
        parent = os.path.dirname(os.path.abspath(output))
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=os.path.basename(output) + ".", suffix=".tmp")
        try:
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fd, (st.st_mode & 0o7777) if st is not None else 0o666 & ~umask)
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            os.replace(tmp, output)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    except OSError as e:
        _fail(f"cannot write -o {output}: {e.strerror or e}")


def _arg_selection(print_all_args: bool, args: Optional[List[str]]) -> Optional[List[str]]:
    """None: every argument; a list: these `--args` expressions (comma-separated or repeated)."""
    if args:
        return [e.strip() for a in args for e in a.split(",") if e.strip()]
    return None if print_all_args else []


def _say_sources(fns) -> None:
    """On stderr: which probed signatures come from the runtime type tables, not DWARF."""
    for fn in fns:
        if hasattr(fn, "source_note"):
            typer.echo(_safe(f"dwarfgo: note: {fn.source_note()}"), err=True)


def _probe_setup(prog, funcs, bpftrace, bpftrace_version, ret, depth, max_str, max_items, pid, buffer_pages=None,
                 args=None, filter_expr=None, aggregate=None, child=False, record_slots=None, reproducing=False):
    from dataclasses import replace

    from .emit.dialect import detect
    from .emit.probe import ProbeOptions, generate_fitting

    dialect, path = detect(bpftrace, bpftrace_version, cached=prog.cache is not None)
    if record_slots:
        dialect = replace(dialect, record_slots=record_slots)
    fns = [prog.probe_function(f) for f in funcs]
    _say_sources(fns)
    opts = ProbeOptions(ret=ret, depth=depth, max_str=max_str, max_items=max_items, pid=pid, args=args,
                        filter=filter_expr, aggregate=aggregate, child=child)
    if buffer_pages:
        opts.buffer_pages = buffer_pages
    return generate_fitting(prog, fns, dialect, opts, path, reproducing=reproducing), path


def _readable_setup(prog, funcs, bpftrace, bpftrace_version, ret, depth, max_str, max_items, pid, buffer_pages=None,
                    filter_expr=None):
    from .emit.dialect import detect
    from .emit.probe import ProbeOptions
    from .emit.readable import generate_readable

    dialect, path = detect(bpftrace, bpftrace_version, cached=prog.cache is not None)
    fns = [prog.probe_function(f) for f in funcs]
    _say_sources(fns)
    opts = ProbeOptions(ret=ret, depth=depth, max_str=max_str, max_items=max_items, pid=pid, filter=filter_expr)
    if buffer_pages:
        opts.buffer_pages = buffer_pages
    return generate_readable(prog, fns, dialect, opts, bpftrace=path)


FuncsArg = typer.Argument(..., help="Functions to probe: full symbols or short unique forms.", show_default=False)
RetOpt = typer.Option(False, "--ret", help="Also probe every RET (never uretprobe, which breaks Go) and read the results.")
DepthOpt = typer.Option(1, "--depth", min=0, max=4, help="Pointer/slice levels to follow.")
MaxStrOpt = typer.Option(64, "--max-str", min=1, help="Bytes of each string/[]byte to copy (the real length is always printed).")
MaxItemsOpt = typer.Option(4, "--max-items", min=0, max=64, help="Slice/array elements to decode.")
PID_MAX = 1 << 22  # Linux's largest pid_max
PidOpt = typer.Option(None, "--pid", min=1, max=PID_MAX, help="Only this process.")
BpftraceOpt = typer.Option(None, "--bpftrace", help="bpftrace binary to generate for (and run).")
BufferOpt = typer.Option(None, "--buffer-pages", min=8, max=1 << 16,
                         help="bpftrace's output buffer in pages (default: bpftrace 0.23+ one shared ring buffer "
                              "of 16384; older, 4096 per CPU, less on many CPUs).")
AllArgsOpt = typer.Option(True, "--print-all-args/--no-args",
                          help="Print every argument (default), or none (--no-args: calls, returns and latency only).")
ArgsOpt = typer.Option(None, "--args", "-a", metavar="EXPR",
                       help="Print only these Go expressions: p.Field.Sub (through pointers), *p, (*p).f, "
                            "xs[2], len(s), cap(s). Repeat or separate with commas. An expression of a "
                            "parameter is printed on the call; one of a result (with --ret; an unnamed result "
                            "is r0, r1, ... or its DWARF name ~r0) on the return. If any expression names a "
                            "result, returns print only the selected results, else every result. Each applies "
                            "to the probed functions that have that parameter or result; a nil pointer or an "
                            "index out of range shows as unavailable.")
BpftraceVersionOpt = typer.Option(None, "--bpftrace-version", help="Generate for this bpftrace version without running it.")
FilterOpt = typer.Option(None, "--filter", metavar="[FUNC:]EXPR",
                         help="Only calls for which this Go boolean expression of the arguments holds, decided in "
                              "the kernel (no output for the others): the --args grammar with ==, !=, <, <=, >, "
                              ">=, &&, ||, !, nil, and integer, bool and string literals, e.g. "
                              "'entry.Key == \"config\" && len(entry.Value) > 8'. A nil pointer on the way "
                              "makes it false. With --ret, a filtered-out call's return is not shown either. "
                              "With FUNC: it applies to that probed function; without, to every probed function "
                              "that has all the parameters it names. Repeat to require several.")
FORMATS = ("readable", "raw")
CountByOpt = typer.Option(None, "--count-by", metavar="EXPR[,EXPR…]",
                          help="Count calls per distinct value of these Go expressions of the arguments (integers, "
                               "bools, strings up to --max-str, interfaces by dynamic type), in a bpftrace map: "
                               "nothing is printed per call.")
SumOpt = typer.Option(None, "--sum", metavar="EXPR", help="Sum this integer expression over the calls.")
HistOpt = typer.Option(None, "--hist", metavar="EXPR|latency",
                       help="Log2 histogram of an integer expression, or of each call's latency (latency: --ret).")
def _finite_seconds(value: Optional[float]) -> Optional[float]:
    """Seconds must be a number: typer before 0.29 checks min/max by comparing, and NaN compares
    false both ways (`--duration nan` ran a trace that stopped at once); infinity passes a
    missing max (`--interval inf` was an internal error)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a number of seconds")
    return value


IntervalOpt = typer.Option(None, "--interval", metavar="SECONDS", min=1, max=10 ** 7, callback=_finite_seconds,
                           help="With aggregations: print them every SECONDS too.")


def _aggregate_options(count_by, sums, hists, interval):
    from .emit.aggregate import AggregateOptions

    groups = [[e.strip() for e in g.split(",") if e.strip()] for g in count_by or []]
    return AggregateOptions([g for g in groups if g], list(sums or []), list(hists or []), interval)


def _aggregating(count_by, sums, hists) -> bool:
    """Whether any aggregation is asked for (the `any` of _aggregate_options' answer), without
    importing the aggregation compiler: a readable program has no use for it (~9 ms of a warm run)."""
    return any(e.strip() for g in count_by or [] for e in g.split(",")) or bool(sums) or bool(hists)


def _table_shower(as_json: bool):
    """How trace and decode print the aggregation tables (runner/aggregates.py): text, or one JSON
    object per table."""
    from .runner.stream import printable

    def show(tables, final: bool) -> None:
        if not as_json:
            typer.echo(f"== {'totals at the end' if final else time.strftime('totals so far (%H:%M:%S)')} ==")
        for t in tables:
            if as_json:
                typer.echo(json.dumps(dict(t.to_json(), final=final)))
            else:
                for line in t.lines():
                    typer.echo(printable(line))
        if not as_json:
            typer.echo("")
    return show


@app.command()
def probe(
    binary: str = BinaryArg,
    funcs: List[str] = FuncsArg,
    print_all_args: bool = AllArgsOpt,
    args: Optional[List[str]] = ArgsOpt,
    ret: bool = RetOpt,
    depth: int = DepthOpt,
    max_str: int = MaxStrOpt,
    max_items: int = MaxItemsOpt,
    pid: Optional[int] = PidOpt,
    bpftrace: Optional[str] = BpftraceOpt,
    bpftrace_version: Optional[str] = BpftraceVersionOpt,
    buffer_pages: Optional[int] = BufferOpt,
    filter_expr: Optional[List[str]] = FilterOpt,
    count_by: Optional[List[str]] = CountByOpt,
    sums: Optional[List[str]] = SumOpt,
    hists: Optional[List[str]] = HistOpt,
    interval: Optional[float] = IntervalOpt,
    output: Optional[str] = typer.Option(None, "-o", "--output", help="Write the program to this file instead of stdout."),
    fmt: Optional[str] = typer.Option(None, "--format", metavar="readable|raw",
                                      help="readable: a program that prints Go-like lines by itself (the default); "
                                           "raw: numbered raw values for `dwarfgo trace`/`decode` (the default "
                                           "with --args/--no-args and with aggregations)."),
    debug_file: Optional[str] = DebugOpt,
    debug_from: Optional[str] = DebugFromOpt,
    no_cache: bool = NoCacheOpt,
) -> None:
    """Write a bpftrace program that prints every argument (and with --ret every result) of FUNC.

    The program attaches by address, reads each value where the ABI puts it, drops
    the entry hit that is about to run morestack (one event per call). By default it
    is a program to read, edit and run with bpftrace alone: C struct definitions,
    one named variable per pointer argument, one printf per call printing Go-like
    text. `--format raw` prints numbered raw values that `dwarfgo trace` decodes.

    Examples:

      dwarfgo probe ./server '(*BarrierView).Put' -o put.bt && sudo bpftrace -k put.bt

      dwarfgo probe ./server '(*BarrierView).Put' | sudo bpftrace -k -

      dwarfgo probe ./server main.handle --ret --bpftrace-version 0.27 -o handle.bt

      dwarfgo probe ./server '(*BarrierView).Put' --filter 'entry.Key == "config" && len(entry.Value) > 8'

      dwarfgo probe ./server main.handle --args 'req.URL.Path,len(req.Header)'

      dwarfgo probe ./server main.handle --ret -a 'req.Method,(*resp).Status'

      dwarfgo probe ./server main.handle --ret --count-by req.Method --hist latency --format raw
    """
    selection = _arg_selection(print_all_args, args)
    aggregating = _aggregating(count_by, sums, hists)
    if fmt is None:
        fmt = "raw" if selection is not None or aggregating else "readable"
    if fmt not in FORMATS:
        _fail(f"--format {_safe(fmt)!r}: choose {' or '.join(FORMATS)}", 2)
    if fmt == "readable" and selection is not None:
        _fail("--args/--no-args: the readable program prints every argument; use --format raw "
              "(and dwarfgo trace/decode) to print expressions", 2)
    if fmt == "readable" and aggregating:
        _fail("--count-by/--sum/--hist: aggregations are in the raw program; use --format raw "
              "(and dwarfgo trace/decode to print them as tables)", 2)
    from .emit.dialect import bpftrace_identity
    generator = bpftrace_identity(bpftrace, bpftrace_version)
    key = [funcs, fmt, ret, depth, max_str, max_items, pid, buffer_pages, selection, filter_expr, count_by, sums, hists,
           interval, generator]
    hit, stored = _stored(binary, debug_file, debug_from, no_cache, "probe", key) if generator else (False, None)
    if hit:
        _put_program(output, *stored)
        return
    with _open(binary, debug_file, debug_from, no_cache) as prog:
        def made() -> tuple[str, list[str]]:
            if fmt == "readable":
                program = _readable_setup(prog, funcs, bpftrace, bpftrace_version, ret, depth, max_str, max_items,
                                          pid, buffer_pages, filter_expr)
            else:
                program, _ = _probe_setup(prog, funcs, bpftrace, bpftrace_version, ret, depth, max_str, max_items,
                                          pid, buffer_pages, selection, filter_expr,
                                          _aggregate_options(count_by, sums, hists, interval))
            return program.text, list(program.warnings)

        if generator is None or tables_only(prog):  # (a signature from the tables says so on stderr)
            text, warnings = made()
        else:  # made once per binary, dwarfgo build and bpftrace, then read from the index cache
            text, warnings = prog.remembered("probe", key, made)
        _put_program(output, text, warnings)


def _put_program(output: Optional[str], text: str, warnings: list[str]) -> None:
    for w in warnings:
        typer.echo(_safe(f"dwarfgo: warning: {w}"), err=True)
    if output:
        _write_output(output, text)
    else:
        typer.echo(text, nl=False)


@app.command()
def trace(
    binary: str = BinaryArg,
    funcs: List[str] = FuncsArg,
    print_all_args: bool = AllArgsOpt,
    args: Optional[List[str]] = ArgsOpt,
    ret: bool = RetOpt,
    depth: int = DepthOpt,
    max_str: int = MaxStrOpt,
    max_items: int = MaxItemsOpt,
    pid: Optional[int] = typer.Option(None, "-p", "--pid", min=1, max=PID_MAX, help="Trace this running process."),
    command: Optional[str] = typer.Option(None, "-c", "--command", help="Run this command and trace it until it exits."),
    duration: Optional[float] = typer.Option(None, "--duration", min=0.001, max=10 ** 7, callback=_finite_seconds,
                                             help="Stop after this many seconds."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per event."),
    bpftrace: Optional[str] = BpftraceOpt,
    buffer_pages: Optional[int] = BufferOpt,
    debug_file: Optional[str] = DebugOpt,
    debug_from: Optional[str] = DebugFromOpt,
    no_cache: bool = NoCacheOpt,
    raw_output: Optional[str] = typer.Option(None, "--raw-output", metavar="FILE",
                                             help="Also save bpftrace's own output, line for line, to FILE "
                                                  "(`dwarfgo decode` reads it)."),
    filter_expr: Optional[List[str]] = FilterOpt,
    count_by: Optional[List[str]] = CountByOpt,
    sums: Optional[List[str]] = SumOpt,
    hists: Optional[List[str]] = HistOpt,
    interval: Optional[float] = IntervalOpt,
) -> None:
    """Run the probe program and print decoded events (root needed).

    Every event bpftrace prints is shown, in time order (events wait up to 0.25 s for earlier
    ones from other CPUs). Ctrl-C (or SIGTERM, --duration, the -p process exiting) asks
    bpftrace to stop and decodes the rest of its output; a second Ctrl-C quits at once.
    At the end, the calls and returns shown, and any events that never reached dwarfgo.

    Examples:

      sudo dwarfgo trace ./server '(*BarrierView).Put' -p 1234 --ret

      sudo dwarfgo trace ./fixture main.Add -c './fixture -n 3' --json

      sudo dwarfgo trace ./fixture main.List -a head.Next.Name -a 'len(head.Name)' -p 1234
    """
    from .runner.run import BpftraceRun, RunOptions
    from .runner.session import TraceSession, exit_status_ok
    from .runner.stream import decoder_for, report_lines
    from .runner.target import check_command, check_traced_process

    if pid is not None and command is not None:
        _fail("-p and -c: trace a running process (-p) or a command it starts (-c), not both", 2)
    with _open(binary, debug_file, debug_from, no_cache) as prog:
        if pid is not None:
            check_traced_process(pid, binary)
        if command is not None:
            check_command(command)
        program, path = _probe_setup(prog, funcs, bpftrace, None, ret, depth, max_str, max_items, pid, buffer_pages,
                                     _arg_selection(print_all_args, args), filter_expr,
                                     _aggregate_options(count_by, sums, hists, interval), child=bool(command))
        for w in program.warnings:
            typer.echo(_safe(f"dwarfgo: warning: {w}"), err=True)
        decoder = decoder_for(prog, program, max_str)
        decoder.on_tables = _table_shower(as_json)
        try:
            raw = open(raw_output, "w") if raw_output else None
        except OSError as e:
            _fail(f"--raw-output {raw_output}: {e.strerror or e}")
        run = BpftraceRun(program.text, RunOptions(path, command, duration, buffer_pages=program.buffer_pages,
                                                   flags=tuple(program.run_flags), extra_env=program.run_env))

        # said when the program reports every probe attached, before the first event
        run.on_attached = lambda: typer.echo(f"dwarfgo: tracing {len(funcs)} function(s) with {path}; "
                                             f"Ctrl-C to stop", err=True)

        # SIGINT and SIGTERM (Ctrl-C, kill, systemd, a CI timeout) ask bpftrace to stop; the session
        # decodes to the end of its output (a second Ctrl-C quits at once)
        if command:  # the command's own output (on a pipe of its own, or through bpftrace's): to stderr
            decoder.on_other_output = lambda line: typer.echo(line, err=True)
            if run.command_output is not None:
                run.command_output.on_line = lambda line: typer.echo(line, err=True)
        session = TraceSession(run, decoder, _shower(as_json, pid), say=lambda m: typer.echo(m, err=True), pid=pid,
                               raw_output=raw)
        try:
            outcome = session()
        finally:
            rc = run.close()
            if raw is not None:
                raw.close()
        if outcome.process_exited:
            typer.echo(f"dwarfgo: process {pid} exited", err=True)
        if run.signals_resent:
            typer.echo(f"dwarfgo: note: bpftrace kept polling after the stop signal (a race in bpftrace 0.17's "
                       f"poll loop); the signal was sent {run.signals_resent} more time(s)", err=True)
        for line in report_lines(outcome, decoder, " (a bigger --buffer-pages helps)"):
            typer.echo(line, err=True)
        if outcome.interrupted:
            raise typer.Exit(130)
        errors = run.errors
        if run.killed:
            where = f" ({run.hang_state})" if run.hang_state else ""
            _fail(f"bpftrace did not exit within {time.monotonic() - run.stop_requested:.0f} s of the stop "
                  f"request{where} and was killed; the events above were printed before it hung")
        if not exit_status_ok(rc):
            if run.stop_requested is not None and not run.attached and not errors:
                # a stop that came while bpftrace was attaching: 0.27 then exits with 255 (seen in the
                # soak test), having printed nothing: the stop asked for, not an error
                typer.echo(f"dwarfgo: note: stopped while bpftrace was still attaching its probes (it exited "
                           f"with status {rc})", err=True)
                return
            detail = (": " + " | ".join(errors[-5:])) if errors else " and printed no error"
            _fail(f"bpftrace exited with status {rc}{detail}")


def _shower(as_json: bool, pid: Optional[int]):
    """How trace and decode print each event: Go-like text, or one JSON object a line."""
    from .runner.stream import event_json, event_text

    if as_json:
        return lambda ev: typer.echo(event_json(ev, pid))
    return lambda ev: typer.echo(event_text(ev))


@app.command()
def decode(
    binary: str = BinaryArg,
    funcs: List[str] = FuncsArg,
    print_all_args: bool = AllArgsOpt,
    args: Optional[List[str]] = ArgsOpt,
    ret: bool = RetOpt,
    depth: int = DepthOpt,
    max_str: int = MaxStrOpt,
    max_items: int = MaxItemsOpt,
    filter_expr: Optional[List[str]] = FilterOpt,
    count_by: Optional[List[str]] = CountByOpt,
    sums: Optional[List[str]] = SumOpt,
    hists: Optional[List[str]] = HistOpt,
    interval: Optional[float] = IntervalOpt,
    pid: Optional[int] = typer.Option(None, "-p", "--pid", min=1, max=PID_MAX,
                                      help="The --pid the program was made with (only shown in --json)."),
    input_file: str = typer.Option("-", "--input", "-i", metavar="FILE", help="The saved output (default: stdin)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per event."),
    bpftrace: Optional[str] = BpftraceOpt,
    bpftrace_version: Optional[str] = BpftraceVersionOpt,
    buffer_pages: Optional[int] = BufferOpt,
    record_slots: Optional[int] = typer.Option(
        None, "--record-slots", min=10, max=24,
        help="Values a printf record held (programs that needed fewer to fit bpftrace's 512-byte stack; "
             "the program's header gives it in its decode command)."),
    debug_file: Optional[str] = DebugOpt,
    debug_from: Optional[str] = DebugFromOpt,
    no_cache: bool = NoCacheOpt,
) -> None:
    """Decode a raw program's saved output into the events `trace` prints.

    Give the binary, functions and options the program was made with (`probe --format raw`;
    its header says the exact decode command). The output says which program printed it: a
    different binary or other options are refused.

    Examples:

      dwarfgo probe ./server '(*BarrierView).Put' --ret --format raw -o put.bt   (then, on any host:
      sudo bpftrace -k -o put.out put.bt)

      dwarfgo decode ./server '(*BarrierView).Put' --ret --bpftrace-version 0.27 --input put.out

      kubectl logs trace-job | dwarfgo decode ./server main.handle --json --bpftrace-version 0.23
    """
    from .runner.stream import decode_lines, decoder_for, report_lines

    with _open(binary, debug_file, debug_from, no_cache) as prog:
        program, _ = _probe_setup(prog, funcs, bpftrace, bpftrace_version, ret, depth, max_str, max_items, pid,
                                  buffer_pages, _arg_selection(print_all_args, args), filter_expr,
                                  _aggregate_options(count_by, sums, hists, interval), record_slots=record_slots,
                                  reproducing=True)
        decoder = decoder_for(prog, program, max_str, expect=program.identity)
        decoder.on_tables = _table_shower(as_json)
        try:
            source = sys.stdin if input_file == "-" else open(input_file, encoding="utf-8", errors="replace")
        except OSError as e:
            _fail(f"--input {input_file}: {e.strerror or e}")
        with source:
            outcome = decode_lines(decoder, source, _shower(as_json, pid))
        for line in report_lines(outcome, decoder, " (a bigger --buffer-pages helps)"):
            typer.echo(line, err=True)


@app.command()
def cache(
    action: str = typer.Argument("show", help="`show`: where the index cache is and what it holds; `clear`: remove it."),
) -> None:
    """The index cache: what dwarfgo keeps per binary (by build ID) so later runs read only the
    DIEs they need. Under $XDG_CACHE_HOME/dwarfgo or ~/.cache/dwarfgo.

    Examples:

      dwarfgo cache

      dwarfgo cache clear
    """
    if action == "show":
        s = indexcache.summary()
        typer.echo(_safe(f"{s.directory}: {s.files} index file(s), {s.bytes / 1024:.0f} KiB"))
    elif action == "clear":
        try:
            removed = indexcache.clear()
        except OSError as e:
            _fail(f"cannot clear {indexcache.cache_dir()}: {e.strerror or e}")
        typer.echo(_safe(f"removed {removed} index file(s) from {indexcache.cache_dir()}"))
    else:
        _fail(f"unknown cache action {action!r}: use show or clear", 2)


@app.command()
def version() -> None:
    """Print dwarfgo's version."""
    typer.echo(f"dwarfgo {__version__}")


# Typer's (vendored click's) base of usage errors: bad option values, missing arguments
_CLICK_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def _usage_error(e) -> None:
    """A usage error as one line (not the three-line usage box), with where to read more; the help
    shown for a bare command stays as it is."""
    if type(e).__name__ == "NoArgsIsHelpError":
        typer.echo(e.format_message(), err=True)
        sys.exit(e.exit_code)
    ctx = getattr(e, "ctx", None)
    where = f" (see `{ctx.command_path} --help`)" if ctx is not None and getattr(ctx, "command_path", None) else ""
    typer.echo(f"dwarfgo: error: {' '.join(e.format_message().split())}{where}", err=True)
    sys.exit(e.exit_code)


def run() -> None:
    """The command line's entry (`dwarfgo`, `python -m dwarfgo`): main(), then the process ends at
    once with its exit status, the output flushed, without the interpreter's teardown (freeing every
    module's objects one by one: some 40 ms of CPU after a command on one function of cmd/compile,
    a sixth of a warm run). Where something is still to run at exit (an atexit callback, such as
    multiprocessing's or a weakref finalizer's, or a thread besides the main one), or the flush
    fails (a closed pipe, a full disk), or the status is not a number, the interpreter exits as
    it always did."""
    fewer_collections()
    defer_unused_imports()
    try:
        main()
        status = 0
    except SystemExit as e:
        status = 0 if e.code is None else e.code
    if not isinstance(status, int) or not _nothing_left_at_exit():
        sys.exit(status)
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except BaseException:
        sys.exit(status)  # (the interpreter's own flush at exit says what is wrong, as before)
    os._exit(status & 0xFF)


def defer_unused_imports() -> None:
    """pyelftools' construct library imports pdb for a debugging aid dwarfgo never uses (its
    Debugger construct): pdb, with cmd, bdb, code, glob and pprint, cost ~4 ms of every command's
    start. The command line puts a stand-in in sys.modules that imports pdb when one of its
    attributes is first used. Only the command line: a program that imports dwarfgo as a library
    keeps its modules as they are."""
    name = "pdb"
    if name in sys.modules:
        return
    import importlib
    import types
    stand_in = types.ModuleType(name, f"(stands for {name} until it is used: see dwarfgo.cli.defer_unused_imports)")

    def __getattr__(attribute: str):
        if sys.modules.get(name) is stand_in:
            del sys.modules[name]
        return getattr(importlib.import_module(name), attribute)

    stand_in.__getattr__ = __getattr__
    sys.modules[name] = stand_in


def _nothing_left_at_exit() -> bool:
    """No atexit callback is registered and no thread but this one runs (CPython's count of
    callbacks; elsewhere, as if there were some)."""
    import atexit
    count = getattr(atexit, "_ncallbacks", None)
    if count is None or count() != 0:
        return False
    threading = sys.modules.get("threading")
    return threading is None or threading.active_count() == 1


def main() -> None:
    try:
        rc = _app_for(sys.argv[1:])(standalone_mode=False)
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except _CLICK_ERROR as e:
        _usage_error(e)
    except typer.Abort:
        sys.exit(1)
    except DwarfgoError as e:
        typer.echo(f"dwarfgo: error: {_safe(str(e))}", err=True)
        sys.exit(1)
    except RecursionError:
        # only a type's nesting recurses that deep (the library turns the known places into errors)
        typer.echo("dwarfgo: error: a type nests too deeply to follow (damaged DWARF: a type containing itself?)",
                   err=True)
        sys.exit(1)
    except (ELFError, DWARFError) as e:
        # pyelftools parses lazily: a damaged structure the library's guards did not name
        typer.echo(_safe(f"dwarfgo: error: damaged binary: {describe(e)}"), err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as e:  # never a traceback for a user; DWARFGO_DEBUG=1 shows it
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO):
            # the output could not be written (`> /dev/full`, a full disk): said once; what is still
            # buffered goes nowhere, so that the interpreter's last flush does not fail again
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            where = e.filename if e.filename is not None else "cannot write the output"
            typer.echo(f"dwarfgo: error: {where}: {e.strerror or e}", err=True)
            sys.exit(1)
        if os.environ.get("DWARFGO_DEBUG"):
            raise
        typer.echo(f"dwarfgo: internal error: {type(e).__name__}: {e} (set DWARFGO_DEBUG=1 for details)", err=True)
        sys.exit(70)
