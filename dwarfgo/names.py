"""Finding functions by the names people type.

`lookup` resolves one FUNC argument (full symbol, or a short unique form such as
`BarrierView.Put`, `(*BarrierView).Put`, `vault.(*BarrierView).Put`, or any of these with the
function's entry address, `NAME@0xADDR`, to choose among functions that share a name);
`match` filters by a substring, glob or regular expression for listings.
"""

from __future__ import annotations

import difflib
import heapq
import itertools
import operator
import re
import signal
import threading
from contextlib import contextmanager
from dataclasses import replace

from .binary import Symbol
from .errors import AmbiguousFunction, DwarfgoError, FunctionNotFound
from .functions import split_symbol


def _path_suffixes(pkg: str) -> list[str]:
    """`github.com/x/vendor/github.com/spf13/pflag` -> `pflag`, `spf13/pflag`, ...: every import
    path suffix, shortest first. A vendored package (`…/vendor/github.com/spf13/pflag`, Go's
    GOPATH mode; `vendor/golang.org/x/net/…` in the standard library) is found by its import
    path (`github.com/spf13/pflag`), which is one of these."""
    parts = pkg.split("/")
    return ["/".join(parts[i:]) for i in range(len(parts) - 1, -1, -1)] if pkg else []


def _plain(recv: str) -> str:
    return recv[2:-1] if recv.startswith("(*") else recv.strip("()")


def _display_forms(name: str) -> list[str]:
    """The names that spell a symbol as Go does (the receiver as written), shortest first:
    `Parse`, `(*FlagSet).Parse`, `pflag.(*FlagSet).Parse`, `spf13/pflag.(*FlagSet).Parse`, …"""
    pkg, recv, rest = split_symbol(name)
    head = f"{recv}.{rest}" if recv is not None else rest
    forms = [rest, head] if recv is not None else [rest]
    forms += [f"{p}.{head}" for p in _path_suffixes(pkg)]
    return forms


def _short_forms(name: str) -> tuple[set[str], set[str]]:
    """The forms of a symbol a user may type, besides the full name: (spelled as Go does, and
    the looser ones: a pointer method without `(*…)`, Delve's `(*pkg.T).M`)."""
    pkg, recv, rest = split_symbol(name)
    exact = set(_display_forms(name))
    loose = set()
    if recv is not None:
        plain = _plain(recv)
        loose.add(f"{plain}.{rest}")
        loose.update(f"{p}.{plain}.{rest}" for p in _path_suffixes(pkg))
        if recv.startswith("(*"):
            loose.update(f"(*{p}.{plain}).{rest}" for p in _path_suffixes(pkg))
    return exact, loose - exact


def _matches(symbols: list[Symbol], query: str) -> tuple[list[Symbol], list[Symbol]]:
    """(symbols a short form names as Go spells it, symbols it names only loosely)."""
    tail = query.rsplit(".", 1)[-1]
    exact, loose = [], []
    for s in symbols:
        if tail not in s.name:  # every form ends with the symbol's last component
            continue
        precise, other = _short_forms(s.name)
        if query in precise:
            exact.append(s)
        elif query in other:
            loose.append(s)
    return exact, loose


def shortest_unique(name: str, symbols: list[Symbol]) -> str:
    """The shortest name that `lookup` resolves to this symbol, spelled as Go does; else the symbol."""
    tail = split_symbol(name)[2].rsplit(".", 1)[-1]
    pool = [s for s in symbols if tail in s.name]  # every form of `name` ends with `tail`
    for form in _display_forms(name):
        try:
            if lookup(pool, form, explain=False).name == name:
                return form
        except DwarfgoError:
            continue
    return name


def _ambiguous(query: str, found: list[Symbol], symbols: list[Symbol], detail=None,
               names_from: str = "symbol table") -> AmbiguousFunction:
    names = sorted(s.name for s in found)
    if len(set(names)) < len(names):
        return _same_name(query, found, detail, names_from)
    return AmbiguousFunction(query, names, [shortest_unique(n, symbols) for n in names[:12]])


