"""Finding functions by the names people type.

`lookup` resolves one FUNC argument (full symbol, or a short unique form such as
`BarrierView.Put`, `(*BarrierView).Put`, `vault.(*BarrierView).Put`);
`match` filters by a substring, glob or regular expression for listings.
"""

from __future__ import annotations

import difflib
import re
import signal
import threading
from contextlib import contextmanager

from .binary import Symbol
from .errors import AmbiguousFunction, DwarfgoError, FunctionNotFound
from .functions import split_symbol


def _short_forms(name: str) -> set[str]:
    """The forms of a symbol a user may type, besides the full name."""
    pkg, recv, rest = split_symbol(name)
    forms = {rest}
    last_pkg = pkg.rsplit("/", 1)[-1]
    if recv is not None:
        forms.add(f"{recv}.{rest}")
        plain = recv[2:-1] if recv.startswith("(*") else recv.strip("()")
        forms.add(f"{plain}.{rest}")
        forms.add(f"{last_pkg}.{recv}.{rest}")
        forms.add(f"{last_pkg}.{plain}.{rest}")
    else:
        forms.add(f"{last_pkg}.{rest}")
    return forms


def lookup(symbols: list[Symbol], query: str) -> Symbol:
    """The one function `query` names; AmbiguousFunction / FunctionNotFound otherwise."""
    query = query.strip()
    if not query:
        raise DwarfgoError("empty function name")
    exact = [s for s in symbols if s.name == query]
    if not exact:
        exact = [s for s in symbols if s.go_name == query]
    if len(exact) == 1:
        return exact[0]
    if len(exact) > 1:
        # a Go body and its .abi0 wrapper share a Go name: the body is what people mean
        bodies = [s for s in exact if not s.is_abi0]
        if len(bodies) == 1:
            return bodies[0]
        raise AmbiguousFunction(query, [s.name for s in exact])
    found = [s for s in symbols if query in _short_forms(s.name) or s.name.endswith("/" + query)]
    bodies = [s for s in found if not s.is_abi0]
    if len(bodies) == 1:
        return bodies[0]
    if len(found) == 1:
        return found[0]
    if found:
        raise AmbiguousFunction(query, sorted(s.name for s in found))
    raise FunctionNotFound(query, suggest(query, [s.name for s in symbols]))


def suggest(query: str, names: list[str], n: int = 5) -> list[str]:
    """The nearest names: by full name, and by the part after the package."""
    by_rest: dict[str, str] = {}
    for name in names:
        by_rest.setdefault(split_symbol(name)[2], name)
    close = difflib.get_close_matches(query, names, n=n, cutoff=0.6)
    tail = query.rsplit(".", 1)[-1]
    for rest in difflib.get_close_matches(tail, list(by_rest), n=n, cutoff=0.6):
        if by_rest[rest] not in close:
            close.append(by_rest[rest])
    return close[:n]


MATCH_SECONDS = 5.0  # for matching a pattern against every symbol name


class _Timeout(Exception):
    pass


@contextmanager
def time_limit(seconds: float, message: str):
    """Raise DwarfgoError(message) if the block runs longer than `seconds` (Python's regular
    expression engine checks for signals while it backtracks). Only in the main thread; an
    interval timer already running (a caller's own limit) is put back with what is left of it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum, frame):
        raise _Timeout

    old_handler = signal.signal(signal.SIGALRM, on_alarm)
    old_delay, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = _now()
    try:
        yield
    except _Timeout:
        raise DwarfgoError(message) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        if old_delay:
            signal.setitimer(signal.ITIMER_REAL, max(old_delay - (_now() - started), 0.001))


def _now() -> float:
    import time
    return time.monotonic()


def matching_names(pred, symbols: list[Symbol], pattern: str | None) -> list[Symbol]:
    """The symbols whose names satisfy `pred`, in a bounded time (a pattern such as `(a+)+$`
    backtracks exponentially)."""
    with time_limit(MATCH_SECONDS, f"the pattern {pattern!r} takes more than {MATCH_SECONDS:.0f} s to match the "
                                   f"function names (catastrophic backtracking?); simplify it"):
        return [s for s in symbols if pred(s.name)]


def compile_pattern(pattern: str | None, regex: bool = False):
    """A predicate on names: substring by default, glob when `*`/`?` are used as wildcards, or a regex.

    A glob matches the whole name, or the name without its import path (`vault.(*B*).Put`).

    In a glob, `*` right after `(` is literal (Go's pointer receivers: `(*T).M`), and `[`
    is literal (generic instantiations).
    """
    if not pattern:
        return lambda name: True
    if regex:
        try:
            rx = re.compile(pattern)
        except re.error as e:
            raise DwarfgoError(f"bad regular expression {pattern!r}: {e}") from None
        return lambda name: rx.search(name) is not None
    wildcard_positions = [i for i, ch in enumerate(pattern) if ch == "?" or (ch == "*" and (i == 0 or pattern[i - 1] != "("))]
    if not wildcard_positions:
        return lambda name: pattern in name
    parts, last = [], 0
    for i in wildcard_positions:
        parts.append(re.escape(pattern[last:i]))
        parts.append(".*" if pattern[i] == "*" else ".")
        last = i + 1
    parts.append(re.escape(pattern[last:]))
    # anchored at the whole name, or after an import path's last `/` (`types2.(*Checker).in*`)
    rx = re.compile("^(?:.*/)?" + "".join(parts) + "$")
    return lambda name: rx.match(name) is not None
