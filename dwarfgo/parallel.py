"""Whole-binary work in worker processes, one compile unit's functions at a time.

`map_functions` models the given function symbols in worker processes and yields what
`task(program, function)` returns for each, in the symbols' order, as the results come in.
Workers are forked from the parent and use its opened program (its binary, inflated DWARF
sections, symbols, units and index), each with its own file descriptions (a shared offset
would let one worker's seek move another's read); where that cannot be done, a worker opens
the binary anew. Work goes out in runs of consecutive symbols of one compile unit, so a worker
reads a unit's DWARF once, and the runs go out in a few long stretches of consecutive runs
(CHUNKS_PER_WORKER a worker), so that the workers do not both read most units (and resolve
their types); a worker is replaced after a number of runs, so the DIE objects pyelftools keeps
per unit stay bounded. The task must be a module-level function (the results are pickled
back). `prepare(prog)`, when given, runs in the parent before the workers are forked: what
every worker would otherwise read for itself (tables, imports) is read once and shared.
"""

from __future__ import annotations

import gc
import os
from typing import Callable, Iterator, TypeVar

from .binary import Symbol

T = TypeVar("T")

RUN_LENGTH = 64  # symbols per piece of work
RUNS_PER_WORKER = 400  # then a fresh worker, forked from the parent again (bounded memory)
MIN_PARALLEL = 400  # fewer symbols than this: not worth starting workers
CHUNKS_PER_WORKER = 8  # stretches of consecutive runs a worker is given (fewer: coarser progress)

_program = None  # the worker's GoProgram


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def map_functions(prog, symbols: list[Symbol], task: Callable, workers: int | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  prepare: Callable | None = None) -> Iterator:
    """task(prog, fn) for every symbol whose function has Go DWARF, in order."""
    for _, usable_, result in map_symbols(prog, symbols, task, workers, progress, prepare):
        if usable_:
            yield result


def _can_fork() -> bool:
    """Whether worker processes can be forked (multiprocessing is imported only then: with
    hashlib and tempfile, ~5 ms of a command on one function, which never needs it)."""
    import multiprocessing
    return "fork" in multiprocessing.get_all_start_methods()


def map_symbols(prog, symbols: list[Symbol], task: Callable, workers: int | None = None,
                progress: Callable[[int, int], None] | None = None,
                prepare: Callable | None = None) -> Iterator[tuple[Symbol, bool, object]]:
    """(symbol, True, task(prog, fn)) for every symbol, in order, or (symbol, False, None) for a
    symbol whose function has no Go DWARF."""
    workers = default_workers() if workers is None else workers
    runs = _runs(prog, symbols)
    if workers <= 1 or len(symbols) < MIN_PARALLEL or not _can_fork():
        yield from _sequential(prog, symbols, task, progress)
        return
    import multiprocessing
    if prepare is not None:
        prepare(prog)
    ctx = multiprocessing.get_context("fork")
    done = 0
    chunk = max(1, len(runs) // (workers * CHUNKS_PER_WORKER))
    # a unit whose runs fall in several stretches (cmd/compile's ssa package: a third of the
    # functions) would be walked by every worker that gets one of them: walked once, here
    prog.index.read_subprograms(_units_shared(prog, runs, chunk))
    # what the parent holds now (the opened program: symbols, units, index, sections) lives as long
    # as the run: kept out of the garbage collector's passes, in the workers (which inherit it: a
    # pass would also touch, and so copy, its pages) and in the parent while the results come in
    gc.freeze()
    try:
        with ctx.Pool(workers, initializer=_take_program, initargs=(prog,),
                      maxtasksperchild=max(1, RUNS_PER_WORKER // chunk)) as pool:
            for run, results in zip(runs, pool.imap(_run, [(task, run) for run in runs], chunk)):
                done += len(run)
                for sym, (usable_, result) in zip(run, results):
                    yield sym, usable_, result
                if progress:
                    progress(done, len(symbols))
    finally:
        gc.unfreeze()


def _sequential(prog, symbols, task, progress) -> Iterator:
    from .program import usable
    for i, sym in enumerate(symbols):
        fn = prog.functions.at(sym)
        yield (sym, True, task(prog, fn)) if usable(fn) else (sym, False, None)
        if progress:
            progress(i + 1, len(symbols))


def _runs(prog, symbols: list[Symbol]) -> list[list[Symbol]]:
    """Consecutive symbols of one unit, at most RUN_LENGTH in a run."""
    runs: list[list[Symbol]] = []
    last = object()
    index = prog.index
    for sym in symbols:
        unit = index.unit_for_address(sym.address)
        key = unit.offset if unit is not None else None
        if not runs or key != last or len(runs[-1]) >= RUN_LENGTH:
            runs.append([])
        runs[-1].append(sym)
        last = key
    return runs


def _units_shared(prog, runs: list[list[Symbol]], chunk: int) -> list:
    """The units with runs in more than one stretch of `chunk` consecutive runs (what the pool
    hands a worker at a time)."""
    index = prog.index
    stretches: dict[int, set[int]] = {}
    units = {}
    for k, run in enumerate(runs):
        unit = index.unit_for_address(run[0].address)
        if unit is not None:
            stretches.setdefault(unit.offset, set()).add(k // chunk)
            units[unit.offset] = unit
    return [units[offset] for offset, seen in stretches.items() if len(seen) > 1]


def _take_program(parent) -> None:
    """The worker's program: the parent's, inherited by the fork (initargs are not pickled
    under fork), with files of its own; the binary opened anew if those cannot be had."""
    global _program
    try:
        for binary in _binaries(parent):
            binary.own_files_after_fork()
    except OSError:
        from .program import GoProgram
        binary = parent.binary
        _program = GoProgram(binary.path, binary._debug_file_arg, cache=False)  # the parent keeps the cache
        return
    _program = parent


def _binaries(prog) -> list:
    out = [prog.binary]
    if prog.twin is not None:
        out.append(prog.twin.twin)
    return out


def _run(job) -> list[tuple[bool, object]]:
    """(usable, task's result or None) per symbol of the run."""
    from .program import usable
    task, symbols = job
    out = []
    for sym in symbols:
        fn = _program.functions.at(sym)
        out.append((True, task(_program, fn)) if usable(fn) else (False, None))
    return out