def _same_name(query: str, found: list[Symbol], detail=None,
               names_from: str = "symbol table") -> AmbiguousFunction:
    """Functions that share a name: each is listed by its `NAME@0xADDR` selector, with its size
    and what else tells it apart (`detail(symbol)`, e.g. its argument words). Why they share it
    depends on where the names come from (`Binary.symbols_from`): Go 1.18-1.19's function table
    names every instance of a generic function `F[...]`, and without .abi0 a wrapper's; a symbol
    table keeps local symbols of one name (a closure compiled again where its function was
    inlined, in another package, is a local `F.func1` as the first is)."""
    found = sorted(found, key=lambda s: s.address)
    shown = []
    for s in found[:12]:
        extra = detail(s) if detail is not None else None
        shown.append(f"{s.name}@{s.address:#x} ({s.size} bytes" + (f", {extra})" if extra else ")"))
    if any(GENERIC_ELIDED in s.name for s in found):
        generic = " (a stripped Go 1.18-1.19 binary writes the contents of every bracket as [...])"
    elif names_from == "function table":
        generic = " (without a symbol table, a function and its ABI wrapper share a name)"
    else:
        generic = (f" (local symbols of its {names_from}, such as a closure compiled again where its "
                   "function was inlined)")
    more = f" and {len(found) - len(shown)} more" if len(found) > len(shown) else ""
    err = AmbiguousFunction(query, [s.name for s in found], shown)
    err.args = (f"{query!r} names {len(found)} functions{generic}; choose one by its entry address, "
                f"NAME@0xADDR: " + "; ".join(shown) + more,)
    return err


GENERIC_ELIDED = "[...]"  # how Go 1.18-1.19's function table writes a generic instance's type arguments
_AT_ADDRESS = re.compile(r"(?P<name>.+)@(?P<address>0[xX][0-9a-fA-F]+)")


def is_address_selector(text: str) -> bool:
    """Whether `text` is a `NAME@0xADDR` selector (for commands that otherwise take a pattern)."""
    return _AT_ADDRESS.fullmatch(text.strip()) is not None


def _rewrite_type_arguments(name: str, rewrite) -> str:
    """`name` with each outermost bracket group (`[go.shape.int]`, `[2]`) replaced by
    `rewrite(group)`; a `]` that closes nothing is kept as it is."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(name):
        if ch == "[":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "]" and depth:
            depth -= 1
            if depth == 0:
                out.append(rewrite(name[start:i + 1]))
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def erase_type_arguments(name: str) -> str:
    """`main.Map[go.shape.int_0,go.shape.string_1]` -> `main.Map[...]`: every outermost bracket's
    contents as Go 1.18-1.19's function table writes them."""
    return _rewrite_type_arguments(name, lambda group: GENERIC_ELIDED)


def without_type_arguments(name: str) -> str:
    """`main.(*Stack[go.shape.int]).Push` -> `main.(*Stack).Push`: the name as the source spells
    the generic function (every outermost bracket dropped, except an array length: `[2]string`)."""
    return _rewrite_type_arguments(name, lambda group: group if group[1:-1].isdigit() else "")


def _by_rewritten_name(symbols: list[Symbol], query: str, rewrite) -> list[Symbol]:
    """The generic instances `query` names by lookup's rules once `rewrite` has been applied to
    their names (and Go names); [] when none."""
    generic = [s for s in symbols if "[" in s.name]
    rewritten = [replace(s, name=rewrite(s.name)) for s in generic]
    originals = {id(r): s for r, s in zip(rewritten, generic)}
    found = [r for r in rewritten if r.name == query or r.go_name == query]
    if not found:
        precise, loose = _matches(rewritten, query)
        found = precise or loose
    return [originals[id(r)] for r in found]


def _by_generic_name(symbols: list[Symbol], query: str) -> list[Symbol]:
    """The instances of a generic function that `query` (written as in the source: `Max`,
    `Box.Get`, `main.(*Stack).Push`) names, once their type arguments are dropped."""
    return _by_rewritten_name(symbols, query, without_type_arguments)


def _by_erased_name(symbols: list[Symbol], query: str) -> list[Symbol]:
    """The symbols `query` (with `[...]` for type arguments) names once every symbol's type
    arguments are written `[...]`."""
    return _by_rewritten_name(symbols, query, erase_type_arguments)


def _at_address(symbols: list[Symbol], name: str, address: int, detail=None,
                names_from: str = "symbol table") -> Symbol:
    """`NAME@0xADDR`: the function whose entry is ADDR, which NAME must name (any form lookup
    takes; `[...]` stands for any type arguments)."""
    query = f"{name}@{address:#x}"
    there = [s for s in symbols if s.address == address]
    if not there:
        inside = next((s for s in symbols if s.address < address < s.address + s.size), None)
        where = f"; it is inside {inside.name}, whose entry is {inside.address:#x}" if inside else ""
        raise DwarfgoError(f"{query}: no function starts at {address:#x}{where}")
    try:
        return lookup(there, name, explain=False, detail=detail)
    except FunctionNotFound:
        pass
    named = _by_erased_name(there, name)
    if len(named) == 1:
        return named[0]
    if named:
        raise _ambiguous(query, named, there, detail, names_from)
    raise DwarfgoError(f"{query}: the function at {address:#x} is {' / '.join(s.name for s in there)}, "
                       f"which {name!r} does not name")


