"""Live: `dwarfgo trace --args EXPR` prints exactly the selected part of each argument and, with
--ret, of each result.

The expected value of each expression is computed here from the fixture's own report of
its arguments and results (a JSON walk written for this test: fields by key, pointers
already followed by the fixture's encoder, so `*p` is p's reported value, slices through
"items", len/cap from the report), never from dwarfgo. A nil pointer on the way or an
index past the length must come out as unavailable with that reason.
"""

from __future__ import annotations

import re

import pytest

from conftest import FIXTURES, go_versions
from test_live import _live_preconditions, installed_bpftrace, reported_calls, trace_fixture

# (function, expressions); every function exists in every Go version of the matrix
SELECTIONS = {
    "main.List": ["head.Val", "head.Name", "head.Next.Name", "head.Next.Next.Val", "head.Next.Next.Next.Val",
                  "len(head.Name)"],
    "main.Slices": ["len(xs)", "cap(xs)", "xs[0]", "xs[2]", "ps[1].B", "ps[1]", "ss[0]", "len(ss[2])", "cap(ps)"],
    "main.Maps": ["len(m)", "len(idx)"],
    "main.Arrays": ["a3[1]", "len(a3)", "a1[0]", "len(a1[0])"],
    "main.StructNested": ["n.P.B", "n.In.U", "n.Name", "n.P"],
    "main.Chans": ["len(c)", "cap(c)", "len(r)", "cap(s)"],
    "main.Variadic": ["nums[1]", "len(nums)", "prefix"],
    "main.StructBig": ["b.J", "b.S", "tag"],
}


def expected(values: dict, expr: str):
    """(value, None) or (None, reason) where reason is the unavailable reason dwarfgo must give
    (`p is nil`, `index 2 out of range: xs is shorter`); from the report alone."""
    m = re.fullmatch(r"(len|cap)\((.*)\)", expr)
    builtin, path = (m.group(1), m.group(2)) if m else (None, expr)
    root, ops = _ops(path)
    v, text, starred = values[root], root, False
    for op, arg in ops:
        if op == "*":
            if v is None:
                return None, f"{text} is nil"
            text, starred = "*" + text, True
            continue  # the report shows a pointer as the value it points to
        at = f"({text})" if starred else text
        starred = False
        if op == ".":
            if v is None:  # a nil pointer, followed by Go's automatic dereference
                return None, f"{at} is nil"
            v, text = v[arg], f"{at}.{arg}"
            continue
        i = int(arg)
        if isinstance(v, str):
            data = v.encode()
            return (data[i], None) if i < len(data) else (None, f"index {i} out of range: {at} is shorter")
        items = [] if v is None else v["items"] if isinstance(v, dict) else v
        if i >= len(items):
            return None, f"index {i} out of range: {at} is shorter"
        v, text = items[i], f"{at}[{i}]"
    if builtin is None:
        return v, None
    if v is None:  # nil slice, map or chan: 0; a nil pointer cannot reach here (no len of a pointer)
        return 0, None
    if isinstance(v, str):
        return len(v.encode()), None
    if isinstance(v, list):
        return len(v), None
    return v[builtin], None


def _ops(path: str) -> tuple[str, list[tuple[str, str]]]:
    """`(*p).f[2]` -> ("p", [("*", ""), (".", "f"), ("[", "2")]); `*p.f` dereferences p.f."""
    if path.startswith("*"):
        root, ops = _ops(path[1:])
        return root, ops + [("*", "")]
    if path.startswith("("):
        depth = 0
        for end, ch in enumerate(path):
            depth += {"(": 1, ")": -1}.get(ch, 0)
            if depth == 0:
                break
        root, ops = _ops(path[1:end])
        rest = path[end + 1:]
    else:
        root, rest = re.match(r"([~\w]+)(.*)", path).groups()
        ops = []
    return root, ops + [("." if f else "[", f or i) for f, i in re.findall(r"\.(\w+)|\[(\d+)\]", rest)]


# every Go version on the newest bpftrace; the oldest and newest on 0.17
_VERSIONS = go_versions() or ["1.22"]
MATRIX = [(v, "newest") for v in _VERSIONS] + [(v, "0.17") for v in sorted({_VERSIONS[0], _VERSIONS[-1]})]


