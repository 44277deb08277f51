"""Whole-binary work in worker processes, one compile unit's functions at a time.

`map_functions` models the given function symbols in worker processes (each opens the binary
once) and yields what `task(program, function)` returns for each, in the symbols' order, as
the results come in. Work goes out in runs of consecutive symbols of one compile unit, so a
worker reads a unit's DWARF once; a worker is replaced after a number of runs, so the DIE
objects pyelftools keeps per unit stay bounded. The task must be a module-level function
(workers are forked; the results are pickled back).
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Callable, Iterator, TypeVar

from .binary import Symbol

T = TypeVar("T")

RUN_LENGTH = 64  # symbols per piece of work
RUNS_PER_WORKER = 400  # then a fresh worker (bounded memory; each new one costs ~0.6 s to open the binary)
MIN_PARALLEL = 400  # fewer symbols than this: not worth starting workers

_program = None  # the worker's GoProgram


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def map_functions(prog, symbols: list[Symbol], task: Callable, workers: int | None = None,
                  progress: Callable[[int, int], None] | None = None) -> Iterator:
    """task(prog, fn) for every symbol whose function has Go DWARF, in order."""
    for _, usable_, result in map_symbols(prog, symbols, task, workers, progress):
        if usable_:
            yield result


def map_symbols(prog, symbols: list[Symbol], task: Callable, workers: int | None = None,
                progress: Callable[[int, int], None] | None = None) -> Iterator[tuple[Symbol, bool, object]]:
    """(symbol, True, task(prog, fn)) for every symbol, in order, or (symbol, False, None) for a
    symbol whose function has no Go DWARF."""
    workers = default_workers() if workers is None else workers
    runs = _runs(prog, symbols)
    if workers <= 1 or len(symbols) < MIN_PARALLEL or "fork" not in multiprocessing.get_all_start_methods():
        yield from _sequential(prog, symbols, task, progress)
        return
    ctx = multiprocessing.get_context("fork")
    done = 0
    with ctx.Pool(workers, initializer=_open_in_worker,
                  initargs=(str(prog.binary.path), prog.binary._debug_file_arg),
                  maxtasksperchild=RUNS_PER_WORKER) as pool:
        for run, results in zip(runs, pool.imap(_run, [(task, run) for run in runs])):
            done += len(run)
            for sym, (usable_, result) in zip(run, results):
                yield sym, usable_, result
            if progress:
                progress(done, len(symbols))


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


def _open_in_worker(path: str, debug_file) -> None:
    global _program
    from .program import GoProgram
    _program = GoProgram(path, debug_file, cache=False)  # the parent keeps the index cache


def _run(job) -> list[tuple[bool, object]]:
    """(usable, task's result or None) per symbol of the run."""
    from .program import usable
    task, symbols = job
    out = []
    for sym in symbols:
        fn = _program.functions.at(sym)
        out.append((True, task(_program, fn)) if usable(fn) else (False, None))
    return out