def lookup(symbols: list[Symbol], query: str, explain: bool = True, detail=None,
           names_from: str = "symbol table") -> Symbol:
    """The one function `query` names; AmbiguousFunction / FunctionNotFound otherwise.

    Short forms: `Put`, `(*BarrierView).Put`, `BarrierView.Put`, `vault.(*BarrierView).Put`,
    any import-path suffix before the dot (`hashicorp/vault/vault.…`, a vendored package's own
    import path), and Delve's `(*vault.BarrierView).Put`. Where a form spelled as Go does (a
    value method `Error.Error`) and a looser one (the pointer wrapper `(*Error).Error` typed
    without `(*…)`) both match, the first wins.

    `NAME@0xADDR` chooses the function whose entry is ADDR (NAME must name it); `[...]` in a
    name stands for any type arguments (`main.Max[...]@0x4b4b60` names the same function in a
    stripped Go 1.19 binary and in its DWARF build). `detail(symbol)`: what tells functions of
    the same name apart, for the error that lists them; `names_from`: where the names come from
    (`Binary.symbols_from`), which says why several functions may share one."""
    query = query.strip()
    if not query:
        raise DwarfgoError("empty function name")
    at = _AT_ADDRESS.fullmatch(query)
    if at is not None and not any(s.name == query for s in symbols):
        return _at_address(symbols, at["name"], int(at["address"], 16), detail, names_from)
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
        if explain and len({s.name for s in exact}) < len(exact):
            raise _same_name(query, bodies or exact, detail, names_from)
        raise AmbiguousFunction(query, [s.name for s in exact])
    precise, loose = _matches(symbols, query)
    found = precise or loose
    if not found and GENERIC_ELIDED in query:
        found = _by_erased_name(symbols, query)
    if not found and "[" not in query:  # a generic function named as in the source
        found = _by_generic_name(symbols, query)
    bodies = [s for s in found if not s.is_abi0]
    if len(bodies) == 1:
        return bodies[0]
    if len(found) == 1:
        return found[0]
    if found:
        if not explain:
            raise AmbiguousFunction(query, sorted(s.name for s in bodies or found))
        raise _ambiguous(query, bodies or found, symbols, detail, names_from)
    raise FunctionNotFound(query, suggest(query, [s.name for s in symbols]) if explain else [])


def close_matches(word: str, possibilities, n: int = 3, cutoff: float = 0.6) -> list[str]:
    """What difflib.get_close_matches(word, possibilities, n, cutoff) returns, in a fraction of its
    time on 20,000 names: the upper bound of each similarity (difflib's quick_ratio: the
    characters in common, counted with str.count) is computed first, and the exact similarity
    only in descending order of that bound, until no bound left can reach the n-th best."""
    length = len(word)
    counts: dict[str, int] = {}
    for ch in word:
        counts[ch] = counts.get(ch, 0) + 1
    pool = list(possibilities)
    # the characters each possibility has in common with `word`, one character at a time over
    # every possibility (str.count and map run in C; a loop per name would not)
    common = [0] * len(pool)
    for ch, k in counts.items():
        common = list(map(operator.add, common, map(min, [x.count(ch) for x in pool], itertools.repeat(k))))
    bounded = []
    for x, shared in zip(pool, common):
        total = len(x) + length
        if not total:
            bounded.append((1.0, x))
            continue
        if 2.0 * min(len(x), length) / total < cutoff:  # difflib's real_quick_ratio
            continue
        bound = 2.0 * shared / total  # difflib's quick_ratio
        if bound >= cutoff:
            bounded.append((bound, x))
    bounded.sort(key=lambda item: item[0], reverse=True)
    matcher = difflib.SequenceMatcher()
    matcher.set_seq2(word)
    best: list[tuple[float, str]] = []  # the n best so far, as a min-heap (its first: the n-th best)
    for bound, x in bounded:
        if len(best) >= n and bound < best[0][0]:
            break  # neither this nor any later one can be among the n best
        matcher.set_seq1(x)
        score = matcher.ratio()
        if score >= cutoff:
            if len(best) < n:
                heapq.heappush(best, (score, x))
            else:
                heapq.heappushpop(best, (score, x))
    return [x for _, x in heapq.nlargest(n, best)]


def suggest(query: str, names: list[str], n: int = 5) -> list[str]:
    """The nearest names: by full name, and by the part after the package."""
    by_rest: dict[str, str] = {}
    for name in names:
        by_rest.setdefault(split_symbol(name)[2], name)
    close = close_matches(query, names, n=n, cutoff=0.6)
    tail = query.rsplit(".", 1)[-1]
    for rest in close_matches(tail, list(by_rest), n=n, cutoff=0.6):
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