@pytest.mark.live
@pytest.mark.parametrize("go, bt", MATRIX, ids=[f"go{v}-bpftrace{b}" for v, b in MATRIX])
def test_args_expressions_exact(go, bt):
    binary = FIXTURES / f"go{go}" / "amd64" / "default" / "shapes"
    _live_preconditions(binary)
    _, path = installed_bpftrace(bt)
    funcs = list(SELECTIONS)
    exprs = sorted({e for es in SELECTIONS.values() for e in es})
    trace_args = [a for e in exprs for a in ("--args", e)]
    # the report names functions as the fixture calls them; every one here is in the report
    report = [r for r in reported_calls(binary) if r["func"] in SELECTIONS]
    assert {r["func"] for r in report} == set(SELECTIONS)
    _, events, errors, rc = trace_fixture(binary, funcs, path, ret=False, trace_args=trace_args)
    assert rc == 0, "\n".join(errors[-20:])
    calls = sorted((e for e in events if e["event"] == "call"), key=lambda e: e["ts"])
    checked, wrong = 0, []
    for func in SELECTIONS:
        got = [e for e in calls if e["func"] == func]
        want = [r for r in report if r["func"] == func]
        if len(got) != len(want):  # one event per call, on every bpftrace version
            wrong.append(f"{func}: {len(got)} call events for {len(want)} calls")
        for ev, rec in zip(got, want):
            assert set(ev["args"]) == set(SELECTIONS[func]), ev["args"]
            problems = _compare(ev["args"], rec)
            wrong += problems
            checked += 0 if problems else len(SELECTIONS[func])
    assert not wrong, "\n".join(wrong)
    assert checked >= 60


def _compare(got: dict, rec: dict, exprs=None, side: str = "args") -> list[str]:
    out = []
    for expr in SELECTIONS[rec["func"]] if exprs is None else exprs:
        value, why = expected(rec[side], expr)
        actual = got[expr]
        ok = actual == ({"unavailable": why} if why is not None else value)
        if not ok:
            out.append(f"{rec['func']} call {rec['seq']}: {expr} = {actual!r}, fixture "
                       f"{'passed' if side == 'args' else 'returned'} {value if why is None else why!r}")
    return out


# Results (printed on the return event) and explicit dereferences: (function, (argument expressions,
# result expressions)). An expression applies to every traced function with that root, so functions
# whose r0 (or n, s) differ in type are traced in different runs.
RESULT_RUNS = {
    "registers": {
        "main.List": (["(*head).Name", "head.Val"], ["sum", "last.Name", "(*last).Val", "*last", "len(last.Name)"]),
        "main.Pointers": (["*p", "(*p).B", "*n", "*s", "len(*s)", "*pp", "**pp", "(**pp).A"],
                          ["r0.B", "*r0", "(*r0).A"]),
    },
    "stack": {  # main.Big is 12 words: a stack result on amd64 (and every result with Go's stack ABI)
        "main.StructBig": (["tag"], ["r0.J", "r0.S", "len(r0.S)"]),
        # n: an argument of Add, a result of Strings and of Slices: printed on each of those events
        "main.(*Counter).Add": (["*c", "(*c).Hits", "n"], ["before", "after"]),
        "main.Strings": ([], ["len(joined)", "joined[1]", "n"]),
        "main.Slices": (["len(xs)"], ["len(first)", "cap(first)", "first[0]", "n"]),
    },
}
RESULT_MATRIX = [(v, run) for v in _VERSIONS for run in RESULT_RUNS]


@pytest.mark.live
@pytest.mark.parametrize("go, run", RESULT_MATRIX, ids=[f"go{v}-{r}" for v, r in RESULT_MATRIX])
def test_result_and_dereference_expressions_exact(go, run):
    """Mixed argument and result expressions in one run (bpftrace probes the RETs: newest only): each
    call prints only its argument expressions, each return only its result expressions."""
    binary = FIXTURES / f"go{go}" / "amd64" / "default" / "shapes"
    _live_preconditions(binary)
    _, path = installed_bpftrace("newest")
    selections = RESULT_RUNS[run]
    exprs = sorted({e for ins, outs in selections.values() for e in ins + outs})
    trace_args = ["--args", ",".join(exprs)]
    report = [r for r in reported_calls(binary) if r["func"] in selections]
    assert {r["func"] for r in report} == set(selections)
    _, events, errors, rc = trace_fixture(binary, list(selections), path, ret=True, trace_args=trace_args)
    assert rc == 0, "\n".join(errors[-20:])
    checked, wrong = set(), []
    for func, (ins, outs) in selections.items():
        want = [r for r in report if r["func"] == func]
        for kind, side, chosen in (("call", "args", ins), ("ret", "results", outs)):
            got = sorted((e for e in events if e["func"] == func and e["event"] == kind), key=lambda e: e["ts"])
            if len(got) != len(want):
                wrong.append(f"{func}: {len(got)} {kind} events for {len(want)} calls")
                continue
            for ev, rec in zip(got, want):
                assert set(ev[side]) == set(chosen), (func, kind, ev[side])
                wrong += _compare(ev[side], rec, chosen, side)
                checked |= set(chosen)
    assert not wrong, "\n".join(wrong)
    assert checked == set(exprs)
